//! Security headers on every response, including a Content-Security-Policy whose script nonce
//! is fresh per response: only the server's own inline hydration script and same-origin
//! scripts run, so injected markup cannot execute.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use leptos::nonce::Nonce;
use leptos::prelude::{provide_context, use_context};

use crate::state::AppState;

/// The IdP loads this page in an iframe (front-channel logout): it must stay frameable by it.
const FRAMEABLE: &str = "/auth/front-channel-logout";

/// Adds the headers, and gives the page renderer this response's nonce (see [`provide_nonce`]).
pub async fn security_headers(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let frameable = request.uri().path() == FRAMEABLE;
    let static_asset = is_bundle(request.uri().path(), &state.settings.site.pkg_dir);
    let nonce = Nonce::new();
    request.extensions_mut().insert(nonce.clone());
    let mut response = next.run(request).await;
    let idp = &state.idp_origin;
    // Sign-out is a form post that redirects to the IdP: `form-action` must allow that hop.
    let framing = if frameable { idp } else { "'none'" };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self' {idp}; frame-ancestors {framing}"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Not `no-referrer`: browsers then send `Origin: null` on same-site form posts, which the
    // cross-site check must refuse. `same-origin` still keeps URLs from other sites.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !frameable {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    // Pages and answers are made from the session (the user's chat, orders, claims): never kept
    // by the browser, so Back after sign-out on a shared computer shows none of it (OWASP
    // Session Management Cheat Sheet). The bundle under /pkg/ is the same for everyone.
    if !static_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.settings.strict_transport() {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}

/// Leptos context: the nonce [`security_headers`] put in the request, which the hydration
/// scripts then carry.
pub fn provide_nonce() {
    let nonce = use_context::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Nonce>().cloned());
    if let Some(nonce) = nonce {
        provide_context(nonce);
    }
}

/// Under the bundle's directory (`LEPTOS_SITE_PKG_DIR`, served at `/<pkg_dir>/`).
fn is_bundle(path: &str, pkg_dir: &str) -> bool {
    path.strip_prefix('/').and_then(|p| p.strip_prefix(pkg_dir)).is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::is_bundle;

    #[test]
    fn only_the_bundle_directory_is_the_bundle() {
        assert!(is_bundle("/pkg/chat_app.wasm", "pkg"));
        assert!(is_bundle("/assets/chat_app.js", "assets"));
        for path in ["/pkg", "/pkgs/x.js", "/chat", "/api/pkg/x"] {
            assert!(!is_bundle(path, "pkg"), "{path}");
        }
    }
}
