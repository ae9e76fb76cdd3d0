//! JSON log lines (`LOG_FORMAT=json`) that lead to their trace. When spans are exported, a line
//! written inside a span starts with that span's `trace_id` and `span_id` (the W3C hex forms
//! every trace viewer and Application Insights search by), and its `span` and `spans` are the
//! spans as exported: each one's attributes, read from its record ([`SpanRecord`]) as the line
//! is written, and its name.
//!
//! Why from the record: the log layer otherwise keeps a copy of its own of every span's fields,
//! written as JSON when the span opens and, for every field recorded later (each request's
//! response status), parsed and written again (tracing-subscriber's `JsonFields::add_fields`):
//! the work of every span, for the few that a line is ever written in. The record holds the
//! same fields already; reading them there costs only the lines written. A span's fields come
//! out as the same JSON (text, integers, booleans, numbers; the `otel.*` fields from the name,
//! kind and status the record keeps them as), and a line's spans also show the attributes set
//! on the record directly (a hop's identity). Spans on the exporter's own threads have no
//! record (they are never exported): a line in one shows its name only. Not exporting, the log
//! layer is tracing-subscriber's own, unchanged.

use std::fmt;

use opentelemetry::Value;
use opentelemetry::trace::Status;
use serde::ser::{Serialize, SerializeMap, Serializer};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

use super::layer::kind_field;
use super::span_record::SpanRecord;
use crate::hex;

/// The JSON log layer, writing to `writer`; `exporting`: the spans have records (the OTLP layer
/// is installed), so span fields are read from those.
pub fn json<S, W>(writer: W, exporting: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let json = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).json().flatten_event(true);
    if exporting {
        json.with_current_span(false)
            .with_span_list(false)
            .fmt_fields(FieldsInRecords)
            .map_event_format(WithTrace)
            .boxed()
    } else {
        json.boxed()
    }
}

/// What the log layer keeps of a span's fields when spans are exported: nothing, since
/// [`WithTrace`] reads them from the span's record. (An event's own fields are the JSON format's
/// to write; they do not pass through here.)
struct FieldsInRecords;

impl<'w> FormatFields<'w> for FieldsInRecords {
    fn format_fields<R: RecordFields>(&self, _: Writer<'w>, _: R) -> fmt::Result {
        Ok(())
    }
}

/// Wraps the JSON event format (configured without its own `span` and `spans`), adding the
/// trace and span ids in front and the spans, as exported, at the end.
struct WithTrace<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTrace<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some(span) = ctx.parent_span() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Some(fields) = line.strip_prefix('{').and_then(|rest| rest.strip_suffix("}\n")) else {
            return writer.write_str(&line);
        };
        writer.write_char('{')?;
        let ids = span.extensions().get::<SpanRecord>().map(|record| record.ids);
        if let Some(ids) = ids {
            let (trace_id, span_id) = (hex::encode(&ids.trace_id), hex::encode(&ids.span_id));
            write!(writer, "\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",")?;
        }
        writer.write_str(fields)?;
        // The line's span is the last of its scope: written once, used for both.
        let spans = span.scope().from_root().map(|span| to_json(&Exported(&span))).collect::<Result<Vec<_>, _>>()?;
        let current = spans.last().map_or("{}", String::as_str);
        writeln!(writer, ",\"span\":{current},\"spans\":[{}]}}", spans.join(","))
    }
}

fn to_json(value: &impl Serialize) -> Result<String, fmt::Error> {
    serde_json::to_string(value).map_err(|_| fmt::Error)
}

/// A span in a log line: its attributes as exported and its `otel.*` fields, then its name
/// (tracing-subscriber's shape: the fields, then `name`).
struct Exported<'a, 'b, S: for<'l> LookupSpan<'l>>(&'a SpanRef<'b, S>);

impl<S: for<'l> LookupSpan<'l>> Serialize for Exported<'_, '_, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let extensions = self.0.extensions();
        let mut map = serializer.serialize_map(None)?;
        if let Some(record) = extensions.get::<SpanRecord>() {
            for attribute in &record.attributes {
                map.serialize_entry(attribute.key.as_str(), &AttributeValue(&attribute.value))?;
            }
            if record.name != self.0.name() {
                map.serialize_entry("otel.name", &record.name)?;
            }
            if let Some(kind) = kind_field(&record.kind) {
                map.serialize_entry("otel.kind", kind)?;
            }
            match &record.status {
                Status::Unset => {}
                Status::Ok => map.serialize_entry("otel.status_code", "ok")?,
                Status::Error { description } => {
                    map.serialize_entry("otel.status_code", "error")?;
                    if !description.is_empty() {
                        map.serialize_entry("otel.status_message", description)?;
                    }
                }
            }
        }
        map.serialize_entry("name", self.0.name())?;
        map.end()
    }
}

struct AttributeValue<'a>(&'a Value);

impl Serialize for AttributeValue<'_> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        match self.0 {
            Value::Bool(value) => serializer.serialize_bool(*value),
            Value::I64(value) => serializer.serialize_i64(*value),
            Value::F64(value) => serializer.serialize_f64(*value),
            Value::String(value) => serializer.serialize_str(value.as_str()),
            // Arrays (which spans' fields never make) as their text.
            other => serializer.serialize_str(&other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::trace::v1::ScopeSpans;
    use prost::Message;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;
    use crate::telemetry::batch::Queue;
    use crate::telemetry::layer::{OtlpLayer, suppress_on_this_thread};
    use crate::telemetry::settings::{BatchSettings, Sampler};

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// The lines written, each parsed.
        fn parsed(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
        }
    }

    /// The service's JSON logs with the span recorder, as `init` installs them when exporting.
    fn subscriber(queue: &Arc<Queue>, lines: &Lines) -> impl Subscriber + Send + Sync + use<> {
        let lines = lines.clone();
        let logs = json(move || lines.clone(), true);
        tracing_subscriber::registry().with(logs).with(OtlpLayer::new(Sampler::AlwaysOn, queue.clone()))
    }

    #[test]
    fn a_json_log_line_inside_an_exported_span_names_that_span_and_its_trace() {
        let queue = Arc::new(Queue::new(BatchSettings::default()));
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber(&queue, &lines), || {
            tracing::info!("outside any span");
            let _request = tracing::info_span!("request", url.path = "/api/orders").entered();
            tracing::info!(order = "ORD-001", "inside");
            tracing::info!(parent: None, "in no span, explicitly");
        });
        // The queued bytes are `ScopeSpans.spans` fields: read them as that message.
        let spans = ScopeSpans::decode(&queue.take_batch().spans[..]).unwrap().spans;
        let [request] = &spans[..] else { panic!("one span exported: {spans:?}") };
        let [outside, inside, detached] = &lines.parsed()[..] else { panic!("three lines") };
        for line in [outside, detached] {
            assert_eq!(line.get("trace_id"), None, "no span, no ids: {line}");
            assert_eq!(line.get("span"), None, "{line}");
        }
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        assert!(text.lines().nth(1).unwrap().starts_with(r#"{"trace_id":""#), "the ids lead the line: {text}");
        assert_eq!(inside["trace_id"], hex::encode(&request.trace_id), "{inside}");
        assert_eq!(inside["span_id"], hex::encode(&request.span_id), "{inside}");
        assert_eq!(inside["order"], "ORD-001", "the event's own fields: {inside}");
        let span = serde_json::json!({"url.path": "/api/orders", "name": "request"});
        assert_eq!(inside["span"], span, "{inside}");
        assert_eq!(inside["spans"], serde_json::json!([span]), "{inside}");
        let event = &request.events[0];
        assert_eq!(event.name, "inside", "the log line is also an event of the span");
    }

    /// Lines written inside two spans, with fields of each kind, one recorded after the span
    /// opened (as a request's response status is).
    fn nested_spans_and_a_line() {
        let request = tracing::info_span!(
            "request",
            otel.name = "GET /api/orders/{id}",
            otel.kind = "server",
            url.path = "/api/orders/ORD-001",
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            retried = false,
            share = 0.5,
        );
        let _request = request.enter();
        let order = "ORD-001";
        let visibility = Some("owner");
        let _get = tracing::info_span!("store.get", order = %order, visibility = ?visibility, limit = 10u64).entered();
        request.record("http.response.status_code", 500);
        crate::telemetry::context::record_error(&request, "500");
        tracing::warn!(rows = 1, "read");
    }

    #[test]
    fn span_fields_in_a_line_are_the_same_json_whether_spans_are_exported_or_not() {
        // Not exporting, tracing-subscriber's JSON format writes them; exporting, they are read
        // from the spans' records.
        let plain = Lines::default();
        let writer = plain.clone();
        let logs = json(move || writer.clone(), false);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(logs), nested_spans_and_a_line);
        let exported = Lines::default();
        let queue = Arc::new(Queue::new(BatchSettings::default()));
        tracing::subscriber::with_default(subscriber(&queue, &exported), nested_spans_and_a_line);

        let ([plain], [exported]) = (&plain.parsed()[..], &exported.parsed()[..]) else { panic!("one line each") };
        assert_eq!(plain.get("trace_id"), None, "{plain}");
        assert!(exported["trace_id"].is_string(), "{exported}");
        for key in ["level", "message", "rows", "target", "span", "spans"] {
            assert_eq!(plain[key], exported[key], "`{key}`: {plain} against {exported}");
        }
        assert_eq!(
            exported["spans"][0],
            serde_json::json!({
                "otel.name": "GET /api/orders/{id}",
                "otel.kind": "server",
                "url.path": "/api/orders/ORD-001",
                "http.response.status_code": 500,
                "error.type": "500",
                "otel.status_code": "error",
                "retried": false,
                "share": 0.5,
                "name": "request",
            })
        );
        assert_eq!(
            exported["span"],
            serde_json::json!({"order": "ORD-001", "visibility": "Some(\"owner\")", "limit": 10, "name": "store.get"})
        );
    }

    #[test]
    fn the_exporters_own_threads_record_no_spans() {
        // At RUST_LOG=trace the HTTP client sending a batch makes spans; recorded, they would be
        // exported in the next batch, whose sending makes more, without end.
        let queue = Arc::new(Queue::new(BatchSettings::default()));
        let lines = Lines::default();
        let subscriber = subscriber(&queue, &lines);
        std::thread::spawn(move || {
            suppress_on_this_thread();
            tracing::subscriber::with_default(subscriber, || {
                let _send = tracing::info_span!("hyper.send").entered();
                tracing::info!("sent");
            });
        })
        .join()
        .unwrap();
        assert_eq!(queue.take_batch().count, 0);
        let [line] = &lines.parsed()[..] else { panic!("it still logs") };
        assert_eq!(line["message"], "sent");
        assert_eq!(line.get("trace_id"), None, "no record, no ids: {line}");
        assert_eq!(line["span"], serde_json::json!({"name": "hyper.send"}), "{line}");
    }
}
