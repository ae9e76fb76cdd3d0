//! Graph's rules for application objects: known properties only, unique identifier URIs
//! (soft-deleted apps keep theirs), https redirect URIs, no removal of an enabled scope or app
//! role, pre-authorized permission ids must exist; and their federated identity credentials.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::reply::{bad_request, error, json_response, list, merge, new_id, no_content, not_found};
use super::super::state::Directory;

const APP_PROPERTIES: [&str; 9] = [
    "displayName",
    "signInAudience",
    "tags",
    "identifierUris",
    "api",
    "appRoles",
    "web",
    "requiredResourceAccess",
    "description",
];

pub fn unknown_property(fields: &Map<String, Value>) -> Option<Response> {
    fields
        .keys()
        .find(|k| !APP_PROPERTIES.contains(&k.as_str()))
        .map(|k| bad_request(&format!("Property '{k}' does not exist on type 'microsoft.graph.application'.")))
}

/// Applies `fields` to `app` (complex properties are replaced whole, as Graph does) after
/// checking Graph's rules.
pub fn apply(dir: &Directory, id: &str, app: &mut Value, fields: &Map<String, Value>) -> Result<(), Response> {
    if let Some(uris) = fields.get("identifierUris").and_then(Value::as_array) {
        for uri in uris {
            let taken = dir
                .applications
                .iter()
                .chain(dir.deleted.iter())
                .any(|(other, a)| other != id && a["identifierUris"].as_array().is_some_and(|u| u.contains(uri)));
            if taken {
                return Err(bad_request(
                    "Another object with the same value for property identifierUris already exists.",
                ));
            }
        }
    }
    if let Some(web) = fields.get("web") {
        for uri in web["redirectUris"].as_array().into_iter().flatten() {
            let uri = uri.as_str().unwrap_or_default();
            if !(uri.starts_with("https://") || uri.starts_with("http://localhost")) {
                return Err(bad_request(&format!("Redirect URI {uri} must use https unless it is localhost.")));
            }
        }
    }
    let retired = |old: &Value, new: &Value| {
        old.as_array()
            .into_iter()
            .flatten()
            .any(|o| o["isEnabled"] == true && !new.as_array().into_iter().flatten().any(|n| n["id"] == o["id"]))
    };
    let entitlement = || {
        error(
            StatusCode::BAD_REQUEST,
            "CannotDeleteOrUpdateEnabledEntitlement",
            "Permission (scope or role) cannot be deleted or updated unless disabled first.",
        )
    };
    if let Some(api) = fields.get("api") {
        if retired(&app["api"]["oauth2PermissionScopes"], &api["oauth2PermissionScopes"]) {
            return Err(entitlement());
        }
        let scopes: Vec<&Value> =
            api["oauth2PermissionScopes"].as_array().into_iter().flatten().map(|s| &s["id"]).collect();
        for pre in api["preAuthorizedApplications"].as_array().into_iter().flatten() {
            for permission in pre["delegatedPermissionIds"].as_array().into_iter().flatten() {
                if !scopes.contains(&permission) {
                    return Err(bad_request(&format!(
                        "Property preAuthorizedApplications references a permission id {permission} that is not defined."
                    )));
                }
            }
        }
        match api.get("requestedAccessTokenVersion") {
            None | Some(Value::Null) => {}
            Some(v) if v == 1 || v == 2 => {}
            Some(v) => return Err(bad_request(&format!("requestedAccessTokenVersion {v} is not 1 or 2"))),
        }
    }
    if let Some(roles) = fields.get("appRoles")
        && retired(&app["appRoles"], roles)
    {
        return Err(entitlement());
    }
    for (key, value) in fields {
        app[key] = match (key.as_str(), value) {
            // Graph fills in what a client leaves out of a complex value.
            ("api", v) => {
                let mut api = json!({"acceptMappedClaims": null, "knownClientApplications": [], "requestedAccessTokenVersion": null,
                                     "oauth2PermissionScopes": [], "preAuthorizedApplications": []});
                merge(&mut api, v);
                api
            }
            ("web", v) => {
                let mut web = json!({"homePageUrl": null, "logoutUrl": null, "redirectUris": [],
                                     "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}});
                merge(&mut web, v);
                web
            }
            (_, v) => v.clone(),
        };
    }
    Ok(())
}

/// An application's federated identity credentials: list, create, update, delete.
pub fn federated_credentials(
    dir: &mut Directory,
    app: &str,
    method: Method,
    rest: &[&str],
    base: &str,
    query: &BTreeMap<String, String>,
    body: Value,
) -> Response {
    let credentials = dir.federated.entry(app.to_string()).or_default();
    match (method, rest) {
        (Method::GET, []) => {
            list(base, &format!("applications/{app}/federatedIdentityCredentials"), query, credentials.clone(), 100)
        }
        (Method::POST, []) => {
            for key in ["name", "issuer", "subject"] {
                if body[key].as_str().is_none_or(str::is_empty) {
                    return bad_request(&format!("Property '{key}' is required."));
                }
            }
            if body["audiences"].as_array().is_none_or(|a| a.len() != 1) {
                return bad_request("Property 'audiences' must hold exactly one value.");
            }
            if credentials.iter().any(|c| c["name"] == body["name"]) {
                return error(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "FIC name already in use.",
                );
            }
            if credentials.iter().any(|c| c["issuer"] == body["issuer"] && c["subject"] == body["subject"]) {
                return bad_request("A federated identity credential with this issuer and subject already exists.");
            }
            let mut fic = body.clone();
            fic["id"] = json!(new_id());
            credentials.push(fic.clone());
            json_response(StatusCode::CREATED, fic)
        }
        (Method::PATCH, [id]) => {
            let Some(fic) = credentials.iter_mut().find(|c| c["id"] == *id) else { return not_found(id) };
            if body.get("name").is_some_and(|n| *n != fic["name"]) {
                return bad_request("Property 'name' is read-only once set.");
            }
            merge(fic, &body);
            no_content()
        }
        (Method::DELETE, [id]) => {
            let before = credentials.len();
            credentials.retain(|c| c["id"] != *id);
            if credentials.len() == before { not_found(id) } else { no_content() }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
    }
}
