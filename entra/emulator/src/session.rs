//! The emulator's single-sign-on session: who is signed in at this browser, and to which apps
//! (for front-channel logout), named by a cookie.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use service_kit::clock::unix_now_i64;
use service_kit::secret::RandomError;

use crate::codes;
use crate::state::Emulator;
use crate::store::Session;

/// The emulator's single-sign-on cookie.
const SSO_COOKIE: &str = "emulator_sso";
const LIFETIME_SECS: i64 = 8 * 3600;

/// The live session named by the request's SSO cookie, with its id.
pub fn current(emulator: &Emulator, headers: &HeaderMap) -> Option<(String, Session)> {
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';'));
    let id =
        cookies.filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == SSO_COOKIE).map(|(_, v)| v.to_string())?;
    let session = emulator.0.store.sessions.get(&id)?;
    Some((id, session))
}

/// Starts a session for the user `user_oid` signed in; returns its id.
pub fn start(emulator: &Emulator, user_oid: &str) -> Result<String, RandomError> {
    let id = codes::session_id()?;
    emulator.0.store.sessions.insert(
        id.clone(),
        Session { user_oid: user_oid.to_string(), clients: Vec::new(), expires_at: unix_now_i64() + LIFETIME_SECS },
    );
    Ok(id)
}

/// Remembers that the session's user signed in to `client_id`.
pub fn add_client(emulator: &Emulator, session_id: &str, client_id: &str) {
    emulator.0.store.sessions.update(session_id, |s| {
        if !s.clients.iter().any(|c| c == client_id) {
            s.clients.push(client_id.to_string());
        }
    });
}

/// Sets the cookie naming session `id` on `response`.
pub fn set_cookie(response: &mut Response, id: &str) {
    append_cookie(response, &format!("{SSO_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={LIFETIME_SECS}"));
}

/// Expires the cookie on `response` (sign-out).
pub fn clear_cookie(response: &mut Response) {
    append_cookie(response, &format!("{SSO_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"));
}

fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
