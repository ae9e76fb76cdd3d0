//! A bearer token and when it expires, and the token endpoint's answer that carries one.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use service_kit::clock::unix_now;

use super::http::lenient_u64;

/// A bearer token and when it expires. Its `Debug` never shows the token (`SecretString`).
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// Shared: cached tokens are handed out on every request.
    secret: Arc<SecretString>,
    /// Seconds since the Unix epoch.
    pub expires_on: u64,
}

impl AccessToken {
    pub fn new(secret: impl Into<SecretString>, expires_on: u64) -> Self {
        AccessToken { secret: Arc::new(secret.into()), expires_on }
    }

    /// A token that expires `expires_in` seconds from now.
    pub fn expiring_in(secret: impl Into<SecretString>, expires_in: u64) -> Self {
        AccessToken::new(secret, unix_now().saturating_add(expires_in))
    }

    /// The token itself. Send it in an `Authorization` header; never log it.
    pub fn secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// Seconds until expiry (0 if expired).
    pub fn remaining(&self) -> u64 {
        self.expires_on.saturating_sub(unix_now())
    }
}

/// The successful token endpoint answer. `Debug` shows no token.
#[derive(Clone, Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    #[serde(default)]
    pub token_type: String,
    /// Seconds; Entra sends a number, some endpoints a string.
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    #[serde(default)]
    pub id_token: Option<SecretString>,
}

impl TokenResponse {
    pub fn access(&self) -> AccessToken {
        AccessToken::expiring_in(self.access_token.expose_secret(), self.expires_in)
    }
}
