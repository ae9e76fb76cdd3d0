//! Tool calls waiting for the signed-in user's yes, and the answers to them.
//!
//! The server, not the browser, decides which call an answer is for. A call waits under its id
//! together with everything that identifies it: the turn, the conversation and user it belongs
//! to, the tool, and its arguments in canonical form. An answer counts only if it names that
//! same call (tool and arguments included), comes from the session whose conversation the call
//! is in, arrives before the call's deadline, and is the first answer: anything else is refused
//! and changes nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use service_kit::clock::unix_now;
use tokio::sync::oneshot;

use crate::transcript::ApprovalState;

/// How long an answered or expired call is remembered, so a late or repeated answer gets a
/// clear refusal rather than "not found".
const REMEMBER: Duration = Duration::from_secs(3600);

/// Which call a request to approve names, as the browser sends it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub turn: String,
    pub call: String,
    pub tool: String,
    pub arguments: Value,
    pub approve: bool,
}

/// The session answering: its conversation and its user.
#[derive(Debug, Clone)]
pub struct Answerer {
    pub conversation: String,
    pub oid: String,
    pub name: String,
}

/// A call to put to the user.
#[derive(Debug, Clone)]
pub struct Question {
    pub call: String,
    pub turn: String,
    pub conversation: String,
    pub oid: String,
    pub tool: String,
    pub arguments: Value,
    pub wait: Duration,
}

/// Why an answer was refused. The texts are what the user reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// No such call waits in this conversation (also for another user's or session's call:
    /// their existence is not revealed).
    #[error("No action with these details is waiting for your answer.")]
    NotFound,
    #[error(
        "This answer does not match the action that is waiting (another tool or other arguments), so nothing was done."
    )]
    Mismatch,
    #[error("This action was already answered; an answer counts once.")]
    AlreadyAnswered,
    #[error("The time to answer this action has run out, so it was not done. Ask again if you still want it.")]
    Expired,
}

enum Status {
    Waiting(oneshot::Sender<ApprovalState>),
    Answered,
    Expired,
}

struct Waiting {
    turn: String,
    conversation: String,
    oid: String,
    tool: String,
    arguments: String,
    deadline: Instant,
    status: Status,
    created: Instant,
}

#[derive(Default)]
pub struct Approvals {
    calls: Mutex<HashMap<String, Waiting>>,
}

/// A call waiting for its answer: [`Pending::answer`] completes with the user's decision, or
/// with `Expired` at the deadline.
pub struct Pending<'a> {
    approvals: &'a Approvals,
    call: String,
    deadline: Instant,
    answer: oneshot::Receiver<ApprovalState>,
    /// The deadline as the user sees it (seconds since the Unix epoch).
    pub expires_at: u64,
}

impl Approvals {
    /// Puts `question` to the user; the call waits until answered or `question.wait` is over.
    pub fn ask(&self, question: Question) -> Pending<'_> {
        let (tx, rx) = oneshot::channel();
        let deadline = Instant::now() + question.wait;
        let mut calls = self.lock();
        calls.retain(|_, w| matches!(w.status, Status::Waiting(_)) || w.created.elapsed() < REMEMBER);
        calls.insert(
            question.call.clone(),
            Waiting {
                turn: question.turn,
                conversation: question.conversation,
                oid: question.oid,
                tool: question.tool,
                arguments: canonical(&question.arguments),
                deadline,
                status: Status::Waiting(tx),
                created: Instant::now(),
            },
        );
        Pending {
            approvals: self,
            call: question.call,
            deadline,
            answer: rx,
            expires_at: unix_now().saturating_add(question.wait.as_secs()),
        }
    }

    /// Records `answer` from `by` for the call it names, if it is allowed to.
    pub fn answer(&self, by: &Answerer, answer: &Answer) -> Result<ApprovalState, AnswerError> {
        let mut calls = self.lock();
        let Some(waiting) = calls.get_mut(&answer.call) else {
            return Err(AnswerError::NotFound);
        };
        if waiting.conversation != by.conversation || waiting.oid != by.oid || waiting.turn != answer.turn {
            return Err(AnswerError::NotFound);
        }
        if waiting.tool != answer.tool || waiting.arguments != canonical(&answer.arguments) {
            return Err(AnswerError::Mismatch);
        }
        match waiting.status {
            Status::Answered => return Err(AnswerError::AlreadyAnswered),
            Status::Expired => return Err(AnswerError::Expired),
            Status::Waiting(_) if Instant::now() >= waiting.deadline => {
                waiting.status = Status::Expired;
                return Err(AnswerError::Expired);
            }
            Status::Waiting(_) => {}
        }
        let (by, at) = (by.name.clone(), unix_now());
        let state =
            if answer.approve { ApprovalState::Approved { by, at } } else { ApprovalState::Declined { by, at } };
        if let Status::Waiting(tx) = std::mem::replace(&mut waiting.status, Status::Answered) {
            // The turn may have ended meanwhile (stopped by its own time limit): then the call
            // never runs, whatever the answer, and the user's click changed nothing.
            if tx.send(state.clone()).is_err() {
                waiting.status = Status::Expired;
                return Err(AnswerError::Expired);
            }
        }
        Ok(state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Pending<'_> {
    /// The user's answer, or `Expired` once the deadline passes without one.
    pub async fn answer(mut self) -> ApprovalState {
        if let Ok(Ok(state)) = tokio::time::timeout_at(self.deadline.into(), &mut self.answer).await {
            return state;
        }
        let mut calls = self.approvals.lock();
        // An answer may have landed just as the deadline passed: it wins only if it was recorded.
        if let Ok(state) = self.answer.try_recv() {
            return state;
        }
        if let Some(waiting) = calls.get_mut(&self.call) {
            waiting.status = Status::Expired;
        }
        ApprovalState::Expired { at: unix_now() }
    }
}

impl Drop for Pending<'_> {
    /// A turn stopped while waiting (time limit, shutdown) leaves no call that could still be
    /// approved.
    fn drop(&mut self) {
        let mut calls = self.approvals.lock();
        if let Some(waiting) = calls.get_mut(&self.call)
            && matches!(waiting.status, Status::Waiting(_))
        {
            waiting.status = Status::Expired;
        }
    }
}

/// `value` as JSON text with object keys sorted at every level: the same arguments always give
/// the same text, whatever order they were written in.
pub fn canonical(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn question(wait: Duration) -> Question {
        Question {
            call: "t1-1".into(),
            turn: "t1".into(),
            conversation: "c1".into(),
            oid: "carol".into(),
            tool: "cancel_order".into(),
            arguments: json!({"id": "ORD-001"}),
            wait,
        }
    }

    fn carol() -> Answerer {
        Answerer { conversation: "c1".into(), oid: "carol".into(), name: "Carol Admin".into() }
    }

    fn answer(approve: bool) -> Answer {
        Answer {
            turn: "t1".into(),
            call: "t1-1".into(),
            tool: "cancel_order".into(),
            arguments: json!({"id": "ORD-001"}),
            approve,
        }
    }

    #[test]
    fn canonical_arguments_ignore_key_order_only() {
        assert_eq!(canonical(&json!({"b": 1, "a": {"y": 2, "x": 1}})), r#"{"a":{"x":1,"y":2},"b":1}"#);
        assert_ne!(canonical(&json!({"quantity": 2})), canonical(&json!({"quantity": 2.0})));
    }

    #[tokio::test]
    async fn an_answer_counts_once_for_exactly_the_call_that_waits() {
        let approvals = Approvals::default();
        let pending = approvals.ask(question(Duration::from_secs(60)));
        let other_user = Answerer { oid: "bob".into(), ..carol() };
        assert_eq!(approvals.answer(&other_user, &answer(true)), Err(AnswerError::NotFound));
        let other_session = Answerer { conversation: "c2".into(), ..carol() };
        assert_eq!(approvals.answer(&other_session, &answer(true)), Err(AnswerError::NotFound));
        let forged = Answer { arguments: json!({"id": "ORD-004"}), ..answer(true) };
        assert_eq!(approvals.answer(&carol(), &forged), Err(AnswerError::Mismatch));
        let other_tool = Answer { tool: "create_order".into(), ..answer(true) };
        assert_eq!(approvals.answer(&carol(), &other_tool), Err(AnswerError::Mismatch));

        let state = approvals.answer(&carol(), &answer(false)).unwrap();
        assert!(matches!(&state, ApprovalState::Declined { by, .. } if by == "Carol Admin"));
        assert_eq!(pending.answer().await, state);
        assert_eq!(approvals.answer(&carol(), &answer(true)), Err(AnswerError::AlreadyAnswered), "no replay");
    }

    #[tokio::test]
    async fn no_answer_in_time_expires_the_call() {
        let approvals = Approvals::default();
        let pending = approvals.ask(question(Duration::from_millis(50)));
        assert!(matches!(pending.answer().await, ApprovalState::Expired { .. }));
        assert_eq!(approvals.answer(&carol(), &answer(true)), Err(AnswerError::Expired));

        // A turn that stops while waiting leaves nothing to approve.
        let pending = approvals.ask(question(Duration::from_secs(60)));
        drop(pending);
        assert_eq!(approvals.answer(&carol(), &answer(true)), Err(AnswerError::Expired));
    }
}
