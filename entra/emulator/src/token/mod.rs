//! The v2 token endpoint: one module per grant (authorization code + PKCE, rotating refresh
//! token, On-Behalf-Of, client credentials, device code), over the request form, client
//! authentication and the response shapes they share.

mod authorization_code;
mod client_auth;
mod client_credentials;
mod device_code;
mod issue;
mod on_behalf_of;
mod params;
mod refresh_token;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::error::EntraError;
use crate::state::Emulator;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The short name Entra also accepts for the device code grant: MSAL.js and MSAL Node poll with
/// `grant_type=device_code` (msal-common's `GrantType.DEVICE_CODE_GRANT`), as MSAL for Java does
/// (`DeviceCodeAuthorizationGrant`), MSAL Python with the RFC 8628 URN that Microsoft's device
/// code flow page documents; all of them work against login.microsoftonline.com.
const DEVICE_CODE_SHORT: &str = "device_code";

#[tracing::instrument(name = "token", skip_all, fields(tenant = %tenant))]
pub async fn token(
    State(emulator): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = emulator.tenant(&tenant).and_then(|()| grant(&emulator, &headers, &body));
    match result {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => {
            emulator.count(|c| &c.refused);
            e.into_response()
        }
    }
}

fn grant(emulator: &Emulator, headers: &HeaderMap, body: &[u8]) -> Result<Value, EntraError> {
    let params = params::parse_form(body)?;
    match params::required(&params, "grant_type")? {
        "authorization_code" => authorization_code::redeem(emulator, &params, headers),
        "refresh_token" => refresh_token::redeem(emulator, &params, headers),
        JWT_BEARER => on_behalf_of::exchange(emulator, &params, headers),
        "client_credentials" => client_credentials::app_token(emulator, &params, headers),
        DEVICE_CODE | DEVICE_CODE_SHORT => device_code::redeem(emulator, &params, headers),
        other => Err(EntraError::new(
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}
