//! A confidential client talking to the v2 token endpoint.
//!
//! Client authentication is the app's [`Credential`]: a client assertion from a managed
//! identity (trusted by the app registration through a federated identity credential: no
//! secret exists anywhere), or a client secret, only for local runs.

use service_kit::telemetry::context::trace_headers;
use url::Url;

use super::credential::Credential;
use super::error::AcquireError;
use super::http::{REQUEST_TIMEOUT, read_response};
use super::token::TokenResponse;

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An app registration acting as a confidential client against one tenant's token endpoint.
#[derive(Clone, Debug)]
pub struct ConfidentialClient {
    http: reqwest::Client,
    token_endpoint: Url,
    client_id: String,
    credential: Credential,
}

impl ConfidentialClient {
    pub fn new(
        http: reqwest::Client,
        token_endpoint: Url,
        client_id: impl Into<String>,
        credential: Credential,
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
        self.credential.authenticate(&mut form).await?;
        let endpoint = self.token_endpoint.as_str();
        // The token request joins the caller's trace (W3C `traceparent`; nothing when not exporting).
        let result = self
            .http
            .post(self.token_endpoint.clone())
            .headers(trace_headers())
            .timeout(REQUEST_TIMEOUT)
            .form(&form)
            .send()
            .await;
        read_response(endpoint, result).await
    }

    /// On-Behalf-Of: exchanges the user's token (`assertion`) for one for `scope`; `claims`, a
    /// claims request (JSON) for the new token, e.g. the authentication context it must keep.
    pub async fn on_behalf_of(
        &self,
        assertion: &str,
        scope: &str,
        claims: Option<&str>,
    ) -> Result<TokenResponse, AcquireError> {
        let mut params = vec![
            ("grant_type", JWT_BEARER_GRANT),
            ("requested_token_use", "on_behalf_of"),
            ("assertion", assertion),
            ("scope", scope),
        ];
        if let Some(claims) = claims {
            params.push(("claims", claims));
        }
        self.request(&params).await
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
