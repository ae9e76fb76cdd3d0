//! Conditional Access authentication context in the emulator, on the wire: the `claims` request
//! parameter at /authorize, the step-up page, `acrs` in the tokens, and On-Behalf-Of, which can
//! pass `acrs` on but never adds it. Sources:
//! "Claims challenges, claims requests and client capabilities" (learn.microsoft.com/entra/identity-platform/claims-challenge),
//! "Developer guide to Conditional Access authentication context" (learn.microsoft.com/entra/identity-platform/developer-guide-conditional-access-authentication-context),
//! "Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow", error response example
//! (learn.microsoft.com/entra/identity-platform/v2-oauth2-on-behalf-of-flow): `interaction_required`
//! with `claims`, which the middle tier passes to its client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entra_emulator::{EmulatorConfig, Running};
use serde_json::{Value, json};
use url::Url;

mod support;
use support::submit;

const CHAT_SECRET: &str = "chat-app-local-secret";
const MCP_SECRET: &str = "orders-mcp-local-secret";
const REDIRECT: &str = "http://localhost:3000/auth/callback";
const MCP_SCOPE: &str = "http://localhost:3001/mcp/access_as_user";
const STEP_UP: &str = r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#;

async fn start() -> Running {
    let config = EmulatorConfig::from_repository().unwrap();
    entra_emulator::Application::build(config).await.unwrap().spawn()
}

/// A browser: keeps the emulator's session cookie, shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn authorize_url(idp: &Running, claims: Option<&str>, challenge: &str) -> Url {
    let mut url = Url::parse(&format!("{}/{}/oauth2/v2.0/authorize", idp.url(), idp.handle().tenant_id())).unwrap();
    {
        let mut q = url.query_pairs_mut();
        let client_id = idp.handle().manifest().app("chat-app").unwrap().client_id.clone();
        q.append_pair("client_id", &client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", &format!("{MCP_SCOPE} offline_access openid"))
            .append_pair("state", "s")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(claims) = claims {
            q.append_pair("claims", claims);
        }
    }
    url
}

fn location_params(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(response.status(), 303, "expected a redirect back to the client");
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    location.query_pairs().into_owned().collect()
}

async fn token_request(idp: &Running, form: &[(&str, &str)]) -> (u16, Value) {
    let url = format!("{}/{}/oauth2/v2.0/token", idp.url(), idp.handle().tenant_id());
    let response = reqwest::Client::new().post(url).form(form).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn redeem(idp: &Running, code: &str, verifier: &str) -> Value {
    let client_id = idp.handle().manifest().app("chat-app").unwrap().client_id.clone();
    let (status, body) = token_request(
        idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("client_secret", CHAT_SECRET),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// orders-mcp's On-Behalf-Of for orders-api with `user_token`, asking for `claims` if given.
async fn mcp_obo(idp: &Running, user_token: &str, claims: Option<&str>) -> (u16, Value) {
    let m = idp.handle().manifest();
    let client_id = m.app("orders-mcp").unwrap().client_id.clone();
    let api_uri = m
        .app("orders-api")
        .unwrap()
        .identifier_uri
        .as_ref()
        .unwrap()
        .render(&entra_manifest::Vars::local(&m.tenant.id));
    let scope = format!("{api_uri}/.default");
    let mut form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("requested_token_use", "on_behalf_of"),
        ("client_id", client_id.as_str()),
        ("client_secret", MCP_SECRET),
        ("assertion", user_token),
        ("scope", scope.as_str()),
    ];
    if let Some(claims) = claims {
        form.push(("claims", claims));
    }
    token_request(idp, &form).await
}

fn assert_entra_error(body: &Value, error: &str, code: u32) {
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with(&format!("AADSTS{code}: ")), "{description}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
}

/// The user signs in, then the same browser comes back with the claims request: the step-up page
/// asks Alice to confirm, and only the confirmed code yields tokens with `acrs: ["c1"]`.
#[tokio::test]
async fn a_claims_request_for_an_auth_context_shows_the_step_up_page_and_the_token_carries_acrs() {
    let idp = start().await;
    let http = browser();
    let verifier = entra_auth::pkce::verifier().unwrap();
    let challenge = entra_auth::pkce::challenge(&verifier);

    // An ordinary sign-in first: its token has no `acrs`.
    let page = http.get(authorize_url(&idp, None, &challenge)).send().await.unwrap().text().await.unwrap();
    let signed_in = location_params(&submit(&http, &page, "data-user=\"alice\"").await);
    let plain = redeem(&idp, &signed_in["code"], &verifier).await;
    assert!(claims(plain["access_token"].as_str().unwrap()).get("acrs").is_none());

    // The step-up: the session is there, yet the user must confirm; no code before that.
    let response = http.get(authorize_url(&idp, Some(STEP_UP), &challenge)).send().await.unwrap();
    assert_eq!(response.status(), 200, "a page, not a code");
    let page = response.text().await.unwrap();
    assert!(page.contains("Confirm: Allow the agent to change orders for you"), "{page}");
    assert!(page.contains("Alice"), "{page}");
    let confirmed = location_params(&submit(&http, &page, "data-step-up=\"confirm\"").await);
    assert_eq!(confirmed["state"], "s");
    let stepped_up = redeem(&idp, &confirmed["code"], &verifier).await;
    let access = claims(stepped_up["access_token"].as_str().unwrap());
    assert_eq!(access["acrs"], json!(["c1"]), "{access}");

    // Refreshed while the step-up is fresh: still `acrs`.
    let client_id = idp.handle().manifest().app("chat-app").unwrap().client_id.clone();
    let (status, refreshed) = token_request(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", CHAT_SECRET),
            ("refresh_token", stepped_up["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["acrs"], json!(["c1"]));
}

/// A wrong password on the step-up page issues nothing; a forged confirmation without the
/// browser's session signs nobody in.
#[tokio::test]
async fn the_step_up_needs_the_session_and_the_user_s_password() {
    let idp = start().await;
    let http = browser();
    let challenge = entra_auth::pkce::challenge(&entra_auth::pkce::verifier().unwrap());
    let page = http.get(authorize_url(&idp, Some(STEP_UP), &challenge)).send().await.unwrap().text().await.unwrap();
    // No session yet: the sign-in page first, then the step-up page, not a code.
    let after_login = submit(&http, &page, "data-user=\"alice\"").await;
    assert_eq!(after_login.status(), 200);
    let step_up = after_login.text().await.unwrap();
    assert!(step_up.contains("data-step-up=\"confirm\""), "{step_up}");

    let wrong = step_up.replace(
        "value=\"confirm\"><input type=\"hidden\" name=\"password\" value=\"",
        "value=\"confirm\"><input type=\"hidden\" name=\"password\" value=\"x",
    );
    let refused = submit(&http, &wrong, "data-step-up=\"confirm\"").await;
    assert_eq!(refused.status(), 200);
    assert!(refused.text().await.unwrap().contains("AADSTS50126"));

    // Another browser (no session cookie) posting the same form gets the sign-in page.
    let stranger = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let forged = submit(&stranger, &step_up, "data-step-up=\"confirm\"").await;
    assert_eq!(forged.status(), 200);
    assert!(forged.text().await.unwrap().contains("data-user=\"alice\""));
}

/// Entra's authentication context ids are the tenant's (c1 ... c99, created by an administrator);
/// asking for one the tenant does not define, or a claims parameter that is not JSON, goes back
/// to the client as an error, before anyone signs in.
#[tokio::test]
async fn an_unknown_auth_context_or_malformed_claims_is_refused() {
    let idp = start().await;
    let http = browser();
    let challenge = entra_auth::pkce::challenge(&entra_auth::pkce::verifier().unwrap());
    for claims in [r#"{"access_token":{"acrs":{"essential":true,"value":"c7"}}}"#, "{not json"] {
        let response = http.get(authorize_url(&idp, Some(claims), &challenge)).send().await.unwrap();
        let params = location_params(&response);
        assert_eq!(params["error"], "invalid_request", "{params:?}");
        assert!(params["error_description"].starts_with("AADSTS9002313: "), "{params:?}");
    }
    // Client capabilities (`xms_cc`) alone ask for no step-up: the sign-in page, as usual.
    let capabilities = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;
    let page = http.get(authorize_url(&idp, Some(capabilities), &challenge)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("data-user=\"alice\""));
}

/// On-Behalf-Of cannot step a user up: asked for `acrs` the incoming token lacks, it answers
/// `interaction_required` with the claims the client must request interactively; with a
/// stepped-up token it passes `acrs` on, and only when asked for it.
#[tokio::test]
async fn on_behalf_of_passes_acrs_on_only_when_the_incoming_token_has_it() {
    let idp = start().await;
    let handle = idp.handle();
    let plain = handle.user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();

    let (status, body) = mcp_obo(&idp, &plain, Some(STEP_UP)).await;
    assert_eq!(status, 400, "{body}");
    assert_entra_error(&body, "interaction_required", 50076);
    let wanted: Value = serde_json::from_str(body["claims"].as_str().unwrap()).unwrap();
    assert_eq!(wanted, json!({"access_token": {"acrs": {"essential": true, "values": ["c1"]}}}));

    let mut stepped = handle.user_claims("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    stepped["acrs"] = json!(["c1"]);
    let stepped = handle.sign(&stepped).unwrap();
    let (status, body) = mcp_obo(&idp, &stepped, Some(STEP_UP)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["acrs"], json!(["c1"]));

    // Not asked for: not carried (acrs is a claim the client requests).
    let (status, body) = mcp_obo(&idp, &stepped, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(claims(body["access_token"].as_str().unwrap()).get("acrs").is_none());
}
