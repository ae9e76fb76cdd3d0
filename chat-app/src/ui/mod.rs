//! The pages: rendered on the server, then hydrated in the browser.

mod approval;
mod chat;
mod header;
mod landing;
mod notice;

pub use notice::Notice;
mod orders;
pub(crate) mod trace;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::server_fns::session_info;

/// The stylesheet's URL; the server serves it from the binary (see `startup`).
pub const STYLESHEET: &str = "/assets/chat-app.css";

/// A small inline icon, so no request 404s for `/favicon.ico`.
const FAVICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='7' fill='%23134e9b'/%3E%3Cpath d='M8 11h16M8 16h11M8 21h7' stroke='white' stroke-width='3' stroke-linecap='round'/%3E%3C/svg%3E";

/// The HTML document around the app.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <link rel="stylesheet" href=STYLESHEET />
                <link rel="icon" href=FAVICON />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let session = Resource::new(|| (), |_| session_info());
    view! {
        <Title text="Orders Copilot" />
        <Router>
            <a class="skip" href="#main">
                "Skip to content"
            </a>
            <header::Header session />
            <main id="main">
                <Routes fallback=|| view! { <notice::NotFound /> }>
                    <Route path=path!("/") view=move || view! { <landing::Landing session /> } />
                    <Route path=path!("/chat") view=chat::ChatPage />
                    <Route path=path!("/orders") view=orders::OrdersPage />
                    <Route path=path!("/auth/signed-out") view=landing::SignedOut />
                </Routes>
            </main>
        </Router>
    }
}
