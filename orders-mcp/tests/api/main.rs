//! orders-mcp's integration tests: the real chain in-process (emulator, orders-api on SQLite,
//! orders-mcp) and the bridge as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod auth;
mod bridge;
mod health;
mod helpers;
mod mcp_endpoint;
mod obo;
mod passthrough;
mod revisions;
mod tools;
