//! A conversation as both halves see it: the events of a turn as they stream to the browser,
//! and the entries they fold into. The server folds the same events to persist a turn, so a
//! reload shows exactly what was streamed.

use entra_auth::hop::Hop;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most entries of a conversation kept (older ones are dropped as new ones arrive).
pub const MAX_ENTRIES: usize = 400;
/// The most entries the chat page shows: the latest. A page load reads, renders and serialises
/// what it shows, so this bounds its cost (the soak's chat-app memory grew with the length of
/// conversations while pages carried up to [`MAX_ENTRIES`]); the presenter view still finds any
/// kept turn.
pub const PAGE_ENTRIES: usize = 100;

/// One event of a chat turn, sent as a Server-Sent Event named [`TurnEvent::name`] whose data
/// is this value as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    /// More of the assistant's reply.
    Text { delta: String },
    /// The agent is calling a tool. `trace_id` names the turn's distributed trace when traces
    /// are exported (W3C form, 32 hex digits).
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace_id: Option<String>,
    },
    /// The tool answered (or failed); `hops` is the identity trace of that call.
    ToolResult { id: String, summary: String, is_error: bool, hops: Vec<Hop> },
    /// The call changes something: it waits for the signed-in user's yes (or no).
    ApprovalRequired { id: String, approval: Approval },
    /// The user answered, or the time to answer ran out.
    ApprovalDecided { id: String, state: ApprovalState },
    /// orders-api wants the user to step up before this change (a claims challenge orders-mcp
    /// passed back): the turn ends here; `contexts` are the authentication contexts to confirm
    /// at sign-in (`/auth/step-up`). The model never sees them.
    StepUp { message: String, contexts: Vec<String> },
    /// The turn failed; `sign_in` asks the browser to sign in again (the chat is kept).
    Error {
        message: String,
        #[serde(default)]
        sign_in: bool,
    },
    /// The turn is over; nothing follows.
    Done,
}

impl TurnEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            TurnEvent::Text { .. } => "text",
            TurnEvent::ToolCall { .. } => "tool_call",
            TurnEvent::ToolResult { .. } => "tool_result",
            TurnEvent::ApprovalRequired { .. } => "approval_required",
            TurnEvent::ApprovalDecided { .. } => "approval_decided",
            TurnEvent::StepUp { .. } => "step_up",
            TurnEvent::Error { .. } => "error",
            TurnEvent::Done => "done",
        }
    }

    /// Every event name, for a client subscribing to each.
    pub const NAMES: [&'static str; 8] =
        ["text", "tool_call", "tool_result", "approval_required", "approval_decided", "step_up", "error", "done"];
}

/// One item of a conversation, as shown and as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    User {
        text: String,
    },
    Assistant {
        text: String,
    },
    Tool(ToolCall),
    /// The turn stopped for the user's step-up: a message and a "Confirm with sign-in" link.
    StepUp {
        message: String,
        contexts: Vec<String>,
    },
    Error {
        message: String,
    },
}

/// A tool call and, once it answered, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: Value,
    pub outcome: Option<ToolOutcome>,
    /// The distributed trace the call ran in, when traces are exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// For a call that changes something: the person's yes or no, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<Approval>>,
}

impl ToolCall {
    /// The turn the call was made in: its id is `<turn>-<n>` (see `agent`).
    pub fn turn(&self) -> Option<&str> {
        self.id.rsplit_once('-').map(|(turn, _)| turn).filter(|t| !t.is_empty())
    }
}

/// A state-changing call put to the signed-in user before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The call in words, e.g. "Cancel ORD-004: 3 × USB-C hub, pending, ordered by Alice Johnson".
    pub summary: String,
    /// Who the call runs as: the signed-in user, with their own token.
    pub acting_as: String,
    /// The turn the call belongs to; with the call's id, tool and arguments it names the one
    /// call an answer is for.
    pub turn: String,
    /// The last moment (seconds since the Unix epoch) an answer is accepted.
    pub expires_at: u64,
    pub state: ApprovalState,
}

/// Where an approval stands. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ApprovalState {
    Pending,
    Approved {
        by: String,
        at: u64,
    },
    Declined {
        by: String,
        at: u64,
    },
    /// Nobody answered in time: the call did not run.
    Expired {
        at: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutcome {
    pub summary: String,
    pub is_error: bool,
    /// chat-app's hop first, then orders-mcp's, then orders-api's.
    pub hops: Vec<Hop>,
}

/// The entries of a conversation (or of one turn), built by applying events in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub entries: Vec<Entry>,
}

impl Transcript {
    pub fn apply(&mut self, event: &TurnEvent) {
        match event {
            TurnEvent::Text { delta } => match self.entries.last_mut() {
                Some(Entry::Assistant { text }) => text.push_str(delta),
                _ => self.entries.push(Entry::Assistant { text: delta.clone() }),
            },
            TurnEvent::ToolCall { id, name, arguments, trace_id } => self.entries.push(Entry::Tool(ToolCall {
                id: id.clone(),
                name: name.clone(),
                arguments: arguments.clone(),
                outcome: None,
                trace_id: trace_id.clone(),
                approval: None,
            })),
            TurnEvent::ToolResult { id, summary, is_error, hops } => {
                let outcome = ToolOutcome { summary: summary.clone(), is_error: *is_error, hops: hops.clone() };
                match self.call_mut(id) {
                    Some(call) => call.outcome = Some(outcome),
                    // A result without its call cannot happen from our server; keep it visible anyway.
                    None => self.entries.push(Entry::Tool(ToolCall {
                        id: id.clone(),
                        name: String::new(),
                        arguments: Value::Null,
                        outcome: Some(outcome),
                        approval: None,
                        trace_id: None,
                    })),
                }
            }
            TurnEvent::ApprovalRequired { id, approval } => {
                if let Some(call) = self.call_mut(id) {
                    call.approval = Some(Box::new(approval.clone()));
                }
            }
            TurnEvent::ApprovalDecided { id, state } => {
                if let Some(approval) = self.call_mut(id).and_then(|c| c.approval.as_mut()) {
                    approval.state = state.clone();
                }
            }
            TurnEvent::StepUp { message, contexts } => {
                self.entries.push(Entry::StepUp { message: message.clone(), contexts: contexts.clone() })
            }
            TurnEvent::Error { message, .. } => self.entries.push(Entry::Error { message: message.clone() }),
            TurnEvent::Done => {}
        }
    }

    /// The most recent tool call that has hops or an approval to show.
    pub fn latest_traced_call(&self) -> Option<&ToolCall> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::Tool(call)
                if call.approval.is_some() || call.outcome.as_ref().is_some_and(|o| !o.hops.is_empty()) =>
            {
                Some(call)
            }
            _ => None,
        })
    }

    fn call_mut(&mut self, id: &str) -> Option<&mut ToolCall> {
        self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Tool(call) if call.id == id => Some(call),
            _ => None,
        })
    }

    /// The entries of `turn`: from the question before its first tool call to the last entry
    /// before the next question. `None` if no call of the conversation belongs to it.
    pub fn turn(&self, turn: &str) -> Option<&[Entry]> {
        let of_turn = |e: &Entry| matches!(e, Entry::Tool(call) if call.turn() == Some(turn));
        let first = self.entries.iter().position(of_turn)?;
        let last = self.entries.iter().rposition(of_turn)?;
        let is_question = |e: &Entry| matches!(e, Entry::User { .. });
        let start = self.entries[..first].iter().rposition(is_question).unwrap_or(first);
        let end = self.entries[last..].iter().position(is_question).map_or(self.entries.len(), |i| last + i);
        Some(&self.entries[start..end])
    }

    pub fn find_call(&self, id: &str) -> Option<&ToolCall> {
        self.entries.iter().find_map(|e| match e {
            Entry::Tool(call) if call.id == id => Some(call),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_fold_into_entries() {
        let mut t = Transcript::default();
        t.entries.push(Entry::User { text: "show my orders".into() });
        let events = [
            TurnEvent::ToolCall {
                id: "c1".into(),
                name: "list_orders".into(),
                arguments: json!({}),
                trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            },
            TurnEvent::ToolResult { id: "c1".into(), summary: "3 orders".into(), is_error: false, hops: vec![] },
            TurnEvent::Text { delta: "You have ".into() },
            TurnEvent::Text { delta: "3 orders.".into() },
            TurnEvent::Done,
        ];
        for e in &events {
            t.apply(e);
        }
        assert_eq!(t.entries.len(), 3);
        assert_eq!(t.entries[2], Entry::Assistant { text: "You have 3 orders.".into() });
        let Entry::Tool(call) = &t.entries[1] else { panic!("{:?}", t.entries[1]) };
        assert_eq!(call.outcome.as_ref().map(|o| o.summary.as_str()), Some("3 orders"));
        assert_eq!(call.trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    }

    #[test]
    fn a_turn_is_its_question_its_calls_and_what_followed() {
        let call = |id: &str| {
            Entry::Tool(ToolCall {
                id: id.into(),
                name: "list_orders".into(),
                arguments: json!({}),
                outcome: None,
                trace_id: None,
                approval: None,
            })
        };
        let (a, b) = ("11111111-2222-4333-8444-555555555555", "66666666-2222-4333-8444-555555555555");
        let t = Transcript {
            entries: vec![
                Entry::User { text: "first".into() },
                call(&format!("{a}-1")),
                Entry::Assistant { text: "one".into() },
                Entry::User { text: "second".into() },
                call(&format!("{b}-1")),
                call(&format!("{b}-2")),
                Entry::Assistant { text: "two".into() },
            ],
        };
        assert_eq!(t.turn(a).unwrap(), &t.entries[..3]);
        assert_eq!(t.turn(b).unwrap(), &t.entries[3..]);
        assert_eq!(t.turn("66666666-2222-4333-8444"), None, "a prefix of a turn id is no turn");
        assert_eq!(t.turn("77777777-2222-4333-8444-555555555555"), None);
    }

    #[test]
    fn wire_format_is_tagged_json() {
        let e = TurnEvent::Error { message: "down".into(), sign_in: false };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json, json!({"type": "error", "message": "down", "sign_in": false}));
        let back: TurnEvent = serde_json::from_value(json!({"type": "error", "message": "x"})).unwrap();
        assert_eq!(back, TurnEvent::Error { message: "x".into(), sign_in: false });
        for name in TurnEvent::NAMES {
            assert!(!name.is_empty());
        }
        let entry = Entry::Tool(ToolCall {
            id: "a".into(),
            name: "n".into(),
            arguments: json!({}),
            outcome: None,
            approval: None,
            trace_id: None,
        });
        let back: Entry = serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(back, entry);
    }
}
