//! The agent loop: the model proposes tool calls, each goes to orders-mcp with the user's own
//! access token, the results go back to the model, until it answers in text. Bounded in
//! iterations and time; tool failures are results the model reads; the model never sees a token
//! (nor the identity trace, which goes to the browser only).
//!
//! The model's proposals are not the user's wishes: a call to a tool that is not read-only
//! waits for the signed-in user's yes (`CHAT_APP_APPROVAL`), and every tool result reaches the
//! model fenced as data ([`prompt`]), since it can carry text other people wrote.

pub mod approval;
pub mod clock;
pub mod endpoint;
pub mod model;
pub mod openai;
pub mod order_text;
pub mod planner;
pub mod prompt;

use std::sync::Arc;

use entra_auth::acquire::AccessToken;
use serde_json::{Map, Value};
use service_kit::secret::RandomError;
use service_kit::telemetry::context::record_error;
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::approvals::{Approvals, Question};
use crate::configuration::AgentSettings;
use crate::mcp::{McpConnector, McpError, McpSession, ToolSpec};
use crate::transcript::{Approval, ApprovalState, TurnEvent};
use approval::{Asked, describe, needs_approval};
use clock::TurnClock;
use model::{ChatModel, Message, ModelError, TOOL_ERROR_PREFIX, ToolCall};
use prompt::{SYSTEM_PROMPT, fence};

/// The agent's name on its spans (`gen_ai.agent.name`).
const AGENT_NAME: &str = "Orders Copilot";

/// The most tool calls run from one model reply; the rest get a result saying they did not
/// run. Parallel calls are a handful; a reply with dozens is a model steered off course.
const MAX_CALLS_PER_REPLY: usize = 8;

/// Called with each event of the turn, in order.
pub type Emit<'a> = &'a (dyn Fn(TurnEvent) + Send + Sync);

pub struct Agent {
    model: Arc<dyn ChatModel>,
    mcp: McpConnector,
    limits: AgentSettings,
    approvals: Arc<Approvals>,
}

/// Whose turn it is, and where: what an approval is bound to.
pub struct Turn<'a> {
    /// Makes tool call ids unique within the conversation.
    pub id: &'a str,
    pub conversation: &'a str,
    pub oid: &'a str,
    /// The signed-in user's name: who a call acts as.
    pub user_name: &'a str,
}

/// What the user reads when orders-api wants their step-up before a change.
const STEP_UP_NEEDED: &str = "The orders service needs you to confirm this change with a fresh sign-in before the \
agent may make it. Confirm with sign-in, then ask again.";

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("chat-app could not make the random value that fences a tool result ({0}), so the turn stopped.")]
    Random(#[from] RandomError),
    /// orders-api answered a claims challenge: the user must step up; the turn ends here.
    #[error("{}", STEP_UP_NEEDED)]
    StepUp(Vec<String>),
}

impl Agent {
    pub fn new(model: Arc<dyn ChatModel>, mcp: McpConnector, limits: AgentSettings, approvals: Arc<Approvals>) -> Self {
        Agent { model, mcp, limits, approvals }
    }

    /// The span of one model call: OpenTelemetry's GenAI inference span, `chat
    /// {gen_ai.request.model}` (CLIENT; semantic-conventions-genai `docs/gen-ai/gen-ai-spans.md`).
    fn model_span(&self) -> Span {
        let model = self.model.telemetry();
        let (address, port) = model.server.unzip();
        tracing::info_span!(
            "model.call",
            otel.name = %format_args!("chat {}", model.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.provider.name = model.provider,
            gen_ai.request.model = model.model,
            server.address = address,
            server.port = port,
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    pub fn model(&self) -> &dyn ChatModel {
        self.model.as_ref()
    }

    pub fn mcp(&self) -> &McpConnector {
        &self.mcp
    }

    /// Runs one turn: `history` (earlier user and assistant messages) then `request`. Events,
    /// including a final error if any, go to `emit`; `done` is the caller's to send.
    ///
    /// The turn's span is OpenTelemetry's GenAI agent span (`invoke_agent {gen_ai.agent.name}`,
    /// semantic-conventions-genai `docs/gen-ai/gen-ai-agent-spans.md`), an in-process agent so
    /// INTERNAL; its model calls and tool calls are the conventions' `chat` and `execute_tool`
    /// spans under it, which is how GenAI trace views (Application Insights' among them) read
    /// an agent run.
    #[tracing::instrument(
        name = "agent.turn",
        skip_all,
        fields(
            otel.name = %format_args!("invoke_agent {AGENT_NAME}"),
            gen_ai.operation.name = "invoke_agent",
            gen_ai.agent.name = AGENT_NAME,
            gen_ai.provider.name = self.model.telemetry().provider,
            gen_ai.request.model = self.model.telemetry().model,
            turn = turn.id,
        )
    )]
    pub async fn run(
        &self,
        turn: &Turn<'_>,
        history: Vec<Message>,
        request: String,
        token: &AccessToken,
        emit: Emit<'_>,
    ) {
        let clock = TurnClock::start(self.limits.timeout);
        match clock.limit(self.steps(turn, &clock, history, request, token, emit)).await {
            Ok(Ok(())) => {}
            Ok(Err(TurnError::StepUp(contexts))) => {
                emit(TurnEvent::StepUp { message: STEP_UP_NEEDED.to_string(), contexts });
            }
            Ok(Err(TurnError::Model(e))) => {
                // The provider's own words stay in the log: they can quote part of a key
                // ("Incorrect API key provided: sk-…abcd") or the deployment's internals, and the
                // chat keeps what it shows (OWASP ASVS V7.4.1: generic messages to users).
                tracing::warn!(error = %e, kind = e.kind(), "the model call failed");
                emit(TurnEvent::Error { message: model_failure(&e).to_string(), sign_in: false });
            }
            Ok(Err(e)) => {
                let sign_in = matches!(e, TurnError::Mcp(McpError::Refused(_)));
                emit(TurnEvent::Error { message: e.to_string(), sign_in });
            }
            Err(_) => emit(TurnEvent::Error {
                message: format!("The reply took longer than {} s and was stopped.", self.limits.timeout.as_secs()),
                sign_in: false,
            }),
        }
    }

    async fn steps(
        &self,
        turn: &Turn<'_>,
        clock: &TurnClock,
        history: Vec<Message>,
        request: String,
        token: &AccessToken,
        emit: Emit<'_>,
    ) -> Result<(), TurnError> {
        let session = self.mcp.connect(token).await?;
        let result = self.converse(&session, turn, clock, history, request, emit).await;
        session.close().await;
        result
    }

    async fn converse(
        &self,
        session: &McpSession,
        turn: &Turn<'_>,
        clock: &TurnClock,
        history: Vec<Message>,
        request: String,
        emit: Emit<'_>,
    ) -> Result<(), TurnError> {
        let tools = session.tools().await?;
        let mut messages = Vec::with_capacity(history.len() + 8);
        messages.push(Message::System(SYSTEM_PROMPT.to_string()));
        messages.extend(history);
        messages.push(Message::User(request));
        let on_text = |delta: &str| emit(TurnEvent::Text { delta: delta.to_string() });
        let mut calls_made = 0usize;
        let mut asked = Asked::default();
        for _ in 0..self.limits.max_iterations {
            // The model call is a span of the turn's trace, whichever provider answers.
            let span = self.model_span();
            let completion = self.model.complete(&messages, &tools, &on_text).instrument(span.clone()).await;
            if let Err(e) = &completion {
                record_error(&span, e.kind());
            }
            let completion = completion?;
            if completion.tool_calls.is_empty() {
                return Ok(());
            }
            messages
                .push(Message::Assistant { text: completion.text.clone(), tool_calls: completion.tool_calls.clone() });
            for (nth, call) in completion.tool_calls.into_iter().enumerate() {
                calls_made += 1;
                let ui_id = format!("{}-{calls_made}", turn.id);
                let content = if nth < MAX_CALLS_PER_REPLY {
                    self.call_tool(session, &tools, turn, clock, &ui_id, &call, &mut asked, emit).await?
                } else {
                    // Every call still gets its result: the model's API requires one per call.
                    let problem = format!("Not run: at most {MAX_CALLS_PER_REPLY} tool calls are made per reply.");
                    not_run(&ui_id, &call, Value::String(call.arguments.clone()), problem, emit)
                };
                messages.push(Message::Tool { content: fence(&call.name, &content)?, call_id: call.id });
            }
        }
        emit(TurnEvent::Text {
            delta: format!("\n(I stopped after {} steps without finishing.)", self.limits.max_iterations),
        });
        Ok(())
    }

    /// Calls one tool (once the user approved it, if it must be) and returns what the model
    /// reads about the result; a claims challenge ends the turn ([`TurnError::StepUp`]) before
    /// the model reads anything of it.
    #[allow(clippy::too_many_arguments)] // the call, where it happens, and who is told
    async fn call_tool(
        &self,
        session: &McpSession,
        tools: &[ToolSpec],
        turn: &Turn<'_>,
        clock: &TurnClock,
        ui_id: &str,
        call: &ToolCall,
        asked: &mut Asked,
        emit: Emit<'_>,
    ) -> Result<String, TurnError> {
        let arguments = match parse_arguments(&call.arguments) {
            Ok(args) => args,
            Err(problem) => return Ok(not_run(ui_id, call, Value::String(call.arguments.clone()), problem, emit)),
        };
        let Some(tool) = tools.iter().find(|t| t.name == call.name) else {
            let problem = format!("orders-mcp offers no tool named {:?}", call.name);
            return Ok(not_run(ui_id, call, Value::Object(arguments), problem, emit));
        };
        let approval = needs_approval(self.limits.approval, tool);
        if approval && let Some(problem) = asked.refusal() {
            return Ok(not_run(ui_id, call, Value::Object(arguments), problem, emit));
        }
        announce(ui_id, call, Value::Object(arguments.clone()), emit);
        if approval {
            let state = self.ask(session, tools, turn, clock, ui_id, tool, &arguments, emit).await;
            asked.record(&state);
            if let Some((summary, for_model)) = not_done(&state) {
                emit(TurnEvent::ToolResult { id: ui_id.to_string(), summary, is_error: true, hops: vec![] });
                return Ok(format!("{TOOL_ERROR_PREFIX}{for_model}"));
            }
        }
        let outcome = session.call(tool, arguments).await;
        emit(TurnEvent::ToolResult {
            id: ui_id.to_string(),
            summary: outcome.summary.clone(),
            is_error: outcome.is_error,
            hops: outcome.hops,
        });
        if !outcome.step_up.is_empty() {
            return Err(TurnError::StepUp(outcome.step_up));
        }
        Ok(if outcome.is_error { format!("{TOOL_ERROR_PREFIX}{}", outcome.for_model) } else { outcome.for_model })
    }

    /// Puts the call to the user and waits (the turn's clock stopped) for their answer.
    #[allow(clippy::too_many_arguments)]
    async fn ask(
        &self,
        session: &McpSession,
        tools: &[ToolSpec],
        turn: &Turn<'_>,
        clock: &TurnClock,
        ui_id: &str,
        tool: &ToolSpec,
        arguments: &Map<String, Value>,
        emit: Emit<'_>,
    ) -> ApprovalState {
        let summary = describe(session, tools, tool, arguments).await;
        let pending = self.approvals.ask(Question {
            call: ui_id.to_string(),
            turn: turn.id.to_string(),
            conversation: turn.conversation.to_string(),
            oid: turn.oid.to_string(),
            tool: tool.name.clone(),
            arguments: Value::Object(arguments.clone()),
            wait: self.limits.approval_timeout,
        });
        emit(TurnEvent::ApprovalRequired {
            id: ui_id.to_string(),
            approval: Approval {
                summary,
                acting_as: turn.user_name.to_string(),
                turn: turn.id.to_string(),
                expires_at: pending.expires_at,
                state: ApprovalState::Pending,
            },
        });
        let state = {
            let _waiting_for_a_person = clock.pause();
            pending.answer().await
        };
        tracing::info!(tool = %tool.name, call = ui_id, answer = ?state, "approval answered");
        emit(TurnEvent::ApprovalDecided { id: ui_id.to_string(), state: state.clone() });
        state
    }
}

/// What the chat says when the model call failed; the details are in chat-app's log.
fn model_failure(e: &ModelError) -> &'static str {
    match e {
        ModelError::Unreachable(_) => "The model is unreachable right now. Try again in a moment.",
        ModelError::Rejected(_) => "The model refused the request (chat-app's log says why).",
        ModelError::BadResponse(_) => "The model's answer could not be read (chat-app's log says why).",
        ModelError::Credential(_) => "chat-app has no working credential for the model (its log says why).",
    }
}

/// Shows the call in the chat.
fn announce(ui_id: &str, call: &ToolCall, arguments: Value, emit: Emit<'_>) {
    emit(TurnEvent::ToolCall { id: ui_id.to_string(), name: call.name.clone(), arguments, trace_id: trace_id() });
}

/// A call that does not run, and why: shown in the chat with its reason, which is what the
/// model reads too.
fn not_run(ui_id: &str, call: &ToolCall, arguments: Value, problem: String, emit: Emit<'_>) -> String {
    announce(ui_id, call, arguments, emit);
    emit(TurnEvent::ToolResult { id: ui_id.to_string(), summary: problem.clone(), is_error: true, hops: vec![] });
    format!("{TOOL_ERROR_PREFIX}{problem}")
}

/// For a call that will not run: what the chat shows and what the model reads.
fn not_done(state: &ApprovalState) -> Option<(String, String)> {
    match state {
        ApprovalState::Approved { .. } => None,
        ApprovalState::Declined { by, .. } => Some((
            format!("Declined by {by}: not done."),
            "The user declined this call, so it was not made and nothing changed. Do not make it again unless \
             the user asks for it in a new message."
                .to_string(),
        )),
        // Pending cannot come back from a wait; were it to, the call does not run either.
        ApprovalState::Expired { .. } | ApprovalState::Pending => Some((
            "Not approved in time: not done.".to_string(),
            "The user did not approve this call in time, so it was not made and nothing changed.".to_string(),
        )),
    }
}

/// Models send arguments as JSON text; an object is required (an empty string means none).
/// The turn's trace id for the trace panel's link to the trace viewer, when traces are exported.
fn trace_id() -> Option<String> {
    service_kit::telemetry::context::current_trace_id()
}

fn parse_arguments(raw: &str) -> Result<Map<String, Value>, String> {
    if raw.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the tool arguments must be a JSON object".to_string()),
        Err(e) => Err(format!("the tool arguments are not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(parse_arguments("").unwrap(), Map::new());
        assert_eq!(parse_arguments(r#"{"id":"ORD-001"}"#).unwrap().len(), 1);
        assert!(parse_arguments("[1]").unwrap_err().contains("object"));
        assert!(parse_arguments("{oops").unwrap_err().contains("not valid JSON"));
    }
}
