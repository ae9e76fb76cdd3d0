//! The chat page: the conversation, the composer, and the identity trace of a tool call.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::approval::{ApprovalCard, ApprovalTrace, decision};
use super::notice::{ServerError, error_message};
use super::trace::{HopChain, TraceId};
use crate::server_fns::{load_chat, send_message};
use crate::transcript::{ApprovalState, Entry, ToolCall, Transcript, TurnEvent};
use crate::views::{ChatView, ModelLabel, SIGN_IN_REQUIRED};

/// Requests the offline planner understands; handy on stage, and the same for any model.
const SUGGESTIONS: [&str; 6] =
    ["Show my orders", "Show pending orders", "Show ORD-001", "Order 2 keyboards", "Cancel ORD-003", "Who am I?"];

#[component]
pub fn ChatPage() -> impl IntoView {
    let chat = Resource::new(|| (), |_| load_chat());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your conversation…"</p> }>
            {move || Suspend::new(async move {
                match chat.await {
                    Ok(view) => view! { <Chat view /> }.into_any(),
                    Err(error) => view! { <ServerError error return_to="/chat" /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Chat(view: ChatView) -> impl IntoView {
    let ChatView { user, model, transcript, draft, names, trace_url } = view;
    let transcript = RwSignal::new(transcript);
    let busy = RwSignal::new(false);
    let selected = RwSignal::new(None::<String>);
    let input = RwSignal::new(draft.unwrap_or_default());
    let names = StoredValue::new(names);
    let trace_url = StoredValue::new(trace_url);
    let log = NodeRef::<leptos::html::Div>::new();

    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        transcript.track();
        crate::live::scroll_to_end(log);
    });

    let send = move |text: String| {
        let text = text.trim().to_string();
        if text.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        input.set(String::new());
        selected.set(None);
        transcript.update(|t| t.entries.push(Entry::User { text: text.clone() }));
        spawn_local(async move {
            match send_message(text).await {
                Ok(turn) => follow(turn, transcript, busy),
                Err(e) => {
                    let message = error_message(&e);
                    let sign_in = message == SIGN_IN_REQUIRED;
                    transcript.update(|t| t.apply(&TurnEvent::Error { message, sign_in }));
                    busy.set(false);
                    if sign_in {
                        go_to_sign_in();
                    }
                }
            }
        });
    };

    let first_name = user.name.split(' ').next().unwrap_or_default().to_string();
    view! {
        <div class="chat-layout">
            <section class="conversation" aria-labelledby="conversation-title">
                <div class="conversation-head">
                    <h1 id="conversation-title">"Chat"</h1>
                    <ModelBadge model />
                </div>
                <div class="log" role="log" aria-live="polite" aria-busy=move || busy.get().to_string() node_ref=log>
                    {move || {
                        transcript
                            .with(|t| {
                                if t.entries.is_empty() {
                                    view! {
                                        <p class="empty">
                                            {format!("Hello {first_name}. Ask about your orders, or pick a suggestion below.")}
                                        </p>
                                    }
                                        .into_any()
                                } else {
                                    t.entries
                                        .iter()
                                        .map(|entry| render_entry(entry, selected))
                                        .collect_view()
                                        .into_any()
                                }
                            })
                    }}
                    {move || busy.get().then(|| view! { <p class="thinking">"Working on it…"</p> })}
                </div>
                <form
                    class="composer"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        send(input.get_untracked());
                    }
                >
                    <label for="message" class="sr-only">
                        "Message"
                    </label>
                    <input
                        id="message"
                        name="message"
                        type="text"
                        autocomplete="off"
                        placeholder="Ask about your orders…"
                        maxlength="2000"
                        prop:value=move || input.get()
                        on:input=move |ev| input.set(event_target_value(&ev))
                    />
                    <button type="submit" class="button primary" id="send" disabled=move || busy.get()>
                        "Send"
                    </button>
                </form>
                <div class="suggestions" aria-label="Suggestions">
                    {SUGGESTIONS
                        .into_iter()
                        .map(|s| {
                            view! {
                                <button
                                    type="button"
                                    class="chip"
                                    disabled=move || busy.get()
                                    on:click=move |_| send(s.to_string())
                                >
                                    {s}
                                </button>
                            }
                        })
                        .collect_view()}
                </div>
            </section>
            <aside class="trace" aria-labelledby="trace-title" id="trace">
                {move || {
                    transcript
                        .with(|t| traced_call(t, selected.get().as_deref()))
                        .map(|call| {
                            let traced = call.outcome.as_ref().is_some_and(|o| !o.hops.is_empty());
                            let presenter = call.turn().filter(|_| traced).map(|turn| view! { <PresenterLink turn=turn.to_string() /> });
                            let hops = call.outcome.map(|o| o.hops).unwrap_or_default();
                            let trace = call.trace_id.map(|id| view! { <TraceId id url=trace_url.get_value() /> });
                            let approval = call.approval.map(|approval| view! { <ApprovalTrace approval=*approval /> });
                            view! {
                                <h2 id="trace-title">
                                    "Identity trace"
                                    <span class="trace-call">
                                        <span class="tool-name">{call.name.clone()}</span>
                                        <code>{compact_json(&call.arguments)}</code>
                                    </span>
                                </h2>
                                {approval}
                                <HopChain hops names=names.get_value() />
                                {trace}
                                {presenter}
                            }
                                .into_any()
                        })
                        .unwrap_or_else(|| {
                            view! {
                                <h2 id="trace-title">"Identity trace"</h2>
                                <p class="muted">
                                    "When the agent calls a tool, this panel shows the token each service validated: chat-app → orders-mcp → orders-api."
                                </p>
                            }
                                .into_any()
                        })
                }}
            </aside>
        </div>
    }
}

/// The turn's presenter view (a server-rendered page, so the router must not take the click).
#[component]
fn PresenterLink(turn: String) -> impl IntoView {
    view! {
        <p class="presenter-link">
            <a href=format!("/trace/{turn}") target="_blank" rel="external noopener" data-testid="presenter-link">
                "Presenter view: the turn as a sequence diagram"
            </a>
        </p>
    }
}

#[component]
fn ModelBadge(model: ModelLabel) -> impl IntoView {
    let class = if model.offline { "model offline" } else { "model" };
    view! {
        <span class=class data-testid="model-label" title="Which model answers">
            {model.name}
        </span>
    }
}

fn traced_call(t: &Transcript, selected: Option<&str>) -> Option<ToolCall> {
    selected.and_then(|id| t.find_call(id)).or_else(|| t.latest_traced_call()).cloned()
}

fn render_entry(entry: &Entry, selected: RwSignal<Option<String>>) -> AnyView {
    match entry {
        Entry::User { text } => view! {
            <div class="msg user">
                <span class="speaker">"You"</span>
                <p>{text.clone()}</p>
            </div>
        }
        .into_any(),
        Entry::Assistant { text } => view! {
            <div class="msg assistant">
                <span class="speaker">"Copilot"</span>
                <p>{text.clone()}</p>
            </div>
        }
        .into_any(),
        Entry::Error { message } => view! {
            <div class="msg failure" role="alert">
                <span class="speaker">"Problem"</span>
                <p>{message.clone()}</p>
            </div>
        }
        .into_any(),
        Entry::StepUp { message, contexts } => view! {
            <div class="msg failure" role="alert">
                <span class="speaker">"Confirmation needed"</span>
                <p>{message.clone()}</p>
                <a class="button" href=crate::views::step_up_url(contexts) rel="external" data-testid="step-up">
                    "Confirm with sign-in"
                </a>
            </div>
        }
        .into_any(),
        Entry::Tool(call) => render_tool(call, selected),
    }
}

fn render_tool(call: &ToolCall, selected: RwSignal<Option<String>>) -> AnyView {
    let id = call.id.clone();
    let waiting = call.approval.as_ref().is_some_and(|a| a.state == ApprovalState::Pending);
    let state = match &call.outcome {
        None if waiting => "tool waiting",
        None => "tool running",
        Some(o) if o.is_error => "tool failed",
        Some(_) => "tool done",
    };
    let pending = if waiting { "waiting for your answer…" } else { "calling…" };
    let summary = call.outcome.as_ref().map_or_else(|| pending.to_string(), |o| o.summary.clone());
    let traced = call.outcome.as_ref().is_some_and(|o| !o.hops.is_empty());
    let approval = call.approval.clone().map(|approval| match approval.state {
        ApprovalState::Pending => view! { <ApprovalCard call=call.clone() approval=*approval /> }.into_any(),
        ref state => view! { <p class="approval-decision">{decision(state)}</p> }.into_any(),
    });
    let is_selected = {
        let id = id.clone();
        move || selected.get().as_deref() == Some(id.as_str())
    };
    view! {
        <div class=state class:selected=is_selected data-tool=call.name.clone()>
            <div class="tool-line">
                <span class="tool-icon" aria-hidden="true">
                    "⚙"
                </span>
                <span class="tool-name">{call.name.clone()}</span>
                <code>{compact_json(&call.arguments)}</code>
            </div>
            {approval}
            <p class="tool-summary">{summary}</p>
            {traced
                .then(|| {
                    view! {
                        <button
                            type="button"
                            class="link-button"
                            on:click=move |_| selected.set(Some(id.clone()))
                        >
                            "Show identity trace"
                        </button>
                    }
                })}
        </div>
    }
    .into_any()
}

fn compact_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) if map.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

/// Streams the turn's events into the transcript (in the browser).
fn follow(turn: String, transcript: RwSignal<Transcript>, busy: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    crate::live::follow(&turn, move |event| {
        let done = matches!(event, TurnEvent::Done | TurnEvent::Error { .. });
        let sign_in = matches!(event, TurnEvent::Error { sign_in: true, .. });
        transcript.update(|t| t.apply(&event));
        if done {
            busy.set(false);
        }
        if sign_in {
            go_to_sign_in();
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (turn, transcript, busy);
}

fn go_to_sign_in() {
    #[cfg(feature = "hydrate")]
    crate::live::navigate(&crate::views::sign_in_url("/chat"));
}
