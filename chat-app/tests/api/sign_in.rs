//! Sign-in and session security: cookie flags, session id cycling, state / nonce / PKCE
//! mismatches, cross-site requests, expiry, sign-out and front-channel logout, and that no token
//! reaches the browser (HTML, redirects, cookies) or the log.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{Browser, COOKIE, Options, assert_no_jwt, captured_logs, spawn_app, spawn_with};

fn cookie_line(cookies: &[String]) -> &str {
    cookies.iter().find(|c| c.starts_with(&format!("{COOKIE}="))).map(String::as_str).unwrap_or_default()
}

#[tokio::test]
async fn sign_in_sets_a_locked_down_cookie_and_cycles_the_session_id() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let start = browser.get(&format!("{}/auth/sign-in?return_to=/orders", app.url)).await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let cookie = cookie_line(&start.set_cookies()).to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http localhost cannot use Secure: {cookie}");
    let before = browser.cookie(&app.url, COOKIE).unwrap();

    // The authorization request: code + PKCE S256, state and nonce, the registered redirect URI.
    let authorize = url::Url::parse(&start.location().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/auth/callback", app.url));
    assert!(q["scope"].contains("offline_access") && q["scope"].ends_with("/access_as_user"));
    for param in ["state", "nonce", "code_challenge"] {
        assert!(q[param].len() >= 43, "{param} is too short");
    }

    let (callback, _) = browser.login_at_idp(authorize.as_str(), "alice", |_| {}).await;
    let done = browser.get(&callback).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location().as_deref(), Some("/orders"));
    let after = browser.cookie(&app.url, COOKIE).unwrap();
    assert_ne!(before, after, "the session id must change at sign-in");
    let chat = browser.get(&format!("{}/chat", app.url)).await;
    assert_eq!(chat.status, StatusCode::OK);
    assert!(chat.body.contains("Alice Johnson"), "the page shows who is signed in");

    // The pre-sign-in id is dead: it cannot be used to ride the signed-in session (fixation).
    let attacker = Browser::new(&app.origin);
    attacker.set_cookie(&app.url, COOKIE, &before);
    let page = attacker.get(&format!("{}/chat", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().unwrap().starts_with("/auth/sign-in"));

    assert_no_jwt("what the browser received", &browser.everything_seen());
}

#[tokio::test]
async fn an_https_public_url_gets_secure_cookies() {
    let app = spawn_with(Options { https_public_url: true, ..Options::default() }).await;
    let browser = Browser::new(&app.origin);
    let start = browser.get(&format!("{}/auth/sign-in", app.url)).await;
    let cookie = cookie_line(&start.set_cookies()).to_string();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
}

#[tokio::test]
async fn a_state_mismatch_is_refused() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let start = browser.get(&format!("{}/auth/sign-in", app.url)).await;
    let (callback, _) = browser.login_at_idp(&start.location().unwrap(), "alice", |_| {}).await;
    let mut forged = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> =
        forged
            .query_pairs()
            .map(|(k, v)| {
                if k == "state" {
                    (k.into_owned(), "forged-state".to_string())
                } else {
                    (k.into_owned(), v.into_owned())
                }
            })
            .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.get(forged.as_str()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("Sign-in refused") && page.body.contains("state mismatch"), "{}", page.body);
    assert!(!page.body.contains("forged-state"), "request input is not echoed");
    // Nothing was signed in, and the pending sign-in is spent: the genuine response fails too.
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::SEE_OTHER);
    let replay = browser.get(&callback).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_callback_without_a_pending_sign_in_is_refused() {
    let app = spawn_app().await;
    let victim = Browser::new(&app.origin);
    let start = victim.get(&format!("{}/auth/sign-in", app.url)).await;
    let (callback, _) = victim.login_at_idp(&start.location().unwrap(), "alice", |_| {}).await;
    // Login CSRF: another browser is sent the victim's (or attacker's) authorization response.
    let other = Browser::new(&app.origin);
    let page = other.get(&callback).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("does not belong to a sign-in started in this browser"), "{}", page.body);
}

#[tokio::test]
async fn a_nonce_mismatch_is_refused() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    // The IdP is asked for another nonce than the one chat-app stored: the ID token it issues
    // answers some other sign-in.
    let (page, _) = browser
        .sign_in_tampered(&app, "alice", |q| {
            q.insert("nonce".into(), "a-nonce-from-another-sign-in".into());
        })
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("nonce mismatch"), "{}", page.body);
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_pkce_verifier_mismatch_is_refused() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    // An attacker's code (bound to their challenge) cannot be redeemed with this session's verifier.
    let (page, _) = browser
        .sign_in_tampered(&app, "alice", |q| {
            q.insert("code_challenge".into(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into());
        })
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("PKCE") && page.body.contains("AADSTS50148"), "{}", page.body);
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_error_from_the_idp_is_shown_without_echoing_it() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let start = browser.get(&format!("{}/auth/sign-in", app.url)).await;
    let authorize = url::Url::parse(&start.location().unwrap()).unwrap();
    let state = authorize.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let page = browser
        .get(&format!(
            "{}/auth/callback?error=access_denied<script>&error_description=AADSTS65004:+<b>declined</b>&state={state}",
            app.url
        ))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("access_denied") && page.body.contains("AADSTS65004"), "{}", page.body);
    assert!(!page.body.contains("<script>") && !page.body.contains("<b>declined"), "{}", page.body);
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let (page, _) = browser.sign_in(&app, "alice").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let sign_out = format!("{}/auth/sign-out", app.url);
    let send = format!("{}/api/chat/send", app.url);
    for (url, origin) in [
        (&sign_out, Some("https://evil.example")),
        (&sign_out, None),
        (&sign_out, Some("null")),
        (&send, Some("https://evil.example")),
        (&send, None),
        (&send, Some(&format!("{}.evil.example", app.origin))),
    ] {
        let page = browser.post_form(url, &[("text", "cancel ORD-001")], origin).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{url} from {origin:?}");
        assert!(page.body.contains("Request refused"), "{}", page.body);
    }
    // Still signed in: none of them did anything.
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::OK);
    // The same request from chat-app's own origin goes through.
    let page = browser.post_form(&sign_out, &[], Some(&app.origin)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sign_out_ends_the_session_here_and_at_the_idp() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    let cookie = browser.cookie(&app.url, COOKIE).unwrap();
    let page = browser.post_form(&format!("{}/auth/sign-out", app.url), &[], Some(&app.origin)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let logout = url::Url::parse(&page.location().unwrap()).unwrap();
    assert_eq!(logout.path(), format!("/{}/oauth2/v2.0/logout", app.idp.handle().tenant_id()));
    let q: std::collections::HashMap<_, _> = logout.query_pairs().into_owned().collect();
    assert_eq!(q["post_logout_redirect_uri"], format!("{}/auth/signed-out", app.url));
    assert_eq!(q["client_id"], app.settings.identity.client_id);
    assert!(page.set_cookies().iter().any(|c| c.starts_with(&format!("{COOKIE}=")) && c.contains("Max-Age=0")));
    // The IdP accepts the registered post-logout URI and sends the browser back.
    let idp_page = browser.get(logout.as_str()).await;
    assert_eq!(idp_page.status, StatusCode::OK);
    assert!(idp_page.body.contains("/auth/signed-out"), "{}", idp_page.body);
    let signed_out = browser.get(&format!("{}/auth/signed-out", app.url)).await;
    assert_eq!(signed_out.status, StatusCode::OK);
    assert!(signed_out.body.contains("You signed out"));

    // The old cookie no longer works.
    let old = Browser::new(&app.origin);
    old.set_cookie(&app.url, COOKIE, &cookie);
    let page = old.get(&format!("{}/chat", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = old.send_message(&app, "show my orders").await;
    assert!(page.body.contains("sign-in required"), "{}", page.body);
}

#[tokio::test]
async fn front_channel_logout_ends_the_sessions_of_that_idp_session() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let (_, sid) = browser.sign_in(&app, "alice").await;
    assert!(!sid.is_empty());
    let bystander = Browser::new(&app.origin);
    bystander.sign_in(&app, "bob").await;
    let issuer = app.idp.handle().issuers().v2.clone();

    let wrong_issuer = browser
        .get(&format!("{}/auth/front-channel-logout?sid={sid}&iss=https%3A%2F%2Fevil.example%2F", app.url))
        .await;
    assert_eq!(wrong_issuer.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::OK);

    let iss: String = url::form_urlencoded::byte_serialize(issuer.as_bytes()).collect();
    let page =
        Browser::new(&app.origin).get(&format!("{}/auth/front-channel-logout?sid={sid}&iss={iss}", app.url)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers.get("x-frame-options").is_none(), "the IdP loads this URL in an iframe");
    let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.ends_with(&format!("frame-ancestors {}", app.idp.url())), "only the IdP may frame it: {csp}");
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(bystander.get(&format!("{}/chat", app.url)).await.status, StatusCode::OK, "other users stay signed in");
}

#[tokio::test]
async fn an_idle_session_expires_and_the_user_is_sent_to_sign_in() {
    let app = spawn_with(Options { env: vec![("CHAT_APP_SESSION_IDLE_SECS", "2".into())], ..Options::default() }).await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let page = browser.get(&format!("{}/chat", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location().as_deref(), Some("/auth/sign-in?return_to=/chat"));
}

#[tokio::test]
async fn a_sign_in_ends_at_its_absolute_lifetime_however_active() {
    // The lifetime is kept in whole seconds: a 3 s sign-in lasts between 2 and 3 s.
    let app = spawn_with(Options { env: vec![("CHAT_APP_SESSION_MAX_SECS", "3".into())], ..Options::default() }).await;
    let browser = Browser::new(&app.origin);
    let before_sign_in = Instant::now();
    browser.sign_in(&app, "alice").await;
    let signed_in = Instant::now();
    // Active well inside the shortest lifetime, however slowly a loaded machine answers.
    while before_sign_in.elapsed() < Duration::from_millis(1200) {
        assert_eq!(browser.get(&format!("{}/chat", app.url)).await.status, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(3200).saturating_sub(signed_in.elapsed())).await;
    let page = browser.get(&format!("{}/orders", app.url)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location().as_deref(), Some("/auth/sign-in?return_to=/orders"));
}

#[tokio::test]
async fn an_unreachable_idp_gives_a_clear_page() {
    let down = "http://127.0.0.1:9";
    let app = spawn_with(Options { env: vec![("ENTRA_AUTHORITY", down.into())], ..Options::default() }).await;
    let browser = Browser::new(&app.origin);
    let page = browser.get(&format!("{}/auth/sign-in", app.url)).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("Identity provider unavailable"), "{}", page.body);
    assert!(!page.body.contains(down), "internal addresses stay in the log");
    // The start page still renders, with its sign-in button.
    let home = browser.get(&format!("{}/", app.url)).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Sign in"));
}

#[tokio::test]
async fn pages_and_logs_never_carry_a_token() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "carol").await;
    for path in ["/", "/chat", "/orders", "/auth/signed-out", "/no-such-page"] {
        browser.get(&format!("{}{path}", app.url)).await;
    }
    browser.post_form(&format!("{}/api/session", app.url), &[], Some(&app.origin)).await;
    browser.post_form(&format!("{}/api/chat/load", app.url), &[], Some(&app.origin)).await;
    assert_no_jwt("what the browser received", &browser.everything_seen());
    assert_no_jwt("the log", &captured_logs());
}

#[tokio::test]
async fn the_leak_check_finds_a_real_token() {
    let app = spawn_app().await;
    let token = app.idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    assert!(crate::helpers::find_jwt(&format!("<p data-x=\"{token}\">")).is_some());
    assert!(crate::helpers::find_jwt(&format!("Location: /cb?t={}", &token[..token.len() / 2])).is_some());
    assert!(crate::helpers::find_jwt("eyJ alone, eyJhbGciOiJSUzI1NiJ9 without a payload").is_none());
}

#[tokio::test]
async fn pages_carry_a_content_security_policy_whose_nonce_only_their_own_scripts_have() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    let nonce_of = |page: &crate::helpers::Page| {
        let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap().to_string();
        for directive in ["object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "'wasm-unsafe-eval'"] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains(&format!("form-action 'self' {}", app.idp.url())), "sign-out redirects to the IdP: {csp}");
        let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap().to_string();
        assert!(nonce.len() >= 22, "a 128-bit nonce: {nonce}");
        nonce
    };
    let landing = browser.get(&format!("{}/", app.url)).await;
    let nonce = nonce_of(&landing);
    let scripts = landing.body.matches("<script").count();
    assert!(scripts > 0, "the hydration script is inline");
    assert_eq!(landing.body.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "{}", landing.body);
    assert_ne!(nonce_of(&browser.get(&format!("{}/", app.url)).await), nonce, "fresh per response");

    browser.sign_in(&app, "alice").await;
    let chat = browser.get(&format!("{}/chat", app.url)).await;
    let nonce = nonce_of(&chat);
    assert_eq!(chat.body.matches(&format!("nonce=\"{nonce}\"")).count(), chat.body.matches("<script").count());
    // A page made from the session is not kept by the browser (Back after sign-out shows nothing).
    assert_eq!(chat.headers.get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"));
}

#[tokio::test]
async fn readiness_needs_the_identity_provider() {
    let app = spawn_app().await;
    let browser = Browser::new(&app.origin);
    assert_eq!(browser.get(&format!("{}/readyz", app.url)).await.status, StatusCode::OK);

    let down =
        spawn_with(Options { env: vec![("ENTRA_AUTHORITY", "http://127.0.0.1:9".into())], ..Options::default() }).await;
    let page = Browser::new(&down.origin).get(&format!("{}/readyz", down.url)).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("identity provider"), "{}", page.body);
    assert_eq!(Browser::new(&down.origin).get(&format!("{}/healthz", down.url)).await.status, StatusCode::OK);
}

/// Issue #15: `/<TAB>/evil.example` passed the old check; browsers drop the tab and go to
/// `//evil.example`. After sign-in the user lands on this site, whatever `return_to` says.
#[tokio::test]
async fn after_sign_in_the_user_stays_on_this_site() {
    let app = spawn_app().await;
    for (return_to, lands_on) in [
        ("%2F%09%2Fevil.example", "/chat"),
        ("%2F%0A%2Fevil.example", "/chat"),
        ("%2F%5Cevil.example", "/chat"),
        ("%2F%2Fevil.example", "/chat"),
        ("%2Forders", "/orders"),
    ] {
        let browser = Browser::new(&app.origin);
        let start = browser.get(&format!("{}/auth/sign-in?return_to={return_to}", app.url)).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let (callback, _) = browser.login_at_idp(&start.location().unwrap(), "alice", |_| {}).await;
        let page = browser.get(&callback).await;
        assert_eq!(page.location().as_deref(), Some(lands_on), "return_to={return_to}");
    }
}
