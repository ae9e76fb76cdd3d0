//! The sign-in routes: `/auth/sign-in`, `/auth/step-up`, `/auth/callback`, `/auth/sign-out`
//! (POST), `/auth/front-channel-logout`. (`/auth/signed-out` is a page of the app.)

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use entra_auth::pkce;
use serde::{Deserialize, Serialize};
use service_kit::clock::unix_now;
use service_kit::secret::{self, RandomError};
use tower_sessions::{Session, SessionStore};

use super::oidc::OidcError;
use super::refresh::Tokens;
use super::session::{UserSession, keys};
use crate::error_page::{error_page, page};
use crate::state::AppState;

/// A sign-in in progress: what the callback must match. Only in the server-side session.
#[derive(Serialize, Deserialize)]
pub struct PendingSignIn {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    started_at: u64,
    /// A step-up (`/auth/step-up`): the authentication contexts asked for. The callback then
    /// accepts only the user already signed in here.
    #[serde(default)]
    step_up: Vec<String>,
}

/// A sign-in must complete within this many seconds.
const PENDING_LIFETIME: u64 = 600;

impl PendingSignIn {
    /// Fresh one-time values from the operating system's generator (no fallback: a predictable
    /// `state` or verifier would defeat them).
    fn new(return_to: String, step_up: Vec<String>) -> Result<Self, RandomError> {
        Ok(PendingSignIn {
            state: secret::urlsafe::<32>()?,
            nonce: secret::urlsafe::<32>()?,
            verifier: pkce::verifier()?,
            return_to,
            started_at: unix_now(),
            step_up,
        })
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

/// Only paths on this site. Browsers drop tabs and line breaks from URLs and read `\` as `/`,
/// so `/<TAB>/evil.example` and `/\evil.example` both lead to `//evil.example`, another site
/// (WHATWG URL Standard, "basic URL parser": ASCII tab or newline is removed, and `\` is a
/// path separator in special URLs). So: no control character or backslash anywhere, and the
/// path, resolved against this site the way a browser resolves it, must stay on this site.
fn safe_return_to(path: Option<&str>) -> String {
    const HOME: &str = "/chat";
    let Some(p) = path else { return HOME.to_string() };
    if !p.starts_with('/') || p.contains("://") || p.chars().any(|c| c.is_control() || c == '\\') {
        return HOME.to_string();
    }
    let Ok(site) = url::Url::parse("https://chat-app.invalid/") else { return HOME.to_string() };
    match site.join(p) {
        Ok(resolved) if resolved.origin() == site.origin() => p.to_string(),
        _ => HOME.to_string(),
    }
}

fn session_failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "session store failure");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in unavailable",
        "chat-app could not store your session. Please try again.",
    )
}

fn idp_unavailable(e: &OidcError) -> Response {
    tracing::warn!(error = %e, "identity provider unavailable");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Identity provider unavailable",
        "chat-app cannot reach the identity provider right now, so you cannot sign in. Please try again in a moment.",
        ("/auth/sign-in".to_string(), "Try again".to_string()),
    )
}

fn refused(detail: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Sign-in refused", detail, ("/auth/sign-in".to_string(), "Sign in again".to_string()))
}

fn no_randomness(e: &RandomError) -> Response {
    tracing::error!(error = %e, "cannot start a sign-in");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Sign-in unavailable",
        "chat-app could not make the one-time values a sign-in needs (its random generator failed). Please try again later.",
    )
}

/// Starts authorization code + PKCE: `state`, `nonce` and the verifier stay in the session.
#[tracing::instrument(name = "auth.sign_in", skip_all)]
pub async fn sign_in(State(state): State<AppState>, session: Session, Query(q): Query<SignInQuery>) -> Response {
    let pending = match PendingSignIn::new(safe_return_to(q.return_to.as_deref()), Vec::new()) {
        Ok(pending) => pending,
        Err(e) => return no_randomness(&e),
    };
    let login_hint = q.login_hint.filter(|h| !h.is_empty() && h.len() <= 256);
    start(&state, &session, pending, login_hint.as_deref()).await
}

#[derive(Deserialize)]
pub struct StepUpQuery {
    /// Authentication context ids, comma-separated (`c1`); anything else is dropped.
    contexts: Option<String>,
}

/// "Confirm with sign-in" after orders-api's claims challenge: the signed-in user signs in again
/// asking for the authentication contexts (`claims`), and the stepped-up tokens replace the
/// session's. The authorize endpoint is chat-app's configured authority, never a challenge's
/// `authorization_uri`; the link names context ids only (`c1` ... `c99`). Like `/auth/sign-in`
/// it only starts a flow: the callback's `state`, PKCE and the same-user check protect it.
#[tracing::instrument(name = "auth.step_up", skip_all)]
pub async fn step_up(State(state): State<AppState>, session: Session, Query(q): Query<StepUpQuery>) -> Response {
    let user = match session.get::<UserSession>(keys::USER).await {
        Ok(user) => user,
        Err(e) => return session_failed(e),
    };
    let Some(user) = user else {
        return Redirect::to("/auth/sign-in?return_to=/chat").into_response();
    };
    let contexts = q.contexts.unwrap_or_default();
    let contexts: Vec<String> =
        contexts.split(',').filter(|c| entra_manifest::is_auth_context_id(c)).map(String::from).collect();
    if contexts.is_empty() {
        return refused("This confirmation link names nothing to confirm.");
    }
    let pending = match PendingSignIn::new("/chat".into(), contexts) {
        Ok(pending) => pending,
        Err(e) => return no_randomness(&e),
    };
    start(&state, &session, pending, user.username.as_deref()).await
}

/// Sends the browser to the identity provider for `pending`, which waits in the session.
async fn start(state: &AppState, session: &Session, pending: PendingSignIn, login_hint: Option<&str>) -> Response {
    let challenge = pkce::challenge(&pending.verifier);
    let url = match state
        .oidc
        .authorize_url(&pending.state, &pending.nonce, &challenge, login_hint, &pending.step_up)
        .await
    {
        Ok(url) => url,
        Err(e) => return idp_unavailable(&e),
    };
    if let Err(e) = session.insert(keys::PENDING, &pending).await {
        return session_failed(e);
    }
    Redirect::to(url.as_str()).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The identity provider's answer: checks `state`, redeems the code with the PKCE verifier,
/// validates the ID token's `nonce`, then starts the signed-in session under a new id.
#[tracing::instrument(name = "auth.callback", skip_all)]
pub async fn callback(State(state): State<AppState>, session: Session, Query(q): Query<CallbackQuery>) -> Response {
    let pending: Option<PendingSignIn> = match session.remove(keys::PENDING).await {
        Ok(p) => p,
        Err(e) => return session_failed(e),
    };
    let Some(pending) = pending.filter(|p| unix_now().saturating_sub(p.started_at) < PENDING_LIFETIME) else {
        return refused(
            "This sign-in response does not belong to a sign-in started in this browser, or it took too long. Please sign in again.",
        );
    };
    if !q.state.as_deref().is_some_and(|s| secret::same(s, &pending.state)) {
        tracing::warn!("sign-in refused: state mismatch");
        return refused(
            "The response does not match this browser's sign-in request (state mismatch), so it was refused.",
        );
    }
    if let Some(error) = q.error {
        // Shown as codes only: the description is the IdP's text and stays in the log.
        let code = error.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect::<String>();
        let aadsts = q.error_description.as_deref().and_then(aadsts_code);
        tracing::info!(error = %code, description = q.error_description.as_deref().unwrap_or(""), "sign-in failed at the identity provider");
        let detail = match aadsts {
            Some(n) => format!("The identity provider did not sign you in ({code}, AADSTS{n})."),
            None => format!("The identity provider did not sign you in ({code})."),
        };
        return refused(&detail);
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refused("The identity provider's response has no authorization code.");
    };
    let signed_in = match state.oidc.redeem(&code, &pending.verifier, &pending.nonce).await {
        Ok(s) => s,
        Err(OidcError::Token(e)) if e.codes().contains(&50148) => {
            tracing::warn!("sign-in refused: PKCE verifier mismatch");
            return refused("The identity provider refused the code: the PKCE verifier does not match (AADSTS50148).");
        }
        Err(OidcError::Token(e)) if !e.is_transient() => {
            tracing::warn!(error = %e, "code redemption refused");
            let codes: Vec<String> = e.codes().iter().map(|c| format!("AADSTS{c}")).collect();
            return refused(&format!("The identity provider refused to issue tokens ({}).", codes.join(", ")));
        }
        Err(OidcError::IdToken(e)) => {
            tracing::warn!(error = %e, "sign-in refused: bad ID token");
            return refused(&format!("The ID token was refused: {e}."));
        }
        Err(e @ (OidcError::Unreachable(_) | OidcError::BadMetadata(_) | OidcError::Token(_))) => {
            return idp_unavailable(&e);
        }
        Err(e @ OidcError::Missing(_)) => {
            tracing::warn!(error = %e, "unusable token response");
            return refused("The identity provider's answer lacked a token chat-app needs.");
        }
    };
    let Some(tokens) = Tokens::from_response(&signed_in.tokens, None) else {
        return refused("The identity provider issued no refresh token.");
    };
    let id = signed_in.id;
    if !pending.step_up.is_empty() {
        // A step-up confirms the user already here; another account's tokens are not taken.
        let current = match session.get::<UserSession>(keys::USER).await {
            Ok(current) => current,
            Err(e) => return session_failed(e),
        };
        if current.is_none_or(|u| u.oid != id.oid) {
            tracing::warn!("step-up refused: another account than the signed-in one");
            return refused(
                "The confirmation was made by another account than the one signed in here, so it was not used.",
            );
        }
    }
    let user = UserSession {
        oid: id.oid,
        tid: id.tid,
        name: id.name,
        username: id.preferred_username,
        sid: id.sid,
        ends_at: unix_now().saturating_add(state.settings.session.absolute.as_secs()),
        touched_at: unix_now(),
        tokens,
    };
    match start_session(&state, &session, &user).await {
        Ok(()) => {
            tracing::info!(oid = %user.oid, "signed in");
            Redirect::to(&pending.return_to).into_response()
        }
        Err(e) => session_failed(e),
    }
}

/// `AADSTS50148: ...` → `50148`.
fn aadsts_code(description: &str) -> Option<String> {
    let rest = &description[description.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).take(10).collect();
    (!digits.is_empty()).then_some(digits)
}

/// A new session id (no fixation), the user, and a conversation: the previous one if it was
/// this user's (re-sign-in after expiry keeps the chat), else a new one.
async fn start_session(state: &AppState, session: &Session, user: &UserSession) -> anyhow::Result<()> {
    session.cycle_id().await?;
    session.insert(keys::USER, user).await?;
    let previous: Option<String> = session.get(keys::CONVERSATION).await?;
    let conversation = match previous {
        Some(id) if state.store.owner(&id).await?.as_deref() == Some(user.oid.as_str()) => id,
        _ => {
            session.remove_value(keys::DRAFT).await?;
            state.store.create_conversation(&user.oid).await?
        }
    };
    session.insert(keys::CONVERSATION, &conversation).await?;
    // Saved now to learn the new id, so front-channel logout can find this session.
    session.save().await?;
    if let (Some(sid), Some(id)) = (&user.sid, session.id()) {
        state.store.remember_idp_session(sid, &id.to_string()).await?;
    }
    Ok(())
}

/// Ends the session here (tokens, conversation, and a turn still running with the user's
/// token), then at the identity provider.
#[tracing::instrument(name = "auth.sign_out", skip_all)]
pub async fn sign_out(State(state): State<AppState>, session: Session) -> Response {
    let conversation = session.get::<String>(keys::CONVERSATION).await.ok().flatten();
    let id = session.id();
    // The session goes first: a turn starting meanwhile either finds it gone (`chat::start`
    // looks after registering the turn) or is registered by now and ended here.
    let flushed = session.flush().await;
    if let Some(id) = id {
        state.turns.end(&id.to_string(), conversation.as_deref());
    }
    if let Some(conversation) = conversation
        && let Err(e) = state.store.delete_conversation(&conversation).await
    {
        tracing::warn!(error = %e, "cannot delete a conversation at sign-out");
    }
    if let Err(e) = flushed {
        return session_failed(e);
    }
    match state.oidc.end_session_url().await {
        Some(url) => Redirect::to(url.as_str()).into_response(),
        None => Redirect::to("/auth/signed-out").into_response(),
    }
}

#[derive(Deserialize)]
pub struct FrontChannelQuery {
    sid: Option<String>,
    iss: Option<String>,
}

/// OpenID Connect front-channel logout: the identity provider (in a hidden iframe) says the
/// user signed out there; every local session of that IdP session ends.
#[tracing::instrument(name = "auth.front_channel_logout", skip_all)]
pub async fn front_channel_logout(State(state): State<AppState>, Query(q): Query<FrontChannelQuery>) -> Response {
    let issuer_ok = match (&q.iss, state.oidc.issuer().await) {
        (Some(given), Some(expected)) => *given == expected,
        (None, _) => true,
        (Some(_), None) => false,
    };
    let mut response = if let (Some(sid), true) = (q.sid.as_deref().filter(|s| !s.is_empty()), issuer_ok) {
        match end_idp_session(&state, sid).await {
            Ok(n) => {
                tracing::info!(sessions = n, "front-channel logout");
                StatusCode::OK.into_response()
            }
            Err(e) => {
                tracing::error!(error = %e, "front-channel logout failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    } else {
        StatusCode::BAD_REQUEST.into_response()
    };
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Deletes every local session (and its conversation) started from IdP session `sid`.
async fn end_idp_session(state: &AppState, sid: &str) -> anyhow::Result<usize> {
    let ids = state.store.take_idp_sessions(sid).await?;
    for id in &ids {
        let Ok(id) = id.parse::<tower_sessions::session::Id>() else { continue };
        let record = state.sessions.load(&id).await?;
        // The session first, as at sign-out.
        state.sessions.delete(&id).await?;
        let conversation = record.as_ref().and_then(|r| r.data.get(keys::CONVERSATION)?.as_str());
        state.turns.end(&id.to_string(), conversation);
        if let Some(conversation) = conversation {
            state.store.delete_conversation(conversation).await?;
        }
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_on_this_site() {
        assert_eq!(safe_return_to(Some("/orders")), "/orders");
        assert_eq!(safe_return_to(Some("/orders?status=pending")), "/orders?status=pending");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "chat",
            "/x?u=http://e",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r/evil.example",
            "/orders\\..\\..\\/evil.example",
            "/\u{7f}/evil.example",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/chat", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/chat");
    }

    #[test]
    fn aadsts_codes_are_extracted() {
        assert_eq!(aadsts_code("AADSTS50148: The code_verifier does not match").as_deref(), Some("50148"));
        assert_eq!(aadsts_code("no code"), None);
    }
}
