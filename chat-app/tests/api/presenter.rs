//! The presenter view, through real HTTP: `/trace/{turn}` for the turn's owner only, its SVG and
//! Mermaid downloads, and the confused-deputy replay through a passthrough orders-mcp.

use reqwest::StatusCode;

use crate::helpers::{Browser, Options, TestApp, TurnEvent, assert_no_jwt, spawn_with};

/// The turn of the first tool call among `events` (call ids are `<turn>-<n>`).
fn turn_of(events: &[TurnEvent]) -> String {
    events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolCall { id, .. } => id.rsplit_once('-').map(|(turn, _)| turn.to_string()),
            _ => None,
        })
        .expect("the turn called a tool")
}

async fn signed_in(app: &TestApp, user: &str) -> Browser {
    let browser = Browser::new(&app.origin);
    let (page, _) = browser.sign_in(app, user).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}

#[tokio::test]
async fn the_turn_is_a_sequence_diagram_for_its_owner_and_a_404_for_anyone_else() {
    let app = spawn_with(Options { orders_stack: true, ..Options::default() }).await;
    let alice = signed_in(&app, "alice").await;
    let turn = turn_of(&alice.chat(&app, "show my orders").await);

    let page = alice.get(&format!("{}/trace/{turn}", app.url)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    for lifeline in ["Browser", "chat-app", "Model", "orders-mcp", "Entra ID", "orders-api", "SQLite"] {
        assert!(body.contains(&format!(">{lifeline}</text>")), "lifeline {lifeline} missing");
    }
    // The On-Behalf-Of token's claims that changed are marked; the user's did not change.
    assert!(body.contains("On-Behalf-Of token"), "{body}");
    assert!(body.contains("◆ changed"));
    assert!(body.contains("Alice Johnson"));
    // Each token's header as its hop saw it (the emulator signs with a `kid`), never a token.
    assert!(body.contains("alg RS256 · typ JWT · kid "), "the decoded header");
    assert!(body.contains("accepted the token (On-Behalf-Of)"), "orders-api's verdict");
    assert!(!body.contains("data-testid=\"replay\""), "no replay offered: the demonstration is not configured");
    assert!(body.contains(&format!("href=\"/trace/{turn}/diagram.svg\"")));
    assert_no_jwt("the presenter view", body);

    let svg = alice.get(&format!("{}/trace/{turn}/diagram.svg", app.url)).await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.headers["content-type"], "image/svg+xml; charset=utf-8");
    assert!(svg.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"turn-"));
    assert!(svg.body.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.body.ends_with("</svg>"));
    assert_no_jwt("the SVG", &svg.body);
    let mermaid = alice.get(&format!("{}/trace/{turn}/diagram.mmd", app.url)).await;
    assert_eq!(mermaid.status, StatusCode::OK);
    assert_eq!(mermaid.headers["content-type"], "text/vnd.mermaid; charset=utf-8");
    assert!(mermaid.body.starts_with("sequenceDiagram\n"), "{}", mermaid.body);
    assert!(mermaid.body.contains("P->>E: On-Behalf-Of"), "{}", mermaid.body);
    assert_no_jwt("the Mermaid text", &mermaid.body);

    // Bob gets exactly what an id that never existed gets: nothing tells him alice's turn is real.
    let bob = signed_in(&app, "bob").await;
    let never = "00000000-0000-4000-8000-000000000000";
    for path in ["", "/diagram.svg", "/diagram.mmd"] {
        let hers = bob.get(&format!("{}/trace/{turn}{path}", app.url)).await;
        let nobodys = bob.get(&format!("{}/trace/{never}{path}", app.url)).await;
        assert_eq!(hers.status, StatusCode::NOT_FOUND, "{path}: {}", hers.body);
        assert_eq!(nobodys.status, StatusCode::NOT_FOUND);
        assert_eq!(hers.body, nobodys.body, "{path}");
        assert!(!hers.body.contains("Alice"), "{path}");
    }
    // Signed out: to sign-in, coming back here.
    let stranger = Browser::new(&app.origin);
    let page = stranger.get(&format!("{}/trace/{turn}", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location().unwrap(), format!("/auth/sign-in?return_to=/trace/{turn}"));
}

#[tokio::test]
async fn the_replay_forwards_the_users_token_and_orders_api_refuses_it() {
    let app = spawn_with(Options { orders_stack: true, passthrough_demo: true, ..Options::default() }).await;
    let alice = signed_in(&app, "alice").await;
    let events = alice.chat(&app, "show my orders").await;
    let turn = turn_of(&events);
    let call = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolCall { id, .. } => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    let url = format!("{}/trace/{turn}", app.url);
    let page = alice.get(&url).await;
    assert!(page.body.contains("data-testid=\"replay\""), "the replay is offered: {}", page.body);

    // Like every form of the app: a POST from another site (or without Origin) is refused.
    let replay = format!("{url}/replay");
    let forged = alice.post_form(&replay, &[("call", &call)], Some("http://evil.example")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let bare = alice.post_form(&replay, &[("call", &call)], None).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);

    let page = alice.post_form(&replay, &[("call", &call)], Some(&app.origin)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("orders-api refused the forwarded token because it was issued for orders-mcp"),
        "the reason in one sentence: {body}"
    );
    // Both paths side by side: On-Behalf-Of accepted at orders-api, the forwarded token refused.
    // orders-api names the first check it fails: a v2 token's issuer at this v1-only resource.
    assert!(body.contains("accepted the token (On-Behalf-Of)"));
    assert!(body.contains("(its answer: “the token was issued by an untrusted issuer”)"), "{body}");
    assert!(body.contains("✗ 401: the token was issued by an untrusted issuer"), "{body}");
    assert!(body.contains("REST call + the same token, forwarded"));
    assert_no_jwt("the replay", body);

    // Only calls of this turn, and only by their owner.
    let bob = signed_in(&app, "bob").await;
    let theirs = bob.post_form(&replay, &[("call", &call)], Some(&app.origin)).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let other = alice.post_form(&replay, &[("call", "no-such-call")], Some(&app.origin)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

/// A call that changes something is never replayed, whatever the form says.
#[tokio::test]
async fn only_read_only_calls_are_replayed() {
    let app = spawn_with(Options { orders_stack: true, passthrough_demo: true, ..Options::default() }).await;
    let before = app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await;
    let alice = signed_in(&app, "alice").await;
    let events = alice.chat_answering(&app, "order 2 keyboards", true).await;
    let turn = turn_of(&events);
    let call = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolCall { id, name, .. } if name == "create_order" => Some(id.clone()),
            _ => None,
        })
        .expect("the planner creates the order");
    let created = app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await;
    assert_eq!(created.len(), before.len() + 1);
    let page =
        alice.post_form(&format!("{}/trace/{turn}/replay", app.url), &[("call", &call)], Some(&app.origin)).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("Only read-only tools are replayed"));
    assert_eq!(app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await, created, "nothing was created again");
}
