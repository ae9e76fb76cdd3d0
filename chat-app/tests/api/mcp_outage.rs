//! orders-mcp failing under a turn, at the socket level (see [`crate::front`]), as `cargo xtask
//! soak` kills it: the user reads a plain message, never the transport's text; a call that
//! cannot have reached orders-mcp, or that changes nothing, is made once more on a fresh
//! connection; an order that may have been placed is never placed a second time.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Browser, Options, TestApp, TurnEvent, spawn_with, text_of};

async fn with_front() -> TestApp {
    spawn_with(Options { orders_stack: true, mcp_front: true, ..Options::default() }).await
}

/// Each tool result: (summary, is_error).
fn results(events: &[TurnEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolResult { summary, is_error, .. } => Some((summary.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

/// What the transport says (rmcp's, reqwest's, hyper's) is for the log.
fn assert_plain(events: &[TurnEvent]) {
    let seen = format!("{events:?}");
    for raw in ["Transport", "error sending request", "connection closed", "Client error", "SendRequest"] {
        assert!(!seen.contains(raw), "the user was shown {raw:?}: {seen}");
    }
}

#[tokio::test]
async fn a_read_lost_in_flight_is_made_again_on_a_fresh_connection() {
    let app = with_front().await;
    let front = app.mcp_front.clone().unwrap();
    let hers = app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;

    front.lose_next("mcp-name: list_orders");
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(front.lost(), 1, "the first list_orders request was lost");
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    assert_eq!(results(&events).iter().filter(|(_, error)| *error).count(), 0, "{events:?}");
    let text = text_of(&events);
    assert!(hers.iter().all(|id| text.contains(id.as_str())), "{text}");
}

#[tokio::test]
async fn an_order_lost_in_flight_is_not_placed_again_and_the_user_is_told_plainly() {
    let app = with_front().await;
    let front = app.mcp_front.clone().unwrap();
    let stack = app.stack.clone().unwrap();
    let before = stack.order_ids_of(&app.idp, "alice").await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;

    front.lose_next("mcp-name: create_order");
    let events = browser.chat_answering(&app, "Order 2 keyboards", true).await;
    assert_eq!(front.lost(), 1);
    assert_plain(&events);
    let [(summary, true)] = &results(&events)[..] else { panic!("{events:?}") };
    assert!(summary.contains("may or may not have been done"), "{summary}");
    // Lost on the way (never forwarded) and not sent again: no order. Sent again, it would
    // have been placed, since the front forwards everything after the lost request.
    assert_eq!(stack.order_ids_of(&app.idp, "alice").await, before);
}

#[tokio::test]
async fn an_order_approved_while_orders_mcp_restarts_is_placed_once_it_is_back() {
    let app = with_front().await;
    let front = app.mcp_front.clone().unwrap();
    let stack = app.stack.clone().unwrap();
    let before = stack.order_ids_of(&app.idp, "alice").await.len();
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;

    let events = browser
        .chat_live(&app, "Order 2 keyboards", async |call| {
            // orders-mcp dies while the person decides, and is back a moment after the yes.
            front.crash();
            let page = browser.answer(&app, &call, true).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
            front.restart().await;
        })
        .await;
    assert_plain(&events);
    assert_eq!(results(&events).iter().filter(|(_, error)| *error).count(), 0, "{events:?}");
    assert!(text_of(&events).starts_with("Done: I placed ORD-"), "{}", text_of(&events));
    assert_eq!(stack.order_ids_of(&app.idp, "alice").await.len(), before + 1, "placed exactly once");
}

#[tokio::test]
async fn a_tool_list_lost_in_flight_is_asked_again_on_a_fresh_connection() {
    let app = with_front().await;
    let front = app.mcp_front.clone().unwrap();
    let hers = app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;

    front.lose_next("tools/list");
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(front.lost(), 1, "the turn's tools/list request was lost");
    assert_plain(&events);
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    let text = text_of(&events);
    assert!(hers.iter().all(|id| text.contains(id.as_str())), "{text}");
}
