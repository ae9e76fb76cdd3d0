//! orders-api: the orders REST API at the end of the Orders Copilot identity chain.
//!
//! It validates the Entra access token each request carries (v1, audience orders-api),
//! authorizes by scope and role, and scopes every query to the caller's own orders. See the
//! crate README for the endpoints, settings and error types.
//!
//! - [`configuration`]: settings from the environment.
//! - [`startup`]: builds the database, validator and router; serves.
//! - [`state`]: what the handlers share.
//! - [`database`]: the SQLite file: open, migrate, readiness.
//! - [`store`]: order queries, each scoped to what the caller may see.
//! - [`seed`]: the demo orders and the demo users who own them.
//! - [`domain`]: ids, statuses, new orders, paging, idempotency keys, the user a request acts
//!   for: parsed, not validated.
//! - [`permissions`]: the scope and role names; [`authorization`]: the policies over them, and
//!   the extractor that applies them.
//! - [`hop_trace`]: this service's record in the hop trace (`x-hop-trace`).
//! - [`routes`]: the handlers; [`openapi`]: the document they are described in.
//! - [`error`] and [`extract`]: problem+json for every failure, axum's rejections included.

pub mod authorization;
pub mod configuration;
pub mod database;
pub mod domain;
pub mod error;
pub mod extract;
pub mod hop_trace;
pub mod openapi;
pub mod permissions;
pub mod routes;
pub mod seed;
pub mod startup;
pub mod state;
pub mod store;
