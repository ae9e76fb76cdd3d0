//! On-Behalf-Of (the JWT bearer grant): a confidential client trades the user's token it
//! received for a token to the next resource, for the same user.
//!
//! The agent On-Behalf-Of flow (Microsoft Entra Agent ID, "Agent OAuth flows: On behalf of
//! flow") is the same grant with an agent identity as `client_id`, its blueprint's `fmi_path`
//! token as `client_assertion`, and the user's token, which must be for the *blueprint*, as
//! `assertion`. The token it issues names the agent (`azp` = the agent identity,
//! `xms_par_app_azp` = the blueprint) and keeps the user (`oid`, `scp`, `idtyp: user`).

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue;
use super::params::{Params, required, resource};
use crate::auth_context;
use crate::claims::{AccessClaims, Agent, Subject};
use crate::directory::ClientApp;
use crate::error::EntraError;
use crate::keys::Unverified;
use crate::state::Emulator;

#[tracing::instrument(name = "on_behalf_of", skip_all, fields(client_id = tracing::field::Empty))]
pub fn exchange(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate_confidential(emulator, params, headers)?;
    if params.get("requested_token_use").map(String::as_str) != Some("on_behalf_of") {
        return Err(EntraError::new(
            "invalid_request",
            90014,
            "The request body must contain the following parameter: 'requested_token_use' with the value 'on_behalf_of'.",
        ));
    }
    let assertion = required(params, "assertion")?;
    let claims = check_user_assertion(emulator, assertion, &client)?;
    let oid = claims["oid"].as_str().unwrap_or_default();
    let user =
        emulator.0.dir.user_by_oid(oid).ok_or_else(|| {
            EntraError::new("invalid_grant", 50034, "The user account does not exist in the directory.")
        })?;
    let scopes = emulator.0.dir.parse_scopes(required(params, "scope")?)?;
    scopes.check_resource_indicator(resource(params))?;
    let resource =
        scopes.resource.clone().ok_or_else(|| EntraError::invalid_scope("On-Behalf-Of needs a resource scope."))?;
    let granted = emulator.0.dir.grant(&client, &scopes)?;
    let roles = emulator.0.dir.user_roles(user, &resource);
    let agent = match client.agent_blueprint() {
        Some(blueprint) => Some(Agent::Client { blueprint: blueprint.to_string() }),
        None => upstream_agent(&claims),
    };
    // Authentication contexts pass through On-Behalf-Of only when asked for (`claims`) and
    // already satisfied by the user's token: OBO has no user to step up, so a missing one is
    // `interaction_required` with the claims for the client (docs/agent-identity.md).
    let held: Vec<String> = claims["acrs"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let acrs = auth_context::granted(emulator, params.get("claims").map(String::as_str), &held)?;
    let access = emulator.access_claims(&AccessClaims {
        subject: Subject::User(user),
        client_id: &client.client_id,
        client_auth: auth,
        resource: &resource,
        scopes: &granted,
        roles: &roles,
        session_id: claims["sid"].as_str(),
        agent,
        acrs: &acrs,
    })?;
    let body = issue::access_only(emulator, &access, Some(resource.full_scopes(&granted).join(" ")))?;
    emulator.count(|c| &c.on_behalf_of);
    Ok(body)
}

/// The agent a middle tier's user assertion came from, if any (see [`Agent::Upstream`]): the
/// agent that held it, or the one an earlier middle tier recorded.
fn upstream_agent(claims: &Value) -> Option<Agent> {
    let (agent_id, blueprint) = match claims["xms_par_app_azp"].as_str() {
        Some(blueprint) => (claims["azp"].as_str().or_else(|| claims["appid"].as_str())?, blueprint),
        None => (claims["act"]["sub"].as_str()?, claims["act"]["xms_par_app_azp"].as_str()?),
    };
    Some(Agent::Upstream { agent_id: agent_id.to_string(), blueprint: blueprint.to_string() })
}

/// The user assertion must be our token, for this client, with a user in it. For an agent
/// identity, "for this client" means for its blueprint: "the user's token ... audienced to the
/// blueprint" (Agent OAuth flows: On behalf of flow: a client app gets the user's token for the
/// blueprint, and the agent identity exchanges it).
fn check_user_assertion(emulator: &Emulator, assertion: &str, client: &ClientApp) -> Result<Value, EntraError> {
    let claims = emulator.0.keys.verify(assertion).map_err(|problem| match problem {
        Unverified::Expired => {
            EntraError::new("invalid_grant", 500133, "Assertion is not within its valid time range.")
        }
        Unverified::Signature => EntraError::new("invalid_grant", 50013, "Assertion failed signature validation."),
        Unverified::Malformed => EntraError::new("invalid_request", 50027, "JWT token is invalid or malformed."),
    })?;
    if !client_auth::is_own_issuer(emulator, &claims) {
        return Err(EntraError::new(
            "invalid_grant",
            50013,
            "Assertion failed signature validation. The issuer is not trusted.",
        ));
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    let owner = client.agent_blueprint().unwrap_or(&client.client_id);
    let for_this_client = emulator.0.dir.resource(aud).is_some_and(|r| r.client_id.eq_ignore_ascii_case(owner));
    if !for_this_client {
        return Err(EntraError::new(
            "invalid_grant",
            50013,
            "Assertion failed signature validation. [Reason - The provided audience does not match the client presenting the assertion.]",
        ));
    }
    if claims.get("scp").is_none() {
        return Err(EntraError::new(
            "invalid_grant",
            50013,
            "Assertion is an application token: On-Behalf-Of needs a user's token.",
        ));
    }
    Ok(claims)
}
