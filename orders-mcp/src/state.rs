//! What the plain HTTP handlers (health and readiness) share; `/mcp` has its own state.

use std::sync::Arc;

use axum::extract::FromRef;
use entra_auth::guard::ResourceGuard;

use crate::health::Readiness;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub guard: ResourceGuard,
    pub readiness: Arc<Readiness>,
}
