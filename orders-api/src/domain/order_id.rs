//! Order ids: `ORD-` followed by a number zero-padded to at least three digits (`ORD-007`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PREFIX: &str = "ORD-";
/// Exactly the ids [`OrderId::from_str`] accepts, for the OpenAPI document: `ORD-` and the
/// number, at least three digits (zero-padded below 100), at most twelve, never zero.
pub const ORDER_ID_PATTERN: &str = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$";
/// Ids longer than this are refused before parsing: far beyond any real id, and it bounds input.
const MAX_DIGITS: usize = 12;

/// A well-formed order id. It says nothing about whether the order exists or who may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an order id: expected \"ORD-\" followed by a number of at least three digits, e.g. ORD-001")]
pub struct InvalidOrderId;

impl OrderId {
    /// The id of the row with this sequence number (SQLite's rowid, always ≥ 1).
    pub(crate) fn from_seq(seq: i64) -> Self {
        OrderId(seq)
    }

    pub(crate) fn seq(self) -> i64 {
        self.0
    }
}

impl FromStr for OrderId {
    type Err = InvalidOrderId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix(PREFIX).ok_or(InvalidOrderId)?;
        if !(3..=MAX_DIGITS).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidOrderId);
        }
        let n: i64 = digits.parse().map_err(|_| InvalidOrderId)?;
        // One spelling per order: `ORD-0001` is refused rather than aliased to `ORD-001`.
        if n < 1 || format!("{n:03}") != digits {
            return Err(InvalidOrderId);
        }
        Ok(OrderId(n))
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{:03}", self.0)
    }
}

impl Serialize for OrderId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OrderId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_round_trip() {
        for (text, seq) in
            [("ORD-001", 1), ("ORD-042", 42), ("ORD-999", 999), ("ORD-1000", 1000), ("ORD-123456", 123456)]
        {
            let id: OrderId = text.parse().unwrap();
            assert_eq!(id.seq(), seq);
            assert_eq!(id.to_string(), text);
            assert_eq!(OrderId::from_seq(seq).to_string(), text);
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "ORD-",
            "ORD-1",
            "ORD-01",
            "ORD-000",
            "ORD-0001",
            "ord-001",
            "ORD_001",
            "ORD-00a",
            "ORD--01",
            "ORD-+01",
            " ORD-001",
            "ORD-001 ",
            "ORD-0000000000001",
            "ORD-１２３",
            "001",
            "ORD-9999999999999",
        ] {
            assert_eq!(bad.parse::<OrderId>(), Err(InvalidOrderId), "{bad:?}");
        }
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_the_parsed_ids() {
        let schema = serde_json::json!({ "type": "string", "pattern": ORDER_ID_PATTERN });
        let pattern = jsonschema::validator_for(&schema).unwrap();
        for text in ["ORD-001", "ORD-010", "ORD-099", "ORD-100", "ORD-999", "ORD-1000", "ORD-999999999999"] {
            assert!(pattern.is_valid(&serde_json::json!(text)) && text.parse::<OrderId>().is_ok(), "{text}");
        }
        for text in ["ORD-000", "ORD-0001", "ORD-01", "ORD-1", "ORD-0100", "ORD-9999999999999", "ord-001", " ORD-001"] {
            assert!(!pattern.is_valid(&serde_json::json!(text)) && text.parse::<OrderId>().is_err(), "{text}");
        }
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id: OrderId = serde_json::from_str("\"ORD-007\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ORD-007\"");
        assert!(serde_json::from_str::<OrderId>("\"ORD-7\"").is_err());
    }
}
