//! Builds the application from its settings: the router, and the server that runs it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::middleware;
use axum::routing::{any, get};
use entra_auth::acquire::{ConfidentialClient, Credential, OnBehalfOf};
use entra_auth::guard::ResourceGuard;
use entra_auth::metadata::ProtectedResourceMetadata;
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use service_kit::serve::{Built, Service};
use tokio_util::sync::CancellationToken;

use crate::auth;
use crate::configuration::{AllowedHosts, AllowedOrigins, Downstream, Settings};
use crate::health::{self, Readiness};
use crate::mcp_endpoint::{self, McpEndpoint};
use crate::orders_api::{OrdersApi, TokenSource};
use crate::state::AppState;
use crate::tools::OrdersTools;

/// MCP requests are small JSON-RPC messages; anything larger is refused before parsing.
const MAX_REQUEST_BODY: usize = 256 * 1024;

/// orders-mcp as a [`Service`]: `Application::build(settings)`; stopping ends the MCP
/// transport's open streams.
pub struct OrdersMcp;

pub type Application = service_kit::serve::Application<OrdersMcp>;

impl Service for OrdersMcp {
    type Settings = Settings;
    type Handle = ();

    fn address(settings: &Settings) -> SocketAddr {
        settings.addr
    }

    async fn build(settings: Settings, local: SocketAddr, stopping: CancellationToken) -> anyhow::Result<Built<()>> {
        let router = app(&settings, stopping)?;
        tracing::info!(
            addr = %local,
            resource = %settings.mcp_url(),
            downstream = %settings.downstream,
            orders_api = %settings.orders_api_url,
            "orders-mcp listening"
        );
        Ok(Built::router(router))
    }
}

/// The whole HTTP surface: `/mcp` (authenticated), the RFC 9728 metadata, health and readiness.
pub fn app(settings: &Settings, mcp_shutdown: CancellationToken) -> anyhow::Result<Router> {
    let http = settings.trust.http().build().context("cannot build the HTTP client")?;
    let validator = TokenValidator::new(
        ValidatorConfig::new(settings.authority.clone(), settings.tenant_id.clone(), settings.audiences())
            .versions(&[TokenVersion::V2]),
        http.clone(),
    );
    let resource = settings.mcp_url();
    let api = Arc::new(
        OrdersApi::new(settings.orders_api_url.clone(), settings.downstream_timeout, token_source(settings, &http)?)
            .map_err(|e| anyhow::anyhow!("cannot build the orders-api client: {e}"))?,
    );

    let mut metadata = ProtectedResourceMetadata::new(&resource, &settings.issuer_v2, vec![settings.access_scope()]);
    metadata.resource_name = Some("Orders MCP server".to_string());
    let guard = ResourceGuard::new(Arc::new(validator), ProtectedResourceMetadata::url_for(&resource).to_string())
        .scopes_supported(&metadata.scopes_supported);

    let readiness = Arc::new(Readiness::new(api.clone(), guard.clone()));
    let state = AppState { readiness };
    let tools = OrdersTools::new(api, settings.downstream);
    let rmcp = {
        let tools = tools.clone();
        StreamableHttpService::new(
            move || Ok(tools.clone()),
            Arc::new(NeverSessionManager::default()),
            mcp_config(&settings.allowed_hosts, &settings.allowed_origins, mcp_shutdown),
        )
    };
    let endpoint = McpEndpoint::new(rmcp, tools, settings.allowed_hosts.clone(), MAX_REQUEST_BODY);
    let mcp = Router::new()
        .route("/mcp", any(mcp_endpoint::serve))
        .with_state(Arc::new(endpoint))
        .route_layer(middleware::from_fn_with_state(guard, auth::require_user));

    Ok(Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
        .merge(mcp)
        .merge(metadata.router())
        .layer(service_kit::serve::request_spans()))
}

/// Stateless Streamable HTTP with JSON answers: every request stands alone with its own token
/// (no session to hijack or to pin to one replica), and these tools send no notifications.
fn mcp_config(
    allowed_hosts: &AllowedHosts,
    allowed_origins: &AllowedOrigins,
    shutdown: CancellationToken,
) -> StreamableHttpServerConfig {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(MAX_REQUEST_BODY)
        .with_cancellation_token(shutdown);
    // MCP Streamable HTTP: "Servers MUST validate the Origin header on all incoming
    // connections"; rmcp answers 403 to an Origin not listed, and lets requests without one pass.
    let config = match allowed_origins {
        AllowedOrigins::Only(origins) => config.with_allowed_origins(origins.clone()).enforce_origin_validation(),
        AllowedOrigins::Any => {
            tracing::warn!("ORDERS_MCP_ALLOWED_ORIGINS=*: any web page the user visits may call orders-mcp");
            config.disable_allowed_origins()
        }
    };
    match allowed_hosts {
        AllowedHosts::Only(hosts) => config.with_allowed_hosts(hosts.clone()),
        AllowedHosts::Any => {
            tracing::warn!(
                "ORDERS_MCP_ALLOWED_HOSTS=*: the Host header is not checked (only behind an ingress that does)"
            );
            config.disable_allowed_hosts()
        }
    }
}

fn token_source(settings: &Settings, http: &reqwest::Client) -> anyhow::Result<TokenSource> {
    if settings.downstream == Downstream::Passthrough {
        tracing::warn!(
            "ORDERS_MCP_DOWNSTREAM=passthrough: the user's token for orders-mcp is forwarded to orders-api unchanged; \
             this is the confused-deputy pattern the MCP specification forbids, kept only to demonstrate it"
        );
        return Ok(TokenSource::Passthrough);
    }
    let credential = match &settings.credential {
        Some(credential @ Credential::Secret(_)) => {
            tracing::warn!(
                "On-Behalf-Of uses ORDERS_MCP_CLIENT_SECRET: a local fallback only; deployed, use the managed identity"
            );
            credential.clone()
        }
        Some(credential) => credential.clone(),
        None => anyhow::bail!("ORDERS_MCP_DOWNSTREAM=obo needs a client credential (see the configuration table)"),
    };
    let endpoint = ConfidentialClient::token_endpoint(&settings.authority, &settings.tenant_id)
        .context("ENTRA_AUTHORITY and ENTRA_TENANT_ID do not make a token endpoint URL")?;
    let client = ConfidentialClient::new(http.clone(), endpoint, settings.mcp_app.client_id.clone(), credential);
    Ok(TokenSource::Obo { obo: Box::new(OnBehalfOf::new(client)), scope: settings.obo_scope() })
}
