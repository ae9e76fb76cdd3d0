//! What a page request does before its page renders: protected pages need a signed-in user
//! (and keep their session alive), and every page's data is loaded here, in the request.
//!
//! Loading in the request, not in the page's resources while the body streams: the session
//! layer decides whether to save the session when the response's headers leave, so a change
//! made while the body streamed (the chat draft, offered once) was never saved; and the page's
//! status (502 when orders-mcp is down) was decided before its data had loaded.
//!
//! The server functions return the loaded value when the request has one ([`loaded`]); called
//! from the browser (`POST /api/...`) they load it themselves.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::auth::session::{current_user, touch};
use crate::state::AppState;
use crate::views::{ChatView, OrdersView, UserView, sign_in_url};
use crate::{chat, orders};

/// Pages that need a signed-in user; others redirect to sign-in.
const PROTECTED_PAGES: [&str; 2] = ["/chat", "/orders"];

/// Paths chat-app's own handlers (or the file server) answer: no page, nothing to load.
const NOT_PAGES: [&str; 6] = ["/api/", "/assets/", "/auth/", "/healthz", "/readyz", "/trace/"];
/// The one page under `/auth/`.
const SIGNED_OUT_PAGE: &str = "/auth/signed-out";

/// A page's data, loaded before it renders.
pub struct Loaded {
    /// Who is signed in (the top bar of every page).
    pub user: Option<UserView>,
    pub chat: Option<Result<ChatView, Failure>>,
    pub orders: Option<Result<OrdersView, Failure>>,
}

/// Why a page's data could not be loaded, as its server function reports it.
#[derive(Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    fn of(status: StatusCode, error: impl std::fmt::Display) -> Failure {
        Failure { status, message: error.to_string() }
    }
}

/// The data loaded for the page this request renders, if any (server functions during SSR).
pub fn loaded() -> Option<Arc<Loaded>> {
    leptos::prelude::use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Arc<Loaded>>().cloned())
}

/// Middleware: signs-in check for protected pages, then the page's data (see the module docs).
pub async fn prepare(State(state): State<AppState>, session: Session, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if request.method() != Method::GET || !renders_a_page(&state, &path) {
        return next.run(request).await;
    }
    let user = current_user(&session).await;
    if PROTECTED_PAGES.contains(&path.as_str()) {
        match &user {
            Some(user) => touch(&session, user.clone()).await,
            None => return Redirect::to(&sign_in_url(&path)).into_response(),
        }
    }
    let chat = match path.as_str() {
        "/chat" => Some(chat::load(&state, &session).await.map_err(|e| Failure::of(e.status(), e))),
        _ => None,
    };
    let orders = match path.as_str() {
        "/orders" => Some(orders::my_orders(&state, &session).await.map_err(|e| Failure::of(e.status(), e))),
        _ => None,
    };
    request.extensions_mut().insert(Arc::new(Loaded { user: user.map(|u| u.view()), chat, orders }));
    next.run(request).await
}

/// Whether the Leptos app renders `path` (a page, or the "not found" page).
fn renders_a_page(state: &AppState, path: &str) -> bool {
    let files = format!("/{}/", state.settings.site.pkg_dir);
    path == SIGNED_OUT_PAGE || !(path.starts_with(&files) || NOT_PAGES.iter().any(|p| path.starts_with(p)))
}
