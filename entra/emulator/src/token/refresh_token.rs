//! The refresh token grant. Refresh tokens rotate: each is spent by its first use, and the
//! response carries the next one.

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue::{self, Issue};
use super::params::{Params, required, resource, wants_client_info};
use crate::auth_context;
use crate::error::EntraError;
use crate::state::Emulator;

#[tracing::instrument(name = "refresh_token", skip_all, fields(client_id = tracing::field::Empty))]
pub fn redeem(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate(emulator, params, headers)?;
    let token = required(params, "refresh_token")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.refresh_tokens.lookup(token) else {
        return Err(EntraError::invalid_grant(
            "The refresh token is invalid or was already used (refresh tokens rotate: use the one from the latest response).",
        ));
    };
    if expired {
        store.refresh_tokens.remove(token);
        return Err(EntraError::new(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity. The token was issued and was inactive for too long.",
        ));
    }
    issue::check_client(&grant.client_id, &client, "refresh token")?;
    // Rotation: this token is spent whatever happens next.
    if store.refresh_tokens.remove(token).is_none() {
        return Err(EntraError::invalid_grant("The refresh token was already used."));
    }
    let user = issue::user(emulator, &grant.user_oid)?;
    let scope_text = params.get("scope").cloned().filter(|s| !s.is_empty()).unwrap_or_else(|| grant.scope.clone());
    let mut scopes = emulator.0.dir.parse_scopes(&scope_text)?;
    scopes.check_resource_indicator(resource(params))?;
    if !scopes.has("offline_access") {
        // A refresh token keeps its offline access: the response carries the next one.
        scopes.oidc.push("offline_access".into());
    }
    // A step-up counts while it is fresh; after that the refreshed token no longer carries it,
    // and a `claims` request for it needs the user again (interaction_required).
    let fresh = service_kit::clock::unix_now_i64() - grant.stepped_up_at < auth_context::STEP_UP_LIFETIME_SECS;
    let held = if fresh { grant.acrs.clone() } else { Vec::new() };
    auth_context::granted(emulator, params.get("claims").map(String::as_str), &held)?;
    let response = issue::for_user(
        emulator,
        Issue {
            client: &client,
            auth,
            user,
            scopes,
            scope_text: grant.scope,
            session_id: grant.session_id,
            nonce: None,
            client_info: wants_client_info(params),
            acrs: held,
            stepped_up_at: grant.stepped_up_at,
        },
    )?;
    emulator.count(|c| &c.refresh_token);
    Ok(response)
}
