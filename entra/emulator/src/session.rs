//! The emulator's single-sign-on session: who is signed in at this browser, and to which apps
//! (for front-channel logout), named by a cookie. The cookie is a secret of its own, not the
//! session id (`sid`) that apps see in tokens and logout requests.

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

/// The live session named by the request's SSO cookie, with the cookie's value.
pub fn current(emulator: &Emulator, headers: &HeaderMap) -> Option<(String, Session)> {
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';'));
    let cookie =
        cookies.filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == SSO_COOKIE).map(|(_, v)| v.to_string())?;
    let session = emulator.0.store.sessions.get(&cookie)?;
    Some((cookie, session))
}

/// Starts a session for the user `user_oid` signed in; returns the cookie's value and the session.
pub fn start(emulator: &Emulator, user_oid: &str) -> Result<(String, Session), RandomError> {
    let cookie = codes::session_cookie()?;
    let session = Session {
        sid: codes::session_id()?,
        user_oid: user_oid.to_string(),
        clients: Vec::new(),
        expires_at: unix_now_i64() + LIFETIME_SECS,
    };
    emulator.0.store.sessions.insert(cookie.clone(), session.clone());
    Ok((cookie, session))
}

/// Remembers that the user of the session named by `cookie` signed in to `client_id`.
pub fn add_client(emulator: &Emulator, cookie: &str, client_id: &str) {
    emulator.0.store.sessions.update(cookie, |s| {
        if !s.clients.iter().any(|c| c == client_id) {
            s.clients.push(client_id.to_string());
        }
    });
}

/// Sets the SSO cookie to `cookie` on `response`.
pub fn set_cookie(response: &mut Response, cookie: &str) {
    append_cookie(response, &format!("{SSO_COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax; Max-Age={LIFETIME_SECS}"));
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
