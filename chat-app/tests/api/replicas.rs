//! Two chat-app replicas behind one address, sharing a real `redis-server`
//! (`CHAT_APP_SESSION_STORE=redis://…`): a session, its conversation and the one-turn guard work
//! whichever replica a request reaches, and signing out on one signs out on both.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use reqwest::StatusCode;
use tokio::net::TcpListener;

use chat_app::auth::session_store::Sessions;
use chat_app::configuration::RedisSettings;
use chat_app::store::redis::Redis;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::SessionStore;

use crate::helpers::{Browser, COOKIE, Options, TestApp, TurnEvent, spawn_with};

/// A `redis-server` of its own on a free loopback port, stopped when dropped.
struct RedisServer {
    url: String,
    child: Child,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it (Debian: apt install redis-server)")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer { url: format!("redis://127.0.0.1:{port}"), child }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One address in front of the replicas, like a load balancer without session affinity: each
/// request goes to the replica named last, streams included.
#[derive(Clone)]
struct Balancer {
    url: String,
    target: Arc<Mutex<String>>,
}

impl Balancer {
    async fn spawn() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let balancer = Balancer { url: format!("http://{}", listener.local_addr().unwrap()), target: Arc::default() };
        let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
        let app = axum::Router::new().fallback(forward).with_state((balancer.clone(), client));
        tokio::spawn(async move { axum::serve(listener, app).await });
        balancer
    }

    fn route_to(&self, replica: &TestApp) {
        *self.target.lock().unwrap() = replica.url.clone();
    }
}

async fn forward(
    State((balancer, client)): State<(Balancer, Client<HttpConnector, Body>)>,
    mut request: Request,
) -> Response {
    let target = balancer.target.lock().unwrap().clone();
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = format!("{target}{path}").parse().unwrap();
    match client.request(request).await {
        Ok(response) => response.map(Body::new),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

#[tokio::test]
async fn two_replicas_share_sessions_conversations_and_the_one_turn_guard() {
    let redis = RedisServer::start();
    let balancer = Balancer::spawn().await;
    let first = spawn_with(Options {
        orders_stack: true,
        public_url: Some(balancer.url.clone()),
        env: vec![("CHAT_APP_SESSION_STORE", redis.url.clone())],
        ..Options::default()
    })
    .await;
    let second = first.replica().await;
    // What the browser talks to: the balancer's address.
    let front = first.reached_at(&balancer.url);
    let browser = Browser::new(&front.origin);

    balancer.route_to(&first);
    let (page, _) = browser.sign_in(&front, "alice").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);

    // Signed in on the first replica, known to the second; a turn runs and streams there.
    balancer.route_to(&second);
    let chat = browser.get(&format!("{}/chat", front.url)).await;
    assert_eq!(chat.status, StatusCode::OK, "{}", chat.body);
    assert!(chat.body.contains("Alice Johnson"), "{}", chat.body);
    let events = browser.chat(&front, "show my orders").await;
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{events:?}");

    // The first replica shows the conversation the second one saved.
    balancer.route_to(&first);
    let loaded = browser.post_form(&format!("{}/api/chat/load", front.url), &[], Some(&front.origin)).await;
    assert_eq!(loaded.status, StatusCode::OK, "{}", loaded.body);
    assert!(loaded.body.contains("show my orders") && loaded.body.contains("list_orders"), "{}", loaded.body);

    // One turn at a time per conversation, across replicas: while a turn on the second waits
    // for the user's yes, the first refuses another.
    balancer.route_to(&second);
    let events = browser
        .chat_live(&front, "Order 2 keyboards", async |call| {
            balancer.route_to(&first);
            let busy = browser.send_message(&front, "show my orders").await;
            assert_eq!(busy.status, StatusCode::CONFLICT, "{}", busy.body);
            // The answer reaches the replica running the turn (session affinity, in Azure).
            balancer.route_to(&second);
            assert_eq!(browser.answer(&front, &call, true).await.status, StatusCode::OK);
        })
        .await;
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{events:?}");
    // The lease is released with the turn: the first replica takes the next one.
    balancer.route_to(&first);
    let events = browser.chat(&front, "show my orders").await;
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{events:?}");

    // Signing out on the second replica signs the session out on the first.
    let cookie = browser.cookie(&front.url, COOKIE).unwrap();
    balancer.route_to(&second);
    let page = browser.post_form(&format!("{}/auth/sign-out", front.url), &[], Some(&front.origin)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    balancer.route_to(&first);
    let old = Browser::new(&front.origin);
    old.set_cookie(&front.url, COOKIE, &cookie);
    assert_eq!(old.get(&format!("{}/chat", front.url)).await.status, StatusCode::SEE_OTHER, "signed out");
    let page = old.send_message(&front, "show my orders").await;
    assert!(page.body.contains("sign-in required"), "{}", page.body);
}

/// tower-sessions saves a changed session when its response ends: a request in flight while the
/// session signs out on another replica must not write it back (the Redis store saves with
/// `SET … XX`, only if the key still exists).
#[tokio::test]
async fn a_request_in_flight_at_sign_out_does_not_bring_the_session_back_on_another_replica() {
    let server = RedisServer::start();
    let settings = RedisSettings { url: server.url.clone().into(), entra: None };
    let connect = || Redis::connect(&settings, Duration::from_secs(3600));
    let (here, there) = (Sessions::redis(&connect().await.unwrap()), Sessions::redis(&connect().await.unwrap()));
    let mut record = Record {
        id: Id::default(),
        data: [("auth.user".to_string(), serde_json::json!("alice"))].into(),
        expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    here.create(&mut record).await.unwrap();
    let in_flight = here.load(&record.id).await.unwrap().unwrap();
    there.delete(&record.id).await.unwrap();
    here.save(&in_flight).await.unwrap();
    assert!(there.load(&record.id).await.unwrap().is_none(), "sign-out must win");
}

/// One turn per conversation across replicas. The end of a turn releases its lease before the
/// turn says it is done, so the user's next message finds the conversation free at once; a lease
/// dropped without that (a turn that panicked) is released in the background. (A replica that
/// dies stops renewing: the lease lapses within 30 s.)
#[tokio::test]
async fn a_turn_lease_is_exclusive_and_released_when_dropped() {
    let server = RedisServer::start();
    let settings = RedisSettings { url: server.url.clone().into(), entra: None };
    let (a, b) = (
        Redis::connect(&settings, Duration::from_secs(3600)).await.unwrap(),
        Redis::connect(&settings, Duration::from_secs(3600)).await.unwrap(),
    );
    let lease = a.lease_turn("c1").await.unwrap().expect("free");
    assert!(b.lease_turn("c1").await.unwrap().is_none(), "held by a");
    assert!(b.lease_turn("c2").await.unwrap().is_some(), "per conversation");
    lease.release().await;
    let lease = b.lease_turn("c1").await.unwrap().expect("released at once");
    assert!(a.lease_turn("c1").await.unwrap().is_none(), "held by b");
    drop(lease);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if a.lease_turn("c1").await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the dropped lease was not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
