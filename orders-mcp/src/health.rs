//! Liveness and readiness.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use entra_auth::guard::ResourceGuard;
use serde_json::json;
use service_kit::problem::Problem;

use crate::orders_api::OrdersApi;

/// `/healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `/readyz`: orders-api answers its `/readyz` and the identity provider's metadata and keys are
/// loaded. A `503` problem names each dependency that is not ready.
pub async fn readyz(State(api): State<Arc<OrdersApi>>, State(guard): State<ResourceGuard>) -> Response {
    let (api, idp) = tokio::join!(api.ready(), guard.validator().ready());
    let mut problems = Vec::new();
    if let Err(why) = api {
        problems.push(format!("orders-api is not ready: {why}"));
    }
    if !idp {
        problems.push("the identity provider's metadata or signing keys cannot be loaded".to_string());
    }
    if problems.is_empty() {
        Json(json!({ "status": "ready", "orders_api": "ready", "identity_provider": "ready" })).into_response()
    } else {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", problems.join("; ")).into_response()
    }
}
