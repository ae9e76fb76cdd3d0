//! The whole chain in-process on port 0: the Entra emulator, orders-api on a fresh SQLite file,
//! and orders-mcp; plus an MCP client speaking real Streamable HTTP with real tokens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use entra_auth::hop::{Hop, MCP_META_KEY};
use entra_emulator::{Emulator, EmulatorConfig};
use entra_manifest::REPOSITORY_MANIFEST;
use orders_mcp::configuration::Settings;
use orders_mcp::startup::Application;
use orders_mcp::tool_result::SENT_TOKEN_META_KEY;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use service_kit::serve::Running;
use service_kit::settings::Env;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// The managed-identity endpoint's shared secret in tests.
pub const IDENTITY_HEADER: &str = "test-header";

/// How the stack under test is configured.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `ORDERS_MCP_DOWNSTREAM`.
    pub downstream: &'static str,
    /// orders-api started with `ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE=<orders-mcp client id>`.
    pub api_allows_passthrough: bool,
    /// Client authentication for On-Behalf-Of: the emulator's managed identity, or the secret.
    pub use_client_secret: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { downstream: "obo", api_allows_passthrough: false, use_client_secret: false }
    }
}

pub struct TestStack {
    /// The running identity provider; `None` while stopped (see [`TestStack::stop_idp`]).
    pub idp: Option<entra_emulator::Running>,
    pub emulator: Emulator,
    pub idp_addr: SocketAddr,
    pub api: ApiServer,
    pub mcp_addr: SocketAddr,
    /// `http://127.0.0.1:<port>/mcp`
    pub mcp_url: String,
    pub http: reqwest::Client,
    _mcp: Running<()>,
    _dir: TempDir,
}

/// orders-api, stoppable and restartable on the same port and database.
pub struct ApiServer {
    pub addr: SocketAddr,
    database: PathBuf,
    allow_passthrough: bool,
    idp_url: String,
    running: Option<Running<()>>,
}

impl ApiServer {
    async fn start(
        idp_url: &str,
        database: PathBuf,
        allow_passthrough: bool,
        addr: SocketAddr,
        extra: &[(&str, &str)],
    ) -> ApiServer {
        let mut vars = vec![
            ("IDENTITY_MANIFEST".to_string(), REPOSITORY_MANIFEST.to_string()),
            ("ENTRA_AUTHORITY".to_string(), idp_url.to_string()),
            ("ORDERS_API_ADDR".to_string(), addr.to_string()),
            ("ORDERS_API_DATABASE".to_string(), database.display().to_string()),
        ];
        if allow_passthrough {
            let manifest = entra_manifest::Manifest::load(REPOSITORY_MANIFEST).unwrap();
            vars.push(("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE".into(), manifest.apps["orders-mcp"].client_id.clone()));
        }
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let settings = orders_api::configuration::Settings::from_env(Env::from_map(vars)).unwrap();
        let running = orders_api::startup::Application::build(settings).await.unwrap().spawn();
        ApiServer {
            addr: running.addr(),
            database,
            allow_passthrough,
            idp_url: idp_url.to_string(),
            running: Some(running),
        }
    }

    /// Stops serving and waits until the port is closed.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Starts again on the same port and database.
    pub async fn restart(&mut self) {
        self.restart_with(&[]).await;
    }

    /// Starts again on the same port and database, with extra settings.
    pub async fn restart_with(&mut self, extra: &[(&str, &str)]) {
        self.stop().await;
        *self = ApiServer::start(&self.idp_url, self.database.clone(), self.allow_passthrough, self.addr, extra).await;
    }
}

impl TestStack {
    pub async fn spawn() -> TestStack {
        TestStack::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestStack {
        install_log_capture();
        let config = EmulatorConfig {
            identity_header: Some(IDENTITY_HEADER.into()),
            ..EmulatorConfig::from_repository().unwrap()
        };
        let idp = entra_emulator::Application::build(config).await.unwrap().spawn();
        let dir = tempfile::tempdir().unwrap();
        let api = ApiServer::start(
            &idp.url(),
            dir.path().join("orders.db"),
            options.api_allows_passthrough,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &[],
        )
        .await;

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mcp_addr = listener.local_addr().unwrap();
        let settings = Settings::from_env(Env::from_map(mcp_vars(&options, &idp.url(), api.addr, mcp_addr))).unwrap();
        let mcp = Application::build_on(listener, settings).await.unwrap().spawn();
        TestStack {
            emulator: idp.handle().clone(),
            idp_addr: idp.addr(),
            idp: Some(idp),
            api,
            mcp_addr,
            mcp_url: format!("http://{mcp_addr}/mcp"),
            http: reqwest::Client::new(),
            _mcp: mcp,
            _dir: dir,
        }
    }

    /// Another orders-mcp on this stack's identity provider, calling orders-api at `api`.
    pub async fn spawn_mcp(&self, api: SocketAddr) -> Running<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idp_url = format!("http://{}", self.idp_addr);
        let settings = Settings::from_env(Env::from_map(mcp_vars(&Options::default(), &idp_url, api, addr))).unwrap();
        Application::build_on(listener, settings).await.unwrap().spawn()
    }

    /// A delegated token for orders-mcp, as chat-app holds it after `user` signed in.
    pub fn user_token(&self, user: &str) -> String {
        self.emulator.user_token(user, "chat-app", "orders-mcp", &["access_as_user"]).unwrap()
    }

    pub fn user_oid(&self, user: &str) -> String {
        self.emulator.manifest().user(user).unwrap().oid.clone()
    }

    pub fn client_id(&self, app: &str) -> String {
        let m = self.emulator.manifest();
        m.apps.get(app).map(|a| a.client_id.clone()).unwrap_or_else(|| m.clients[app].client_id.clone())
    }

    /// An MCP client connected as `user` (real Streamable HTTP, real token).
    pub async fn client(&self, user: &str) -> RunningService<RoleClient, ()> {
        self.client_with_token(&self.user_token(user)).await
    }

    pub async fn client_with_token(&self, token: &str) -> RunningService<RoleClient, ()> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.mcp_url.clone()).auth_header(token);
        ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap()
    }

    /// Stops the identity provider, keeping its state (keys) for [`TestStack::start_idp`].
    pub async fn stop_idp(&mut self) {
        if let Some(idp) = self.idp.take() {
            self.emulator = idp.stop().await;
        }
    }

    /// Serves the same emulator (same keys) on the same address again.
    pub async fn start_idp(&mut self) {
        let listener = TcpListener::bind(self.idp_addr).await.unwrap();
        self.idp = Some(entra_emulator::Application::build_on(listener, self.emulator.clone()).await.unwrap().spawn());
    }

    pub fn stats(&self) -> entra_emulator::Stats {
        self.emulator.stats()
    }
}

/// orders-mcp's settings for the stack, as environment variables (the same parsing as in
/// production, from a map instead of the process environment).
pub fn mcp_vars(options: &Options, idp_url: &str, api: SocketAddr, mcp: SocketAddr) -> Vec<(String, String)> {
    let mut vars = vec![
        ("IDENTITY_MANIFEST".to_string(), REPOSITORY_MANIFEST.to_string()),
        ("ENTRA_AUTHORITY".to_string(), idp_url.to_string()),
        ("ORDERS_MCP_PUBLIC_URL".to_string(), format!("http://{mcp}")),
        ("ORDERS_API_URL".to_string(), format!("http://{api}")),
        ("ORDERS_MCP_DOWNSTREAM".to_string(), options.downstream.to_string()),
    ];
    if options.use_client_secret {
        let manifest = entra_manifest::Manifest::load(REPOSITORY_MANIFEST).unwrap();
        let secret = manifest.apps["orders-mcp"].emulator_client_secret.clone().unwrap();
        vars.push(("ORDERS_MCP_CLIENT_SECRET".into(), secret));
    } else {
        vars.push(("IDENTITY_ENDPOINT".into(), format!("{idp_url}/msi/token")));
        vars.push(("IDENTITY_HEADER".into(), IDENTITY_HEADER.into()));
    }
    vars
}

/// Calls `tool` with JSON `arguments`.
pub async fn call(client: &RunningService<RoleClient, ()>, tool: &str, arguments: Value) -> CallToolResult {
    let mut params = CallToolRequestParams::new(tool.to_string());
    if let Value::Object(args) = arguments {
        params = params.with_arguments(args);
    }
    client.call_tool(params).await.unwrap()
}

/// The hop trace of a tool result.
pub fn hops(result: &CallToolResult) -> Vec<Hop> {
    let meta = result.meta.as_ref().expect("every tool result carries _meta");
    serde_json::from_value(meta.0[MCP_META_KEY].clone()).expect("the hops are a JSON array of Hop")
}

/// The token orders-mcp sent to orders-api (`{ how, token }`), if it sent one.
pub fn sent_token(result: &CallToolResult) -> Option<Value> {
    result.meta.as_ref().and_then(|m| m.0.get(SENT_TOKEN_META_KEY).cloned())
}

pub fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// All text content, joined.
pub fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

/// The structured content of a successful result.
pub fn structured(result: &CallToolResult) -> Value {
    assert!(!is_error(result), "expected success, got an error: {}", text(result));
    result.structured_content.clone().expect("structured content")
}

thread_local! {
    /// Where this thread's log lines go while a [`CapturedLogs`] lives.
    static LOG_SINK: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

/// The JSON log lines written on this thread while it lives (a `#[tokio::test]` runs the whole
/// stack on its one thread).
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn start() -> CapturedLogs {
        install_log_capture();
        let sink = Arc::new(Mutex::new(Vec::new()));
        LOG_SINK.set(Some(sink.clone()));
        CapturedLogs(sink)
    }

    /// The lines so far, each a JSON object.
    pub fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }
}

impl Drop for CapturedLogs {
    fn drop(&mut self) {
        LOG_SINK.set(None);
    }
}

/// One global subscriber, installed before any stack starts ([`TestStack::spawn_with`]), that
/// writes only the lines of threads capturing them. tracing caches whether a call site is
/// enabled when the site is first reached: a subscriber set per test (`set_default`) lost
/// lines when another test reached the site first, and so does a filter whose answer is cached
/// (`filter_fn`), so the filter is asked at each event (`dynamic_filter_fn`), and the subscriber
/// exists before any orders-mcp code runs.
fn install_log_capture() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let capturing = tracing_subscriber::filter::dynamic_filter_fn(|_, _| LOG_SINK.with_borrow(Option::is_some));
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_ansi(false)
            .with_writer(|| ThreadSink)
            .with_filter(capturing);
        tracing_subscriber::registry().with(layer).try_init().expect("no other global subscriber in these tests");
    });
}

struct ThreadSink;

impl std::io::Write for ThreadSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG_SINK.with_borrow(|sink| {
            if let Some(sink) = sink {
                sink.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
