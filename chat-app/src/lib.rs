//! chat-app: Orders Copilot's web app. A Leptos app rendered on the server and hydrated in the
//! browser; on the server, sign-in as a backend-for-frontend, the agent loop, and the MCP client.
//!
//! Built twice: the server (`ssr`, the default) and the browser bundle
//! (`--no-default-features --features hydrate`, to wasm32).

pub mod server_fns;
pub mod transcript;
pub mod ui;
pub mod views;

#[cfg(feature = "hydrate")]
mod live;

#[cfg(feature = "ssr")]
pub mod agent;
#[cfg(feature = "ssr")]
pub mod approvals;
#[cfg(feature = "ssr")]
pub mod auth;
#[cfg(feature = "ssr")]
pub mod chat;
#[cfg(feature = "ssr")]
pub mod configuration;
#[cfg(feature = "ssr")]
mod error_page;
#[cfg(feature = "ssr")]
mod headers;
#[cfg(feature = "ssr")]
mod health;
#[cfg(feature = "ssr")]
pub mod mcp;
#[cfg(feature = "ssr")]
pub mod orders;
#[cfg(feature = "ssr")]
pub mod pages;
#[cfg(feature = "ssr")]
pub mod presenter;
#[cfg(feature = "ssr")]
mod server_page;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod turns;

/// The browser bundle's entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(ui::App);
    // A marker for tests (and curious people): the page is interactive from here on.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "");
    }
}
