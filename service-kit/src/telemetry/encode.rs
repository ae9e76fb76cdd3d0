//! A batch of spans straight to the bytes of an OTLP `ExportTraceServiceRequest`.
//!
//! opentelemetry-proto's route first copies every span into the generated message structs
//! (each id, name, key and string value into a new `Vec`/`String`), then encodes those: most of
//! the exporting thread's time under load went to the copies. This writes the same protobuf
//! fields (`opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`) directly from
//! the [`SpanRecord`]s, in the order prost would, and skips default-valued scalar fields as
//! proto3 does. A test compares the bytes with prost's encoding of the same message.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value};
use prost::encoding::{WireType, encoded_len_varint, key_len};

use super::span_record::{SpanEvent, SpanRecord};

/// The instrumentation scope every span is exported under: the crate that records them.
const SCOPE: &str = env!("CARGO_PKG_NAME");

/// The resource every span of this process belongs to, as the request carries it.
#[derive(Debug, Default)]
pub struct ResourceFields {
    attributes: Vec<KeyValue>,
}

/// The SDK's own resource attributes, required of every SDK by the semantic conventions
/// ("telemetry.sdk.*": a fork or vendor SDK names itself, not `opentelemetry`).
const SDK: [(&str, &str); 3] = [
    ("telemetry.sdk.name", "service-kit"),
    ("telemetry.sdk.language", "rust"),
    ("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
];

impl ResourceFields {
    /// `service.name` first, then the SDK's attributes, then `OTEL_RESOURCE_ATTRIBUTES`' other
    /// attributes, which replace an SDK attribute of the same name (as the environment's
    /// resource wins over the SDK's default one).
    pub fn new(service_name: &str, attributes: &[(String, String)]) -> ResourceFields {
        let service = KeyValue::new("service.name", service_name.to_owned());
        let sdk =
            SDK.iter().filter(|(key, _)| !attributes.iter().any(|(k, _)| k == key)).map(|(k, v)| KeyValue::new(*k, *v));
        let rest = attributes.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
        ResourceFields { attributes: std::iter::once(service).chain(sdk).chain(rest).collect() }
    }
}

/// One span as the `ScopeSpans.spans` field (tag 2) carries it. Written when the span ends,
/// on the thread that ran it, so a batch is bytes: the span's strings and vectors are freed
/// where they were made, and the exporter copies no span.
pub fn span_field(data: &SpanRecord, buf: &mut Vec<u8>) {
    delimited_header(2, span_len(data), buf);
    span(data, buf);
}

/// The `ExportTraceServiceRequest` around `spans`, spans already written by [`span_field`]:
/// one `ResourceSpans` holding one `ScopeSpans`.
pub fn export_request(spans: &[u8], resource: &ResourceFields) -> Vec<u8> {
    // ScopeSpans: scope = 1 (InstrumentationScope: name = 1), spans = 2 (schema_url = 3 is
    // never set).
    let scope_spans_len = delimited_len(1, string_len(1, SCOPE)) + spans.len();
    // ResourceSpans: resource = 1, scope_spans = 2 (schema_url = 3 is never set)
    let resource_spans_len = delimited_len(1, resource_len(resource)) + delimited_len(2, scope_spans_len);
    let mut buf = Vec::with_capacity(delimited_len(1, resource_spans_len));
    // ExportTraceServiceRequest.resource_spans = 1
    delimited_header(1, resource_spans_len, &mut buf);
    delimited_header(1, resource_len(resource), &mut buf);
    for kv in &resource.attributes {
        key_value(1, kv, &mut buf);
    }
    delimited_header(2, scope_spans_len, &mut buf);
    delimited_header(1, string_len(1, SCOPE), &mut buf);
    string(1, SCOPE, &mut buf);
    buf.extend_from_slice(spans);
    buf
}

/// Resource: attributes = 1 (dropped_attributes_count and entity_refs are never set).
fn resource_len(resource: &ResourceFields) -> usize {
    resource.attributes.iter().map(|kv| key_value_len(1, kv)).sum()
}

/// Span, in tag order as prost writes it: trace_id = 1, span_id = 2, trace_state = 3,
/// parent_span_id = 4, name = 5, kind = 6, start_time_unix_nano = 7, end_time_unix_nano = 8,
/// attributes = 9, dropped_attributes_count = 10, events = 11, dropped_events_count = 12,
/// (links = 13 and dropped_links_count = 14: `tracing` spans have none exported), status = 15
/// (always present), flags = 16.
fn span(data: &SpanRecord, buf: &mut Vec<u8>) {
    bytes(1, &data.ids.trace_id, buf);
    bytes(2, &data.ids.span_id, buf);
    string(3, data.trace_state.as_deref().unwrap_or_default(), buf);
    if let Some(parent) = &data.parent {
        bytes(4, parent, buf);
    }
    string(5, &data.name, buf);
    varint(6, kind(&data.kind), buf);
    fixed64(7, nanos(data.start), buf);
    fixed64(8, nanos(data.end), buf);
    for kv in &data.attributes {
        key_value(9, kv, buf);
    }
    varint(10, u64::from(data.dropped_attributes), buf);
    for e in &data.events {
        delimited_header(11, event_len(e), buf);
        event(e, buf);
    }
    varint(12, u64::from(data.dropped_events), buf);
    delimited_header(15, status_len(&data.status), buf);
    status(&data.status, buf);
    fixed32(16, flags(data), buf);
}

fn span_len(data: &SpanRecord) -> usize {
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + string_len(3, data.trace_state.as_deref().unwrap_or_default())
        + if data.parent.is_some() { delimited_len(4, 8) } else { 0 }
        + string_len(5, &data.name)
        + varint_len(6, kind(&data.kind))
        + fixed64_len(7, nanos(data.start))
        + fixed64_len(8, nanos(data.end))
        + data.attributes.iter().map(|kv| key_value_len(9, kv)).sum::<usize>()
        + varint_len(10, u64::from(data.dropped_attributes))
        + data.events.iter().map(|e| delimited_len(11, event_len(e))).sum::<usize>()
        + varint_len(12, u64::from(data.dropped_events))
        + delimited_len(15, status_len(&data.status))
        + fixed32_len(16, flags(data))
}

/// Span.Event: time_unix_nano = 1, name = 2, attributes = 3 (dropped_attributes_count = 4 is
/// never set).
fn event(e: &SpanEvent, buf: &mut Vec<u8>) {
    fixed64(1, nanos(e.time), buf);
    string(2, &e.name, buf);
    for kv in &e.attributes {
        key_value(3, kv, buf);
    }
}

fn event_len(e: &SpanEvent) -> usize {
    fixed64_len(1, nanos(e.time))
        + string_len(2, &e.name)
        + e.attributes.iter().map(|kv| key_value_len(3, kv)).sum::<usize>()
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

/// The W3C trace flags (only sampled spans are exported: 0x01), plus SpanFlags' "has
/// is-remote" (0x100) and "is remote" (0x200) bits for the parent, as opentelemetry-proto sets
/// them.
fn flags(data: &SpanRecord) -> u32 {
    u32::from(data.sampled) | 0x100 | if data.parent_is_remote { 0x200 } else { 0 }
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

/// prost's varint, for a `Vec` only: the tags and lengths written here nearly all fit in one
/// byte, one `push` each, where prost's generic one (over `BufMut`) was the encoder's largest
/// single cost.
fn encode_varint(mut value: u64, buf: &mut Vec<u8>) {
    while value >= 0x80 {
        buf.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
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
    use std::sync::Arc;
    use std::time::Duration;

    use opentelemetry::StringValue;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue as ProtoKeyValue,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::span::Event as ProtoEvent;
    use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status as ProtoStatus};
    use prost::Message;

    use super::*;
    use crate::telemetry::trace_context::SpanIds;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + ms)
    }

    /// Spans with everything the format has: every value type (negative and zero numbers, an
    /// empty string, arrays), events, dropped counts, each status and kind, a remote parent, a
    /// trace state, a root span.
    fn batch() -> Vec<SpanRecord> {
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
        let first = SpanRecord {
            ids: SpanIds {
                trace_id: 0x0af7651916cd43dd8448eb211c80319c_u128.to_be_bytes(),
                span_id: 0xb7ad6b7169203331_u64.to_be_bytes(),
            },
            parent: Some(0x00f067aa0ba902b7_u64.to_be_bytes()),
            parent_is_remote: true,
            sampled: true,
            trace_state: Some(Arc::from("vendor=rojo")),
            has_children: false,
            name: Cow::Borrowed("POST /mcp"),
            kind: SpanKind::Server,
            start: at(0),
            end: at(5),
            attributes,
            dropped_attributes: 4,
            events: vec![SpanEvent {
                time: at(3),
                name: Cow::Owned("refused".into()),
                attributes: vec![KeyValue::new("reason", "wrong-audience")],
            }],
            dropped_events: 1,
            status: Status::error("wrong audience"),
        };
        let second = SpanRecord {
            ids: SpanIds { trace_id: 9_u128.to_be_bytes(), span_id: 10_u64.to_be_bytes() },
            parent: None,
            parent_is_remote: false,
            trace_state: None,
            name: Cow::Borrowed("store.get"),
            kind: SpanKind::Internal,
            start: at(1),
            end: at(2),
            attributes: vec![],
            dropped_attributes: 0,
            events: vec![],
            dropped_events: 0,
            status: Status::Ok,
            ..first.clone()
        };
        let third =
            SpanRecord { kind: SpanKind::Client, status: Status::Unset, parent_is_remote: false, ..first.clone() };
        let rest = [SpanKind::Producer, SpanKind::Consumer].map(|kind| SpanRecord { kind, ..second.clone() });
        [vec![first, second, third], rest.to_vec()].concat()
    }

    fn proto_value(value: &Value) -> AnyValue {
        let value = match value {
            Value::Bool(b) => Any::BoolValue(*b),
            Value::I64(i) => Any::IntValue(*i),
            Value::F64(f) => Any::DoubleValue(*f),
            Value::String(s) => Any::StringValue(s.to_string()),
            Value::Array(array) => {
                let mut values = Vec::new();
                each_element(array, |v| values.push(proto_value(&v)));
                Any::ArrayValue(ArrayValue { values })
            }
            _ => unreachable!("only the types above are made"),
        };
        AnyValue { value: Some(value) }
    }

    fn proto_attributes(attributes: &[KeyValue]) -> Vec<ProtoKeyValue> {
        attributes
            .iter()
            .map(|kv| ProtoKeyValue {
                key: kv.key.to_string(),
                value: Some(proto_value(&kv.value)),
                ..ProtoKeyValue::default()
            })
            .collect()
    }

    /// The same spans as opentelemetry-proto's generated messages, field by field from the
    /// OTLP definitions (what `opentelemetry-otlp` would send).
    fn proto_span(data: &SpanRecord) -> Span {
        let (message, code) = match &data.status {
            Status::Error { description } => (description.to_string(), StatusCode::Error),
            Status::Ok => (String::new(), StatusCode::Ok),
            Status::Unset => (String::new(), StatusCode::Unset),
        };
        Span {
            trace_id: data.ids.trace_id.to_vec(),
            span_id: data.ids.span_id.to_vec(),
            trace_state: data.trace_state.as_deref().unwrap_or_default().to_owned(),
            parent_span_id: data.parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: 1 | 0x100 | if data.parent_is_remote { 0x200 } else { 0 },
            name: data.name.to_string(),
            kind: kind(&data.kind) as i32,
            start_time_unix_nano: nanos(data.start),
            end_time_unix_nano: nanos(data.end),
            attributes: proto_attributes(&data.attributes),
            dropped_attributes_count: data.dropped_attributes,
            events: data
                .events
                .iter()
                .map(|e| ProtoEvent {
                    time_unix_nano: nanos(e.time),
                    name: e.name.to_string(),
                    attributes: proto_attributes(&e.attributes),
                    dropped_attributes_count: 0,
                })
                .collect(),
            dropped_events_count: data.dropped_events,
            links: vec![],
            dropped_links_count: 0,
            status: Some(ProtoStatus { message, code: code as i32 }),
        }
    }

    #[test]
    fn the_bytes_are_what_prost_writes_for_the_same_otlp_message() {
        // Byte for byte: field order, proto3's omission of defaults and every value type as
        // prost writes the generated messages, so a collector receives exactly what the
        // opentelemetry-proto route would send.
        let spans = batch();
        let resource = ResourceFields::new("orders-mcp", &[("deployment.environment.name".into(), "test".into())]);
        let theirs = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource { attributes: proto_attributes(&resource.attributes), ..Resource::default() }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: SCOPE.into(), ..InstrumentationScope::default() }),
                    spans: spans.iter().map(proto_span).collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let mut written = Vec::new();
        for data in &spans {
            span_field(data, &mut written);
        }
        assert_eq!(export_request(&written, &resource), theirs.encode_to_vec());
    }

    #[test]
    fn the_resource_names_the_service_and_the_sdk() {
        let keys = |resource: &ResourceFields| {
            resource.attributes.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect::<Vec<_>>()
        };
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            keys(&ResourceFields::new("orders-api", &[("deployment.environment.name".into(), "dev".into())])),
            [
                "service.name=orders-api".to_string(),
                "telemetry.sdk.name=service-kit".into(),
                "telemetry.sdk.language=rust".into(),
                format!("telemetry.sdk.version={version}"),
                "deployment.environment.name=dev".into(),
            ]
        );
        // The environment's value wins, once.
        let named = ResourceFields::new("orders-api", &[("telemetry.sdk.name".into(), "mine".into())]);
        assert_eq!(
            keys(&named).iter().filter(|k| k.starts_with("telemetry.sdk.name=")).collect::<Vec<_>>(),
            ["telemetry.sdk.name=mine"]
        );
    }
}
