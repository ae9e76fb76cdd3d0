//! A confidential client talking to the v2 token endpoint.
//!
//! Client authentication is, in order of preference, a client assertion (a managed identity's
//! token, trusted by the app registration through a federated identity credential: no secret
//! exists anywhere) or a client secret, which is only for local runs without a managed identity.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::{
    AccessToken, AcquireError, ManagedIdentityCredential, REQUEST_TIMEOUT, TOKEN_EXCHANGE_AUDIENCE, read_response,
};

const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How a confidential client proves who it is.
#[derive(Clone)]
pub enum ClientCredential {
    /// A managed identity's token for `api://AzureADTokenExchange`, as a client assertion.
    ManagedIdentity(Arc<ManagedIdentityCredential>),
    /// A client secret: the local fallback when no managed identity exists.
    Secret(String),
}

impl fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientCredential::ManagedIdentity(mi) => f.debug_tuple("ManagedIdentity").field(mi).finish(),
            ClientCredential::Secret(_) => f.write_str("Secret(<redacted>)"),
        }
    }
}

/// The successful token endpoint answer.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: String,
    /// Seconds; Entra sends a number, some endpoints a string.
    #[serde(deserialize_with = "lenient_u64")]
    pub expires_in: u64,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
}

impl TokenResponse {
    pub fn access(&self) -> AccessToken {
        AccessToken::expiring_in(self.access_token.as_str(), self.expires_in)
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Accepts `3599` and `"3599"`.
pub(crate) fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(u64),
        Str(String),
    }
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => Ok(n),
        NumOrString::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// An app registration acting as a confidential client against one tenant's token endpoint.
#[derive(Clone, Debug)]
pub struct ConfidentialClient {
    http: reqwest::Client,
    token_endpoint: Url,
    client_id: String,
    credential: ClientCredential,
}

impl ConfidentialClient {
    pub fn new(
        http: reqwest::Client,
        token_endpoint: Url,
        client_id: impl Into<String>,
        credential: ClientCredential,
    ) -> Self {
        ConfidentialClient { http, token_endpoint, client_id: client_id.into(), credential }
    }

    /// The v2 token endpoint of `tenant` under `authority`.
    pub fn token_endpoint(authority: &Url, tenant: &str) -> Result<Url, url::ParseError> {
        let base = authority.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token"))
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Posts a token request with this client's authentication added.
    pub async fn request(&self, params: &[(&str, &str)]) -> Result<TokenResponse, AcquireError> {
        let mut form: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.to_string())).collect();
        form.push(("client_id", self.client_id.clone()));
        match &self.credential {
            ClientCredential::ManagedIdentity(mi) => {
                let assertion = mi.token(TOKEN_EXCHANGE_AUDIENCE).await?;
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_string()));
                form.push(("client_assertion", assertion.secret().to_string()));
            }
            ClientCredential::Secret(secret) => form.push(("client_secret", secret.clone())),
        }
        let endpoint = self.token_endpoint.as_str();
        let result = self.http.post(self.token_endpoint.clone()).timeout(REQUEST_TIMEOUT).form(&form).send().await;
        read_response(endpoint, result).await
    }

    /// On-Behalf-Of: exchanges the user's token (`assertion`) for one for `scope`.
    pub async fn on_behalf_of(&self, assertion: &str, scope: &str) -> Result<TokenResponse, AcquireError> {
        self.request(&[
            ("grant_type", JWT_BEARER_GRANT),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", assertion),
            ("scope", scope),
        ])
        .await
    }

    /// Client credentials: a token for this app itself (no user), e.g. `api://x/.default`.
    pub async fn client_credentials(&self, scope: &str) -> Result<TokenResponse, AcquireError> {
        self.request(&[("grant_type", "client_credentials"), ("scope", scope)]).await
    }

    /// Redeems an authorization code (with its PKCE verifier).
    pub async fn authorization_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        scope: &str,
    ) -> Result<TokenResponse, AcquireError> {
        self.request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
            ("scope", scope),
        ])
        .await
    }

    /// Redeems a refresh token; Entra rotates it, so keep the one in the answer.
    pub async fn refresh(&self, refresh_token: &str, scope: &str) -> Result<TokenResponse, AcquireError> {
        self.request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("scope", scope)]).await
    }
}
