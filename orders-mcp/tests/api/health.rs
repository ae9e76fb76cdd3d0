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
    assert!(detail.contains(&format!("orders-api is not ready: http://{api}/readyz is unreachable")), "{detail}");
    assert!(detail.contains("identity provider"), "{detail}");
}
