//! The signed-in user of a session (the server-side session record), and a fresh access token
//! for them: renewed from the refresh token when it is about to expire.

use entra_auth::acquire::AccessToken;
use serde::{Deserialize, Serialize};
use service_kit::clock::unix_now;
use tower_sessions::Session;

use super::agent_identity::AgentTokenError;
use super::refresh::{RefreshError, Tokens};
use crate::state::AppState;
use crate::views::{SIGN_IN_REQUIRED, UserView};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "chat_session";

/// Session keys.
pub(crate) mod keys {
    /// [`super::UserSession`]
    pub const USER: &str = "auth.user";
    /// [`crate::auth::routes::PendingSignIn`]
    pub const PENDING: &str = "auth.pending";
    /// The conversation id: survives re-sign-in (the id is cycled, the data kept).
    pub const CONVERSATION: &str = "chat.conversation";
    /// A message that could not be sent because the sign-in had expired.
    pub const DRAFT: &str = "chat.draft";
}

/// Who is signed in, and their tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserSession {
    pub oid: String,
    pub tid: String,
    pub name: Option<String>,
    pub username: Option<String>,
    /// The identity provider's session id, for front-channel logout.
    pub sid: Option<String>,
    /// The absolute end of this sign-in (seconds since the epoch), however active.
    pub ends_at: u64,
    /// When the session was last saved for activity (see [`touch`]).
    pub touched_at: u64,
    pub tokens: Tokens,
}

impl UserSession {
    pub fn view(&self) -> UserView {
        UserView {
            name: self.name.clone().or_else(|| self.username.clone()).unwrap_or_else(|| "Signed-in user".into()),
            username: self.username.clone(),
            oid: self.oid.clone(),
        }
    }
}

/// Why a request has no usable sign-in (not an HTTP rejection of a bearer token: that is
/// `entra_auth::guard`'s business).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{}", SIGN_IN_REQUIRED)]
    Required,
    #[error("the identity provider is unreachable, so your sign-in cannot be renewed; try again in a moment")]
    IdpUnavailable,
    #[error("the session store failed: {0}")]
    Store(String),
    /// Agent mode: the agent could not exchange the sign-in for its token for orders-mcp.
    #[error("{0}")]
    Agent(String),
}

impl SignInError {
    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            SignInError::Required => StatusCode::UNAUTHORIZED,
            SignInError::IdpUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            SignInError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            SignInError::Agent(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The signed-in user, unless the session has none or its sign-in has reached its absolute end.
pub async fn current_user(session: &Session) -> Option<UserSession> {
    let user: UserSession = session.get(keys::USER).await.ok().flatten()?;
    if unix_now() >= user.ends_at {
        // This sign-in is over: its tokens go; the conversation stays for the next sign-in.
        let _ = session.remove_value(keys::USER).await;
        return None;
    }
    Some(user)
}

/// Keeps an active session from idling out: saving it renews its expiry (and the cookie's).
/// At most once a minute, so ordinary requests do not write.
pub async fn touch(session: &Session, mut user: UserSession) {
    let now = unix_now();
    if now.saturating_sub(user.touched_at) >= 60 {
        user.touched_at = now;
        let _ = session.insert(keys::USER, &user).await;
    }
}

/// The user and a fresh access token for orders-mcp: the sign-in token, or in agent mode the
/// agent's own token exchanged from it (see [`crate::auth::agent_identity`]).
pub async fn access_token(state: &AppState, session: &Session) -> Result<(UserSession, AccessToken), SignInError> {
    let (user, token) = sign_in_token(state, session).await?;
    let Some(agent) = &state.agent_tokens else {
        return Ok((user, token));
    };
    match agent.for_orders_mcp(&token).await {
        Ok(token) => Ok((user, token)),
        Err(AgentTokenError::SignIn(reason)) => {
            tracing::info!(%reason, "the sign-in token is not valid for the agent; the user must sign in again");
            let _ = session.remove_value(keys::USER).await;
            Err(SignInError::Required)
        }
        Err(AgentTokenError::Exchange(e)) if e.is_transient() => {
            tracing::warn!(error = %e, "the agent's token exchange failed: identity provider unreachable");
            Err(SignInError::IdpUnavailable)
        }
        Err(e @ AgentTokenError::Exchange(_)) => {
            tracing::warn!(error = %e, "the agent's token exchange was refused");
            Err(SignInError::Agent(e.to_string()))
        }
    }
}

/// The user and a fresh sign-in access token, renewed from the refresh token when it is about
/// to expire. When renewal is refused the user must sign in again: the tokens are dropped, the
/// conversation is kept.
async fn sign_in_token(state: &AppState, session: &Session) -> Result<(UserSession, AccessToken), SignInError> {
    let mut user = current_user(session).await.ok_or(SignInError::Required)?;
    if !user.tokens.needs_refresh(unix_now()) {
        let token = user.tokens.access();
        return Ok((user, token));
    }
    match state.refresher.fresh(user.tokens.clone()).await {
        Ok(tokens) => {
            user.tokens = tokens;
            session.insert(keys::USER, &user).await.map_err(|e| SignInError::Store(e.to_string()))?;
            let token = user.tokens.access();
            Ok((user, token))
        }
        // Still valid for a little while: use it, and renew on a later request.
        Err(RefreshError::Unavailable(_)) if !user.tokens.is_expired(unix_now()) => {
            let token = user.tokens.access();
            Ok((user, token))
        }
        Err(RefreshError::Unavailable(e)) => {
            tracing::warn!(error = %e, "cannot renew a sign-in: identity provider unreachable");
            Err(SignInError::IdpUnavailable)
        }
        Err(RefreshError::SignInRequired(e)) => {
            tracing::info!(reason = %e, "sign-in renewal refused; the user must sign in again");
            let _ = session.remove_value(keys::USER).await;
            Err(SignInError::Required)
        }
    }
}
