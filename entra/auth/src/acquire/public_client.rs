//! What a person's sign-in through a public client needs, whichever flow signs them in (by
//! device code, in the browser): the client and its tenant's v2 endpoints, an HTTP client, the
//! prompt that shows the person what to do, and a token cache per scope, so a run signs in
//! once (a new fetch is a new sign-in).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::cache::TokenCache;
use super::error::AcquireError;
use super::http::REQUEST_TIMEOUT;
use super::token::AccessToken;

/// Tokens are fetched again when they have less than this left.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Shows the person what to do (Entra's device-code message, or the address to open).
pub type Prompt = Arc<dyn Fn(&str) + Send + Sync>;

pub(super) struct PublicClient {
    pub http: reqwest::Client,
    authority: Url,
    pub tenant: String,
    pub client_id: String,
    pub prompt: Prompt,
    cache: TokenCache<String>,
    /// The flow's name, in errors ("device code sign-in", "browser sign-in").
    flow: &'static str,
}

impl PublicClient {
    /// `authority`: e.g. `https://login.microsoftonline.com`; `client_id`: a public client
    /// registered in `tenant`.
    pub fn new(
        flow: &'static str,
        authority: Url,
        tenant: &str,
        client_id: &str,
        prompt: Prompt,
    ) -> Result<Self, AcquireError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| AcquireError::NotConfigured(format!("{flow}: {e}")))?;
        Ok(PublicClient {
            http,
            authority,
            tenant: tenant.to_string(),
            client_id: client_id.to_string(),
            prompt,
            cache: TokenCache::new(REFRESH_MARGIN),
            flow,
        })
    }

    /// The cached token for `scope`, or the one `sign_in` gets.
    pub async fn token<F, Fut>(&self, scope: &str, sign_in: F) -> Result<AccessToken, AcquireError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken, AcquireError>>,
    {
        self.cache.get_or_fetch(scope.to_string(), sign_in).await
    }

    /// The tenant's v2 endpoint `name` (`devicecode`, `authorize`, `token`).
    pub fn endpoint(&self, name: &str) -> Result<Url, AcquireError> {
        let base = self.authority.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{}/oauth2/v2.0/{name}", self.tenant))
            .map_err(|e| AcquireError::NotConfigured(format!("{}: authority {base}: {e}", self.flow)))
    }
}

impl std::fmt::Debug for PublicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicClient")
            .field("authority", &self.authority.as_str())
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}
