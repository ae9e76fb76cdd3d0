//! Protecting axum routes: extract a validated [`Caller`], or answer with an RFC 6750 challenge.
//!
//! A resource describes what a route needs as a [`Policy`] and asks its [`ResourceGuard`]
//! (`authorize::<P>`), usually from its own extractor. Failures become
//! [`AuthError`]: `401` with `WWW-Authenticate: Bearer ..., resource_metadata="..."` when the
//! token is missing or invalid, `403` with `error="insufficient_scope"` and the scope's full
//! value (as in the resource metadata's `scopes_supported`) when it lacks a scope, and a plain
//! `403` naming the app role when it lacks a role: no token request can add a role, so that
//! answer does not invite a scope step-up. The body is problem+json; neither ever echoes the token.

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
    scopes_supported: Arc<[String]>,
}

impl ResourceGuard {
    /// `resource_metadata_url` is where this resource serves its RFC 9728 document; every
    /// challenge points clients at it.
    pub fn new(validator: Arc<TokenValidator>, resource_metadata_url: impl Into<String>) -> Self {
        ResourceGuard {
            validator,
            resource_metadata: Arc::from(resource_metadata_url.into()),
            scopes_supported: Arc::from([]),
        }
    }

    /// The full scope values this resource advertises (its RFC 9728 `scopes_supported`,
    /// `api://.../Orders.Read`): challenges name a scope the way a client must request it.
    #[must_use]
    pub fn scopes_supported(mut self, scopes: &[String]) -> Self {
        self.scopes_supported = Arc::from(scopes);
        self
    }

    /// `scope` (a policy's short name) as advertised in `scopes_supported`, else as it is.
    fn full_scope(&self, scope: &str) -> String {
        self.scopes_supported
            .iter()
            .find(|full| full.rsplit_once('/').is_some_and(|(_, name)| name == scope))
            .map_or_else(|| scope.to_string(), Clone::clone)
    }

    pub fn validator(&self) -> &Arc<TokenValidator> {
        &self.validator
    }

    fn reject(&self, reason: Reason) -> AuthError {
        // The request span says why, for the trace and the workbook's refusals by reason.
        span_attributes::record_refusal(&tracing::Span::current(), reason.code());
        AuthError { reason, resource_metadata: self.resource_metadata.clone() }
    }

    /// Validates the bearer token of a request.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Arc<Caller>, AuthError> {
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
            let scope = P::SCOPES.first().map(|s| self.full_scope(s));
            return Err(self.reject(Reason::InsufficientScope { scope, detail }));
        }
        if !P::ROLES.is_empty() && !P::ROLES.iter().any(|r| caller.has_role(r)) {
            return Err(self.reject(Reason::MissingRole { roles: P::ROLES }));
        }
        Ok(())
    }

    /// [`authenticate`](Self::authenticate) then [`check`](Self::check).
    pub async fn authorize<P: Policy>(&self, parts: &Parts) -> Result<Arc<Caller>, AuthError> {
        let caller = self.authenticate(parts).await?;
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
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    // Another scheme (`Basic`, or a token sent without one) is no bearer token at all: RFC 6750
    // §3.1 answers "an unsupported authentication method" with a bare challenge, no error code,
    // which sends the client to the resource metadata to find out how to get one.
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Reason::MissingToken);
    }
    if !value.contains(' ') {
        return Err(Reason::InvalidRequest("the Bearer scheme without a token"));
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
    /// An app role is assigned to the user by an administrator; asking for a token with
    /// another scope cannot add it.
    MissingRole {
        roles: &'static [&'static str],
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
            Reason::MissingRole { .. } => "missing-role",
        }
    }
}

/// Why a request was refused; answers itself with the right status, challenge and problem body.
#[derive(Debug, Clone)]
pub struct AuthError {
    reason: Reason,
    resource_metadata: Arc<str>,
}

impl AuthError {
    pub fn status(&self) -> StatusCode {
        match &self.reason {
            Reason::InsufficientScope { .. } | Reason::MissingRole { .. } => StatusCode::FORBIDDEN,
            // RFC 6750 §3.1: "The resource server SHOULD respond with the HTTP 400 (Bad Request)
            // status code" (a token in two places, two headers, a malformed header).
            Reason::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            // Fail closed, but honestly: the token may be fine, the keys are what is missing.
            Reason::InvalidToken(ValidationError::KeysUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
            Reason::MissingToken | Reason::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// A short, token-free description of the reason.
    pub fn detail(&self) -> String {
        match &self.reason {
            Reason::MissingToken => "a bearer token is required".to_string(),
            Reason::InvalidRequest(why) => (*why).to_string(),
            Reason::InvalidToken(e) => e.to_string(),
            Reason::InsufficientScope { detail, .. } => detail.clone(),
            Reason::MissingRole { roles } => format!(
                "this operation needs the {} app role, which an administrator assigns: no other scope or \
                 new token adds it",
                roles.join(" or ")
            ),
        }
    }

    /// The `WWW-Authenticate` value, if any. Every parameter is a fixed string or comes from
    /// configuration, never from the request, so no quoting attack is possible; descriptions
    /// are kept to the characters RFC 6750 §3 allows in them.
    pub fn challenge(&self) -> Option<String> {
        let metadata = format!("resource_metadata=\"{}\"", self.resource_metadata);
        Some(match &self.reason {
            Reason::MissingToken => format!("Bearer {metadata}"),
            Reason::InvalidRequest(why) => {
                let why = description(why);
                format!("Bearer error=\"invalid_request\", error_description=\"{why}\", {metadata}")
            }
            // Not the token's fault: `invalid_token` would tell the client to throw it away.
            Reason::InvalidToken(ValidationError::KeysUnavailable) => return None,
            Reason::InvalidToken(e) => {
                let why = description(&e.to_string());
                format!("Bearer error=\"invalid_token\", error_description=\"{why}\", {metadata}")
            }
            Reason::InsufficientScope { scope, detail } => {
                let scope = scope.as_ref().map(|s| format!("scope=\"{s}\", ")).unwrap_or_default();
                let why = description(detail);
                format!("Bearer error=\"insufficient_scope\", {scope}error_description=\"{why}\", {metadata}")
            }
            // No challenge: `insufficient_scope` would send MCP clients into a step-up for a
            // scope they already hold (MCP authorization, "Scope Challenge Handling").
            Reason::MissingRole { .. } => return None,
        })
    }

    fn slug(&self) -> &'static str {
        match &self.reason {
            Reason::MissingToken => "missing-token",
            Reason::InvalidRequest(_) => "invalid-request",
            Reason::InvalidToken(ValidationError::KeysUnavailable) => "identity-provider-unavailable",
            Reason::InvalidToken(_) => "invalid-token",
            Reason::InsufficientScope { .. } => "insufficient-scope",
            Reason::MissingRole { .. } => "missing-role",
        }
    }
}

/// An `error_description` as RFC 6750 §3 allows it: "MUST NOT include characters outside the
/// set %x20-21 / %x23-5B / %x5D-7E" (printable ASCII without `"` and `\`, which would end or
/// escape the quoted string); `'` stands in for a double quote, anything else is dropped.
fn description(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '"' => Some('\''),
            '\\' => None,
            ' '..='~' => Some(c),
            _ => None,
        })
        .collect()
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut response = Problem::new(self.status(), self.slug(), self.detail()).into_response();
        let headers = response.headers_mut();
        if let Some(Ok(value)) = self.challenge().map(|c| HeaderValue::from_str(&c)) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
