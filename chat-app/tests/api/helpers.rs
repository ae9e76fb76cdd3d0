//! Spawning chat-app in-process on port 0 with a real emulator (and, for chat tests, the real
//! orders-api and orders-mcp), plus a small cookie-keeping HTTP client that signs in through
//! the emulator's login form.

#![allow(dead_code)] // each test binary uses a different part of the helpers

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chat_app::configuration::Settings;
use chat_app::startup::Application;
use entra_emulator::{EmulatorConfig, Running};
use entra_manifest::REPOSITORY_MANIFEST;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use service_kit::settings::Env;
use tempfile::TempDir;
use tokio::net::TcpListener;
use url::Url;

use crate::front::Front;
pub use chat_app::transcript::TurnEvent;

pub const COOKIE: &str = "chat_session";

/// The assistant's text in a turn's events.
pub fn text_of(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Text { delta } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// Every log line the process wrote (at `info`, and `debug` for chat-app), for leak checks.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,chat_app=debug"))
            .with_writer(move || LogWriter(writer.clone()))
            .with_ansi(false)
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `eyJ...` `.eyJ...`: a JWT's header and payload. Returns the first match's position.
pub fn find_jwt(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find("eyJ").map(|i| i + from) {
        let mut j = i + 3;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'-' || bytes[j] == b'_') {
            j += 1;
        }
        if j > i + 3 && text[j..].starts_with(".eyJ") {
            return Some(i);
        }
        from = i + 3;
    }
    None
}

#[track_caller]
pub fn assert_no_jwt(what: &str, text: &str) {
    if let Some(i) = find_jwt(text) {
        let start = i.saturating_sub(80);
        panic!("a token appears in {what}: ...{}...", &text[start..(i + 20).min(text.len())]);
    }
}

/// What to start, and how.
pub struct Options {
    pub emulator: EmulatorConfig,
    /// Extra chat-app variables (override the defaults below).
    pub env: Vec<(&'static str, String)>,
    /// Start orders-api and orders-mcp too.
    pub orders_stack: bool,
    /// chat-app's public URL says https (it still listens on plain http): Secure cookies.
    pub https_public_url: bool,
    /// chat-app's public URL when something else (a load balancer) receives its requests.
    pub public_url: Option<String>,
    /// With `orders_stack`: also a passthrough orders-mcp, configured as chat-app's
    /// `CHAT_APP_PASSTHROUGH_DEMO_MCP_URL` (the presenter view's replay).
    pub passthrough_demo: bool,
    /// With `orders_stack`: chat-app reaches orders-mcp through a [`Front`] that can crash.
    pub mcp_front: bool,
    /// `CHAT_APP_AGENT_IDENTITY=entra-agent-id`, the blueprint's credential from the emulator's
    /// managed-identity endpoint (standing in for chat-app's managed identity).
    pub agent_identity: bool,
    /// With `orders_stack`: extra orders-api variables.
    pub orders_api_env: Vec<(&'static str, String)>,
}

impl Options {
    /// chat-app in agent mode (`agent_identity`) with the real services, orders-api under
    /// `ORDERS_API_AGENT_POLICY=policy`.
    pub fn agent_mode_with_policy(policy: &str) -> Options {
        Options {
            orders_stack: true,
            agent_identity: true,
            orders_api_env: vec![("ORDERS_API_AGENT_POLICY", policy.into())],
            ..Options::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            emulator: emulator_config(),
            env: Vec::new(),
            orders_stack: false,
            https_public_url: false,
            public_url: None,
            passthrough_demo: false,
            mcp_front: false,
            agent_identity: false,
            orders_api_env: Vec::new(),
        }
    }
}

pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig {
        identity_header: Some("test-identity-header".into()),
        ..EmulatorConfig::from_repository().unwrap()
    }
}

#[derive(Clone)]
pub struct TestApp {
    /// Where chat-app listens (and its public URL, unless `https_public_url`).
    pub url: String,
    /// `Origin` value chat-app expects.
    pub origin: String,
    pub idp: Arc<Running>,
    pub settings: Settings,
    pub stack: Option<Arc<crate::stack::OrdersStack>>,
    /// Between chat-app and orders-mcp, with `Options::mcp_front`.
    pub mcp_front: Option<Arc<Front>>,
    _app: Arc<service_kit::serve::Running<()>>,
    _dir: Arc<TempDir>,
}

impl TestApp {
    /// This app as a browser reaches it through something in front of it (a load balancer).
    pub fn reached_at(&self, url: &str) -> TestApp {
        TestApp { url: url.to_string(), ..self.clone() }
    }

    /// Another chat-app process with the same settings (public URL included, as behind a load
    /// balancer), listening elsewhere: a second replica.
    pub async fn replica(&self) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Application::build_on(listener, self.settings.clone()).await.unwrap().spawn();
        TestApp {
            url,
            origin: self.origin.clone(),
            idp: self.idp.clone(),
            settings: self.settings.clone(),
            stack: self.stack.clone(),
            mcp_front: self.mcp_front.clone(),
            _app: Arc::new(app),
            _dir: self._dir.clone(),
        }
    }
}

impl TestApp {
    /// Stops chat-app gracefully, as SIGINT does, and returns once it has stopped (this app must
    /// not have been cloned).
    pub async fn stop_chat_app(self) {
        let app = Arc::try_unwrap(self._app).ok().expect("no other handle on this chat-app");
        app.stop().await;
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> TestApp {
    log_buffer();
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let public_url = match options.public_url {
        Some(public_url) => public_url,
        None if options.https_public_url => url.replace("http://", "https://"),
        None => url.clone(),
    };
    let mut emulator = options.emulator;
    emulator.vars.chat_app_url = public_url.clone();
    let idp = entra_emulator::Application::build(emulator).await.unwrap().spawn();
    let stack = if options.orders_stack {
        Some(Arc::new(
            crate::stack::OrdersStack::spawn_configured(&idp, options.passthrough_demo, &options.orders_api_env).await,
        ))
    } else {
        None
    };
    let mut mcp_url = stack.as_ref().map_or_else(|| "http://127.0.0.1:9/mcp".to_string(), |s| s.mcp_url.clone());
    let mut mcp_front = None;
    if options.mcp_front {
        let backend = Url::parse(&mcp_url).unwrap().socket_addrs(|| None).unwrap()[0];
        let front = Front::start(backend).await;
        mcp_url = format!("http://{}/mcp", front.addr);
        mcp_front = Some(Arc::new(front));
    }
    let mut vars: BTreeMap<&'static str, String> = BTreeMap::from([
        ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST.to_string()),
        ("ENTRA_AUTHORITY", idp.url()),
        ("CHAT_APP_URL", public_url.clone()),
        ("CHAT_APP_CLIENT_SECRET", "chat-app-local-secret".to_string()),
        ("CHAT_APP_SESSION_DB", dir.path().join("chat-app.db").display().to_string()),
        ("ORDERS_MCP_URL", mcp_url),
        (
            "LEPTOS_SITE_ROOT",
            site_root().map_or_else(|| dir.path().join("site").display().to_string(), |p| p.display().to_string()),
        ),
    ]);
    if let Some(url) = stack.as_ref().and_then(|s| s.passthrough_mcp_url.clone()) {
        vars.insert("CHAT_APP_PASSTHROUGH_DEMO_MCP_URL", url);
    }
    if options.agent_identity {
        vars.insert("CHAT_APP_AGENT_IDENTITY", "entra-agent-id".into());
        vars.insert("IDENTITY_ENDPOINT", format!("{}/msi/token", idp.url()));
        vars.insert("IDENTITY_HEADER", "test-identity-header".into());
    }
    for (k, v) in options.env {
        vars.insert(k, v);
    }
    let settings = Settings::from(Env::from_map(vars)).unwrap();
    let origin = settings.origin();
    let app = Application::build_on(listener, settings.clone()).await.unwrap().spawn();
    TestApp { url, origin, idp: Arc::new(idp), settings, stack, mcp_front, _app: Arc::new(app), _dir: Arc::new(dir) }
}

/// The built browser bundle, if `cargo xtask test` built one (`CHAT_APP_SITE_ROOT`).
pub fn site_root() -> Option<PathBuf> {
    std::env::var_os("CHAT_APP_SITE_ROOT").map(PathBuf::from).filter(|p| p.is_dir())
}

/// A browser without JavaScript: keeps cookies per host, never follows redirects, and records
/// everything it receives (for leak checks).
pub struct Browser {
    http: reqwest::Client,
    /// host:port -> cookie name -> value
    cookies: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Bodies, `Location`s and `Set-Cookie`s seen.
    pub seen: Mutex<Vec<String>>,
    pub origin: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<String> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap().to_string())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }
}

fn host_of(url: &str) -> String {
    let u = Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port_or_known_default().unwrap())
}

impl Browser {
    pub fn new(origin: &str) -> Browser {
        Browser {
            // A request that never completes must fail the test (naming the URL), not stall the run.
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(60))
                .build()
                .unwrap(),
            cookies: Mutex::new(BTreeMap::new()),
            seen: Mutex::new(Vec::new()),
            origin: origin.to_string(),
        }
    }

    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.cookies.lock().unwrap().get(&host_of(url)).and_then(|c| c.get(name).cloned())
    }

    pub fn set_cookie(&self, url: &str, name: &str, value: &str) {
        self.cookies.lock().unwrap().entry(host_of(url)).or_default().insert(name.into(), value.into());
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let jar = self.cookies.lock().unwrap();
        let cookies = jar.get(&host_of(url))?;
        Some(cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    async fn send(&self, url: &str, request: reqwest::RequestBuilder) -> Page {
        let request = match self.cookie_header(url) {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.cookies.lock().unwrap();
            let cookies = jar.entry(host_of(url)).or_default();
            if attrs.contains("Max-Age=0") || value.is_empty() {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        let body = response.text().await.unwrap_or_else(|e| panic!("{url}: reading the body: {e}"));
        let mut seen = self.seen.lock().unwrap();
        seen.push(format!("{url} -> {status}"));
        seen.extend(headers.get_all(LOCATION).iter().map(|v| format!("Location: {}", v.to_str().unwrap())));
        seen.extend(headers.get_all(SET_COOKIE).iter().map(|v| format!("Set-Cookie: {}", v.to_str().unwrap())));
        seen.push(body.clone());
        Page { status, headers, body }
    }

    pub async fn get(&self, url: &str) -> Page {
        self.send(url, self.http.get(url)).await
    }

    /// A form POST as a page of `origin` sends it.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut request = self.http.post(url).form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(url, request).await
    }

    /// Sends a chat message through the server function, from chat-app's own origin.
    pub async fn send_message(&self, app: &TestApp, text: &str) -> Page {
        self.post_form(&format!("{}/api/chat/send", app.url), &[("text", text)], Some(&self.origin)).await
    }

    /// Sends a message and collects the turn's events until `done`.
    pub async fn chat(&self, app: &TestApp, text: &str) -> Vec<TurnEvent> {
        let page = self.send_message(app, text).await;
        assert_eq!(page.status, StatusCode::OK, "send failed: {}", page.body);
        let turn: String = serde_json::from_str(&page.body).unwrap();
        self.events(app, &turn).await
    }

    /// Sends a message and follows the turn's events as they arrive, until `done`. Each call
    /// that waits for approval goes to `on_approval` while the turn waits, so it can answer
    /// (or not) as a person would.
    pub async fn chat_live(
        &self,
        app: &TestApp,
        text: &str,
        mut on_approval: impl AsyncFnMut(PendingCall),
    ) -> Vec<TurnEvent> {
        let page = self.send_message(app, text).await;
        assert_eq!(page.status, StatusCode::OK, "send failed: {}", page.body);
        let turn: String = serde_json::from_str(&page.body).unwrap();
        let url = format!("{}/api/chat/turns/{turn}/events", app.url);
        let mut request = self.http.get(&url);
        if let Some(cookie) = self.cookie_header(&url) {
            request = request.header("cookie", cookie);
        }
        let mut response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(response.status(), StatusCode::OK);
        let (mut buffer, mut events) = (String::new(), Vec::new());
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(60), response.chunk())
                .await
                .expect("the turn's events stalled")
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let Some(chunk) = chunk else { break };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                for event in parse_sse(&block) {
                    if let TurnEvent::ApprovalRequired { id, approval } = &event {
                        let (tool, arguments) = events
                            .iter()
                            .rev()
                            .find_map(|e| match e {
                                TurnEvent::ToolCall { id: call, name, arguments, .. } if call == id => {
                                    Some((name.clone(), arguments.clone()))
                                }
                                _ => None,
                            })
                            .expect("an approval follows its call");
                        let pending = PendingCall {
                            turn: approval.turn.clone(),
                            call: id.clone(),
                            tool,
                            arguments,
                            summary: approval.summary.clone(),
                            acting_as: approval.acting_as.clone(),
                        };
                        on_approval(pending).await;
                    }
                    events.push(event);
                }
            }
        }
        self.seen.lock().unwrap().push(format!("{events:?}"));
        events
    }

    /// Sends a message, answering every approval it asks for with `approve`.
    pub async fn chat_answering(&self, app: &TestApp, text: &str, approve: bool) -> Vec<TurnEvent> {
        self.chat_live(app, text, async |call| {
            let page = self.answer(app, &call, approve).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        })
        .await
    }

    /// Answers a waiting call, naming it the way chat-app's page does.
    pub async fn answer(&self, app: &TestApp, call: &PendingCall, approve: bool) -> Page {
        let arguments = call.arguments.to_string();
        let form = [
            ("turn", call.turn.as_str()),
            ("call", call.call.as_str()),
            ("tool", call.tool.as_str()),
            ("arguments", arguments.as_str()),
            ("approve", if approve { "true" } else { "false" }),
        ];
        self.post_form(&format!("{}/api/chat/answer", app.url), &form, Some(&self.origin)).await
    }

    /// The events of a turn, parsed from its Server-Sent Events stream.
    pub async fn events(&self, app: &TestApp, turn: &str) -> Vec<TurnEvent> {
        let url = format!("{}/api/chat/turns/{turn}/events", app.url);
        let page = tokio::time::timeout(Duration::from_secs(30), self.get(&url)).await.expect("the stream ended");
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        parse_sse(&page.body)
    }

    /// The whole sign-in: chat-app → emulator login form (as `user`) → callback. Returns the
    /// final response (a redirect to `return_to` on success) and the `session_state` (the IdP
    /// session id) the emulator returned.
    pub async fn sign_in(&self, app: &TestApp, user: &str) -> (Page, String) {
        self.sign_in_tampered(app, user, |_| {}).await
    }

    /// Like [`Browser::sign_in`], changing the authorization request before the IdP sees it.
    pub async fn sign_in_tampered(
        &self,
        app: &TestApp,
        user: &str,
        tamper: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> (Page, String) {
        let start = self.get(&format!("{}/auth/sign-in?return_to=/chat", app.url)).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let (callback, session_state) = self.login_at_idp(&start.location().unwrap(), user, tamper).await;
        (self.get(&callback).await, session_state)
    }

    /// Posts the emulator's login form for `user`; returns the callback URL it redirects to.
    pub async fn login_at_idp(
        &self,
        authorize: &str,
        user: &str,
        tamper: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> (String, String) {
        let url = Url::parse(authorize).unwrap();
        let mut params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        tamper(&mut params);
        let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        form.push(("login", user));
        form.push(("password", user));
        let action = format!("{}://{}{}", url.scheme(), host_of(authorize), url.path());
        let page = self.post_form(&action, &form, None).await;
        assert!(page.status.is_redirection(), "login failed: {} {}", page.status, page.body);
        let callback = page.location().unwrap();
        let session_state = Url::parse(&callback)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "session_state")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        (callback, session_state)
    }

    /// Everything received so far, for leak checks.
    pub fn everything_seen(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

/// A call waiting for approval, as the browser learns of it.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub turn: String,
    pub call: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub summary: String,
    pub acting_as: String,
}

pub fn parse_sse(body: &str) -> Vec<TurnEvent> {
    let mut events = Vec::new();
    for block in body.split("\n\n") {
        let data: Vec<&str> = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
        if data.is_empty() {
            continue;
        }
        events.push(serde_json::from_str(&data.join("\n")).unwrap_or_else(|e| panic!("bad event {block:?}: {e}")));
    }
    events
}
