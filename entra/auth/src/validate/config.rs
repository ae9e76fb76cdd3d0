//! What a [`TokenValidator`](super::TokenValidator) accepts: audiences, versions, intervals.

use std::time::Duration;

use url::Url;

use super::caller::TokenVersion;

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
    /// being trusted. The refresh runs in the background: requests keep the current keys
    /// meanwhile, and keep them if the IdP cannot be reached.
    pub metadata_max_age: Duration,
    /// After a failed metadata fetch, wait this long before trying again.
    pub failure_backoff: Duration,
    /// The most one load of metadata and keys (two or three requests, one after another) may
    /// take: requests that need keys wait for it, so it bounds their wait, not each request.
    pub fetch_timeout: Duration,
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
            fetch_timeout: Duration::from_secs(10),
            accepted_tokens: 1024,
        }
    }

    pub fn versions(mut self, versions: &[TokenVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }
}
