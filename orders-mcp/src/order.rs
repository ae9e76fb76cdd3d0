//! Orders as orders-api returns them and the tools present them, and what the tools send.
//!
//! What makes an order valid (product, quantity, id format, paging) is orders-api's to decide;
//! its refusals reach the model word for word. orders-mcp only makes sure an id cannot change
//! which URL it calls.

use std::fmt;

use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// An order, as orders-api returns it (and as the tools' structured output carries it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct Order {
    /// The order id, like `ORD-001`.
    pub id: String,
    /// Object id of the user who owns the order.
    pub owner_oid: String,
    pub customer_name: String,
    pub product: String,
    pub quantity: u32,
    pub status: OrderStatus,
    /// RFC 3339 timestamp.
    pub created_at: String,
    /// RFC 3339 timestamp.
    pub updated_at: String,
}

/// Keys in sorted order: a tool result's text is this JSON, and it was a `serde_json::Value`'s
/// (a sorted map) until results were written without one (`crate::tool_result`).
impl Serialize for Order {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut order = serializer.serialize_struct("Order", 8)?;
        order.serialize_field("created_at", &self.created_at)?;
        order.serialize_field("customer_name", &self.customer_name)?;
        order.serialize_field("id", &self.id)?;
        order.serialize_field("owner_oid", &self.owner_oid)?;
        order.serialize_field("product", &self.product)?;
        order.serialize_field("quantity", &self.quantity)?;
        order.serialize_field("status", &self.status)?;
        order.serialize_field("updated_at", &self.updated_at)?;
        order.end()
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} x {}, {} (customer {}, created {})",
            self.id, self.quantity, self.product, self.status, self.customer_name, self.created_at
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One page of orders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass this as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Keys in sorted order, as [`Order`]'s.
impl Serialize for OrderPage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut page = serializer.serialize_struct("OrderPage", 2)?;
        page.serialize_field("next_cursor", &self.next_cursor)?;
        page.serialize_field("orders", &self.orders)?;
        page.end()
    }
}

/// An order id that is safe to put in a URL path: letters, digits, `-` and `_`, at most 64.
/// (Percent-encoding alone is not enough: `.` and `..` segments would move the path.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(raw: &str) -> Result<OrderId, String> {
        let id = raw.trim();
        let valid =
            !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(OrderId(id.to_string()))
        } else {
            Err(format!("{raw:?} is not an order id: order ids look like ORD-001"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The body of orders-api's `POST /api/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrder {
    pub product: String,
    pub quantity: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_that_could_change_the_url_are_refused() {
        assert_eq!(OrderId::parse(" ORD-001 ").unwrap().as_str(), "ORD-001");
        for bad in ["", "..", ".", "../admin", "ORD 1", "ORD-1?x=1", "ORD/1", "%2e%2e", &"A".repeat(65)] {
            assert!(OrderId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_wire_format_round_trips() {
        let json = serde_json::json!({
            "id": "ORD-001", "owner_oid": "d68c30d7-36bf-4ae2-a91c-be2594a764e5", "customer_name": "Alice Johnson",
            "product": "Keyboard", "quantity": 2, "status": "pending",
            "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"
        });
        let order: Order = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        assert_eq!(serde_json::to_value(&order).unwrap(), json);
    }
}
