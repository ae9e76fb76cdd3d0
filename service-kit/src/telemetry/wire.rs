//! Protobuf's wire format for what OTLP messages are made of: tags, varints, length-delimited
//! fields, and `common/v1/common.proto`'s `KeyValue` and `AnyValue`, written as prost writes
//! them (proto3: default-valued scalars omitted). [`super::encode`] builds the trace messages
//! from these; a span's attributes ([`super::span_record::Attributes`]) are written with them
//! as they are set.

use std::ops::Range;

use opentelemetry::{Array, KeyValue, Value};
use prost::encoding::{WireType, decode_varint, encoded_len_varint, key_len};

/// The tag of `Span.attributes`.
const SPAN_ATTRIBUTES: u32 = 9;

/// One attribute as a `Span.attributes` field, the bytes `encode::span_field` sends for it.
pub fn attribute(key: &str, value: &Value, buf: &mut Vec<u8>) {
    key_value_parts(SPAN_ATTRIBUTES, key, value, buf);
}

/// A string attribute whose value is `parts` joined by `separator`, as a `Span.attributes`
/// field: the same bytes as [`attribute`] with the joined string, without joining them first.
pub fn joined_attribute<S: AsRef<str>>(key: &str, parts: &[S], separator: &str, buf: &mut Vec<u8>) {
    let text_len =
        parts.iter().map(|p| p.as_ref().len()).sum::<usize>() + separator.len() * parts.len().saturating_sub(1);
    // AnyValue.string_value = 1, written even when empty (it is a oneof).
    let any_len = delimited_len(1, text_len);
    delimited_header(SPAN_ATTRIBUTES, string_len(1, key) + delimited_len(2, any_len), buf);
    string(1, key, buf);
    delimited_header(2, any_len, buf);
    delimited_header(1, text_len, buf);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(separator.as_bytes());
        }
        buf.extend_from_slice(part.as_ref().as_bytes());
    }
}

/// The attributes [`attribute`] and [`joined_attribute`] wrote into `bytes`: each one's key
/// and the range of its field.
pub fn attribute_fields(bytes: &[u8]) -> impl Iterator<Item = (&[u8], Range<usize>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let start = at;
        // The field's key (one byte for tag 9), its length, then the KeyValue.
        let mut rest = bytes.get(start + 1..)?;
        let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
        let body_start = bytes.len() - rest.len();
        let body = rest.get(..len)?;
        at = body_start + len;
        // KeyValue.key = 1 is omitted when empty.
        let key = match body.split_first() {
            Some((&0x0a, mut rest)) => {
                let key_len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                rest.get(..key_len)?
            }
            _ => &[],
        };
        Some((key, start..at))
    })
}

/// KeyValue: key = 1, value = 2 (an AnyValue, always present).
pub(super) fn key_value(tag: u32, kv: &KeyValue, buf: &mut Vec<u8>) {
    key_value_parts(tag, kv.key.as_str(), &kv.value, buf);
}

pub(super) fn key_value_parts(tag: u32, key: &str, value: &Value, buf: &mut Vec<u8>) {
    let value_len = any_len(value);
    delimited_header(tag, string_len(1, key) + delimited_len(2, value_len), buf);
    string(1, key, buf);
    delimited_header(2, value_len, buf);
    any(value, buf);
}

pub(super) fn key_value_len(tag: u32, kv: &KeyValue) -> usize {
    delimited_len(tag, string_len(1, kv.key.as_str()) + delimited_len(2, any_len(&kv.value)))
}

/// AnyValue, a oneof (written even when it holds a default): string_value = 1, bool_value = 2,
/// int_value = 3, double_value = 4, array_value = 5 (ArrayValue: values = 1).
pub(super) fn any(value: &Value, buf: &mut Vec<u8>) {
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

pub(super) fn any_len(value: &Value) -> usize {
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
pub(super) fn each_element(array: &Array, mut f: impl FnMut(Value)) {
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

pub(super) fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    encode_varint(u64::from(tag << 3 | wire_type as u32), buf);
}

pub(super) fn delimited_header(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

pub(super) fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

pub(super) fn bytes(tag: u32, value: &[u8], buf: &mut Vec<u8>) {
    delimited_header(tag, value.len(), buf);
    buf.extend_from_slice(value);
}

/// A proto3 string field: omitted when empty.
pub(super) fn string(tag: u32, value: &str, buf: &mut Vec<u8>) {
    if !value.is_empty() {
        bytes(tag, value.as_bytes(), buf);
    }
}

pub(super) fn string_len(tag: u32, value: &str) -> usize {
    if value.is_empty() { 0 } else { delimited_len(tag, value.len()) }
}

pub(super) fn varint(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

pub(super) fn varint_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + encoded_len_varint(value) }
}

pub(super) fn fixed64(tag: u32, value: u64, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

pub(super) fn fixed64_len(tag: u32, value: u64) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 8 }
}

pub(super) fn fixed32(tag: u32, value: u32, buf: &mut Vec<u8>) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

pub(super) fn fixed32_len(tag: u32, value: u32) -> usize {
    if value == 0 { 0 } else { key_len(tag) + 4 }
}
