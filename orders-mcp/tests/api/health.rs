//! `/healthz` and `/readyz` (orders-api down is covered with the On-Behalf-Of tests).

use orders_mcp::configuration::Settings;
use orders_mcp::startup::Application;
use reqwest::StatusCode;
use serde_json::Value;
use service_kit::settings::Env;
use tokio::net::TcpListener;

use crate::helpers::{Options, TestStack, mcp_vars};

#[tokio::test]
async fn ready_when_orders_api_and_the_identity_provider_are() {
    let stack = TestStack::spawn().await;
    let health = stack.http.get(format!("http://{}/healthz", stack.mcp_addr)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let ready = stack.http.get(format!("http://{}/readyz", stack.mcp_addr)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn not_ready_names_every_dependency_that_is_down() {
    // Nothing listens on these ports: neither orders-api nor the identity provider is there.
    let closed = |l: std::net::TcpListener| l.local_addr().unwrap();
    let idp = closed(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let api = closed(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars = mcp_vars(&Options::default(), &format!("http://{idp}"), api, addr);
    let _mcp = Application::build_on(listener, Settings::from_env(Env::from_map(vars)).unwrap()).await.unwrap().spawn();

    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("http://{addr}/healthz")).send().await.unwrap().status(), StatusCode::OK);
    let response = http.get(format!("http://{addr}/readyz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = response.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("orders-api is not ready: unreachable"), "{detail}");
    assert!(detail.contains("identity provider"), "{detail}");
    // `/readyz` is public: it names no internal address (issue #15).
    assert!(!detail.contains(&api.to_string()) && !detail.contains(&idp.to_string()), "{detail}");
}

/// Issue #15: every `/readyz` reached orders-api (a database connection there). Concurrent
/// callers now share one check, and its answer holds for about a second.
#[tokio::test]
async fn concurrent_readiness_probes_share_one_downstream_check() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // orders-api, as far as readiness goes: counts its /readyz calls, answers after a moment.
    let checks = Arc::new(AtomicUsize::new(0));
    let counted = checks.clone();
    let api = axum::Router::new().route(
        "/readyz",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                axum::Json(serde_json::json!({ "status": "ready" }))
            }
        }),
    );
    let api_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(api_listener, api).await.unwrap() });
    let idp = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let vars = mcp_vars(&Options::default(), &format!("http://{idp}"), api_addr, addr);
    let _mcp = Application::build_on(listener, Settings::from_env(Env::from_map(vars)).unwrap()).await.unwrap().spawn();

    let http = reqwest::Client::new();
    let probes = (0..20).map(|_| http.get(format!("http://{addr}/readyz")).send());
    for response in futures::future::join_all(probes).await {
        assert_eq!(response.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE, "the identity provider is down");
    }
    assert_eq!(checks.load(Ordering::SeqCst), 1, "twenty probes, one check of orders-api");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    http.get(format!("http://{addr}/readyz")).send().await.unwrap();
    assert_eq!(checks.load(Ordering::SeqCst), 2, "a second later, a fresh check");
}
