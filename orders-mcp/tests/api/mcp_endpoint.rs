//! `/mcp`'s direct route for plain stateless tool calls answers exactly as rmcp's service does.
//!
//! Each call is sent twice with the same token: once as MCP clients send it (the direct route),
//! once with a weighted `Accept` header, which the direct route leaves to rmcp. The two answers
//! must match in status, content type and body (hop timings aside).

use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{CapturedLogs, TestStack};

const PLAIN_ACCEPT: &str = "application/json, text/event-stream";
/// Equivalent for rmcp, which reads the weights; the direct route hands it to rmcp.
const WEIGHTED_ACCEPT: &str = "application/json;q=1, text/event-stream;q=0.5";

async fn post(
    stack: &TestStack,
    token: &str,
    accept: &str,
    revision: Option<&str>,
    body: &Value,
) -> (StatusCode, String, Value) {
    let headers: Vec<(&str, &str)> = revision.map(|r| ("mcp-protocol-version", r)).into_iter().collect();
    post_with(stack, token, accept, &headers, body).await
}

async fn post_with(
    stack: &TestStack,
    token: &str,
    accept: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (StatusCode, String, Value) {
    let mut request = stack
        .http
        .post(&stack.mcp_url)
        .bearer_auth(token)
        .header(header::ACCEPT, accept)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string());
    // Refusals may be plain text: `Null` then.
    let mut body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
    zero_timings(&mut body);
    (status, content_type.unwrap_or_default(), body)
}

/// Hops report the time each service spent, which differs from one call to the next.
fn zero_timings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "elapsed_ms" {
                    *v = json!(0);
                } else {
                    zero_timings(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(zero_timings),
        _ => {}
    }
}

/// A `tools/call` request; `Null` arguments are left out.
fn tool_call(id: Value, name: &str, arguments: Value) -> Value {
    let mut call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name}});
    if !arguments.is_null() {
        call["params"]["arguments"] = arguments;
    }
    call
}

#[tokio::test]
async fn plain_tool_calls_get_the_same_answer_from_both_routes() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let calls = [
        // Without arguments `whoami` takes the direct route; with `{}` it is rmcp's on both.
        tool_call(json!(0), "whoami", Value::Null),
        tool_call(json!(1), "whoami", json!({})),
        tool_call(json!("a"), "list_orders", json!({"limit": 2})),
        tool_call(json!(3), "get_order", json!({"id": "ORD-001"})),
        // Not an order id; someone else's order; no such order (a state-changing tool that refuses).
        tool_call(json!(4), "get_order", json!({"id": "not an id"})),
        tool_call(json!(5), "get_order", json!({"id": "ORD-005"})),
        tool_call(json!(6), "cancel_order", json!({"id": "ORD-999"})),
    ];
    for revision in [None, Some("2025-06-18"), Some("2025-11-25")] {
        for body in &calls {
            let direct = post(&stack, &token, PLAIN_ACCEPT, revision, body).await;
            let rmcp = post(&stack, &token, WEIGHTED_ACCEPT, revision, body).await;
            assert_eq!(direct.0, StatusCode::OK, "{body}: {direct:?}");
            assert!(direct.2["result"]["content"].is_array(), "{body}: {direct:?}");
            assert_eq!(direct, rmcp, "{revision:?} {body}");
        }
    }
}

/// Messages outside the direct route's one shape reach rmcp, which answers them by its rules.
#[tokio::test]
async fn other_messages_are_answered_by_rmcp() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let with_meta = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_order", "arguments": {"id": "ORD-001"}, "_meta": {"progressToken": "p"}}});
    let (status, _, body) = post(&stack, &token, PLAIN_ACCEPT, Some("2025-11-25"), &with_meta).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["structuredContent"]["id"], "ORD-001", "{body}");

    let unknown_tool = tool_call(json!(2), "drop_tables", json!({}));
    let (_, _, body) = post(&stack, &token, PLAIN_ACCEPT, Some("2025-11-25"), &unknown_tool).await;
    assert!(body["error"]["code"].is_i64(), "{body}");

    let bad_arguments = tool_call(json!(3), "get_order", json!({"id": 7}));
    let (_, _, body) = post(&stack, &token, PLAIN_ACCEPT, Some("2025-11-25"), &bad_arguments).await;
    // rmcp reports arguments that do not parse as a failed tool call.
    assert_eq!(body["result"]["isError"], true, "{body}");

    // A revision rmcp does not know is refused, not served by the direct route.
    let call = tool_call(json!(4), "get_order", json!({"id": "ORD-001"}));
    let (status, _, _) = post(&stack, &token, PLAIN_ACCEPT, Some("1999-01-01"), &call).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A call written as an array of its fields (which serde's derive would read) is not one
    // JSON-RPC request: rmcp refuses it, and nothing is ordered.
    let positional =
        json!(["2.0", 5, "tools/call", {"name": "create_order", "arguments": {"product": "Array", "quantity": 1}}]);
    let (status, _, body) = post(&stack, &token, PLAIN_ACCEPT, None, &positional).await;
    assert!(status.is_client_error(), "{status} {body}");
    let list = tool_call(json!(6), "list_orders", json!({"limit": 100}));
    let (_, _, body) = post(&stack, &token, PLAIN_ACCEPT, None, &list).await;
    assert!(body["result"]["content"].is_array(), "{body}");
    assert!(!body.to_string().contains("Array"), "{body}");
}

const MODERN: &str = "2026-07-28";

/// A 2026-07-28 call as rmcp's client (chat-app's) sends it: the revision and the client in
/// `_meta`, W3C Trace Context and a progress token beside them ("Request Metadata"; SEP-414).
fn modern_call(id: Value, name: &str, arguments: Value) -> Value {
    let mut call = tool_call(id, name, arguments);
    call["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": "chat-app", "version": "0.1.0"},
        "io.modelcontextprotocol/clientCapabilities": {},
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "progressToken": 0,
    });
    call
}

/// 2026-07-28 calls with their `Mcp-Method`/`Mcp-Name` headers take the direct route; the same
/// calls sent to rmcp (weighted `Accept`) answer the same. Calls whose headers disagree with the
/// body, or whose `_meta` is not what 2026-07-28 requires, are answered the same way by both
/// (rmcp judges them: the direct route hands them over).
#[tokio::test]
async fn revision_2026_07_28_calls_get_the_same_answer_from_both_routes() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let calls = [
        modern_call(json!(0), "whoami", Value::Null),
        modern_call(json!(1), "whoami", json!({})),
        modern_call(json!("a"), "list_orders", json!({"limit": 2})),
        modern_call(json!(3), "get_order", json!({"id": "ORD-001"})),
        modern_call(json!(4), "get_order", json!({"id": "not an id"})),
        modern_call(json!(5), "get_order", json!({"id": "ORD-005"})),
        modern_call(json!(6), "cancel_order", json!({"id": "ORD-999"})),
    ];
    for body in &calls {
        let name = body["params"]["name"].as_str().unwrap();
        let headers = [("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", name)];
        let direct = post_with(&stack, &token, PLAIN_ACCEPT, &headers, body).await;
        let rmcp = post_with(&stack, &token, WEIGHTED_ACCEPT, &headers, body).await;
        assert_eq!(direct.0, StatusCode::OK, "{body}: {direct:?}");
        assert_eq!(direct.2["result"]["resultType"], "complete", "{body}: {direct:?}");
        assert!(direct.2["result"]["content"].is_array(), "{body}: {direct:?}");
        assert_eq!(direct, rmcp, "{body}");
    }

    let call = modern_call(json!(7), "get_order", json!({"id": "ORD-001"}));
    let mut no_capabilities = call.clone();
    no_capabilities["params"]["_meta"].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
    let mut bad_client_info = call.clone();
    bad_client_info["params"]["_meta"]["io.modelcontextprotocol/clientInfo"] = json!("chat-app");
    let mut older_in_meta = call.clone();
    older_in_meta["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2025-11-25");
    let mut progress = call.clone();
    progress["params"]["_meta"]["progressToken"] = json!({"not": "a token"});
    let headers =
        |name: &'static str| vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/call"), ("mcp-name", name)];
    // What rmcp makes of each (the direct route hands them all over): the standard headers
    // disagreeing with the body are refused with -32020 (HeaderMismatch), `_meta` without a
    // required key with -32602; a Base64-encoded `Mcp-Name` is the spec's encoding of the same
    // name, and rmcp tolerates the malformed optional `_meta` entries and a stateless session id.
    const MISMATCH: Option<i64> = Some(-32020);
    let cases = [
        ("Mcp-Name names another tool", headers("cancel_order"), &call, MISMATCH),
        ("no Mcp-Name", vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/call")], &call, MISMATCH),
        (
            "Mcp-Method names another method",
            vec![("mcp-protocol-version", MODERN), ("mcp-method", "tools/list"), ("mcp-name", "get_order")],
            &call,
            MISMATCH,
        ),
        ("two Mcp-Name headers", [headers("get_order"), vec![("mcp-name", "get_order")]].concat(), &call, MISMATCH),
        ("a Base64-encoded Mcp-Name", headers("=?base64?Z2V0X29yZGVy?="), &call, None),
        ("MCP-Protocol-Version disagrees with _meta", headers("get_order"), &older_in_meta, MISMATCH),
        ("_meta without clientCapabilities", headers("get_order"), &no_capabilities, Some(-32602)),
        ("_meta with a clientInfo that is not one", headers("get_order"), &bad_client_info, None),
        ("_meta with a progress token that is not one", headers("get_order"), &progress, None),
        ("a left-over session id", [headers("get_order"), vec![("mcp-session-id", "left-over")]].concat(), &call, None),
    ];
    for (why, headers, body, refused) in cases {
        let direct = post_with(&stack, &token, PLAIN_ACCEPT, &headers, body).await;
        let rmcp = post_with(&stack, &token, WEIGHTED_ACCEPT, &headers, body).await;
        assert_eq!(direct, rmcp, "{why}");
        match refused {
            Some(code) => {
                assert_eq!(direct.0, StatusCode::BAD_REQUEST, "{why}: {direct:?}");
                assert_eq!(direct.2["error"]["code"], code, "{why}: {direct:?}");
            }
            None => assert_eq!(direct.2["result"]["structuredContent"]["id"], "ORD-001", "{why}: {direct:?}"),
        }
    }
}

/// orders-api under `ORDERS_API_AGENT_POLICY=approved-writes` answers an agent's write with a
/// claims challenge ("Claims challenges, claims requests and client capabilities",
/// learn.microsoft.com/entra/identity-platform/claims-challenge: a middle tier passes it back to
/// its client, which alone can have the user step up). orders-mcp does not swallow it: the
/// failed tool result carries the `WWW-Authenticate` value in `_meta`, the same on both routes;
/// the model's text names no claims. With a stepped-up token (`acrs: ["c1"]`) orders-mcp's
/// On-Behalf-Of asks for `acrs` again, and never reuses the token it exchanged before the step-up.
#[tokio::test]
async fn a_claims_challenge_goes_back_to_the_client_on_both_routes() {
    const AGENT: &str = "98aefba4-0c15-419e-93ac-168d8ce3f23f";
    const BLUEPRINT: &str = "413b01b4-ed3c-45fc-82c1-3b2cc97131b9";
    let mut stack = TestStack::spawn().await;
    stack.api.restart_with(&[("ORDERS_API_AGENT_POLICY", "approved-writes")]).await;
    let agent_token = |acrs: &[&str]| {
        let mut claims = stack.emulator.user_claims("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
        claims["azp"] = json!(AGENT);
        claims["xms_par_app_azp"] = json!(BLUEPRINT);
        if !acrs.is_empty() {
            claims["acrs"] = json!(acrs);
        }
        stack.emulator.sign(&claims).unwrap()
    };
    let token = agent_token(&[]);
    // A read first: its exchanged token (no acrs) is now cached for Alice through the agent.
    let read =
        post(&stack, &token, PLAIN_ACCEPT, None, &tool_call(json!(1), "get_order", json!({"id": "ORD-001"}))).await;
    assert_eq!(read.2["result"]["isError"], json!(false), "{read:?}");

    let create = tool_call(json!(2), "create_order", json!({"product": "Keyboard", "quantity": 1}));
    let direct = post(&stack, &token, PLAIN_ACCEPT, None, &create).await;
    let rmcp = post(&stack, &token, WEIGHTED_ACCEPT, None, &create).await;
    assert_eq!(direct, rmcp);
    let result = &direct.2["result"];
    assert_eq!(result["isError"], json!(true), "{direct:?}");
    let challenge = result["_meta"]["dev.orders-copilot/claims-challenge"].as_str().unwrap();
    let parsed = entra_auth::claims_challenge::ClaimsChallenge::parse(challenge).unwrap();
    assert_eq!(parsed.auth_contexts(), ["c1"]);
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("confirm") && !text.contains("acrs\""), "{text}");
    let hops = result["_meta"][entra_auth::hop::MCP_META_KEY].as_array().unwrap();
    assert_eq!(hops.len(), 2, "orders-api's refusal is on the trace: {hops:?}");

    // Stepped up: the exchange keeps `acrs` and the write goes through.
    let stepped = agent_token(&["c1"]);
    let created = post(&stack, &stepped, PLAIN_ACCEPT, None, &create).await;
    assert_eq!(created.2["result"]["isError"], json!(false), "{created:?}");
    let hops = created.2["result"]["_meta"][entra_auth::hop::MCP_META_KEY].as_array().unwrap();
    assert_eq!(hops[1]["token"]["acrs"], json!(["c1"]), "{hops:?}");
}

/// A failed call's log line names its tool and the user, on both routes: on the direct route
/// the request's span becomes the call's with the tool's name as an exported attribute only,
/// so with OpenTelemetry off nothing in the line said which tool failed.
#[tokio::test]
async fn a_failed_call_is_logged_with_its_tool_on_both_routes() {
    let logs = CapturedLogs::start();
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");

    for accept in [PLAIN_ACCEPT, WEIGHTED_ACCEPT] {
        let call = tool_call(json!(1), "get_order", json!({"id": "ORD-999"}));
        let (status, _, body) = post(&stack, &token, accept, None, &call).await;
        assert_eq!((status, &body["result"]["isError"]), (StatusCode::OK, &json!(true)), "{body}");
    }

    let lines = logs.lines();
    let failed: Vec<&Value> = lines.iter().filter(|line| line["message"] == "tool call failed").collect();
    assert_eq!(failed.len(), 2, "{lines:?}");
    for line in failed {
        assert_eq!(line["tool"], "get_order", "{line}");
        assert_eq!(line["oid"], stack.user_oid("alice").as_str(), "{line}");
        assert!(line["error"].as_str().is_some_and(|e| e.contains("no order ORD-999")), "{line}");
    }
}
