//! `spawn_app()`: the emulator, a temporary SQLite file, and orders-api on port 0.

use std::path::{Path, PathBuf};

use entra_auth::hop::{HOP_HEADER, Hop};
use entra_emulator::{EmulatorConfig, Running};
use entra_manifest::REPOSITORY_MANIFEST;
use orders_api::configuration::Settings;
use orders_api::startup::Application;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use service_kit::settings::Env;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PUBLIC_URL: &str = "http://orders-api.test";
pub const ALL_SCOPES: &[&str] = &["Orders.Read", "Orders.ReadWrite"];

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub idp: Running,
    pub settings: Settings,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Settings as the binary would read them, built in code for the emulator at `authority`.
pub fn settings(authority: &str, database: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut vars = vec![
        ("IDENTITY_MANIFEST".to_string(), REPOSITORY_MANIFEST.to_string()),
        ("ENTRA_AUTHORITY".to_string(), authority.to_string()),
        ("ORDERS_API_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("ORDERS_API_DATABASE".to_string(), database.display().to_string()),
        ("ORDERS_API_PUBLIC_URL".to_string(), PUBLIC_URL.to_string()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::from_env(Env::from_map(vars)).expect("test settings are valid")
}

pub async fn spawn_idp() -> Running {
    entra_emulator::Application::build(EmulatorConfig::from_repository().expect("the repository manifest loads"))
        .await
        .expect("the emulator starts")
        .spawn()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// With extra environment variables (e.g. `ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE`).
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let settings = settings(&idp.url(), &dir.path().join("data").join("orders.db"), extra);
    start(idp, dir, settings).await
}

/// Starts orders-api with `settings`, keeping the emulator and directory alive with it.
pub async fn start(idp: Running, dir: TempDir, settings: Settings) -> TestApp {
    let app = Application::build(settings.clone()).await.expect("orders-api starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    TestApp { address, client, idp, settings, dir, shutdown: Some(tx), server: Some(server) }
}

impl TestApp {
    /// Stops serving and closes the database; returns what a restart needs.
    pub async fn stop(mut self) -> (Running, TempDir, Settings) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends").expect("the server stops cleanly");
        }
        let TestApp { idp, dir, settings, .. } = self;
        (idp, dir, settings)
    }

    pub fn database(&self) -> PathBuf {
        self.settings.database.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A delegated token for orders-api, shaped like orders-mcp's On-Behalf-Of result.
    pub fn token(&self, user: &str, scopes: &[&str]) -> String {
        self.idp.handle().user_token(user, "orders-mcp", "orders-api", scopes).unwrap()
    }

    pub fn oid(&self, user: &str) -> String {
        self.idp.handle().manifest().user(user).unwrap().oid.clone()
    }

    pub fn display_name(&self, user: &str) -> String {
        self.idp.handle().manifest().user(user).unwrap().display_name.clone()
    }

    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(token)
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, token).send().await.unwrap()
    }

    pub async fn create(&self, token: &str, body: &Value) -> Response {
        self.request(Method::POST, "/api/orders", token).json(body).send().await.unwrap()
    }

    pub async fn cancel(&self, id: &str, token: &str) -> Response {
        self.request(Method::POST, &format!("/api/orders/{id}/cancel"), token).send().await.unwrap()
    }

    pub async fn delete(&self, id: &str, token: &str) -> Response {
        self.request(Method::DELETE, &format!("/api/orders/{id}"), token).send().await.unwrap()
    }

    /// Every order `token` may list, following cursors to the end.
    pub async fn list_all(&self, token: &str, query: &str) -> Vec<Value> {
        let mut orders = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/orders?limit=100{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let response = self.get(&path, token).await;
            assert_eq!(response.status(), 200, "listing {path}");
            let page: Value = response.json().await.unwrap();
            orders.extend(page["orders"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return orders,
            }
        }
    }
}

/// The response's hop record, if it has one.
pub fn hop_of(response: &Response) -> Option<Hop> {
    let value = response.headers().get(HOP_HEADER)?.to_str().ok()?;
    Some(Hop::from_header_value(value).expect("x-hop-trace holds a hop record"))
}

/// Asserts a problem+json body with this status and slug; returns the problem.
pub async fn assert_problem(response: Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], format!("urn:orders-copilot:problem:{slug}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    body
}
