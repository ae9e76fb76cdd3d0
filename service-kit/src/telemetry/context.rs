//! W3C Trace Context across the hops: a request's `traceparent`/`tracestate` become the parent
//! of its request span, and every outbound call carries the current span's. The attributes a
//! hop adds to its span go through here too. When traces are not exported nothing is read or
//! written (each function checks one flag), so tracing costs nothing when it is off.

use std::borrow::Cow;
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderValue};
/// An attribute, for [`set_attributes`].
pub use opentelemetry::KeyValue;
use tracing::Span;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

use super::settings::Sampler;
use super::span_record::SpanRecord;
use super::trace_context::{self, Remote};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The sampler, once spans are exported (so: whether they are).
static SAMPLER: OnceLock<Sampler> = OnceLock::new();

/// Set once the OpenTelemetry layer is installed.
pub(super) fn set_exporting(sampler: Sampler) {
    let _ = SAMPLER.set(sampler);
}

/// Whether spans are exported (an OTLP endpoint was configured).
pub fn exporting() -> bool {
    SAMPLER.get().is_some()
}

/// Runs `f` on `span`'s record, if spans are exported and it has one.
fn with_record<R>(span: &Span, f: impl FnOnce(&mut SpanRecord) -> R) -> Option<R> {
    if !exporting() {
        return None;
    }
    span.with_subscriber(|(id, dispatch)| {
        let span = dispatch.downcast_ref::<Registry>()?.span(id)?;
        let mut extensions = span.extensions_mut();
        extensions.get_mut::<SpanRecord>().map(f)
    })
    .flatten()
}

/// Runs `f` on the current span's record (without making a `Span` handle for it).
fn with_current<R>(f: impl FnOnce(&SpanRecord) -> R) -> Option<R> {
    if !exporting() {
        return None;
    }
    let mut f = Some(f);
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let current = tracing::Subscriber::current_span(registry);
        let span = registry.span(current.id()?)?;
        let extensions = span.extensions();
        Some((f.take()?)(extensions.get::<SpanRecord>()?))
    })
}

fn continue_remote(span: &Span, remote: Option<Remote>) {
    if let (Some(remote), Some(sampler)) = (remote, SAMPLER.get()) {
        with_record(span, |record| record.continue_remote(remote, *sampler));
    }
}

/// Makes `span` a child of the trace context `headers` carry (a caller's `traceparent`); a
/// request without one starts a new trace. Call it before the span is first entered.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    if !exporting() {
        return;
    }
    continue_remote(span, remote(headers));
}

/// The caller's trace context in `headers`, if it sent one: none when `traceparent` comes more
/// than once, as the W3C trace-context test suite asks (`test_traceparent_duplicated`: "expects a
/// valid traceparent from the output header, with a newly generated trace_id"); which of them is
/// the caller's cannot be known.
fn remote(headers: &HeaderMap) -> Option<Remote> {
    let mut parents = headers.get_all(TRACEPARENT).iter();
    let (Some(parent), None) = (parents.next(), parents.next()) else { return None };
    let parent = parent.to_str().ok()?;
    // Several `tracestate` headers are one list (W3C Trace Context §3.3.1.1).
    let states: Vec<&str> = headers.get_all(TRACESTATE).iter().filter_map(|v| v.to_str().ok()).collect();
    let state = (!states.is_empty()).then(|| states.join(","));
    trace_context::parse(parent, state.as_deref())
}

/// [`continue_trace`] for a context carried as fields (`traceparent`, `tracestate`) rather than
/// headers: how MCP carries it, in a request's `_meta` (SEP-414: "the keys traceparent,
/// tracestate, and baggage follow W3C Trace Context"). `get` reads one.
pub fn continue_trace_from(span: &Span, get: impl Fn(&str) -> Option<String>) {
    if !exporting() {
        return;
    }
    continue_remote(span, remote_from(get));
}

/// The caller's trace context, read from fields.
fn remote_from(get: impl Fn(&str) -> Option<String>) -> Option<Remote> {
    trace_context::parse(&get(TRACEPARENT)?, get(TRACESTATE).as_deref())
}

/// Makes `span`, a request's server span, also the span of the one operation the request
/// carries, named and described by `operation` (called only when spans are exported),
/// continuing the trace context `get` reads (as [`continue_trace_from`] does). For a protocol
/// that carries trace context in its messages, not in HTTP headers: MCP's `_meta` (SEP-414).
/// OpenTelemetry's MCP conventions parent the MCP server span on that context and make the HTTP
/// transport span optional (semantic-conventions-genai, `docs/gen-ai/mcp.md`, "Recording MCP
/// transport"), so one server span does for both, and the call is not also a one-span trace of
/// its own (rmcp's client, chat-app's, sends no `traceparent` header). A client that sends both
/// gets the span under its `_meta` context, as those conventions parent the MCP span.
///
/// Returns `false`, changing nothing, when spans are exported and `span` has children already:
/// they are in the trace it had, so it keeps that trace, and the caller opens a span of its own
/// for the operation. When nothing is exported there is nothing to do (`true`).
pub fn carry_operation<A: IntoIterator<Item = KeyValue>>(
    span: &Span,
    operation: impl FnOnce() -> (String, A),
    get: impl Fn(&str) -> Option<String>,
) -> bool {
    let Some(sampler) = SAMPLER.get() else { return true };
    let remote = remote_from(get);
    with_record(span, |record| {
        if record.has_children {
            return false;
        }
        let (name, attributes) = operation();
        record.name = Cow::Owned(name);
        attributes.into_iter().for_each(|kv| record.set(kv));
        if let Some(remote) = remote {
            record.continue_remote(remote, *sampler);
        }
        true
    })
    .unwrap_or(false)
}

/// The current span's trace context as fields (`traceparent`, `tracestate`), for a carrier
/// that is not HTTP headers; empty when nothing is exported.
pub fn trace_fields() -> Vec<(String, String)> {
    with_current(|record| {
        let mut fields = vec![(TRACEPARENT.to_owned(), trace_context::traceparent(record.ids, record.sampled))];
        if let Some(state) = &record.trace_state {
            fields.push((TRACESTATE.to_owned(), state.to_string()));
        }
        fields
    })
    .unwrap_or_default()
}

/// The `traceparent` (and `tracestate`) of the current span, for an outbound request; empty
/// when nothing is exported.
pub fn trace_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    with_current(|record| {
        let parent = trace_context::traceparent(record.ids, record.sampled);
        if let Ok(value) = HeaderValue::try_from(parent) {
            headers.insert(TRACEPARENT, value);
        }
        if let Some(Ok(value)) = record.trace_state.as_deref().map(HeaderValue::from_str) {
            headers.insert(TRACESTATE, value);
        }
    });
    headers
}

/// The current span's trace id (32 hex digits), when traces are exported.
pub fn current_trace_id() -> Option<String> {
    with_current(|record| crate::hex::encode(&record.ids.trace_id))
}

/// Sets an attribute on `span` (names need not be declared as `tracing` fields, so one list of
/// names can serve every service). A no-op when nothing is exported.
pub fn set_attribute(span: &Span, key: &'static str, value: impl Into<opentelemetry::Value>) {
    with_record(span, |record| record.set(KeyValue::new(key, value)));
}

/// Sets several attributes on `span` with one lookup of it, where [`set_attribute`] makes one
/// per attribute. A no-op when nothing is exported.
pub fn set_attributes(span: &Span, attributes: impl IntoIterator<Item = KeyValue>) {
    with_record(span, |record| {
        let attributes = attributes.into_iter();
        record.attributes.reserve(attributes.size_hint().0);
        attributes.for_each(|kv| record.set(kv));
    });
}

/// Marks `span` failed as OpenTelemetry records it: `error.type` (a low-cardinality class: a
/// status code, `tool_error`, ...) and an Error status. Through `tracing` fields, which `span`
/// declares (`error.type = Empty, otel.status_code = Empty`), so its log lines say so too,
/// exported or not.
pub fn record_error(span: &Span, error_type: &str) {
    span.record("error.type", error_type);
    span.record("otel.status_code", "error");
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const OTHER: &str = "00-11111111111111111111111111111111-2222222222222222-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn one_traceparent_is_the_parent_and_several_tracestates_are_one_list() {
        let parent = remote(&headers(&[(TRACEPARENT, PARENT), (TRACESTATE, "a=1"), (TRACESTATE, "b=2")])).unwrap();
        assert_eq!(crate::hex::encode(&parent.ids.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(parent.trace_state.as_deref(), Some("a=1,b=2"));
        assert_eq!(remote(&HeaderMap::new()), None);
    }

    #[test]
    fn two_traceparents_start_a_new_trace() {
        // The W3C trace-context test suite (test_traceparent_duplicated) expects a new trace:
        // which of two parents is the caller's cannot be known, even when both are the same.
        for second in [OTHER, PARENT] {
            assert_eq!(remote(&headers(&[(TRACEPARENT, PARENT), (TRACEPARENT, second)])), None, "{second}");
        }
    }
}
