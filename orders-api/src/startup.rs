//! Building the application: database, token validator, router; then serving it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{HeaderValue, Request, header};
use entra_auth::guard::ResourceGuard;
use entra_auth::metadata::ProtectedResourceMetadata;
use entra_auth::{TokenValidator, TokenVersion, ValidatorConfig};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::configuration::Settings;
use crate::database::{Database, DatabaseError};
use crate::routes::docs::Docs;
use crate::routes::{docs, health, orders};
use crate::seed::{self, Seeded};
use crate::store::OrderStore;
use crate::{error, hop_trace, openapi};

/// Request bodies larger than this are refused with `413`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub guard: ResourceGuard,
    /// The orders-mcp audience, when passthrough tokens are (explicitly) accepted.
    pub passthrough_audience: Option<Arc<str>>,
    pub store: OrderStore,
    pub database: Database,
    pub docs: Docs,
    /// `ORDERS_API_PUBLIC_URL` without a trailing slash, for `Location` headers.
    pub public_url: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("cannot seed the demo orders into {path}: {source}")]
    Seed { path: String, source: sqlx::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("cannot build the HTTP client for the identity provider: {0}")]
    Http(#[from] reqwest::Error),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    database: Database,
}

impl Application {
    /// Opens and migrates the database, seeds it once, and binds the listener: every way
    /// start-up can fail happens here, before anything is served.
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        let database = Database::open(&settings.database).await?;
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
        let listener = TcpListener::bind(settings.addr)
            .await
            .map_err(|source| StartError::Bind { addr: settings.addr, source })?;
        let router = router(&settings, database.clone())?;
        tracing::info!(
            addr = %listener.local_addr().map_or_else(|_| settings.addr.to_string(), |a| a.to_string()),
            database = %settings.database.display(),
            "orders-api ready"
        );
        Ok(Application { listener, router, database })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Serves until `shutdown` completes, then closes the database (checkpointing the WAL).
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let served = axum::serve(entra_auth::serve::without_delay(self.listener), self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.database.close().await;
        served
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
        reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).timeout(Duration::from_secs(10)).build()?;
    let validator = Arc::new(TokenValidator::new(config, http));
    let guard = ResourceGuard::new(validator, ProtectedResourceMetadata::url_for(&settings.public_url).to_string());
    let metadata =
        ProtectedResourceMetadata::new(&settings.public_url, &settings.issuer_v2, settings.scopes_supported());

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
        passthrough_audience: settings.passthrough_audience.as_deref().map(Arc::from),
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
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // Method and path only: the query string is never logged (it may carry a token
            // that a careless client put there, which the guard refuses).
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state))
}
