//! The managed-identity endpoint, shaped like App Service / Container Apps
//! (`IDENTITY_ENDPOINT` + `X-IDENTITY-HEADER`, `api-version=2019-08-01`), so the services'
//! managed-identity code, and Microsoft's `ManagedIdentityCredential`, work unchanged locally.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use service_kit::clock::unix_now_i64;
use service_kit::secret;

use crate::claims::{AccessClaims, ClientAuth};
use crate::state::Emulator;

/// App Service's error shape for this endpoint.
pub(crate) fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "statusCode": status.as_u16(), "message": message }))).into_response()
}

/// The `resource` of a well-formed request carrying the right `X-IDENTITY-HEADER` (compared in
/// constant time), or the status and message of the refusal App Service would send.
pub(crate) fn requested_resource<'q>(
    headers: &HeaderMap,
    q: &'q HashMap<String, String>,
    expected: &str,
) -> Result<&'q str, (StatusCode, &'static str)> {
    let given = headers.get("x-identity-header").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !secret::same(given, expected) {
        return Err((StatusCode::UNAUTHORIZED, "The X-IDENTITY-HEADER header is missing or wrong."));
    }
    if q.get("api-version").map(String::as_str) != Some("2019-08-01") {
        return Err((StatusCode::BAD_REQUEST, "api-version must be 2019-08-01."));
    }
    match q.get("resource").filter(|r| !r.is_empty()) {
        Some(resource) => Ok(resource),
        None => Err((StatusCode::BAD_REQUEST, "The resource parameter is required.")),
    }
}

#[tracing::instrument(name = "managed_identity", skip_all, fields(resource = q.get("resource").map(String::as_str)))]
pub async fn token(
    State(emulator): State<Emulator>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(expected) = emulator.0.config.identity_header.as_deref() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "The managed identity endpoint is disabled: start the emulator with EMULATOR_IDENTITY_HEADER set.",
        );
    };
    let resource = match requested_resource(&headers, &q, expected) {
        Ok(resource) => resource,
        Err((status, message)) => return refuse(status, message),
    };
    let identities = &emulator.0.dir.manifest.managed_identities;
    let wanted = |id: &str, principal: bool| {
        identities.values().find(|mi| {
            if principal { mi.principal_id.eq_ignore_ascii_case(id) } else { mi.client_id.eq_ignore_ascii_case(id) }
        })
    };
    let identity = match (q.get("client_id"), q.get("principal_id").or_else(|| q.get("object_id"))) {
        (Some(id), _) => wanted(id, false),
        (None, Some(id)) => wanted(id, true),
        (None, None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "No system-assigned identity exists here: pass the client_id of a user-assigned identity.",
            );
        }
    };
    let Some(identity) = identity else {
        return refuse(StatusCode::BAD_REQUEST, "No managed identity with that id is assigned to this resource.");
    };
    let target = match emulator.0.dir.resource_for_managed_identity(resource) {
        Ok(target) => target,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, &message),
    };
    let access = AccessClaims::app(&identity.principal_id, &identity.client_id, ClientAuth::Assertion, &target);
    let issued = emulator.access_claims(&access).map_err(anyhow::Error::from).and_then(|claims| emulator.sign(&claims));
    match issued {
        Ok(token) => {
            emulator.count(|c| &c.managed_identity);
            Json(json!({
                "access_token": token,
                "expires_on": (unix_now_i64() + emulator.token_lifetime()).to_string(),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": identity.client_id,
            }))
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot issue a managed identity token");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "The token could not be issued.")
        }
    }
}
