//! Acceptance 4: `passthrough` forwards the user's token for orders-mcp to orders-api. orders-api
//! refuses it (wrong audience) unless told to accept that audience; when it does, both hops saw
//! the very same token, which is exactly the problem.

use entra_auth::hop::How;
use serde_json::json;

use crate::helpers::{Options, TestStack, call, hops, is_error, sent_token, structured, text};

#[tokio::test]
async fn orders_api_refuses_a_passthrough_token_and_the_tool_result_says_why() {
    let stack = TestStack::spawn_with(Options { downstream: "passthrough", ..Options::default() }).await;
    let client = stack.client("alice").await;
    let result = call(&client, "list_orders", json!({})).await;
    assert!(is_error(&result));
    let message = text(&result);
    // orders-api's own reason (a v1-only validator refuses the v2 issuer before it looks at the
    // audience), then why, in this mode, that is to be expected.
    assert!(message.starts_with("orders-api refused the token: the token "), "{message}");
    assert!(message.contains("issued for orders-mcp, not for orders-api"), "{message}");
    assert!(message.contains("passthrough mode") && message.contains("ORDERS_MCP_DOWNSTREAM=obo"), "{message}");
    // orders-api validated nothing, so only orders-mcp's hop; and what it forwarded.
    let hops = hops(&result);
    assert_eq!(hops.len(), 1);
    let sent = sent_token(&result).unwrap();
    assert_eq!(sent["how"], "forwarded");
    assert_eq!(sent["token"]["aud"], stack.client_id("orders-mcp"));
    assert_eq!(stack.stats().on_behalf_of, 0, "no exchange in passthrough mode");
    // whoami reports the mode.
    assert_eq!(structured(&call(&client, "whoami", json!({})).await)["downstream"], "passthrough");
}

#[tokio::test]
async fn with_the_audience_allowed_passthrough_works_and_both_hops_saw_the_same_token() {
    let options = Options { downstream: "passthrough", api_allows_passthrough: true, ..Options::default() };
    let stack = TestStack::spawn_with(options).await;
    let client = stack.client("alice").await;
    let result = call(&client, "get_order", json!({"id": "ORD-001"})).await;
    assert_eq!(structured(&result)["owner_oid"], stack.user_oid("alice"));

    let hops = hops(&result);
    assert_eq!(hops.len(), 2);
    let (mcp, api) = (&hops[0], &hops[1]);
    assert_eq!(api.service, "orders-api");
    assert_eq!(api.how, How::Forwarded);
    assert_eq!(mcp.token, api.token, "the same token, claim for claim, at both hops");
    assert_eq!(api.token.aud, stack.client_id("orders-mcp"), "orders-api accepted a token that is not for it");
    assert_eq!(api.token.client_id, stack.client_id("chat-app"));
    assert_eq!(stack.stats().on_behalf_of, 0);
}
