//! Paging through order lists: a bounded page size and an opaque cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::order_id::OrderId;

/// How many orders one page holds: 1 to 100, 20 when not asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: u32 = 20;
    pub const MAX: u32 = 100;

    pub fn parse(raw: Option<u32>) -> Result<PageLimit, String> {
        match raw {
            None => Ok(PageLimit(Self::DEFAULT)),
            Some(n) if (1..=Self::MAX).contains(&n) => Ok(PageLimit(n)),
            Some(n) => Err(format!("limit must be between 1 and {}, got {n}", Self::MAX)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Where the next page starts: after a given order. Opaque to clients, so the encoding can
/// change without breaking them; a version prefix makes old cursors fail loudly if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    after: OrderId,
}

const VERSION: &str = "v1:";

impl Cursor {
    pub fn after(id: OrderId) -> Self {
        Cursor { after: id }
    }

    pub fn last_seen(self) -> OrderId {
        self.after
    }

    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{VERSION}{}", self.after))
    }

    pub fn decode(raw: &str) -> Result<Cursor, String> {
        let invalid = || "cursor is not one this API issued: pass next_cursor back unchanged".to_string();
        if raw.len() > 64 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let id = text.strip_prefix(VERSION).ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
        Ok(Cursor { after: id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_to_twenty_and_stay_in_range() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), 20);
        assert_eq!(PageLimit::parse(Some(1)).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some(100)).unwrap().get(), 100);
        assert!(PageLimit::parse(Some(0)).is_err());
        assert!(PageLimit::parse(Some(101)).is_err());
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id: OrderId = "ORD-042".parse().unwrap();
        let cursor = Cursor::after(id);
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap().last_seen(), id);
        for bad in ["", "ORD-042", "!!!", &URL_SAFE_NO_PAD.encode("v2:ORD-042"), &URL_SAFE_NO_PAD.encode("v1:ORD-7")] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
        assert!(Cursor::decode(&"A".repeat(65)).is_err());
    }
}
