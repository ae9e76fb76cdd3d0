//! Bad input of every kind gets a clear problem+json answer: never a panic, a plain-text
//! body, an empty body or a stack trace.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, assert_problem, hop_of, spawn_app};

#[tokio::test]
async fn bad_create_bodies_are_problems_that_say_what_is_wrong() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    let before = app.list_all(&token, "").await.len();
    let long = "x".repeat(201);
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        ("malformed JSON", "{\"product\": \"Keyboard\", ".into(), 400, "bad-request", "JSON"),
        ("not an object", "[1, 2]".into(), 422, "validation", "invalid type"),
        (
            "unknown field",
            json!({"product": "K", "quantity": 1, "owner_oid": "x"}).to_string(),
            422,
            "validation",
            "owner_oid",
        ),
        ("missing field", json!({"product": "K"}).to_string(), 422, "validation", "quantity"),
        (
            "quantity as a string",
            json!({"product": "K", "quantity": "2"}).to_string(),
            422,
            "validation",
            "invalid type",
        ),
        (
            "quantity with a fraction",
            json!({"product": "K", "quantity": 2.5}).to_string(),
            422,
            "validation",
            "whole number",
        ),
        (
            "quantity beyond i64",
            "{\"product\": \"K\", \"quantity\": 99999999999999999999}".into(),
            422,
            "validation",
            "quantity",
        ),
        ("quantity 0", json!({"product": "K", "quantity": 0}).to_string(), 422, "validation", "between 1 and 1000"),
        (
            "quantity 1001",
            json!({"product": "K", "quantity": 1001}).to_string(),
            422,
            "validation",
            "between 1 and 1000",
        ),
        (
            "negative quantity",
            json!({"product": "K", "quantity": -5}).to_string(),
            422,
            "validation",
            "between 1 and 1000",
        ),
        ("empty product", json!({"product": "", "quantity": 1}).to_string(), 422, "validation", "must not be empty"),
        ("blank product", json!({"product": "   ", "quantity": 1}).to_string(), 422, "validation", "must not be empty"),
        ("over-long product", json!({"product": long, "quantity": 1}).to_string(), 422, "validation", "at most 200"),
        (
            "product with a line break",
            json!({"product": "a\nb", "quantity": 1}).to_string(),
            422,
            "validation",
            "control",
        ),
        (
            // "Keyboard" and, in Unicode tags, an instruction no one sees but a model reads.
            "product with hidden text",
            json!({"product": "Keyboard\u{e0049}\u{e0047}\u{e004e}\u{e004f}\u{e0052}\u{e0045}", "quantity": 1})
                .to_string(),
            422,
            "validation",
            "invisible",
        ),
        (
            "product with a text-direction override",
            json!({"product": "\u{202e}draobyeK", "quantity": 1}).to_string(),
            422,
            "validation",
            "invisible",
        ),
        ("product as a number", json!({"product": 7, "quantity": 1}).to_string(), 422, "validation", "invalid type"),
        ("both fields wrong", json!({"product": "", "quantity": 0}).to_string(), 422, "validation", "; "),
        ("empty body", String::new(), 400, "bad-request", "EOF"),
    ];
    for (name, body, status, slug, mention) in cases {
        let response = app
            .request(Method::POST, "/api/orders", &token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(hop_of(&response).is_some(), "{name}: the token was valid, so the hop is reported");
        let problem = assert_problem(response, status, slug).await;
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(mention), "{name}: {detail:?} does not mention {mention:?}");
    }
    assert_eq!(app.list_all(&token, "").await.len(), before, "a refused create created something");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    let huge = json!({ "product": "x".repeat(70 * 1024), "quantity": 1 }).to_string();
    let response = app
        .request(Method::POST, "/api/orders", &token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload-too-large").await;
    // Just under the limit is parsed (and then refused for its content, not its size).
    let near = json!({ "product": "x".repeat(60 * 1024), "quantity": 1 }).to_string();
    let response = app
        .request(Method::POST, "/api/orders", &token)
        .header("content-type", "application/json")
        .body(near)
        .send()
        .await
        .unwrap();
    assert_problem(response, 422, "validation").await;

    for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
        let mut request = app.request(Method::POST, "/api/orders", &token).body("{\"product\":\"K\",\"quantity\":1}");
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        assert_problem(request.send().await.unwrap(), 415, "unsupported-media-type").await;
    }
}

#[tokio::test]
async fn bad_ids_query_parameters_cursors_and_keys_are_400() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    for id in ["ORD-1", "ORD-0001", "ord-001", "123", "ORD-00x", "ORD-%20001", "ORD-99999999999999"] {
        for (method, path) in
            [(Method::GET, format!("/api/orders/{id}")), (Method::POST, format!("/api/orders/{id}/cancel"))]
        {
            let response = app.request(method, &path, &token).send().await.unwrap();
            let problem = assert_problem(response, 400, "bad-request").await;
            assert!(problem["detail"].as_str().unwrap().contains("ORD-001"), "{path}: {problem}");
        }
    }
    let carol = app.token("carol", ALL_SCOPES);
    assert_problem(app.delete("ORD-1", &carol).await, 400, "bad-request").await;

    for query in ["limit=0", "limit=101", "limit=-1", "limit=ten", "status=lost", "cursor=abc", "cursor=", "colour=red"]
    {
        let response = app.get(&format!("/api/orders?{query}"), &token).await;
        assert_problem(response, 400, "bad-request").await;
    }

    for key in ["has space", &"k".repeat(256)] {
        let response = app
            .request(Method::POST, "/api/orders", &token)
            .header("idempotency-key", key)
            .json(&json!({ "product": "K", "quantity": 1 }))
            .send()
            .await
            .unwrap();
        assert_problem(response, 400, "bad-request").await;
    }
    let response = app
        .request(Method::POST, "/api/orders", &token)
        .header("idempotency-key", "one")
        .header("idempotency-key", "two")
        .json(&json!({ "product": "K", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "bad-request").await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_too() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    for path in ["/", "/api", "/api/order", "/api/orders/ORD-001/refund", "/api/orders/ORD-001/cancel/now"] {
        let response = app.get(path, &token).await;
        assert_problem(response, 404, "not-found").await;
    }
    for (method, path, allowed) in [
        (Method::PUT, "/api/orders", "GET,HEAD,POST"),
        (Method::DELETE, "/api/orders", "GET,HEAD,POST"),
        (Method::PATCH, "/api/orders/ORD-001", "GET,HEAD,DELETE"),
        (Method::GET, "/api/orders/ORD-001/cancel", "POST"),
        (Method::POST, "/healthz", "GET,HEAD"),
    ] {
        let response = app.request(method.clone(), path, &token).send().await.unwrap();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        let mut allow: Vec<_> = allow.unwrap_or_default().split(',').map(|s| s.trim().to_string()).collect();
        let mut expected: Vec<_> = allowed.split(',').map(String::from).collect();
        allow.sort();
        expected.sort();
        assert_eq!(allow, expected, "{method} {path}: Allow header");
        assert_problem(response, 405, "method-not-allowed").await;
    }
}

#[tokio::test]
async fn error_bodies_never_carry_a_token_or_a_stack_trace() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    let bob = app.token("bob", ALL_SCOPES);
    let responses = vec![
        app.get("/api/orders/ORD-006", &token).await,
        app.cancel("ORD-002", &token).await,
        app.delete("ORD-001", &token).await,
        app.get(&format!("/api/orders?cursor={token}"), &token).await,
        app.get("/api/orders/ORD-1", &bob).await,
        app.client.get(app.url(&format!("/api/orders?access_token={token}"))).send().await.unwrap(),
    ];
    for response in responses {
        assert!(response.status().is_client_error(), "{}", response.status());
        let headers = format!("{:?}", response.headers());
        let body: Value = response.json().await.unwrap();
        let text = body.to_string();
        for secret in [&token, &bob] {
            assert!(!text.contains(secret.as_str()) && !headers.contains(secret.as_str()), "token echoed: {text}");
        }
        for trace in ["panicked", "backtrace", "src/", ".rs:"] {
            assert!(!text.contains(trace), "{text}");
        }
    }
}
