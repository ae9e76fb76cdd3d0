//! Calls by an agent (Microsoft Entra Agent ID): the token orders-mcp's On-Behalf-Of gets for a
//! user whose token was an agent's names the agent as the prior actor (`act`, the emulator's
//! shape, see entra/emulator/tests/agent_id.rs). orders-api records it, authorizes on scopes and
//! roles only, and `ORDERS_API_AGENT_POLICY` can refuse what agents do.

use entra_auth::hop::{AgentNamedAs, Decision};
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp, assert_problem, hop_of, spawn_app, spawn_app_with};

const AGENT: &str = "98aefba4-0c15-419e-93ac-168d8ce3f23f";
const BLUEPRINT: &str = "413b01b4-ed3c-45fc-82c1-3b2cc97131b9";

/// orders-mcp's token for `user`, exchanged from the agent's token.
fn through_agent(app: &TestApp, user: &str, scopes: &[&str]) -> String {
    let mut claims = app.idp.handle().user_claims(user, "orders-mcp", "orders-api", scopes).unwrap();
    claims["act"] = json!({ "sub": AGENT, "xms_par_app_azp": BLUEPRINT });
    app.idp.handle().sign(&claims).unwrap()
}

fn order() -> Value {
    json!({ "product": "Keyboard", "quantity": 1 })
}

#[tokio::test]
async fn by_default_an_agent_acts_with_its_users_permissions_and_the_hop_names_it() {
    let app = spawn_app().await;
    let response = app.create(&through_agent(&app, "alice", ALL_SCOPES), &order()).await;
    assert_eq!(response.status(), 201);
    let hop = hop_of(&response).unwrap();
    assert_eq!(hop.token.oid, app.oid("alice"));
    let agent = hop.token.agent.unwrap();
    assert_eq!((agent.id.as_str(), agent.blueprint_id.as_str()), (AGENT, BLUEPRINT));
    assert_eq!(agent.named_as, AgentNamedAs::PriorActor);
}

#[tokio::test]
async fn read_only_lets_agents_read_and_refuses_their_writes_with_a_reason() {
    let app = spawn_app_with(&[("ORDERS_API_AGENT_POLICY", "read-only")]).await;
    let agent = through_agent(&app, "alice", ALL_SCOPES);
    assert_eq!(app.get("/api/orders/ORD-001", &agent).await.status(), 200);

    let refused = app.create(&agent, &order()).await;
    let hop = hop_of(&refused).unwrap();
    let body = assert_problem(refused, 403, "agent-refused").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(AGENT) && detail.contains("Alice Johnson") && detail.contains("read-only"), "{detail}");
    assert!(!detail.contains("  "), "one sentence, not a source line's indentation: {detail:?}");
    assert!(matches!(&hop.decision, Decision::Denied { reason } if reason == detail), "{hop:?}");
    assert_problem(app.cancel("ORD-001", &agent).await, 403, "agent-refused").await;

    // Alice's own token (no agent in it) still writes.
    assert_eq!(app.create(&app.token("alice", ALL_SCOPES), &order()).await.status(), 201);
}

/// "An agent token presented where a plain user token is required by policy is refused with a
/// clear reason."
#[tokio::test]
async fn users_only_refuses_every_agent_token() {
    let app = spawn_app_with(&[("ORDERS_API_AGENT_POLICY", "users-only")]).await;
    let body = assert_problem(
        app.get("/api/orders/ORD-001", &through_agent(&app, "alice", ALL_SCOPES)).await,
        403,
        "agent-refused",
    )
    .await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("a user's own token only") && !detail.contains("  "), "{detail:?}");
    assert_eq!(app.get("/api/orders/ORD-001", &app.token("alice", ALL_SCOPES)).await.status(), 200);
}

/// No authorization on `xms_par_app_azp` or the agent: a token claiming an agent parent gets
/// exactly its scopes (here read only), whatever the parent is.
#[tokio::test]
async fn naming_a_blueprint_grants_nothing() {
    let app = spawn_app().await;
    let mut claims = app.idp.handle().user_claims("alice", "orders-mcp", "orders-api", &["Orders.Read"]).unwrap();
    claims["xms_par_app_azp"] = json!(BLUEPRINT);
    let token = app.idp.handle().sign(&claims).unwrap();
    assert_eq!(app.get("/api/orders/ORD-001", &token).await.status(), 200);
    assert_problem(app.create(&token, &order()).await, 403, "insufficient-scope").await;
}

/// The agent's token after Alice stepped up: `acrs` names the approval's authentication context.
fn through_agent_stepped_up(app: &TestApp, user: &str, acrs: &[&str]) -> String {
    let mut claims = app.idp.handle().user_claims(user, "orders-mcp", "orders-api", ALL_SCOPES).unwrap();
    claims["act"] = json!({ "sub": AGENT, "xms_par_app_azp": BLUEPRINT });
    claims["acrs"] = json!(acrs);
    app.idp.handle().sign(&claims).unwrap()
}

/// The claims challenge of "Claims challenges, claims requests and client capabilities"
/// (learn.microsoft.com/entra/identity-platform/claims-challenge): `401`, `WWW-Authenticate:
/// Bearer realm="<tenant>", authorization_uri="...", error="insufficient_claims", claims="<base64>"`,
/// the claims being the request for the authentication context ("Developer guide to
/// Conditional Access authentication context": `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`).
#[tokio::test]
async fn approved_writes_challenges_an_agent_write_without_the_step_up() {
    use base64::Engine;
    let app = spawn_app_with(&[("ORDERS_API_AGENT_POLICY", "approved-writes")]).await;
    let agent = through_agent(&app, "alice", ALL_SCOPES);
    // Reads need no step-up.
    assert_eq!(app.get("/api/orders/ORD-001", &agent).await.status(), 200);

    let refused = app.create(&agent, &order()).await;
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_string();
    let hop = hop_of(&refused).unwrap();
    let body = assert_problem(refused, 401, "step-up-required").await;
    let authorize = format!("{}/{}/oauth2/v2.0/authorize", app.idp.url(), app.idp.handle().tenant_id());
    let tid = app.idp.handle().tenant_id();
    let prefix =
        format!("Bearer realm=\"{tid}\", authorization_uri=\"{authorize}\", error=\"insufficient_claims\", claims=\"");
    assert!(challenge.starts_with(&prefix), "{challenge}");
    let encoded = challenge[prefix.len()..].strip_suffix('"').unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(claims, json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}}));
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("needs step-up c1: ") && detail.contains("Alice Johnson"), "{detail}");
    assert!(!detail.contains(&agent), "no token in the body");
    assert!(matches!(&hop.decision, Decision::Denied { reason } if reason == detail), "{hop:?}");
    assert_eq!(app.cancel("ORD-001", &agent).await.status(), 401);

    // Another context than the one configured is not the approval.
    let other = through_agent_stepped_up(&app, "alice", &["c2"]);
    assert_eq!(app.create(&other, &order()).await.status(), 401);
    // The stepped-up token writes, and the hop shows the step-up.
    let created = app.create(&through_agent_stepped_up(&app, "alice", &["c1"]), &order()).await;
    assert_eq!(created.status(), 201);
    assert_eq!(hop_of(&created).unwrap().token.acrs, ["c1"]);
    // Alice's own token (no agent) needs no step-up.
    assert_eq!(app.create(&app.token("alice", ALL_SCOPES), &order()).await.status(), 201);
}

/// The approval is proof only inside the validated token: headers claiming it (`acrs`, a claims
/// request) count for nothing; the write is still challenged.
#[tokio::test]
async fn approval_claimed_anywhere_but_the_validated_token_counts_for_nothing() {
    let app = spawn_app_with(&[("ORDERS_API_AGENT_POLICY", "approved-writes")]).await;
    let agent = through_agent(&app, "alice", ALL_SCOPES);
    let response = app
        .request(reqwest::Method::POST, "/api/orders", &agent)
        .header("acrs", "c1")
        .header("x-ms-claims", r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#)
        .header("x-approved-by", "alice")
        .json(&order())
        .send()
        .await
        .unwrap();
    assert_problem(response, 401, "step-up-required").await;
}
