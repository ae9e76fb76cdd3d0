//! A batch of spans straight to the bytes of an OTLP `ExportTraceServiceRequest`.
//!
//! opentelemetry-proto's route first copies every span into the generated message structs
//! (each id, name, key and string value into a new `Vec`/`String`), then encodes those: most of
//! the exporting thread's time under load went to the copies. This writes the same protobuf
//! fields (`opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`) directly from
//! the SDK's `SpanData`, in the order prost would, and skips default-valued scalar fields as
//! proto3 does. A test compares the bytes with opentelemetry-proto's for the same spans.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

/// The resource every span of this process belongs to, as the request carries it.
#[derive(Debug, Default)]
pub struct ResourceFields {
    attributes: Vec<KeyValue>,
    schema_url: String,
}

impl From<&Resource> for ResourceFields {
    fn from(resource: &Resource) -> Self {
        ResourceFields {
            attributes: resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect(),
            schema_url: resource.schema_url().unwrap_or_default().to_owned(),
        }
    }
}

/// The `ExportTraceServiceRequest`: one `ResourceSpans` holding one `ScopeSpans` per
/// instrumentation scope, in the order the scopes first appear in the batch.
pub fn export_request(spans: &[SpanData], resource: &ResourceFields) -> Vec<u8> {
    let mut scopes: Vec<(&InstrumentationScope, Vec<&SpanData>)> = Vec::new();
    for span in spans {
        match scopes.iter_mut().find(|(scope, _)| *scope == &span.instrumentation_scope) {
            Some((_, members)) => members.push(span),
            None => scopes.push((&span.instrumentation_scope, vec![span])),
        }
    }
    let resource_spans_len = resource_spans_len(resource, &scopes);
    let mut buf = Vec::with_capacity(delimited_len(1, resource_spans_len));
    // ExportTraceServiceRequest.resource_spans = 1
    delimited_header(1, resource_spans_len, &mut buf);
    // ResourceSpans: resource = 1, scope_spans = 2, schema_url = 3
    delimited_header(1, resource_len(resource), &mut buf);
    for kv in &resource.attributes {
        key_value(1, kv, &mut buf);
    }
    for (scope, members) in &scopes {
        delimited_header(2, scope_spans_len(scope, members), &mut buf);
        scope_spans(scope, members, &mut buf);
    }
    string(3, &resource.schema_url, &mut buf);
    buf
}

fn resource_spans_len(resource: &ResourceFields, scopes: &[(&InstrumentationScope, Vec<&SpanData>)]) -> usize {
    delimited_len(1, resource_len(resource))
        + scopes.iter().map(|(scope, members)| delimited_len(2, scope_spans_len(scope, members))).sum::<usize>()
        + string_len(3, &resource.schema_url)
}

/// Resource: attributes = 1 (dropped_attributes_count and entity_refs are never set).
fn resource_len(resource: &ResourceFields) -> usize {
    resource.attributes.iter().map(|kv| key_value_len(1, kv)).sum()
}

/// ScopeSpans: scope = 1, spans = 2, schema_url = 3.
fn scope_spans(scope: &InstrumentationScope, spans: &[&SpanData], buf: &mut Vec<u8>) {
    delimited_header(1, scope_len(scope), buf);
    string(1, scope.name(), buf);
    string(2, scope.version().unwrap_or_default(), buf);
    for kv in scope.attributes() {
        key_value(3, kv, buf);
    }
    for data in spans {
        delimited_header(2, span_len(data), buf);
        span(data, buf);
    }
    string(3, scope.schema_url().unwrap_or_default(), buf);
}

fn scope_spans_len(scope: &InstrumentationScope, spans: &[&SpanData]) -> usize {
    delimited_len(1, scope_len(scope))
        + spans.iter().map(|data| delimited_len(2, span_len(data))).sum::<usize>()
        + string_len(3, scope.schema_url().unwrap_or_default())
}

/// InstrumentationScope: name = 1, version = 2, attributes = 3.
fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + scope.attributes().map(|kv| key_value_len(3, kv)).sum::<usize>()
}

/// Span, in tag order as prost writes it: trace_id = 1, span_id = 2, trace_state = 3,
/// parent_span_id = 4, name = 5, kind = 6, start_time_unix_nano = 7, end_time_unix_nano = 8,
/// attributes = 9, dropped_attributes_count = 10, events = 11, dropped_events_count = 12,
/// links = 13, dropped_links_count = 14, status = 15 (always present), flags = 16.
fn span(data: &SpanData, buf: &mut Vec<u8>) {
    let context = &data.span_context;
    bytes(1, &context.trace_id().to_bytes(), buf);
    bytes(2, &context.span_id().to_bytes(), buf);
    string(3, &context.trace_state().header(), buf);
    if data.parent_span_id != SpanId::INVALID {
        bytes(4, &data.parent_span_id.to_bytes(), buf);
    }
    string(5, &data.name, buf);
    varint(6, kind(&data.span_kind), buf);
    fixed64(7, nanos(data.start_time), buf);
    fixed64(8, nanos(data.end_time), buf);
    for kv in &data.attributes {
        key_value(9, kv, buf);
    }
    varint(10, u64::from(data.dropped_attributes_count), buf);
    for e in data.events.iter() {
        delimited_header(11, event_len(e), buf);
        event(e, buf);
    }
    varint(12, u64::from(data.events.dropped_count), buf);
    for l in data.links.iter() {
        delimited_header(13, link_len(l), buf);
        link(l, buf);
    }
    varint(14, u64::from(data.links.dropped_count), buf);
    delimited_header(15, status_len(&data.status), buf);
    status(&data.status, buf);
    fixed32(16, flags(context, data.parent_span_is_remote), buf);
}

fn span_len(data: &SpanData) -> usize {
    let context = &data.span_context;
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + string_len(3, &context.trace_state().header())
        + if data.parent_span_id != SpanId::INVALID { delimited_len(4, 8) } else { 0 }
        + string_len(5, &data.name)
        + varint_len(6, kind(&data.span_kind))
        + fixed64_len(7, nanos(data.start_time))
        + fixed64_len(8, nanos(data.end_time))
        + data.attributes.iter().map(|kv| key_value_len(9, kv)).sum::<usize>()
        + varint_len(10, u64::from(data.dropped_attributes_count))
        + data.events.iter().map(|e| delimited_len(11, event_len(e))).sum::<usize>()
        + varint_len(12, u64::from(data.events.dropped_count))
        + data.links.iter().map(|l| delimited_len(13, link_len(l))).sum::<usize>()
        + varint_len(14, u64::from(data.links.dropped_count))
        + delimited_len(15, status_len(&data.status))
        + fixed32_len(16, flags(context, data.parent_span_is_remote))
}

/// Span.Event: time_unix_nano = 1, name = 2, attributes = 3, dropped_attributes_count = 4.
fn event(e: &Event, buf: &mut Vec<u8>) {
    fixed64(1, nanos(e.timestamp), buf);
    string(2, &e.name, buf);
    for kv in &e.attributes {
        key_value(3, kv, buf);
    }
    varint(4, u64::from(e.dropped_attributes_count), buf);
}

fn event_len(e: &Event) -> usize {
    fixed64_len(1, nanos(e.timestamp))
        + string_len(2, &e.name)
        + e.attributes.iter().map(|kv| key_value_len(3, kv)).sum::<usize>()
        + varint_len(4, u64::from(e.dropped_attributes_count))
}

/// Span.Link: trace_id = 1, span_id = 2, trace_state = 3, attributes = 4,
/// dropped_attributes_count = 5, flags = 6.
fn link(l: &Link, buf: &mut Vec<u8>) {
    let context = &l.span_context;
    bytes(1, &context.trace_id().to_bytes(), buf);
    bytes(2, &context.span_id().to_bytes(), buf);
    string(3, &context.trace_state().header(), buf);
    for kv in &l.attributes {
        key_value(4, kv, buf);
    }
    varint(5, u64::from(l.dropped_attributes_count), buf);
    fixed32(6, flags(context, context.is_remote()), buf);
}

fn link_len(l: &Link) -> usize {
    let context = &l.span_context;
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + string_len(3, &context.trace_state().header())
        + l.attributes.iter().map(|kv| key_value_len(4, kv)).sum::<usize>()
        + varint_len(5, u64::from(l.dropped_attributes_count))
        + fixed32_len(6, flags(context, context.is_remote()))
}

/// Status: message = 2, code = 3 (UNSET 0, OK 1, ERROR 2).
fn status(s: &Status, buf: &mut Vec<u8>) {
    let (message, code) = status_fields(s);
    string(2, message, buf);
    varint(3, code, buf);
}

fn status_len(s: &Status) -> usize {
    let (message, code) = status_fields(s);
    string_len(2, message) + varint_len(3, code)
}

fn status_fields(s: &Status) -> (&str, u64) {
    match s {
        Status::Error { description } => (description, 2),
        Status::Ok => ("", 1),
        _ => ("", 0),
    }
}

/// SpanKind: INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5.
fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// The W3C trace flags, plus SpanFlags' "has is-remote" (0x100) and "is remote" (0x200) bits
/// for the parent, as opentelemetry-proto sets them.
fn flags(context: &SpanContext, parent_is_remote: bool) -> u32 {
    u32::from(context.trace_flags().to_u8()) | 0x100 | if parent_is_remote { 0x200 } else { 0 }
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// KeyValue: key = 1, value = 2 (an AnyValue, always present).
fn key_value(tag: u32, kv: &KeyValue, buf: &mut Vec<u8>) {
    let key = kv.key.as_str();
    delimited_header(tag, string_len(1, key) + delimited_len(2, any_len(&kv.value)), buf);
    string(1, key, buf);
    delimited_header(2, any_len(&kv.value), buf);
    any(&kv.value, buf);
}

fn key_value_len(tag: u32, kv: &KeyValue) -> usize {
    delimited_len(tag, string_len(1, kv.key.as_str()) + delimited_len(2, any_len(&kv.value)))
}

/// AnyValue, a oneof (written even when it holds a default): string_value = 1, bool_value = 2,
/// int_value = 3, double_value = 4, array_value = 5 (ArrayValue: values = 1).
fn any(value: &Value, buf: &mut Vec<u8>) {
    match value {
        Value::String(s) => bytes(1, s.as_str().as_bytes(), buf),
        Value::Bool(b) => {
            encode_key(2, WireType::Varint, buf);
            encode_varint(u64::from(*b), buf);
        }
        Value::I64(i) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(i64_bits(*i), buf);
        }
        Value::F64(f) => {
            encode_key(4, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => {
            delimited_header(5, array_len(array), buf);
            each_element(array, |element| {
                delimited_header(1, any_len(&element), buf);
                any(&element, buf);
            });
        }
        // A value type newer than this encoder: an empty AnyValue, as opentelemetry-proto
        // cannot convert it either.
        _ => {}
    }
}

fn any_len(value: &Value) -> usize {
    match value {
        Value::String(s) => delimited_len(1, s.as_str().len()),
        Value::Bool(_) => key_len(2) + 1,
        Value::I64(i) => key_len(3) + encoded_len_varint(i64_bits(*i)),
        Value::F64(_) => key_len(4) + 8,
        Value::Array(array) => delimited_len(5, array_len(array)),
        _ => 0,
    }
}

fn array_len(array: &Array) -> usize {
    let mut len = 0;
    each_element(array, |element| len += delimited_len(1, any_len(&element)));
    len
}

/// The elements of an array attribute as values (cheap: string values are reference-counted
/// or static).
fn each_element(array: &Array, mut f: impl FnMut(Value)) {
    match array {
        Array::Bool(values) => values.iter().for_each(|v| f(Value::Bool(*v))),
        Array::I64(values) => values.iter().for_each(|v| f(Value::I64(*v))),
        Array::F64(values) => values.iter().for_each(|v| f(Value::F64(*v))),
        Array::String(values) => values.iter().for_each(|v| f(Value::String(v.clone()))),
        _ => {}
    }
}

/// An int64 on the wire: two's complement as a 64-bit varint.
fn i64_bits(i: i64) -> u64 {
    u64::from_ne_bytes(i.to_ne_bytes())
}

fn delimited_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn bytes(tag: u32, value: &[u8], buf: &mut Vec<u8>) {
    delimited_header(tag, value.len(), buf);
    buf.extend_from_slice(value);
}

/// A proto3 string field: omitted when empty.
fn string(tag: u32, value: &str, buf: &mut Vec<u8>) {
    if !value.is_empty() {
        bytes(tag, value.as_bytes(), buf);
    }
}

fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() { 0 } else { delimited_len(tag, value.len()) }
}

fn varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + encoded_len_varint(value) }
}

fn fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed64_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 8 }
}

fn fixed32(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32_len(tag: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 4 }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, TraceFlags, TraceId, TraceState};
    use opentelemetry::{InstrumentationScope, KeyValue, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + ms)
    }

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        let state = TraceState::from_key_value([("vendor", state)]).unwrap_or_default();
        SpanContext::new(TraceId::from(trace), SpanId::from(span), TraceFlags::SAMPLED, remote, state)
    }

    /// Spans with everything the format has: every value type (negative and zero numbers, an
    /// empty string, arrays), events, links, each status, a remote parent, a trace state, two
    /// instrumentation scopes and an unsampled span.
    fn batch() -> Vec<SpanData> {
        let orders = InstrumentationScope::builder("orders-mcp")
            .with_version("0.1.0")
            .with_attributes([KeyValue::new("scope.attr", true)])
            .build();
        let other =
            InstrumentationScope::builder("other").with_schema_url("https://opentelemetry.io/schemas/1.30.0").build();
        let attributes = vec![
            KeyValue::new("enduser.id", "11111111-2222-3333-4444-555555555555"),
            KeyValue::new("empty", ""),
            KeyValue::new("allowed", false),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("negative", -42_i64),
            KeyValue::new("zero", 0_i64),
            KeyValue::new("ratio", 0.25),
            KeyValue::new("scopes", Value::Array(Array::String(vec![StringValue::from("Orders.Read"), "x".into()]))),
            KeyValue::new("flags", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("counts", Value::Array(Array::I64(vec![-1, 0, 7]))),
            KeyValue::new("weights", Value::Array(Array::F64(vec![1.5]))),
        ];
        let mut events = SpanEvents::default();
        events.events.push(Event::new("refused", at(3), vec![KeyValue::new("reason", "wrong-audience")], 2));
        events.dropped_count = 1;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(context(7, 8, true, "l"), vec![KeyValue::new("link.attr", 1_i64)], 3));
        let first = SpanData {
            span_context: context(0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, false, "rojo"),
            parent_span_id: SpanId::from(0x00f067aa0ba902b7),
            parent_span_is_remote: true,
            span_kind: SpanKind::Server,
            name: Cow::Borrowed("POST /mcp"),
            start_time: at(0),
            end_time: at(5),
            attributes,
            dropped_attributes_count: 4,
            events,
            links,
            status: Status::error("wrong audience"),
            instrumentation_scope: orders.clone(),
        };
        let second = SpanData {
            span_context: SpanContext::new(
                TraceId::from(9),
                SpanId::from(10),
                TraceFlags::default(),
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Owned("store.get".into()),
            start_time: at(1),
            end_time: at(2),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Ok,
            instrumentation_scope: other,
        };
        let mut third = first.clone();
        third.span_kind = SpanKind::Client;
        third.status = Status::Unset;
        third.parent_span_is_remote = false;
        let mut rest =
            [SpanKind::Producer, SpanKind::Consumer].map(|kind| SpanData { span_kind: kind, ..second.clone() });
        rest[0].instrumentation_scope = orders;
        vec![first, second, third, rest[0].clone(), rest[1].clone()]
    }

    #[test]
    fn the_bytes_are_what_opentelemetry_proto_sends_for_the_same_spans() {
        // Byte for byte: field order, proto3's omission of defaults and every value type as
        // prost writes the generated messages, so a collector receives exactly what the
        // opentelemetry-proto route would have sent.
        let resource = Resource::builder_empty()
            .with_service_name("orders-mcp")
            .with_attribute(KeyValue::new("deployment.environment.name", "test"))
            .with_schema_url(Vec::<KeyValue>::new(), "https://opentelemetry.io/schemas/1.30.0")
            .build();
        let spans = batch();
        let theirs = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans.clone(),
                &ResourceAttributesWithSchema::from(&resource),
            ),
        };
        assert_eq!(export_request(&spans, &ResourceFields::from(&resource)), theirs.encode_to_vec());
    }
}
