//! The fake's HTTP front: what every request goes through before Graph or ARM sees it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::Value;

use super::reply::{bad_request, error};
use super::state::{Caller, Fault, Shared};
use super::{arm, entra, graph};

/// The token the developer's azd / Azure CLI sign-in gets (tests/support/clis.rs).
pub const TOKEN: &str = "fake-graph-token";
/// The Azure CLI's first-party client id, which azd uses too.
pub const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// Who [`TOKEN`] speaks for: the Azure CLI's client with the delegated Microsoft Graph
/// permissions it is preauthorized for, `Directory.AccessAsUser.All` among them (what a real
/// `az account get-access-token --resource-type ms-graph` token's `scp` claim holds).
pub fn azure_cli() -> Caller {
    let scopes = [
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "AuditLog.Read.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.AccessAsUser.All",
        "email",
        "Group.ReadWrite.All",
        "openid",
        "profile",
        "User.Read.All",
        "User.ReadWrite.All",
    ];
    Caller { client_id: AZURE_CLI_CLIENT_ID.into(), scopes: scopes.map(str::to_string).to_vec() }
}

/// Every request: Entra's token endpoints (no bearer token); otherwise the bearer token,
/// throttling and injected faults first, then Graph (`/v1.0/...`) or ARM; successful writes
/// are logged.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = shared.config.lock().unwrap().clone();
    let base = shared.base.lock().unwrap().clone();
    if let Some(response) = entra::route(&mut shared.dir.lock().unwrap(), &config, &method, &uri, &body) {
        return response;
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let caller = match bearer {
        Some(TOKEN) => azure_cli(),
        Some(token) => match shared.dir.lock().unwrap().tokens.get(token) {
            Some(caller) => caller.clone(),
            None => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token is empty or invalid.",
                );
            }
        },
        None => {
            return error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty or invalid.");
        }
    };
    let is_write = method != Method::GET;
    let fault = {
        let mut dir = shared.dir.lock().unwrap();
        dir.requests += 1;
        if let Some(every) = config.throttle_every
            && dir.requests % every == 0
        {
            dir.throttled += 1;
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests from Identifier under tenant. Please try again later.",
            );
            response.headers_mut().insert("retry-after", config.retry_after_secs.to_string().parse().unwrap());
            return response;
        }
        match config.fail_after_writes {
            Some((limit, fault)) if is_write && dir.writes.len() >= limit => Some(fault),
            _ => None,
        }
    };
    match fault {
        Some(Fault::Refuse) => return bad_request("Injected fault: the service is unavailable for writes."),
        Some(Fault::Hang) => {
            shared.hung.notify_one();
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return bad_request("Unable to read JSON request payload."),
        }
    };
    let query: BTreeMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let path = uri.path().to_string();
    let response = {
        let mut dir = shared.dir.lock().unwrap();
        let response = if let Some(graph_path) = path.strip_prefix("/v1.0/") {
            let segments: Vec<&str> = graph_path.split('/').collect();
            graph::route(&mut dir, &config, &caller, &base, &method, &segments, &query, body)
        } else {
            arm::route(&mut dir, &base, &method, &path, &query, body)
        };
        if is_write && response.status().is_success() {
            dir.writes.push(format!("{method} {path}"));
        }
        response
    };
    if fault == Some(Fault::HangAfterWrite) {
        shared.hung.notify_one();
        std::future::pending::<()>().await;
    }
    response
}
