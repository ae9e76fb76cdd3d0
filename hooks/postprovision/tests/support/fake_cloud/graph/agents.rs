//! Microsoft Entra Agent ID in Graph v1.0: agent identity blueprints (application objects of
//! their own type), their principals, their inheritable permissions and agent identities, with
//! the documented rules:
//!
//! - creating any of them needs the Agent ID Developer or Agent ID Administrator role (403
//!   otherwise): "Create agentIdentityBlueprint",
//!   https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0;
//! - a blueprint needs `displayName` and a sponsor at creation ("You must specify the displayName
//!   property and sponsors relationship", same page); an agent identity at least one sponsor
//!   ("At least one sponsor (user or group) is required", New-EntraAgentIDForAgentIdentityBlueprint,
//!   https://learn.microsoft.com/powershell/module/microsoft.entra.applications/new-entraagentidforagentidentityblueprint);
//!   sponsors here are users of the tenant, i.e. the signed-in user;
//! - a blueprint's principal is created through its own type, never as a plain service
//!   principal ("Create agentIdentityBlueprintPrincipal",
//!   https://learn.microsoft.com/graph/api/agentidentityblueprintprincipal-post?view=graph-rest-1.0);
//! - an agent identity names an existing blueprint whose principal exists ("An agent identity
//!   blueprint principal is instantiated from an agentIdentityBlueprint object and is used to
//!   create agent identities", https://learn.microsoft.com/graph/api/resources/agentidentityblueprintprincipal?view=graph-rest-1.0);
//!   it has no credential of its own (no password, key or federated credential properties);
//! - an inheritable permission names a resource app's `appId` and, as `enumeratedScopes`, a
//!   non-empty list of unique scopes that app publishes ("enumeratedScopes resource type",
//!   https://learn.microsoft.com/graph/api/resources/enumeratedscopes?view=graph-rest-1.0);
//!   `resourceAppId` is its key (one per resource app).
//!
//! - every create, update and delete of them is refused (403) to a client granted
//!   `Directory.AccessAsUser.All` or `Directory.ReadWrite.All`, as the Azure CLI is ("Known
//!   issue: If the client is granted either the Directory.AccessAsUser.All or
//!   Directory.ReadWrite.All permission, the client's permissions to create, update, and delete
//!   Agent IDs are ignored, which can cause requests to fail with 403 Forbidden error", on each
//!   Agent ID write API, e.g. https://learn.microsoft.com/graph/api/agentidentityblueprint-post?view=graph-rest-1.0),
//!   and otherwise needs one of the delegated permissions that API's table lists
//!   ([`write_permissions`]).
//!
//! New objects replicate like applications do ([`super::super::state::Config::lag`]).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::reply::{bad_request, error, forbidden, json_response, list, new_id, no_content, not_found};
use super::super::state::{Caller, Config, Directory};

pub const BLUEPRINT_TYPE: &str = "#microsoft.graph.agentIdentityBlueprint";
const AGENT_IDENTITY_TYPE: &str = "#microsoft.graph.agentIdentity";
const BLUEPRINT_PRINCIPAL_TYPE: &str = "#microsoft.graph.agentIdentityBlueprintPrincipal";

pub fn is_blueprint(app: &Value) -> bool {
    app["@odata.type"] == BLUEPRINT_TYPE
}

// The delegated permissions each Agent ID write takes (least privileged first), from each API's
// "Permissions" table in Graph v1.0.
const BLUEPRINT_CREATE: &[&str] = &["AgentIdentityBlueprint.Create", "AgentIdentityBlueprint.ReadWrite.All"];
const BLUEPRINT_UPDATE: &[&str] = &["AgentIdentityBlueprint.ReadWrite.All"];
const BLUEPRINT_CREDENTIALS: &[&str] =
    &["AgentIdentityBlueprint.AddRemoveCreds.All", "AgentIdentityBlueprint.ReadWrite.All"];
const BLUEPRINT_DELETE: &[&str] = &["AgentIdentityBlueprint.DeleteRestore.All", "AgentIdentityBlueprint.ReadWrite.All"];
const PRINCIPAL_CREATE: &[&str] =
    &["AgentIdentityBlueprintPrincipal.Create", "AgentIdentityBlueprintPrincipal.ReadWrite.All"];
const PRINCIPAL_DELETE: &[&str] =
    &["AgentIdentityBlueprintPrincipal.DeleteRestore.All", "AgentIdentityBlueprintPrincipal.ReadWrite.All"];
const AGENT_CREATE: &[&str] = &["AgentIdentity.Create.All", "AgentIdentity.ReadWrite.All"];
const AGENT_DELETE: &[&str] = &["AgentIdentity.DeleteRestore.All"];

/// Whether the write `method` `segments` creates, updates or deletes an Agent ID object, and
/// if so the delegated permissions that allow it (any one).
pub fn write_permissions(dir: &Directory, method: &Method, segments: &[&str]) -> Option<&'static [&'static str]> {
    let blueprint = |id: &str| dir.applications.get(id).is_some_and(is_blueprint);
    let principal_type = |id: &str| dir.service_principals.get(id).map(|sp| sp["@odata.type"].clone());
    match (method, segments) {
        (&Method::POST, ["applications", "microsoft.graph.agentIdentityBlueprint"]) => Some(BLUEPRINT_CREATE),
        (m, ["applications", id, rest @ ..]) if blueprint(id) => {
            let rest = rest.strip_prefix(&["microsoft.graph.agentIdentityBlueprint"]).unwrap_or(rest);
            match (m, rest) {
                (&Method::DELETE, []) => Some(BLUEPRINT_DELETE),
                (_, ["federatedIdentityCredentials", ..]) => Some(BLUEPRINT_CREDENTIALS),
                (&Method::POST, ["inheritablePermissions"]) => Some(BLUEPRINT_CREATE),
                _ => Some(BLUEPRINT_UPDATE),
            }
        }
        (&Method::POST, ["servicePrincipals", "microsoft.graph.agentIdentityBlueprintPrincipal"]) => {
            Some(PRINCIPAL_CREATE)
        }
        (&Method::POST, ["servicePrincipals", "microsoft.graph.agentIdentity"]) => Some(AGENT_CREATE),
        (&Method::DELETE, ["servicePrincipals", id, ..]) => match principal_type(id) {
            Some(t) if t == AGENT_IDENTITY_TYPE => Some(AGENT_DELETE),
            Some(t) if t == BLUEPRINT_PRINCIPAL_TYPE => Some(PRINCIPAL_DELETE),
            _ => None,
        },
        (&Method::DELETE, ["directory", "deletedItems", id]) if dir.deleted.get(*id).is_some_and(is_blueprint) => {
            Some(BLUEPRINT_DELETE)
        }
        _ => None,
    }
}

/// Whether `caller` may make an Agent ID write that takes one of `accepted`: never a client
/// granted `Directory.AccessAsUser.All` or `Directory.ReadWrite.All` (Graph's known issue).
pub fn authorize(caller: &Caller, accepted: &[&str]) -> bool {
    let has = |scope: &str| caller.scopes.iter().any(|s| s == scope);
    !has("Directory.AccessAsUser.All") && !has("Directory.ReadWrite.All") && accepted.iter().any(|s| has(s))
}

/// Checks `sponsors@odata.bind`: present, non-empty, each a user of the tenant.
fn sponsors(config: &Config, fields: &Map<String, Value>) -> Result<Vec<String>, Response> {
    let Some(binds) = fields.get("sponsors@odata.bind").and_then(Value::as_array).filter(|b| !b.is_empty()) else {
        return Err(bad_request("The sponsors relationship is required: specify at least one sponsor."));
    };
    let mut ids = Vec::new();
    for bind in binds {
        let id = bind.as_str().and_then(|b| b.rsplit_once("/users/")).map(|(_, id)| id.to_string());
        match id {
            Some(id) if id == config.me => ids.push(id),
            _ => return Err(bad_request(&format!("Invalid sponsor reference {bind}: no such user."))),
        }
    }
    Ok(ids)
}

/// `POST /applications/microsoft.graph.agentIdentityBlueprint`: the blueprint, with the fields an
/// application takes plus its sponsors.
pub fn create_blueprint(
    dir: &mut Directory,
    config: &Config,
    base: &str,
    mut fields: Map<String, Value>,
) -> Result<Value, Response> {
    if !config.agent_id_role {
        return Err(forbidden());
    }
    let sponsors = sponsors(config, &fields)?;
    fields.remove("sponsors@odata.bind");
    if let Some(r) = super::applications::unknown_property(&fields) {
        return Err(r);
    }
    if fields.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(bad_request("Property 'displayName' is required."));
    }
    let (id, app_id) = (new_id(), new_id());
    let mut app = super::new_application(base, &id, &app_id);
    app["@odata.context"] =
        json!(format!("{base}/v1.0/$metadata#applications/microsoft.graph.agentIdentityBlueprint/$entity"));
    app["@odata.type"] = json!(BLUEPRINT_TYPE);
    app["sponsors"] = json!(sponsors);
    super::applications::apply(dir, config, &id, &mut app, &fields)?;
    dir.applications.insert(id.clone(), app.clone());
    dir.lagging.insert(id, config.lag);
    dir.lagging.insert(app_id, config.lag);
    Ok(app)
}

/// `POST /servicePrincipals/microsoft.graph.agentIdentityBlueprintPrincipal`.
pub fn create_blueprint_principal(dir: &mut Directory, config: &Config, body: &Value) -> Response {
    if !config.agent_id_role {
        return forbidden();
    }
    let app_id = body["appId"].as_str().unwrap_or_default().to_string();
    let app = dir.applications.values().find(|a| a["appId"] == app_id.as_str()).cloned();
    let Some(app) = app.filter(|_| !dir.lags(&app_id)) else {
        return bad_request(&format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        ));
    };
    if !is_blueprint(&app) {
        return bad_request(&format!("The appId '{app_id}' does not reference an agent identity blueprint."));
    }
    if let Some(taken) = super::principal_exists(dir, &app_id) {
        return taken;
    }
    let id = new_id();
    let sp = json!({"@odata.type": BLUEPRINT_PRINCIPAL_TYPE, "id": id, "appId": app_id,
                    "displayName": app["displayName"], "servicePrincipalType": "Application", "tags": []});
    dir.service_principals.insert(id.clone(), sp.clone());
    dir.referable.insert(id.clone(), std::time::Instant::now() + config.grant_replication);
    dir.lagging.insert(id, config.lag);
    json_response(StatusCode::CREATED, sp)
}

/// `POST /servicePrincipals/microsoft.graph.agentIdentity`.
pub fn create_agent_identity(dir: &mut Directory, config: &Config, body: &Value) -> Response {
    if !config.agent_id_role {
        return forbidden();
    }
    let Some(fields) = body.as_object() else { return bad_request("A request body is required.") };
    const PROPERTIES: [&str; 5] =
        ["displayName", "agentIdentityBlueprintId", "sponsors@odata.bind", "owners@odata.bind", "tags"];
    if let Some(k) = fields.keys().find(|k| !PROPERTIES.contains(&k.as_str())) {
        // Credentials among them: an agent identity has none of its own.
        return bad_request(&format!("Property '{k}' does not exist on type 'microsoft.graph.agentIdentity'."));
    }
    let sponsors = match sponsors(config, fields) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if fields.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
        return bad_request("Property 'displayName' is required.");
    }
    let blueprint_id = body["agentIdentityBlueprintId"].as_str().unwrap_or_default().to_string();
    let blueprint = dir.applications.values().find(|a| a["appId"] == blueprint_id.as_str() && is_blueprint(a));
    if blueprint.is_none() || dir.lags(&blueprint_id) {
        return not_found(&blueprint_id);
    }
    let principal =
        dir.service_principals.iter().find(|(_, sp)| sp["appId"] == blueprint_id.as_str()).map(|(id, _)| id.clone());
    let Some(principal_id) = principal else {
        return bad_request(&format!(
            "The agent identity blueprint '{blueprint_id}' has no agent identity blueprint principal in this tenant."
        ));
    };
    if dir.lags(&principal_id) {
        return not_found(&blueprint_id);
    }
    let id = new_id();
    let identity = json!({"@odata.type": AGENT_IDENTITY_TYPE, "id": id, "appId": new_id(),
                          "displayName": body["displayName"], "agentIdentityBlueprintId": blueprint_id,
                          "servicePrincipalType": "ServiceIdentity", "tags": body["tags"].clone(),
                          "sponsors": sponsors, "passwordCredentials": [], "keyCredentials": []});
    dir.service_principals.insert(id.clone(), identity.clone());
    dir.lagging.insert(id, config.lag);
    json_response(StatusCode::CREATED, identity)
}

/// `.../microsoft.graph.agentIdentityBlueprint/inheritablePermissions[/{resourceAppId}]` of
/// blueprint `app` (object id); the caller has checked the role.
pub fn inheritable_permissions(
    dir: &mut Directory,
    app: &str,
    method: Method,
    rest: &[&str],
    base: &str,
    query: &BTreeMap<String, String>,
    body: Value,
) -> Response {
    if method == Method::POST || method == Method::PATCH {
        let resource = match (&method, rest) {
            (&Method::PATCH, [resource]) => resource.to_string(),
            _ => body["resourceAppId"].as_str().unwrap_or_default().to_string(),
        };
        if let Err(r) = check_inheritable(dir, &resource, &body["inheritableScopes"]) {
            return r;
        }
    }
    let permissions = dir.inheritable.entry(app.to_string()).or_default();
    let key = |p: &Value, resource: &str| p["resourceAppId"].as_str().is_some_and(|r| r.eq_ignore_ascii_case(resource));
    match (method, rest) {
        (Method::GET, []) => list(
            base,
            &format!("applications/{app}/microsoft.graph.agentIdentityBlueprint/inheritablePermissions"),
            query,
            permissions.clone(),
            100,
        ),
        (Method::POST, []) => {
            let resource = body["resourceAppId"].as_str().unwrap_or_default();
            if permissions.iter().any(|p| key(p, resource)) {
                return error(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "An inheritable permission for this resource application already exists.",
                );
            }
            let permission = json!({"resourceAppId": resource, "inheritableScopes": body["inheritableScopes"]});
            permissions.push(permission.clone());
            json_response(StatusCode::CREATED, permission)
        }
        (Method::PATCH, [resource]) => {
            let Some(p) = permissions.iter_mut().find(|p| key(p, resource)) else { return not_found(resource) };
            p["inheritableScopes"] = body["inheritableScopes"].clone();
            no_content()
        }
        (Method::DELETE, [resource]) => {
            let before = permissions.len();
            permissions.retain(|p| !key(p, resource));
            if permissions.len() == before { not_found(resource) } else { no_content() }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
    }
}

/// An inheritable permission's resource and scopes: an existing app's `appId`, and as
/// `enumeratedScopes` a non-empty list of unique scopes it publishes.
fn check_inheritable(dir: &Directory, resource: &str, scopes: &Value) -> Result<(), Response> {
    let Some(resource_app) = dir.applications.values().find(|a| a["appId"].as_str() == Some(resource)) else {
        return Err(bad_request(&format!(
            "Property resourceAppId: '{resource}' is not an application in this tenant."
        )));
    };
    if scopes["@odata.type"] != "#microsoft.graph.enumeratedScopes" || scopes["kind"] != "enumerated" {
        return Err(bad_request(
            "Property inheritableScopes must be one of allAllowedScopes, enumeratedScopes, noScopes.",
        ));
    }
    let list: Vec<&str> = scopes["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut unique = list.clone();
    unique.sort();
    unique.dedup();
    if list.is_empty() || unique.len() != list.len() {
        return Err(bad_request("Property inheritableScopes.scopes must be a non-empty list of unique scopes."));
    }
    let published = resource_app["api"]["oauth2PermissionScopes"].as_array().cloned().unwrap_or_default();
    for scope in list {
        if !published.iter().any(|s| s["value"] == scope && s["isEnabled"] == true) {
            return Err(bad_request(&format!(
                "Scope '{scope}' is not published by resource application '{resource}'."
            )));
        }
    }
    Ok(())
}
