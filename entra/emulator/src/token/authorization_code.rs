//! The authorization code grant: redeems a code from the authorize endpoint, once, with the
//! PKCE verifier when the code was issued for a challenge.

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue::{self, Issue};
use super::params::{Params, required, resource, wants_client_info};
use crate::auth_context;
use crate::error::EntraError;
use crate::state::Emulator;

#[tracing::instrument(name = "authorization_code", skip_all, fields(client_id = tracing::field::Empty))]
pub fn redeem(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate(emulator, params, headers)?;
    let code = required(params, "code")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.codes.lookup(code) else {
        return Err(EntraError::invalid_grant(
            "The provided authorization code is invalid. Send a new interactive authorization request for this user and resource.",
        ));
    };
    if expired {
        return Err(EntraError::new(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        ));
    }
    // Mark redeemed first, atomically: two concurrent redemptions cannot both succeed.
    let first_use = store.codes.update(code, |c| !std::mem::replace(&mut c.redeemed, true)).unwrap_or(false);
    if !first_use {
        return Err(EntraError::new(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        ));
    }
    issue::check_client(&grant.client_id, &client, "authorization code")?;
    if params.get("redirect_uri").map(String::as_str) != Some(grant.redirect_uri.as_str()) {
        return Err(EntraError::new(
            "invalid_grant",
            500112,
            "The reply address does not match the reply address provided when requesting the authorization code.",
        ));
    }
    if let Some(challenge) = &grant.code_challenge {
        let verifier = params.get("code_verifier").ok_or_else(|| EntraError::missing_parameter("code_verifier"))?;
        if !entra_auth::pkce::verifies(verifier, challenge) {
            return Err(EntraError::new(
                "invalid_grant",
                50148,
                "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            ));
        }
    }
    let user = issue::user(emulator, &grant.user_oid)?;
    // The token request may narrow the scope; it is the authorization request's otherwise.
    let scope_text = params.get("scope").cloned().filter(|s| !s.is_empty()).unwrap_or_else(|| grant.scope.clone());
    let mut scopes = emulator.0.dir.parse_scopes(&scope_text)?;
    scopes.check_resource_indicator(resource(params))?;
    // OpenID scopes consented at authorize stay in effect (Entra returns the ID token anyway).
    for oidc in emulator.0.dir.parse_scopes(&grant.scope)?.oidc {
        if !scopes.oidc.contains(&oidc) {
            scopes.oidc.push(oidc);
        }
    }
    // The token request may repeat the claims request; it cannot ask for more than the user
    // stepped up for at authorize.
    let acrs = auth_context::granted(emulator, params.get("claims").map(String::as_str), &grant.acrs)?;
    let acrs = if acrs.is_empty() { grant.acrs.clone() } else { acrs };
    let response = issue::for_user(
        emulator,
        Issue {
            client: &client,
            auth,
            user,
            scopes,
            scope_text: grant.scope,
            session_id: grant.session_id,
            nonce: grant.nonce,
            client_info: wants_client_info(params),
            acrs,
            stepped_up_at: service_kit::clock::unix_now_i64(),
        },
    )?;
    emulator.count(|c| &c.authorization_code);
    Ok(response)
}
