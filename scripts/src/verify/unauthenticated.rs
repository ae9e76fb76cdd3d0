//! What anyone without a (usable) token gets: 401 with a challenge from orders-mcp and
//! orders-api, never a token read from the query string (400); and orders-api's public OpenAPI
//! document.

use url::Url;

use super::http::Http;
use super::mcp;
use super::refusal::{challenge, malformed};
use super::report::Report;
use super::target::Target;

pub async fn check(http: &Http, target: &Target, report: &mut Report) {
    if let Some(url) = &target.orders_mcp {
        mcp_endpoint(http, url, report).await;
    }
    if let Some(api) = &target.orders_api {
        let r = challenge(http.client().get(format!("{api}api/orders")), None).await;
        report.record("orders-api without a token → 401 challenge", r, |s| s.clone());
        let r = http.expect_status(&format!("{api}openapi.json"), 200).await;
        report.record("orders-api OpenAPI document", r, |s| s.clone());
    }
}

/// The MCP endpoint, asked to initialize (or to stream) the way rmcp's client asks.
async fn mcp_endpoint(http: &Http, url: &Url, report: &mut Report) {
    let init = mcp::initialize_request();
    let post = || http.client().post(url.clone()).header("accept", "application/json, text/event-stream").json(&init);
    let r = challenge(post(), None).await;
    report.record("POST /mcp without a token → 401 challenge", r, |s| s.clone());
    let r = challenge(http.client().get(url.clone()).header("accept", "text/event-stream"), None).await;
    report.record("GET /mcp without a token → 401 challenge", r, |s| s.clone());
    let r = challenge(post().bearer_auth("not.a.token"), Some("invalid_token")).await;
    report.record("POST /mcp with a malformed token → 401 invalid_token", r, |s| s.clone());
    let r = malformed(http.client().post(format!("{url}?access_token=x")).json(&init)).await;
    report.record("token in the query string → 400 invalid_request", r, |s| s.clone());
}
