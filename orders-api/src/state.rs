//! What every handler can reach: built once at start, cloned into each request.

use std::sync::Arc;

use axum::extract::FromRef;
use entra_auth::claims_challenge::ClaimsChallenge;
use entra_auth::guard::ResourceGuard;

use crate::configuration::AgentPolicy;
use crate::database::Database;
use crate::routes::docs::Docs;
use crate::store::OrderStore;

/// The router's state; handlers take the part they need (`State<OrderStore>`, ...).
#[derive(Clone, FromRef)]
pub struct AppState {
    pub guard: ResourceGuard,
    /// The one client whose users' tokens are accepted: orders-mcp.
    #[from_ref(skip)]
    pub orders_mcp_client_id: Arc<str>,
    /// The orders-mcp audience, when passthrough tokens are (explicitly) accepted.
    pub passthrough_audience: Option<Arc<str>>,
    pub agent_policy: AgentPolicy,
    /// The step-up `approved-writes` demands of an agent's write.
    pub approval: Arc<ClaimsChallenge>,
    pub store: OrderStore,
    pub database: Database,
    pub docs: Docs,
    /// `ORDERS_API_PUBLIC_URL` without a trailing slash, for `Location` headers.
    pub public_url: Arc<str>,
}
