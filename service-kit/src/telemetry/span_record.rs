//! One span as it is exported: what the layer ([`super::layer`]) records while the span is
//! open, what the batch queue holds and what the encoder writes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status};

use super::settings::Sampler;
use super::trace_context::{Remote, SpanIds};

/// The OpenTelemetry SDK's default limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT,
/// OTEL_SPAN_EVENT_COUNT_LIMIT, OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT): past them a span keeps
/// counting what it dropped, so a noisy span cannot grow without bound.
pub const MAX_ATTRIBUTES: usize = 128;
pub const MAX_EVENTS: usize = 128;

/// One span as it will be exported.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub ids: SpanIds,
    pub parent: Option<[u8; 8]>,
    pub parent_is_remote: bool,
    pub sampled: bool,
    /// The caller's `tracestate`, passed on unchanged to this trace's spans and calls.
    pub trace_state: Option<Arc<str>>,
    /// Whether a span has been opened under this one: its trace is then settled (a child keeps
    /// the trace id it was given).
    pub has_children: bool,
    pub name: Cow<'static, str>,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes: u32,
    pub events: Vec<SpanEvent>,
    pub dropped_events: u32,
    pub status: Status,
}

#[derive(Clone, Debug)]
pub struct SpanEvent {
    pub time: SystemTime,
    pub name: Cow<'static, str>,
    pub attributes: Vec<KeyValue>,
}

impl SpanRecord {
    /// Sets an attribute, replacing one of the same name (OpenTelemetry's `SetAttribute`).
    pub fn set(&mut self, kv: KeyValue) {
        if let Some(existing) = self.attributes.iter_mut().find(|a| a.key.as_str() == kv.key.as_str()) {
            existing.value = kv.value;
        } else if self.attributes.len() < MAX_ATTRIBUTES {
            self.attributes.push(kv);
        } else {
            self.dropped_attributes += 1;
        }
    }

    /// Makes this span a child of a caller's span (before it has children of its own).
    pub fn continue_remote(&mut self, remote: Remote, sampler: Sampler) {
        self.ids.trace_id = remote.ids.trace_id;
        self.parent = Some(remote.ids.span_id);
        self.parent_is_remote = true;
        self.sampled = sampler.samples(Some(remote.sampled), &remote.ids.trace_id);
        self.trace_state = remote.trace_state;
    }
}
