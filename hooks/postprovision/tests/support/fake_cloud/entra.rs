//! The fake Microsoft Entra token service, for agent mode's device-code sign-in only
//! ("Microsoft identity platform and the OAuth 2.0 device authorization grant flow",
//! https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code), in Entra's wire
//! format: `POST /{tenant}/oauth2/v2.0/devicecode` (`client_id`, `scope`) answers `device_code`,
//! `user_code`, `verification_uri`, `expires_in`, `interval`, `message`; `POST .../token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` answers `authorization_pending`
//! until the person answers ([`super::DeviceSignIn`]), then a token or `authorization_declined`
//! (a person who never answers: pending until the client gives up at `expires_in`). Errors are Entra's body (`error`, `error_description` with the AADSTS
//! code, `error_codes`, ...).
//!
//! Entra's rules: the client must be an app registration of the tenant that allows public client
//! flows (`isFallbackPublicClient`; otherwise AADSTS7000218, the confidential-client error), and
//! an administrator must have consented to its Microsoft Graph permissions (otherwise
//! AADSTS65001). The token carries exactly the consented scopes.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::graph::GRAPH_PRINCIPAL_ID;
use super::reply::{json_response, new_id};
use super::state::{Caller, Config, DeviceSignIn, Directory};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Answers `path` when it is a token service endpoint.
pub fn route(dir: &mut Directory, config: &Config, method: &Method, path: &str, body: &[u8]) -> Option<Response> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let [tenant, "oauth2", "v2.0", endpoint] = segments.as_slice() else { return None };
    if method != Method::POST {
        return Some(entra_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", 900561, "Use POST."));
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if !tenant.eq_ignore_ascii_case(&config.tenant_id) {
        return Some(entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        ));
    }
    Some(match *endpoint {
        "devicecode" => device_code(dir, config, &form),
        "token" => token(dir, config, &form),
        _ => entra_error(StatusCode::NOT_FOUND, "invalid_request", 900561, "Unknown endpoint."),
    })
}

fn device_code(dir: &mut Directory, config: &Config, form: &BTreeMap<String, String>) -> Response {
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if form.get("scope").is_none_or(String::is_empty) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    }
    let known = dir.applications.values().any(|a| a["appId"] == client_id.as_str());
    if !known || dir.client_lag_answers < config.client_lag {
        dir.client_lag_answers += usize::from(known);
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    let device_code = new_id();
    let user_code = "FAKE1234";
    dir.device_codes.insert(device_code.clone(), (client_id, 0));
    json_response(
        StatusCode::OK,
        json!({
            "user_code": user_code, "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": config.device_expires_in, "interval": config.device_interval,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        }),
    )
}

fn token(dir: &mut Directory, config: &Config, form: &BTreeMap<String, String>) -> Response {
    if form.get("grant_type").map(String::as_str) != Some(DEVICE_CODE_GRANT) {
        return entra_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", 70003, "Unsupported grant type.");
    }
    let code = form.get("device_code").cloned().unwrap_or_default();
    let Some((client_id, polls)) = dir.device_codes.get_mut(&code) else {
        return entra_error(StatusCode::BAD_REQUEST, "invalid_grant", 70000, "The provided device code is invalid.");
    };
    if form.get("client_id") != Some(client_id) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            70000,
            "The device code was issued to another client.",
        );
    }
    *polls += 1;
    let (client_id, polls) = (client_id.clone(), *polls);
    // The person looks at the page after the first poll; one who never does lets the code expire.
    if polls == 1 || config.device_sign_in == DeviceSignIn::Expire {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            70016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        );
    }
    dir.device_codes.remove(&code);
    match config.device_sign_in {
        DeviceSignIn::Decline => {
            return entra_error(
                StatusCode::BAD_REQUEST,
                "authorization_declined",
                70000,
                "The end user denied the authorization request.",
            );
        }
        DeviceSignIn::Approve | DeviceSignIn::Expire => {}
    }
    let app = dir.applications.values().find(|a| a["appId"] == client_id.as_str()).cloned().unwrap_or_default();
    if app["isFallbackPublicClient"] != true {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        );
    }
    let principal = dir.service_principals.iter().find(|(_, sp)| sp["appId"] == client_id.as_str()).map(|(id, _)| id);
    let consented = principal.and_then(|id| {
        dir.grants.values().find(|g| {
            g["clientId"] == id.as_str() && g["resourceId"] == GRAPH_PRINCIPAL_ID && g["consentType"] == "AllPrincipals"
        })
    });
    let Some(grant) = consented else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{}'. Send an interactive authorization request for this user and resource.",
                app["displayName"].as_str().unwrap_or_default()
            ),
        );
    };
    let scope = grant["scope"].as_str().unwrap_or_default().to_string();
    let access_token = format!("fake-device-token-{}", new_id());
    let scopes = scope.split_whitespace().map(str::to_string).collect();
    dir.tokens.insert(access_token.clone(), Caller { client_id, scopes });
    dir.device_sign_ins += 1;
    json_response(
        StatusCode::OK,
        json!({"token_type": "Bearer", "scope": scope, "expires_in": 3599, "ext_expires_in": 3599,
               "access_token": access_token}),
    )
}

/// Entra's OAuth error body.
fn entra_error(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let body: Value = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description} Trace ID: {} Correlation ID: {} Timestamp: 2025-01-01 00:00:00Z", new_id(), new_id()),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": new_id(),
        "correlation_id": new_id(),
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    json_response(status, body)
}
