//! chat-app's HTTP-level tests: the real app in-process on port 0, the emulator, and (for chat
//! turns) the real orders-mcp and orders-api.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod agent_identity;
mod chat;
mod fake_openai;
mod front;
mod helpers;
mod mcp_client;
mod mcp_outage;
mod pages;
mod presenter;
mod providers;
mod replicas;
mod sign_in;
mod stack;
