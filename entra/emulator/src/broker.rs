//! The managed-identity broker: the App Service-style managed-identity endpoint, served on the
//! developer's machine from the developer's own sign-in (azd, then the Azure CLI).
//!
//! Containers run unchanged code (`ManagedIdentityCredential` with `IDENTITY_ENDPOINT` pointing
//! at `host.docker.internal`) and get real Entra tokens, for example for Azure OpenAI, with no
//! secret in any container. The `X-IDENTITY-HEADER` secret keeps other local processes out.
//!
//! Tokens are the developer's, not a managed identity's: `client_id` is accepted (containers
//! send their user-assigned identity's) and ignored. They cannot serve as client assertions for
//! app registrations whose federated credentials trust the deployed identities.
//!
//! Because they are the developer's, the broker hands them out only for the resources the stack
//! needs (Azure OpenAI) and those listed in `BROKER_ALLOWED_RESOURCES`: a process holding the
//! header secret must not get the developer's ARM, Graph or Key Vault token. Each issuance is
//! logged with the resource and the caller's address; the token never is.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use entra_auth::acquire::DeveloperSignIn;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use service_kit::serve::{Built, Service};
use service_kit::settings::Env;
use tokio_util::sync::CancellationToken;

use crate::managed_identity::{refuse, requested_resource};

pub const DEFAULT_PORT: u16 = 3009;

/// What the stack asks the broker for: Azure OpenAI (chat-app's model calls).
pub const DEFAULT_RESOURCES: &[&str] = &["https://cognitiveservices.azure.com"];

/// The broker's settings (`BROKER_*` variables). `Debug` shows no secret.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub bind: SocketAddr,
    /// The `X-IDENTITY-HEADER` secret callers must send.
    pub identity_header: SecretString,
    /// Ask the CLIs for tokens of this tenant (`None`: their default).
    pub tenant_id: Option<String>,
    /// The resources tokens are issued for, normalized ([`resource_key`]): [`DEFAULT_RESOURCES`]
    /// and `BROKER_ALLOWED_RESOURCES`.
    pub allowed_resources: Vec<String>,
}

impl BrokerConfig {
    pub fn from_env(mut env: Env) -> anyhow::Result<Self> {
        let bind = env.parse(
            "BROKER_ADDR",
            SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            "a socket address like 127.0.0.1:3009",
        );
        let identity_header: SecretString = env.get("BROKER_IDENTITY_HEADER").unwrap_or_default().into();
        if identity_header.expose_secret().len() < 16 {
            env.problem(
                "BROKER_IDENTITY_HEADER must be set to a secret of at least 16 characters \
                 (the same value goes into the containers' IDENTITY_HEADER), e.g. `openssl rand -hex 16`",
            );
        }
        let tenant_id = env.get("BROKER_TENANT_ID").or_else(|| env.get("AZURE_TENANT_ID"));
        let listed = env.get("BROKER_ALLOWED_RESOURCES").unwrap_or_default();
        let mut allowed_resources: Vec<String> = DEFAULT_RESOURCES.iter().copied().map(resource_key).collect();
        for resource in listed.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            if resource.contains('*') {
                env.problem(format!(
                    "BROKER_ALLOWED_RESOURCES lists resources exactly, without wildcards: `{resource}`"
                ));
            }
            allowed_resources.push(resource_key(resource));
        }
        env.finish()?;
        Ok(BrokerConfig { bind, identity_header, tenant_id, allowed_resources })
    }
}

#[derive(Clone)]
struct Broker {
    sign_in: Arc<DeveloperSignIn>,
    identity_header: Arc<str>,
    allowed_resources: Arc<[String]>,
}

/// The broker as a [`Service`]: `broker::Application::build(config)`.
pub struct TokenBroker;

pub type Application = service_kit::serve::Application<TokenBroker>;

impl Service for TokenBroker {
    type Settings = BrokerConfig;
    type Handle = ();

    fn address(config: &BrokerConfig) -> SocketAddr {
        config.bind
    }

    async fn build(config: BrokerConfig, local: SocketAddr, _: CancellationToken) -> anyhow::Result<Built<()>> {
        let sign_in = DeveloperSignIn::new(config.tenant_id.as_deref(), None)?;
        tracing::info!(
            endpoint = %format!("http://{local}/msi/token"),
            tenant = config.tenant_id.as_deref().unwrap_or("the CLI's default"),
            "managed-identity broker ready: tokens come from your azd / Azure CLI sign-in"
        );
        tracing::info!(resources = ?config.allowed_resources, "the broker issues tokens for these resources only");
        let broker = Broker {
            sign_in: Arc::new(sign_in),
            identity_header: config.identity_header.expose_secret().into(),
            allowed_resources: config.allowed_resources.into(),
        };
        Ok(Built::router(router(broker)))
    }
}

/// The broker's routes: `/msi/token` (App Service shape, `api-version=2019-08-01`) and `/healthz`.
fn router(broker: Broker) -> Router {
    Router::new().route("/healthz", get(|| async { "ok" })).route("/msi/token", get(token)).with_state(broker)
}

#[tracing::instrument(name = "broker_token", skip_all, fields(resource = q.get("resource").map(String::as_str), %caller))]
async fn token(
    State(broker): State<Broker>,
    ConnectInfo(caller): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let resource = match requested_resource(&headers, &q, &broker.identity_header) {
        Ok(resource) => resource,
        Err((status, message)) => return refuse(status, message),
    };
    if !broker.allowed_resources.contains(&resource_key(resource)) {
        tracing::warn!(resource, %caller, "refused: the resource is not in BROKER_ALLOWED_RESOURCES");
        // App Service answers a resource it cannot issue for with 400 and its
        // `{statusCode, message}` body (the AADSTS500011 text for an unknown resource).
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "The broker does not issue tokens for the resource {resource}: it issues them for {} only. \
                 List it in BROKER_ALLOWED_RESOURCES to allow it.",
                broker.allowed_resources.join(", ")
            ),
        );
    }
    match broker.sign_in.token(&scope_for(resource)).await {
        Ok(token) => {
            tracing::info!(resource, %caller, expires_on = token.expires_on, "issued the developer's token");
            Json(json!({
            "access_token": token.secret(),
            "expires_on": token.expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(resource, error = %e, "no token from the developer sign-in");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    }
}

/// The form a resource is compared in: azure-identity sends the scope without `/.default`
/// (`https://cognitiveservices.azure.com`); other clients send a trailing slash or the
/// `/.default` scope itself. Application ID URIs compare case-insensitively in Entra.
fn resource_key(resource: &str) -> String {
    let resource = resource.strip_suffix("/.default").unwrap_or(resource);
    resource.trim_end_matches('/').to_ascii_lowercase()
}

/// Managed-identity requests name a resource (`https://cognitiveservices.azure.com`); the CLIs
/// take a scope: the resource's `/.default`.
fn scope_for(resource: &str) -> String {
    if resource.ends_with("/.default") {
        return resource.to_string();
    }
    format!("{}/.default", resource.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_become_default_scopes() {
        assert_eq!(scope_for("https://cognitiveservices.azure.com"), "https://cognitiveservices.azure.com/.default");
        assert_eq!(scope_for("https://cognitiveservices.azure.com/"), "https://cognitiveservices.azure.com/.default");
        assert_eq!(scope_for("api://orders-api-dev/.default"), "api://orders-api-dev/.default");
    }

    #[test]
    fn resources_compare_in_every_form_azure_identity_sends() {
        for form in [
            "https://cognitiveservices.azure.com",
            "https://cognitiveservices.azure.com/",
            "https://cognitiveservices.azure.com/.default",
            "https://CognitiveServices.azure.com",
        ] {
            assert_eq!(resource_key(form), "https://cognitiveservices.azure.com", "{form}");
        }
        assert_ne!(
            resource_key("https://cognitiveservices.azure.com.evil.example"),
            resource_key(DEFAULT_RESOURCES[0])
        );
    }

    #[test]
    fn allowed_resources_are_openai_plus_those_listed() {
        let header = ("BROKER_IDENTITY_HEADER", "0123456789abcdef-secret");
        let config = BrokerConfig::from_env(Env::from_map([header])).unwrap();
        assert_eq!(config.allowed_resources, ["https://cognitiveservices.azure.com"]);
        let config = BrokerConfig::from_env(Env::from_map([
            header,
            ("BROKER_ALLOWED_RESOURCES", " https://vault.azure.net/ , api://orders-api-dev/.default,"),
        ]))
        .unwrap();
        assert_eq!(
            config.allowed_resources,
            ["https://cognitiveservices.azure.com", "https://vault.azure.net", "api://orders-api-dev"]
        );
        let wildcard = BrokerConfig::from_env(Env::from_map([header, ("BROKER_ALLOWED_RESOURCES", "https://*")]));
        assert!(wildcard.is_err_and(|e| e.to_string().contains("BROKER_ALLOWED_RESOURCES")));
    }

    #[test]
    fn the_header_secret_is_required_and_never_printed() {
        let short = BrokerConfig::from_env(Env::from_map([("BROKER_IDENTITY_HEADER", "short")]));
        assert!(short.is_err_and(|e| e.to_string().contains("BROKER_IDENTITY_HEADER")));
        let config =
            BrokerConfig::from_env(Env::from_map([("BROKER_IDENTITY_HEADER", "0123456789abcdef-secret")])).unwrap();
        assert_eq!(config.bind.port(), DEFAULT_PORT);
        assert!(config.bind.ip().is_loopback(), "loopback unless told otherwise");
        assert!(!format!("{config:?}").contains("secret"));
    }
}
