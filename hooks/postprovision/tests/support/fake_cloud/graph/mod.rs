//! The fake Microsoft Graph v1.0: the endpoints the hook calls, with Graph's filters, paging,
//! replication delay and permission rules. What makes an application valid lives in
//! [`applications`]; Microsoft Entra Agent ID's objects and rules in [`agents`].

mod agents;
mod applications;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::reply::{bad_request, error, forbidden, json_response, list, new_id, no_content, not_found};
use super::state::{Caller, Config, Directory};

/// Microsoft Graph's service principal's object id in the fake tenant.
pub const GRAPH_PRINCIPAL_ID: &str = "9f1e0c55-0000-4000-8000-00000000a001";

/// The delegated permissions the fake's Microsoft Graph publishes, with their ids: the real ids
/// of the three long-standing ones, the fake's own for Agent ID's (the hook reads them from
/// the service principal, as it must in a real tenant).
pub const GRAPH_SCOPE_IDS: [(&str, &str); 13] = [
    ("Application.ReadWrite.All", "bdfbf15f-ee85-4955-8675-146e8e5296b5"),
    ("Directory.AccessAsUser.All", "0e263e50-5827-48a4-b97c-d940288653c7"),
    ("Directory.ReadWrite.All", "c5366453-9fb0-48a5-a156-24f0c49a4b84"),
    ("AgentIdentity.Create.All", "9f1e0c55-0000-4000-8000-000000000101"),
    ("AgentIdentity.DeleteRestore.All", "9f1e0c55-0000-4000-8000-000000000102"),
    ("AgentIdentity.ReadWrite.All", "9f1e0c55-0000-4000-8000-000000000103"),
    ("AgentIdentityBlueprint.Create", "9f1e0c55-0000-4000-8000-000000000104"),
    ("AgentIdentityBlueprint.AddRemoveCreds.All", "9f1e0c55-0000-4000-8000-000000000105"),
    ("AgentIdentityBlueprint.DeleteRestore.All", "9f1e0c55-0000-4000-8000-000000000106"),
    ("AgentIdentityBlueprint.ReadWrite.All", "9f1e0c55-0000-4000-8000-000000000107"),
    ("AgentIdentityBlueprintPrincipal.Create", "9f1e0c55-0000-4000-8000-000000000108"),
    ("AgentIdentityBlueprintPrincipal.DeleteRestore.All", "9f1e0c55-0000-4000-8000-000000000109"),
    ("AgentIdentityBlueprintPrincipal.ReadWrite.All", "9f1e0c55-0000-4000-8000-000000000110"),
];

/// Microsoft Graph's service principal, present in every tenant.
pub fn microsoft_graph() -> Value {
    let scopes: Vec<Value> = GRAPH_SCOPE_IDS
        .iter()
        .map(|(value, id)| json!({"id": id, "value": value, "type": "Admin", "isEnabled": true}))
        .collect();
    json!({"id": GRAPH_PRINCIPAL_ID, "appId": "00000003-0000-0000-c000-000000000000", "displayName": "Microsoft Graph",
           "servicePrincipalType": "Application", "tags": [], "oauth2PermissionScopes": scopes})
}

/// The permissions a write through the plain Graph API (not Agent ID's) takes from a delegated
/// caller: any of these.
const DIRECTORY_WRITE: [&str; 4] = [
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Directory.AccessAsUser.All",
];

/// Supports the filters the hook uses: `tags/any(t:t eq 'x')`, `identifierUris/any(x:x eq 'x')`
/// and `<property> eq 'x'`.
fn matches(filter: Option<&String>, item: &Value) -> Result<bool, Response> {
    let Some(filter) = filter else { return Ok(true) };
    for (collection, variable) in [("tags", "t"), ("identifierUris", "x")] {
        if let Some(rest) = filter.strip_prefix(&format!("{collection}/any({variable}:{variable} eq '")) {
            let value = rest.strip_suffix("')").ok_or_else(|| bad_request("Invalid filter clause"))?;
            return Ok(item[collection].as_array().is_some_and(|t| t.iter().any(|x| x == value)));
        }
    }
    let (property, value) = filter.split_once(" eq '").ok_or_else(|| bad_request("Invalid filter clause"))?;
    let value = value.strip_suffix('\'').ok_or_else(|| bad_request("Invalid filter clause"))?;
    if !["appId", "clientId"].contains(&property) {
        return Err(bad_request(&format!(
            "Unsupported or invalid query filter clause specified for property '{property}'"
        )));
    }
    Ok(item[property].as_str().is_some_and(|v| v.eq_ignore_ascii_case(value)))
}

/// A service principal created moments ago, named by a grant before every replica knows it:
/// Graph answers this for minutes (microsoftgraph/microsoft-graph-docs#9738, #20133).
/// Graph's conflict when an application already has its (one) service principal.
fn principal_exists(dir: &Directory, app_id: &str) -> Option<Response> {
    dir.service_principals.values().any(|sp| sp["appId"] == app_id).then(|| {
        error(
            StatusCode::CONFLICT,
            "Request_MultipleObjectsWithSameKeyValue",
            "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
        )
    })
}

fn not_a_valid_reference() -> Response {
    bad_request("Not a valid reference update.")
}

/// An application as `POST /applications` creates it, before the request's fields.
fn new_application(base: &str, id: &str, app_id: &str) -> Value {
    json!({
        "@odata.context": format!("{base}/v1.0/$metadata#applications/$entity"),
        "id": id, "appId": app_id, "displayName": null, "signInAudience": "AzureADMyOrg", "tags": [],
        "identifierUris": [], "description": null, "appRoles": [],
        "api": {"acceptMappedClaims": null, "knownClientApplications": [], "requestedAccessTokenVersion": null,
                "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
        "web": {"homePageUrl": null, "logoutUrl": null, "redirectUris": [],
                "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [], "passwordCredentials": [], "keyCredentials": [],
        "isFallbackPublicClient": null,
    })
}

/// Answers one Graph v1.0 request from `caller`; `segments`: its path after `/v1.0/`.
#[allow(clippy::too_many_arguments)]
pub fn route(
    dir: &mut Directory,
    config: &Config,
    caller: &Caller,
    base: &str,
    method: &Method,
    segments: &[&str],
    query: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Response {
    let filter = query.get("$filter");
    let body_obj = body.clone().unwrap_or(Value::Null);
    if *method != Method::GET {
        let allowed = match agents::write_permissions(dir, method, segments) {
            Some(accepted) => agents::authorize(caller, accepted),
            None => caller.scopes.iter().any(|s| DIRECTORY_WRITE.contains(&s.as_str())),
        };
        if !allowed {
            return forbidden();
        }
    }
    match (method.clone(), segments) {
        (Method::GET, ["organization"]) => {
            list(base, "organization", query, vec![json!({"id": config.tenant_id, "displayName": "Contoso"})], 10)
        }
        (Method::GET, ["me"]) => {
            json_response(StatusCode::OK, json!({"id": config.me, "userPrincipalName": "dev@contoso.example"}))
        }

        (Method::GET, ["applications"]) => {
            let mut items = Vec::new();
            for app in dir.applications.values() {
                match matches(filter, app) {
                    Ok(true) => items.push(app.clone()),
                    Ok(false) => {}
                    Err(r) => return r,
                }
            }
            list(base, "applications", query, items, config.page_size)
        }
        (Method::POST, ["applications", "microsoft.graph.agentIdentityBlueprint"]) => {
            let Some(fields) = body_obj.as_object() else { return bad_request("A request body is required.") };
            match agents::create_blueprint(dir, config, base, fields.clone()) {
                Ok(app) => json_response(StatusCode::CREATED, app),
                Err(r) => r,
            }
        }
        (Method::POST, ["applications"]) => {
            let Some(fields) = body_obj.as_object() else { return bad_request("A request body is required.") };
            if let Some(r) = applications::unknown_property(fields) {
                return r;
            }
            if fields.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
                return bad_request("Property 'displayName' is required.");
            }
            let id = new_id();
            let app_id = new_id();
            let mut app = new_application(base, &id, &app_id);
            if let Err(r) = applications::apply(dir, config, &id, &mut app, fields) {
                return r;
            }
            dir.applications.insert(id.clone(), app.clone());
            dir.lagging.insert(id, config.lag);
            dir.lagging.insert(app_id, config.lag);
            json_response(StatusCode::CREATED, app)
        }
        (_, ["applications", id, rest @ ..]) => {
            let id = id.to_string();
            if dir.lags(&id) || !dir.applications.contains_key(&id) {
                return not_found(&id);
            }
            match (method.clone(), rest) {
                (Method::GET, []) => json_response(StatusCode::OK, dir.applications[&id].clone()),
                (Method::PATCH, []) => applications::patch(dir, config, id, &body_obj),
                (Method::DELETE, []) => {
                    let app = dir.applications.remove(&id).unwrap_or_default();
                    dir.federated.remove(&id);
                    dir.inheritable.remove(&id);
                    dir.deleted.insert(id, app);
                    no_content()
                }
                (m, ["federatedIdentityCredentials", fic @ ..]) => {
                    applications::federated_credentials(dir, &id, m, fic, base, query, body_obj)
                }
                // The cast to a blueprint: only a blueprint is one.
                (m, ["microsoft.graph.agentIdentityBlueprint", more @ ..]) => {
                    if !agents::is_blueprint(&dir.applications[&id]) {
                        return not_found(&id);
                    }
                    if m != Method::GET && !config.agent_id_role {
                        return forbidden();
                    }
                    match (m, more) {
                        (Method::GET, []) => json_response(StatusCode::OK, dir.applications[&id].clone()),
                        (Method::PATCH, []) => applications::patch(dir, config, id, &body_obj),
                        (m, ["federatedIdentityCredentials", fic @ ..]) => {
                            applications::federated_credentials(dir, &id, m, fic, base, query, body_obj)
                        }
                        (m, ["inheritablePermissions", permission @ ..]) => {
                            agents::inheritable_permissions(dir, &id, m, permission, base, query, body_obj)
                        }
                        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
                    }
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
            }
        }

        (Method::GET, ["servicePrincipals"]) => {
            let mut items = Vec::new();
            for sp in dir.first_party.values().chain(dir.service_principals.values()) {
                match matches(filter, sp) {
                    Ok(true) => items.push(sp.clone()),
                    Ok(false) => {}
                    Err(r) => return r,
                }
            }
            list(base, "servicePrincipals", query, items, config.page_size)
        }
        (Method::POST, ["servicePrincipals", "microsoft.graph.agentIdentityBlueprintPrincipal"]) => {
            agents::create_blueprint_principal(dir, config, &body_obj)
        }
        (Method::POST, ["servicePrincipals", "microsoft.graph.agentIdentity"]) => {
            agents::create_agent_identity(dir, config, &body_obj)
        }
        (Method::POST, ["servicePrincipals"]) => {
            let app_id = body_obj["appId"].as_str().unwrap_or_default().to_string();
            let app = dir.applications.values().find(|a| a["appId"] == app_id.as_str()).cloned();
            if dir.lags(&app_id) || app.is_none() {
                return bad_request(&format!(
                    "The appId '{app_id}' of the service principal does not reference a valid application object."
                ));
            }
            if app.as_ref().is_some_and(agents::is_blueprint) {
                return bad_request(&format!(
                    "The appId '{app_id}' is an agent identity blueprint: create its principal as an agentIdentityBlueprintPrincipal."
                ));
            }
            if let Some(taken) = principal_exists(dir, &app_id) {
                return taken;
            }
            let id = new_id();
            let sp = json!({"id": id, "appId": app_id, "displayName": app.map(|a| a["displayName"].clone()),
                            "servicePrincipalType": "Application", "tags": []});
            dir.service_principals.insert(id.clone(), sp.clone());
            dir.referable.insert(id.clone(), std::time::Instant::now() + config.grant_replication);
            dir.lagging.insert(id, config.lag);
            json_response(StatusCode::CREATED, sp)
        }
        (_, ["servicePrincipals", id, rest @ ..]) => {
            let id = id.to_string();
            if dir.lags(&id) || !dir.service_principals.contains_key(&id) {
                return not_found(&id);
            }
            match (method.clone(), rest) {
                (Method::DELETE, []) => {
                    dir.service_principals.remove(&id);
                    dir.grants.retain(|_, g| g["clientId"] != id.as_str() && g["resourceId"] != id.as_str());
                    dir.assignments.retain(|_, a| a["resourceId"] != id.as_str());
                    no_content()
                }
                (Method::GET, ["appRoleAssignedTo"]) => {
                    let items = dir.assignments.values().filter(|a| a["resourceId"] == id.as_str()).cloned().collect();
                    list(base, &format!("servicePrincipals/{id}/appRoleAssignedTo"), query, items, config.page_size)
                }
                (Method::POST, ["appRoleAssignedTo"]) => {
                    if !config.admin {
                        return forbidden();
                    }
                    if !dir.referable(&id) {
                        return not_a_valid_reference();
                    }
                    let sp = &dir.service_principals[&id];
                    let roles = dir
                        .applications
                        .values()
                        .find(|a| a["appId"] == sp["appId"])
                        .map(|a| a["appRoles"].clone())
                        .unwrap_or(json!([]));
                    let role = body_obj["appRoleId"].as_str().unwrap_or_default();
                    if !roles.as_array().is_some_and(|r| r.iter().any(|x| x["id"] == role && x["isEnabled"] == true)) {
                        return bad_request("Permission being assigned was not found on application");
                    }
                    if body_obj["resourceId"] != id.as_str() {
                        return bad_request("resourceId must be the service principal in the request URL");
                    }
                    if dir
                        .assignments
                        .values()
                        .any(|a| a["principalId"] == body_obj["principalId"] && a["appRoleId"] == role)
                    {
                        return bad_request("Permission being assigned already exists on the object");
                    }
                    let assignment_id = new_id();
                    let assignment = json!({"id": assignment_id, "principalId": body_obj["principalId"], "principalType": "User",
                                            "resourceId": id, "appRoleId": role});
                    dir.assignments.insert(assignment_id, assignment.clone());
                    json_response(StatusCode::CREATED, assignment)
                }
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
            }
        }

        (Method::GET, ["oauth2PermissionGrants"]) => {
            let mut items = Vec::new();
            for g in dir.grants.values() {
                match matches(filter, g) {
                    Ok(true) => items.push(g.clone()),
                    Ok(false) => {}
                    Err(r) => return r,
                }
            }
            list(base, "oauth2PermissionGrants", query, items, config.page_size)
        }
        (Method::POST, ["oauth2PermissionGrants"]) => {
            if !config.admin {
                return forbidden();
            }
            for key in ["clientId", "resourceId"] {
                let id = body_obj[key].as_str().unwrap_or_default().to_string();
                let known = dir.service_principals.contains_key(&id) || dir.first_party.contains_key(&id);
                if dir.lags(&id) || !known {
                    return not_found(&id);
                }
                if !dir.referable(&id) {
                    return not_a_valid_reference();
                }
            }
            if body_obj["consentType"] != "AllPrincipals" || !body_obj["principalId"].is_null() {
                return bad_request("Admin consent needs consentType AllPrincipals and no principalId");
            }
            if dir.grants.values().any(|g| {
                g["clientId"] == body_obj["clientId"]
                    && g["resourceId"] == body_obj["resourceId"]
                    && g["consentType"] == "AllPrincipals"
            }) {
                return error(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "Permission entry already exists.",
                );
            }
            let id = new_id();
            let mut grant = body_obj.clone();
            grant["id"] = json!(id);
            dir.grants.insert(id, grant.clone());
            json_response(StatusCode::CREATED, grant)
        }
        (Method::PATCH, ["oauth2PermissionGrants", id]) => {
            let id = id.to_string();
            let Some(grant) = dir.grants.get_mut(&id) else { return not_found(&id) };
            if !config.admin {
                return forbidden();
            }
            let Some(fields) = body_obj.as_object() else { return bad_request("A request body is required.") };
            if fields.keys().any(|k| k != "scope") {
                return bad_request("Only scope can be updated");
            }
            grant["scope"] = fields["scope"].clone();
            no_content()
        }

        (Method::DELETE, ["directory", "deletedItems", id]) => {
            if dir.deleted.remove(*id).is_some() {
                no_content()
            } else {
                not_found(id)
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", segments.join("/")),
        ),
    }
}
