//! chat-app as an OpenID Connect client of Entra (or the emulator): the authorization request,
//! code redemption with PKCE, ID-token validation, refresh, and the end-session URL. The same
//! code runs against both; only the authority differs.

use std::sync::Arc;
use std::time::Duration;

use entra_auth::acquire::{AcquireError, ConfidentialClient, Credential, TokenResponse};
use entra_auth::validate::{IdToken, TokenValidator, TokenVersion, ValidationError, ValidatorConfig};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::RwLock;
use tracing::Instrument;
use url::Url;

use crate::configuration::Settings;

/// How long a person's sign-in waits for the identity provider (code redemption, and the keys
/// if they are not cached) before the page says it is unreachable. Shorter than the token
/// client's own timeout (15 s, for back-channel calls nobody watches): an identity provider
/// that accepts connections and never answers (stopped, overloaded) otherwise holds the
/// browser on a blank page for 15 s.
pub const SIGN_IN_WAIT: Duration = Duration::from_secs(5);

/// The parts of the v2 discovery document chat-app uses. The emulator (like Entra) puts
/// browser-facing URLs in the authorization and end-session endpoints.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Url,
    #[serde(default)]
    end_session_endpoint: Option<Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider is unreachable: {0}")]
    Unreachable(String),
    #[error("the identity provider's metadata is unusable: {0}")]
    BadMetadata(String),
    #[error(transparent)]
    Token(#[from] AcquireError),
    #[error("the ID token was refused: {0}")]
    IdToken(#[from] ValidationError),
    #[error("the token response has no {0}")]
    Missing(&'static str),
}

/// What a successful sign-in yields.
pub struct SignedIn {
    pub id: IdToken,
    pub tokens: TokenResponse,
}

pub struct Oidc {
    http: reqwest::Client,
    discovery_url: Url,
    discovery: RwLock<Option<Arc<Discovery>>>,
    client: ConfidentialClient,
    id_tokens: TokenValidator,
    scope: String,
    redirect_uri: String,
    post_logout_uri: String,
}

impl Oidc {
    pub fn new(settings: &Settings, http: reqwest::Client, credential: Credential) -> anyhow::Result<Oidc> {
        let identity = &settings.identity;
        let base = identity.authority.as_str().trim_end_matches('/');
        let discovery_url =
            Url::parse(&format!("{base}/{}/v2.0/.well-known/openid-configuration", identity.tenant_id))?;
        let token_endpoint = ConfidentialClient::token_endpoint(&identity.authority, &identity.tenant_id)?;
        let client = ConfidentialClient::new(http.clone(), token_endpoint, identity.client_id.clone(), credential);
        let validator_config = ValidatorConfig::new(
            identity.authority.clone(),
            identity.tenant_id.clone(),
            vec![identity.client_id.clone()],
        )
        .versions(&[TokenVersion::V2]);
        Ok(Oidc {
            id_tokens: TokenValidator::new(validator_config, http.clone()),
            http,
            discovery_url,
            discovery: RwLock::new(None),
            client,
            scope: identity.scope.clone(),
            redirect_uri: settings.redirect_uri(),
            post_logout_uri: settings.post_logout_uri(),
        })
    }

    /// The discovery document, fetched once (a failed fetch is retried by the next caller).
    async fn discovery(&self) -> Result<Arc<Discovery>, OidcError> {
        if let Some(d) = self.discovery.read().await.clone() {
            return Ok(d);
        }
        let mut slot = self.discovery.write().await;
        if let Some(d) = slot.clone() {
            return Ok(d);
        }
        let response = self
            .http
            .get(self.discovery_url.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .instrument(tracing::info_span!("oidc.discovery", url = %self.discovery_url))
            .await
            .map_err(|e| OidcError::Unreachable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(OidcError::BadMetadata(format!("discovery answered {}", response.status())));
        }
        let document: Discovery = response.json().await.map_err(|e| OidcError::BadMetadata(e.to_string()))?;
        let document = Arc::new(document);
        *slot = Some(document.clone());
        Ok(document)
    }

    /// The URL that starts a sign-in (authorization code flow with PKCE S256).
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
        login_hint: Option<&str>,
        step_up: &[String],
    ) -> Result<Url, OidcError> {
        let mut url = self.discovery().await?.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", self.client.client_id())
                .append_pair("response_type", "code")
                .append_pair("response_mode", "query")
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("scope", &self.scope)
                .append_pair("state", state)
                .append_pair("nonce", nonce)
                .append_pair("code_challenge", code_challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("claims", &claims_request(step_up));
            if let Some(hint) = login_hint {
                q.append_pair("login_hint", hint);
            }
        }
        Ok(url)
    }

    /// Redeems the authorization code and validates the ID token against `nonce`, or says the
    /// identity provider is unreachable when that takes longer than [`SIGN_IN_WAIT`].
    #[tracing::instrument(name = "oidc.redeem", skip_all)]
    pub async fn redeem(&self, code: &str, code_verifier: &str, nonce: &str) -> Result<SignedIn, OidcError> {
        tokio::time::timeout(SIGN_IN_WAIT, self.redeem_now(code, code_verifier, nonce))
            .await
            .map_err(|_| OidcError::Unreachable(format!("no answer within {} s", SIGN_IN_WAIT.as_secs())))?
    }

    async fn redeem_now(&self, code: &str, code_verifier: &str, nonce: &str) -> Result<SignedIn, OidcError> {
        let tokens = self.client.authorization_code(code, &self.redirect_uri, code_verifier, &self.scope).await?;
        let id_token = tokens.id_token.as_ref().ok_or(OidcError::Missing("ID token"))?;
        let id = self.id_tokens.validate_id_token(id_token.expose_secret(), nonce).await?;
        if tokens.refresh_token.is_none() {
            return Err(OidcError::Missing("refresh token"));
        }
        Ok(SignedIn { id, tokens })
    }

    /// A new access token (and the rotated refresh token) from `refresh_token`.
    #[tracing::instrument(name = "oidc.refresh", skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, AcquireError> {
        self.client.refresh(refresh_token, &self.scope).await
    }

    /// Where the browser goes to sign out at the identity provider; `None` if it cannot be
    /// reached (the local session ends anyway).
    pub async fn end_session_url(&self) -> Option<Url> {
        let mut url = self.discovery().await.ok()?.end_session_endpoint.clone()?;
        url.query_pairs_mut()
            .append_pair("client_id", self.client.client_id())
            .append_pair("post_logout_redirect_uri", &self.post_logout_uri);
        Some(url)
    }

    /// Whether sign-in can start: the discovery document is loaded (fetched if need be).
    pub async fn ready(&self) -> Result<(), OidcError> {
        self.discovery().await.map(drop)
    }

    /// The issuer front-channel logout requests name (`iss`), if known.
    pub async fn issuer(&self) -> Option<String> {
        self.discovery().await.ok().map(|d| d.issuer.clone())
    }
}

/// The `claims` request of every sign-in: client capability `cp1` ("this client handles claims
/// challenges": `{"access_token":{"xms_cc":{"values":["cp1"]}}}`, "Claims challenges, claims
/// requests and client capabilities"), and for a step-up the authentication contexts orders-api
/// challenged for (`acrs`, essential). Built here from ids only, never copied from a challenge.
pub fn claims_request(step_up: &[String]) -> String {
    let mut access = serde_json::json!({ "xms_cc": { "values": ["cp1"] } });
    if !step_up.is_empty() {
        access["acrs"] = serde_json::json!({ "essential": true, "values": step_up });
    }
    serde_json::json!({ "access_token": access }).to_string()
}
