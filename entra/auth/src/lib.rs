//! Microsoft Entra ID tokens for the Orders Copilot services.
//!
//! - [`validate`]: check an incoming access token (RS256, JWKS by `kid`, issuer, audience,
//!   lifetime, tenant) and turn it into a typed [`Caller`].
//! - [`guard`]: the axum side of that: extractors that answer `401`/`403` with RFC 6750
//!   challenges pointing at the RFC 9728 metadata served by [`metadata`].
//! - [`acquire`]: obtain tokens: managed identity, On-Behalf-Of, cached per user and scope.
//! - [`manifest`]: the typed identity manifest (`infra/app-registrations.toml`).
//! - [`settings`]: typed settings from environment variables, all problems reported at once.
//! - [`probe`]: a dependency-free HTTP health probe (`<service> healthcheck` in containers).
//! - [`problem`]: RFC 9457 problem details, the error body of every service.
//! - [`hop`]: the hop-trace record each service reports (built from a [`Caller`], never a token).
//!
//! Only [`hop`] is available without the default `server` feature, so a browser build can
//! show hop traces without pulling in the server stack.

pub mod hop;

#[cfg(feature = "server")]
pub mod acquire;
#[cfg(feature = "server")]
pub mod guard;
#[cfg(feature = "server")]
pub mod manifest;
#[cfg(feature = "server")]
pub mod metadata;
#[cfg(feature = "server")]
pub mod probe;
#[cfg(feature = "server")]
pub mod problem;
#[cfg(feature = "server")]
pub mod serve;
#[cfg(feature = "server")]
pub mod settings;
#[cfg(feature = "server")]
pub mod telemetry;
#[cfg(feature = "server")]
pub mod validate;

#[cfg(feature = "server")]
pub use validate::{Caller, CallerKind, IdToken, TokenValidator, TokenVersion, ValidationError, ValidatorConfig};
