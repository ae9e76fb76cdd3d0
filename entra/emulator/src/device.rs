//! Device-code sign-in (RFC 8628): the device asks for a code, the user enters it at
//! `/devicelogin` and signs in, the device polls the token endpoint (`token::device_code`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{Value, json};
use service_kit::clock::unix_now_i64;

use crate::codes;
use crate::error::EntraError;
use crate::pages::{self, LoginUser};
use crate::state::Emulator;
use crate::store::{DeviceGrant, DeviceState};

#[tracing::instrument(name = "devicecode", skip_all, fields(tenant = %tenant, client_id = params.get("client_id").map(String::as_str)))]
pub async fn start(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    Form(params): Form<HashMap<String, String>>,
) -> Response {
    match device_authorization(&emulator, &tenant, &params) {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

fn device_authorization(
    emulator: &Emulator,
    tenant: &str,
    params: &HashMap<String, String>,
) -> Result<Value, EntraError> {
    emulator.tenant(tenant)?;
    let client_id = params.get("client_id").ok_or_else(|| EntraError::missing_parameter("client_id"))?;
    let client = emulator.0.dir.client(client_id)?;
    let scope = params.get("scope").cloned().unwrap_or_default();
    if scope.trim().is_empty() {
        return Err(EntraError::missing_parameter("scope"));
    }
    let scopes = emulator.0.dir.parse_scopes(&scope)?;
    scopes.check_resource_indicator(params.get("resource").map(String::as_str).filter(|r| !r.is_empty()))?;
    emulator.0.dir.grant(&client, &scopes)?;
    let config = &emulator.0.config;
    let (device_code, user_code) = (codes::code()?, codes::user_code()?);
    let expires_in = config.device_code_lifetime.as_secs();
    emulator.0.store.devices.insert(
        device_code.clone(),
        DeviceGrant {
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope,
            expires_at: unix_now_i64() + expires_in as i64,
            state: DeviceState::Pending,
        },
    );
    let uri = verification_uri(emulator);
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": uri,
        "expires_in": expires_in,
        "interval": config.device_poll_interval.as_secs(),
        "message": format!("To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."),
    }))
}

#[tracing::instrument(name = "devicelogin", skip_all)]
pub async fn page(State(emulator): State<Emulator>, Query(q): Query<HashMap<String, String>>) -> Response {
    entry_page(&emulator, q.get("otc").map(String::as_str), None)
}

#[tracing::instrument(name = "devicelogin_sign_in", skip_all)]
pub async fn approve(State(emulator): State<Emulator>, Form(form): Form<HashMap<String, String>>) -> Response {
    let code = normalize(form.get("user_code").map(String::as_str).unwrap_or_default());
    let store = &emulator.0.store;
    let device_code = store
        .devices
        .find_key(|d| d.user_code == code && d.state == DeviceState::Pending && d.expires_at > unix_now_i64());
    let Some(device_code) = device_code else {
        return entry_page(&emulator, Some(&code), Some("That code didn't work. Check the code and try again."));
    };
    if form.get("decision").map(String::as_str) == Some("decline") {
        store.devices.update(&device_code, |d| d.state = DeviceState::Declined);
        return pages::message("Sign-in cancelled", "You cancelled the sign-in on your device.");
    }
    let login = form.get("login").map(String::as_str).unwrap_or_default();
    let password = form.get("password").map(String::as_str).unwrap_or_default();
    let Some(user) = emulator.0.dir.user_by_login(login).filter(|u| u.password == password) else {
        return entry_page(
            &emulator,
            Some(&code),
            Some("AADSTS50126: Error validating credentials due to invalid username or password."),
        );
    };
    let session_id = match codes::session_id() {
        Ok(id) => id,
        Err(e) => return pages::error(&EntraError::from(e)),
    };
    let approved = DeviceState::Approved { user_oid: user.oid.clone(), session_id };
    store.devices.update(&device_code, |d| d.state = approved);
    pages::message("You're signed in", "You have signed in on your device. You may now close this window.")
}

/// Where the user enters the code.
fn verification_uri(emulator: &Emulator) -> String {
    format!("{}/devicelogin", emulator.public_url())
}

fn entry_page(emulator: &Emulator, user_code: Option<&str>, error: Option<&str>) -> Response {
    pages::device(&verification_uri(emulator), &LoginUser::all(emulator.manifest()), user_code, error)
}

/// User codes as typed: any case, with or without separators.
fn normalize(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}
