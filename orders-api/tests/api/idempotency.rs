//! `Idempotency-Key`: a retried create returns the first result and creates nothing, even
//! when the retries race (acceptance 3).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::helpers::{ALL_SCOPES, TestApp, assert_problem, spawn_app};

async fn create_with_key(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.request(Method::POST, "/api/orders", token).header("idempotency-key", key).json(body).send().await.unwrap()
}

#[tokio::test]
async fn a_retry_replays_the_first_response_and_a_changed_body_is_refused() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let body = json!({ "product": "Desk lamp", "quantity": 2 });
    let first = create_with_key(&app, &alice, "lamp-1", &body).await;
    assert_eq!(first.status(), 201);
    let location = first.headers().get("location").cloned();
    let first: Value = first.json().await.unwrap();

    // A retry, even after the order changed, gets the first response again, marked as such.
    assert_eq!(app.cancel(first["id"].as_str().unwrap(), &alice).await.status(), 200);
    let retry = create_with_key(&app, &alice, "lamp-1", &json!({ "quantity": 2, "product": " Desk lamp " })).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(retry.headers().get("location").cloned(), location);
    assert_eq!(retry.json::<Value>().await.unwrap(), first);

    let changed = create_with_key(&app, &alice, "lamp-1", &json!({ "product": "Desk lamp", "quantity": 3 })).await;
    assert_problem(changed, 422, "idempotency-key-reused").await;

    // Keys belong to a user: bob's "lamp-1" is a different key.
    let bob = app.token("bob", ALL_SCOPES);
    let bobs = create_with_key(&app, &bob, "lamp-1", &body).await;
    assert_eq!(bobs.status(), 201);
    assert!(bobs.headers().get("idempotent-replayed").is_none());
    assert_ne!(bobs.json::<Value>().await.unwrap()["id"], first["id"]);

    let carol = app.token("carol", ALL_SCOPES);
    let all = app.list_all(&carol, "").await;
    assert_eq!(all.iter().filter(|o| o["product"] == "Desk lamp").count(), 2, "one order per user, not per request");
}

#[tokio::test]
async fn a_thousand_concurrent_creates_with_retried_keys_give_exactly_the_expected_rows() {
    let app = Arc::new(spawn_app().await);
    let tokens = Arc::new([app.token("alice", ALL_SCOPES), app.token("bob", ALL_SCOPES)]);
    let carol = app.token("carol", ALL_SCOPES);
    let seeded = app.list_all(&carol, "").await.len();

    // 300 keys sent twice with the same body, 100 keys sent twice with different bodies,
    // 200 creates without a key: 1,000 requests that must make exactly 600 orders.
    struct Request {
        user: usize,
        key: Option<String>,
        body: Value,
    }
    let mut requests = Vec::new();
    for i in 0..300 {
        for _ in 0..2 {
            let body = json!({ "product": format!("same-{i}"), "quantity": 1 + i % 1000 });
            requests.push(Request { user: i % 2, key: Some(format!("same-{i}")), body });
        }
    }
    for i in 0..100 {
        for variant in 0..2 {
            let body = json!({ "product": format!("differs-{i}"), "quantity": 1 + variant });
            requests.push(Request { user: i % 2, key: Some(format!("differs-{i}")), body });
        }
    }
    for i in 0..200 {
        requests.push(Request {
            user: i % 2,
            key: None,
            body: json!({ "product": format!("plain-{i}"), "quantity": 5 }),
        });
    }
    assert_eq!(requests.len(), 1000);
    fastrand::Rng::with_seed(3).shuffle(&mut requests);

    let barrier = Arc::new(Barrier::new(requests.len()));
    let mut tasks = Vec::new();
    for request in requests {
        let (app, tokens, barrier) = (app.clone(), tokens.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut builder = app.request(Method::POST, "/api/orders", &tokens[request.user]).json(&request.body);
            if let Some(key) = &request.key {
                builder = builder.header("idempotency-key", key);
            }
            barrier.wait().await;
            let response = builder.send().await.unwrap();
            let status = response.status().as_u16();
            let replayed = response.headers().contains_key("idempotent-replayed");
            let body = response.text().await.unwrap();
            (request.user, request.key, status, replayed, body)
        }));
    }
    // (user, key) -> every (status, replayed, body) answered for it.
    type Answers = Vec<(u16, bool, String)>;
    let mut by_key: BTreeMap<(usize, String), Answers> = BTreeMap::new();
    let mut created_ids = BTreeSet::new();
    let mut plain = 0;
    for task in tasks {
        let (user, key, status, replayed, body) = task.await.unwrap();
        assert!(!body.contains("locked"), "a database lock reached a client: {body}");
        assert!(status == 201 || status == 422, "unexpected {status}: {body}");
        if status == 201 && !replayed {
            let order: Value = serde_json::from_str(&body).unwrap();
            assert!(created_ids.insert(order["id"].as_str().unwrap().to_string()), "an id was handed out twice");
        }
        match key {
            Some(key) => by_key.entry((user, key)).or_default().push((status, replayed, body)),
            None => {
                assert_eq!(status, 201);
                plain += 1;
            }
        }
    }
    assert_eq!(plain, 200);
    assert_eq!(by_key.len(), 400);
    for ((_, key), answers) in &by_key {
        let new = answers.iter().filter(|(status, replayed, _)| *status == 201 && !replayed).count();
        assert_eq!(new, 1, "{key}: {answers:?}");
        if key.starts_with("same-") {
            assert!(answers.iter().all(|(status, _, _)| *status == 201), "{key}: {answers:?}");
            assert_eq!(answers[0].2, answers[1].2, "{key}: the retry got a different body");
        } else {
            assert_eq!(answers.iter().filter(|(status, _, _)| *status == 422).count(), 1, "{key}: {answers:?}");
        }
    }
    assert_eq!(created_ids.len(), 600);

    let all = app.list_all(&carol, "").await;
    assert_eq!(all.len(), seeded + 600, "rows doubled or lost");
    let listed: BTreeSet<String> = all.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect();
    assert!(created_ids.is_subset(&listed));
    for prefix in ["same-", "differs-", "plain-"] {
        let products: Vec<_> =
            all.iter().filter_map(|o| o["product"].as_str()).filter(|p| p.starts_with(prefix)).collect();
        let distinct: BTreeSet<_> = products.iter().collect();
        assert_eq!(products.len(), distinct.len(), "{prefix}: a product appears twice");
    }
}
