//! The authorize endpoint: validates the request, signs the user in (login page, or the
//! single-sign-on session), and sends an authorization code to the client's redirect URI.
//!
//! As in Entra, problems with the client or redirect URI are shown on a page (redirecting to an
//! unverified URI would make the emulator an open redirector); every other problem goes back to
//! the client as `error` / `error_description` on its redirect URI.
//!
//! A request whose `claims` parameter asks for an authentication context (`acrs`) gets the
//! step-up page after sign-in: the user confirms again before the code is issued, and the
//! tokens redeemed from it carry `acrs` (see [`crate::auth_context`]).

mod reply;
mod request;

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use service_kit::clock::unix_now_i64;

use self::request::{AuthorizeRequest, Failure};
use crate::claims::client_info;
use crate::codes;
use crate::error::EntraError;
use crate::pages::{self, LoginUser};
use crate::session;
use crate::state::Emulator;
use crate::store::{AuthCode, Session};

#[tracing::instrument(name = "authorize", skip_all, fields(tenant = %tenant, client_id = params.get("client_id").map(String::as_str)))]
pub async fn show(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let request = checked(&emulator, &tenant, &params)?;
    let forced = matches!(request.prompt.as_deref(), Some("login" | "select_account"));
    if let Some((cookie, session)) = session::current(&emulator, &headers) {
        let hint_matches = request
            .login_hint
            .as_deref()
            .is_none_or(|hint| emulator.0.dir.user_by_login(hint).is_some_and(|u| u.oid == session.user_oid));
        if request.prompt.as_deref() == Some("none") && !request.acrs.is_empty() {
            // A step-up needs the user; a silent request cannot have one.
            let e = EntraError::new(
                "interaction_required",
                50076,
                "The authentication context requested needs the user to confirm: send an interactive request.",
            );
            return Err(Failure::Redirect(Box::new(request), e));
        }
        if !forced && hint_matches {
            return Ok(match emulator.0.dir.user_by_oid(&session.user_oid) {
                Some(user) if !request.acrs.is_empty() => step_up_page(&emulator, &tenant, &request, user, None),
                _ => issue_code(&emulator, &request, &cookie, &session, &[]),
            });
        }
    }
    if request.prompt.as_deref() == Some("none") {
        let e = EntraError::new("login_required", 50058, "A silent sign-in request was sent but no user is signed in.");
        return Err(Failure::Redirect(Box::new(request), e));
    }
    Ok(login_page(&emulator, &tenant, &request, None))
}

#[tracing::instrument(name = "authorize_sign_in", skip_all, fields(tenant = %tenant, client_id = params.get("client_id").map(String::as_str)))]
pub async fn submit(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(params): Form<HashMap<String, String>>,
) -> Result<Response, Failure> {
    let request = checked(&emulator, &tenant, &params)?;
    if params.contains_key("step_up") {
        return Ok(confirm_step_up(&emulator, &tenant, &headers, &request, &params));
    }
    let login = params.get("login").map(|s| s.trim()).unwrap_or_default();
    let password = params.get("password").map(String::as_str).unwrap_or_default();
    let user = emulator.0.dir.user_by_login(login).filter(|u| u.password == password);
    let Some(user) = user else {
        return Ok(login_page(
            &emulator,
            &tenant,
            &request,
            Some("AADSTS50126: Error validating credentials due to invalid username or password."),
        ));
    };
    let (cookie, session) = match session::start(&emulator, &user.oid) {
        Ok(started) => started,
        Err(e) => return Err(Failure::Redirect(Box::new(request), e.into())),
    };
    let mut response = if request.acrs.is_empty() {
        issue_code(&emulator, &request, &cookie, &session, &[])
    } else {
        step_up_page(&emulator, &tenant, &request, user, None)
    };
    session::set_cookie(&mut response, &cookie);
    Ok(response)
}

/// The step-up page's answer: the session's user, confirming with their password again. Only
/// then is the code issued, for the authentication contexts the request asked for.
fn confirm_step_up(
    emulator: &Emulator,
    tenant: &str,
    headers: &HeaderMap,
    request: &AuthorizeRequest,
    params: &HashMap<String, String>,
) -> Response {
    let Some((cookie, session)) = session::current(emulator, headers) else {
        return login_page(emulator, tenant, request, Some("Your sign-in session ended: sign in again."));
    };
    let Some(user) = emulator.0.dir.user_by_oid(&session.user_oid) else {
        return login_page(emulator, tenant, request, Some("Your account no longer exists: sign in again."));
    };
    let password = params.get("password").map(String::as_str).unwrap_or_default();
    if request.acrs.is_empty() || user.password != password {
        let error = "AADSTS50126: Error validating credentials due to invalid username or password.";
        return step_up_page(emulator, tenant, request, user, Some(error));
    }
    issue_code(emulator, request, &cookie, &session, &request.acrs)
}

fn step_up_page(
    emulator: &Emulator,
    tenant: &str,
    request: &AuthorizeRequest,
    user: &entra_manifest::User,
    error: Option<&str>,
) -> Response {
    let action = format!("{}/{tenant}/oauth2/v2.0/authorize", emulator.public_url());
    let manifest = emulator.manifest();
    let contexts: Vec<&str> =
        request.acrs.iter().filter_map(|id| manifest.auth_context(id)).map(|c| c.display_name.as_str()).collect();
    let user = LoginUser::all(manifest).into_iter().find(|u| u.login == user.name);
    match user {
        Some(user) => pages::step_up(&action, &request.client.display_name, &contexts, &request.fields, &user, error),
        None => pages::error(&EntraError::invalid_grant("The user no longer exists.")),
    }
}

/// The request, if the tenant and the request check out.
fn checked(emulator: &Emulator, tenant: &str, params: &HashMap<String, String>) -> Result<AuthorizeRequest, Failure> {
    emulator.tenant(tenant).map_err(Failure::Page)?;
    request::parse(emulator, params)
}

fn login_page(emulator: &Emulator, tenant: &str, request: &AuthorizeRequest, error: Option<&str>) -> Response {
    let action = format!("{}/{tenant}/oauth2/v2.0/authorize", emulator.public_url());
    pages::login(
        &action,
        &request.client.display_name,
        &request.fields,
        &LoginUser::all(emulator.manifest()),
        request.login_hint.as_deref(),
        error,
    )
}

/// Issues a code for the user of `session` (named by `cookie`) and sends it to the client.
/// `acrs`: the authentication contexts the user just stepped up for (none for a plain sign-in).
fn issue_code(
    emulator: &Emulator,
    request: &AuthorizeRequest,
    cookie: &str,
    session: &Session,
    acrs: &[String],
) -> Response {
    let inner = &emulator.0;
    let user_oid = session.user_oid.as_str();
    let code = match codes::code() {
        Ok(code) => code,
        Err(e) => return reply::error(request, e.into()),
    };
    inner.store.codes.insert(
        code.clone(),
        AuthCode {
            client_id: request.client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            user_oid: user_oid.to_string(),
            scope: request.scope.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            session_id: session.sid.clone(),
            expires_at: unix_now_i64() + inner.config.code_lifetime.as_secs() as i64,
            redeemed: false,
            acrs: acrs.to_vec(),
        },
    );
    session::add_client(emulator, cookie, &request.client.client_id);
    let mut params = vec![("code".to_string(), code), ("session_state".to_string(), session.sid.clone())];
    if request.client_info
        && let Some(user) = inner.dir.user_by_oid(user_oid)
    {
        params.push(("client_info".into(), client_info(user, &inner.dir.manifest.tenant)));
    }
    reply::redirect_with(request, params)
}
