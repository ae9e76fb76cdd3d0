//! Acceptance 3: On-Behalf-Of. One exchange per user per token lifetime, never shared between
//! users; the identity provider or orders-api down gives a clear tool error, and service comes
//! back without restarting orders-mcp.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestStack, call, hops, is_error, sent_token, structured, text};

#[tokio::test]
async fn one_user_many_calls_one_exchange_and_users_never_share_a_token() {
    let stack = TestStack::spawn().await;
    let before = stack.stats();
    let alice = stack.client("alice").await;
    let mut alice_tokens = Vec::new();
    for i in 0..10 {
        let result = match i % 3 {
            0 => call(&alice, "list_orders", json!({})).await,
            1 => call(&alice, "get_order", json!({"id": "ORD-001"})).await,
            _ => call(&alice, "list_orders", json!({"status": "pending"})).await,
        };
        structured(&result);
        alice_tokens.push(hops(&result)[1].token.token_id_suffix.clone());
    }
    let after_alice = stack.stats();
    assert_eq!(after_alice.on_behalf_of - before.on_behalf_of, 1, "ten calls, one exchange");
    assert!(alice_tokens.iter().all(|t| *t == alice_tokens[0]), "every call used the cached token");
    // The client assertion came from the managed identity (no secret configured).
    assert!(after_alice.managed_identity > before.managed_identity);

    // Concurrent first calls by a second user still make a single exchange, for that user.
    let bob = stack.client("bob").await;
    let calls = (0..8).map(|_| call(&bob, "list_orders", json!({})));
    let results = futures::future::join_all(calls).await;
    assert_eq!(stack.stats().on_behalf_of - after_alice.on_behalf_of, 1);
    let bob_oid = stack.user_oid("bob");
    for result in &results {
        let api = &hops(result)[1];
        assert_eq!(api.token.oid, bob_oid, "bob's calls reach orders-api as bob");
        assert_ne!(api.token.token_id_suffix, alice_tokens[0], "bob never gets alice's token");
        assert_eq!(sent_token(result).unwrap()["token"]["oid"], bob_oid);
    }
    // And alice is still alice.
    let again = call(&alice, "list_orders", json!({})).await;
    assert_eq!(hops(&again)[1].token.oid, stack.user_oid("alice"));
    assert_eq!(stack.stats().on_behalf_of - before.on_behalf_of, 2);
}

#[tokio::test]
async fn a_client_secret_works_as_the_explicit_local_fallback() {
    let stack = TestStack::spawn_with(Options { use_client_secret: true, ..Options::default() }).await;
    let client = stack.client("alice").await;
    structured(&call(&client, "list_orders", json!({})).await);
    let stats = stack.stats();
    assert_eq!((stats.on_behalf_of, stats.managed_identity), (1, 0));
}

#[tokio::test]
async fn identity_provider_down_gives_a_clear_error_and_recovers_without_restart() {
    let mut stack = TestStack::spawn().await;
    let alice = stack.client("alice").await;
    let bob = stack.client("bob").await;
    structured(&call(&alice, "list_orders", json!({})).await);

    stack.stop_idp().await;
    // Alice's exchanged token is cached: she carries on while the IdP is down.
    structured(&call(&alice, "get_order", json!({"id": "ORD-001"})).await);
    // Bob needs an exchange now: it fails, and the tool result says why.
    let result = call(&bob, "list_orders", json!({})).await;
    assert!(is_error(&result));
    let message = text(&result);
    assert!(message.contains("could not obtain a token for orders-api on your behalf"), "{message}");
    assert!(message.contains("cannot reach the identity provider"), "{message}");
    assert!(!message.contains("http"), "no internal address (the token endpoint's) in the message: {message}");
    assert!(!message.contains("eyJ"), "no token in the message: {message}");
    assert_eq!(hops(&result).len(), 1, "orders-mcp's own hop is still reported");

    stack.start_idp().await;
    let result = call(&bob, "list_orders", json!({})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(hops(&result)[1].token.oid, stack.user_oid("bob"));
}

#[tokio::test]
async fn orders_api_down_gives_a_clear_error_and_readyz_says_not_ready() {
    let mut stack = TestStack::spawn().await;
    let readyz = format!("http://{}/readyz", stack.mcp_addr);
    assert_eq!(stack.http.get(&readyz).send().await.unwrap().status(), StatusCode::OK);
    let alice = stack.client("alice").await;
    let before = call(&alice, "get_order", json!({"id": "ORD-001"})).await;
    let validated = serde_json::to_value(&hops(&before)[1].token).unwrap();

    stack.api.stop().await;
    let result = call(&alice, "get_order", json!({"id": "ORD-001"})).await;
    assert!(is_error(&result));
    let message = text(&result);
    // What the model and the user read names no internal address (issue #15).
    assert!(message.contains("orders-api is unreachable"), "{message}");
    assert!(!message.contains(&stack.api.addr.to_string()), "orders-api's address shown: {message}");
    assert_eq!(hops(&result).len(), 1);
    // The token was obtained, the call was not made: what orders-mcp read from the token it
    // tried to send is what orders-api had validated of the same (cached) token before.
    let sent = sent_token(&result).unwrap();
    assert_eq!(sent["how"], "obo");
    assert_eq!(sent["token"], validated);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // past the cached "ready"
    let response = stack.http.get(&readyz).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:orders-copilot:problem:not-ready");
    assert!(problem["detail"].as_str().unwrap().contains("orders-api is not ready"), "{problem}");
    assert!(!problem["detail"].as_str().unwrap().contains("identity provider"), "{problem}");

    stack.api.restart().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // a readiness answer holds for a second
    assert_eq!(stack.http.get(&readyz).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(structured(&call(&alice, "get_order", json!({"id": "ORD-001"})).await)["id"], "ORD-001");
}

/// A cached exchanged token that orders-api refuses is forgotten and exchanged again, once:
/// here orders-api comes back expecting another audience, so the fresh token is refused too,
/// and the tool says why instead of looping; once orders-api is back to normal, the token
/// exchanged on that retry serves without another exchange.
#[tokio::test]
async fn a_refused_cached_token_is_exchanged_again_once() {
    let mut stack = TestStack::spawn().await;
    let alice = stack.client("alice").await;
    structured(&call(&alice, "list_orders", json!({})).await);
    assert_eq!(stack.stats().on_behalf_of, 1);

    stack
        .api
        .restart_with(&[
            ("ORDERS_API_APP_ID_URI", "api://orders-api-elsewhere"),
            ("ORDERS_API_CLIENT_ID", "00000000-0000-0000-0000-0000000000aa"),
        ])
        .await;
    let result = call(&alice, "list_orders", json!({})).await;
    assert!(is_error(&result));
    assert_eq!(text(&result), "orders-api refused the token: the token is for another audience");
    assert_eq!(stack.stats().on_behalf_of, 2, "the refused token was exchanged again, once");

    stack.api.restart().await;
    let result = call(&alice, "list_orders", json!({})).await;
    assert!(!is_error(&result), "{}", text(&result));
    assert_eq!(stack.stats().on_behalf_of, 2, "the token from the retry is cached");
}
