//! The authorize endpoint: validates the request, signs the user in (login page, or the
//! single-sign-on session), and sends an authorization code to the client's redirect URI.
//!
//! As in Entra, problems with the client or redirect URI are shown on a page (redirecting to an
//! unverified URI would make the emulator an open redirector); every other problem goes back to
//! the client as `error` / `error_description` on its redirect URI.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use url::Url;

use crate::claims::{client_info, now, random_id};
use crate::directory::ClientApp;
use crate::error::EntraError;
use crate::pages::{self, LoginUser};
use crate::state::Emulator;
use crate::store::{AuthCode, Session};

/// The emulator's single-sign-on cookie.
pub const SSO_COOKIE: &str = "emulator_sso";
const SESSION_LIFETIME: i64 = 8 * 3600;

/// The parameters Entra's authorize endpoint understands (the rest are ignored, as there).
#[derive(Debug, Clone)]
struct AuthorizeRequest {
    client: ClientApp,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    scope: String,
    code_challenge: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
    form_post: bool,
    client_info: bool,
    /// Everything received, to carry through the login form.
    fields: Vec<(String, String)>,
}

/// How a request failed: on a page, or back at the client.
enum Failure {
    Page(EntraError),
    /// Back to the (verified) redirect URI of the request.
    Redirect(Box<AuthorizeRequest>, EntraError),
}

fn parse(emulator: &Emulator, params: &HashMap<String, String>) -> Result<AuthorizeRequest, Failure> {
    let dir = &emulator.0.dir;
    let get = |k: &str| params.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or_else(|| Failure::Page(EntraError::missing_parameter("client_id")))?;
    let client = dir.client(&client_id).map_err(Failure::Page)?;
    let redirect_uri =
        get("redirect_uri").ok_or_else(|| Failure::Page(EntraError::missing_parameter("redirect_uri")))?;
    dir.check_redirect_uri(&client, &redirect_uri).map_err(Failure::Page)?;
    let mut fields: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !["login", "password"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.sort();
    let request = AuthorizeRequest {
        client,
        redirect_uri,
        state: get("state"),
        nonce: get("nonce"),
        scope: get("scope").unwrap_or_default(),
        code_challenge: get("code_challenge"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        form_post: get("response_mode").as_deref() == Some("form_post"),
        client_info: get("client_info").as_deref() == Some("1"),
        fields,
    };
    // From here on the redirect URI is trusted: errors go back to the client.
    let fail = |e: EntraError| Failure::Redirect(Box::new(request.clone()), e);
    match get("response_type").as_deref() {
        Some("code") => {}
        Some(other) => {
            return Err(fail(EntraError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
            )));
        }
        None => return Err(fail(EntraError::missing_parameter("response_type"))),
    }
    if request.scope.is_empty() {
        return Err(fail(EntraError::missing_parameter("scope")));
    }
    let scopes = dir.parse_scopes(&request.scope).map_err(fail)?;
    dir.grant(&request.client, &scopes).map_err(fail)?;
    match (request.code_challenge.as_deref(), get("code_challenge_method").as_deref()) {
        (Some(_), Some("S256")) => {}
        (Some(_), method) => {
            return Err(fail(EntraError::new(
                "invalid_request",
                501491,
                format!("Invalid code_challenge_method '{}': only S256 is supported.", method.unwrap_or("plain")),
            )));
        }
        (None, _) if request.client.is_public() => {
            return Err(fail(EntraError::new(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for public clients.",
            )));
        }
        (None, _) => {}
    }
    Ok(request)
}

fn redirect_with(request: &AuthorizeRequest, mut params: Vec<(String, String)>) -> Response {
    if let Some(state) = &request.state {
        params.push(("state".into(), state.clone()));
    }
    if request.form_post {
        return pages::form_post(&request.redirect_uri, &params);
    }
    match Url::parse(&request.redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params.iter());
            Redirect::to(url.as_str()).into_response()
        }
        Err(_) => pages::error(50011, "The redirect URI is not a valid URL."),
    }
}

fn error_redirect(request: &AuthorizeRequest, e: EntraError) -> Response {
    let (trace, correlation) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let mut params = vec![
        ("error".to_string(), e.suberror.unwrap_or(e.error).to_string()),
        ("error_description".to_string(), e.description(&trace, &correlation, &crate::error::timestamp())),
        ("error_uri".to_string(), format!("https://login.microsoftonline.com/error?code={}", e.code)),
    ];
    if e.suberror.is_some() {
        params.push(("error_subcode".into(), e.error.to_string()));
    }
    redirect_with(request, params)
}

fn session_from(emulator: &Emulator, headers: &HeaderMap) -> Option<(String, Session)> {
    let cookies = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';'));
    let id =
        cookies.filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == SSO_COOKIE).map(|(_, v)| v.to_string())?;
    let session = emulator.0.store.sessions.get(&id)?;
    Some((id, session))
}

fn demo_users(emulator: &Emulator) -> Vec<LoginUser> {
    let m = &emulator.0.dir.manifest;
    m.users
        .iter()
        .map(|u| LoginUser {
            login: u.name.clone(),
            display_name: u.display_name.clone(),
            upn: u.upn(&m.tenant),
            password: u.password.clone(),
        })
        .collect()
}

fn login_page(emulator: &Emulator, tenant: &str, request: &AuthorizeRequest, error: Option<&str>) -> Response {
    let action = format!("{}/{tenant}/oauth2/v2.0/authorize", emulator.public_url());
    pages::login(
        &action,
        &request.client.display_name,
        &request.fields,
        &demo_users(emulator),
        request.login_hint.as_deref(),
        error,
    )
}

/// Issues a code for `user_oid` in session `session_id` and sends it to the client.
fn issue_code(emulator: &Emulator, request: &AuthorizeRequest, user_oid: &str, session_id: &str) -> Response {
    let inner = &emulator.0;
    let code = random_id(48);
    inner.store.codes.insert(
        code.clone(),
        AuthCode {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_oid: user_oid.to_string(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            session_id: session_id.to_string(),
            expires_at: now() + inner.config.code_lifetime.as_secs() as i64,
            redeemed: false,
        },
    );
    inner.store.sessions.update(session_id, |s| {
        if !s.clients.contains(&request.client.client_id) {
            s.clients.push(request.client.client_id.clone());
        }
    });
    let mut params = vec![("code".to_string(), code), ("session_state".to_string(), session_id.to_string())];
    if request.client_info
        && let Some(user) = inner.dir.user_by_oid(user_oid)
    {
        params.push(("client_info".into(), client_info(user, &inner.dir.manifest.tenant)));
    }
    redirect_with(request, params)
}

pub async fn show(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return pages::error(e.code, &e.message);
    }
    let request = match parse(&emulator, &params) {
        Ok(r) => r,
        Err(Failure::Page(e)) => return pages::error(e.code, &e.message),
        Err(Failure::Redirect(request, e)) => return error_redirect(&request, e),
    };
    let forced = matches!(request.prompt.as_deref(), Some("login" | "select_account"));
    if let Some((session_id, session)) = session_from(&emulator, &headers) {
        let hint_matches = request
            .login_hint
            .as_deref()
            .is_none_or(|hint| emulator.0.dir.user_by_login(hint).is_some_and(|u| u.oid == session.user_oid));
        if !forced && hint_matches {
            return issue_code(&emulator, &request, &session.user_oid, &session_id);
        }
    }
    if request.prompt.as_deref() == Some("none") {
        return error_redirect(
            &request,
            EntraError::new("login_required", 50058, "A silent sign-in request was sent but no user is signed in."),
        );
    }
    login_page(&emulator, &tenant, &request, None)
}

pub async fn submit(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return pages::error(e.code, &e.message);
    }
    let request = match parse(&emulator, &params) {
        Ok(r) => r,
        Err(Failure::Page(e)) => return pages::error(e.code, &e.message),
        Err(Failure::Redirect(request, e)) => return error_redirect(&request, e),
    };
    let login = params.get("login").map(|s| s.trim()).unwrap_or_default();
    let password = params.get("password").map(String::as_str).unwrap_or_default();
    let user = emulator.0.dir.user_by_login(login).filter(|u| u.password == password);
    let Some(user) = user else {
        return login_page(
            &emulator,
            &tenant,
            &request,
            Some("AADSTS50126: Error validating credentials due to invalid username or password."),
        );
    };
    let session_id = uuid::Uuid::new_v4().to_string();
    emulator.0.store.sessions.insert(
        session_id.clone(),
        Session { user_oid: user.oid.clone(), clients: Vec::new(), expires_at: now() + SESSION_LIFETIME },
    );
    let mut response = issue_code(&emulator, &request, &user.oid, &session_id);
    let cookie = format!("{SSO_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_LIFETIME}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The user signed in by the SSO cookie of a request, for logout.
pub(crate) fn current_session(emulator: &Emulator, headers: &HeaderMap) -> Option<(String, Session)> {
    session_from(emulator, headers)
}
