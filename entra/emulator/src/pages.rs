//! The emulator's HTML: login, device-code entry, sign-out, errors and the `form_post` relay.
//! Every dynamic value goes through [`esc`].

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use entra_manifest::Manifest;

use crate::error::EntraError;

/// HTML-escapes text for element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
*{box-sizing:border-box}body{margin:0;font:16px/1.5 "Segoe UI",system-ui,sans-serif;background:#f2f2f2;color:#1b1b1b;
display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;width:min(440px,94vw);padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
.brand{font-weight:600;color:#0067b8;letter-spacing:.02em;font-size:14px}
h1{font-size:24px;font-weight:600;margin:12px 0 4px}p{margin:8px 0}.muted{color:#616161;font-size:14px}
.users{display:grid;gap:8px;margin:20px 0}
button.user{all:unset;cursor:pointer;display:flex;gap:12px;align-items:center;padding:10px 12px;border:1px solid #ccc;width:100%}
button.user:hover,button.user:focus-visible{background:#f3f9fd;border-color:#0067b8;outline:none}
.avatar{width:36px;height:36px;border-radius:50%;background:#0067b8;color:#fff;display:grid;place-items:center;font-weight:600}
.user small{display:block;color:#616161}
label{display:block;font-size:14px;margin-top:12px}input[type=text],input[type=password]{width:100%;padding:8px 0;border:0;
border-bottom:1px solid #666;font-size:16px}input:focus{outline:none;border-bottom-color:#0067b8}
.primary{margin-top:20px;background:#0067b8;color:#fff;border:0;padding:8px 28px;font-size:15px;cursor:pointer}
.error{color:#e81123;font-size:14px}details{margin-top:16px}summary{cursor:pointer;color:#0067b8}
code{font-size:14px;background:#f2f2f2;padding:1px 4px}
"#;

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main><div class=\"brand\">Entra ID emulator</div>{body}</main></body></html>",
        esc(title)
    );
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn hidden(fields: &[(String, String)]) -> String {
    fields.iter().map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v))).collect()
}

/// A demo user offered on the login page.
pub struct LoginUser {
    pub login: String,
    pub display_name: String,
    pub upn: String,
    pub password: String,
}

impl LoginUser {
    /// Every user of the manifest.
    pub fn all(manifest: &Manifest) -> Vec<LoginUser> {
        manifest
            .users
            .iter()
            .map(|u| LoginUser {
                login: u.name.clone(),
                display_name: u.display_name.clone(),
                upn: u.upn(&manifest.tenant),
                password: u.password.clone(),
            })
            .collect()
    }
}

/// The sign-in page: one button per demo user, and a username/password form.
pub fn login(
    action: &str,
    client_name: &str,
    fields: &[(String, String)],
    users: &[LoginUser],
    hint: Option<&str>,
    error: Option<&str>,
) -> Response {
    let carried = hidden(fields);
    let buttons: String = users
        .iter()
        .map(|u| {
            let initial = u.display_name.chars().next().unwrap_or('?');
            format!(
                "<form method=\"post\" action=\"{action}\">{carried}<input type=\"hidden\" name=\"login\" value=\"{login}\">\
                 <input type=\"hidden\" name=\"password\" value=\"{password}\">\
                 <button class=\"user\" type=\"submit\" data-user=\"{login}\"><span class=\"avatar\">{initial}</span>\
                 <span>{name}<small>{upn}</small></span></button></form>",
                action = esc(action),
                login = esc(&u.login),
                password = esc(&u.password),
                initial = esc(&initial.to_string()),
                name = esc(&u.display_name),
                upn = esc(&u.upn),
            )
        })
        .collect();
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "<h1>Sign in</h1><p class=\"muted\">to continue to <strong>{client}</strong></p>{error}\
         <div class=\"users\" aria-label=\"Demo users\">{buttons}</div>\
         <details{open}><summary>Use a username and password</summary>\
         <form method=\"post\" action=\"{action}\" id=\"credentials\">{carried}\
         <label for=\"login\">Username</label><input id=\"login\" name=\"login\" type=\"text\" autocomplete=\"username\" value=\"{hint}\">\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\
         <button class=\"primary\" type=\"submit\">Sign in</button></form></details>",
        client = esc(client_name),
        action = esc(action),
        open = if error.is_empty() && hint.is_none() { "" } else { " open" },
        hint = esc(hint.unwrap_or_default()),
    );
    page("Sign in to your account", &body)
}

/// The step-up page: the signed-in user confirms, with their password again, what the
/// authentication contexts stand for (Entra runs the Conditional Access policy targeting them:
/// MFA, a compliant device...). One demo-user button, as on the sign-in page.
pub fn step_up(
    action: &str,
    client_name: &str,
    contexts: &[&str],
    fields: &[(String, String)],
    user: &LoginUser,
    error: Option<&str>,
) -> Response {
    let title = format!("Confirm: {}", contexts.join("; "));
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p class=\"muted\"><strong>{client}</strong> asks you to confirm this as <strong>{name}</strong> \
         ({upn}) before it continues.</p>{error}\
         <form method=\"post\" action=\"{action}\">{carried}<input type=\"hidden\" name=\"step_up\" value=\"confirm\">\
         <input type=\"hidden\" name=\"password\" value=\"{password}\">\
         <button class=\"primary\" type=\"submit\" data-step-up=\"confirm\">Confirm as {name}</button></form>",
        title = esc(&title),
        client = esc(client_name),
        name = esc(&user.display_name),
        upn = esc(&user.upn),
        action = esc(action),
        carried = hidden(fields),
        password = esc(&user.password),
    );
    page(&title, &body)
}

/// Device-code entry: the user types the code shown on the device, then signs in.
pub fn device(action: &str, users: &[LoginUser], user_code: Option<&str>, error: Option<&str>) -> Response {
    let options: String = users
        .iter()
        .map(|u| format!("<option value=\"{}\">{} ({})</option>", esc(&u.login), esc(&u.display_name), esc(&u.upn)))
        .collect();
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "<h1>Enter code</h1><p class=\"muted\">Enter the code displayed on your app or device.</p>{error}\
         <form method=\"post\" action=\"{action}\">\
         <label for=\"user_code\">Code</label><input id=\"user_code\" name=\"user_code\" type=\"text\" value=\"{code}\" autocomplete=\"one-time-code\">\
         <label for=\"login\">User</label><select id=\"login\" name=\"login\">{options}</select>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\">\
         <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"approve\">Sign in</button> \
         <button class=\"primary\" type=\"submit\" name=\"decision\" value=\"decline\" style=\"background:#616161\">Cancel</button></form>",
        action = esc(action),
        code = esc(user_code.unwrap_or_default()),
    );
    page("Enter code", &body)
}

pub fn message(title: &str, text: &str) -> Response {
    page(title, &format!("<h1>{}</h1><p>{}</p>", esc(title), esc(text)))
}

/// An error the user sees instead of a redirect (Entra does this when the redirect URI or
/// client cannot be trusted).
pub fn error(e: &EntraError) -> Response {
    let mut response = page(
        "Sign in error",
        &format!(
            "<h1>Sorry, but we're having trouble signing you in.</h1><p class=\"error\">AADSTS{}: {}</p>",
            e.code,
            esc(&e.message)
        ),
    );
    *response.status_mut() = e.status;
    response
}

/// `response_mode=form_post`: posts the result to the client's redirect URI.
pub fn form_post(redirect_uri: &str, fields: &[(String, String)]) -> Response {
    let body = format!(
        "<p class=\"muted\">Signing you in...</p><form method=\"post\" action=\"{}\">{}<noscript><button class=\"primary\" type=\"submit\">Continue</button></noscript></form>\
         <script>document.forms[0].submit()</script>",
        esc(redirect_uri),
        hidden(fields)
    );
    page("Working...", &body)
}

/// The signed-out page: front-channel logout iframes for each app of the session, then on.
pub fn signed_out(frontchannel: &[String], next: Option<&str>) -> Response {
    let frames: String = frontchannel
        .iter()
        .map(|u| format!("<iframe src=\"{}\" style=\"display:none\" title=\"sign-out\"></iframe>", esc(u)))
        .collect();
    let onward = next
        .map(|n| {
            format!(
                "<p><a href=\"{0}\">Continue</a></p><script>setTimeout(function(){{location.replace({1})}},300)</script>",
                esc(n),
                // JSON string, with `<` escaped so the value cannot close the script element.
                serde_json::to_string(n).unwrap_or_else(|_| "\"/\"".into()).replace('<', "\\u003c")
            )
        })
        .unwrap_or_default();
    page(
        "Signed out",
        &format!(
            "<h1>You signed out of your account</h1><p class=\"muted\">It's a good idea to close all browser windows.</p>{frames}{onward}"
        ),
    )
}
