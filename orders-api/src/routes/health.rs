//! `/healthz` (the process answers) and `/readyz` (the database is usable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use service_kit::problem::Problem;
use utoipa::ToSchema;

use crate::database::Database;
use crate::extract::Json;
use crate::openapi::{OPERATIONS_TAG, ProblemSchema};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    #[schema(example = "ok")]
    pub status: String,
}

/// The process is up. Touches nothing else, so a slow database never gets it restarted.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = OPERATIONS_TAG,
    responses((status = 200, description = "The process answers.", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// The database file is usable: readable by the service's connections and by a fresh one,
/// and writable.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = OPERATIONS_TAG,
    responses(
        (status = 200, description = "Ready to serve.", body = Health),
        (status = 503, description = "Not ready (slug `not-ready`); `detail` says why.", body = ProblemSchema,
            content_type = "application/problem+json"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn readyz(State(db): State<Database>) -> Response {
    match db.check_ready().await {
        Ok(()) => Json(Health { status: "ready".into() }).into_response(),
        Err(reason) => {
            tracing::warn!(database = %db.path().display(), %reason, "not ready");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", reason).into_response()
        }
    }
}
