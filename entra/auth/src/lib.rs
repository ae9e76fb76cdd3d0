//! Microsoft Entra ID tokens for the Orders Copilot services: everything about identity, and
//! nothing else (serving, settings and logs are `service-kit`; the tenant description is
//! `entra-manifest`).
//!
//! - [`validate`]: check an incoming access token (RS256, JWKS by `kid`, issuer, audience,
//!   lifetime, tenant) and turn it into a typed [`Caller`](validate::Caller).
//! - [`guard`]: the axum side of that: answers `401`/`403` with RFC 6750 challenges pointing at
//!   the RFC 9728 metadata served by [`metadata`].
//! - [`acquire`]: obtain tokens: managed identity, developer sign-in, a person's browser or
//!   device-code sign-in, confidential client, On-Behalf-Of, cached per user and scope;
//!   [`Credential`](acquire::Credential) is the one credential type.
//! - [`settings`]: the identity settings every service reads the same way, and its credential.
//! - [`pkce`]: RFC 7636 for the sign-in client and the emulator's token endpoint.
//! - [`claims_challenge`]: Conditional Access step-up (`insufficient_claims`, `acrs`), both sides.
//! - [`hop`]: the hop-trace record each service reports (built from a `Caller`, never a token).
//! - [`span_attributes`]: the same record as OpenTelemetry span attributes, one list of names.
//!
//! Only [`hop`] is available without the default `server` feature, so a browser build can
//! show hop traces without pulling in the server stack.

pub mod hop;

#[cfg(feature = "server")]
pub mod acquire;
#[cfg(feature = "server")]
pub mod claims_challenge;
#[cfg(feature = "server")]
pub mod guard;
#[cfg(feature = "server")]
mod jwt;
#[cfg(feature = "server")]
pub mod metadata;
#[cfg(feature = "server")]
pub mod pkce;
#[cfg(feature = "server")]
pub mod settings;
#[cfg(feature = "server")]
pub mod span_attributes;
#[cfg(feature = "server")]
pub mod validate;
