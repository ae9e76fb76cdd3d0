//! What service principals are granted: admin consent for each app's required access
//! (`oauth2PermissionGrants`, all users) and app roles for the signed-in user. Both need an
//! administrator; without one the run notes what to ask for and goes on. Admin consent is an
//! extra: pre-authorization (chat-app on orders-mcp, orders-mcp on orders-api) already lets
//! every user sign in and use the tools without a prompt for the project's own APIs.
//!
//! An agent blueprint's admin consent is not an extra: agent identities cannot be consented to
//! interactively and get delegated permissions only by inheriting the `AllPrincipals` grants of
//! their blueprint's principal ("List inheritedOAuth2PermissionGrants": "only inherited grants
//! where consentType is AllPrincipals",
//! https://learn.microsoft.com/graph/api/agentidentity-list-inheritedoauth2permissiongrants?view=graph-rest-beta).
//! Without an administrator the run says exactly what to ask one for.
//!
//! Both name service principals created moments before, which Graph may refuse as "Not a valid
//! reference update." for minutes: see [`Run::try_write_replicated`].

use std::collections::BTreeMap;

use entra_manifest::RequiredAccess;
use reqwest::Method;
use serde_json::json;

use super::applications::Registration;
use super::error::RunError;
use super::kind::Kind;
use super::run::Run;
use super::service_principals::Principal;
use super::tenant;
use crate::deployment::Deployment;
use crate::desired;
use crate::model::{AppRoleAssignment, PermissionGrant};
use crate::plan::{Action, Change};
use crate::rest::ApiError;

/// Grants (or updates) admin consent for manifest app or blueprint `name` on `wanted` (an app's
/// required access, a blueprint's inheritable permissions). `principals`: every service
/// principal, by manifest name.
#[tracing::instrument(skip_all, fields(app = name))]
pub async fn admin_consent(
    run: &mut Run<'_>,
    deployment: &Deployment,
    name: &str,
    wanted: &[RequiredAccess],
    registration: &Registration,
    principals: &BTreeMap<String, Principal>,
) -> Result<(), RunError> {
    let Some(client) = principals.get(name) else { return Ok(()) };
    if wanted.is_empty() {
        return Ok(());
    }
    let existing = existing(run, client).await?;
    for access in wanted {
        let Some(resource) = principals.get(&access.resource) else { continue };
        let scope = desired::consent_scopes(&access.scopes);
        let detail = format!("{name} -> {}: {scope} (all users)", access.resource);
        match grant(run, name, detail, client, resource, &scope, &existing).await {
            Ok(()) => {}
            Err(e) if e.is_forbidden() => {
                let note = match registration.kind {
                    Kind::App => optional_consent_note(deployment, name, &access.resource, registration),
                    Kind::Blueprint => blueprint_consent_note(name, &access.resource, &client.id, &resource.id, &scope),
                };
                run.note(note)
            }
            Err(e) => return Err(run.stopped(&e)),
        }
    }
    Ok(())
}

/// The `AllPrincipals` grants Graph holds for service principal `client`.
pub async fn existing(run: &Run<'_>, client: &Principal) -> Result<Vec<PermissionGrant>, RunError> {
    if client.planned {
        return Ok(Vec::new());
    }
    let filter = format!("clientId eq '{}'", client.id);
    let grants: Vec<PermissionGrant> = run.list("oauth2PermissionGrants", &[("$filter", &filter)]).await?;
    Ok(grants.into_iter().filter(|g| g.consent_type == "AllPrincipals").collect())
}

/// Makes `client`'s admin consent on `resource` exactly `scope` (space-separated), given its
/// `existing` grants: creates or updates one grant, or leaves it. Hands a refusal back.
pub async fn grant(
    run: &mut Run<'_>,
    name: &str,
    detail: String,
    client: &Principal,
    resource: &Principal,
    scope: &str,
    existing: &[PermissionGrant],
) -> Result<(), ApiError> {
    match existing.iter().find(|g| g.resource_id == resource.id) {
        None => {
            let change = Change::new(Action::Create, "admin consent", name, detail);
            let body = json!(PermissionGrant {
                id: String::new(),
                client_id: client.id.clone(),
                consent_type: "AllPrincipals".into(),
                principal_id: None,
                resource_id: resource.id.clone(),
                scope: scope.to_string(),
            });
            run.try_write_replicated(change, Method::POST, "oauth2PermissionGrants", Some(body)).await
        }
        Some(g)
            if desired::consent_scopes(&g.scope.split_whitespace().map(str::to_string).collect::<Vec<_>>())
                != scope =>
        {
            let change = Change::new(Action::Update, "admin consent", name, detail);
            let path = format!("oauth2PermissionGrants/{}", g.id);
            run.try_write(change, Method::PATCH, &path, Some(json!({ "scope": scope }))).await
        }
        Some(_) => Ok(()),
    }
}

/// The exact Graph request an administrator sends to grant `client_id` admin consent for
/// `scope` on `resource_id` (service principal object ids).
pub fn admin_request(client_id: &str, resource_id: &str, scope: &str) -> String {
    let body =
        json!({"clientId": client_id, "consentType": "AllPrincipals", "resourceId": resource_id, "scope": scope});
    format!("`az rest --method POST --url https://graph.microsoft.com/v1.0/oauth2PermissionGrants --body '{body}'`")
}

/// Admin consent for an app's required access, which pre-authorization makes optional.
fn optional_consent_note(deployment: &Deployment, name: &str, resource: &str, registration: &Registration) -> String {
    format!(
        "admin consent for {name} -> {resource} was not granted: it needs a Cloud Application Administrator or \
Application Administrator (or Global Administrator). It is optional: {name} is pre-authorized, so users are not \
asked to consent to it. An administrator can grant it at \
https://login.microsoftonline.com/{}/adminconsent?client_id={}",
        deployment.id.tenant_id, registration.app_id
    )
}

/// Admin consent for a blueprint's inheritable permissions, which agent mode cannot do without:
/// the exact Graph request for an administrator to send.
fn blueprint_consent_note(name: &str, resource: &str, client_id: &str, resource_id: &str, scope: &str) -> String {
    format!(
        "admin consent for agent blueprint {name} -> {resource} ({scope}) was not granted, and agent mode needs it: \
agent identities cannot be consented to interactively, they inherit their blueprint's admin consent. Ask a Cloud \
Application Administrator or Application Administrator to grant it, e.g. with {}, then run the hook again",
        admin_request(client_id, resource_id, scope)
    )
}

/// Gives the signed-in user the app roles asked for (`--assign-role`, `ORDERS_COPILOT_ASSIGN_ROLES`).
/// `principals`: every app's service principal, by manifest app name.
#[tracing::instrument(skip_all)]
pub async fn assign_roles(
    run: &mut Run<'_>,
    deployment: &Deployment,
    principals: &BTreeMap<String, Principal>,
) -> Result<(), RunError> {
    let manifest = run.manifest;
    if deployment.assign_roles.is_empty() {
        return Ok(());
    }
    let Some(me) = tenant::signed_in_user(run).await? else {
        run.note("no signed-in user (the sign-in is an application): app roles were not assigned".to_string());
        return Ok(());
    };
    for request in &deployment.assign_roles {
        let Some(role) = manifest.app(&request.app).and_then(|a| a.app_role(&request.role)) else { continue };
        let Some(resource) = principals.get(&request.app) else { continue };
        let path = format!("servicePrincipals/{}/appRoleAssignedTo", resource.id);
        let existing: Vec<AppRoleAssignment> = if resource.planned { Vec::new() } else { run.list(&path, &[]).await? };
        if existing.iter().any(|a| a.principal_id == me && a.app_role_id == role.id) {
            continue;
        }
        let detail = format!("{} for the signed-in user {me}", request.role);
        let change = Change::new(Action::Create, "app role assignment", &request.app, detail);
        let body = json!(AppRoleAssignment {
            id: String::new(),
            principal_id: me.clone(),
            resource_id: resource.id.clone(),
            app_role_id: role.id.clone(),
        });
        match run.try_write_replicated(change, Method::POST, &path, Some(body)).await {
            Ok(()) => {}
            Err(e) if e.is_forbidden() => run.note(format!(
                "assigning {}/{} needs an administrator or the app's owner; ask one to assign it in the \
Enterprise applications blade",
                request.app, request.role
            )),
            Err(e) => return Err(run.stopped(&e)),
        }
    }
    Ok(())
}
