//! Obtaining tokens: from a managed identity, from the developer's own CLI sign-in, as a confidential client (authorization code,
//! refresh, client credentials), and On-Behalf-Of a user, with a cache that refreshes before
//! expiry and collapses concurrent misses into one request.
//!
//! Tokens are held as [`AccessToken`], whose `Debug` never prints the secret.

mod cache;
mod client;
pub mod developer;
mod managed_identity;
mod obo;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

pub use cache::TokenCache;
pub use client::{ClientCredential, ConfidentialClient, TokenResponse};
pub use managed_identity::{ManagedIdentityCredential, ManagedIdentitySource};
pub use obo::OnBehalfOf;

/// The audience a managed identity's token must have to serve as a client assertion through a
/// federated identity credential.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Network calls to an identity endpoint give up after this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// A bearer token and when it expires.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<str>,
    /// Seconds since the Unix epoch.
    pub expires_on: u64,
}

impl AccessToken {
    pub fn new(secret: impl Into<Arc<str>>, expires_on: u64) -> Self {
        AccessToken { secret: secret.into(), expires_on }
    }

    /// A token that expires `expires_in` seconds from now.
    pub fn expiring_in(secret: impl Into<Arc<str>>, expires_in: u64) -> Self {
        AccessToken::new(secret, now_secs().saturating_add(expires_in))
    }

    /// The token itself. Send it in an `Authorization` header; never log it.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Seconds until expiry (0 if expired).
    pub fn remaining(&self) -> u64 {
        self.expires_on.saturating_sub(now_secs())
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("secret", &"<redacted>").field("expires_on", &self.expires_on).finish()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Why a token could not be obtained. Messages name the endpoint and Entra's own error, never
/// a token or secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcquireError {
    #[error("cannot reach the identity endpoint {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    /// The identity provider answered with an OAuth error (`AADSTS...` codes for Entra).
    #[error("the identity provider refused the request ({error}): {description}")]
    Rejected { status: u16, error: String, description: String, codes: Vec<u32> },
    #[error("unexpected answer from {endpoint}: {reason}")]
    BadResponse { endpoint: String, reason: String },
    #[error("{0}")]
    NotConfigured(String),
}

impl AcquireError {
    /// Entra's `AADSTS` error codes, when the provider sent any.
    pub fn codes(&self) -> &[u32] {
        match self {
            AcquireError::Rejected { codes, .. } => codes,
            _ => &[],
        }
    }

    /// Whether retrying later may help (the endpoint was down or overloaded).
    pub fn is_transient(&self) -> bool {
        match self {
            AcquireError::Unreachable { .. } => true,
            AcquireError::Rejected { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

/// The OAuth error body Entra returns (RFC 6749 §5.2 plus Entra's fields).
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
}

/// Turns a response into `T`, or into the OAuth error it carries.
pub(crate) async fn read_response<T: for<'de> Deserialize<'de>>(
    endpoint: &str,
    result: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, AcquireError> {
    let response =
        result.map_err(|e| AcquireError::Unreachable { endpoint: endpoint.to_string(), reason: describe(e) })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| AcquireError::Unreachable { endpoint: endpoint.to_string(), reason: describe(e) })?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| AcquireError::BadResponse { endpoint: endpoint.to_string(), reason: e.to_string() });
    }
    match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(e) => Err(AcquireError::Rejected {
            status: status.as_u16(),
            error: e.error,
            description: e.error_description,
            codes: e.error_codes,
        }),
        Err(_) => Err(AcquireError::Rejected {
            status: status.as_u16(),
            error: format!("http_{}", status.as_u16()),
            description: status.canonical_reason().unwrap_or("error").to_string(),
            codes: Vec::new(),
        }),
    }
}

/// reqwest errors include the URL, which may carry query parameters: keep the failure's
/// description and its causes, without the URL.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
