//! "My orders", server side: the same `list_orders` tool the agent uses, through orders-mcp with
//! the user's token, so the page shows exactly what the user may see.

use serde_json::{Map, Value, json};
use tower_sessions::Session;

use crate::auth::session::{SignInError, access_token};
use crate::mcp::McpError;
use crate::state::AppState;
use crate::views::{OrderRow, OrdersView};

/// The most orders the page lists.
const PAGE_SIZE: u64 = 100;

#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error("{0}")]
    Tool(String),
}

impl OrdersError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            OrdersError::SignIn(e) => e.status(),
            OrdersError::Mcp(McpError::Refused(_)) => StatusCode::UNAUTHORIZED,
            OrdersError::Mcp(_) | OrdersError::Tool(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

#[tracing::instrument(name = "orders.my_orders", skip_all)]
pub async fn my_orders(state: &AppState, session: &Session) -> Result<OrdersView, OrdersError> {
    let (_, token) = access_token(state, session).await?;
    let mcp = state.agent.mcp().connect(&token).await?;
    let mut args = Map::new();
    args.insert("limit".into(), json!(PAGE_SIZE));
    let outcome = mcp.call_read_only("list_orders", args).await;
    mcp.close().await;
    if outcome.is_error {
        return Err(OrdersError::Tool(outcome.summary));
    }
    let orders = outcome.structured.as_ref().map(rows).unwrap_or_default();
    Ok(OrdersView { orders, hops: outcome.hops, names: state.settings.names.clone() })
}

/// Order rows from `list_orders`' structured result (`{ "orders": [...] }` or a bare array).
fn rows(result: &Value) -> Vec<OrderRow> {
    let list = result.get("orders").unwrap_or(result).as_array().cloned().unwrap_or_default();
    list.iter()
        .filter_map(|o| {
            let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let id = s("id");
            (!id.is_empty()).then(|| OrderRow {
                id,
                customer_name: s("customer_name"),
                product: s("product"),
                quantity: o.get("quantity").and_then(Value::as_i64).unwrap_or_default(),
                status: s("status"),
                created_at: s("created_at"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_from_the_orders_api_shape() {
        let v = json!({"orders": [{"id": "ORD-001", "owner_oid": "x", "customer_name": "Alice Johnson",
            "product": "Keyboard", "quantity": 2, "status": "pending", "created_at": "2026-01-01T00:00:00Z"}],
            "next_cursor": null});
        let r = rows(&v);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].id.as_str(), r[0].quantity, r[0].status.as_str()), ("ORD-001", 2, "pending"));
        assert!(rows(&json!({"unexpected": true})).is_empty());
    }
}
