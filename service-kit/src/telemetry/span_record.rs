//! One span as it is exported: what the layer ([`super::layer`]) records while the span is
//! open, what the batch queue holds and what the encoder writes.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};

use super::settings::Sampler;
use super::trace_context::{Remote, SpanIds};
use super::wire;

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
    pub attributes: Attributes,
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
    /// Makes this span a child of a caller's span (before it has children of its own).
    pub fn continue_remote(&mut self, remote: Remote, sampler: Sampler) {
        self.ids.trace_id = remote.ids.trace_id;
        self.parent = Some(remote.ids.span_id);
        self.parent_is_remote = true;
        self.sampled = sampler.samples(Some(remote.sampled), &remote.ids.trace_id);
        self.trace_state = remote.trace_state;
    }
}

/// A span's attributes, kept as the OTLP bytes they are sent as (`Span.attributes` fields, in
/// the order set): an attribute is written once, when it is set, with no string or vector of
/// its own to allocate and free, and ending the span copies the bytes. A hop sets a dozen
/// string attributes on every request; as `KeyValue`s each was a copy, a free and a second
/// pass to encode.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    bytes: Vec<u8>,
    count: usize,
    dropped: u32,
    /// One bit (of 128) per key's hash: a key whose bit is clear has not been set, so most
    /// attributes are appended without reading the others for one to replace (a request span
    /// with a hop's identity has about 16).
    keys: u128,
}

impl Attributes {
    pub fn with_capacity(bytes: usize) -> Attributes {
        Attributes { bytes: Vec::with_capacity(bytes), ..Attributes::default() }
    }

    /// Sets an attribute, replacing one of the same key (OpenTelemetry's `SetAttribute`).
    pub fn set(&mut self, key: &str, value: &Value) {
        self.write(key, |buf| wire::attribute(key, value, buf));
    }

    /// [`set`](Self::set) for a string value.
    pub fn set_str(&mut self, key: &str, value: &str) {
        self.set_joined(key, &[value], "");
    }

    /// [`set`](Self::set) for a string value made of `parts` joined by `separator`.
    pub fn set_joined<S: AsRef<str>>(&mut self, key: &str, parts: &[S], separator: &str) {
        self.write(key, |buf| wire::joined_attribute(key, parts, separator, buf));
    }

    fn write(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        let bit = key_bit(key);
        let existing = if self.keys & bit == 0 {
            None
        } else {
            wire::attribute_fields(&self.bytes).find(|(k, _)| *k == key.as_bytes()).map(|(_, field)| field)
        };
        match existing {
            // The new value goes last; attributes are a map, their order means nothing.
            Some(field) => drop(self.bytes.drain(field)),
            None if self.count >= MAX_ATTRIBUTES => {
                self.dropped += 1;
                return;
            }
            None => self.count += 1,
        }
        self.keys |= bit;
        write(&mut self.bytes);
    }

    /// The `Span.attributes` fields.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many were not kept (past [`MAX_ATTRIBUTES`]).
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
impl FromIterator<KeyValue> for Attributes {
    fn from_iter<I: IntoIterator<Item = KeyValue>>(attributes: I) -> Attributes {
        let mut set = Attributes::default();
        attributes.into_iter().for_each(|kv| set.set(kv.key.as_str(), &kv.value));
        set
    }
}

/// A key's bit in [`Attributes::keys`], from its length and last 8 bytes (where names that
/// share a prefix, `identity.*`, differ), with one multiplication: a hash over every byte cost
/// more than the scan it saves.
fn key_bit(key: &str) -> u128 {
    let bytes = key.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    let mut word = [0; 8];
    word[..tail.len()].copy_from_slice(tail);
    let hash = (u64::from_le_bytes(word) ^ bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    1 << (hash >> 57)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use prost::Message;

    use super::*;

    /// The attributes as a collector reads them (the bytes are `Span.attributes` fields).
    fn read(attributes: &Attributes) -> Vec<(String, Option<Any>)> {
        let span = Span::decode(attributes.bytes()).expect("OTLP span attributes");
        span.attributes.into_iter().map(|kv| (kv.key, kv.value.and_then(|v| v.value))).collect()
    }

    fn text(value: &str) -> Option<Any> {
        Some(Any::StringValue(value.into()))
    }

    #[test]
    fn strings_written_in_place_are_the_bytes_of_the_same_string_values() {
        let long = "x".repeat(300); // lengths past 127 take two bytes
        let mut written = Attributes::default();
        written.set_str("identity.audience", "api://orders-api");
        written.set_str("", "");
        written.set_str("long", &long);
        written.set_joined("identity.scopes", &["Orders.Read", "Orders.Write"], " ");
        written.set_joined("identity.roles", &[] as &[&str], " ");
        let mut values = Attributes::default();
        for (key, value) in [
            ("identity.audience", "api://orders-api"),
            ("", ""),
            ("long", &long),
            ("identity.scopes", "Orders.Read Orders.Write"),
            ("identity.roles", ""),
        ] {
            values.set(key, &Value::from(value.to_owned()));
        }
        assert_eq!(written.bytes(), values.bytes());
        let keys: Vec<_> = read(&written).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["identity.audience", "", "long", "identity.scopes", "identity.roles"]);
    }

    #[test]
    fn setting_a_key_again_replaces_its_value_even_at_the_limit() {
        let mut attributes = Attributes::default();
        attributes.set_str("outcome", "allowed");
        attributes.set("status", &Value::I64(200));
        attributes.set_str("outcome", "denied");
        assert_eq!(
            read(&attributes),
            [("status".into(), Some(Any::IntValue(200))), ("outcome".into(), text("denied"))]
        );

        for i in 0..MAX_ATTRIBUTES {
            attributes.set_str(&format!("filler.{i}"), "x");
        }
        assert_eq!(attributes.dropped(), 2, "two of the fillers did not fit");
        attributes.set_str("outcome", "refused");
        assert_eq!(attributes.dropped(), 2, "a replacement is not a new attribute");
        let read = read(&attributes);
        assert_eq!(read.len(), MAX_ATTRIBUTES);
        assert_eq!(
            read.iter().filter(|(k, _)| k == "outcome").collect::<Vec<_>>(),
            [&("outcome".into(), text("refused"))]
        );
    }

    #[test]
    fn a_key_sharing_another_keys_bit_is_still_a_new_attribute() {
        let bit = key_bit;
        let twin =
            (0..).map(|i| format!("key.{i}")).find(|k| k != "first" && bit(k) == bit("first")).unwrap_or_default();
        let mut attributes = Attributes::default();
        attributes.set_str("first", "1");
        attributes.set_str(&twin, "2");
        attributes.set_str(&twin, "3");
        assert_eq!(read(&attributes), [("first".into(), text("1")), (twin, text("3"))]);
    }
}
