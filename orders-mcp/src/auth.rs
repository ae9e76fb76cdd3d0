//! Authentication of every `/mcp` request, before the MCP layer sees it.
//!
//! The middleware validates the bearer token (a v2 token for orders-mcp with `access_as_user`)
//! and answers `401`/`403` with an RFC 6750 challenge pointing at the RFC 9728 metadata when it
//! is not acceptable. An accepted request carries an `Arc<`[`Authenticated`]`>` extension: rmcp passes
//! the HTTP request's `Parts` to the tools, which read the caller and the token from it.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use entra_auth::acquire::AccessToken;
use entra_auth::guard::{Policy, ResourceGuard};
use entra_auth::validate::Caller;
use service_kit::problem::Problem;

use crate::configuration::ACCESS_SCOPE;

/// The policy of the MCP endpoint: a signed-in user who granted `access_as_user`.
pub struct AccessAsUser;

impl Policy for AccessAsUser {
    const SCOPES: &'static [&'static str] = &[ACCESS_SCOPE];
}

/// Who is calling, and with which token, for one `/mcp` request.
#[derive(Clone, Debug)]
pub struct Authenticated {
    pub caller: Arc<Caller>,
    /// The token as received. It only ever goes downstream (exchanged or, in passthrough mode,
    /// forwarded); its `Debug` is redacted, so it cannot reach a log by accident.
    pub token: AccessToken,
    /// When the request arrived, for the hop's elapsed time.
    pub received: Instant,
}

/// axum middleware for the `/mcp` route (every method).
pub async fn require_user(State(guard): State<ResourceGuard>, request: Request, next: Next) -> Response {
    let received = Instant::now();
    let (mut parts, body) = request.into_parts();
    let caller = match guard.authorize::<AccessAsUser>(&parts).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    // `authorize` accepted exactly one `Authorization: Bearer <token>` header, so this finds it;
    // should it not, fail closed.
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, token)| AccessToken::new(token, u64::try_from(caller.expires_at).unwrap_or_default()));
    let Some(token) = token else {
        return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the bearer token could not be read")
            .into_response();
    };
    // In an `Arc`: rmcp clones the request's parts for each tool call.
    parts.extensions.insert(Arc::new(Authenticated { caller, token, received }));
    next.run(Request::from_parts(parts, body)).await
}
