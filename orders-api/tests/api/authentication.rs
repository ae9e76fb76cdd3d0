//! Acceptance 1 and the authorization rules: every protected route refuses the foundation's
//! whole bad-token battery, accepts the valid token, and applies the scope and role rules.

use entra_emulator::testing::battery::{self, Case, Target};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use serde_json::json;

use crate::helpers::{ALL_SCOPES, TestApp, assert_problem, hop_of, spawn_app, spawn_app_with};

/// Sends one battery case to a route; returns the check's verdict.
async fn send_case(app: &TestApp, method: &Method, path: &str, case: &Case) -> Result<(), String> {
    let mut url = app.url(path);
    if let Some(query) = &case.query {
        url.push_str(&format!("?{query}"));
    }
    let mut request = app.client.request(method.clone(), url);
    for value in &case.authorization {
        let value = HeaderValue::from_bytes(value).map_err(|e| format!("{}: unsendable header: {e}", case.name))?;
        request = request.header(AUTHORIZATION, value);
    }
    if *method == Method::POST && path == "/api/orders" {
        request = request.json(&json!({ "product": "Battery", "quantity": 1 }));
    }
    let response = request.send().await.map_err(|e| format!("{}: {e}", case.name))?;
    let status = response.status().as_u16();
    let challenge = response.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(String::from);
    let hop = hop_of(&response);
    let body = response.text().await.unwrap_or_default();
    case.check(status, challenge.as_deref(), &body)?;
    // A 401 means the token was not valid, so there is nothing to report; a 403 is a valid
    // token refused, and the hop must say so.
    match (status, hop) {
        (401, Some(_)) => Err(format!("{}: hop record on a 401", case.name)),
        (403, None) => Err(format!("{}: no hop record on a 403", case.name)),
        (403, Some(hop)) if !matches!(hop.decision, entra_auth::hop::Decision::Denied { .. }) => {
            Err(format!("{}: a 403 whose hop says allowed", case.name))
        }
        _ => Ok(()),
    }
}

async fn new_order(app: &TestApp, token: &str) -> String {
    let response = app.create(token, &json!({ "product": "Target", "quantity": 1 })).await;
    assert_eq!(response.status(), 201);
    response.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_protected_route_refuses_the_whole_battery_and_accepts_the_valid_token() {
    let app = spawn_app().await;
    let customer =
        Target { resource: "orders-api", client: "orders-mcp", user: "alice", scopes: &["Orders.ReadWrite"] };
    let admin = Target { user: "carol", ..customer };
    let (alice_valid, alice_cases) = battery::cases(app.idp.handle(), &customer).unwrap();
    let (carol_valid, carol_cases) = battery::cases(app.idp.handle(), &admin).unwrap();
    let order = new_order(&app, &alice_valid).await;

    let routes: Vec<(Method, String, &str, &Vec<Case>)> = vec![
        (Method::GET, "/api/orders".into(), &alice_valid, &alice_cases),
        (Method::GET, format!("/api/orders/{order}"), &alice_valid, &alice_cases),
        (Method::POST, "/api/orders".into(), &alice_valid, &alice_cases),
        (Method::POST, format!("/api/orders/{order}/cancel"), &alice_valid, &alice_cases),
        (Method::DELETE, format!("/api/orders/{order}"), &carol_valid, &carol_cases),
    ];
    let mut failures = Vec::new();
    let mut sent = 0;
    for (method, path, valid, cases) in &routes {
        for case in cases.iter() {
            sent += 1;
            if let Err(failure) = send_case(&app, method, path, case).await {
                failures.push(format!("{method} {path}: {failure}"));
            }
        }
        // The same route accepts the valid token: the battery is not passing by refusing everything.
        let response = app
            .request(method.clone(), path, valid)
            .json(&json!({ "product": "Ok", "quantity": 1 }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{method} {path} refused the valid token: {}", response.status());
    }
    assert!(sent >= 5 * 60, "the battery is smaller than expected: {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} bad requests were not refused properly:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn scopes_and_roles_decide_what_each_caller_may_do() {
    let app = spawn_app().await;
    let read_only = app.token("alice", &["Orders.Read"]);
    let read_write_only = app.token("alice", &["Orders.ReadWrite"]);
    let alice = app.token("alice", ALL_SCOPES);
    let carol_read_only = app.token("carol", &["Orders.Read"]);
    let carol = app.token("carol", ALL_SCOPES);
    let order = new_order(&app, &alice).await;

    // Orders.Read reads, and nothing more.
    assert_eq!(app.get("/api/orders", &read_only).await.status(), 200);
    assert_eq!(app.get(&format!("/api/orders/{order}"), &read_only).await.status(), 200);
    let refused = app.create(&read_only, &json!({ "product": "X", "quantity": 1 })).await;
    // The challenge names the scope as clients request it: the full value in the resource
    // metadata's scopes_supported, not the bare name Entra would not recognise.
    let challenge = refused.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_string();
    assert!(
        challenge.contains(
            "error=\"insufficient_scope\", scope=\"api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.ReadWrite\""
        ),
        "{challenge}"
    );
    let problem = assert_problem(refused, 403, "insufficient-scope").await;
    assert!(problem["detail"].as_str().unwrap().contains("Orders.ReadWrite"), "{problem}");
    assert_problem(app.cancel(&order, &read_only).await, 403, "insufficient-scope").await;

    // Orders.ReadWrite alone also reads, creates and cancels.
    assert_eq!(app.get(&format!("/api/orders/{order}"), &read_write_only).await.status(), 200);
    assert_eq!(app.create(&read_write_only, &json!({ "product": "X", "quantity": 1 })).await.status(), 201);
    assert_eq!(app.cancel(&order, &read_write_only).await.status(), 200);

    // Delete needs the Orders.Admin role *and* Orders.ReadWrite. A missing role is a 403 that
    // names it and does not invite a scope step-up: alice already holds Orders.ReadWrite, and
    // `insufficient_scope` would send an MCP client to ask for it again, in a loop.
    let refused = app.delete(&order, &alice).await;
    assert_eq!(refused.headers().get(WWW_AUTHENTICATE), None, "no challenge for a role");
    let problem = assert_problem(refused, 403, "missing-role").await;
    assert!(problem["detail"].as_str().unwrap().contains("Orders.Admin app role"), "{problem}");
    assert_problem(app.delete(&order, &carol_read_only).await, 403, "insufficient-scope").await;
    assert_eq!(app.get(&format!("/api/orders/{order}"), &alice).await.status(), 200, "refused deletes deleted");
    assert_eq!(app.delete(&order, &carol).await.status(), 204);
    assert_eq!(app.get(&format!("/api/orders/{order}"), &alice).await.status(), 404);
}

/// Every order route, for `order`.
fn order_routes(order: &str) -> [(Method, String); 5] {
    [
        (Method::GET, "/api/orders".to_string()),
        (Method::GET, format!("/api/orders/{order}")),
        (Method::POST, "/api/orders".to_string()),
        (Method::POST, format!("/api/orders/{order}/cancel")),
        (Method::DELETE, format!("/api/orders/{order}")),
    ]
}

/// `method path` with `token`, carrying a create's body (routes that take none ignore it).
async fn call(app: &TestApp, method: &Method, path: &str, token: &str) -> reqwest::Response {
    app.request(method.clone(), path, token).json(&json!({ "product": "X", "quantity": 1 })).send().await.unwrap()
}

#[tokio::test]
async fn app_only_tokens_are_refused_on_every_route() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let order = new_order(&app, &alice).await;
    let app_token = app.idp.handle().app_token("orders-mcp", "orders-api").unwrap();
    for (method, path) in order_routes(&order) {
        let response = call(&app, &method, &path, &app_token).await;
        let problem = assert_problem(response, 403, "insufficient-scope").await;
        assert!(problem["detail"].as_str().unwrap().contains("app-only"), "{method} {path}: {problem}");
    }
    assert_eq!(
        app.get(&format!("/api/orders/{order}"), &alice).await.json::<serde_json::Value>().await.unwrap()["status"],
        "pending"
    );
}

/// "The actor (client app) is authorized" (learn.microsoft.com/entra/identity-platform/
/// claims-validation): a token for orders-api with alice's scopes, but issued to another app
/// (chat-app, or the Azure CLI: any app someone consented to `Orders.*` for), is refused on every
/// route, and the hop says why; the same user through orders-mcp is served.
#[tokio::test]
async fn a_users_token_from_any_client_but_orders_mcp_is_refused() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let order = new_order(&app, &alice).await;
    let before = app.list_all(&alice, "").await.len();
    for client in ["chat-app", "azure-cli"] {
        let token = app.idp.handle().user_token("alice", client, "orders-api", ALL_SCOPES).unwrap();
        for (method, path) in order_routes(&order) {
            let response = call(&app, &method, &path, &token).await;
            let hop = hop_of(&response).unwrap_or_else(|| panic!("{client} {method} {path}: the hop is reported"));
            assert_eq!(hop.token.oid, app.oid("alice"));
            assert!(
                matches!(&hop.decision, entra_auth::hop::Decision::Denied { reason } if reason.contains("orders-mcp")),
                "{client} {method} {path}: {hop:?}"
            );
            let problem = assert_problem(response, 403, "client-refused").await;
            assert!(problem["detail"].as_str().unwrap().contains("another application"), "{problem}");
        }
    }
    // Refused for its client before its scopes: a challenge would send that app to get consent
    // for a scope that could not help it.
    let read_only = app.idp.handle().user_token("alice", "chat-app", "orders-api", &["Orders.Read"]).unwrap();
    let response = app.create(&read_only, &json!({ "product": "X", "quantity": 1 })).await;
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none(), "no challenge");
    assert_problem(response, 403, "client-refused").await;
    let unchanged = app.get(&format!("/api/orders/{order}"), &alice).await;
    assert_eq!(unchanged.json::<serde_json::Value>().await.unwrap()["status"], "pending");
    assert_eq!(app.list_all(&alice, "").await.len(), before, "a refused create created nothing");
}

/// orders-mcp's own token (v2, aud = its client id), forwarded unchanged.
fn passthrough_token(app: &TestApp, user: &str) -> String {
    app.idp.handle().user_token(user, "chat-app", "orders-mcp", &["access_as_user"]).unwrap()
}

#[tokio::test]
async fn a_passthrough_token_is_refused_by_default() {
    let app = spawn_app().await;
    let token = passthrough_token(&app, "alice");
    let response = app.get("/api/orders", &token).await;
    let challenge = response.headers().get(WWW_AUTHENTICATE).unwrap().to_str().unwrap().to_string();
    assert!(hop_of(&response).is_none());
    assert_problem(response, 401, "invalid-token").await;
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

#[tokio::test]
async fn a_passthrough_token_is_accepted_only_when_its_audience_is_allowed_and_the_hop_says_passthrough() {
    let mcp_client_id = {
        let manifest = entra_manifest::Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap();
        manifest.app("orders-mcp").unwrap().client_id.clone()
    };
    let app = spawn_app_with(&[("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE", &mcp_client_id)]).await;
    let token = passthrough_token(&app, "alice");
    let response = app.get("/api/orders", &token).await;
    assert_eq!(response.status(), 200);
    let hop = hop_of(&response).unwrap();
    assert_eq!(hop.how, entra_auth::hop::How::Forwarded);
    assert_eq!(hop.token.aud, mcp_client_id);
    assert_eq!(hop.token.ver, "2.0");
    assert_eq!(hop.token.scp, ["access_as_user"], "the hop shows the token as it was, not the grant");
    let orders: serde_json::Value = response.json().await.unwrap();
    assert!(orders["orders"].as_array().unwrap().iter().all(|o| o["owner_oid"] == app.oid("alice")));

    // Passthrough never grants the admin role, even to carol.
    let carol = passthrough_token(&app, "carol");
    assert_problem(app.delete("ORD-001", &carol).await, 403, "missing-role").await;
    // Ordinary OBO tokens still work, and say so.
    let obo = app.get("/api/orders", &app.token("alice", ALL_SCOPES)).await;
    assert_eq!(hop_of(&obo).unwrap().how, entra_auth::hop::How::Obo);
}
