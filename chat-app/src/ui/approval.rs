//! The approval card (a call that changes something, waiting for the user's yes) and the line
//! the trace panel shows for it: who approved what, and when.

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::notice::error_message;
use crate::server_fns::answer_call;
use crate::transcript::{Approval, ApprovalState, ToolCall};

/// Approve / Deny for one waiting call. The answer names the call completely; the server
/// decides whether it is the call that waits.
#[component]
pub fn ApprovalCard(call: ToolCall, approval: Approval) -> impl IntoView {
    let sending = RwSignal::new(false);
    let refused = RwSignal::new(None::<String>);
    let answer = {
        let call = call.clone();
        let turn = approval.turn.clone();
        move |approve: bool| {
            if sending.get_untracked() {
                return;
            }
            sending.set(true);
            let (turn, id, tool, arguments) =
                (turn.clone(), call.id.clone(), call.name.clone(), call.arguments.to_string());
            spawn_local(async move {
                // Success shows through the turn's `approval_decided` event.
                if let Err(e) = answer_call(turn, id, tool, arguments, approve).await {
                    refused.set(Some(error_message(&e)));
                    sending.set(false);
                }
            });
        }
    };
    let deny = answer.clone();
    let (title_id, labelled_by) = (format!("approval-{}", call.id), format!("approval-{}", call.id));
    view! {
        <div class="approval" role="group" aria-labelledby=labelled_by data-approval=call.id.clone()>
            <p class="approval-title" id=title_id>
                "Approve this action?"
            </p>
            <p class="approval-summary">{approval.summary}</p>
            <p class="approval-who">{format!("It runs as you, {}, with your access.", approval.acting_as)}</p>
            <div class="approval-buttons">
                <button
                    type="button"
                    class="button primary"
                    data-answer="approve"
                    disabled=move || sending.get()
                    on:click=move |_| answer(true)
                >
                    "Approve"
                </button>
                <button
                    type="button"
                    class="button"
                    data-answer="deny"
                    disabled=move || sending.get()
                    on:click=move |_| deny(false)
                >
                    "Deny"
                </button>
            </div>
            {move || refused.get().map(|message| view! { <p class="approval-refused" role="alert">{message}</p> })}
        </div>
    }
}

/// "Approved by Carol Admin at 14:03:12 UTC" and the like.
pub fn decision(state: &ApprovalState) -> String {
    match state {
        ApprovalState::Pending => "Waiting for your approval".to_string(),
        ApprovalState::Approved { by, at } => format!("Approved by {by} at {}", clock(*at)),
        ApprovalState::Declined { by, at } => format!("Declined by {by} at {}", clock(*at)),
        ApprovalState::Expired { at } => format!("Not approved in time (expired at {})", clock(*at)),
    }
}

/// The time of day of a Unix time, in UTC: the same on the server and in the browser.
fn clock(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", day / 3600, day % 3600 / 60, day % 60)
}

/// The trace panel's entry for a call that needed a person's yes.
#[component]
pub fn ApprovalTrace(approval: Approval) -> impl IntoView {
    let state = match &approval.state {
        ApprovalState::Pending => "pending",
        ApprovalState::Approved { .. } => "approved",
        ApprovalState::Declined { .. } => "declined",
        ApprovalState::Expired { .. } => "expired",
    };
    view! {
        <div class=format!("approval-trace {state}") data-approval-state=state>
            <h3>"Human approval"</h3>
            <p class="approval-summary">{approval.summary}</p>
            <p class="approval-decision">{decision(&approval.state)}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_say_who_and_when() {
        let at = 1_767_225_600 + 14 * 3600 + 3 * 60 + 12;
        assert_eq!(
            decision(&ApprovalState::Approved { by: "Carol Admin".into(), at }),
            "Approved by Carol Admin at 14:03:12 UTC"
        );
    }
}
