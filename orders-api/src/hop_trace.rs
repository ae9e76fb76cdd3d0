//! This hop's record in the hop trace: every response to a validated token carries the
//! `x-hop-trace` header (a base64url JSON [`Hop`](entra_auth::hop::Hop)), so orders-mcp can
//! chain it after its own.
//!
//! The middleware times the request and hands the handlers a [`HopSlot`]; the authorization
//! extractor fills it once the token is valid. Refusals after that point (403, 404, 409, ...)
//! put their reason in a [`DenyReason`] response extension, which becomes the hop's decision:
//! `denied` for 403 (the identity lacks a scope or role), `refused` otherwise (the token was
//! accepted and the request failed on its merits: not found, conflict, invalid input).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use entra_auth::hop::{Decision, HOP_HEADER, How};
use entra_auth::span_attributes;
use entra_auth::validate::Caller;

pub const SERVICE: &str = "orders-api";

/// Where the authorization extractor leaves the validated caller for the middleware.
#[derive(Clone, Default)]
pub struct HopSlot(Arc<OnceLock<(Arc<Caller>, How)>>);

impl HopSlot {
    pub fn record(&self, caller: Arc<Caller>, how: How) {
        // A request is authorized once; a second record would be a bug, and the first is the truth.
        let _ = self.0.set((caller, how));
    }
}

/// Why a request with a valid token was refused; the detail of the problem returned.
#[derive(Clone)]
pub struct DenyReason(pub String);

pub async fn record_hop(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let slot = HopSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some((caller, how)) = slot.0.get() {
        let status = response.status();
        let reason = || {
            let given = response.extensions().get::<DenyReason>().map(|r| r.0.clone());
            given.unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_string())
        };
        let decision = if status.is_success() {
            Decision::Allowed
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // The identity itself fell short: a scope or role is missing.
            Decision::Denied { reason: reason() }
        } else {
            // The token was fine; the request was not (not found, conflict, invalid input).
            Decision::Refused { reason: reason() }
        };
        let hop = caller.hop(SERVICE, *how, decision, started.elapsed());
        // This middleware runs inside the request span: the hop becomes its attributes.
        span_attributes::record_hop(&tracing::Span::current(), &hop);
        if let Ok(value) = HeaderValue::from_str(&hop.to_header_value()) {
            response.headers_mut().insert(HOP_HEADER, value);
        }
    }
    response
}
