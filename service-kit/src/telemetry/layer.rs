//! The `tracing` layer that turns spans into OpenTelemetry spans: each span gets a
//! [`SpanRecord`] (its ids, parent, OpenTelemetry name and kind, attributes, events, status)
//! in the span's own extensions, and when a sampled span closes its record is written as OTLP
//! onto the export queue ([`super::batch`]).
//!
//! Why not tracing-opentelemetry with the OpenTelemetry SDK: that pair builds each span twice
//! (a builder while it is open, an SDK span at the end, its `SpanData` moved through the batch
//! processor), takes locks per span, and allocates for each step; on the full-path benchmark
//! exporting every span cost 15-22 % of the throughput, against a budget of 10 % (#18). This
//! keeps one record per span, written in place, and hands it to the queue as it is; the OTLP
//! encoder reads it directly. Field names follow tracing-opentelemetry's (`otel.name`,
//! `otel.kind`, `otel.status_code`, `otel.status_message`; events named by their message, with
//! `level` and `target`; an ERROR event marks its span failed), so spans look as they did.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::batch::Queue;
use super::settings::Sampler;
use super::span_record::{MAX_ATTRIBUTES, MAX_EVENTS, SpanEvent, SpanRecord};
use super::trace_context::SpanIds;

/// Attributes a span is expected to get besides its fields: a hop's identity
/// (`entra_auth::span_attributes`).
const EXTRA_ATTRIBUTES: usize = 12;

thread_local! {
    /// Set on the exporter's threads: the HTTP client sending spans makes none of its own (at
    /// `RUST_LOG=trace` it would otherwise export spans about exporting, without end).
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

/// Called on each thread of the exporter's runtime.
pub fn suppress_on_this_thread() {
    SUPPRESSED.set(true);
}

pub struct OtlpLayer {
    sampler: Sampler,
    queue: Arc<Queue>,
}

impl OtlpLayer {
    pub fn new(sampler: Sampler, queue: Arc<Queue>) -> OtlpLayer {
        OtlpLayer { sampler, queue }
    }
}

impl<S> Layer<S> for OtlpLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if SUPPRESSED.get() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let parent = span.parent().and_then(|parent| {
            let mut extensions = parent.extensions_mut();
            let record = extensions.get_mut::<SpanRecord>()?;
            record.has_children = true;
            Some((record.ids, record.sampled, record.trace_state.clone()))
        });
        let (ids, parent, sampled, trace_state) = match parent {
            Some((parent, sampled, state)) => {
                let ids = SpanIds { trace_id: parent.trace_id, span_id: span_id() };
                (ids, Some(parent.span_id), self.sampler.samples(Some(sampled), &ids.trace_id), state)
            }
            None => {
                let ids = SpanIds { trace_id: fastrand::u128(1..).to_be_bytes(), span_id: span_id() };
                (ids, None, self.sampler.samples(None, &ids.trace_id), None)
            }
        };
        // Fields are recorded even for a span not sampled (yet): a caller's `traceparent`,
        // read after the span is made, may still ask for it.
        let mut record = SpanRecord {
            ids,
            parent,
            parent_is_remote: false,
            sampled,
            trace_state,
            has_children: false,
            name: Cow::Borrowed(attrs.metadata().name()),
            kind: SpanKind::Internal,
            start: SystemTime::now(),
            end: UNIX_EPOCH,
            // Room for a hop's identity attributes too, set after the fields (a reallocation
            // and a copy of the rest otherwise).
            attributes: Vec::with_capacity(attrs.fields().len() + EXTRA_ATTRIBUTES),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            status: Status::Unset,
        };
        attrs.record(&mut Fields(&mut record));
        span.extensions_mut().insert(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(record) = span.extensions_mut().get_mut::<SpanRecord>()
        {
            values.record(&mut Fields(record));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if SUPPRESSED.get() {
            return;
        }
        let span = match event.parent() {
            Some(id) => ctx.span(id),
            None if event.is_contextual() => ctx.lookup_current(),
            None => None,
        };
        let Some(span) = span else { return };
        let sampled = span.extensions().get::<SpanRecord>().is_some_and(|r| r.sampled);
        if !sampled {
            return;
        }
        let meta = event.metadata();
        let mut fields = EventFields {
            name: None,
            attributes: vec![KeyValue::new("level", meta.level().as_str()), KeyValue::new("target", meta.target())],
        };
        event.record(&mut fields);
        let mut extensions = span.extensions_mut();
        let Some(record) = extensions.get_mut::<SpanRecord>() else { return };
        if *meta.level() == Level::ERROR && record.status == Status::Unset {
            record.status = Status::error("");
        }
        if record.events.len() < MAX_EVENTS {
            let name = fields.name.map_or(Cow::Borrowed(meta.name()), Cow::Owned);
            record.events.push(SpanEvent { time: SystemTime::now(), name, attributes: fields.attributes });
        } else {
            record.dropped_events += 1;
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut record) = span.extensions_mut().remove::<SpanRecord>() else { return };
        if record.sampled {
            record.end = SystemTime::now();
            self.queue.push(&record);
        }
    }
}

fn span_id() -> [u8; 8] {
    fastrand::u64(1..).to_be_bytes()
}

/// A span's fields: `otel.*` set what they name, the rest become attributes.
struct Fields<'a>(&'a mut SpanRecord);

impl Fields<'_> {
    fn text(&mut self, field: &Field, value: Cow<'_, str>) {
        match field.name() {
            "otel.name" => self.0.name = Cow::Owned(value.into_owned()),
            "otel.kind" => self.0.kind = kind(&value),
            "otel.status_code" => {
                self.0.status = match value.to_ascii_lowercase().as_str() {
                    "error" => Status::error(self.status_message()),
                    "ok" => Status::Ok,
                    _ => Status::Unset,
                }
            }
            "otel.status_message" => {
                if matches!(self.0.status, Status::Error { .. }) {
                    self.0.status = Status::error(value.into_owned());
                }
            }
            name => self.0.set(KeyValue::new(name, value.into_owned())),
        }
    }

    fn status_message(&self) -> String {
        match &self.0.status {
            Status::Error { description } => description.to_string(),
            _ => String::new(),
        }
    }
}

fn kind(value: &str) -> SpanKind {
    match value.to_ascii_lowercase().as_str() {
        "server" => SpanKind::Server,
        "client" => SpanKind::Client,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// The `otel.kind` value that [`kind`] reads back as `kind` (none for internal, the default): how a
/// log line written from a record shows it.
pub(super) fn kind_field(kind: &SpanKind) -> Option<&'static str> {
    match kind {
        SpanKind::Server => Some("server"),
        SpanKind::Client => Some("client"),
        SpanKind::Producer => Some("producer"),
        SpanKind::Consumer => Some("consumer"),
        SpanKind::Internal => None,
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, Cow::Borrowed(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, Cow::Owned(format!("{value:?}")));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.set(KeyValue::new(field.name(), value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.set(KeyValue::new(field.name(), value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.set(KeyValue::new(field.name(), integer(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.set(KeyValue::new(field.name(), value));
    }
}

/// OTLP integers are signed 64-bit: a larger unsigned one is sent as its decimal text.
fn integer(value: u64) -> Value {
    i64::try_from(value).map_or_else(|_| Value::String(value.to_string().into()), Value::I64)
}

/// An event's fields: `message` names it, the rest are its attributes.
struct EventFields {
    name: Option<String>,
    attributes: Vec<KeyValue>,
}

impl EventFields {
    fn push(&mut self, field: &Field, value: Value) {
        if self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.push(KeyValue::new(Key::from_static_str(field.name()), value));
        }
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.name = Some(value.to_owned()),
            _ => self.push(field, Value::String(value.to_owned().into())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.name = Some(format!("{value:?}")),
            _ => self.push(field, Value::String(format!("{value:?}").into())),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, integer(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_back_from_the_field_written_for_it() {
        for each in [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer] {
            assert_eq!(kind(kind_field(&each).unwrap_or("internal")), each);
        }
    }
}
