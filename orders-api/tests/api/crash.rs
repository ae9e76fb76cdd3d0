//! Nothing acknowledged is lost (issue #17): the binary is killed with SIGKILL while users create
//! orders, restarted on the same file, and every create it answered 201 is there, once, with its
//! owner; retries with the same `Idempotency-Key` create nothing more.
//!
//! Why it holds: orders-api's writer runs SQLite in WAL mode with `synchronous=NORMAL`
//! (`src/database.rs`). A transaction is committed once its WAL frames are written, before the
//! response leaves; a killed process loses nothing the OS already has. NORMAL skips the fsync at
//! each commit, so only an OS crash or power loss could roll back the last commits
//! (<https://www.sqlite.org/wal.html#performance_considerations>,
//! <https://www.sqlite.org/pragma.html#pragma_synchronous>); FULL would cover those too, at an
//! fsync per order.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::binary::{orders_api, serve};
use crate::helpers::{ALL_SCOPES, spawn_idp};

const WRITERS: usize = 8;
const USERS: [&str; 3] = ["alice", "bob", "carol"];

/// One create: the user, its key and product (unique per request), and the id if answered 201.
#[derive(Debug)]
struct Attempt {
    user: &'static str,
    key: String,
    answered: Option<String>,
}

async fn create(client: &reqwest::Client, base: &str, token: &str, key: &str) -> Result<(u16, Value), reqwest::Error> {
    let response = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({ "product": format!("crash {key}"), "quantity": 1 }))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_acknowledged_before_a_sigkill_survive_it_once_and_retries_create_nothing() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let tokens: BTreeMap<&str, String> = USERS
        .iter()
        .map(|user| (*user, idp.handle().user_token(user, "orders-mcp", "orders-api", ALL_SCOPES).unwrap()))
        .collect();
    let client = reqwest::Client::new();

    let running = serve(orders_api(&idp.url(), &path));
    let writers = (0..WRITERS).map(|w| {
        let (client, base, tokens) = (client.clone(), running.address.clone(), tokens.clone());
        tokio::spawn(async move {
            let user = USERS[w % USERS.len()];
            let mut attempts = Vec::new();
            for n in 0.. {
                let key = format!("w{w}-{n}");
                let answered = match create(&client, &base, &tokens[user], &key).await {
                    Ok((201, order)) => Some(order["id"].as_str().unwrap().to_string()),
                    Ok((status, body)) => panic!("{key}: {status} {body}"),
                    // The kill: this one may or may not have been committed.
                    Err(_) => None,
                };
                let done = answered.is_none();
                attempts.push(Attempt { user, key, answered });
                if done {
                    return attempts;
                }
            }
            unreachable!()
        })
    });
    let writers: Vec<_> = writers.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.stop(); // SIGKILL (`Child::kill`), mid-write: eight creates are in flight.
    let mut attempts = Vec::new();
    for writer in writers {
        attempts.extend(writer.await.unwrap());
    }
    let acknowledged = attempts.iter().filter(|a| a.answered.is_some()).count();
    assert!(acknowledged >= WRITERS, "too few creates before the kill to mean anything: {acknowledged}");

    // Restarted on the same file, every client retries every create with its key.
    let running = serve(orders_api(&idp.url(), &path));
    for attempt in &attempts {
        let (status, order) = create(&client, &running.address, &tokens[attempt.user], &attempt.key).await.unwrap();
        assert_eq!(status, 201, "{}: {order}", attempt.key);
        if let Some(id) = &attempt.answered {
            assert_eq!(order["id"], id.as_str(), "{}: a retry is the acknowledged order", attempt.key);
        }
    }
    running.stop();

    // The file itself: each request's order exists exactly once, owned by who created it.
    let database = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(SqliteConnectOptions::new().filename(&path).read_only(true))
        .await
        .unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, owner_oid, product FROM orders WHERE product LIKE 'crash %'")
            .fetch_all(&database)
            .await
            .unwrap();
    assert_eq!(rows.len(), attempts.len(), "one order per request, none twice");
    let by_product: BTreeMap<&str, (&str, &str)> =
        rows.iter().map(|(id, owner, product)| (product.as_str(), (id.as_str(), owner.as_str()))).collect();
    for attempt in &attempts {
        let (id, owner) = by_product[format!("crash {}", attempt.key).as_str()];
        assert_eq!(owner, idp.handle().manifest().user(attempt.user).unwrap().oid, "{}", attempt.key);
        if let Some(answered) = &attempt.answered {
            assert_eq!(id, answered, "{}", attempt.key);
        }
    }
}
