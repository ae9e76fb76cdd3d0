//! Building the emulator from its settings: the one service shape (see `service_kit::serve`).

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::routing::{get, post};
use service_kit::serve::{Built, Service};
use tokio_util::sync::CancellationToken;

use crate::config::EmulatorConfig;
use crate::state::Emulator;
use crate::{admin, authorize, device, discovery, logout, managed_identity, tls, token};

/// The emulator as a [`Service`]: `Application::build(config)`, or `Application::build_on(listener,
/// emulator)` to serve an existing emulator again (its keys and sessions intact).
pub struct EntraEmulator;

pub type Application = service_kit::serve::Application<EntraEmulator>;

/// What to serve: a new emulator, or one that served before.
pub enum Start {
    New(Box<EmulatorConfig>),
    Again(Emulator),
}

impl From<EmulatorConfig> for Start {
    fn from(config: EmulatorConfig) -> Self {
        Start::New(Box::new(config))
    }
}

impl From<Emulator> for Start {
    fn from(emulator: Emulator) -> Self {
        Start::Again(emulator)
    }
}

impl Service for EntraEmulator {
    type Settings = Start;
    type Handle = Emulator;

    fn address(start: &Start) -> SocketAddr {
        match start {
            Start::New(config) => config.bind,
            Start::Again(emulator) => emulator.config().bind,
        }
    }

    async fn build(start: Start, local: SocketAddr, _: CancellationToken) -> anyhow::Result<Built<Emulator>> {
        let emulator = match start {
            Start::New(config) => {
                let mut config = *config;
                if config.public_url.is_none() {
                    let scheme = if config.tls.is_some() { "https" } else { "http" };
                    config.public_url =
                        Some(url::Url::parse(&format!("{scheme}://{local}")).context("the bound address")?);
                }
                Emulator::new(config)?
            }
            Start::Again(emulator) => emulator,
        };
        let tls = match &emulator.config().tls {
            Some(settings) => {
                let ca = tls::load_or_create(&settings.dir, &settings.names)?;
                tracing::info!(ca = %ca.ca_file.display(), "{}", tls::trust_instructions(&ca.ca_file));
                Some(ca.server)
            }
            None => None,
        };
        tracing::info!(
            url = emulator.public_url(),
            tenant = emulator.tenant_id(),
            issuer_v2 = %emulator.issuers().v2,
            "Entra emulator ready"
        );
        Ok(Built { router: router(emulator.clone()), handle: emulator, on_stopped: None, tls })
    }
}

pub fn router(emulator: Emulator) -> Router {
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
        .layer(service_kit::serve::request_spans())
        .with_state(emulator)
}
