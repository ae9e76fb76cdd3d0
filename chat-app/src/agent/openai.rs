//! The OpenAI-compatible providers (`openai`: OpenAI, Ollama, vLLM, ...; `azure`: Azure OpenAI's
//! v1 endpoint): chat completions with tools through async-openai, streamed or not.

use std::collections::BTreeMap;

use async_openai::Client;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage, ChatCompletionRequestToolMessage,
    ChatCompletionRequestUserMessage, ChatCompletionTool, ChatCompletionTools, CreateChatCompletionRequest,
    FunctionCall, FunctionObject,
};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::endpoint::Endpoint;
use super::model::{ChatModel, Completion, Message, ModelError, ModelTelemetry, OnText, ToolCall};
use crate::mcp::ToolSpec;
use crate::views::ModelLabel;

pub struct OpenAiModel {
    client: Client<Endpoint>,
    model: String,
    stream: bool,
    label: String,
    provider: &'static str,
    server: Option<(String, u16)>,
}

impl OpenAiModel {
    /// `label` names the provider in the UI, e.g. `gpt-4o-mini (OpenAI-compatible)`;
    /// `provider` is OpenTelemetry's `gen_ai.provider.name` for it.
    pub fn new(
        http: reqwest::Client,
        endpoint: Endpoint,
        model: String,
        stream: bool,
        label: String,
        provider: &'static str,
    ) -> Self {
        let server = url::Url::parse(endpoint.base())
            .ok()
            .and_then(|url| Some((url.host_str()?.to_owned(), url.port_or_known_default()?)));
        OpenAiModel { client: Client::build(http, endpoint), model, stream, label, provider, server }
    }

    fn request(&self, messages: &[Message], tools: &[ToolSpec]) -> CreateChatCompletionRequest {
        let tools: Vec<ChatCompletionTools> = tools
            .iter()
            .map(|t| {
                ChatCompletionTools::Function(ChatCompletionTool {
                    function: FunctionObject {
                        name: t.name.clone(),
                        description: (!t.description.is_empty()).then(|| t.description.clone()),
                        parameters: Some(t.parameters.clone()),
                        strict: None,
                    },
                })
            })
            .collect();
        CreateChatCompletionRequest {
            model: self.model.clone(),
            messages: messages.iter().map(to_openai).collect(),
            tools: (!tools.is_empty()).then_some(tools),
            stream: Some(self.stream),
            ..Default::default()
        }
    }

    async fn complete_once(&self, request: CreateChatCompletionRequest) -> Result<Completion, ModelError> {
        let response = self.client.chat().create(request).await.map_err(model_error)?;
        let Some(choice) = response.choices.into_iter().next() else {
            return Err(ModelError::BadResponse("the answer has no choices".into()));
        };
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| match c {
                ChatCompletionMessageToolCalls::Function(f) => {
                    Some(ToolCall { id: f.id, name: f.function.name, arguments: f.function.arguments })
                }
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        Ok(Completion { text: choice.message.content.unwrap_or_default(), tool_calls })
    }

    async fn complete_streamed(
        &self,
        request: CreateChatCompletionRequest,
        on_text: OnText<'_>,
    ) -> Result<Completion, ModelError> {
        let mut stream = self.client.chat().create_stream(request).await.map_err(model_error)?;
        let mut text = String::new();
        // Tool calls arrive in pieces keyed by index: id and name first, arguments in fragments.
        let mut calls: BTreeMap<u32, ToolCall> = BTreeMap::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(model_error)?;
            for choice in chunk.choices {
                if let Some(delta) = choice.delta.content.filter(|d| !d.is_empty()) {
                    on_text(&delta);
                    text.push_str(&delta);
                }
                for part in choice.delta.tool_calls.unwrap_or_default() {
                    let call = calls.entry(part.index).or_insert_with(|| ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                    if let Some(id) = part.id {
                        call.id = id;
                    }
                    if let Some(function) = part.function {
                        if let Some(name) = function.name {
                            call.name.push_str(&name);
                        }
                        if let Some(arguments) = function.arguments {
                            call.arguments.push_str(&arguments);
                        }
                    }
                }
            }
        }
        let tool_calls: Vec<ToolCall> = calls
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect();
        if tool_calls.iter().any(|c| c.name.is_empty()) {
            return Err(ModelError::BadResponse("a streamed tool call has no name".into()));
        }
        Ok(Completion { text, tool_calls })
    }
}

impl ChatModel for OpenAiModel {
    fn label(&self) -> ModelLabel {
        ModelLabel { name: self.label.clone(), offline: false }
    }

    fn telemetry(&self) -> ModelTelemetry<'_> {
        let server = self.server.as_ref().map(|(host, port)| (host.as_str(), *port));
        ModelTelemetry { provider: self.provider, model: &self.model, server }
    }

    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
        on_text: OnText<'a>,
    ) -> BoxFuture<'a, Result<Completion, ModelError>> {
        async move {
            self.client.config().prepare().await?;
            let request = self.request(messages, tools);
            if self.stream {
                self.complete_streamed(request, on_text).await
            } else {
                let completion = self.complete_once(request).await?;
                if !completion.text.is_empty() {
                    on_text(&completion.text);
                }
                Ok(completion)
            }
        }
        .boxed()
    }
}

fn to_openai(message: &Message) -> ChatCompletionRequestMessage {
    match message {
        Message::System(text) => ChatCompletionRequestSystemMessage::from(text.as_str()).into(),
        Message::User(text) => ChatCompletionRequestUserMessage::from(text.as_str()).into(),
        Message::Assistant { text, tool_calls } => {
            let mut m = ChatCompletionRequestAssistantMessage::default();
            if !text.is_empty() {
                m.content = Some(text.as_str().into());
            }
            if !tool_calls.is_empty() {
                m.tool_calls = Some(
                    tool_calls
                        .iter()
                        .map(|c| {
                            ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                                id: c.id.clone(),
                                function: FunctionCall { name: c.name.clone(), arguments: c.arguments.clone() },
                            })
                        })
                        .collect(),
                );
            }
            m.into()
        }
        Message::Tool { call_id, content } => {
            ChatCompletionRequestToolMessage { content: content.as_str().into(), tool_call_id: call_id.clone() }.into()
        }
    }
}

fn model_error(e: OpenAIError) -> ModelError {
    match e {
        OpenAIError::Reqwest(e) => ModelError::Unreachable(e.without_url().to_string()),
        OpenAIError::ApiError(e) => ModelError::Rejected(e.to_string()),
        OpenAIError::StreamError(e) => ModelError::BadResponse(e.to_string()),
        OpenAIError::JSONDeserialize(e, _) => ModelError::BadResponse(e.to_string()),
        other => ModelError::BadResponse(other.to_string()),
    }
}
