//! Entra's error shapes: the JSON body of the token endpoint, and the error redirect / page of
//! the authorize endpoint.
//!
//! Clients match on `error`, on the `AADSTS` code at the start of `error_description`, and on
//! `error_codes`, so all three follow Entra exactly.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use service_kit::secret::RandomError;
use time::OffsetDateTime;
use time::macros::format_description;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    pub status: StatusCode,
    /// The OAuth error (`invalid_grant`, `invalid_client`, ...).
    pub error: &'static str,
    /// The AADSTS number.
    pub code: u32,
    pub message: String,
    /// Entra's `suberror`, e.g. `consent_required`.
    pub suberror: Option<&'static str>,
    /// `interaction_required` only: the claims request (JSON) to send interactively.
    pub claims: Option<String>,
}

impl EntraError {
    pub fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        EntraError { status, error, code, message: message.into(), suberror: None, claims: None }
    }

    pub fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    pub fn with_claims(mut self, claims: String) -> Self {
        self.claims = Some(claims);
        self
    }

    /// `error_description` as Entra writes it.
    pub fn description(&self, trace_id: &Uuid, correlation_id: &Uuid, timestamp: &str) -> String {
        format!(
            "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
            self.code, self.message
        )
    }

    /// Entra's page about the AADSTS code.
    pub fn error_uri(&self) -> String {
        format!("https://login.microsoftonline.com/error?code={}", self.code)
    }

    // The common failures, by the codes Entra uses for them.

    pub fn missing_parameter(name: &str) -> Self {
        EntraError::new(
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn tenant_not_found(tenant: &str) -> Self {
        EntraError::new(
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        )
    }

    pub fn unknown_client(client_id: &str) -> Self {
        EntraError::new(
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
            ),
        )
    }

    pub fn bad_redirect_uri(uri: &str, client_id: &str) -> Self {
        EntraError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
        )
    }

    pub fn invalid_scope(detail: impl std::fmt::Display) -> Self {
        EntraError::new(
            "invalid_scope",
            70011,
            format!("The provided value for the input parameter 'scope' is not valid. {detail}"),
        )
    }

    pub fn consent_required(client_id: &str, client_name: &str) -> Self {
        EntraError::new(
            "invalid_grant",
            65001,
            format!("The user or administrator has not consented to use the application with ID '{client_id}' named '{client_name}'. Send an interactive authorization request for this user and resource."),
        )
        .with_suberror("consent_required")
    }

    pub fn invalid_grant(message: impl Into<String>) -> Self {
        EntraError::new("invalid_grant", 70000, message)
    }

    /// A confidential client's grant presented no credential (or a public client asked for it).
    pub fn credential_required() -> Self {
        EntraError::new(
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// The emulator itself failed (no randomness from the OS, a signing error): nothing is
    /// issued, rather than something predictable. `cause` is logged, not sent.
    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "cannot issue a token or code");
        EntraError::new(
            "server_error",
            50000,
            "There was an error issuing a token or an issue with our sign-in service.",
        )
    }
}

impl From<RandomError> for EntraError {
    fn from(e: RandomError) -> Self {
        EntraError::server_error(e)
    }
}

/// The token endpoint's error body.
#[derive(Serialize)]
struct Body {
    error: &'static str,
    error_description: String,
    error_codes: [u32; 1],
    timestamp: String,
    trace_id: Uuid,
    correlation_id: Uuid,
    error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suberror: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<String>,
}

pub fn timestamp() -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    OffsetDateTime::now_utc().format(&format).unwrap_or_default()
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let (trace_id, correlation_id, timestamp) = (Uuid::new_v4(), Uuid::new_v4(), timestamp());
        tracing::info!(error = self.error, code = self.code, "refused: AADSTS{} {}", self.code, self.message);
        let body = Body {
            error: self.error,
            error_description: self.description(&trace_id, &correlation_id, &timestamp),
            error_codes: [self.code],
            timestamp,
            trace_id,
            correlation_id,
            error_uri: self.error_uri(),
            suberror: self.suberror,
            claims: self.claims,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_generator_answers_server_error_not_a_predictable_code() {
        let e = EntraError::from(RandomError);
        assert_eq!((e.status, e.error, e.code), (StatusCode::INTERNAL_SERVER_ERROR, "server_error", 50000));
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
