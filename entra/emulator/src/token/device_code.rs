//! The device code grant: the device polls until the user approved (or declined) the sign-in
//! at `/devicelogin` (see `crate::device`).

use axum::http::HeaderMap;
use serde_json::Value;

use super::client_auth;
use super::issue::{self, Issue};
use super::params::{Params, required, resource, wants_client_info};
use crate::error::EntraError;
use crate::state::Emulator;
use crate::store::DeviceState;

#[tracing::instrument(name = "device_code", skip_all, fields(client_id = tracing::field::Empty))]
pub fn redeem(emulator: &Emulator, params: &Params, headers: &HeaderMap) -> Result<Value, EntraError> {
    let (client, auth) = client_auth::authenticate(emulator, params, headers)?;
    let code = required(params, "device_code")?;
    let store = &emulator.0.store;
    let Some((grant, expired)) = store.devices.lookup(code) else {
        return Err(EntraError::invalid_grant("The provided device code is invalid."));
    };
    if expired {
        store.devices.remove(code);
        return Err(EntraError::new("expired_token", 70019, "Verification code expired."));
    }
    issue::check_client(&grant.client_id, &client, "device code")?;
    let (user_oid, session_id) = match grant.state {
        DeviceState::Pending => {
            return Err(EntraError::new(
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ));
        }
        DeviceState::Declined => {
            store.devices.remove(code);
            return Err(EntraError::new(
                "authorization_declined",
                70000,
                "The end user denied the authorization request.",
            ));
        }
        DeviceState::Approved { user_oid, session_id } => (user_oid, session_id),
    };
    if store.devices.remove(code).is_none() {
        return Err(EntraError::invalid_grant("The device code was already redeemed."));
    }
    let user = issue::user(emulator, &user_oid)?;
    let scopes = emulator.0.dir.parse_scopes(&grant.scope)?;
    scopes.check_resource_indicator(resource(params))?;
    let response = issue::for_user(
        emulator,
        Issue {
            client: &client,
            auth,
            user,
            scopes,
            scope_text: grant.scope,
            session_id,
            nonce: None,
            client_info: wants_client_info(params),
            acrs: Vec::new(),
            stepped_up_at: 0,
        },
    )?;
    emulator.count(|c| &c.device_code);
    Ok(response)
}
