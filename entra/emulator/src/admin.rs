//! Health, counters and key rotation. Bind the emulator to loopback (the default): these are
//! for the developer and the tests, not for the network.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::{Emulator, Stats};

pub async fn health() -> &'static str {
    "ok"
}

pub async fn stats(State(emulator): State<Emulator>) -> Json<Stats> {
    Json(emulator.stats())
}

#[tracing::instrument(name = "rotate_keys", skip_all)]
pub async fn rotate(State(emulator): State<Emulator>) -> Response {
    match emulator.0.keys.rotate() {
        Ok(rotation) => {
            tracing::info!(current = %rotation.current_kid, previous = %rotation.previous_kid, "rotated the signing key");
            Json(rotation).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "key rotation failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({ "error": "key rotation failed" }))).into_response()
        }
    }
}
