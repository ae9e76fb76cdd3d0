//! An order as the API returns it: the wire contract orders-mcp is built against.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;
use utoipa::ToSchema;

use super::order_id::OrderId;
use super::order_status::OrderStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[schema(value_type = String, example = "ORD-001", pattern = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$")]
    pub id: OrderId,
    /// Entra object id of the user who placed the order.
    #[schema(
        pattern = r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$",
        example = "d68c30d7-36bf-4ae2-a91c-be2594a764e5"
    )]
    pub owner_oid: String,
    /// The user's display name (`name` claim) when the order was placed.
    #[schema(example = "Alice Johnson")]
    pub customer_name: String,
    #[schema(example = "Mechanical keyboard", min_length = 1, max_length = 200)]
    pub product: String,
    #[schema(minimum = 1, maximum = 1000, example = 2)]
    pub quantity: i64,
    pub status: OrderStatus,
    /// RFC 3339, UTC, millisecond precision.
    #[schema(format = DateTime, example = "2025-01-15T09:30:00.000Z")]
    pub created_at: String,
    #[schema(format = DateTime, example = "2025-01-15T09:30:00.000Z")]
    pub updated_at: String,
}

/// One page of orders, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Now, as stored and returned: RFC 3339 UTC with a fixed width, so the text sorts by time.
pub fn timestamp_now() -> String {
    timestamp(OffsetDateTime::now_utc())
}

pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    // Formatting a UTC time with a fixed description only fails for years beyond 9999.
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_utc() {
        let at = time::macros::datetime!(2025-01-05 09:03:07.5 +02:00);
        assert_eq!(timestamp(at), "2025-01-05T07:03:07.500Z");
        assert_eq!(timestamp_now().len(), "2025-01-05T07:03:07.500Z".len());
    }
}
