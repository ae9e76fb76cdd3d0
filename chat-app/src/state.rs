//! What every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::approvals::Approvals;
use crate::auth::agent_identity::AgentTokens;
use crate::auth::oidc::Oidc;
use crate::auth::refresh::Refresher;
use crate::auth::session_store::Sessions;
use crate::configuration::Settings;
use crate::mcp::McpConnector;
use crate::store::Store;
use crate::turns::Turns;

#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub settings: Arc<Settings>,
    /// chat-app's origin, as `Origin` headers name it.
    pub origin: Arc<str>,
    /// The identity provider's origin as browsers reach it (for the Content-Security-Policy).
    pub idp_origin: Arc<str>,
    pub oidc: Arc<Oidc>,
    pub refresher: Arc<Refresher>,
    /// The agent's own identity, in `CHAT_APP_AGENT_IDENTITY=entra-agent-id` mode.
    pub agent_tokens: Option<Arc<AgentTokens>>,
    pub store: Store,
    pub sessions: Sessions,
    pub agent: Arc<Agent>,
    /// Tool calls waiting for the user's yes (the agent asks, the chat's answer route answers).
    pub approvals: Arc<Approvals>,
    pub turns: Arc<Turns>,
    /// Cancelled when the server begins to stop: open turn streams end with a notice instead
    /// of holding the graceful drain open (an approval can no longer reach a stopping process).
    pub stopping: CancellationToken,
    /// The passthrough orders-mcp the presenter view's replay calls, when the demonstration is
    /// configured (`CHAT_APP_PASSTHROUGH_DEMO_MCP_URL`).
    pub passthrough_demo: Option<McpConnector>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
