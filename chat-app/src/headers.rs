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
    let static_asset = request.uri().path().starts_with("/pkg/");
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
    if strict_transport(&state.origin) {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    response
}

/// Whether browsers are told to come back over https only (HSTS, RFC 6797): when the app's
/// public URL is https, so a first visit typed as http cannot be kept on plain http by someone
/// in between (OWASP HTTP Headers Cheat Sheet). Not for a loopback name: a year of https-only
/// localhost would break every other local server on plain http.
fn strict_transport(origin: &str) -> bool {
    let Ok(url) = url::Url::parse(origin) else { return false };
    url.scheme() == "https" && !matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]") | None)
}

/// Leptos context: the nonce [`security_headers`] put in the request, which the hydration
/// scripts then carry.
pub fn provide_nonce() {
    let nonce = use_context::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Nonce>().cloned());
    if let Some(nonce) = nonce {
        provide_context(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::strict_transport;

    #[test]
    fn https_deployments_get_strict_transport_security_and_local_ones_do_not() {
        assert!(strict_transport("https://chat-app.example.azurecontainerapps.io"));
        assert!(strict_transport("https://chat.contoso.example:8443"));
        for origin in
            ["http://chat.contoso.example", "https://localhost:3000", "https://127.0.0.1:3000", "https://[::1]:3000"]
        {
            assert!(!strict_transport(origin), "{origin}");
        }
    }
}
