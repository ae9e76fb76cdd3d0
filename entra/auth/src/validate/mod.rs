//! Access-token validation, as a resource server must do it for Entra ID tokens.
//!
//! The order of checks is chosen so that cheap, attacker-controlled input is rejected before
//! any key lookup or signature work: size and shape, then the header (`RS256` only, `kid`
//! present, no `crit`), then the key (from the tenant's JWKS, never from `jku`/`x5u`/`jwk`
//! headers), then the signature, then the claims (`iss`, `aud`, `exp`/`nbf`, `tid`, `ver`).
//! A token that passed all of that before is recognised by its text until it expires
//! (see `accepted`), so repeated requests with the same token skip the RSA work.

mod accepted;
mod caller;
mod id_token;
mod jws;
mod keys;

use std::time::Duration;

use url::Url;

use caller::Claims;
pub use caller::{Caller, CallerKind, TokenVersion};
pub use id_token::IdToken;
use jws::Jws;
pub(crate) use jws::decode_payload;
use keys::KeyStore;

/// Tokens longer than this are refused before any parsing. Entra access tokens are a few KB,
/// even with many groups; 16 KiB leaves room and bounds the work an attacker can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a [`TokenValidator`] accepts.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// Base URL the validator fetches OpenID metadata from: `https://login.microsoftonline.com`,
    /// or the emulator (possibly on an internal address, while tokens name its public issuer).
    pub authority: Url,
    pub tenant_id: String,
    /// Accepted `aud` values: typically the app's client id GUID and its `api://` URI.
    pub audiences: Vec<String>,
    /// Accepted token versions; each adds that version's issuer from the discovery documents.
    pub versions: Vec<TokenVersion>,
    /// Allowed clock skew for `exp` and `nbf`.
    pub leeway: Duration,
    /// At most one JWKS refetch for an unknown `kid` per this interval, so a flood of forged
    /// `kid`s cannot make the service hammer the identity provider.
    pub key_refetch_interval: Duration,
    /// Metadata and keys are refreshed when older than this, so a key the IdP withdrew stops
    /// being trusted.
    pub metadata_max_age: Duration,
    /// After a failed metadata fetch, wait this long before trying again.
    pub failure_backoff: Duration,
    /// How many accepted tokens to recognise without a new signature check (until each
    /// expires; cleared whenever the keys are refetched). 0 checks every token in full.
    pub accepted_tokens: usize,
}

impl ValidatorConfig {
    /// Accepts both token versions for the given audiences, with the default intervals.
    pub fn new(authority: Url, tenant_id: impl Into<String>, audiences: Vec<String>) -> Self {
        ValidatorConfig {
            authority,
            tenant_id: tenant_id.into(),
            audiences,
            versions: vec![TokenVersion::V1, TokenVersion::V2],
            leeway: Duration::from_secs(60),
            key_refetch_interval: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(24 * 60 * 60),
            failure_backoff: Duration::from_secs(2),
            accepted_tokens: 1024,
        }
    }

    pub fn versions(mut self, versions: &[TokenVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }
}

/// Why a token was refused. The messages are fixed strings: nothing from the token (not even
/// its `kid`) is echoed, so they are safe in a `WWW-Authenticate` header and in logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("only RS256-signed tokens are accepted")]
    UnsupportedAlgorithm,
    #[error("the token has no key id")]
    MissingKeyId,
    #[error("the token uses critical header extensions")]
    CriticalHeader,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    WrongAudience,
    #[error("the token was issued by an untrusted issuer")]
    WrongIssuer,
    #[error("the token was issued for another tenant")]
    WrongTenant,
    #[error("the token version does not match its issuer")]
    VersionMismatch,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the ID token does not answer this sign-in (nonce mismatch)")]
    NonceMismatch,
    /// The identity provider's metadata or keys could not be loaded: nothing can be accepted.
    #[error("the identity provider's signing keys are unavailable")]
    KeysUnavailable,
}

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

    /// How many times metadata or keys were fetched: for tests and diagnostics.
    pub fn fetch_count(&self) -> u64 {
        self.keys.fetch_count()
    }

    /// Validates `token` and returns who is calling.
    pub async fn validate(&self, token: &str) -> Result<Caller, ValidationError> {
        // Bounded before it is hashed for the lookup below.
        if token.len() > MAX_TOKEN_LEN {
            return Err(ValidationError::TooLarge);
        }
        let leeway = self.leeway();
        let now = now_secs();
        let current = self.keys.current().await?;
        if let Some(caller) = current.accepted.get(token, now, leeway) {
            return Ok(caller);
        }
        let jws = Jws::parse(token)?;
        let (loaded, key) = self.keys.key(current, &jws.kid).await?;
        let claims: Claims = jws.verify(&key)?;
        claims.registered().check(now, leeway, &loaded.issuers, &self.config.audiences)?;
        let caller = Caller::from_claims(claims, &self.config.tenant_id, &loaded.issuers)?;
        loaded.accepted.insert(token, &caller, now, leeway);
        Ok(caller)
    }

    /// Validates an OpenID Connect ID token issued to this app (the configured audiences name
    /// its client id) for the sign-in that sent `nonce`.
    pub async fn validate_id_token(&self, token: &str, nonce: &str) -> Result<IdToken, ValidationError> {
        let jws = Jws::parse(token)?;
        let (loaded, key) = self.keys.key(self.keys.current().await?, &jws.kid).await?;
        let claims: id_token::IdClaims = jws.verify(&key)?;
        claims.registered().check(now_secs(), self.leeway(), &loaded.issuers, &self.config.audiences)?;
        IdToken::from_claims(claims, &self.config.tenant_id, &loaded.issuers, nonce)
    }

    fn leeway(&self) -> i64 {
        i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX)
    }
}

/// Seconds since the Unix epoch (the unit of `exp`).
fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The issuers a validator trusts, learned from the discovery documents.
#[derive(Debug, Clone, Default)]
pub(crate) struct Issuers {
    pub v1: Option<String>,
    pub v2: Option<String>,
}

impl Issuers {
    fn trusts(&self, iss: &str) -> bool {
        self.v1.as_deref() == Some(iss) || self.v2.as_deref() == Some(iss)
    }
}
