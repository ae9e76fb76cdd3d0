//! `/trace/{turn}`: the presenter view of one of the signed-in user's turns, its diagram as
//! SVG and as Mermaid, and the confused-deputy replay (`POST`, behind the same cross-site check
//! as every form of the app).
//!
//! A turn is looked up only in the signed-in session's own conversation (whichever store keeps
//! it, SQLite or Redis): another user's turn id answers exactly as an id that never existed
//! (404), so ids cannot be probed.

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use entra_auth::hop::How;
use serde::Deserialize;
use tower_sessions::Session;

use super::page::{PresenterPage, ReplayView, render};
use super::replay::{ReplayError, reason, replay};
use super::sequence::{Diagram, TurnRecord, build};
use super::{mermaid, svg};
use crate::auth::session::{SignInError, UserSession, access_token, current_user, keys};
use crate::error_page::error_page;
use crate::state::AppState;
use crate::transcript::{MAX_ENTRIES, ToolCall};
use crate::views::sign_in_url;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/trace/{turn}", get(presenter_page))
        .route("/trace/{turn}/diagram.svg", get(diagram_svg))
        .route("/trace/{turn}/diagram.mmd", get(diagram_mermaid))
        .route("/trace/{turn}/replay", post(replay_call))
}

/// The turn, if the signed-in user has it; else the response to send instead.
async fn load(state: &AppState, session: &Session, turn: &str) -> Result<(UserSession, TurnRecord), Response> {
    let Some(user) = current_user(session).await else {
        let back = if is_turn_id(turn) { format!("/trace/{turn}") } else { "/chat".to_string() };
        return Err(Redirect::to(&sign_in_url(&back)).into_response());
    };
    match own_turn(state, session, &user, turn).await {
        Ok(Some(record)) => Ok((user, record)),
        Ok(None) => Err(not_found()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a turn");
            Err(error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "chat-app could not read the conversation.",
            ))
        }
    }
}

/// `turn` of the session's conversation, if that conversation is `user`'s and has it.
async fn own_turn(
    state: &AppState,
    session: &Session,
    user: &UserSession,
    turn: &str,
) -> anyhow::Result<Option<TurnRecord>> {
    let Some(conversation) = session.get::<String>(keys::CONVERSATION).await? else { return Ok(None) };
    if state.store.owner(&conversation).await?.as_deref() != Some(user.oid.as_str()) {
        return Ok(None);
    }
    let transcript = state.store.transcript(&conversation, MAX_ENTRIES).await?;
    Ok(transcript.turn(turn).map(TurnRecord::from_entries))
}

fn is_turn_id(turn: &str) -> bool {
    turn.len() == 36 && turn.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn not_found() -> Response {
    error_page(StatusCode::NOT_FOUND, "No such turn", "None of your conversations has a turn with this id.")
}

fn diagram_of(state: &AppState, turn: &str, record: &TurnRecord) -> Diagram {
    let short: String = turn.chars().take(8).collect();
    build(&format!("Orders Copilot · turn {short}"), record, &state.settings.names, How::Obo)
}

/// Calls whose tool went out with the user's token and came back with hops: what a replay
/// can repeat.
fn traced_calls(record: &TurnRecord) -> Vec<&ToolCall> {
    record.calls.iter().filter(|c| c.outcome.as_ref().is_some_and(|o| !o.hops.is_empty())).collect()
}

async fn presenter_page(State(state): State<AppState>, session: Session, Path(turn): Path<String>) -> Response {
    match load(&state, &session, &turn).await {
        Ok((_, record)) => page(&state, &turn, &record, None),
        Err(response) => response,
    }
}

fn page(state: &AppState, turn: &str, record: &TurnRecord, replay: Option<ReplayView>) -> Response {
    let diagram = diagram_of(state, turn, record);
    let svg = svg::render(&diagram);
    let replayable = if state.passthrough_demo.is_some() { traced_calls(record) } else { Vec::new() };
    let html =
        render(PresenterPage { turn, question: record.question.clone(), diagram: (&diagram, svg), replayable, replay });
    no_store((StatusCode::OK, Html(html)).into_response())
}

async fn diagram_svg(State(state): State<AppState>, session: Session, Path(turn): Path<String>) -> Response {
    match load(&state, &session, &turn).await {
        Ok((_, record)) => {
            let body = svg::render(&diagram_of(&state, &turn, &record));
            download(body, "image/svg+xml; charset=utf-8", &turn, "svg")
        }
        Err(response) => response,
    }
}

async fn diagram_mermaid(State(state): State<AppState>, session: Session, Path(turn): Path<String>) -> Response {
    match load(&state, &session, &turn).await {
        Ok((_, record)) => {
            let body = mermaid::render(&diagram_of(&state, &turn, &record));
            download(body, "text/vnd.mermaid; charset=utf-8", &turn, "mmd")
        }
        Err(response) => response,
    }
}

fn download(body: String, content_type: &'static str, turn: &str, extension: &str) -> Response {
    let short: String = turn.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"turn-{short}.{extension}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    no_store(response)
}

fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Deserialize)]
struct ReplayForm {
    call: String,
}

/// `POST /trace/{turn}/replay`: the call again, the user's token forwarded by the passthrough
/// orders-mcp; the page then shows both paths.
async fn replay_call(
    State(state): State<AppState>,
    session: Session,
    Path(turn): Path<String>,
    Form(form): Form<ReplayForm>,
) -> Response {
    let Some(demo) = state.passthrough_demo.clone() else {
        // Not configured: there is nothing here to post to.
        return not_found();
    };
    let (_, record) = match load(&state, &session, &turn).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(call) = traced_calls(&record).into_iter().find(|c| c.id == form.call).cloned() else {
        return not_found();
    };
    let token = match access_token(&state, &session).await {
        Ok((_, token)) => token,
        Err(SignInError::Required) => return Redirect::to(&sign_in_url(&format!("/trace/{turn}"))).into_response(),
        Err(e) => return error_page(e.status(), "Sign-in problem", &e.to_string()),
    };
    let replayed = match replay(&demo, &token, &call).await {
        Ok(replayed) => replayed,
        Err(e @ (ReplayError::NotReadOnly(_) | ReplayError::UnknownTool(_))) => {
            return error_page(StatusCode::BAD_REQUEST, "Not replayed", &e.to_string());
        }
        Err(ReplayError::Mcp(e)) => {
            return error_page(StatusCode::BAD_GATEWAY, "The passthrough orders-mcp did not answer", &e.to_string());
        }
    };
    tracing::info!(tool = %call.name, "confused-deputy replay");
    let single = |c: ToolCall| TurnRecord { question: record.question.clone(), calls: vec![c], answer: None };
    let names = &state.settings.names;
    let view = ReplayView {
        tool: call.name.clone(),
        reason: reason(&replayed, names),
        original: build("On-Behalf-Of", &single(call), names, How::Obo),
        replayed: build("Forwarded", &single(replayed.clone()), names, How::Forwarded),
        replayed_svg: String::new(),
    };
    let replayed_svg = svg::render(&build(
        "Replay: the user's token forwarded by orders-mcp",
        &single(replayed),
        names,
        How::Forwarded,
    ));
    page(&state, &turn, &record, Some(ReplayView { replayed_svg, ..view }))
}
