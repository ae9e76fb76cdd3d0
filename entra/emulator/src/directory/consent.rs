//! Which delegated scopes a client gets on a resource.
//!
//! Consent model: pre-authorized clients need no consent for their scopes ("any such
//! application can request these permissions in an OBO flow and receive them without the user
//! providing consent", Microsoft identity platform On-Behalf-Of flow); every app's
//! `required_access` counts as admin-consented unless the emulator runs as a tenant where nobody
//! could grant it (`admin_consent: false`, the postprovision hook's case without an
//! administrator); anything else is refused with AADSTS65001 `consent_required`, as Entra does
//! for a middle tier nobody consented to (the user never sees a prompt for it). An agent identity
//! gets only its blueprint's inheritable permissions (see [`inherited`]).

use entra_manifest::Manifest;

use super::client::ClientApp;
use super::resource::{Resource, ScopeRequest};
use crate::error::EntraError;

/// The delegated scopes granted for a request, or AADSTS65001 if any was never consented.
pub fn grant(
    manifest: &Manifest,
    admin_consent: bool,
    client: &ClientApp,
    request: &ScopeRequest,
) -> Result<Vec<String>, EntraError> {
    let Some(resource) = &request.resource else {
        return Ok(Vec::new());
    };
    let consented = consented(manifest, admin_consent, client, resource);
    let granted: Vec<String> = if request.is_default() {
        consented
    } else {
        if let Some(missing) = request.values.iter().find(|v| !consented.contains(v)) {
            tracing::debug!(scope = %missing, client = %client.client_id, "scope not consented");
            return Err(EntraError::consent_required(&client.client_id, &client.display_name));
        }
        request.values.clone()
    };
    if granted.is_empty() {
        return Err(EntraError::consent_required(&client.client_id, &client.display_name));
    }
    Ok(granted)
}

/// The scopes `client` may have on `resource` without asking the user: pre-authorization
/// plus required access when an administrator consented to it. An app may always use its own scopes.
fn consented(manifest: &Manifest, admin_consent: bool, client: &ClientApp, resource: &Resource) -> Vec<String> {
    if let Some(agent) = manifest.agent_identity_by_client_id(&client.client_id) {
        return inherited(manifest, admin_consent, &agent.blueprint, resource);
    }
    let client_name = manifest
        .apps
        .values()
        .chain(manifest.agent_blueprints.values())
        .map(|a| (&a.name, &a.client_id))
        .chain(manifest.clients.values().map(|c| (&c.name, &c.client_id)))
        .find(|(_, id)| id.eq_ignore_ascii_case(&client.client_id))
        .map(|(name, _)| name.clone());
    let Some(client_name) = client_name else {
        return Vec::new();
    };
    if resource.name == client_name || resource.name == "microsoft-graph" {
        return resource.scopes.clone();
    }
    let mut scopes: Vec<String> = Vec::new();
    if let Some(resource_app) = manifest.app(&resource.name).or_else(|| manifest.agent_blueprints.get(&resource.name)) {
        for pre in resource_app.pre_authorized.iter().filter(|p| p.client == client_name) {
            scopes.extend(pre.scopes.iter().cloned());
        }
    }
    if let Some(client_app) = manifest.app(&client_name).filter(|_| admin_consent) {
        for req in client_app.required_access.iter().filter(|r| r.resource == resource.name) {
            scopes.extend(req.scopes.iter().cloned());
        }
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

/// An agent identity's delegated scopes: only what its blueprint's inheritable permissions name,
/// and only once an administrator consented to them on the blueprint. "Child agent identities
/// can't initiate interactive /authorize flows. Consequently, users can't grant them consent
/// interactively ... you must preauthorize the required delegated permissions by configuring
/// inheritable permissions on the parent agent identity blueprint. Ensure an administrator has
/// actually granted consent for these permissions on the blueprint" (Agent OAuth flows: On
/// behalf of flow). Without it: AADSTS65001, as for any scope nobody consented to.
fn inherited(manifest: &Manifest, admin_consent: bool, blueprint: &str, resource: &Resource) -> Vec<String> {
    let Some(blueprint) = manifest.agent_blueprints.get(blueprint).filter(|_| admin_consent) else {
        return Vec::new();
    };
    blueprint
        .inheritable_permissions
        .iter()
        .filter(|p| p.resource == resource.name)
        .flat_map(|p| p.scopes.iter().cloned())
        .collect()
}
