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

pub mod broker;
pub mod config;
pub mod startup;
pub mod state;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

mod admin;
mod auth_context;
mod authorize;
mod claims;
mod codes;
mod device;
mod directory;
mod discovery;
mod error;
mod keys;
mod logout;
mod managed_identity;
mod pages;
mod session;
mod store;
mod token;

pub use claims::Issuers;
pub use config::{EmulatorConfig, TlsSettings};
pub use startup::Application;
pub use state::{Emulator, Stats};

/// An emulator serving in the background (`Application::build(config).await?.spawn()`); its
/// handle is the [`Emulator`].
pub type Running = service_kit::serve::Running<Emulator>;
