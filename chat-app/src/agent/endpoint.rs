//! Where model requests go and how they authenticate: an `async_openai::config::Config`.
//!
//! async-openai's `AzureConfig` only sends `api-key`, while Azure OpenAI's v1 endpoint
//! (`https://<resource>.openai.azure.com/openai/v1/`) also accepts `Authorization: Bearer <Entra
//! token>`, the secretless way. `Config::headers` is synchronous, so the provider calls
//! [`Endpoint::prepare`] before each request: it gets a fresh token (credentials cache and renew
//! them) that `headers` then sends.

use std::sync::RwLock;

use async_openai::config::Config;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use super::model::ModelError;
use crate::configuration::ModelAuth;

/// The scope of Azure OpenAI (Cognitive Services) tokens.
pub const COGNITIVE_SERVICES_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

pub struct Endpoint {
    /// Base URL without a trailing slash, e.g. `https://x.openai.azure.com/openai/v1`.
    base: String,
    auth: ModelAuth,
    /// The Entra token the next request sends.
    entra_token: RwLock<Option<SecretString>>,
    no_key: SecretString,
}

impl Endpoint {
    pub fn new(base: &str, auth: ModelAuth) -> Self {
        Endpoint {
            base: base.trim_end_matches('/').to_string(),
            auth,
            entra_token: RwLock::new(None),
            no_key: SecretString::from(""),
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Azure OpenAI's v1 endpoint for a resource URL like `https://x.openai.azure.com`.
    pub fn azure_v1_base(resource: &str) -> String {
        format!("{}/openai/v1", resource.trim_end_matches('/'))
    }

    /// Gets the token the next request needs (Entra only; keys need nothing).
    pub async fn prepare(&self) -> Result<(), ModelError> {
        if let ModelAuth::Entra(credential) = &self.auth {
            let token = credential
                .token(COGNITIVE_SERVICES_SCOPE)
                .instrument(tracing::info_span!("model.credential", scope = COGNITIVE_SERVICES_SCOPE))
                .await
                .map(|t| SecretString::from(t.secret()))
                .map_err(|e| ModelError::Credential(e.to_string()))?;
            *self.entra_token.write().unwrap_or_else(|p| p.into_inner()) = Some(token);
        }
        Ok(())
    }
}

fn bearer(secret: &SecretString) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl Config for Endpoint {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match &self.auth {
            ModelAuth::None => {}
            ModelAuth::Bearer(key) => {
                if let Some(v) = bearer(key) {
                    headers.insert(AUTHORIZATION, v);
                }
            }
            ModelAuth::ApiKey(key) => {
                if let Ok(mut v) = HeaderValue::from_str(key.expose_secret()) {
                    v.set_sensitive(true);
                    headers.insert(HeaderName::from_static("api-key"), v);
                }
            }
            ModelAuth::Entra(_) => {
                let token = self.entra_token.read().unwrap_or_else(|p| p.into_inner());
                if let Some(v) = token.as_ref().and_then(bearer) {
                    headers.insert(AUTHORIZATION, v);
                }
            }
        }
        headers
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn query(&self) -> Vec<(&str, &str)> {
        Vec::new()
    }

    fn api_base(&self) -> &str {
        &self.base
    }

    fn api_key(&self) -> &SecretString {
        match &self.auth {
            ModelAuth::Bearer(key) | ModelAuth::ApiKey(key) => key,
            ModelAuth::None | ModelAuth::Entra(_) => &self.no_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_per_auth_kind() {
        let e = Endpoint::new("https://api.example.com/v1/", ModelAuth::Bearer("sk-1".into()));
        assert_eq!(e.url("/chat/completions"), "https://api.example.com/v1/chat/completions");
        assert_eq!(e.headers()[AUTHORIZATION], "Bearer sk-1");
        let e = Endpoint::new(&Endpoint::azure_v1_base("https://x.openai.azure.com/"), ModelAuth::ApiKey("k".into()));
        assert_eq!(e.url("/chat/completions"), "https://x.openai.azure.com/openai/v1/chat/completions");
        let h = e.headers();
        assert_eq!(h["api-key"], "k");
        assert!(!h.contains_key(AUTHORIZATION));
        assert!(Endpoint::new("http://localhost:11434/v1", ModelAuth::None).headers().is_empty());
    }
}
