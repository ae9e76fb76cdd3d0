//! The API's domain types. Each parses its raw input once, at the edge, so the rest of the
//! service only ever handles values that are already valid.
//!
//! This module only re-exports: its children reach each other as `super::sibling::Item`.

mod idempotency_key;
mod new_order;
mod order;
mod order_id;
mod order_status;
mod page;
mod user;

pub use idempotency_key::{IDEMPOTENCY_KEY_PATTERN, IdempotencyKey};
pub use new_order::{NewOrder, PRODUCT_MAX_CHARS, PRODUCT_PATTERN, Product, QUANTITY_MAX, QUANTITY_MIN, Quantity};
pub(crate) use order::timestamp;
pub use order::{Order, OrderPage, timestamp_now};
pub use order_id::{ORDER_ID_PATTERN, OrderId};
pub use order_status::OrderStatus;
pub use page::{Cursor, PageLimit};
pub use user::{User, Visibility};
