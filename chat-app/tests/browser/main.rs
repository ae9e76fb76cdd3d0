//! The real-browser end-to-end test: headless Chromium (through chromedriver) against the
//! emulator, orders-api, orders-mcp and chat-app, all in-process. Alice signs in on the
//! emulator's login page, asks for her orders, sees only hers, and the trace panel shows three
//! hops with the same user and the audience changing at On-Behalf-Of; a screenshot is saved;
//! sign-out ends the session (the old cookie is dead); carol sees every order.
//!
//! It needs the hydrated bundle: `cargo xtask test` builds it and sets `CHAT_APP_SITE_ROOT`.
//! Without it the test fails (never skips), saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

#[path = "../api/fake_openai.rs"]
mod fake_openai;
#[path = "../api/front.rs"]
mod front;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/stack.rs"]
mod stack;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fake_openai::{Expect, FakeOpenAi, plant_injection};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use helpers::{Browser, COOKIE, Options, TestApp, assert_no_jwt, captured_logs, site_root, spawn_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const WAIT: Duration = Duration::from_secs(30);

/// chromedriver, stopped when dropped.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> (Driver, Client) {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} (apt-get install chromium-driver): {e}"));
        let profile = tempfile::tempdir().unwrap();
        let driver = Driver { child, url: format!("http://127.0.0.1:{port}"), _profile: profile };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{}/status", driver.url)).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            // The viewport is the window less its (invisible) frame: about 1600 × 1000.
            "--window-size=1600,1143",
            &format!("--user-data-dir={}", driver._profile.path().display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url)
            .await
            .expect("cannot start a Chromium session");
        (driver, client)
    }
}

async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"))
}

/// Waits until `check` holds for the page's source.
async fn wait_until(client: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let source = client.source().await.unwrap();
        if check(&source) {
            return source;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}; page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_in(client: &Client, app: &TestApp, user: &str) {
    client.goto(&app.url).await.unwrap();
    wait_for(client, "#sign-in").await.click().await.unwrap();
    // The emulator's login page: one button per demo user.
    wait_for(client, &format!("button[data-user='{user}']")).await.click().await.unwrap();
    wait_for(client, "body[data-hydrated] #message").await;
    assert!(client.current_url().await.unwrap().path().ends_with("/chat"));
}

async fn ask(client: &Client, text: &str) -> String {
    let input = wait_for(client, "#message").await;
    input.send_keys(text).await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    // Done when the tool answered, the reply is written and the composer is free again.
    wait_until(client, "the reply", |s| {
        s.contains("class=\"tool done") && s.contains("msg assistant") && !s.contains("Working on it")
    })
    .await;
    client.find(Locator::Css(".log")).await.unwrap().text().await.unwrap()
}

/// `target/screenshots/chat-trace.png` in the workspace.
fn screenshot_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots/chat-trace.png")
}

fn require_bundle() {
    let Some(site) = site_root() else {
        panic!(
            "CHAT_APP_SITE_ROOT is not set (or not a directory): this test needs the browser bundle. \
             Run it with `cargo xtask test`, which builds the bundle and sets the variable."
        );
    };
    assert!(site.join("pkg/chat_app_bg.wasm").is_file(), "no bundle in {}: run `cargo xtask test`", site.display());
}

#[tokio::test]
async fn alice_and_carol_in_a_real_browser() {
    require_bundle();
    let app = spawn_with(Options { orders_stack: true, ..Options::default() }).await;
    let (hers, bobs) = (
        app.stack.as_ref().unwrap().order_ids_of(&app.idp, "alice").await,
        app.stack.as_ref().unwrap().order_ids_of(&app.idp, "bob").await,
    );
    let (_driver, client) = Driver::start().await;

    // Alice signs in through the emulator's login page and asks for her orders.
    sign_in(&client, &app, "alice").await;
    let log = ask(&client, "show my orders").await;
    for id in &hers {
        assert!(log.contains(id.as_str()), "{id} missing: {log}");
    }
    for id in &bobs {
        assert!(!log.contains(id.as_str()), "bob's {id} shown to alice: {log}");
    }

    // The trace panel: three hops, same user, audience changed at On-Behalf-Of.
    let hops = client.find_all(Locator::Css("#trace .hop")).await.unwrap();
    let mut services = Vec::new();
    for hop in &hops {
        services.push(hop.attr("data-service").await.unwrap().unwrap_or_default());
    }
    assert_eq!(services, ["chat-app", "orders-mcp", "orders-api"]);
    for (i, hop) in hops.iter().enumerate() {
        let user = hop.find(Locator::Css("[data-field='user']")).await.unwrap();
        assert!(user.text().await.unwrap().contains("Alice Johnson"));
        let class = user.attr("class").await.unwrap().unwrap_or_default();
        if i > 0 {
            assert!(class.contains("same") && !class.contains("changed"), "hop {i} user: {class}");
        }
    }
    let audience = |i: usize| {
        let hop = &hops[i];
        async move { hop.find(Locator::Css("[data-field='audience']")).await.unwrap().attr("class").await.unwrap().unwrap() }
    };
    assert!(audience(1).await.contains("same"), "passthrough keeps the audience");
    assert!(audience(2).await.contains("changed"), "OBO changes the audience");
    // GUIDs are shortened on screen; the full audience stays in the element's title.
    assert!(hops[2].text().await.unwrap().contains("api://afb67780…/orders-api-local"));
    let full = hops[2].find(Locator::Css("[data-field='audience'] .value")).await.unwrap();
    assert_eq!(
        full.attr("title").await.unwrap().as_deref(),
        Some("api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local")
    );
    assert!(hops[2].find(Locator::Css(".how.obo")).await.is_ok());

    let png = client.screenshot().await.unwrap();
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &png).unwrap();
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot");
    eprintln!("screenshot: {}", path.display());

    // A reload shows the same conversation and trace (persisted, server-rendered).
    client.refresh().await.unwrap();
    wait_until(&client, "the conversation after reload", |s| s.contains(&hers[0]) && s.contains("orders-api")).await;

    // Sign-out ends the session: the old cookie no longer works.
    let cookie = client.get_named_cookie(COOKIE).await.unwrap().value().to_string();
    assert!(client.get_named_cookie(COOKIE).await.unwrap().http_only().unwrap_or(false));
    client.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
    wait_until(&client, "chat-app's signed-out page", |s| s.contains("at the identity provider has ended")).await;
    let old = Browser::new(&app.origin);
    old.set_cookie(&app.url, COOKIE, &cookie);
    let page = old.get(&format!("{}/chat", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the old session cookie still works");

    // Carol (Orders.Admin) sees every order, in the chat and on "My orders".
    sign_in(&client, &app, "carol").await;
    let log = ask(&client, "show my orders").await;
    for id in hers.iter().chain(&bobs) {
        assert!(log.contains(id.as_str()), "{id} missing from carol's view: {log}");
    }
    client.find(Locator::Css("nav a[href='/orders']")).await.unwrap().click().await.unwrap();
    wait_until(&client, "the orders table", |s| s.contains("<table") && s.contains(&bobs[0])).await;
    let rows = client.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), hers.len() + bobs.len());

    // Nothing the browser got holds a token.
    assert_no_jwt("the page", &client.source().await.unwrap());
    let script = client.execute("return document.cookie + ' ' + JSON.stringify(localStorage)", vec![]).await.unwrap();
    assert_no_jwt("script-visible storage", &script.to_string());
    assert!(!script.to_string().contains(COOKIE), "the session cookie is HttpOnly");
    client.close().await.unwrap();
    assert_no_jwt("the log", &captured_logs());
}

/// Issue #15's prompt injection, in the browser: bob wrote an instruction into his order; a
/// model that obeys it proposes cancelling alice's order in carol's (the administrator's)
/// chat. The order stays as it is until carol presses Approve; Deny leaves it alone, and the
/// trace panel says who decided what, and when.
#[tokio::test]
async fn an_injected_instruction_waits_for_the_administrators_click() {
    require_bundle();
    let fake = FakeOpenAi::spawn(Expect::Nothing).await;
    let app = spawn_with(Options {
        orders_stack: true,
        env: vec![("MODEL_PROVIDER", "openai".into()), ("OPENAI_BASE_URL", format!("{}/v1", fake.url))],
        ..Options::default()
    })
    .await;
    let stack = app.stack.as_ref().unwrap();
    let injection = plant_injection(stack, &app.idp).await;
    let victim = &injection.victim;
    let before = stack.statuses(&app.idp).await;
    let status_of = |all: &[(String, String)]| all.iter().find(|(o, _)| o == victim).unwrap().1.clone();
    let script = || injection.obeying_script();
    let (_driver, client) = Driver::start().await;
    sign_in(&client, &app, "carol").await;

    // Deny: nothing happens, and the panel says who declined.
    fake.script(script());
    wait_for(&client, "#message").await.send_keys("show everyone's orders").await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    let card = wait_for(&client, ".approval button[data-answer='deny']").await;
    let text = client.find(Locator::Css(".approval")).await.unwrap().text().await.unwrap();
    assert!(text.contains(&format!("Cancel {victim}")) && text.contains("Alice Johnson"), "{text}");
    assert!(text.contains("Carol Admin"), "who will be acting: {text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stack.statuses(&app.idp).await, before, "nothing runs before an answer");
    card.click().await.unwrap();
    wait_until(&client, "the declined call and the reply", |s| {
        s.contains("Declined by Carol Admin at") && s.contains("Done.") && !s.contains("Working on it")
    })
    .await;
    assert_eq!(stack.statuses(&app.idp).await, before, "denied: the database shows nothing changed");
    let trace = client.find(Locator::Css("#trace .approval-trace")).await.unwrap().text().await.unwrap();
    assert!(trace.contains("Declined by Carol Admin at"), "{trace}");

    // Approve, from the keyboard: now, and only now, the order is cancelled.
    fake.script(script());
    wait_for(&client, "#message").await.send_keys("show everyone's orders").await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    let approve = wait_for(&client, ".approval button[data-answer='approve']").await;
    assert_eq!(status_of(&stack.statuses(&app.idp).await), "pending");
    approve.send_keys(&Key::Enter.to_string()).await.unwrap();
    wait_until(&client, "the approved call and the reply", |s| {
        s.contains("Approved by Carol Admin at") && s.matches("Done.").count() >= 2 && !s.contains("Working on it")
    })
    .await;
    assert_eq!(status_of(&stack.statuses(&app.idp).await), "cancelled");
    let trace = client.find(Locator::Css("#trace .approval-trace")).await.unwrap().text().await.unwrap();
    assert!(trace.contains("Approved by Carol Admin at"), "{trace}");
    assert_eq!(client.find_all(Locator::Css("#trace .hop")).await.unwrap().len(), 3, "the hops of the call");
    client.close().await.unwrap();
}

/// Issue #20 in the browser: with `CHAT_APP_AGENT_IDENTITY=entra-agent-id` Alice signs in (for
/// the agent's blueprint), and the trace panel names the agent at every hop, orders-mcp and
/// orders-api included, with Alice as the user throughout. orders-api runs with
/// `ORDERS_API_AGENT_POLICY=read-only`: a write the agent proposes and Alice approves needs her
/// own token there, so orders-api refuses it, and the page says why; nothing is written.
#[tokio::test]
async fn the_agent_acts_for_alice_in_a_real_browser() {
    require_bundle();
    let app = spawn_with(Options::agent_mode_with_policy("read-only")).await;
    let agent_id = app.idp.handle().manifest().agent_identities["orders-copilot-agent"].client_id.clone();
    let stack = app.stack.as_ref().unwrap();
    let before = stack.order_ids_of(&app.idp, "alice").await;
    let (_driver, client) = Driver::start().await;
    sign_in(&client, &app, "alice").await;

    let log = ask(&client, "show my orders").await;
    assert!(log.contains(before[0].as_str()), "{log}");
    let through = format!("Alice Johnson, through agent Orders Copilot agent (agent id {}…)", &agent_id[..8]);
    let hops = client.find_all(Locator::Css("#trace .hop")).await.unwrap();
    let mut services = Vec::new();
    for hop in &hops {
        services.push(hop.attr("data-service").await.unwrap().unwrap_or_default());
        let user = hop.find(Locator::Css("[data-field='user']")).await.unwrap().text().await.unwrap();
        assert!(user.contains("Alice Johnson"), "{user}");
        let agent = hop.find(Locator::Css("[data-field='agent'] .value")).await.unwrap().text().await.unwrap();
        assert_eq!(agent, through);
    }
    assert_eq!(services, ["chat-app", "orders-mcp", "orders-api"]);

    wait_for(&client, "#message").await.send_keys("Order 2 keyboards").await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    wait_for(&client, ".approval button[data-answer='approve']").await.click().await.unwrap();
    let reason = "agents may read orders here but not change them";
    wait_until(&client, "orders-api's refusal", |s| s.contains(reason) && !s.contains("Working on it")).await;
    let api = client.find(Locator::Css("#trace .hop[data-service='orders-api'] .decision")).await.unwrap();
    let decision = api.text().await.unwrap().to_lowercase(); // shown in capitals (CSS)
    assert!(decision.starts_with("denied") && decision.contains(reason), "{decision}");
    assert_eq!(stack.order_ids_of(&app.idp, "alice").await, before, "the refused write changed nothing");
    client.close().await.unwrap();
}

/// `ORDERS_API_AGENT_POLICY=approved-writes` in the browser: Alice approves the agent's write,
/// orders-api wants her step-up (a claims challenge), the chat offers "Confirm with sign-in";
/// she confirms on the emulator's step-up page, asks again, approves, and the order is written
/// with the trace showing the step-up.
#[tokio::test]
async fn alice_steps_up_for_the_agents_write_in_a_real_browser() {
    require_bundle();
    let app = spawn_with(Options::agent_mode_with_policy("approved-writes")).await;
    let stack = app.stack.as_ref().unwrap();
    let before = stack.order_ids_of(&app.idp, "alice").await.len();
    let (_driver, client) = Driver::start().await;
    sign_in(&client, &app, "alice").await;

    wait_for(&client, "#message").await.send_keys("Order 2 keyboards").await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    wait_for(&client, ".approval button[data-answer='approve']").await.click().await.unwrap();
    wait_for(&client, "a[data-testid='step-up']").await.click().await.unwrap();
    wait_for(&client, "button[data-step-up='confirm']").await.click().await.unwrap();
    wait_for(&client, "body[data-hydrated] #message").await;
    assert_eq!(stack.order_ids_of(&app.idp, "alice").await.len(), before, "nothing written before the step-up");

    wait_for(&client, "#message").await.send_keys("Order 2 keyboards").await.unwrap();
    client.find(Locator::Css("#send")).await.unwrap().click().await.unwrap();
    wait_for(&client, ".approval button[data-answer='approve']").await.click().await.unwrap();
    wait_until(&client, "the created order", |s| s.contains("Created order") && !s.contains("Working on it")).await;
    let step_up =
        client.find(Locator::Css("#trace .hop[data-service='orders-api'] [data-field='step-up'] .value")).await;
    assert_eq!(step_up.unwrap().text().await.unwrap(), "step-up: c1");
    assert_eq!(stack.order_ids_of(&app.idp, "alice").await.len(), before + 1);
    client.close().await.unwrap();
}

/// Sets the page's viewport (not the window) to `width` × `height` CSS pixels.
async fn set_viewport(client: &Client, width: u32, height: u32) {
    let (mut w, mut h) = (width, height);
    for _ in 0..3 {
        client.set_window_size(w, h).await.unwrap();
        let inner = client.execute("return [window.innerWidth, window.innerHeight]", vec![]).await.unwrap();
        let (iw, ih) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
        if (iw, ih) == (width, height) {
            return;
        }
        (w, h) = (w + width - iw, h + height - ih);
    }
    panic!("cannot set a {width}×{height} viewport");
}

/// `docs/<name>`: the presenter view's screenshots are part of the documentation.
fn docs_screenshot(name: &str, png: &[u8]) {
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "a real screenshot");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {} (copy to docs/ when it changes)", path.display());
}

/// Issue #18's presenter view in a projector-sized browser: from the chat's trace panel to the
/// turn's sequence diagram, readable at 1280×720 (drawn at full size, text ≥ 16 px), and the
/// confused-deputy replay showing orders-api refuse the forwarded token next to the
/// On-Behalf-Of call that worked.
#[tokio::test]
async fn the_presenter_view_on_a_projector() {
    require_bundle();
    let app = spawn_with(Options { orders_stack: true, passthrough_demo: true, ..Options::default() }).await;
    let (_driver, client) = Driver::start().await;
    sign_in(&client, &app, "alice").await;
    ask(&client, "show my orders").await;

    wait_until(&client, "the presenter link", |s| s.contains("presenter-link")).await;
    let link = wait_for(&client, "#trace [data-testid='presenter-link']").await;
    let href = link.attr("href").await.unwrap().unwrap();
    assert!(href.starts_with("/trace/"), "{href}");
    assert_eq!(link.attr("target").await.unwrap().as_deref(), Some("_blank"), "the chat stays open");
    set_viewport(&client, 1280, 720).await;
    client.goto(&format!("{}{href}", app.url)).await.unwrap();
    wait_for(&client, "figure[data-testid='diagram'] svg").await;

    // The browser parsed the SVG: every lifeline, the decoded tokens, the verdicts.
    let texts = client
        .execute(
            "return Array.from(document.querySelectorAll(\"figure[data-testid='diagram'] svg text\")).map(t => t.textContent)",
            vec![],
        )
        .await
        .unwrap();
    let texts: Vec<String> = serde_json::from_value(texts).unwrap();
    for lifeline in ["Browser", "chat-app", "Model", "orders-mcp", "Entra ID", "orders-api", "SQLite"] {
        assert!(texts.iter().any(|t| t == lifeline), "{lifeline} missing: {texts:?}");
    }
    assert!(texts.iter().any(|t| t.starts_with("audorders-api") && t.ends_with("◆ changed")), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("orders-api accepted the token (On-Behalf-Of)")));
    // Large type: the diagram is drawn at (nearly) its 1280-unit size, so 16-unit text stays
    // at least 15 px, and nothing but the page scrolls sideways.
    let scale = client
        .execute(
            "const s = document.querySelector(\"figure[data-testid='diagram'] svg\"); \
             return [s.getBoundingClientRect().width / 1280, document.documentElement.scrollWidth]",
            vec![],
        )
        .await
        .unwrap();
    let (scale, scroll_width) = (scale[0].as_f64().unwrap(), scale[1].as_u64().unwrap());
    assert!(scale >= 0.94, "the diagram is shrunk to {scale:.2} of its size at 1280×720");
    assert!(scroll_width <= 1280, "the page scrolls sideways ({scroll_width} px)");
    docs_screenshot("presenter-view.png", &client.screenshot().await.unwrap());

    // The On-Behalf-Of token's card, where the audience changes.
    client
        .execute(
            "const t = Array.from(document.querySelectorAll('svg text')).find(t => t.textContent.startsWith('On-Behalf-Of token')); \
             window.scrollTo(0, t.getBoundingClientRect().top + window.scrollY - 180);",
            vec![],
        )
        .await
        .unwrap();
    docs_screenshot("presenter-obo.png", &client.screenshot().await.unwrap());

    // The replay: the same call, the user's token forwarded; orders-api refuses it.
    client.find(Locator::Css("[data-testid='replay']")).await.unwrap().click().await.unwrap();
    let reason = wait_for(&client, "[data-testid='replay-reason']").await.text().await.unwrap();
    assert!(
        reason.starts_with("orders-api refused the forwarded token because it was issued for orders-mcp"),
        "{reason}"
    );
    let paths = client.find(Locator::Css(".compare")).await.unwrap().text().await.unwrap();
    assert!(paths.contains("orders-api accepted the token (On-Behalf-Of)") && paths.contains("✗ 401"), "{paths}");
    docs_screenshot("presenter-replay.png", &client.screenshot().await.unwrap());

    assert_no_jwt("the presenter view", &client.source().await.unwrap());
    client.close().await.unwrap();
}
