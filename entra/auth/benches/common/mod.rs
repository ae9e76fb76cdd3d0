//! What the telemetry benchmarks share: the hop and the incoming trace context of a full-path
//! call, as orders-api sees them.

use entra_auth::hop::{Decision, Hop, How, TokenSummary};

/// A caller's `traceparent`, sampled.
pub const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// orders-api's hop for `token`, an On-Behalf-Of token it accepted.
pub fn obo_hop(token: &str) -> Hop {
    Hop {
        service: "orders-api".into(),
        token: TokenSummary::from_unverified(token).expect("the emulator's token decodes"),
        how: How::Obo,
        decision: Decision::Allowed,
        elapsed_ms: 0.1,
    }
}

/// Request headers carrying [`TRACEPARENT`].
pub fn traced_headers() -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("traceparent", axum::http::HeaderValue::from_static(TRACEPARENT));
    headers
}
