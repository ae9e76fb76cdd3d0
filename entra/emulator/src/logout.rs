//! Sign-out: ends the emulator's single-sign-on session, signs the session's apps out through
//! their front-channel logout URLs, then returns to the app if its URI is registered.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::pages;
use crate::session;
use crate::state::Emulator;

#[tracing::instrument(name = "logout", skip_all, fields(tenant = %tenant))]
pub async fn logout(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return pages::error(&e);
    }
    let dir = &emulator.0.dir;
    let mut frontchannel = Vec::new();
    if let Some((cookie, session)) = session::current(&emulator, &headers) {
        emulator.0.store.sessions.remove(&cookie);
        for client_id in &session.clients {
            if let Some(url) = dir.client(client_id).ok().and_then(|c| c.front_channel_logout_url) {
                let issuer = emulator.issuers().v2.clone();
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("iss", &issuer)
                    .append_pair("sid", &session.sid)
                    .finish();
                frontchannel.push(format!("{url}?{query}"));
            }
        }
    }
    // Only a URI registered for the app is followed: otherwise logout is an open redirect.
    let client_id = q.get("client_id").cloned().or_else(|| {
        let hint = q.get("id_token_hint")?;
        let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(hint).ok()?.claims;
        claims["aud"].as_str().map(str::to_string)
    });
    let next = q.get("post_logout_redirect_uri").filter(|uri| {
        client_id.as_deref().and_then(|id| dir.client(id).ok()).is_some_and(|c| c.check_redirect_uri(uri).is_ok())
    });
    let mut response = pages::signed_out(&frontchannel, next.map(String::as_str));
    session::clear_cookie(&mut response);
    response
}
