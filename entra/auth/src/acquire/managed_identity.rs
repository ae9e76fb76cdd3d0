//! Managed identity tokens, from the endpoint the hosting platform provides.
//!
//! Two sources, as Azure offers them:
//! - App Service / Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (sent back as
//!   `X-IDENTITY-HEADER`), `api-version=2019-08-01`. The emulator serves the same endpoint
//!   locally, and its broker mode serves it from a developer's own sign-in.
//! - IMDS on virtual machines: `http://169.254.169.254/metadata/identity/oauth2/token`, `Metadata: true`.
//!
//! This is a small client rather than `azure_identity::ManagedIdentityCredential` because the
//! services need the endpoint as explicit configuration (tests run several in one process, where
//! process-wide environment variables cannot differ) and typed errors they can show users. The
//! emulator is tested against Microsoft's own client libraries for wire compatibility.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::cache::TokenCache;
use super::error::AcquireError;
use super::http::{REQUEST_TIMEOUT, lenient_u64, read_response};
use super::token::AccessToken;

const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Where the platform serves managed-identity tokens. `Debug` shows no secret.
#[derive(Clone, Debug)]
pub enum ManagedIdentitySource {
    /// App Service / Container Apps style endpoint with its shared secret header.
    AppService {
        endpoint: Url,
        header: SecretString,
    },
    Imds {
        endpoint: Url,
    },
}

impl ManagedIdentitySource {
    /// The source the platform advertises: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` when set
    /// (App Service, Container Apps, the emulator), IMDS otherwise.
    pub fn from_env() -> Result<Self, AcquireError> {
        match (std::env::var("IDENTITY_ENDPOINT"), std::env::var("IDENTITY_HEADER")) {
            (Ok(endpoint), Ok(header)) => {
                let endpoint = Url::parse(&endpoint)
                    .map_err(|e| AcquireError::NotConfigured(format!("IDENTITY_ENDPOINT is not a URL: {e}")))?;
                Ok(ManagedIdentitySource::AppService { endpoint, header: header.into() })
            }
            (Ok(_), Err(_)) => {
                Err(AcquireError::NotConfigured("IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not".into()))
            }
            _ => {
                let endpoint = Url::parse(IMDS_ENDPOINT).map_err(|e| AcquireError::NotConfigured(e.to_string()))?;
                Ok(ManagedIdentitySource::Imds { endpoint })
            }
        }
    }
}

#[derive(Deserialize)]
struct MiTokenResponse {
    access_token: String,
    #[serde(default, deserialize_with = "opt_lenient_u64")]
    expires_on: Option<u64>,
    #[serde(default, deserialize_with = "opt_lenient_u64")]
    expires_in: Option<u64>,
}

fn opt_lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_u64(d).map(Some)
}

/// Tokens for a (system- or user-assigned) managed identity, cached per resource.
#[derive(Debug)]
pub struct ManagedIdentityCredential {
    http: reqwest::Client,
    source: ManagedIdentitySource,
    /// For a user-assigned identity, its client id.
    client_id: Option<String>,
    cache: TokenCache<String>,
}

impl ManagedIdentityCredential {
    pub fn new(http: reqwest::Client, source: ManagedIdentitySource, client_id: Option<String>) -> Self {
        ManagedIdentityCredential { http, source, client_id, cache: TokenCache::new(Duration::from_secs(300)) }
    }

    /// A token for `resource` (an app id URI or `api://AzureADTokenExchange`; a trailing
    /// `/.default` is accepted and removed, as the v1-style endpoint expects a resource).
    pub async fn token(&self, resource: &str) -> Result<AccessToken, AcquireError> {
        let resource = resource.strip_suffix("/.default").unwrap_or(resource).to_string();
        self.cache.get_or_fetch(resource.clone(), || self.fetch(resource)).await
    }

    async fn fetch(&self, resource: String) -> Result<AccessToken, AcquireError> {
        let (endpoint, api_version) = match &self.source {
            ManagedIdentitySource::AppService { endpoint, .. } => (endpoint, "2019-08-01"),
            ManagedIdentitySource::Imds { endpoint } => (endpoint, "2018-02-01"),
        };
        let mut query = vec![("api-version", api_version), ("resource", resource.as_str())];
        if let Some(id) = &self.client_id {
            query.push(("client_id", id));
        }
        let request = self.http.get(endpoint.clone()).query(&query).timeout(REQUEST_TIMEOUT);
        let request = match &self.source {
            ManagedIdentitySource::AppService { header, .. } => {
                request.header("X-IDENTITY-HEADER", header.expose_secret())
            }
            ManagedIdentitySource::Imds { .. } => request.header("Metadata", "true"),
        };
        let response: MiTokenResponse = read_response(endpoint.as_str(), request.send().await).await?;
        match (response.expires_on, response.expires_in) {
            (Some(on), _) => Ok(AccessToken::new(response.access_token, on)),
            (None, Some(seconds)) => Ok(AccessToken::expiring_in(response.access_token, seconds)),
            (None, None) => Err(AcquireError::BadResponse {
                endpoint: endpoint.to_string(),
                reason: "the token has no expiry".into(),
            }),
        }
    }
}
