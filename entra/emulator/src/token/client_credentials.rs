//! The client credentials grant: a confidential client's app-only token for a resource's
//! `/.default` scope.

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue;
use super::params::{Params, required, resource};
use crate::claims::AccessClaims;
use crate::error::EntraError;
use crate::state::Emulator;

#[tracing::instrument(name = "client_credentials", skip_all, fields(client_id = tracing::field::Empty))]
pub fn app_token(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate_confidential(emulator, params, headers)?;
    let scope = required(params, "scope")?;
    let scopes = emulator.0.dir.parse_scopes(scope)?;
    scopes.check_resource_indicator(resource(params))?;
    let resource = match (&scopes.resource, scopes.is_default() && scopes.oidc.is_empty()) {
        (Some(resource), true) => resource,
        _ => {
            return Err(EntraError::new(
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        }
    };
    let access = emulator.access_claims(&AccessClaims::app(&client.object_id, &client.client_id, auth, resource))?;
    let body = issue::access_only(emulator, &access, None)?;
    emulator.count(|c| &c.client_credentials);
    Ok(body)
}
