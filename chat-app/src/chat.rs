//! The chat, server side: loading the conversation, starting a turn (the agent runs in the
//! background and persists what it did), and streaming the turn's events as Server-Sent Events.

use std::convert::Infallible;
use std::sync::Mutex;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream;
use tokio::sync::mpsc;
use tower_sessions::{Session, SessionStore};
use tracing::Instrument;

use crate::agent::Turn;
use crate::agent::model::Message;
use crate::approvals::{Answer, AnswerError, Answerer};
use crate::auth::session::{SignInError, UserSession, access_token, current_user, keys, touch};
use crate::state::AppState;
use crate::transcript::{ApprovalState, Entry, PAGE_ENTRIES, Transcript, TurnEvent};
use crate::views::{ChatView, SIGN_IN_REQUIRED};

/// The longest message accepted.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Earlier messages the model sees.
const HISTORY_MESSAGES: usize = 20;
/// The entries read to find them: a turn is a question, its tool calls and the answer, so this
/// holds the last [`HISTORY_MESSAGES`] unless turns average more than two tool calls.
const HISTORY_ENTRIES: usize = HISTORY_MESSAGES * 2;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    SignIn(#[from] SignInError),
    #[error("Please type a message of at most {MAX_MESSAGE_CHARS} characters.")]
    BadMessage,
    #[error("A reply is still being written; please wait for it to finish.")]
    Busy,
    #[error("chat-app could not read or save the conversation.")]
    Store(String),
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl ChatError {
    pub fn status(&self) -> StatusCode {
        match self {
            ChatError::SignIn(e) => e.status(),
            ChatError::BadMessage => StatusCode::BAD_REQUEST,
            ChatError::Busy => StatusCode::CONFLICT,
            ChatError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ChatError::Answer(AnswerError::NotFound) => StatusCode::NOT_FOUND,
            ChatError::Answer(AnswerError::Mismatch | AnswerError::AlreadyAnswered) => StatusCode::CONFLICT,
            ChatError::Answer(AnswerError::Expired) => StatusCode::GONE,
        }
    }
}

/// The last event of a turn ended because its user signed out.
pub const SIGNED_OUT: &str = "You signed out, so this reply stopped. Sign in to continue.";

/// The last event of a turn cut short by chat-app stopping.
pub const RESTARTING: &str =
    "chat-app is restarting, so this reply stopped; your conversation is kept. Send your message again in a moment.";

fn store_error(e: impl std::fmt::Display) -> ChatError {
    tracing::error!(error = %e, "conversation store failure");
    ChatError::Store(e.to_string())
}

/// The session's conversation, created if it has none (or one of another user).
async fn conversation(state: &AppState, session: &Session, user: &UserSession) -> Result<String, ChatError> {
    let existing: Option<String> = session.get(keys::CONVERSATION).await.map_err(store_error)?;
    if let Some(id) = existing
        && state.store.owner(&id).await.map_err(store_error)?.as_deref() == Some(user.oid.as_str())
    {
        return Ok(id);
    }
    let id = state.store.create_conversation(&user.oid).await.map_err(store_error)?;
    session.insert(keys::CONVERSATION, &id).await.map_err(store_error)?;
    Ok(id)
}

#[tracing::instrument(name = "chat.load", skip_all)]
pub async fn load(state: &AppState, session: &Session) -> Result<ChatView, ChatError> {
    let user = current_user(session).await.ok_or(SignInError::Required)?;
    let conversation = conversation(state, session, &user).await?;
    let transcript = state.store.transcript(&conversation, PAGE_ENTRIES).await.map_err(store_error)?;
    // Offered once. Removing marks the session changed, which saves it: only when there is one.
    let draft: Option<String> = session.get(keys::DRAFT).await.map_err(store_error)?;
    if draft.is_some() {
        session.remove_value(keys::DRAFT).await.map_err(store_error)?;
    }
    Ok(ChatView {
        user: user.view(),
        model: state.agent.model().label(),
        transcript,
        draft,
        names: state.settings.names.clone(),
        trace_url: state.settings.trace_url.clone(),
    })
}

/// Starts a turn for `text`; its events stream from [`events`].
#[tracing::instrument(name = "chat.start", skip_all)]
pub async fn start(state: &AppState, session: &Session, text: String) -> Result<String, ChatError> {
    let text = text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ChatError::BadMessage);
    }
    let (user, token) = match access_token(state, session).await {
        Ok(found) => found,
        Err(SignInError::Required) => {
            // Offered again in the composer after signing in.
            let _ = session.insert(keys::DRAFT, &text).await;
            return Err(SignInError::Required.into());
        }
        Err(e) => return Err(e.into()),
    };
    let conversation = conversation(state, session, &user).await?;
    let user_name = user.view().name;
    let oid = user.oid.clone();
    touch(session, user).await;
    let Some(running) = state.turns.begin(&conversation).await.map_err(store_error)? else {
        return Err(ChatError::Busy);
    };
    // Sign-out deletes the session before it ends turns (by session and by conversation): if it
    // came while this request fetched the token, the session is gone now; if later, it finds
    // this turn registered.
    let Some(id) = session.id() else { return Err(SignInError::Required.into()) };
    let ending = state.turns.ending(&conversation, &id.to_string());
    if state.sessions.load(&id).await.map_err(store_error)?.is_none() {
        return Err(SignInError::Required.into());
    }
    // Only the messages the model sees go into the turn: the whole transcript (up to
    // `MAX_ENTRIES`, tool results and traces included: hundreds of KiB for a long
    // conversation) held by every running turn, approvals waited for included, was what made
    // chat-app's memory grow with its users' conversations (found by `cargo xtask soak`).
    let history = history(&state.store.transcript(&conversation, HISTORY_ENTRIES).await.map_err(store_error)?);
    state.store.append(&conversation, &[Entry::User { text: text.clone() }]).await.map_err(store_error)?;

    let turn = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    state.turns.register(turn.clone(), conversation.clone(), rx);
    let (agent, store, turn_id) = (state.agent.clone(), state.store.clone(), turn.clone());
    // The turn outlives this request; its spans stay under the request's.
    let task = async move {
        let done = Mutex::new(Transcript::default());
        let emit = |event: TurnEvent| {
            done.lock().unwrap_or_else(|p| p.into_inner()).apply(&event);
            // The browser may have gone: the turn still completes and is saved.
            let _ = tx.send(event);
        };
        let turn = Turn { id: &turn_id, conversation: &conversation, oid: &oid, user_name: &user_name };
        // Signing out drops the agent mid-step (a call waiting for approval is withdrawn) and
        // saves nothing: the conversation went with the session.
        let signed_out = tokio::select! {
            () = agent.run(&turn, history, text, &token, &emit) => false,
            () = ending.signed_out() => true,
        };
        drop(ending);
        if signed_out {
            tracing::info!("a turn ended at its user's sign-out");
            let _ = tx.send(TurnEvent::Error { message: SIGNED_OUT.into(), sign_in: true });
        } else {
            let entries = done.into_inner().unwrap_or_else(|p| p.into_inner()).entries;
            if let Err(e) = store.append(&conversation, &entries).await {
                tracing::error!(error = %e, "cannot save a turn");
            }
        }
        running.end().await;
        let _ = tx.send(TurnEvent::Done);
    };
    tokio::spawn(task.in_current_span());
    Ok(turn)
}

/// The signed-in user's answer to a call waiting for approval in this session's conversation.
#[tracing::instrument(name = "chat.answer", skip_all)]
pub async fn answer(state: &AppState, session: &Session, answer: Answer) -> Result<ApprovalState, ChatError> {
    let user = current_user(session).await.ok_or(SignInError::Required)?;
    let conversation: Option<String> = session.get(keys::CONVERSATION).await.map_err(store_error)?;
    let by = Answerer {
        conversation: conversation.ok_or(AnswerError::NotFound)?,
        oid: user.oid.clone(),
        name: user.view().name,
    };
    let result = state.approvals.answer(&by, &answer);
    if let Err(e) = &result {
        tracing::warn!(call = %answer.call, error = %e, "an approval answer was refused");
    }
    Ok(result?)
}

/// The earlier user and assistant messages, most recent last.
fn history(t: &Transcript) -> Vec<Message> {
    let messages: Vec<Message> = t
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::User { text } => Some(Message::User(text.clone())),
            Entry::Assistant { text } => Some(Message::Assistant { text: text.clone(), tool_calls: Vec::new() }),
            Entry::Tool(_) | Entry::StepUp { .. } | Entry::Error { .. } => None,
        })
        .collect();
    let skip = messages.len().saturating_sub(HISTORY_MESSAGES);
    messages.into_iter().skip(skip).collect()
}

/// `GET /api/chat/turns/{turn}/events`: the turn's events, as Server-Sent Events named by
/// [`TurnEvent::name`], ending after `done`.
#[tracing::instrument(name = "chat.events", skip_all, fields(turn = %turn))]
pub async fn events(State(state): State<AppState>, session: Session, Path(turn): Path<String>) -> Response {
    let Some(user) = current_user(&session).await else {
        return (StatusCode::UNAUTHORIZED, SIGN_IN_REQUIRED).into_response();
    };
    let Ok(Some(conversation)) = session.get::<String>(keys::CONVERSATION).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if state.store.owner(&conversation).await.ok().flatten().as_deref() != Some(user.oid.as_str()) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let Some(rx) = state.turns.take(&turn, &conversation) else {
        return (StatusCode::NOT_FOUND, "no such turn, or its events were already streamed").into_response();
    };
    // Until the turn is done, or chat-app begins to stop: then one last event says so (found by
    // `cargo xtask soak`: a turn waiting for an approval kept its stream, and so the graceful
    // drain, open until the process was killed).
    let events = stream::unfold((rx, Some(state.stopping.clone())), |(mut rx, stopping)| async move {
        let stopping = stopping?;
        let (event, stopping) = tokio::select! {
            event = rx.recv() => (event?, Some(stopping)),
            () = stopping.cancelled() => (TurnEvent::Error { message: RESTARTING.into(), sign_in: false }, None),
        };
        let sse = Event::default().event(event.name()).json_data(&event).unwrap_or_else(|_| Event::default());
        Some((Ok::<_, Infallible>(sse), (rx, stopping)))
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
