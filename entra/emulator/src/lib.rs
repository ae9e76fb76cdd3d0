//! An offline identity provider shaped like Microsoft Entra ID.
//!
//! It loads the identity manifest and serves, for that one tenant, what Entra serves: v1 and v2
//! discovery, JWKS, the authorize endpoint (a login page listing the demo users), the token
//! endpoint (authorization code + PKCE, refresh, On-Behalf-Of, client credentials, device code),
//! device-code sign-in, logout, and an App Service-style managed-identity endpoint. Tokens and
//! errors have Entra's shapes, so the services' code runs unchanged against it and the cloud.
//!
//! Issuer and endpoints: tokens name the configured public URL as issuer, and so do the
//! front-channel endpoints a browser follows (authorize, logout). Back-channel endpoints in the
//! discovery documents (token, JWKS, device code) use the address the document was fetched
//! from, so a container that reaches the emulator as `http://emulator:3003` talks to it there
//! while validating the same `http://localhost:3003/...` issuer the browser saw.

pub mod battery;
pub mod broker;
pub mod config;

mod admin;
mod authorize;
mod claims;
mod device;
mod directory;
mod discovery;
mod error;
mod keys;
mod logout;
mod managed_identity;
mod pages;
mod store;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::trace::TraceLayer;

pub use claims::Issuers;
pub use config::EmulatorConfig;
use directory::Directory;
use keys::KeySet;
use store::Store;

/// Counters of what the emulator did, for tests and `/_emulator/stats`.
#[derive(Default)]
struct Counters {
    authorization_code: AtomicU64,
    refresh_token: AtomicU64,
    on_behalf_of: AtomicU64,
    client_credentials: AtomicU64,
    device_code: AtomicU64,
    managed_identity: AtomicU64,
    jwks: AtomicU64,
    discovery: AtomicU64,
    refused: AtomicU64,
}

/// A snapshot of [`Counters`]: successful token issuances per grant, and metadata fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub authorization_code: u64,
    pub refresh_token: u64,
    pub on_behalf_of: u64,
    pub client_credentials: u64,
    pub device_code: u64,
    pub managed_identity: u64,
    pub jwks: u64,
    pub discovery: u64,
    /// Token requests refused with an Entra error.
    pub refused: u64,
}

struct Inner {
    dir: Directory,
    config: EmulatorConfig,
    public_url: String,
    issuers: Issuers,
    keys: KeySet,
    store: Store,
    counters: Counters,
}

/// The emulator's state; clone it freely (it is an `Arc`).
#[derive(Clone)]
pub struct Emulator(Arc<Inner>);

impl Emulator {
    /// Builds an emulator serving at `config.public_url` (which must be set; [`spawn`] sets it
    /// from the bound port).
    pub fn new(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        let public_url = config
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .ok_or_else(|| anyhow::anyhow!("the emulator needs a public URL"))?;
        let issuers = Issuers::new(&public_url, &config.manifest.tenant.id);
        let dir = Directory::new(config.manifest.clone(), config.vars.clone());
        Ok(Emulator(Arc::new(Inner {
            dir,
            issuers,
            public_url,
            keys: KeySet::generate()?,
            store: Store::default(),
            counters: Counters::default(),
            config,
        })))
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(admin::health))
            .route("/_emulator/stats", get(admin::stats))
            .route("/_emulator/rotate-keys", post(admin::rotate))
            .route("/common/discovery/instance", get(discovery::instance))
            .route("/{tenant}/v2.0/.well-known/openid-configuration", get(discovery::openid_v2))
            .route("/{tenant}/.well-known/openid-configuration", get(discovery::openid_v1))
            .route("/{tenant}/discovery/v2.0/keys", get(discovery::jwks))
            .route("/{tenant}/discovery/keys", get(discovery::jwks))
            .route("/{tenant}/oauth2/v2.0/authorize", get(authorize::show).post(authorize::submit))
            .route("/{tenant}/oauth2/v2.0/token", post(token::token))
            .route("/{tenant}/oauth2/v2.0/devicecode", post(device::start))
            .route("/{tenant}/oauth2/v2.0/logout", get(logout::logout).post(logout::logout))
            .route("/devicelogin", get(device::page).post(device::approve))
            .route("/msi/token", get(managed_identity::token))
            .layer(TraceLayer::new_for_http())
            .with_state(self.clone())
    }

    pub fn public_url(&self) -> &str {
        &self.0.public_url
    }

    pub fn issuers(&self) -> &Issuers {
        &self.0.issuers
    }

    pub fn tenant_id(&self) -> &str {
        self.0.dir.tenant_id()
    }

    pub fn manifest(&self) -> &entra_auth::manifest::Manifest {
        &self.0.dir.manifest
    }

    pub fn stats(&self) -> Stats {
        let c = &self.0.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            authorization_code: get(&c.authorization_code),
            refresh_token: get(&c.refresh_token),
            on_behalf_of: get(&c.on_behalf_of),
            client_credentials: get(&c.client_credentials),
            device_code: get(&c.device_code),
            managed_identity: get(&c.managed_identity),
            jwks: get(&c.jwks),
            discovery: get(&c.discovery),
            refused: get(&c.refused),
        }
    }

    /// Starts signing with a new key; the previous key stays published for verification.
    pub fn rotate_keys(&self) -> anyhow::Result<String> {
        Ok(self.0.keys.rotate()?.current_kid)
    }

    /// The key id tokens are signed with now.
    pub fn current_kid(&self) -> String {
        self.0.keys.current().kid.clone()
    }

    /// Signs arbitrary claims with the current key and Entra's header. For tests that need a
    /// token the endpoints would never issue (expired, wrong audience, ...).
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        self.0.keys.sign(claims)
    }

    /// Signs with the current key under a caller-chosen header (for header-tampering tests).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        self.0.keys.current().sign_parts(header, claims)
    }

    /// The claims of a delegated access token, as the token endpoint would issue them after
    /// `user` signed in to `client` (manifest names) and asked for `scopes` on `resource` (a
    /// manifest app name). Consent is not checked. Tests mutate these to build bad tokens.
    pub fn user_claims(&self, user: &str, client: &str, resource: &str, scopes: &[&str]) -> anyhow::Result<Value> {
        let inner = &self.0;
        let user = inner.dir.manifest.user(user).ok_or_else(|| anyhow::anyhow!("no user {user:?} in the manifest"))?;
        let client_id = self.client_id(client)?;
        let resource = self.resource(resource)?;
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let roles = inner.dir.user_roles(user, &resource);
        Ok(claims::access_token(
            &inner.issuers,
            &inner.dir.manifest.tenant,
            inner.config.token_lifetime.as_secs() as i64,
            &claims::AccessClaims {
                subject: claims::Subject::User(user),
                client_id: &client_id,
                client_auth: claims::ClientAuth::Assertion,
                resource: &resource,
                scopes: &scopes,
                roles: &roles,
                session_id: None,
            },
        ))
    }

    /// A signed delegated access token (see [`Emulator::user_claims`]): real tokens without a browser.
    pub fn user_token(&self, user: &str, client: &str, resource: &str, scopes: &[&str]) -> anyhow::Result<String> {
        self.sign(&self.user_claims(user, client, resource, scopes)?)
    }

    /// The claims of an app-only token for `client` (a manifest app name) to `resource`, as
    /// client credentials would issue them.
    pub fn app_claims(&self, client: &str, resource: &str) -> anyhow::Result<Value> {
        let inner = &self.0;
        let app = inner.dir.manifest.app(client).ok_or_else(|| anyhow::anyhow!("no app {client:?} in the manifest"))?;
        let resource = self.resource(resource)?;
        Ok(claims::access_token(
            &inner.issuers,
            &inner.dir.manifest.tenant,
            inner.config.token_lifetime.as_secs() as i64,
            &claims::AccessClaims {
                subject: claims::Subject::App { object_id: &app.object_id },
                client_id: &app.client_id,
                client_auth: claims::ClientAuth::Assertion,
                resource: &resource,
                scopes: &[],
                roles: &[],
                session_id: None,
            },
        ))
    }

    /// A signed app-only token (see [`Emulator::app_claims`]).
    pub fn app_token(&self, client: &str, resource: &str) -> anyhow::Result<String> {
        self.sign(&self.app_claims(client, resource)?)
    }

    fn client_id(&self, name: &str) -> anyhow::Result<String> {
        let m = &self.0.dir.manifest;
        m.app(name)
            .map(|a| a.client_id.clone())
            .or_else(|| m.clients.get(name).map(|c| c.client_id.clone()))
            .ok_or_else(|| anyhow::anyhow!("no app or client {name:?} in the manifest"))
    }

    fn resource(&self, name: &str) -> anyhow::Result<directory::Resource> {
        let m = &self.0.dir.manifest;
        let app = m.app(name).ok_or_else(|| anyhow::anyhow!("no app {name:?} in the manifest"))?;
        self.0.dir.resource(&app.client_id).ok_or_else(|| anyhow::anyhow!("{name:?} is not a resource"))
    }

    fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.0.counters).fetch_add(1, Ordering::Relaxed);
    }
}

/// A running emulator server.
pub struct Running {
    pub emulator: Emulator,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Running {
    /// Base URL the server listens on (same as the public URL unless one was configured).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving (the state, including keys, stays in `self.emulator`) and waits for it.
    pub async fn stop(mut self) -> Emulator {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.emulator.clone()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `emulator` on `listener` in the background.
pub fn serve(emulator: Emulator, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let app = emulator.router();
    let task = tokio::spawn(async move {
        let server = axum::serve(entra_auth::serve::without_delay(listener), app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "emulator server failed");
        }
    });
    Ok(Running { emulator, addr, shutdown: Some(tx), task })
}

/// Binds `config.bind` (port 0 picks a free port), sets the public URL from it unless
/// configured, and serves in the background.
pub async fn spawn(mut config: EmulatorConfig) -> anyhow::Result<Running> {
    let listener = TcpListener::bind(config.bind).await?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(url::Url::parse(&format!("http://{addr}"))?);
    }
    serve(Emulator::new(config)?, listener)
}
