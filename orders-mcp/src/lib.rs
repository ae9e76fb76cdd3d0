//! orders-mcp: an MCP server (Streamable HTTP at `/mcp`) that validates the user's token and
//! calls orders-api on their behalf, plus `bridge`, a stdio proxy to any Entra-protected MCP
//! server for clients that only speak stdio.
//!
//! - [`configuration`]: typed settings from the environment.
//! - [`startup`]: the router and the server ([`startup::Application`]); [`state`]: what the
//!   plain HTTP handlers share.
//! - [`auth`]: the middleware that validates every `/mcp` request.
//! - [`mcp_endpoint`]: `/mcp`, rmcp's service with a direct route for plain stateless tool calls.
//! - [`tools`]: the MCP tools and their hop trace; [`tool_result`]: a call's result, and its JSON.
//! - [`orders_api`]: the client for orders-api (On-Behalf-Of or passthrough).
//! - [`order`]: orders and the arguments that name or create one.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`bridge`]: the stdio bridge.

pub mod auth;
pub mod bridge;
pub mod configuration;
pub mod health;
pub mod mcp_endpoint;
pub mod order;
pub mod orders_api;
pub mod startup;
pub mod state;
pub mod tool_result;
pub mod tools;
