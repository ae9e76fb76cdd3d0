//! The model providers against the fake OpenAI-compatible server: request shape, streamed and
//! non-streamed answers (tool calls split across chunks), and each way of authenticating.

use std::sync::{Arc, Mutex};

use chat_app::agent::endpoint::{COGNITIVE_SERVICES_SCOPE, Endpoint};
use chat_app::agent::model::{ChatModel, Message, ModelError, ToolCall};
use chat_app::agent::openai::OpenAiModel;
use chat_app::configuration::ModelAuth;
use chat_app::mcp::ToolSpec;
use entra_auth::acquire::{Credential, ManagedIdentityCredential, ManagedIdentitySource};
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};
use serde_json::json;

use crate::fake_openai::{Expect, FakeOpenAi, Reply};
use crate::helpers::{assert_no_jwt, emulator_config};

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "list_orders".into(),
        title: Some("List orders".into()),
        description: "List the signed-in user's orders.".into(),
        parameters: json!({"type": "object", "properties": {"status": {"type": "string"}}}),
        read_only: true,
        idempotent: false,
    }]
}

fn conversation() -> Vec<Message> {
    vec![Message::System("You are a test.".into()), Message::User("show pending orders".into())]
}

fn model(base: &str, auth: ModelAuth, stream: bool) -> OpenAiModel {
    OpenAiModel::new(
        reqwest::Client::new(),
        Endpoint::new(base, auth),
        "gpt-test".into(),
        stream,
        "gpt-test".into(),
        "openai",
    )
}

/// Runs one completion, collecting the streamed text pieces.
async fn complete(
    model: &OpenAiModel,
    messages: &[Message],
) -> (Result<chat_app::agent::model::Completion, ModelError>, Vec<String>) {
    let pieces = Mutex::new(Vec::new());
    let on_text = |t: &str| pieces.lock().unwrap().push(t.to_string());
    let result = model.complete(messages, &tools(), &on_text).await;
    (result, pieces.into_inner().unwrap())
}

#[tokio::test]
async fn openai_streamed_tool_call_is_assembled_from_fragments() {
    let fake = FakeOpenAi::spawn(Expect::Bearer("sk-test".into())).await;
    fake.script([Reply::ToolCall { name: "list_orders".into(), arguments: r#"{"status":"pending"}"#.into() }]);
    let m = model(&format!("{}/v1", fake.url), ModelAuth::Bearer("sk-test".into()), true);
    let (result, pieces) = complete(&m, &conversation()).await;
    let completion = result.unwrap();
    assert_eq!(
        completion.tool_calls,
        vec![ToolCall {
            id: "call_fake_1".into(),
            name: "list_orders".into(),
            arguments: r#"{"status":"pending"}"#.into()
        }]
    );
    assert!(pieces.is_empty(), "no text for a tool call: {pieces:?}");
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["model"], "gpt-test");
    assert_eq!(request.body["tools"][0]["type"], "function");
    assert_eq!(request.body["tools"][0]["function"]["name"], "list_orders");
    assert_eq!(request.body["tools"][0]["function"]["parameters"]["properties"]["status"]["type"], "string");
    assert_eq!(request.body["messages"][1], json!({"role": "user", "content": "show pending orders"}));
}

#[tokio::test]
async fn openai_streamed_text_arrives_in_pieces() {
    let fake = FakeOpenAi::spawn(Expect::Bearer("sk-test".into())).await;
    fake.script([Reply::Text("You have two pending orders right now.".into())]);
    let m = model(&format!("{}/v1", fake.url), ModelAuth::Bearer("sk-test".into()), true);
    let (result, pieces) = complete(&m, &conversation()).await;
    let completion = result.unwrap();
    assert_eq!(completion.text, "You have two pending orders right now.");
    assert!(completion.tool_calls.is_empty());
    assert!(pieces.len() >= 3, "streamed in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), completion.text);
}

#[tokio::test]
async fn non_streamed_answers_and_the_tool_round_trip_shape() {
    let fake = FakeOpenAi::spawn(Expect::Bearer("sk-test".into())).await;
    fake.script([Reply::ToolCall { name: "list_orders".into(), arguments: "{}".into() }, Reply::Text("Done.".into())]);
    let m = model(&format!("{}/v1", fake.url), ModelAuth::Bearer("sk-test".into()), false);
    let (first, _) = complete(&m, &conversation()).await;
    let mut first = first.unwrap();
    let call = first.tool_calls.remove(0);
    assert_eq!((call.id.as_str(), call.name.as_str()), ("call_fake_1", "list_orders"));
    let mut messages = conversation();
    messages.push(Message::Assistant { text: String::new(), tool_calls: vec![call] });
    messages.push(Message::Tool { call_id: "call_fake_1".into(), content: r#"{"orders":[]}"#.into() });
    let (second, pieces) = complete(&m, &messages).await;
    assert_eq!(second.unwrap().text, "Done.");
    assert_eq!(pieces, vec!["Done.".to_string()]);
    let sent = &fake.requests()[1].body;
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["messages"][2]["role"], "assistant");
    assert_eq!(sent["messages"][2]["tool_calls"][0]["id"], "call_fake_1");
    assert_eq!(sent["messages"][2]["tool_calls"][0]["function"]["name"], "list_orders");
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_fake_1", "content": r#"{"orders":[]}"#})
    );
}

#[tokio::test]
async fn a_wrong_key_and_a_server_error_are_model_errors() {
    let fake = FakeOpenAi::spawn(Expect::Bearer("sk-right".into())).await;
    let m = model(&format!("{}/v1", fake.url), ModelAuth::Bearer("sk-wrong".into()), true);
    let (result, _) = complete(&m, &conversation()).await;
    let e = result.unwrap_err();
    assert!(e.to_string().contains("Incorrect API key"), "{e}");

    fake.script([Reply::Status(500)]);
    let m = model(&format!("{}/v1", fake.url), ModelAuth::Bearer("sk-right".into()), false);
    let (result, _) = complete(&m, &conversation()).await;
    assert!(matches!(result, Err(ModelError::Rejected(_))), "{result:?}");
}

#[tokio::test]
async fn an_unreachable_model_says_so() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    for stream in [true, false] {
        let m = model(&url, ModelAuth::None, stream);
        let (result, _) = complete(&m, &conversation()).await;
        let e = result.unwrap_err();
        assert!(matches!(e, ModelError::Unreachable(_)), "stream={stream}: {e:?}");
        assert!(e.to_string().contains("unreachable"), "{e}");
    }
}

#[tokio::test]
async fn azure_with_a_key_sends_api_key_to_the_v1_endpoint() {
    let fake = FakeOpenAi::spawn(Expect::ApiKey("azure-key".into())).await;
    fake.script([Reply::Text("hello".into())]);
    let m = model(&Endpoint::azure_v1_base(&fake.url), ModelAuth::ApiKey("azure-key".into()), true);
    let (result, _) = complete(&m, &conversation()).await;
    assert_eq!(result.unwrap().text, "hello");
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/openai/v1/chat/completions");
    assert_eq!(request.api_key.as_deref(), Some("azure-key"));
    assert_eq!(request.authorization, None);
}

#[tokio::test]
async fn azure_with_entra_sends_a_fresh_managed_identity_token() {
    let mut config = emulator_config();
    config.token_lifetime = std::time::Duration::from_secs(3600);
    let idp = entra_emulator::Application::build(config).await.unwrap().spawn();
    let tenant = idp.handle().tenant_id().to_string();
    // The fake validates the bearer token as Azure OpenAI does: signature, issuer, audience.
    let audience = COGNITIVE_SERVICES_SCOPE.trim_end_matches("/.default").to_string();
    let validator = TokenValidator::new(
        ValidatorConfig::new(url::Url::parse(&idp.url()).unwrap(), tenant, vec![audience])
            .versions(&[TokenVersion::V1]),
        reqwest::Client::new(),
    );
    let fake = FakeOpenAi::spawn(Expect::Entra(Arc::new(validator))).await;
    fake.script([Reply::Text("hello".into()), Reply::Text("again".into())]);
    let mi_client_id = idp.handle().manifest().managed_identities["chat-app"].client_id.clone();
    let mi = ManagedIdentityCredential::new(
        reqwest::Client::new(),
        ManagedIdentitySource::AppService {
            endpoint: url::Url::parse(&format!("{}/msi/token", idp.url())).unwrap(),
            header: "test-identity-header".into(),
        },
        Some(mi_client_id.clone()),
    );
    let m =
        model(&Endpoint::azure_v1_base(&fake.url), ModelAuth::Entra(Credential::ManagedIdentity(Arc::new(mi))), true);
    for expected in ["hello", "again"] {
        let (result, _) = complete(&m, &conversation()).await;
        assert_eq!(result.unwrap().text, expected);
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert!(r.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer eyJ")), "{:?}", r.authorization);
        assert_eq!(r.api_key, None);
        // Only the model endpoint gets the token; the conversation never contains one.
        assert_no_jwt("the model request body", &r.body.to_string());
    }
    // Tokens are cached by the credential: one managed identity request for both calls.
    assert_eq!(idp.handle().stats().managed_identity, 1);
}

#[tokio::test]
async fn azure_with_entra_and_no_identity_endpoint_is_a_credential_error() {
    let fake = FakeOpenAi::spawn(Expect::Nothing).await;
    let mi = ManagedIdentityCredential::new(
        reqwest::Client::new(),
        ManagedIdentitySource::AppService {
            endpoint: url::Url::parse("http://127.0.0.1:9/msi/token").unwrap(),
            header: "h".into(),
        },
        None,
    );
    let m =
        model(&Endpoint::azure_v1_base(&fake.url), ModelAuth::Entra(Credential::ManagedIdentity(Arc::new(mi))), true);
    let (result, _) = complete(&m, &conversation()).await;
    assert!(matches!(result, Err(ModelError::Credential(_))), "{result:?}");
    assert!(fake.requests().is_empty(), "no request without a token");
}
