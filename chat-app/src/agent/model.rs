//! What the agent loop needs from a model: given the conversation and the tools, either text or
//! tool calls. The OpenAI-compatible providers and the offline planner implement it.

use futures::future::BoxFuture;

use crate::mcp::ToolSpec;
use crate::views::ModelLabel;

/// How a failed tool result starts, in what the model reads.
pub const TOOL_ERROR_PREFIX: &str = "ERROR: ";

/// A message of the conversation the model sees. Never a token: tool results carry what the
/// tool returned for the model, not the identity trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    System(String),
    User(String),
    Assistant { text: String, tool_calls: Vec<ToolCall> },
    Tool { call_id: String, content: String },
}

/// A tool call as the model asked for it (`arguments` is JSON text, as models produce it).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One model answer: text (already streamed through `on_text`) and the tools to call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("the model is unreachable: {0}")]
    Unreachable(String),
    #[error("the model refused the request: {0}")]
    Rejected(String),
    #[error("the model's answer could not be read: {0}")]
    BadResponse(String),
    #[error("no credential for the model: {0}")]
    Credential(String),
}

impl ModelError {
    /// The model span's `error.type` (low-cardinality, as OpenTelemetry asks).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::Unreachable(_) => "unreachable",
            ModelError::Rejected(_) => "rejected",
            ModelError::BadResponse(_) => "bad_response",
            ModelError::Credential(_) => "credential",
        }
    }
}

/// Called with each piece of text as the model writes it.
pub type OnText<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// What OpenTelemetry's GenAI conventions record of a model's calls ("Semantic conventions for
/// generative AI spans", semantic-conventions-genai `docs/gen-ai/gen-ai-spans.md`).
pub struct ModelTelemetry<'a> {
    /// `gen_ai.provider.name`: a well-known value (`openai`, `azure.ai.openai`) or this
    /// project's own for the offline planner.
    pub provider: &'static str,
    /// `gen_ai.request.model`: the model (or Azure deployment) asked for.
    pub model: &'a str,
    /// The model server's host and port (`server.address`, `server.port`); none offline.
    pub server: Option<(&'a str, u16)>,
}

pub trait ChatModel: Send + Sync {
    /// How the UI names this model.
    fn label(&self) -> ModelLabel;

    /// How its calls are described on their spans.
    fn telemetry(&self) -> ModelTelemetry<'_>;

    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
        on_text: OnText<'a>,
    ) -> BoxFuture<'a, Result<Completion, ModelError>>;
}
