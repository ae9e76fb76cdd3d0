//! Paging through order lists: a bounded page size and a cursor (the last order id seen).

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

/// Where the next page starts: after a given order. The cursor is that order's id (`ORD-042`),
/// so the OpenAPI document can state exactly which cursors are valid (any order id: the page
/// after it, possibly empty), and a client can never send one the document calls valid and the
/// server refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    after: OrderId,
}

impl Cursor {
    pub fn after(id: OrderId) -> Self {
        Cursor { after: id }
    }

    pub fn last_seen(self) -> OrderId {
        self.after
    }

    pub fn encode(self) -> String {
        self.after.to_string()
    }

    pub fn decode(raw: &str) -> Result<Cursor, String> {
        let after = raw.parse().map_err(|_| {
            "cursor must be the next_cursor of a previous page: an order id such as ORD-042".to_string()
        })?;
        Ok(Cursor { after })
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
        assert_eq!(cursor.encode(), "ORD-042");
        for bad in ["", "ORD-7", "!!!", "djE6T1JELTA0Mg", &"A".repeat(65)] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }
}
