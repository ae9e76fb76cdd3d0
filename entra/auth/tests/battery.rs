//! Acceptance 1: the bad-token battery against axum routes protected by entra-auth, for a v1
//! resource (orders-api's shape) and a v2 resource (orders-mcp's shape).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

mod support;

use entra_emulator::testing::battery::{self, Expect, Target};
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use support::{AccessAsUser, ReadOrders};

async fn run_battery(resource_url: &str, target: Target<'_>, idp: &entra_emulator::Running) -> usize {
    let (valid, cases) = battery::cases(idp.handle(), &target).unwrap();
    let http = reqwest::Client::new();
    let url = format!("{resource_url}/protected");

    let ok = http.get(&url).bearer_auth(&valid).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the valid token must be accepted: {}", ok.text().await.unwrap());

    let mut failures = Vec::new();
    for case in &cases {
        let mut request = http.get(&url);
        if let Some(query) = &case.query {
            request = http.get(format!("{url}?{query}"));
        }
        for value in &case.authorization {
            request = request.header(AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let challenge = response.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        if let Err(e) = case.check(status, challenge.as_deref(), &body) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    cases.len()
}

#[tokio::test]
async fn every_bad_token_is_refused_by_a_v1_resource_and_a_valid_one_accepted() {
    let idp = support::emulator().await;
    let api = support::resource::<ReadOrders>(support::validator_config(&idp, "orders-api")).await;
    let target = Target { resource: "orders-api", client: "orders-mcp", user: "alice", scopes: &["Orders.Read"] };
    let count = run_battery(&api.url, target, &idp).await;
    assert!(count >= 40, "the battery has only {count} kinds");
}

#[tokio::test]
async fn every_bad_token_is_refused_by_a_v2_resource_and_a_valid_one_accepted() {
    let idp = support::emulator().await;
    let mcp = support::resource::<AccessAsUser>(support::validator_config(&idp, "orders-mcp")).await;
    let target = Target { resource: "orders-mcp", client: "chat-app", user: "bob", scopes: &["access_as_user"] };
    let count = run_battery(&mcp.url, target, &idp).await;
    assert!(count >= 40, "the battery has only {count} kinds");
}

#[tokio::test]
async fn the_battery_covers_both_outcomes_and_distinct_kinds() {
    let idp = support::emulator().await;
    let target = Target { resource: "orders-api", client: "orders-mcp", user: "alice", scopes: &["Orders.Read"] };
    let (_, cases) = battery::cases(idp.handle(), &target).unwrap();
    let mut names: Vec<_> = cases.iter().map(|c| c.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be distinct");
    for kind in [Expect::NoCredentials, Expect::BadRequest, Expect::Forbidden] {
        assert!(cases.iter().any(|c| c.expect == kind), "no {kind:?} case");
    }
    assert!(cases.iter().filter(|c| c.expect == Expect::Unauthorized).count() >= 35);
}

#[tokio::test]
async fn valid_tokens_from_the_emulator_token_endpoint_are_accepted_with_their_claims() {
    let idp = support::emulator().await;
    let api = support::resource::<ReadOrders>(support::validator_config(&idp, "orders-api")).await;
    let token = idp.handle().user_token("carol", "orders-mcp", "orders-api", &["Orders.Read"]).unwrap();
    let caller: entra_auth::validate::Caller = reqwest::Client::new()
        .get(format!("{}/protected", api.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = idp.handle().manifest();
    assert_eq!(caller.oid, m.user("carol").unwrap().oid);
    assert_eq!(caller.version, entra_auth::validate::TokenVersion::V1);
    assert_eq!(caller.client_id, m.app("orders-mcp").unwrap().client_id);
    assert_eq!(caller.roles, ["Orders.Admin"]);
    assert_eq!(caller.audience, "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local");
    assert!(caller.issuer.ends_with(&format!("/{}/", idp.handle().tenant_id())));
}

#[tokio::test]
async fn challenges_point_at_metadata_that_is_served() {
    let idp = support::emulator().await;
    let api = support::resource::<ReadOrders>(support::validator_config(&idp, "orders-api")).await;
    let response = reqwest::get(format!("{}/protected", api.url)).await.unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_string();
    assert!(!challenge.contains("error="), "no error code without credentials (RFC 6750 §3.1): {challenge}");
    let metadata_url = challenge.split("resource_metadata=\"").nth(1).unwrap().trim_end_matches('"');
    assert_eq!(metadata_url, format!("{}/.well-known/oauth-protected-resource/protected", api.url));
    let doc: serde_json::Value = reqwest::get(metadata_url).await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], format!("{}/protected", api.url));
    assert_eq!(doc["bearer_methods_supported"], serde_json::json!(["header"]));
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

/// With the identity provider unreachable and no keys yet, a token cannot be checked: 503, and
/// no `invalid_token` challenge, which would tell the client to throw away a token that may be
/// fine (RFC 6750 §3.1: `invalid_token` is for a token "expired, revoked, malformed, or invalid").
#[tokio::test]
async fn without_signing_keys_the_answer_is_503_without_blaming_the_token() {
    let idp = support::emulator().await;
    let mut config = support::validator_config(&idp, "orders-api");
    config.authority = url::Url::parse("http://127.0.0.1:9").unwrap();
    let api = support::resource::<ReadOrders>(config).await;
    let token = idp.handle().user_token("alice", "orders-mcp", "orders-api", &["Orders.Read"]).unwrap();
    let response =
        reqwest::Client::new().get(format!("{}/protected", api.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get(WWW_AUTHENTICATE), None);
}
