//! [`TokenValidator`]: access-token validation, as a resource server must do it for Entra ID
//! tokens.
//!
//! The order of checks is chosen so that cheap, attacker-controlled input is rejected before
//! any key lookup or signature work: size and shape, then the header (`RS256` only, `kid`
//! present, no `crit`), then the key (from the tenant's JWKS, never from `jku`/`x5u`/`jwk`
//! headers), then the signature, then the claims (`iss`, `aud`, `exp`/`nbf`, `tid`, `ver`).
//! A token that passed all of that before is recognised by its text until it expires
//! (see `accepted`), so repeated requests with the same token skip the RSA work.

use std::sync::Arc;

use service_kit::clock::unix_now_i64;

use super::caller::{Caller, Claims};
use super::config::ValidatorConfig;
use super::error::ValidationError;
use super::id_token::{IdClaims, IdToken};
use super::jws::{Jws, MAX_TOKEN_LEN};
use super::keys::KeyStore;

/// Validates Entra access tokens for one resource. Cheap to share: wrap it in an `Arc`.
pub struct TokenValidator {
    config: ValidatorConfig,
    keys: KeyStore,
}

impl TokenValidator {
    pub fn new(config: ValidatorConfig, http: reqwest::Client) -> Self {
        let keys = KeyStore::new(&config, http);
        TokenValidator { config, keys }
    }

    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// Whether metadata and keys are loaded (loading them if needed): a readiness signal.
    pub async fn ready(&self) -> bool {
        self.keys.current().await.is_ok()
    }

    /// Validates `token` and returns who is calling (shared with the accepted tokens).
    pub async fn validate(&self, token: &str) -> Result<Arc<Caller>, ValidationError> {
        // Bounded before it is hashed for the lookup below.
        if token.len() > MAX_TOKEN_LEN {
            return Err(ValidationError::TooLarge);
        }
        let leeway = self.leeway();
        let now = unix_now_i64();
        let current = self.keys.current().await?;
        if let Some(caller) = current.accepted.get(token, now, leeway) {
            return Ok(caller);
        }
        let jws = Jws::parse(token)?;
        let (loaded, key) = self.keys.key(current, &jws.kid).await?;
        let claims: Claims = jws.verify(&key)?;
        claims.registered().check(now, leeway, &loaded.issuers, &self.config.audiences)?;
        let caller = Arc::new(Caller::from_claims(claims, jws.header(), &self.config.tenant_id, &loaded.issuers)?);
        loaded.accepted.insert(token, &caller, now, leeway);
        Ok(caller)
    }

    /// Validates an OpenID Connect ID token issued to this app (the configured audiences name
    /// its client id) for the sign-in that sent `nonce`.
    pub async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<IdToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let (loaded, key) = self.keys.key(self.keys.current().await?, &jws.kid).await?;
        let claims: IdClaims = jws.verify(&key)?;
        claims.registered().check(unix_now_i64(), self.leeway(), &loaded.issuers, &self.config.audiences)?;
        IdToken::from_claims(claims, &self.config.tenant_id, &loaded.issuers, nonce)
    }

    fn leeway(&self) -> i64 {
        i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX)
    }
}
