//! entra-auth's device-code sign-in (`DeviceCodeSignIn`, RFC 8628) against the Entra emulator's
//! device authorization and token endpoints: a person approves the code at the verification
//! page while the client polls (the token is the person's, through the public client); a
//! declined or expired code ends the sign-in with what happened, never a hang. And, against a
//! stub token service, that the client waits `interval` between polls and 5 s more after
//! `slow_down` (RFC 8628 §3.5), which the emulator never sends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;

use entra_auth::acquire::{AcquireError, DeviceCodeSignIn};
use entra_auth::validate::TokenValidator;
use entra_emulator::{EmulatorConfig, Running};
use tokio::sync::mpsc;
use url::Url;

const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";
/// The Azure CLI's client: a public client in the repository's manifest.
const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

async fn emulator(lifetime: Duration) -> Running {
    let mut config = EmulatorConfig::from_repository().unwrap();
    config.device_poll_interval = Duration::from_secs(1);
    config.device_code_lifetime = lifetime;
    entra_emulator::Application::build(config).await.unwrap().spawn()
}

/// A sign-in whose message goes to the returned channel.
fn sign_in(idp: &Running) -> (DeviceCodeSignIn, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let prompt = Arc::new(move |message: &str| drop(tx.send(message.to_string())));
    let authority = Url::parse(&idp.url()).unwrap();
    (DeviceCodeSignIn::new(authority, idp.handle().tenant_id(), AZURE_CLI, prompt).unwrap(), rx)
}

/// The person reads the message, opens the page and enters the code: approves as `login`, or declines.
async fn answer(mut messages: mpsc::UnboundedReceiver<String>, login: Option<&str>) {
    let message = messages.recv().await.unwrap();
    let page = message.split_whitespace().find(|w| w.starts_with("http")).unwrap().to_string();
    let code = message.split("enter the code ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let form: Vec<(&str, &str)> = match login {
        Some(login) => vec![("user_code", &code), ("login", login), ("password", login), ("decision", "approve")],
        None => vec![("user_code", &code), ("decision", "decline")],
    };
    let done = reqwest::Client::new().post(&page).form(&form).send().await.unwrap().text().await.unwrap();
    assert!(done.contains("signed in") || done.contains("cancelled"), "{done}");
}

#[tokio::test]
async fn an_approved_code_gives_the_persons_token_through_the_public_client() {
    let idp = emulator(Duration::from_secs(900)).await;
    let (sign_in, messages) = sign_in(&idp);
    let person = tokio::spawn(answer(messages, Some("carol")));
    let token = sign_in.token(MCP_SCOPE).await.unwrap();
    person.await.unwrap();
    let validator = TokenValidator::new(support::validator_config(&idp, "orders-mcp"), reqwest::Client::new());
    let caller = validator.validate(token.secret()).await.unwrap();
    assert_eq!(caller.oid, idp.handle().manifest().user("carol").unwrap().oid);
    assert_eq!(caller.client_id, AZURE_CLI);
    // Cached: a second call signs nobody in again.
    sign_in.token(MCP_SCOPE).await.unwrap();
    assert_eq!(idp.handle().stats().device_code, 1);
}

#[tokio::test]
async fn a_declined_code_ends_the_sign_in_saying_so() {
    let idp = emulator(Duration::from_secs(900)).await;
    let (sign_in, messages) = sign_in(&idp);
    let person = tokio::spawn(answer(messages, None));
    let error = sign_in.token(MCP_SCOPE).await.unwrap_err();
    person.await.unwrap();
    assert!(matches!(&error, AcquireError::Rejected { error, .. } if error == "authorization_declined"), "{error}");
    assert!(error.to_string().contains("declined"), "{error}");
}

/// Nobody answers: the client stops when the code expires (`expires_in`), not later.
#[tokio::test]
async fn an_unanswered_code_ends_when_it_expires() {
    let idp = emulator(Duration::from_secs(3)).await;
    let (sign_in, _messages) = sign_in(&idp);
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(30), sign_in.token(MCP_SCOPE)).await.unwrap().unwrap_err();
    assert!(matches!(&error, AcquireError::Rejected { error, .. } if error == "expired_token"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

/// A token service that asks to slow down once, recording when each poll came.
#[tokio::test]
async fn polls_wait_the_interval_and_five_seconds_more_after_slow_down() {
    let polls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = polls.clone();
    let authority = stub_token_service(
        1,
        post(move || {
            let seen = seen.clone();
            async move {
                let mut polls = seen.lock().unwrap();
                polls.push(Instant::now());
                if polls.len() == 1 {
                    let body = json!({"error": "slow_down", "error_description": "poll less often"});
                    (StatusCode::BAD_REQUEST, axum::Json(body))
                } else {
                    (
                        StatusCode::OK,
                        axum::Json(json!({"access_token": "a", "token_type": "Bearer", "expires_in": 3599})),
                    )
                }
            }
        }),
    )
    .await;
    let sign_in = DeviceCodeSignIn::new(authority, "t", "c", Arc::new(|_: &str| {})).unwrap();
    let started = Instant::now();
    let token = sign_in.token("s/.default").await.unwrap();
    assert_eq!(token.secret(), "a");
    let polls = polls.lock().unwrap().clone();
    assert_eq!(polls.len(), 2);
    assert!(polls[0] - started >= Duration::from_secs(1), "the interval before the first poll");
    assert!(polls[1] - polls[0] >= Duration::from_secs(6), "1 s + 5 s after slow_down: {:?}", polls[1] - polls[0]);
}

/// A tenant whose Conditional Access blocks the device code flow ("Microsoft recommends
/// blocking device code flow wherever possible": learn.microsoft.com/entra/identity/
/// conditional-access/concept-authentication-flows) answers the poll with AADSTS53003; the
/// error says what to ask for instead of a bare code.
#[tokio::test]
async fn a_sign_in_blocked_by_conditional_access_says_why() {
    let blocked = post(|| async {
        let body = json!({"error": "invalid_grant", "error_codes": [53003],
                          "error_description": "AADSTS53003: Access has been blocked by Conditional Access policies."});
        (StatusCode::BAD_REQUEST, axum::Json(body))
    });
    let authority = stub_token_service(0, blocked).await;
    let sign_in = DeviceCodeSignIn::new(authority, "t", "provisioning-client", Arc::new(|_: &str| {})).unwrap();
    let error = sign_in.token("s/.default").await.unwrap_err().to_string();
    assert!(error.contains("AADSTS53003"), "{error}");
    assert!(error.contains("block the device code flow") && error.contains("provisioning-client"), "{error}");
}

/// A device-code service at an authority of its own for tenant `t`: it hands out a code to poll
/// every `interval` seconds and answers the polls with `token`.
async fn stub_token_service(interval: u64, token: axum::routing::MethodRouter) -> Url {
    let app = Router::new()
        .route(
            "/t/oauth2/v2.0/devicecode",
            post(move || async move {
                axum::Json(json!({"device_code": "d", "user_code": "U", "verification_uri": "https://example.test",
                                  "expires_in": 60, "interval": interval, "message": "enter U"}))
            }),
        )
        .route("/t/oauth2/v2.0/token", token);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    authority
}
