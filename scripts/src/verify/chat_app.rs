//! chat-app as a browser meets it: the landing page and its security headers, the sign-in
//! redirect (authorization code + PKCE) and its session cookie, and CSRF protection.

use std::collections::HashMap;

use entra_auth::acquire::describe;
use reqwest::header::HeaderMap;
use url::Url;

use super::http::Http;
use super::report::{Check, Report, truncate};

pub async fn check(http: &Http, base: &Url, orders_mcp: Option<&Url>, report: &mut Report) {
    let headers = landing_page(http, base, report).await;
    security_headers(headers.as_ref(), report);
    sign_in(http, base, orders_mcp, report).await;
    let sign_out = base.join("/auth/sign-out").map_err(|e| e.to_string());
    let cross_site = match sign_out {
        Ok(url) => http.client().post(url).header("origin", "https://evil.example").send().await.map_err(describe),
        Err(e) => Err(e),
    };
    report.record(
        "cross-site POST refused",
        cross_site.and_then(|r| if r.status() == 403 { Ok(()) } else { Err(format!("{}", r.status())) }),
        |_| "403".into(),
    );
}

/// The landing page is HTML; its headers, for the checks that follow.
async fn landing_page(http: &Http, base: &Url, report: &mut Report) -> Option<HeaderMap> {
    let landing = http.get(base.as_str()).await;
    let headers = landing.as_ref().map(|r| r.headers().clone()).ok();
    report.record(
        "chat-app landing page",
        landing.and_then(|r| {
            let html = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("text/html"));
            if r.status() == 200 && html { Ok(()) } else { Err(format!("{} (HTML: {html})", r.status())) }
        }),
        |_| "200 text/html".into(),
    );
    headers
}

fn security_headers(headers: Option<&HeaderMap>, report: &mut Report) {
    let header = |name: &str| headers.and_then(|h| h.get(name)).and_then(|v| v.to_str().ok()).map(str::to_string);
    let missing = || "missing".to_string();
    let csp = header("content-security-policy");
    report.record("security header: Content-Security-Policy", csp.clone().ok_or_else(missing), |v| truncate(v));
    report.record(
        "security header: X-Content-Type-Options nosniff",
        header("x-content-type-options").filter(|v| v == "nosniff").ok_or_else(missing),
        |v| v.clone(),
    );
    report.record("security header: Referrer-Policy", header("referrer-policy").ok_or_else(missing), |v| v.clone());
    let framing = header("x-frame-options").or_else(|| csp.filter(|c| c.contains("frame-ancestors")));
    report.record("clickjacking protection (frame-ancestors / X-Frame-Options)", framing.ok_or_else(missing), |v| {
        truncate(v)
    });
}

const REDIRECT: &str = "sign-in redirects to the IdP with PKCE S256, state and nonce";

/// `/auth/sign-in` redirects with an authorization-code + PKCE request and sets a session
/// cookie; no token shows in either.
async fn sign_in(http: &Http, base: &Url, orders_mcp: Option<&Url>, report: &mut Report) {
    let response = match base.join("/auth/sign-in") {
        Ok(url) => http.get(url.as_str()).await,
        Err(e) => Err(e.to_string()),
    };
    let r = match response {
        Ok(r) => r,
        Err(e) => {
            report.record::<()>(REDIRECT, Err(e), |_| String::new());
            return;
        }
    };
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    let redirect = Url::parse(&location)
        .map_err(|_| format!("{} without an absolute Location", r.status()))
        .and_then(authorization_request);
    if let Ok(url) = &redirect {
        report.record("chat-app agent identity mode", Ok::<_, String>(agent_mode(url, orders_mcp)), Clone::clone);
    }
    report.record(REDIRECT, redirect, |u| format!("{}{}", u.host_str().unwrap_or_default(), u.path()));
    let https = base.scheme() == "https";
    let session = cookies.iter().find(|c| c.contains("HttpOnly")).cloned();
    let flags = session.ok_or_else(|| format!("no HttpOnly cookie in {cookies:?}")).and_then(|c| {
        let lower = c.to_ascii_lowercase();
        let ok = lower.contains("samesite=lax") && (!https || lower.contains("; secure"));
        if ok { Ok(c) } else { Err(format!("flags: {c}")) }
    });
    report.record("session cookie flags (HttpOnly, SameSite=Lax, Secure on https)", flags, |c| {
        truncate(c.split(';').skip(1).collect::<Vec<_>>().join(";").trim())
    });
    let leak = location.contains("eyJ") || cookies.iter().any(|c| c.contains("eyJ"));
    report.record(
        "no token in the sign-in redirect or cookies",
        if leak { Err("a JWT appears".to_string()) } else { Ok(()) },
        |_| "none".into(),
    );
}

/// `CHAT_APP_AGENT_IDENTITY`, as the sign-in request shows it: the user's token is for
/// orders-mcp (`none`), or for something else, the agent identity blueprint (`entra-agent-id`).
fn agent_mode(authorize: &Url, orders_mcp: Option<&Url>) -> String {
    let scope = authorize.query_pairs().find(|(k, _)| k == "scope").map(|(_, v)| v.into_owned()).unwrap_or_default();
    let resource = scope.split(' ').find_map(|s| s.strip_suffix("/access_as_user")).unwrap_or_default().to_string();
    let mcp = orders_mcp.map(|u| u.as_str().trim_end_matches('/').to_string());
    match mcp {
        Some(mcp) if mcp == resource => "none: the sign-in token is for orders-mcp".into(),
        Some(_) => format!("entra-agent-id: the sign-in token is for the agent blueprint {resource}"),
        None => format!("unknown (sign-in for {resource}; no orders-mcp URL to compare)"),
    }
}

/// An authorization-code request with PKCE S256, `state` and `nonce`.
fn authorization_request(url: Url) -> Check<Url> {
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let ok = url.path().ends_with("/oauth2/v2.0/authorize")
        && q.get("code_challenge_method").map(String::as_str) == Some("S256")
        && q.contains_key("state")
        && q.contains_key("nonce")
        && q.get("response_type").map(String::as_str) == Some("code");
    if ok { Ok(url) } else { Err(format!("not an authorization-code + PKCE request: {url}")) }
}

#[cfg(test)]
mod agent_mode_tests {
    use super::agent_mode;
    use url::Url;

    #[test]
    fn the_sign_in_scope_tells_the_agent_identity_mode() {
        let mcp = Url::parse("http://localhost:3001/mcp").unwrap();
        let authorize = |scope: &str| {
            let mut url = Url::parse("http://localhost:3003/t/oauth2/v2.0/authorize").unwrap();
            url.query_pairs_mut().append_pair("scope", scope);
            url
        };
        let default = authorize("openid profile offline_access http://localhost:3001/mcp/access_as_user");
        assert!(agent_mode(&default, Some(&mcp)).starts_with("none"));
        let agent = authorize("openid profile offline_access api://t/orders-copilot-agent-local/access_as_user");
        assert!(agent_mode(&agent, Some(&mcp)).starts_with("entra-agent-id"));
    }
}
