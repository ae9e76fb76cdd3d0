//! What the plain HTTP handlers (health and readiness) share; `/mcp` has its own state.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::health::Readiness;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub readiness: Arc<Readiness>,
}
