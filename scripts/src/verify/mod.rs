//! `cargo xtask verify`: checks a running deployment end to end and prints a pass/fail table.
//!
//! - `--local` (default): the stack of `cargo xtask up` (or docker compose) on the standard
//!   ports (or the ones given with `--url`, `--mcp-url`, `--api-url`, `--authority`). Here verify
//!   can also get tokens, as any client could: it signs alice in through the emulator's login
//!   form with the Azure CLI's (public, pre-authorized) client id, and asks for app-only tokens
//!   with the emulator-only client secrets of the manifest.
//! - `--azd` / `--env-file FILE`: a deployment described by the azd environment (`azd env
//!   get-values`). Checks that need a token it cannot mint are reported as skipped.
//! - `--url CHAT_APP_URL [--mcp-url ORDERS_MCP_URL]`: anything else reachable by URL.
//!
//! Exits non-zero when any check fails.

mod api;
mod approval;
mod azd;
mod chat_app;
mod chat_session;
mod health;
mod http;
mod identity_provider;
mod mcp;
mod options;
mod refusal;
mod report;
mod resource_metadata;
mod target;
mod tokens;
mod unauthenticated;

pub use options::Options;

use http::Http;
use report::Report;
use target::{Local, Target};

/// What is reported as skipped when verify cannot mint tokens (not the local stack).
const NEED_TOKENS: [&str; 8] = [
    "MCP initialize with a user token",
    mcp::ORIGIN_REFUSED,
    RETURN_TO,
    "a state-changing tool call waits for the user's approval",
    "tools/list",
    "hop chain on a tool call",
    "wrong-audience token refused by orders-api",
    "app-only token refused by orders-mcp (403)",
];

/// Runs every check against the deployment `options` name, prints the table, and fails if any
/// check failed.
pub fn run(options: &Options) -> anyhow::Result<()> {
    let target = options.target()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        let http = Http::new()?;
        let mut report = Report::default();
        check(&http, &target, &mut report).await;
        Ok::<Report, anyhow::Error>(report)
    })?;
    let failures = report.print();
    if failures > 0 {
        anyhow::bail!("{failures} check(s) failed");
    }
    Ok(())
}

/// Every check, in the order of the table.
async fn check(http: &Http, target: &Target, report: &mut Report) {
    health::check(http, target, report).await;
    identity_provider::check(http, target, report).await;
    resource_metadata::check(http, target, report).await;
    unauthenticated::check(http, target, report).await;
    chat_app::check(http, &target.chat_app, target.orders_mcp.as_ref(), report).await;
    match &target.local {
        Some(local) => {
            with_tokens(http, target, local, report).await;
        }
        None => {
            for name in NEED_TOKENS {
                report.skip(name, "needs a token verify can mint only locally");
            }
        }
    }
}

/// Local only: real tokens, an MCP session, the hop chain. Stops at the first step the
/// following ones need (`None`).
async fn with_tokens(http: &Http, target: &Target, local: &Local, report: &mut Report) -> Option<()> {
    let mcp = target.orders_mcp.as_ref()?;
    let user = tokens::sign_in(http, target, local).await;
    let token = report.record("sign in alice through the emulator's login form", user, |_| {
        "Azure CLI client, auth code + PKCE".into()
    })?;
    let oid = local.manifest.user(tokens::USER).map(|u| u.oid.as_str()).unwrap_or_default();
    mcp::foreign_origin_refused(http, mcp, &token, report).await;
    chat_app_session(http, target, local, report).await;
    mcp::as_user(http, mcp, &token, oid, report).await?;
    if let Some(api) = &target.orders_api {
        api::with_tokens(http, target, local, api, &token, report).await;
    }
    let app_only = tokens::app_token(http, target, local, "chat-app", "orders-mcp").await;
    mcp::app_only_refused(http, mcp, app_only, report).await;
    Some(())
}

const RETURN_TO: &str = "after sign-in, return_to /<TAB>/evil.example lands on /chat";

/// Signs alice in to chat-app with a `return_to` browsers would read as another site, then
/// checks that the agent asks before it acts.
async fn chat_app_session(http: &Http, target: &Target, local: &Local, report: &mut Report) {
    let session = chat_session::sign_in(http, &target.chat_app, local, "%2F%09%2Fevil.example").await;
    let session =
        session.and_then(|s| if s.landed_on == "/chat" { Ok(s) } else { Err(format!("went to {}", s.landed_on)) });
    if let Some(session) = report.record(RETURN_TO, session, |s| s.landed_on.clone()) {
        approval::check(http, &target.chat_app, &session, report).await;
    }
}
