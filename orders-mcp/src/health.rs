//! Liveness and readiness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use entra_auth::guard::ResourceGuard;
use serde_json::json;
use service_kit::problem::Problem;
use tokio::sync::Mutex;

use crate::orders_api::OrdersApi;

/// How long one readiness check answers every `/readyz`: the endpoint is public, and each check
/// reaches orders-api (which opens a database connection for it).
const READINESS_TTL: Duration = Duration::from_secs(1);

/// `/healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The last readiness check and when it finished. Callers arriving while a check runs wait for
/// it (the lock is held across the check) and share its answer.
pub struct Readiness {
    api: Arc<OrdersApi>,
    guard: ResourceGuard,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub fn new(api: Arc<OrdersApi>, guard: ResourceGuard) -> Self {
        Readiness { api, guard, last: Mutex::new(None) }
    }

    /// `Ok`, or what is not ready (no internal address: the answer is public).
    async fn check(&self) -> Result<(), String> {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < READINESS_TTL
        {
            return answer.clone();
        }
        let (api, idp) = tokio::join!(self.api.ready(), self.guard.validator().ready());
        let mut problems = Vec::new();
        if let Err(why) = api {
            problems.push(format!("orders-api is not ready: {why}"));
        }
        if !idp {
            problems.push("the identity provider's metadata or signing keys cannot be loaded".to_string());
        }
        let answer = if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

/// `/readyz`: orders-api answers its `/readyz` and the identity provider's metadata and keys are
/// loaded, as checked at most once a second. A `503` problem names each dependency that is not
/// ready.
pub async fn readyz(State(readiness): State<Arc<Readiness>>) -> Response {
    match readiness.check().await {
        Ok(()) => {
            Json(json!({ "status": "ready", "orders_api": "ready", "identity_provider": "ready" })).into_response()
        }
        Err(problems) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", problems).into_response(),
    }
}
