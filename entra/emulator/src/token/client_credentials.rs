//! The client credentials grant: a confidential client's app-only token for a resource's
//! `/.default` scope.

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue;
use super::params::{Params, required, resource};
use crate::claims::{AccessClaims, ClientAuth};
use crate::directory::ClientApp;
use crate::error::EntraError;
use crate::state::Emulator;

#[tracing::instrument(name = "client_credentials", skip_all, fields(client_id = tracing::field::Empty))]
pub fn app_token(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate_confidential(emulator, params, headers)?;
    if let Some(fmi_path) = params.get("fmi_path") {
        return agent_assertion(emulator, params, &client, auth, fmi_path);
    }
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

/// Microsoft Entra Agent ID, step one of every agent flow: a blueprint, with its own credential,
/// asks for a token for `api://AzureADTokenExchange/.default` naming one of its agent identities
/// in `fmi_path`; the token (`sub` = that agent identity) is what the agent identity then
/// presents as its `client_assertion` ("Agent OAuth flows: On behalf of flow"; the Agent ID
/// setup instructions' runtime token exchange). Only a blueprint may ask, only for its own
/// children, only for the token-exchange audience. Entra documents no AADSTS code for these
/// three refusals that we could find; each answers in Entra's shape with the nearest code.
fn agent_assertion(
    emulator: &Emulator,
    params: &Params,
    client: &ClientApp,
    auth: ClientAuth,
    fmi_path: &str,
) -> Result<Value, EntraError> {
    let dir = &emulator.0.dir;
    let manifest = &dir.manifest;
    let Some(blueprint) = manifest.agent_blueprint_by_client_id(&client.client_id) else {
        return Err(EntraError::new(
            "unauthorized_client",
            700016,
            format!("fmi_path is only accepted from an agent identity blueprint; '{}' is not one.", client.client_id),
        ));
    };
    let expected = format!("{}/.default", entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE);
    let scope = required(params, "scope")?;
    if !scope.eq_ignore_ascii_case(&expected) {
        return Err(EntraError::new(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. A request with fmi_path must ask for {expected}."
            ),
        ));
    }
    let agent = manifest
        .agent_identity_by_client_id(fmi_path)
        .filter(|agent| agent.blueprint == blueprint.name)
        .ok_or_else(|| {
            EntraError::new(
                "invalid_request",
                700016,
                format!(
                    "Agent identity '{fmi_path}' named in fmi_path is not a child of blueprint '{}'.",
                    blueprint.client_id
                ),
            )
        })?;
    let resource = dir
        .resource_for_managed_identity(entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE)
        .map_err(|message| EntraError::new("invalid_resource", 500011, message))?;
    let access = emulator.access_claims(&AccessClaims::app(&agent.client_id, &client.client_id, auth, &resource))?;
    let body = issue::access_only(emulator, &access, None)?;
    emulator.count(|c| &c.client_credentials);
    Ok(body)
}
