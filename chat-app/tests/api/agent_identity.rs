//! `CHAT_APP_AGENT_IDENTITY=entra-agent-id` through the real services: the user signs in for the
//! agent identity blueprint, the agent exchanges that token On-Behalf-Of as the agent identity
//! (the blueprint authenticated by chat-app's managed identity, served by the emulator's
//! identity endpoint), and every hop shows the same user through the agent.

use entra_auth::hop::{AgentActor, AgentNamedAs, Decision, How};
use reqwest::StatusCode;

use crate::helpers::{Browser, Options, TestApp, TurnEvent, assert_no_jwt, captured_logs, spawn_with};

async fn agent_mode(env: Vec<(&'static str, String)>) -> TestApp {
    spawn_with(Options { orders_stack: true, agent_identity: true, env, ..Options::default() }).await
}

#[tokio::test]
async fn a_turn_shows_alice_through_the_agent_at_every_hop() {
    let app = agent_mode(vec![]).await;
    let m = app.idp.handle().manifest().clone();
    let alice = m.user("alice").unwrap().oid.clone();
    let agent_id = m.agent_identities["orders-copilot-agent"].client_id.clone();
    let blueprint_id = m.agent_blueprints["orders-copilot"].client_id.clone();
    assert!(
        app.settings.identity.scope.contains("orders-copilot-agent-local/access_as_user"),
        "sign-in is for the blueprint"
    );

    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    let Some(TurnEvent::ToolResult { is_error: false, hops, .. }) =
        events.iter().find(|e| matches!(e, TurnEvent::ToolResult { .. }))
    else {
        panic!("{events:?}")
    };
    let services: Vec<&str> = hops.iter().map(|h| h.service.as_str()).collect();
    assert_eq!(services, ["chat-app", "orders-mcp", "orders-api"]);
    // chat-app sends the agent's own token (its On-Behalf-Of), orders-mcp exchanges it in turn.
    assert_eq!(hops.iter().map(|h| h.how).collect::<Vec<_>>(), [How::Obo, How::Direct, How::Obo]);
    for hop in hops {
        assert_eq!(hop.token.oid, alice, "the same user at {}", hop.service);
    }
    let direct =
        AgentActor { id: agent_id.clone(), blueprint_id: blueprint_id.clone(), named_as: AgentNamedAs::Client };
    assert_eq!(hops[1].token.agent.as_ref(), Some(&direct), "orders-mcp sees the agent");
    assert_eq!(hops[1].token.client_id, agent_id, "azp is the agent identity");
    assert_eq!(hops[1].token.scp, ["access_as_user"]);
    let prior = AgentActor { id: agent_id.clone(), blueprint_id, named_as: AgentNamedAs::PriorActor };
    assert_eq!(hops[2].token.agent.as_ref(), Some(&prior), "orders-api still sees the agent");
    assert_eq!(hops[2].token.client_id, m.apps["orders-mcp"].client_id, "and orders-mcp as its client");

    // The trace panel, rendered on the server, says who acted for whom.
    let page = browser.get(&format!("{}/chat", app.url)).await;
    let line = format!("Alice Johnson, through agent Orders Copilot agent (agent id {}…)", &agent_id[..8]);
    assert_eq!(page.body.matches(&line).count(), 3, "at each hop: {}", page.body);
    assert_no_jwt("what the browser received (pages, SSE events)", &browser.everything_seen());
    assert_no_jwt("the log", &captured_logs());
}

/// The agent's exchange is cached per user and scope: a second turn costs no token request.
#[tokio::test]
async fn the_agents_token_is_cached_per_user() {
    let app = agent_mode(vec![]).await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    browser.chat(&app, "show my orders").await;
    let after_first = app.idp.handle().stats();
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    let after_second = app.idp.handle().stats();
    // orders-mcp caches its own exchange too: nothing new at the token endpoint.
    assert_eq!(after_second.on_behalf_of, after_first.on_behalf_of);
    assert_eq!(after_second.client_credentials, after_first.client_credentials);

    let bob = Browser::new(&app.origin);
    bob.sign_in(&app, "bob").await;
    bob.chat(&app, "show my orders").await;
    assert_eq!(app.idp.handle().stats().on_behalf_of, after_second.on_behalf_of + 2, "bob's own exchanges");
}

/// orders-api with `ORDERS_API_AGENT_POLICY=read-only`: the agent reads; a write it proposes,
/// even with the person's yes in chat-app, is refused at orders-api with a reason the user sees
/// (`approved-writes` is the policy that lets an approved write through, with the user's step-up).
#[tokio::test]
async fn orders_api_can_refuse_an_agents_writes_with_a_clear_reason() {
    let app = spawn_with(Options::agent_mode_with_policy("read-only")).await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    let events = browser.chat(&app, "show my orders").await;
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{events:?}");

    let events = browser.chat_answering(&app, "Order 2 keyboards", true).await;
    let Some(TurnEvent::ToolResult { is_error: true, hops, .. }) =
        events.iter().find(|e| matches!(e, TurnEvent::ToolResult { .. }))
    else {
        panic!("{events:?}")
    };
    let api = hops.iter().find(|h| h.service == "orders-api").expect("orders-api's hop");
    let Decision::Denied { reason } = &api.decision else { panic!("{api:?}") };
    assert!(reason.contains("agents may read orders here but not change them"), "{reason}");
    assert!(api.token.agent.is_some());
    let page = browser.post_form(&format!("{}/api/chat/load", app.url), &[], Some(&app.origin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("agents may read orders here but not change them"), "the user sees why");
}

/// `ORDERS_API_AGENT_POLICY=approved-writes`, through the real services: Alice approves the
/// agent's write, orders-api answers with a claims challenge (learn.microsoft.com/entra/
/// identity-platform/claims-challenge), the turn ends asking her to confirm with sign-in; the
/// step-up runs the authorization code flow with `claims` asking for `acrs` c1 at the emulator
/// (its confirmation page), she asks again, approves, and the order is written, the trace
/// showing `acrs` at every hop after the step-up.
#[tokio::test]
async fn an_approved_write_goes_through_after_alice_steps_up() {
    let app = spawn_with(Options::agent_mode_with_policy("approved-writes")).await;
    let stack = app.stack.clone().unwrap();
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    let before = stack.orders_in_database().await.len();

    let events = browser.chat_answering(&app, "Order 2 keyboards", true).await;
    let Some(TurnEvent::StepUp { message, contexts }) = events.iter().find(|e| matches!(e, TurnEvent::StepUp { .. }))
    else {
        panic!("{events:?}")
    };
    assert_eq!(contexts, &["c1"]);
    assert!(message.contains("Confirm with sign-in"), "{message}");
    let refused = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolResult { hops, .. } => hops.iter().find(|h| h.service == "orders-api"),
            _ => None,
        })
        .expect("orders-api's hop");
    assert!(matches!(&refused.decision, Decision::Denied { reason } if reason.starts_with("needs step-up c1")));
    assert_eq!(stack.orders_in_database().await.len(), before, "nothing written");

    // "Confirm with sign-in": the emulator's step-up page for the signed-in Alice.
    let start = browser.get(&format!("{}/auth/step-up?contexts=c1", app.url)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let authorize = start.location().unwrap();
    assert!(authorize.starts_with(&app.idp.url()), "the configured authority: {authorize}");
    let claims: serde_json::Value = serde_json::from_str(
        &url::Url::parse(&authorize).unwrap().query_pairs().find(|(k, _)| k == "claims").unwrap().1,
    )
    .unwrap();
    assert_eq!(claims["access_token"]["acrs"]["values"], serde_json::json!(["c1"]));
    assert_eq!(claims["access_token"]["xms_cc"]["values"], serde_json::json!(["cp1"]));
    let page = browser.get(&authorize).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Confirm: Allow the agent to change orders for you"), "{}", page.body);
    let fields = hidden_fields(&page.body);
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let confirmed = browser.post_form(&form_action(&authorize), &form, None).await;
    let back = browser.get(&confirmed.location().expect("the code goes back to chat-app")).await;
    assert_eq!(back.location().as_deref(), Some("/chat"), "{}", back.body);

    let events = browser.chat_answering(&app, "Order 2 keyboards", true).await;
    let Some(TurnEvent::ToolResult { is_error: false, hops, .. }) =
        events.iter().find(|e| matches!(e, TurnEvent::ToolResult { .. }))
    else {
        panic!("{events:?}")
    };
    for hop in hops {
        assert_eq!(hop.token.acrs, ["c1"], "{hop:?}");
    }
    let orders = stack.orders_in_database().await;
    assert_eq!(orders.len(), before + 1);
    let alice = app.idp.handle().manifest().user("alice").unwrap().oid.clone();
    assert_eq!(orders.last().unwrap().0, alice);
}

/// The authorize URL without its query: where the emulator's forms post.
fn form_action(authorize: &str) -> String {
    let mut url = url::Url::parse(authorize).unwrap();
    url.set_query(None);
    url.to_string()
}

/// The hidden inputs of the step-up page's form (the request, `step_up`, the demo password).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    };
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            let attr =
                |name: &str| unescape(input.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap());
            (attr("name"), attr("value"))
        })
        .collect()
}
