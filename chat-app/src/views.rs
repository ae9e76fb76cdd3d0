//! What the pages show: the data the server functions return, shared by the server and the
//! browser builds. Nothing here ever carries a token: only names, claims summaries and order
//! data.

use entra_auth::hop::Hop;
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
