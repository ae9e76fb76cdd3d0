//! Whole-page error responses for routes outside the Leptos app (sign-in, cross-site refusals):
//! the same look as the app, a fixed title, and text that never echoes request input.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use leptos::prelude::*;

use crate::server_page;
use crate::ui::Notice;

/// A page saying what went wrong and offering the way back to the start page.
pub fn error_page(status: StatusCode, title: &'static str, detail: &str) -> Response {
    page(status, title, detail, ("/".to_string(), "Back to the start page".to_string()))
}

/// Like [`error_page`], with a specific next step.
pub fn page(status: StatusCode, title: &'static str, detail: &str, action: (String, String)) -> Response {
    let detail = detail.to_string();
    let html = server_page::render(title, None, (), move || {
        view! {
            <main id="main">
                <Notice title detail action />
            </main>
        }
    });
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
