//! Acceptance 2: the bad-token battery against `/mcp` (POST, GET, DELETE), the RFC 9728
//! metadata, and tokens for another audience.

use entra_emulator::testing::battery::{self, Target};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::TestStack;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"battery","version":"1"}}}"#;

/// A request to `/mcp` as an MCP client would send it, minus the credentials.
fn mcp_request(stack: &TestStack, method: Method, query: Option<&str>) -> reqwest::RequestBuilder {
    let url = match query {
        Some(q) => format!("{}?{q}", stack.mcp_url),
        None => stack.mcp_url.clone(),
    };
    let request = stack.http.request(method.clone(), url);
    match method {
        Method::POST => request
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_TYPE, "application/json")
            .body(INITIALIZE),
        Method::GET => request.header(header::ACCEPT, "text/event-stream"),
        _ => request,
    }
}

#[tokio::test]
async fn every_bad_token_is_refused_on_every_method_with_a_proper_challenge() {
    let stack = TestStack::spawn().await;
    let target = Target { resource: "orders-mcp", client: "chat-app", user: "alice", scopes: &["access_as_user"] };
    let (valid, cases) = battery::cases(&stack.emulator, &target).unwrap();

    // The route works with the valid token, so every refusal below is the token's fault.
    let ok = mcp_request(&stack, Method::POST, None).bearer_auth(&valid).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["result"]["serverInfo"]["name"], "orders-mcp", "{body}");
    // This server keeps no sessions: GET and DELETE with a valid token are "not allowed", not "unauthorized".
    for method in [Method::GET, Method::DELETE] {
        let r = mcp_request(&stack, method.clone(), None).bearer_auth(&valid).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }

    let mut failures = Vec::new();
    for case in &cases {
        for method in [Method::POST, Method::GET, Method::DELETE] {
            let mut request = mcp_request(&stack, method.clone(), case.query.as_deref());
            for value in &case.authorization {
                request = request.header(header::AUTHORIZATION, header::HeaderValue::from_bytes(value).unwrap());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
            let body = response.text().await.unwrap();
            if let Err(e) = case.check(status, challenge.as_deref(), &body) {
                failures.push(format!("{method}: {e}"));
            } else if let Some(challenge) = &challenge {
                let expected =
                    format!("resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"", stack.mcp_addr);
                if !challenge.contains(&expected) {
                    failures
                        .push(format!("{method} {}: challenge does not point at the metadata: {challenge}", case.name));
                }
            }
        }
    }
    assert!(cases.len() > 50, "the battery has {} cases", cases.len());
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_token_for_orders_api_is_refused_here() {
    let stack = TestStack::spawn().await;
    // A perfectly valid token, for the wrong resource: what a confused deputy would forward.
    let token = stack.emulator.user_token("alice", "chat-app", "orders-api", &["Orders.Read"]).unwrap();
    let response = mcp_request(&stack, Method::POST, None).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    // A v1 token: its issuer is the first thing a v2-only resource refuses.
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "the token was issued by an untrusted issuer", "{body}");
    assert!(!body.to_string().contains(&token));

    // The same token in v2 shape, still for orders-api: refused for its audience.
    let mut claims = stack.emulator.user_claims("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    claims["aud"] = json!(stack.client_id("orders-api"));
    let token = stack.emulator.sign(&claims).unwrap();
    let response = mcp_request(&stack, Method::POST, None).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "the token is for another audience", "{body}");

    // The same user's token for orders-mcp with a scope other than access_as_user: 403.
    let token = stack.emulator.user_token("alice", "chat-app", "orders-mcp", &["something_else"]).unwrap();
    let response = mcp_request(&stack, Method::POST, None).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_string();
    // The full scope value, exactly as the resource metadata's scopes_supported spells it: the
    // bare name is not a scope a client can request from Entra.
    let metadata: serde_json::Value =
        reqwest::get(format!("http://{}/.well-known/oauth-protected-resource/mcp", stack.mcp_addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let scope = metadata["scopes_supported"][0].as_str().unwrap();
    assert!(scope.ends_with("/access_as_user"), "{metadata}");
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains(&format!("scope=\"{scope}\"")),
        "{challenge}"
    );
}

#[tokio::test]
async fn protected_resource_metadata_follows_rfc_9728() {
    let stack = TestStack::spawn().await;
    // The challenge tells the client where to look...
    let response = mcp_request(&stack, Method::POST, None).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().to_string();
    assert_eq!(
        challenge,
        format!("Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"", stack.mcp_addr)
    );

    // ...and the document is there, and at the bare well-known path too.
    let expected = json!({
        "resource": stack.mcp_url,
        "authorization_servers": [stack.emulator.issuers().v2],
        // The Application ID URI is the canonical MCP endpoint: the scope lives under it.
        "scopes_supported": [format!("{}/access_as_user", stack.mcp_url)],
        "bearer_methods_supported": ["header"],
        "resource_name": "Orders MCP server",
    });
    for path in ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"] {
        let response = stack.http.get(format!("http://{}{path}", stack.mcp_addr)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc, expected, "{path}");
    }
    // The metadata needs no token, and the authorization server it names is a real one.
    let issuer = stack.emulator.issuers().v2.clone();
    let oidc: Value = stack
        .http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oidc["issuer"], issuer);
}

#[tokio::test]
async fn requests_for_an_unknown_host_are_refused() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let response = mcp_request(&stack, Method::POST, None)
        .bearer_auth(&token)
        .header(header::HOST, "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "DNS rebinding protection");
    // A plain tool call too (orders-mcp answers those itself), also with the allowed name as
    // user information in front of another host.
    let call =
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"ORD-001"}}}"#;
    for host in ["attacker.example", "[::1]@attacker.example"] {
        let response = stack
            .http
            .post(&stack.mcp_url)
            .bearer_auth(&token)
            .header(header::HOST, host)
            .header(header::ACCEPT, "application/json, text/event-stream")
            .header(header::CONTENT_TYPE, "application/json")
            .body(call)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
    }
    // The configured names work (localhost is in the default list).
    let url = format!("http://localhost:{}/mcp", stack.mcp_addr.port());
    let client = stack.http.post(url).bearer_auth(&token);
    let response = client
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header(header::CONTENT_TYPE, "application/json")
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// MCP Streamable HTTP (2026-07-28, "Security Warning"): servers MUST validate the `Origin`
/// header on all incoming connections. A page on another site, running in the user's browser,
/// gets `403`; the server's own origin and loopback pages (a local MCP client) pass, and
/// requests without `Origin` (every non-browser client) work as before.
#[tokio::test]
async fn a_browser_origin_that_is_not_allowed_is_refused() {
    let stack = TestStack::spawn().await;
    let token = stack.user_token("alice");
    let status = |origin: Option<&'static str>| {
        let mut request = mcp_request(&stack, Method::POST, None).bearer_auth(&token);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(status(Some("https://evil.example")).await, StatusCode::FORBIDDEN);
    assert_eq!(status(Some("null")).await, StatusCode::FORBIDDEN, "sandboxed frames and file: pages");
    assert_eq!(status(None).await, StatusCode::OK, "non-browser clients send no Origin");
    assert_eq!(status(Some("http://localhost:6274")).await, StatusCode::OK, "a local browser client");
}
