//! The user's tokens, and renewing them from the refresh token before the access token expires.
//!
//! Refresh tokens rotate: each one can be redeemed once. Two requests of one session that both
//! find the access token stale must not both redeem it (the second would fail and sign the user
//! out), so renewals are single-flight per refresh token, and each result is kept for a while:
//! a request that read the session before another saved the renewed tokens still gets them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entra_auth::acquire::{AccessToken, TokenResponse};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use service_kit::clock::unix_now;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::oidc::Oidc;

/// How long a renewal's result is remembered for late readers of the old refresh token.
const RETAIN: Duration = Duration::from_secs(600);

/// What the session keeps for calling orders-mcp. Only ever on the server (the session store);
/// `Debug` shows no token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tokens {
    /// For orders-mcp (`access_as_user`).
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    pub expires_at: u64,
    #[serde(serialize_with = "expose")]
    pub refresh_token: SecretString,
}

/// Tokens are written to the server-side session store, and only there.
fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

impl Tokens {
    /// From a token response; a response without a new refresh token keeps `previous`'s.
    pub fn from_response(response: &TokenResponse, previous_refresh: Option<&str>) -> Option<Tokens> {
        let refresh_token = match &response.refresh_token {
            Some(rotated) => rotated.clone(),
            None => SecretString::from(previous_refresh?),
        };
        let issued_at = unix_now();
        Some(Tokens {
            access_token: response.access_token.clone(),
            issued_at,
            expires_at: issued_at.saturating_add(response.expires_in),
            refresh_token,
        })
    }

    /// Renew a quarter of the lifetime (at most two minutes) before expiry.
    pub fn needs_refresh(&self, now: u64) -> bool {
        let margin = (self.expires_at.saturating_sub(self.issued_at) / 4).min(120);
        now.saturating_add(margin) >= self.expires_at
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    pub fn access(&self) -> AccessToken {
        AccessToken::new(self.access_token.expose_secret(), self.expires_at)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// The refresh token is no longer accepted (expired, revoked, already used).
    #[error("the sign-in can no longer be renewed: {0}")]
    SignInRequired(String),
    /// The identity provider could not be reached; trying later may work.
    #[error("the identity provider is unreachable: {0}")]
    Unavailable(String),
}

struct Flight {
    started: Instant,
    result: Arc<OnceCell<Result<Tokens, RefreshError>>>,
}

pub struct Refresher {
    oidc: Arc<Oidc>,
    flights: Mutex<HashMap<[u8; 32], Flight>>,
}

impl Refresher {
    pub fn new(oidc: Arc<Oidc>) -> Self {
        Refresher { oidc, flights: Mutex::new(HashMap::new()) }
    }

    /// `tokens`, renewed if they are about to expire.
    pub async fn fresh(&self, mut tokens: Tokens) -> Result<Tokens, RefreshError> {
        // A remembered renewal may itself be stale by now: follow the chain a few steps.
        for _ in 0..4 {
            if !tokens.needs_refresh(unix_now()) {
                return Ok(tokens);
            }
            tokens = self.renew(&tokens).await?;
        }
        Ok(tokens)
    }

    async fn renew(&self, tokens: &Tokens) -> Result<Tokens, RefreshError> {
        let key: [u8; 32] = Sha256::digest(tokens.refresh_token.expose_secret().as_bytes()).into();
        let cell = {
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            flights.retain(|_, f| f.started.elapsed() < RETAIN);
            flights
                .entry(key)
                .or_insert_with(|| Flight { started: Instant::now(), result: Arc::default() })
                .result
                .clone()
        };
        let result = cell
            .get_or_init(|| async {
                match self.oidc.refresh(tokens.refresh_token.expose_secret()).await {
                    Ok(response) => Tokens::from_response(&response, Some(tokens.refresh_token.expose_secret()))
                        .ok_or_else(|| RefreshError::SignInRequired("no refresh token".into())),
                    Err(e) if e.is_transient() => Err(RefreshError::Unavailable(e.to_string())),
                    Err(e) => Err(RefreshError::SignInRequired(e.to_string())),
                }
            })
            .await
            .clone();
        if matches!(result, Err(RefreshError::Unavailable(_))) {
            // Not worth remembering: the next request tries again.
            let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
            if flights.get(&key).is_some_and(|f| Arc::ptr_eq(&f.result, &cell)) {
                flights.remove(&key);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issued_at: u64, expires_at: u64) -> Tokens {
        Tokens { access_token: "eyJ.secret".into(), issued_at, expires_at, refresh_token: "rt".into() }
    }

    #[test]
    fn renewal_happens_ahead_of_expiry() {
        let t = tokens(1000, 1000 + 3600);
        assert!(!t.needs_refresh(1000 + 3600 - 121));
        assert!(t.needs_refresh(1000 + 3600 - 120));
        // Short-lived tokens renew a quarter of their lifetime ahead.
        let t = tokens(1000, 1008);
        assert!(!t.needs_refresh(1005) && t.needs_refresh(1006));
        assert!(!t.is_expired(1007) && t.is_expired(1008));
        assert!(!format!("{t:?}").contains("secret"));
    }
}
