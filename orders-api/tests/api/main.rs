//! orders-api's tests: each spawns the real service in-process on port 0, with a fresh SQLite
//! file and the Entra emulator issuing real tokens, and talks HTTP to it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod agents;
mod authentication;
mod binary;
mod crash;
mod errors;
mod helpers;
mod hop;
mod idempotency;
mod isolation;
mod openapi;
mod orders;
mod persistence;
