//! The server functions the pages call. In the browser build these are HTTP calls
//! (`POST /api/...`); on the server they run in-process during SSR, for the request's session,
//! and return what the request loaded before the page rendered (see `crate::pages`).

use leptos::prelude::*;

use crate::transcript::ApprovalState;
use crate::views::{ChatView, OrdersView, UserView};

/// The signed-in user, if any.
#[server(endpoint = "session")]
pub async fn session_info() -> Result<Option<UserView>, ServerFnError> {
    if let Some(loaded) = crate::pages::loaded() {
        return Ok(loaded.user.clone());
    }
    let (_, session) = request_context().await?;
    Ok(crate::auth::session::current_user(&session).await.map(|u| u.view()))
}

/// The chat page: who, which model, and the conversation so far.
#[server(endpoint = "chat/load")]
pub async fn load_chat() -> Result<ChatView, ServerFnError> {
    if let Some(chat) = crate::pages::loaded().and_then(|loaded| loaded.chat.clone()) {
        return chat.map_err(|e| failed(e.status, e.message));
    }
    let (state, session) = request_context().await?;
    crate::chat::load(&state, &session).await.map_err(|e| failed(e.status(), e))
}

/// Sends a message: starts a turn and returns its id, whose events stream from
/// `GET /api/chat/turns/{id}/events`.
#[server(endpoint = "chat/send")]
pub async fn send_message(text: String) -> Result<String, ServerFnError> {
    let (state, session) = request_context().await?;
    crate::chat::start(&state, &session, text).await.map_err(|e| failed(e.status(), e))
}

/// Approves (or declines) a tool call waiting in this session's conversation. It names the call
/// completely (turn, call id, tool, arguments as JSON text): the server refuses an answer that
/// does not match the call waiting, comes from another session, repeats, or comes too late.
#[server(endpoint = "chat/answer")]
pub async fn answer_call(
    turn: String,
    call: String,
    tool: String,
    arguments: String,
    approve: bool,
) -> Result<ApprovalState, ServerFnError> {
    use crate::approvals::{Answer, AnswerError};
    use crate::chat::ChatError;
    let (state, session) = request_context().await?;
    let answer = match serde_json::from_str(&arguments) {
        Ok(arguments) => Answer { turn, call, tool, arguments, approve },
        Err(_) => {
            let e = ChatError::Answer(AnswerError::Mismatch);
            return Err(failed(e.status(), e));
        }
    };
    crate::chat::answer(&state, &session, answer).await.map_err(|e| failed(e.status(), e))
}

/// The signed-in user's orders, fetched through orders-mcp like the agent does.
#[server(endpoint = "orders")]
pub async fn my_orders() -> Result<OrdersView, ServerFnError> {
    if let Some(orders) = crate::pages::loaded().and_then(|loaded| loaded.orders.clone()) {
        return orders.map_err(|e| failed(e.status, e.message));
    }
    let (state, session) = request_context().await?;
    crate::orders::my_orders(&state, &session).await.map_err(|e| failed(e.status(), e))
}

/// The app state and session of the request a server function runs for.
#[cfg(feature = "ssr")]
async fn request_context() -> Result<(crate::state::AppState, tower_sessions::Session), ServerFnError> {
    let state =
        use_context::<crate::state::AppState>().ok_or_else(|| ServerFnError::new("chat-app state is unavailable"))?;
    let session = leptos_axum::extract::<tower_sessions::Session>()
        .await
        .map_err(|_| ServerFnError::new("the session is unavailable"))?;
    Ok((state, session))
}

/// A server function error with its HTTP status (401 when the user must sign in again, ...).
/// The status also matters to the session layer, which does not save a session on a 5xx.
#[cfg(feature = "ssr")]
fn failed(status: axum::http::StatusCode, error: impl std::fmt::Display) -> ServerFnError {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
    ServerFnError::new(error)
}
