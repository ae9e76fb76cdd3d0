//! The orders endpoints' behaviour: seeds, listing and paging, reading, creating, cancelling
//! and deleting, with the status rules.

use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, PUBLIC_URL, assert_problem, spawn_app};

fn ids(orders: &[Value]) -> Vec<String> {
    orders.iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn the_demo_orders_are_seeded_for_alice_and_bob() {
    let app = spawn_app().await;
    let carol = app.token("carol", ALL_SCOPES);
    let all = app.list_all(&carol, "").await;
    assert_eq!(ids(&all), ["ORD-001", "ORD-002", "ORD-003", "ORD-004", "ORD-005", "ORD-006", "ORD-007", "ORD-008"]);
    let (alice, bob) = (app.oid("alice"), app.oid("bob"));
    assert_eq!(all.iter().filter(|o| o["owner_oid"] == alice.as_str()).count(), 4);
    assert_eq!(all.iter().filter(|o| o["owner_oid"] == bob.as_str()).count(), 4);
    for order in &all {
        let owner = if order["owner_oid"] == alice.as_str() { "alice" } else { "bob" };
        let expected_name = app.display_name(owner);
        assert_eq!(order["customer_name"], expected_name);
    }
    let statuses: std::collections::BTreeSet<_> = all.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 5, "every status is represented: {statuses:?}");
    assert!(
        all.iter().all(|o| o["created_at"].as_str().unwrap() < o["updated_at"].as_str().unwrap()
            || o["created_at"] == o["updated_at"])
    );
}

#[tokio::test]
async fn a_user_lists_their_own_orders_filtered_and_paged() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    for i in 0..5 {
        assert_eq!(app.create(&token, &json!({ "product": format!("Item {i}"), "quantity": 1 })).await.status(), 201);
    }
    let mine = app.list_all(&token, "").await;
    assert_eq!(mine.len(), 9);
    assert!(mine.iter().all(|o| o["owner_oid"] == app.oid("alice").as_str()));
    let all_ids = ids(&mine);
    let mut sorted = all_ids.clone();
    sorted.sort_by_key(|id| id[4..].parse::<u64>().unwrap());
    assert_eq!(all_ids, sorted, "oldest first");

    // Pages of 2 cover the same orders exactly once, then say there is no more.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let response = app.get(&format!("/api/orders?limit=2{cursor}"), &token).await;
        let page: Value = response.json().await.unwrap();
        let orders = page["orders"].as_array().unwrap();
        assert!(orders.len() <= 2);
        paged.extend(ids(orders));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, all_ids);
    assert_eq!(pages, 5);
    let default_page: Value = app.get("/api/orders", &token).await.json().await.unwrap();
    assert_eq!(default_page["orders"].as_array().unwrap().len(), 9);
    assert!(default_page["next_cursor"].is_null());

    let pending = app.list_all(&token, "&status=pending").await;
    assert_eq!(pending.len(), 6, "ORD-004 and the five new ones");
    assert!(pending.iter().all(|o| o["status"] == "pending"));
    let shipped = app.list_all(&token, "&status=shipped").await;
    assert_eq!(ids(&shipped), ["ORD-002"]);
}

#[tokio::test]
async fn creating_an_order_records_the_caller_and_answers_201_with_location() {
    let app = spawn_app().await;
    let token = app.token("bob", ALL_SCOPES);
    let response = app.create(&token, &json!({ "product": "  Standing desk  ", "quantity": 1000 })).await;
    assert_eq!(response.status(), 201);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let location = response.headers().get("location").unwrap().to_str().unwrap().to_string();
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["id"], "ORD-009");
    assert_eq!(location, format!("{PUBLIC_URL}/api/orders/ORD-009"));
    assert_eq!(order["owner_oid"], app.oid("bob"));
    assert_eq!(order["customer_name"], "Bob Smith");
    assert_eq!(order["product"], "Standing desk");
    assert_eq!(order["quantity"], 1000);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["created_at"], order["updated_at"]);
    let fetched: Value = app.get("/api/orders/ORD-009", &token).await.json().await.unwrap();
    assert_eq!(fetched, order);
    let keys: Vec<_> = order.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 8, "exactly the contract's fields: {keys:?}");
}

#[tokio::test]
async fn only_pending_and_processing_orders_can_be_cancelled() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let bob = app.token("bob", ALL_SCOPES);
    // ORD-004 is alice's pending order; ORD-003 is bob's processing one.
    for (id, token) in [("ORD-004", &alice), ("ORD-003", &bob)] {
        let response = app.cancel(id, token).await;
        assert_eq!(response.status(), 200, "{id}");
        let order: Value = response.json().await.unwrap();
        assert_eq!(order["status"], "cancelled");
        assert!(order["updated_at"].as_str().unwrap() > order["created_at"].as_str().unwrap());
    }
    // Delivered, shipped, and (now) cancelled orders refuse, and stay as they were.
    for (id, status) in
        [("ORD-001", "delivered"), ("ORD-002", "shipped"), ("ORD-007", "cancelled"), ("ORD-004", "cancelled")]
    {
        let problem = assert_problem(app.cancel(id, &alice).await, 409, "conflict").await;
        assert!(problem["detail"].as_str().unwrap().contains(status), "{problem}");
        let order: Value = app.get(&format!("/api/orders/{id}"), &alice).await.json().await.unwrap();
        assert_eq!(order["status"], status);
    }
}

#[tokio::test]
async fn an_admin_sees_cancels_and_deletes_any_order() {
    let app = spawn_app().await;
    let carol = app.token("carol", ALL_SCOPES);
    let bob = app.token("bob", ALL_SCOPES);
    let order: Value = app.get("/api/orders/ORD-006", &carol).await.json().await.unwrap();
    assert_eq!(order["owner_oid"], app.oid("bob"));
    let cancelled: Value = app.cancel("ORD-006", &carol).await.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["owner_oid"], app.oid("bob"), "cancelling does not change the owner");
    let pending = app.list_all(&carol, "&status=pending").await;
    assert_eq!(ids(&pending), ["ORD-004"]);

    assert_eq!(app.delete("ORD-006", &carol).await.status(), 204);
    assert_problem(app.get("/api/orders/ORD-006", &bob).await, 404, "not-found").await;
    assert_problem(app.delete("ORD-006", &carol).await, 404, "not-found").await;
    // Ids are never reused after a delete.
    let created: Value = app.create(&bob, &json!({ "product": "Lamp", "quantity": 1 })).await.json().await.unwrap();
    assert_eq!(created["id"], "ORD-009");
    assert_eq!(app.delete("ORD-009", &carol).await.status(), 204);
    let created: Value = app.create(&bob, &json!({ "product": "Lamp", "quantity": 1 })).await.json().await.unwrap();
    assert_eq!(created["id"], "ORD-010");
}

#[tokio::test]
async fn health_readiness_metadata_and_docs_answer() {
    let app = spawn_app().await;
    let health: Value = app.client.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({ "status": "ok" }));
    let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready, json!({ "status": "ready" }));
    let metadata: Value =
        app.client.get(app.url("/.well-known/oauth-protected-resource")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], format!("{PUBLIC_URL}/"));
    assert_eq!(metadata["authorization_servers"], json!([app.idp.handle().issuers().v2]));
    assert_eq!(
        metadata["scopes_supported"],
        json!([
            "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.Read",
            "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.ReadWrite"
        ])
    );
    // The 401 challenge points at that document.
    let response = app.client.get(app.url("/api/orders")).send().await.unwrap();
    let challenge = response.headers().get("www-authenticate").unwrap().to_str().unwrap();
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{PUBLIC_URL}/.well-known/oauth-protected-resource\""));

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.headers().get("content-type").unwrap(), "text/html; charset=utf-8");
    let html = docs.text().await.unwrap();
    for expected in ["/api/orders/{id}/cancel", "Idempotency-Key", "x-hop-trace", "Orders.Admin", "409"] {
        assert!(html.contains(expected), "the docs page lacks {expected}");
    }
    assert!(!html.contains("<script"), "the docs page needs no scripts (no CDN)");
}
