//! OpenID metadata and the JWKS cache behind a [`TokenValidator`](super::TokenValidator).
//!
//! The loaded state is an immutable snapshot behind a short `RwLock`, so validating a token
//! costs one read lock and a hash lookup. All fetching goes through one async mutex: concurrent
//! misses wait for a single fetch, and a schedule rate-limits fetches triggered by unknown `kid`s.
//! Metadata past its age is refreshed in the background while requests keep using it: a slow or
//! stopped identity provider must not hold up tokens signed with keys we already have.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde::Deserialize;
use url::Url;

use super::accepted::Accepted;
use super::caller::TokenVersion;
use super::config::ValidatorConfig;
use super::error::ValidationError;
use super::issuers::Issuers;
use super::jws::{VerifyingKey, verifying_key};

pub(crate) struct Loaded {
    pub issuers: Issuers,
    /// Tokens accepted with exactly these keys.
    pub accepted: Accepted,
    keys: HashMap<String, Arc<VerifyingKey>>,
    loaded_at: Instant,
}

/// Shared with the background refresh task, hence the `Arc` inside.
pub(crate) struct KeyStore(Arc<Store>);

struct Store {
    http: reqwest::Client,
    config: ValidatorConfig,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// When the next fetch may start; held across the fetch, so fetches never overlap.
    schedule: tokio::sync::Mutex<Option<Instant>>,
    /// A background refresh is under way: stale metadata starts at most one.
    refreshing: AtomicBool,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: Url,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    alg: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeyStore {
    pub fn new(config: &ValidatorConfig, http: reqwest::Client) -> Self {
        KeyStore(Arc::new(Store {
            http,
            config: config.clone(),
            loaded: RwLock::new(None),
            schedule: tokio::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }))
    }

    /// The loaded metadata; loaded first if there is none. Metadata older than its refresh age
    /// is still served, while one background task refreshes it.
    pub async fn current(&self) -> Result<Arc<Loaded>, ValidationError> {
        let Some(loaded) = self.0.snapshot() else {
            return self.0.refresh(None).await;
        };
        if !self.0.is_fresh(&loaded) && !self.0.refreshing.swap(true, Ordering::AcqRel) {
            let store = self.0.clone();
            tokio::spawn(async move {
                let _ = store.refresh(None).await;
                store.refreshing.store(false, Ordering::Release);
            });
        }
        Ok(loaded)
    }

    /// The key for `kid` in `loaded` (from [`current`](Self::current)), or after a refetch
    /// (rate-limited, and bounded by the fetch timeout) if `kid` is unknown there; with the
    /// metadata it came from.
    pub async fn key(
        &self,
        loaded: Arc<Loaded>,
        kid: &str,
    ) -> Result<(Arc<Loaded>, Arc<VerifyingKey>), ValidationError> {
        if let Some(key) = loaded.keys.get(kid).cloned() {
            return Ok((loaded, key));
        }
        let loaded = self.0.refresh(Some(kid)).await?;
        let key = loaded.keys.get(kid).cloned().ok_or(ValidationError::UnknownKey)?;
        Ok((loaded, key))
    }
}

impl Store {
    fn snapshot(&self) -> Option<Arc<Loaded>> {
        // A poisoned lock only means another thread panicked mid-swap of an Arc: the value is intact.
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn is_fresh(&self, loaded: &Loaded) -> bool {
        loaded.loaded_at.elapsed() < self.config.metadata_max_age
    }

    async fn refresh(&self, wanted_kid: Option<&str>) -> Result<Arc<Loaded>, ValidationError> {
        let mut next_allowed = self.schedule.lock().await;
        // Whoever held the lock before us may already have fetched what we need.
        let snapshot = self.snapshot();
        if let Some(loaded) = &snapshot {
            let has_kid = wanted_kid.is_none_or(|kid| loaded.keys.contains_key(kid));
            if has_kid && self.is_fresh(loaded) {
                return Ok(loaded.clone());
            }
        }
        if next_allowed.is_some_and(|at| Instant::now() < at) {
            return snapshot.ok_or(ValidationError::KeysUnavailable);
        }
        // Counted as a failed attempt until it succeeds or fails: the fetch runs in the caller's
        // request, and a caller that gives up (a client hanging up drops the request) would
        // otherwise leave the schedule as it was, so each forged `kid` in a request abandoned
        // mid-fetch could start another one.
        *next_allowed = Some(Instant::now() + self.config.failure_backoff);
        let deadline = self.config.fetch_timeout;
        let fetched = tokio::time::timeout(deadline, self.fetch())
            .await
            .unwrap_or_else(|_| Err(format!("no metadata and keys within {} ms", deadline.as_millis())));
        match fetched {
            Ok(loaded) => {
                *next_allowed = Some(Instant::now() + self.config.key_refetch_interval);
                let loaded = Arc::new(loaded);
                *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Some(loaded.clone());
                tracing::debug!(keys = loaded.keys.len(), "loaded identity provider metadata and signing keys");
                Ok(loaded)
            }
            Err(reason) => {
                *next_allowed = Some(Instant::now() + self.config.failure_backoff);
                tracing::warn!(authority = %self.config.authority, %reason, "cannot load identity provider metadata");
                // Keep trusting the keys we have: an IdP outage must not take the service down.
                snapshot.ok_or(ValidationError::KeysUnavailable)
            }
        }
    }

    fn discovery_url(&self, version: TokenVersion) -> Result<Url, String> {
        let path = match version {
            TokenVersion::V1 => {
                format!("{}/.well-known/openid-configuration", self.config.tenant_id)
            }
            TokenVersion::V2 => format!("{}/v2.0/.well-known/openid-configuration", self.config.tenant_id),
        };
        let mut base = self.config.authority.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join(&path).map_err(|e| format!("bad authority URL: {e}"))
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: Url) -> Result<T, String> {
        let response = self
            .http
            .get(url.clone())
            .timeout(self.config.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| format!("GET {url}: {e}"))
    }

    async fn fetch(&self) -> Result<Loaded, String> {
        // The v2 document always: it names the JWKS (shared by v1 and v2 tokens).
        let v2: Discovery = self.get_json(self.discovery_url(TokenVersion::V2)?).await?;
        let mut issuers = Issuers::default();
        if self.config.versions.contains(&TokenVersion::V1) {
            let v1: Discovery = self.get_json(self.discovery_url(TokenVersion::V1)?).await?;
            issuers.v1 = Some(v1.issuer);
        }
        if self.config.versions.contains(&TokenVersion::V2) {
            issuers.v2 = Some(v2.issuer);
        }
        let jwks: Jwks = self.get_json(v2.jwks_uri).await?;
        let keys: HashMap<_, _> = jwks
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == "RS256"))
            .filter_map(|k| {
                let key = verifying_key(k.n.as_deref()?, k.e.as_deref()?)?;
                Some((k.kid?, Arc::new(key)))
            })
            .collect();
        if keys.is_empty() {
            return Err("the JWKS has no usable RS256 signing key".into());
        }
        Ok(Loaded { issuers, accepted: Accepted::new(self.config.accepted_tokens), keys, loaded_at: Instant::now() })
    }
}
