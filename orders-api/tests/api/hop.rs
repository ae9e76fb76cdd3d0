//! The hop record (`x-hop-trace`): on every response to a valid token, saying what this hop
//! saw and decided, and never on a refused token.

use entra_auth::hop::{Decision, How};
use serde_json::json;

use crate::helpers::{ALL_SCOPES, hop_of, spawn_app};

#[tokio::test]
async fn an_allowed_request_reports_the_token_it_saw() {
    let app = spawn_app().await;
    let token = app.token("alice", ALL_SCOPES);
    let response = app.get("/api/orders/ORD-001", &token).await;
    assert_eq!(response.status(), 200);
    let raw = response.headers().get("x-hop-trace").unwrap().to_str().unwrap().to_string();
    let hop = hop_of(&response).unwrap();
    assert_eq!(hop.service, "orders-api");
    assert_eq!(hop.how, How::Obo);
    assert_eq!(hop.decision, Decision::Allowed);
    assert!(hop.elapsed_ms >= 0.0 && hop.elapsed_ms < 10_000.0, "{}", hop.elapsed_ms);
    let manifest = app.idp.handle().manifest();
    assert_eq!(hop.token.aud, "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local");
    assert_eq!(hop.token.iss, app.idp.handle().issuers().v1);
    assert_eq!(hop.token.ver, "1.0");
    assert_eq!(hop.token.scp, ALL_SCOPES);
    assert_eq!(hop.token.client_id, manifest.app("orders-mcp").unwrap().client_id);
    assert_eq!(hop.token.oid, app.oid("alice"));
    assert_eq!(hop.token.name.as_deref(), Some("Alice Johnson"));
    assert_eq!(hop.token.tid, manifest.tenant.id);
    assert!(hop.token.token_id_suffix.len() <= 6);
    assert!(!raw.contains(&token) && !token.contains(&raw), "the hop carries no token");
    let decoded = String::from_utf8(base64_decode(&raw)).unwrap();
    for part in token.split('.') {
        assert!(!decoded.contains(part), "a token segment is in the hop record");
    }
}

fn base64_decode(value: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value).unwrap()
}

#[tokio::test]
async fn refusals_after_validation_name_the_reason_and_only_missing_permissions_are_denials() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let read_only = app.token("alice", &["Orders.Read"]);

    // The token was accepted in each of these: the request failed, not the identity. ORD-006 is
    // bob's: the reason is the same as for an order that does not exist.
    let hidden = hop_of(&app.get("/api/orders/ORD-006", &alice).await).unwrap();
    let missing = hop_of(&app.get("/api/orders/ORD-999", &alice).await).unwrap();
    assert_eq!(hidden.decision, Decision::Refused { reason: "order ORD-006 not found".into() });
    assert_eq!(missing.decision, Decision::Refused { reason: "order ORD-999 not found".into() });

    let conflict = hop_of(&app.cancel("ORD-002", &alice).await).unwrap();
    assert!(matches!(&conflict.decision, Decision::Refused { reason } if reason.contains("shipped")), "{conflict:?}");

    let forbidden = hop_of(&app.create(&read_only, &json!({ "product": "K", "quantity": 1 })).await).unwrap();
    assert!(
        matches!(&forbidden.decision, Decision::Denied { reason } if reason.contains("Orders.ReadWrite")),
        "{forbidden:?}"
    );
    assert_eq!(forbidden.token.scp, ["Orders.Read"]);

    let invalid = hop_of(&app.create(&alice, &json!({ "product": "", "quantity": 1 })).await).unwrap();
    assert!(matches!(&invalid.decision, Decision::Refused { reason } if reason.contains("product")), "{invalid:?}");
}

#[tokio::test]
async fn no_hop_without_a_valid_token_or_outside_the_api() {
    let app = spawn_app().await;
    let no_token = app.client.get(app.url("/api/orders")).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert!(hop_of(&no_token).is_none());
    let expired = {
        let mut claims = app.idp.handle().user_claims("alice", "orders-mcp", "orders-api", ALL_SCOPES).unwrap();
        claims["exp"] = json!(0);
        app.idp.handle().sign(&claims).unwrap()
    };
    let response = app.get("/api/orders", &expired).await;
    assert_eq!(response.status(), 401);
    assert!(hop_of(&response).is_none());
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(hop_of(&health).is_none());
}
