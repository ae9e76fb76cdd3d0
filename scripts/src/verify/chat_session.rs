//! A chat-app session for the local checks: alice signs in through chat-app's own sign-in and
//! the emulator's login form, the cookie kept by hand (the client follows no redirects).

use entra_auth::acquire::describe;
use url::Url;

use super::http::Http;
use super::report::Check;
use super::target::Local;
use super::tokens::USER;

pub struct ChatSession {
    /// `name=value` of chat-app's session cookie.
    pub cookie: String,
    /// Where chat-app sent the browser after sign-in.
    pub landed_on: String,
}

/// Signs alice in to chat-app at `base`, asking to come back to `return_to` (sent as given:
/// already percent-encoded).
pub async fn sign_in(http: &Http, base: &Url, local: &Local, return_to: &str) -> Check<ChatSession> {
    let user = local.manifest.user(USER).ok_or(format!("no {USER}"))?;
    let start = http.get(&format!("{}auth/sign-in?return_to={return_to}", base)).await?;
    let mut cookie = session_cookie(&start).ok_or("no session cookie at sign-in")?;
    let authorize = Url::parse(location(&start)?).map_err(|e| e.to_string())?;
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("login".into(), user.name.clone()));
    form.push(("password".into(), user.password.clone()));
    let mut action = authorize.clone();
    action.set_query(None);
    let login = http.client().post(action).form(&form).send().await.map_err(describe)?;
    let callback = location(&login)?.to_string();
    let back = http.client().get(&callback).header("cookie", &cookie).send().await.map_err(describe)?;
    if let Some(cycled) = session_cookie(&back) {
        cookie = cycled;
    }
    Ok(ChatSession { cookie, landed_on: location(&back)?.to_string() })
}

fn location(r: &reqwest::Response) -> Check<&str> {
    r.headers().get("location").and_then(|v| v.to_str().ok()).ok_or(format!("{} without a Location", r.status()))
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("HttpOnly"))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}
