//! The life cycle of an order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an order status: expected one of pending, processing, shipped, delivered, cancelled")]
pub struct InvalidStatus;

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Processing,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Processing => "processing",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Only orders that have not left the warehouse can be cancelled.
    pub fn is_cancellable(self) -> bool {
        matches!(self, OrderStatus::Pending | OrderStatus::Processing)
    }
}

impl FromStr for OrderStatus {
    type Err = InvalidStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or(InvalidStatus)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_agree_with_serde() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>(), Ok(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        assert_eq!("Pending".parse::<OrderStatus>(), Err(InvalidStatus));
    }

    #[test]
    fn only_pending_and_processing_are_cancellable() {
        let cancellable: Vec<_> = OrderStatus::ALL.into_iter().filter(|s| s.is_cancellable()).collect();
        assert_eq!(cancellable, [OrderStatus::Pending, OrderStatus::Processing]);
    }
}
