//! OpenID Connect discovery (v1 and v2), JWKS, and MSAL's instance discovery.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::Emulator;

/// Base URL for back-channel endpoints: the host this request reached us on (see the crate
/// docs), falling back to the public URL when it is absent or odd. HTTP/1.1 names it in `Host`,
/// HTTP/2 (what clients negotiate over TLS) in the `:authority` the request URI carries.
fn backchannel_base(emulator: &Emulator, headers: &HeaderMap, uri: &Uri) -> String {
    let public = emulator.public_url();
    let scheme = public.split("://").next().unwrap_or("http");
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
    match host {
        Some(host) => format!("{scheme}://{host}"),
        None => public.to_string(),
    }
}

fn openid_document(emulator: &Emulator, headers: &HeaderMap, uri: &Uri, v2: bool) -> Value {
    let tid = emulator.tenant_id();
    let front = format!("{}/{tid}", emulator.public_url());
    let back = format!("{}/{tid}", backchannel_base(emulator, headers, uri));
    let (issuer, jwks) = if v2 {
        (emulator.issuers().v2.clone(), format!("{back}/discovery/v2.0/keys"))
    } else {
        (emulator.issuers().v1.clone(), format!("{back}/discovery/keys"))
    };
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{front}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{back}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{back}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{front}/oauth2/v2.0/logout"),
        "jwks_uri": jwks,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "nbf", "name", "nonce", "oid", "preferred_username",
            "tid", "ver", "email", "sid"
        ],
        "request_uri_parameter_supported": false,
        "frontchannel_logout_supported": true,
        "http_logout_supported": true,
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "msgraph_host": "graph.microsoft.com",
    })
}

pub async fn openid_v2(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return e.into_response();
    }
    emulator.count(|c| &c.discovery);
    Json(openid_document(&emulator, &headers, &uri, true)).into_response()
}

pub async fn openid_v1(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return e.into_response();
    }
    emulator.count(|c| &c.discovery);
    Json(openid_document(&emulator, &headers, &uri, false)).into_response()
}

pub async fn jwks(State(emulator): State<Emulator>, Path(tenant): Path<String>) -> Response {
    if let Err(e) = emulator.tenant(&tenant) {
        return e.into_response();
    }
    emulator.count(|c| &c.jwks);
    Json(emulator.0.keys.jwks(&emulator.issuers().v2)).into_response()
}

#[derive(Deserialize)]
pub struct InstanceQuery {
    authorization_endpoint: Option<String>,
}

/// MSAL's instance discovery (`/common/discovery/instance`): this host is its own cloud.
pub async fn instance(State(emulator): State<Emulator>, Query(q): Query<InstanceQuery>) -> Json<Value> {
    let host = url::Url::parse(emulator.public_url())
        .ok()
        .and_then(|u| u.host_str().map(|h| u.port().map_or(h.to_string(), |p| format!("{h}:{p}"))))
        .unwrap_or_default();
    let tid = emulator.tenant_id();
    let authority = q
        .authorization_endpoint
        .as_deref()
        .and_then(|e| e.split("/oauth2/").next())
        .map_or_else(|| format!("{}/{tid}", emulator.public_url()), str::to_string);
    Json(json!({
        "tenant_discovery_endpoint": format!("{authority}/v2.0/.well-known/openid-configuration"),
        "api-version": "1.1",
        "metadata": [{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }],
    }))
}
