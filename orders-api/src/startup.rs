//! Building the application: database, token validator, router; then serving it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use entra_auth::claims_challenge::ClaimsChallenge;
use entra_auth::guard::ResourceGuard;
use entra_auth::metadata::ProtectedResourceMetadata;
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};
use service_kit::serve::{Built, Service};
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::configuration::Settings;
use crate::database::{Database, DatabaseError};
use crate::routes::docs::Docs;
use crate::routes::{docs, health, orders};
use crate::seed::{self, Seeded};
use crate::state::AppState;
use crate::store::OrderStore;
use crate::{error, hop_trace, openapi};

/// Request bodies larger than this are refused with `413`.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("cannot seed the demo orders into {path}: {source}")]
    Seed { path: String, source: sqlx::Error },
    #[error("cannot build the HTTP client for the identity provider: {0}")]
    Http(#[from] reqwest::Error),
}

/// orders-api as a [`Service`]: `Application::build(settings)` opens and migrates the database,
/// seeds it once and binds the listener (every way start-up can fail happens there, before
/// anything is served); stopping closes the database, checkpointing the WAL.
pub struct OrdersApi;

pub type Application = service_kit::serve::Application<OrdersApi>;

impl Service for OrdersApi {
    type Settings = Settings;
    type Handle = ();

    fn address(settings: &Settings) -> SocketAddr {
        settings.addr
    }

    async fn build(settings: Settings, local: SocketAddr, _: CancellationToken) -> anyhow::Result<Built<()>> {
        let database = Database::open(&settings.database).await.map_err(StartError::Database)?;
        let seeded = seed::seed(&database, &settings.seed_users)
            .await
            .map_err(|source| StartError::Seed { path: settings.database.display().to_string(), source })?;
        match seeded {
            Seeded::AlreadySeeded => tracing::debug!("{seeded}"),
            Seeded::Inserted(_) | Seeded::NoUsers => tracing::info!("{seeded}"),
        }
        if let Some(audience) = &settings.passthrough_audience {
            tracing::warn!(
                %audience,
                "ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE is set: tokens issued to another API are accepted here. This \
                 is the confused-deputy pattern, enabled only to demonstrate it; never set it in production"
            );
        }
        let router = router(&settings, database.clone())?;
        tracing::info!(addr = %local, database = %settings.database.display(), "orders-api ready");
        Ok(Built { router, handle: (), on_stopped: Some(Box::pin(async move { database.close().await })), tls: None })
    }
}

/// The whole HTTP surface. The OpenAPI document is collected from the same route list.
pub fn router(settings: &Settings, database: Database) -> Result<Router, StartError> {
    let mut config = ValidatorConfig::new(settings.authority.clone(), &settings.tenant_id, settings.audiences());
    config = match settings.passthrough_audience {
        // Passthrough tokens are orders-mcp's, and orders-mcp's tokens are v2.
        Some(_) => config.versions(&[TokenVersion::V1, TokenVersion::V2]),
        None => config.versions(&[TokenVersion::V1]),
    };
    let http =
        settings.trust.http().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).build()?;
    let validator = Arc::new(TokenValidator::new(config, http));
    let metadata =
        ProtectedResourceMetadata::new(&settings.public_url, &settings.issuer_v2, settings.scopes_supported());
    let guard = ResourceGuard::new(validator, ProtectedResourceMetadata::url_for(&settings.public_url).to_string())
        .scopes_supported(&metadata.scopes_supported);

    let (api, document) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(orders::list_orders, orders::create_order))
        .routes(routes!(orders::get_order, orders::delete_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(docs::openapi_json))
        .routes(routes!(docs::docs_page))
        .split_for_parts();
    let document = openapi::finish(document, &settings.public_url);

    let state = AppState {
        guard,
        orders_mcp_client_id: Arc::from(settings.orders_mcp_client_id.as_str()),
        passthrough_audience: settings.passthrough_audience.as_deref().map(Arc::from),
        agent_policy: settings.agent_policy,
        approval: Arc::new(ClaimsChallenge::for_auth_context(
            settings.step_up_authorization_uri.clone(),
            &settings.approval_auth_context,
        )),
        store: OrderStore::new(database.clone()),
        database,
        docs: Docs::new(&document),
        public_url: Arc::from(settings.public_url.as_str().trim_end_matches('/')),
    };
    Ok(api
        .merge(metadata.router())
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(hop_trace::record_hop))
        // Per-user data must not be stored by any cache in between.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(service_kit::serve::request_spans())
        .with_state(state))
}
