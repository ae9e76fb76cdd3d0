//! Acceptance 1: an MCP client lists the tools and calls each one, through orders-mcp and the
//! real orders-api, as alice, bob and carol; nobody sees anyone else's orders except the admin.

use entra_auth::hop::{Decision, How};
use serde_json::{Value, json};

use crate::helpers::{TestStack, call, hops, is_error, sent_token, structured, text};

const TOOLS: [&str; 5] = ["cancel_order", "create_order", "get_order", "list_orders", "whoami"];

#[tokio::test]
async fn tools_list_describes_every_tool_with_schemas_and_annotations() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let mut tools = client.list_all_tools().await.unwrap();
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOLS);

    for tool in &tools {
        assert!(tool.description.as_ref().is_some_and(|d| d.len() > 30), "{} needs a description", tool.name);
        let output = tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} has no outputSchema", tool.name));
        assert_eq!(output.get("type"), Some(&json!("object")), "{}", tool.name);
        let a = tool.annotations.as_ref().unwrap_or_else(|| panic!("{} has no annotations", tool.name));
        assert_eq!(a.open_world_hint, Some(false), "{}", tool.name);
        match tool.name.as_ref() {
            "whoami" | "list_orders" | "get_order" => assert_eq!(a.read_only_hint, Some(true), "{}", tool.name),
            "create_order" => {
                assert_eq!(
                    (a.read_only_hint, a.destructive_hint, a.idempotent_hint),
                    (Some(false), Some(false), Some(false))
                )
            }
            "cancel_order" => {
                assert_eq!(
                    (a.read_only_hint, a.destructive_hint, a.idempotent_hint),
                    (Some(false), Some(true), Some(true))
                )
            }
            other => panic!("unexpected tool {other}"),
        }
    }
    // Argument descriptions reach the model.
    let create = tools.iter().find(|t| t.name == "create_order").unwrap();
    let props = &create.input_schema["properties"];
    assert!(props["product"]["description"].as_str().is_some_and(|d| d.contains("order")), "{props}");
    assert_eq!(create.input_schema["required"], json!(["product", "quantity"]));
    let list = tools.iter().find(|t| t.name == "list_orders").unwrap();
    assert!(list.input_schema["properties"]["status"]["description"].is_string());
    let statuses = serde_json::to_string(&list.input_schema).unwrap();
    for s in ["pending", "processing", "shipped", "delivered", "cancelled"] {
        assert!(statuses.contains(s), "{statuses}");
    }
}

/// Every successful result's `structuredContent` matches the tool's `outputSchema`.
#[tokio::test]
async fn structured_content_conforms_to_the_output_schemas() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let tools = client.list_all_tools().await.unwrap();
    let calls = [
        ("whoami", json!({})),
        ("list_orders", json!({})),
        ("get_order", json!({"id": "ORD-001"})),
        ("create_order", json!({"product": "Trackball", "quantity": 1})),
        ("cancel_order", json!({"id": "ORD-004"})),
    ];
    for (tool, args) in calls {
        let result = call(&client, tool, args).await;
        let value = structured(&result);
        let schema = tools.iter().find(|t| t.name == tool).unwrap().output_schema.clone().unwrap();
        let validator = jsonschema::validator_for(&Value::Object(schema.as_ref().clone())).unwrap();
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{tool}: {errors:?}\n{value}");
        // A short text for clients that ignore structured output, and the JSON itself.
        assert!(result.content.len() == 2, "{tool}");
        assert_eq!(serde_json::from_str::<Value>(&result.content[1].as_text().unwrap().text).unwrap(), value);
    }
}

#[tokio::test]
async fn whoami_reports_the_caller_and_this_hop() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let result = call(&client, "whoami", json!({})).await;
    let me = structured(&result);
    assert_eq!(me["oid"], stack.user_oid("alice"));
    assert_eq!(me["name"], "Alice Johnson");
    assert_eq!(me["scopes"], json!(["access_as_user"]));
    assert_eq!(me["client_id"], stack.client_id("chat-app"));
    assert_eq!(me["audience"], stack.client_id("orders-mcp"));
    assert_eq!(me["token_version"], "2.0");
    assert_eq!(me["downstream"], "obo");
    assert!(text(&result).contains("Alice Johnson"));

    let hops = hops(&result);
    assert_eq!(hops.len(), 1, "whoami does not call orders-api");
    assert_eq!(hops[0].service, "orders-mcp");
    assert_eq!(hops[0].how, How::Direct);
    assert_eq!(hops[0].decision, Decision::Allowed);
    assert_eq!(hops[0].token.oid, stack.user_oid("alice"));
    assert_eq!(hops[0].token.ver, "2.0");
    assert!(sent_token(&result).is_none());
    assert_eq!(stack.stats().on_behalf_of, 0, "whoami needs no exchange");
}

fn owners(page: &Value) -> Vec<String> {
    page["orders"].as_array().unwrap().iter().map(|o| o["owner_oid"].as_str().unwrap().to_string()).collect()
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn alice_never_sees_or_touches_bobs_orders_through_any_tool() {
    let stack = TestStack::spawn().await;
    let alice = stack.client("alice").await;
    let bob = stack.client("bob").await;
    let (alice_oid, bob_oid) = (stack.user_oid("alice"), stack.user_oid("bob"));

    let page = structured(&call(&alice, "list_orders", json!({"limit": 100})).await);
    assert!(!owners(&page).is_empty());
    assert!(owners(&page).iter().all(|o| *o == alice_oid), "{page}");
    let bobs = structured(&call(&bob, "list_orders", json!({"limit": 100})).await);
    assert!(owners(&bobs).iter().all(|o| *o == bob_oid), "{bobs}");
    let bob_ids = ids(&bobs);
    assert!(!bob_ids.is_empty());

    for id in &bob_ids {
        assert!(!ids(&page).contains(id));
        let got = call(&alice, "get_order", json!({"id": id})).await;
        assert!(is_error(&got), "alice read {id}: {}", text(&got));
        assert!(text(&got).contains(&format!("no order {id} was found")), "{}", text(&got));
        // The refusal is orders-api's, for alice, on the merits (her token was fine): its hop says so.
        let api_hop = &hops(&got)[1];
        assert_eq!(api_hop.token.oid, alice_oid);
        assert!(matches!(api_hop.decision, Decision::Refused { .. }), "{api_hop:?}");
    }
    // Cancelling bob's pending order as alice fails, and the order stays as it was.
    let bob_pending = bobs["orders"].as_array().unwrap().iter().find(|o| o["status"] == "pending").unwrap();
    let id = bob_pending["id"].as_str().unwrap();
    let cancel = call(&alice, "cancel_order", json!({"id": id})).await;
    assert!(is_error(&cancel), "{}", text(&cancel));
    assert_eq!(structured(&call(&bob, "get_order", json!({"id": id})).await)["status"], "pending");

    // What alice creates is hers, and bob cannot see it.
    let created = structured(&call(&alice, "create_order", json!({"product": "Desk lamp", "quantity": 2})).await);
    assert_eq!(created["owner_oid"], alice_oid);
    let new_id = created["id"].as_str().unwrap();
    assert!(is_error(&call(&bob, "get_order", json!({"id": new_id})).await));
    assert!(!ids(&structured(&call(&bob, "list_orders", json!({"limit": 100})).await)).contains(&new_id.to_string()));
}

#[tokio::test]
async fn carol_the_admin_sees_every_customers_orders() {
    let stack = TestStack::spawn().await;
    let carol = stack.client("carol").await;
    let page = structured(&call(&carol, "list_orders", json!({"limit": 100})).await);
    let owners = owners(&page);
    assert!(owners.contains(&stack.user_oid("alice")) && owners.contains(&stack.user_oid("bob")), "{page}");
    let bobs = structured(&call(&stack.client("bob").await, "list_orders", json!({})).await);
    let id = &ids(&bobs)[0];
    let order = structured(&call(&carol, "get_order", json!({"id": id})).await);
    assert_eq!(order["owner_oid"], stack.user_oid("bob"));
    // The admin role reached orders-api in the exchanged token.
    let result = call(&carol, "get_order", json!({"id": id})).await;
    assert!(hops(&result)[1].token.roles.contains(&"Orders.Admin".to_string()));
}

#[tokio::test]
async fn each_tool_works_and_reports_both_hops() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let alice = stack.user_oid("alice");

    let created = call(&client, "create_order", json!({"product": "  Standing desk ", "quantity": 1})).await;
    let order = structured(&created);
    assert_eq!(
        (order["product"].as_str(), order["quantity"].as_u64(), order["status"].as_str()),
        (Some("Standing desk"), Some(1), Some("pending"))
    );
    assert!(text(&created).starts_with("Created order"));
    let id = order["id"].as_str().unwrap().to_string();

    let got = structured(&call(&client, "get_order", json!({"id": id})).await);
    assert_eq!(got, order);

    let cancelled = call(&client, "cancel_order", json!({"id": id})).await;
    assert_eq!(structured(&cancelled)["status"], "cancelled");
    // Cancelling again changes nothing, and says why.
    let again = call(&client, "cancel_order", json!({"id": id})).await;
    assert!(is_error(&again));
    assert!(text(&again).contains(&format!("order {id} cannot be cancelled")), "{}", text(&again));

    // The hop trace: orders-mcp saw alice's token for itself; orders-api saw the exchanged one.
    let hops = hops(&cancelled);
    assert_eq!(hops.len(), 2);
    let (mcp, api) = (&hops[0], &hops[1]);
    assert_eq!((mcp.service.as_str(), mcp.how), ("orders-mcp", How::Direct));
    assert_eq!(mcp.token.aud, stack.client_id("orders-mcp"));
    assert_eq!((api.service.as_str(), api.how, &api.decision), ("orders-api", How::Obo, &Decision::Allowed));
    assert_eq!(api.token.aud, "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local");
    assert_eq!(api.token.ver, "1.0");
    assert_eq!(api.token.client_id, stack.client_id("orders-mcp"), "the exchanged token was issued to orders-mcp");
    assert_eq!((mcp.token.oid.as_str(), api.token.oid.as_str()), (alice.as_str(), alice.as_str()));
    assert!(api.token.scp.contains(&"Orders.ReadWrite".to_string()));
    assert_ne!(mcp.token.token_id_suffix, api.token.token_id_suffix, "two different tokens");
    assert!(mcp.elapsed_ms >= api.elapsed_ms);
    assert_eq!(sent_token(&cancelled).unwrap()["how"], "obo");
}

#[tokio::test]
async fn list_orders_filters_by_status_and_pages_with_the_cursor() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let all = structured(&call(&client, "list_orders", json!({"limit": 100})).await);
    let delivered = structured(&call(&client, "list_orders", json!({"status": "delivered"})).await);
    assert!(!ids(&delivered).is_empty());
    assert!(delivered["orders"].as_array().unwrap().iter().all(|o| o["status"] == "delivered"), "{delivered}");

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"limit": 1});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let result = call(&client, "list_orders", args).await;
        let page = structured(&result);
        assert!(ids(&page).len() <= 1);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(text(&result).contains("next_cursor"));
                cursor = Some(next.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, ids(&all), "paging one at a time yields the same orders in the same order");
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_the_model_can_read() {
    let stack = TestStack::spawn().await;
    let client = stack.client("alice").await;
    let cases = [
        ("get_order", json!({"id": "../admin"}), "not an order id"),
        ("cancel_order", json!({"id": ""}), "not an order id"),
        // orders-api's own rules come back in its words.
        ("create_order", json!({"product": "  ", "quantity": 1}), "product must not be empty"),
        ("create_order", json!({"product": "Mouse", "quantity": 0}), "quantity must be between 1 and 1000, got 0"),
        ("create_order", json!({"product": "Mouse", "quantity": 5000}), "quantity must be between 1 and 1000"),
        ("list_orders", json!({"limit": 0}), "limit must be between 1 and 100"),
        ("list_orders", json!({"cursor": "not-a-cursor"}), "cursor must be the next_cursor of a previous page"),
        ("get_order", json!({"id": "ORD-999999"}), "no order ORD-999999 was found"),
    ];
    for (tool, args, needle) in cases {
        let result = call(&client, tool, args.clone()).await;
        assert!(is_error(&result), "{tool} {args}: {}", text(&result));
        assert!(text(&result).contains(needle), "{tool} {args}: {}", text(&result));
        assert!(result.structured_content.is_none());
        assert_eq!(hops(&result)[0].service, "orders-mcp", "errors carry the hop trace too");
    }
    // Arguments of the wrong type never reach the tool, and the model still reads why.
    let result = call(&client, "get_order", json!({"id": 7})).await;
    assert!(is_error(&result));
    assert!(text(&result).contains("invalid type: integer `7`, expected a string"), "{}", text(&result));
}
