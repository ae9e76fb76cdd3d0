//! Cross-site request protection: a state-changing request (anything but GET, HEAD, OPTIONS)
//! must carry an `Origin` header naming chat-app's own origin. Browsers always send `Origin` on
//! such requests, and a page on another site cannot forge it; a missing one is refused too.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::error_page::error_page;
use crate::state::AppState;

pub async fn require_same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin == Some(state.origin.as_ref()) {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = request.uri().path(),
        origin = origin.unwrap_or("(none)"),
        "cross-site request refused"
    );
    error_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This request did not come from an Orders Copilot page (its Origin header is missing or belongs to another site), so it was not carried out.",
    )
}
