//! Protecting axum routes: extract a validated [`Caller`], or answer with an RFC 6750 challenge.
//!
//! A resource describes what a route needs as a [`Policy`] and asks its [`ResourceGuard`]
//! (`authorize::<P>`), usually from its own extractor. Failures become
//! [`AuthError`]: `401` with `WWW-Authenticate: Bearer ..., resource_metadata="..."` when the
//! token is missing or invalid, `403` with `error="insufficient_scope"` when it lacks a scope or
//! role. The body is problem+json; neither ever echoes the token.

use std::sync::Arc;

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use service_kit::problem::Problem;

use crate::span_attributes;
use crate::validate::{Caller, MAX_TOKEN_LEN, TokenValidator, ValidationError};

/// What a route requires beyond a valid token.
pub trait Policy: Send + Sync + 'static {
    /// Delegated scopes, any one of which suffices. Non-empty means a user must be present:
    /// app-only tokens (no `scp`) are refused.
    const SCOPES: &'static [&'static str];
    /// App roles, any one of which suffices, checked in addition to the scopes.
    const ROLES: &'static [&'static str] = &[];
}

/// Everything a protected resource needs to check requests. Cheap to clone.
#[derive(Clone)]
pub struct ResourceGuard {
    validator: Arc<TokenValidator>,
    resource_metadata: Arc<str>,
    /// The Application ID URI that challenges put before a policy's scope (see
    /// [`ResourceGuard::challenge_scopes_under`]).
    scope_prefix: Option<Arc<str>>,
}

impl ResourceGuard {
    /// `resource_metadata_url` is where this resource serves its RFC 9728 document; every
    /// challenge points clients at it.
    pub fn new(validator: Arc<TokenValidator>, resource_metadata_url: impl Into<String>) -> Self {
        ResourceGuard { validator, resource_metadata: Arc::from(resource_metadata_url.into()), scope_prefix: None }
    }

    /// Challenges name the scope a policy needs as a client must ask Entra for it,
    /// `<app_id_uri>/<scope>` (a bare `access_as_user` would be read as a Microsoft Graph
    /// scope), and `401`s name it too. MCP clients request exactly the challenge's scopes (MCP
    /// 2025-11-25 and 2026-07-28 "Authorization", "Scope Selection Strategy": the scopes of a
    /// `401` come first; "Scope Challenge Handling": a `403`'s are authoritative).
    pub fn challenge_scopes_under(mut self, app_id_uri: &str) -> Self {
        self.scope_prefix = Some(Arc::from(app_id_uri.trim_end_matches('/')));
        self
    }

    /// The scope a challenge names for policy `P`: its first scope, under the Application ID URI
    /// when one is set.
    fn challenge_scope<P: Policy>(&self) -> Option<String> {
        let scope = P::SCOPES.first()?;
        Some(match &self.scope_prefix {
            Some(prefix) => format!("{prefix}/{scope}"),
            None => (*scope).to_string(),
        })
    }

    pub fn validator(&self) -> &Arc<TokenValidator> {
        &self.validator
    }

    fn reject(&self, reason: Reason) -> AuthError {
        // The request span says why, for the trace and the workbook's refusals by reason.
        span_attributes::record_refusal(&tracing::Span::current(), reason.code());
        AuthError { reason, resource_metadata: self.resource_metadata.clone(), scope: None }
    }

    /// Validates the bearer token of a request.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Caller, AuthError> {
        let token = bearer_token(&parts.headers, parts.uri.query()).map_err(|r| self.reject(r))?;
        self.validator.validate(token).await.map_err(|e| self.reject(Reason::InvalidToken(e)))
    }

    /// Checks a validated caller against a policy.
    pub fn check<P: Policy>(&self, caller: &Caller) -> Result<(), AuthError> {
        let scope_ok = P::SCOPES.is_empty() || (caller.is_user() && P::SCOPES.iter().any(|s| caller.has_scope(s)));
        if !scope_ok {
            let detail = if caller.is_user() {
                format!("this operation needs the {} scope", P::SCOPES.join(" or "))
            } else {
                "app-only tokens are not accepted: a signed-in user is required".to_string()
            };
            return Err(self.reject(Reason::InsufficientScope { scope: self.challenge_scope::<P>(), detail }));
        }
        if !P::ROLES.is_empty() && !P::ROLES.iter().any(|r| caller.has_role(r)) {
            let detail = format!("this operation needs the {} app role", P::ROLES.join(" or "));
            return Err(self.reject(Reason::InsufficientScope { scope: self.challenge_scope::<P>(), detail }));
        }
        Ok(())
    }

    /// [`authenticate`](Self::authenticate) then [`check`](Self::check).
    pub async fn authorize<P: Policy>(&self, parts: &Parts) -> Result<Caller, AuthError> {
        let caller = self.authenticate(parts).await.map_err(|mut e| {
            if self.scope_prefix.is_some() {
                e.scope = self.challenge_scope::<P>();
            }
            e
        })?;
        self.check::<P>(&caller)?;
        Ok(caller)
    }
}

/// Extracts the raw bearer token, refusing every ambiguous or unsafe way of sending one.
fn bearer_token<'h>(headers: &'h HeaderMap, query: Option<&str>) -> Result<&'h str, Reason> {
    // RFC 6750 §2.3 allows tokens in the query string; they end up in logs and history, so
    // this resource never accepts them, and says so rather than silently ignoring them.
    let in_query = query.is_some_and(|q| q.split('&').any(|pair| pair.split('=').next() == Some("access_token")));
    if in_query {
        return Err(Reason::InvalidRequest("tokens are accepted only in the Authorization header"));
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Reason::MissingToken);
    };
    if values.next().is_some() {
        return Err(Reason::InvalidRequest("more than one Authorization header"));
    }
    if value.len() > MAX_TOKEN_LEN + 16 {
        return Err(Reason::InvalidToken(ValidationError::TooLarge));
    }
    let value = value.to_str().map_err(|_| Reason::InvalidRequest("the Authorization header is not ASCII"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or(Reason::InvalidRequest("expected \"Authorization: Bearer <token>\""))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Reason::InvalidRequest("expected a Bearer token"));
    }
    // RFC 6750 b64token: the characters a JWT can contain, and nothing else (no spaces, commas).
    let b64token = |c: char| c.is_ascii_alphanumeric() || "-._~+/".contains(c);
    let body = token.trim_end_matches('=');
    if body.is_empty() || !body.chars().all(b64token) {
        return Err(Reason::InvalidToken(ValidationError::Malformed));
    }
    Ok(token)
}

#[derive(Debug, Clone)]
enum Reason {
    /// No credentials at all: per RFC 6750 §3.1 the challenge carries no error code.
    MissingToken,
    InvalidRequest(&'static str),
    InvalidToken(ValidationError),
    InsufficientScope {
        scope: Option<String>,
        detail: String,
    },
}

impl Reason {
    /// A stable, token-free code ([`span_attributes::REASON`]).
    fn code(&self) -> &'static str {
        match self {
            Reason::MissingToken => "missing-token",
            Reason::InvalidRequest(_) => "invalid-request",
            Reason::InvalidToken(e) => e.code(),
            Reason::InsufficientScope { .. } => "insufficient-scope",
        }
    }
}

/// Why a request was refused; answers itself with the right status, challenge and problem body.
#[derive(Debug, Clone)]
pub struct AuthError {
    reason: Reason,
    resource_metadata: Arc<str>,
    /// The scope a `401` names, when the guard is set to name it.
    scope: Option<String>,
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match &self.reason {
            Reason::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            // Fail closed, but honestly: the token may be fine, the keys are what is missing.
            Reason::InvalidToken(ValidationError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short, token-free description of the reason.
    pub fn detail(&self) -> String {
        match &self.reason {
            Reason::MissingToken => "a bearer token is required".to_string(),
            Reason::InvalidRequest(why) => (*why).to_string(),
            Reason::InvalidToken(e) => e.to_string(),
            Reason::InsufficientScope { detail, .. } => detail.clone(),
        }
    }

    /// The `WWW-Authenticate` value. Every parameter is a fixed string or comes from
    /// configuration, never from the request, so no quoting attack is possible.
    pub fn challenge(&self) -> String {
        let mut metadata = format!("resource_metadata=\"{}\"", self.resource_metadata);
        if let Some(scope) = &self.scope {
            metadata.push_str(&format!(", scope=\"{scope}\""));
        }
        match &self.reason {
            Reason::MissingToken => format!("Bearer {metadata}"),
            Reason::InvalidRequest(why) => {
                format!("Bearer error=\"invalid_request\", error_description=\"{why}\", {metadata}")
            }
            Reason::InvalidToken(e) => {
                format!("Bearer error=\"invalid_token\", error_description=\"{e}\", {metadata}")
            }
            Reason::InsufficientScope { scope, detail } => {
                let scope = scope.as_ref().map(|s| format!("scope=\"{s}\", ")).unwrap_or_default();
                format!("Bearer error=\"insufficient_scope\", {scope}error_description=\"{detail}\", {metadata}")
            }
        }
    }

    fn slug(&self) -> &'static str {
        match &self.reason {
            Reason::MissingToken => "missing-token",
            Reason::InvalidRequest(_) => "invalid-request",
            Reason::InvalidToken(ValidationError::KeysUnavailable) => "identity-provider-unavailable",
            Reason::InvalidToken(_) => "invalid-token",
            Reason::InsufficientScope { .. } => "insufficient-scope",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Problem::new(self.status(), self.slug(), self.detail()).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.challenge()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
