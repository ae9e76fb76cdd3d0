//! orders-api with tokens it must refuse: the user's token for orders-mcp (wrong audience), and
//! an app-only token (no user to act for).

use url::Url;

use super::http::Http;
use super::refusal::{challenge, forbidden};
use super::report::Report;
use super::target::{Local, Target};
use super::tokens;

pub async fn with_tokens(
    http: &Http,
    target: &Target,
    local: &Local,
    api: &Url,
    user_token: &str,
    report: &mut Report,
) {
    let orders = format!("{api}api/orders");
    let r = challenge(http.client().get(&orders).bearer_auth(user_token), Some("invalid_token")).await;
    report.record("wrong-audience token refused by orders-api", r, |_| "401 invalid_token".into());
    let r = match tokens::app_token(http, target, local, "orders-mcp", "orders-api").await {
        Ok(t) => forbidden(http.client().get(&orders).bearer_auth(t)).await,
        Err(e) => Err(e),
    };
    report.record("app-only token refused by orders-api (403)", r, |s| s.clone());
}
