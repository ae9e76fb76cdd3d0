//! One test per MCP revision orders-mcp serves (2026-07-28, 2025-11-25, 2025-06-18), in raw
//! Streamable HTTP JSON-RPC as each revision's clients send it: find the server, list the tools,
//! call one with a user's token, the headers the revision requires, and its auth challenge.
//!
//! 2026-07-28 has no `initialize` and no sessions: every request carries its revision and the
//! client's identity in `_meta` and mirrors `method` and `params.name` in the `Mcp-Method` and
//! `Mcp-Name` headers ("Streamable HTTP", "Request Metadata";
//! https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http).
//! The two earlier revisions open with `initialize`, which this stateless server answers without
//! assigning a session.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::TestStack;

const MODERN: &str = "2026-07-28";
/// `HeaderMismatch` (2026-07-28, "Server Validation"; renumbered from -32001 in this revision).
const HEADER_MISMATCH: i64 = -32020;
/// `UnsupportedProtocolVersionError` (2026-07-28, "Protocol Version Negotiation").
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A POST to `/mcp`: the body, the bearer token if any, and extra headers.
async fn post(stack: &TestStack, token: Option<&str>, headers: &[(&str, &str)], body: &Value) -> Reply {
    let mut request = stack
        .http
        .post(&stack.mcp_url)
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Reply { status, headers, body }
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: header::HeaderMap,
    body: Value,
}

/// The `_meta` every 2026-07-28 request carries ("Versioning", "Protocol Version Negotiation").
fn modern_meta(revision: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": revision,
        "io.modelcontextprotocol/clientInfo": {"name": "revision-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn modern(id: i64, method: &str, mut params: Value) -> Value {
    params["_meta"] = modern_meta(MODERN);
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn legacy(id: i64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn tool_names(result: &Value) -> Vec<String> {
    let tools = result["tools"].as_array().unwrap_or_else(|| panic!("no tools: {result}"));
    tools.iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

// Sorted by name: a deterministic order (2026-07-28 "Tools": servers SHOULD list tools in one).
const TOOLS: [&str; 5] = ["cancel_order", "create_order", "get_order", "list_orders", "whoami"];

/// The unauthenticated challenge does not depend on the revision: 401 naming the scope and pointing
/// at the RFC 9728 document (2026-07-28 "Authorization Server Discovery": the `resource_metadata` parameter of
/// `WWW-Authenticate`), whose `scopes_supported` carries no `offline_access` (2026-07-28
/// "Refresh Tokens": protected resources SHOULD NOT list it).
async fn assert_challenge(stack: &TestStack, headers: &[(&str, &str)], body: &Value) {
    let reply = post(stack, None, headers, body).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    let challenge = reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    let metadata_url = format!("http://{}/.well-known/oauth-protected-resource/mcp", stack.mcp_addr);
    assert!(challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")), "{challenge}");
    let metadata: Value = stack.http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], stack.mcp_url);
    let scopes = metadata["scopes_supported"].as_array().unwrap();
    assert!(!scopes.is_empty() && !scopes.iter().any(|s| s == "offline_access"), "{metadata}");
    // A 401 names no scope, so clients request every scope in `scopes_supported` ("Scope
    // Selection Strategy"): the full value, under the Application ID URI.
    assert!(!challenge.contains("scope="), "{challenge}");
    assert_eq!(scopes[0], format!("{}/access_as_user", stack.mcp_url), "{metadata}");
}

#[tokio::test]
async fn revision_2026_07_28_is_stateless_with_discover_and_standard_headers() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let headers = |method: &'static str| vec![("mcp-protocol-version", MODERN), ("mcp-method", method)];

    // server/discover: the versions, capabilities and identity, and no session.
    let discover =
        post(&stack, Some(&token), &headers("server/discover"), &modern(1, "server/discover", json!({}))).await;
    assert_eq!(discover.status, StatusCode::OK, "{discover:?}");
    assert!(!discover.headers.contains_key("mcp-session-id"), "{discover:?}");
    let result = &discover.body["result"];
    assert_eq!(result["resultType"], "complete", "{result}");
    let versions = result["supportedVersions"].as_array().unwrap();
    for revision in [MODERN, "2025-11-25", "2025-06-18"] {
        assert!(versions.iter().any(|v| v == revision), "{revision} missing: {result}");
    }
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "orders-mcp", "{result}");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"].is_string(), "{result}");

    // tools/list: the tools, with the caching hints 2026-07-28 requires ("Caching": `ttlMs` and
    // `cacheScope`; `public` because every user gets the same list).
    let list = post(&stack, Some(&token), &headers("tools/list"), &modern(2, "tools/list", json!({}))).await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    let result = &list.body["result"];
    assert_eq!(tool_names(result), TOOLS, "{result}");
    assert!(result["ttlMs"].is_u64() && result["cacheScope"] == "public", "{result}");

    // tools/call as the user, with `Mcp-Name`; an Mcp-Session-Id from an older client is ignored.
    let call = modern(3, "tools/call", json!({"name": "get_order", "arguments": {"id": "ORD-001"}}));
    let mut call_headers = headers("tools/call");
    call_headers.extend([("mcp-name", "get_order"), ("mcp-session-id", "left-over")]);
    let reply = post(&stack, Some(&token), &call_headers, &call).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(!reply.headers.contains_key("mcp-session-id"), "{reply:?}");
    let result = &reply.body["result"];
    assert_eq!(result["resultType"], "complete", "{result}");
    assert_eq!(result["structuredContent"]["id"], "ORD-001", "{result}");
    let whoami = modern(4, "tools/call", json!({"name": "whoami", "arguments": {}}));
    let mut whoami_headers = headers("tools/call");
    whoami_headers.push(("mcp-name", "whoami"));
    let reply = post(&stack, Some(&token), &whoami_headers, &whoami).await;
    assert_eq!(reply.body["result"]["structuredContent"]["oid"], stack.user_oid("alice"), "{reply:?}");

    // Headers that disagree with the body, or are missing, are refused with 400 and
    // HeaderMismatch ("Server Validation"): an intermediary may have routed on the header.
    let refusals: [(&str, Vec<(&str, &str)>); 5] = [
        (
            "Mcp-Name names another tool",
            vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", "cancel_order")],
        ),
        ("no Mcp-Name", vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/call")]),
        (
            "Mcp-Method names another method",
            vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/list"), ("mcp-name", "get_order")],
        ),
        ("no Mcp-Method", vec![("mcp-protocol-version", MODERN), ("mcp-name", "get_order")]),
        (
            "MCP-Protocol-Version disagrees with _meta",
            vec![("mcp-protocol-version", "2025-11-25"), ("mcp-method", "tools/call"), ("mcp-name", "get_order")],
        ),
    ];
    for (why, headers) in refusals {
        let reply = post(&stack, Some(&token), &headers, &call).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{why}: {reply:?}");
        assert_eq!(reply.body["error"]["code"], HEADER_MISMATCH, "{why}: {reply:?}");
        assert_eq!(reply.body["id"], 3, "{why}: {reply:?}");
    }
    // A Base64-encoded Mcp-Name is decoded before the comparison ("Value Encoding").
    let mut encoded = headers("tools/call");
    encoded.push(("mcp-name", "=?base64?Z2V0X29yZGVy?="));
    let reply = post(&stack, Some(&token), &encoded, &call).await;
    assert_eq!(reply.body["result"]["structuredContent"]["id"], "ORD-001", "{reply:?}");

    // A revision the server does not implement: 400 naming the ones it does.
    let mut future = call.clone();
    future["params"]["_meta"] = modern_meta("2099-01-01");
    let reply = post(
        &stack,
        Some(&token),
        &[("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/call"), ("mcp-name", "get_order")],
        &future,
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{reply:?}");
    assert_eq!(reply.body["error"]["code"], UNSUPPORTED_PROTOCOL_VERSION, "{reply:?}");
    let supported = reply.body["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.iter().any(|v| v == MODERN), "{reply:?}");

    // No GET stream in this revision: 405 ("Backward Compatibility").
    let get = stack.http.get(&stack.mcp_url).bearer_auth(&token).header(header::ACCEPT, "text/event-stream");
    assert_eq!(get.send().await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);

    let mut call_headers = headers("tools/call");
    call_headers.push(("mcp-name", "get_order"));
    assert_challenge(&stack, &call_headers, &call).await;
}

/// An `initialize`-era client: the handshake, then each request with `MCP-Protocol-Version`
/// (2025-06-18 "Protocol Version Header"), no `_meta` and no `Mcp-Method`/`Mcp-Name`, which
/// those revisions do not define; results without 2026-07-28's `resultType` and cache fields.
async fn legacy_revision_is_served(revision: &str) {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let version = [("mcp-protocol-version", revision)];

    let initialize = legacy(
        1,
        "initialize",
        json!({"protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "revision-test", "version": "1"}}),
    );
    // The initialize request may come without the header (the version is in the body).
    let reply = post(&stack, Some(&token), &[], &initialize).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let result = &reply.body["result"];
    assert_eq!(result["protocolVersion"], revision, "{result}");
    assert_eq!(result["serverInfo"]["name"], "orders-mcp", "{result}");
    assert!(result["capabilities"]["tools"].is_object(), "{result}");
    assert!(!reply.headers.contains_key("mcp-session-id"), "stateless: no session is assigned");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(&stack, Some(&token), &version, &initialized).await.status, StatusCode::ACCEPTED);

    let list = post(&stack, Some(&token), &version, &legacy(2, "tools/list", json!({}))).await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    let result = &list.body["result"];
    assert_eq!(tool_names(result), TOOLS, "{result}");
    for field in ["resultType", "ttlMs", "cacheScope"] {
        assert!(result.get(field).is_none(), "{field} is not part of {revision}: {result}");
    }

    let call = legacy(3, "tools/call", json!({"name": "get_order", "arguments": {"id": "ORD-001"}}));
    let reply = post(&stack, Some(&token), &version, &call).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let result = &reply.body["result"];
    assert_eq!(result["structuredContent"]["id"], "ORD-001", "{result}");
    assert!(result.get("resultType").is_none(), "{result}");
    // Someone else's order is not found for alice, on every revision.
    let other = legacy(4, "tools/call", json!({"name": "get_order", "arguments": {"id": "ORD-005"}}));
    let reply = post(&stack, Some(&token), &version, &other).await;
    assert_eq!(reply.body["result"]["isError"], true, "{reply:?}");

    assert_challenge(&stack, &version, &call).await;
}

#[tokio::test]
async fn revision_2025_11_25_is_served() {
    legacy_revision_is_served("2025-11-25").await;
}

#[tokio::test]
async fn revision_2025_06_18_is_served() {
    legacy_revision_is_served("2025-06-18").await;
}
