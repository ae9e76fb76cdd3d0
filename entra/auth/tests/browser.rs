//! entra-auth's browser sign-in (`BrowserSignIn`: authorization code + PKCE, RFC 8252 loopback
//! redirect). Against the Entra emulator's real `/authorize` and `/token`, with the Azure CLI's
//! public client (registered redirect URI `http://localhost`, any port: "the port component ...
//! is ignored for the purposes of matching a redirect URI", https://learn.microsoft.com/entra/identity-platform/reply-url):
//! the person follows the printed address and signs in; the token is theirs, through the public
//! client. Against a stub token service (the emulator has no "deny" button): a refusal in the
//! redirect (`error=access_denied`) ends the sign-in saying so; an answer with another `state`
//! is refused and changes nothing; nobody answering ends it at the time limit, never a hang.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::json;
use tokio::sync::mpsc;
use url::Url;

use entra_auth::acquire::{AcquireError, BrowserSignIn, Prompt};
use entra_auth::validate::TokenValidator;

const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";
/// The Azure CLI's client: a public client in the repository's manifest, redirect URI `http://localhost`.
const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// A sign-in whose message goes to the returned channel.
fn sign_in(
    authority: &str,
    tenant: &str,
    client: &str,
    redirect: &str,
) -> (BrowserSignIn, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let prompt = Arc::new(move |message: &str| drop(tx.send(message.to_string())));
    let authority = Url::parse(authority).unwrap();
    (BrowserSignIn::new(authority, tenant, client, redirect, prompt).unwrap(), rx)
}

/// The address in the message: the `/authorize` request, and its parameters.
async fn authorize_address(messages: &mut mpsc::UnboundedReceiver<String>) -> (Url, HashMap<String, String>) {
    let message = messages.recv().await.unwrap();
    let url = Url::parse(message.split_whitespace().find(|w| w.starts_with("http")).unwrap()).unwrap();
    let params = url.query_pairs().into_owned().collect();
    (url, params)
}

/// The person opens the page and signs in as `login` at the emulator's login form; the browser
/// follows the redirect to the loopback listener. Returns that page's text.
async fn sign_in_at_emulator(mut messages: mpsc::UnboundedReceiver<String>, login: &str) -> String {
    let (url, params) = authorize_address(&mut messages).await;
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(params["redirect_uri"].starts_with("http://localhost:"), "{params:?}");
    let browser = reqwest::Client::new();
    let page = browser.get(url.clone()).send().await.unwrap();
    assert!(page.status().is_success(), "the login page");
    let mut form: Vec<(String, String)> = params.into_iter().collect();
    form.extend([("login".into(), login.into()), ("password".into(), login.into())]);
    let mut action = url.clone();
    action.set_query(None);
    browser.post(action).form(&form).send().await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn a_person_signed_in_in_the_browser_gets_their_token_through_the_public_client() {
    let idp = support::emulator().await;
    let (sign_in, messages) = sign_in(&idp.url(), idp.handle().tenant_id(), AZURE_CLI, "http://localhost");
    let person = tokio::spawn(sign_in_at_emulator(messages, "carol"));
    let token = sign_in.token(MCP_SCOPE).await.unwrap();
    let page = person.await.unwrap();
    assert!(page.contains("Signed in. You can close this tab"), "{page}");
    assert!(!page.contains(token.secret()));
    let validator = TokenValidator::new(support::validator_config(&idp, "orders-mcp"), reqwest::Client::new());
    let caller = validator.validate(token.secret()).await.unwrap();
    assert_eq!(caller.oid, idp.handle().manifest().user("carol").unwrap().oid);
    assert_eq!(caller.client_id, AZURE_CLI);
    // Cached: a second call signs nobody in again.
    sign_in.token(MCP_SCOPE).await.unwrap();
    assert_eq!(idp.handle().stats().authorization_code, 1);
}

/// A stub token service: `/token` answers a token for `code=good` (and records every form it got).
async fn stub() -> (String, Arc<Mutex<Vec<HashMap<String, String>>>>) {
    let forms: Arc<Mutex<Vec<HashMap<String, String>>>> = Arc::default();
    let seen = forms.clone();
    let app = Router::new().route(
        "/t/oauth2/v2.0/token",
        post(move |axum::Form(form): axum::Form<HashMap<String, String>>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(form);
                axum::Json(json!({"access_token": "a", "token_type": "Bearer", "expires_in": 3599}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (authority, forms)
}

/// Where the browser lands with `query` (state first); the page's status and text.
async fn redirect(params: &HashMap<String, String>, query: &[(&str, &str)]) -> (u16, String) {
    let mut url = Url::parse(&params["redirect_uri"]).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let answer = reqwest::get(url).await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Entra sends a refusal to the redirect URI as `error` and `error_description` ("Microsoft
/// identity platform and OAuth 2.0 authorization code flow", Error response,
/// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow): the sign-in
/// ends with it, and no code is redeemed.
#[tokio::test]
async fn a_refusal_in_the_redirect_ends_the_sign_in_saying_so() {
    let (authority, forms) = stub().await;
    let (sign_in, mut messages) = sign_in(&authority, "t", "c", "http://127.0.0.1/");
    let person = tokio::spawn(async move {
        let (_, params) = authorize_address(&mut messages).await;
        redirect(
            &params,
            &[
                ("error", "access_denied"),
                ("error_description", "AADSTS65004: User declined to consent to access the app."),
                ("state", &params["state"]),
            ],
        )
        .await
    });
    let error = sign_in.token("s/.default").await.unwrap_err();
    let (status, page) = person.await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("not completed"), "{page}");
    assert!(matches!(&error, AcquireError::Rejected { error, .. } if error == "access_denied"), "{error}");
    assert_eq!(error.codes(), [65004]);
    assert!(error.to_string().contains("declined to consent"), "{error}");
    assert!(forms.lock().unwrap().is_empty(), "nothing redeemed");
}

/// An answer whose `state` is not the one sent (a forged or stale redirect: RFC 6749 §10.12)
/// is refused and ignored: its code is never redeemed, and the sign-in goes on until the real
/// answer, whose code is redeemed with the verifier and the same redirect URI (RFC 7636 §4.5,
/// RFC 6749 §4.1.3).
#[tokio::test]
async fn an_answer_with_another_state_is_refused_and_changes_nothing() {
    let (authority, forms) = stub().await;
    let (sign_in, mut messages) = sign_in(&authority, "t", "c", "http://127.0.0.1/");
    let person = tokio::spawn(async move {
        let (_, params) = authorize_address(&mut messages).await;
        let forged = redirect(&params, &[("code", "forged"), ("state", "not-the-state")]).await;
        let stateless = redirect(&params, &[("error", "access_denied")]).await;
        let real = redirect(&params, &[("code", "good"), ("state", &params["state"])]).await;
        (params, forged, stateless, real)
    });
    let token = tokio::time::timeout(Duration::from_secs(30), sign_in.token("s/.default")).await.unwrap().unwrap();
    assert_eq!(token.secret(), "a");
    let (params, forged, stateless, real) = person.await.unwrap();
    assert_eq!(forged.0, 400, "{forged:?}");
    assert!(forged.1.contains("ignored"), "{forged:?}");
    assert_eq!(stateless.0, 400, "{stateless:?}");
    assert_eq!(real.0, 200);
    let forms = forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "only the real code: {forms:?}");
    assert_eq!(forms[0]["code"], "good");
    assert_eq!(forms[0]["grant_type"], "authorization_code");
    assert_eq!(forms[0]["redirect_uri"], params["redirect_uri"]);
    assert_eq!(entra_auth::pkce::challenge(&forms[0]["code_verifier"]), params["code_challenge"]);
}

/// Nobody signs in: the sign-in stops at its time limit with a clear error, not later, and the
/// listener is gone.
#[tokio::test]
async fn an_unfinished_sign_in_stops_at_its_time_limit() {
    let (authority, forms) = stub().await;
    let (sign_in, mut messages) = sign_in(&authority, "t", "c", "http://127.0.0.1/");
    let sign_in = sign_in.with_time_limit(Duration::from_secs(1));
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(30), sign_in.token("s/.default")).await.unwrap().unwrap_err();
    assert!(matches!(&error, AcquireError::NotCompleted(_)), "{error}");
    assert!(error.to_string().contains("within 1 s"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let (_, params) = authorize_address(&mut messages).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = reqwest::get(format!("{}?code=good&state={}", params["redirect_uri"], params["state"])).await;
    assert!(late.is_err(), "nobody listens any more");
    assert!(forms.lock().unwrap().is_empty());
}

/// Only loopback `http` redirect URIs: anything else would send the code off the machine.
#[test]
fn a_redirect_uri_off_the_loopback_interface_is_refused() {
    let prompt: Prompt = Arc::new(|_: &str| {});
    let authority = Url::parse("https://login.microsoftonline.com").unwrap();
    for uri in ["https://127.0.0.1/", "http://example.com/", "http://10.0.0.1/", "not a url"] {
        let error = BrowserSignIn::new(authority.clone(), "t", "c", uri, prompt.clone()).unwrap_err();
        assert!(error.to_string().contains("is not http://127.0.0.1 or http://localhost"), "{uri}: {error}");
    }
}
