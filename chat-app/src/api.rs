//! The server functions the pages call, and the view data they return. In the browser build
//! these are HTTP calls (`POST /api/...`); on the server they run in-process during SSR. Nothing
//! here ever carries a token: only names, claims summaries and order data.

use entra_auth::hop::Hop;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::transcript::Transcript;

/// The error message of a server function whose caller must sign in (again).
pub const SIGN_IN_REQUIRED: &str = "sign-in required";

/// Where the browser goes to sign in, coming back to `return_to`.
pub fn sign_in_url(return_to: &str) -> String {
    format!("/auth/sign-in?return_to={}", if return_to.starts_with('/') { return_to } else { "/" })
}

/// The signed-in user, as pages show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub username: Option<String>,
    pub oid: String,
}

/// Which model answers, as the chat page labels it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLabel {
    pub name: String,
    /// The offline planner: no model at all.
    pub offline: bool,
}

/// Friendly names for ids that appear in tokens (client ids, audiences): `(id, name)`.
pub type Names = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatView {
    pub user: UserView,
    pub model: ModelLabel,
    pub transcript: Transcript,
    /// A message that could not be sent because sign-in had expired, to offer again.
    pub draft: Option<String>,
    pub names: Names,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRow {
    pub id: String,
    pub customer_name: String,
    pub product: String,
    pub quantity: i64,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersView {
    pub orders: Vec<OrderRow>,
    /// The identity trace of the `list_orders` call that fetched them.
    pub hops: Vec<Hop>,
    pub names: Names,
}

/// The signed-in user, if any.
#[server(endpoint = "session")]
pub async fn session_info() -> Result<Option<UserView>, ServerFnError> {
    let (_, session) = crate::auth::request_context().await?;
    Ok(crate::auth::current_user(&session).await.map(|u| u.view()))
}

/// The chat page: who, which model, and the conversation so far.
#[server(endpoint = "chat/load")]
pub async fn load_chat() -> Result<ChatView, ServerFnError> {
    let (state, session) = crate::auth::request_context().await?;
    crate::chat::load(&state, &session).await.map_err(|e| failed(e.status(), e))
}

/// Sends a message: starts a turn and returns its id, whose events stream from
/// `GET /api/chat/turns/{id}/events`.
#[server(endpoint = "chat/send")]
pub async fn send_message(text: String) -> Result<String, ServerFnError> {
    let (state, session) = crate::auth::request_context().await?;
    crate::chat::start(&state, &session, text).await.map_err(|e| failed(e.status(), e))
}

/// The signed-in user's orders, fetched through orders-mcp like the agent does.
#[server(endpoint = "orders")]
pub async fn my_orders() -> Result<OrdersView, ServerFnError> {
    let (state, session) = crate::auth::request_context().await?;
    crate::orders::my_orders(&state, &session).await.map_err(|e| failed(e.status(), e))
}

/// A server function error with its HTTP status (401 when the user must sign in again, ...).
/// The status also matters to the session layer, which does not save a session on a 5xx.
#[cfg(feature = "ssr")]
fn failed(status: axum::http::StatusCode, error: impl std::fmt::Display) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(error)
}
