//! Orders in words, from the JSON orders-mcp's tools return: for the offline planner's answers
//! and for approval cards.

use serde_json::Value;

/// The order fields the texts use.
pub struct Order {
    pub id: String,
    pub product: String,
    pub quantity: i64,
    pub status: String,
    pub customer: String,
}

/// An order from a tool's structured result (`{ "order": {...} }` or the order itself).
pub fn order(value: &Value) -> Option<Order> {
    let v = value.get("order").unwrap_or(value);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let id = s("id");
    (!id.is_empty()).then(|| Order {
        id,
        product: s("product"),
        quantity: v.get("quantity").and_then(Value::as_i64).unwrap_or_default(),
        status: s("status"),
        customer: s("customer_name"),
    })
}

/// `ORD-004: 3 × USB-C hub, pending, ordered by Alice Johnson.`
pub fn describe_order(o: &Order, with_customer: bool) -> String {
    let customer =
        if with_customer && !o.customer.is_empty() { format!(", ordered by {}", o.customer) } else { String::new() };
    format!("{}: {} × {}, {}{customer}.", o.id, o.quantity, o.product, o.status)
}
