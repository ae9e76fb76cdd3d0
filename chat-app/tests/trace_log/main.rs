//! Issue #15: with every target at `trace` (dependencies included: hyper, h2, reqwest, rmcp,
//! sqlx, tower-sessions), a sign-in, a chat turn and a front-channel sign-out leave no
//! authorization code, `state`, IdP session id, session cookie, client secret or token in the log.
//!
//! Its own test binary, because the subscriber must be the process's global one. A
//! thread-scoped subscriber (`set_default`) does not reach the threads the services also log
//! from (sqlx's per-connection SQLite threads, tokio's blocking pool), and worse: sqlx enters
//! the caller's span on its worker thread, and `tracing_subscriber::Registry` balances an exit
//! by closing the span through that thread's *default* dispatcher
//! (tokio-rs/tracing#1656). With another test's global subscriber as that default, it closed
//! ids it never issued and panicked ("tried to drop a ref to Id(..), but no such span
//! exists!"), killing the session store's SQLite thread: a flaky 500 in the old in-binary
//! version of this test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

#[path = "../api/front.rs"]
mod front;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/stack.rs"]
mod stack;

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;

use helpers::{Browser, COOKIE, Options, TurnEvent, assert_no_jwt, spawn_with};

#[tokio::test]
async fn at_trace_level_the_log_carries_no_code_state_sid_cookie_secret_or_token() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || TraceWriter(writer.clone()))
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only test in this binary sets the subscriber");

    let app = spawn_with(Options { orders_stack: true, ..Options::default() }).await;
    let browser = Browser::new(&app.origin);
    let start = browser.get(&format!("{}/auth/sign-in?return_to=/chat", app.url)).await;
    let (callback, sid) = browser.login_at_idp(&start.location().unwrap(), "alice", |_| {}).await;
    let query: std::collections::HashMap<_, _> =
        url::Url::parse(&callback).unwrap().query_pairs().into_owned().collect();
    assert_eq!(browser.get(&callback).await.status, StatusCode::SEE_OTHER);
    let cookie = browser.cookie(&app.url, COOKIE).unwrap();
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    let iss: String = url::form_urlencoded::byte_serialize(app.idp.handle().issuers().v2.as_bytes()).collect();
    let page =
        Browser::new(&app.origin).get(&format!("{}/auth/front-channel-logout?sid={sid}&iss={iss}", app.url)).await;
    assert_eq!(page.status, StatusCode::OK);

    let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(log.contains("TRACE"), "trace-level events were captured");
    assert!(log.contains("/auth/callback") && log.contains("/auth/front-channel-logout"), "the paths are logged");
    assert!(log.contains("sqlx::query"), "sqlx's statements (run on its own threads) are in the log");
    for (what, secret) in [
        ("the authorization code", query["code"].as_str()),
        ("state", query["state"].as_str()),
        ("the IdP session id", sid.as_str()),
        ("the session cookie", cookie.as_str()),
        ("the client secret", "chat-app-local-secret"),
    ] {
        assert!(secret.len() >= 8, "{what} is long enough to look for: {secret}");
        if let Some(at) = log.find(secret) {
            panic!("{what} is in the log: {}", &log[at.saturating_sub(300)..(at + 100).min(log.len())]);
        }
    }
    assert_no_jwt("the trace-level log", &log);
}

struct TraceWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for TraceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
