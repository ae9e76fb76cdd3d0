//! The agent loop: the model proposes tool calls, each goes to orders-mcp with the user's own
//! access token, the results go back to the model, until it answers in text. Bounded in
//! iterations and time; tool failures are results the model reads; the model never sees a token
//! (nor the identity trace, which goes to the browser only).

pub mod endpoint;
pub mod model;
pub mod openai;
pub mod planner;

use std::sync::Arc;

use entra_auth::acquire::AccessToken;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::configuration::AgentSettings;
use crate::mcp::{McpConnector, McpError, McpSession};
use crate::transcript::TurnEvent;
use model::{ChatModel, Message, ModelError, TOOL_ERROR_PREFIX, ToolCall};

const SYSTEM_PROMPT: &str = "You are Orders Copilot, an assistant for a small shop's customers. \
Use the tools to look up, create and cancel the signed-in user's orders; never invent orders or ids. \
Answer briefly and plainly. If a tool reports an error, explain it to the user in one sentence.";

/// Called with each event of the turn, in order.
pub type Emit<'a> = &'a (dyn Fn(TurnEvent) + Send + Sync);

pub struct Agent {
    model: Arc<dyn ChatModel>,
    mcp: McpConnector,
    limits: AgentSettings,
}

#[derive(Debug, thiserror::Error)]
enum TurnError {
    #[error(transparent)]
    Mcp(#[from] McpError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl Agent {
    pub fn new(model: Arc<dyn ChatModel>, mcp: McpConnector, limits: AgentSettings) -> Self {
        Agent { model, mcp, limits }
    }

    pub fn model(&self) -> &dyn ChatModel {
        self.model.as_ref()
    }

    pub fn mcp(&self) -> &McpConnector {
        &self.mcp
    }

    /// Runs one turn: `history` (earlier user and assistant messages) then `request`. Events,
    /// including a final error if any, go to `emit`; `done` is the caller's to send.
    /// `turn_id` makes tool call ids unique within the conversation.
    #[tracing::instrument(name = "agent.turn", skip_all, fields(turn = turn_id))]
    pub async fn run(
        &self,
        turn_id: &str,
        history: Vec<Message>,
        request: String,
        token: &AccessToken,
        emit: Emit<'_>,
    ) {
        let limit = self.limits.timeout;
        match tokio::time::timeout(limit, self.steps(turn_id, history, request, token, emit)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let sign_in = matches!(e, TurnError::Mcp(McpError::Refused(_)));
                emit(TurnEvent::Error { message: e.to_string(), sign_in });
            }
            Err(_) => emit(TurnEvent::Error {
                message: format!("The reply took longer than {} s and was stopped.", limit.as_secs()),
                sign_in: false,
            }),
        }
    }

    async fn steps(
        &self,
        turn_id: &str,
        history: Vec<Message>,
        request: String,
        token: &AccessToken,
        emit: Emit<'_>,
    ) -> Result<(), TurnError> {
        let session = self.mcp.connect(token).await?;
        let result = self.converse(&session, turn_id, history, request, emit).await;
        session.close().await;
        result
    }

    async fn converse(
        &self,
        session: &McpSession,
        turn_id: &str,
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
        for _ in 0..self.limits.max_iterations {
            // The model call is a span of the turn's trace, whichever provider answers.
            let completion = self
                .model
                .complete(&messages, &tools, &on_text)
                .instrument(tracing::info_span!("model.call", otel.kind = "client"))
                .await?;
            if completion.tool_calls.is_empty() {
                return Ok(());
            }
            messages
                .push(Message::Assistant { text: completion.text.clone(), tool_calls: completion.tool_calls.clone() });
            for call in completion.tool_calls {
                calls_made += 1;
                let content = self.call_tool(session, &format!("{turn_id}-{calls_made}"), &call, emit).await;
                messages.push(Message::Tool { call_id: call.id, content });
            }
        }
        emit(TurnEvent::Text {
            delta: format!("\n(I stopped after {} steps without finishing.)", self.limits.max_iterations),
        });
        Ok(())
    }

    /// Calls one tool and returns what the model reads about the result.
    async fn call_tool(&self, session: &McpSession, ui_id: &str, call: &ToolCall, emit: Emit<'_>) -> String {
        let arguments = match parse_arguments(&call.arguments) {
            Ok(args) => args,
            Err(problem) => {
                emit(TurnEvent::ToolCall {
                    id: ui_id.to_string(),
                    name: call.name.clone(),
                    arguments: Value::String(call.arguments.clone()),
                });
                emit(TurnEvent::ToolResult {
                    id: ui_id.to_string(),
                    summary: problem.clone(),
                    is_error: true,
                    hops: vec![],
                });
                return format!("{TOOL_ERROR_PREFIX}{problem}");
            }
        };
        emit(TurnEvent::ToolCall {
            id: ui_id.to_string(),
            name: call.name.clone(),
            arguments: Value::Object(arguments.clone()),
        });
        let outcome = session.call(&call.name, arguments).await;
        emit(TurnEvent::ToolResult {
            id: ui_id.to_string(),
            summary: outcome.summary.clone(),
            is_error: outcome.is_error,
            hops: outcome.hops,
        });
        if outcome.is_error { format!("{TOOL_ERROR_PREFIX}{}", outcome.for_model) } else { outcome.for_model }
    }
}

/// Models send arguments as JSON text; an object is required (an empty string means none).
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
