//! `/healthz` (the process answers) and `/readyz` (it can serve a user: its session store answers
//! and the identity provider's metadata is loaded).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.ready().await {
        tracing::warn!(error = %e, "not ready: the session store does not answer");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: the session store does not answer").into_response();
    }
    if let Err(e) = state.oidc.ready().await {
        tracing::warn!(error = %e, "not ready: no identity provider metadata");
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: the identity provider's metadata cannot be loaded")
            .into_response();
    }
    (StatusCode::OK, "ready").into_response()
}
