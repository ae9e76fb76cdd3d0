//! Every service answers its liveness and readiness probes.

use super::http::Http;
use super::report::Report;
use super::target::Target;

pub async fn check(http: &Http, target: &Target, report: &mut Report) {
    let mut urls = vec![
        ("chat-app /healthz", target.chat_app.join("/healthz")),
        ("chat-app /readyz", target.chat_app.join("/readyz")),
    ];
    if let Some(mcp) = &target.orders_mcp {
        urls.push(("orders-mcp /healthz", mcp.join("/healthz")));
        urls.push(("orders-mcp /readyz", mcp.join("/readyz")));
    }
    if let Some(api) = &target.orders_api {
        urls.push(("orders-api /healthz", api.join("/healthz")));
        urls.push(("orders-api /readyz", api.join("/readyz")));
    }
    if target.local.is_some() {
        urls.push(("emulator /healthz", target.authority.join("/healthz")));
    }
    for (name, url) in urls {
        let result = match url {
            Ok(url) => http.expect_status(url.as_str(), 200).await,
            Err(e) => Err(e.to_string()),
        };
        report.record(name, result, |s| s.clone());
    }
}
