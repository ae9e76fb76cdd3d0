//! W3C Trace Context across the hops: a request's `traceparent`/`tracestate` become the parent
//! of its request span, and every outbound call carries the current span's. When traces are not
//! exported nothing is read or written, so tracing costs nothing when it is off.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
/// An attribute, for [`set_attributes`].
pub use opentelemetry::KeyValue;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Set once the OpenTelemetry layer is installed.
pub(super) fn set_exporting() {
    EXPORTING.store(true, Ordering::Release);
}

/// Whether spans are exported (an OTLP endpoint was configured).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Acquire)
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the trace context `headers` carry (a caller's `traceparent`); a
/// request without one starts a new trace.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !exporting() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The W3C Trace Context fields, as a map: how MCP carries them, in a request's `_meta`
/// (SEP-414: "the keys traceparent, tracestate, and baggage follow W3C Trace Context").
struct Fields(Vec<(String, String)>);

impl Extractor for Fields {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

impl Injector for Fields {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

/// [`continue_trace`] for a context carried as fields (`traceparent`, `tracestate`) rather than
/// headers: `get` reads one. Call it before the span is first entered (the parent of a started
/// span cannot change).
pub fn continue_trace_from(span: &Span, get: impl Fn(&str) -> Option<String>) {
    if !exporting() {
        return;
    }
    let fields = TraceContextPropagator::new().fields().filter_map(|k| Some((k.to_string(), get(k)?))).collect();
    let parent = TraceContextPropagator::new().extract(&Fields(fields));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current span's trace context as fields (`traceparent`, `tracestate`), for a carrier
/// that is not HTTP headers; empty when nothing is exported.
pub fn trace_fields() -> Vec<(String, String)> {
    let mut fields = Fields(Vec::new());
    if exporting() {
        TraceContextPropagator::new().inject_context(&Span::current().context(), &mut fields);
    }
    fields.0
}

/// The `traceparent` (and `tracestate`) of the current span, for an outbound request; empty
/// when nothing is exported.
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    if exporting() {
        TraceContextPropagator::new().inject_context(&Span::current().context(), &mut HeadersMut(&mut headers));
    }
    headers
}

/// The current span's trace id (32 hex digits), when traces are exported.
pub fn current_trace_id() -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Sets an attribute on `span` (names need not be declared as `tracing` fields, so one list of
/// names can serve every service). A no-op when nothing is exported.
pub fn set_attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    if exporting() {
        span.set_attribute(key, value);
    }
}

/// Sets several attributes on `span` with one lookup of it, where [`set_attribute`] makes one
/// per attribute. A no-op when nothing is exported.
pub fn set_attributes(span: &Span, attributes: impl IntoIterator<Item = KeyValue>) {
    if exporting() {
        span.context().span().set_attributes(attributes);
    }
}

/// Marks `span` as failed in the trace, with a reason for people (never a token).
pub fn set_error(span: &Span, description: impl Into<String>) {
    if exporting() {
        span.set_status(opentelemetry::trace::Status::error(description.into()));
    }
}
