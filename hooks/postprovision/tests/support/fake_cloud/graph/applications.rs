//! Graph's rules for application objects: known properties only, unique identifier URIs
//! (soft-deleted apps keep theirs), Entra's identifier-URI policy for apps that issue v1
//! tokens, https redirect URIs (http only for a public client's loopback ones), no removal of an enabled scope or app role, pre-authorized
//! permission ids must already be stored; and their federated identity credentials.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::super::reply::{
    bad_request, error, error_with_details, json_response, list, merge, new_id, no_content, not_found,
};
use super::super::state::{Config, Directory};

const APP_PROPERTIES: [&str; 11] = [
    "displayName",
    "signInAudience",
    "tags",
    "identifierUris",
    "api",
    "appRoles",
    "web",
    "publicClient",
    "requiredResourceAccess",
    "description",
    "isFallbackPublicClient",
];

pub fn unknown_property(fields: &Map<String, Value>) -> Option<Response> {
    fields
        .keys()
        .find(|k| !APP_PROPERTIES.contains(&k.as_str()))
        .map(|k| bad_request(&format!("Property '{k}' does not exist on type 'microsoft.graph.application'.")))
}

/// `PATCH` of application `id` (which exists), through its plain path or the blueprint cast.
pub fn patch(dir: &mut Directory, config: &Config, id: String, body: &Value) -> Response {
    let Some(fields) = body.as_object() else { return bad_request("A request body is required.") };
    if let Some(r) = unknown_property(fields) {
        return r;
    }
    let mut app = dir.applications[&id].clone();
    if let Err(r) = apply(dir, config, &id, &mut app, fields) {
        return r;
    }
    dir.applications.insert(id, app);
    no_content()
}

/// Applies `fields` to `app` (complex properties are replaced whole, as Graph does) after
/// checking Graph's rules. Rules that depend on the app's own state read it as stored before
/// this request: a property set in the same request does not count yet.
pub fn apply(
    dir: &Directory,
    config: &Config,
    id: &str,
    app: &mut Value,
    fields: &Map<String, Value>,
) -> Result<(), Response> {
    if let Some(uris) = fields.get("identifierUris").and_then(Value::as_array) {
        // "Applications that are configured to use v2.0 Entra ID tokens ... are exempted by
        // default" (Restrictions on identifier URIs of Microsoft Entra applications): the
        // version stored before this request decides, so it must be set first.
        let issues_v2 = app["api"]["requestedAccessTokenVersion"] == 2;
        let stored = app["identifierUris"].as_array().cloned().unwrap_or_default();
        for uri in uris.iter().filter(|u| !stored.contains(u)) {
            if !issues_v2 {
                identifier_uri_policy(config, app["appId"].as_str().unwrap_or_default(), uri.as_str().unwrap_or(""))?;
            }
        }
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
    // A public client's (mobile and desktop) redirect URIs: `http` only on the loopback
    // interface ("Localhost exceptions", https://learn.microsoft.com/entra/identity-platform/reply-url).
    if let Some(public) = fields.get("publicClient") {
        for uri in public["redirectUris"].as_array().into_iter().flatten() {
            let uri = uri.as_str().unwrap_or_default();
            let loopback = url::Url::parse(uri)
                .is_ok_and(|u| u.scheme() == "http" && matches!(u.host_str(), Some("localhost" | "127.0.0.1")));
            if !(uri.starts_with("https://") || loopback) {
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
        // Pre-authorization names scopes Graph already holds: scopes sent in the same request
        // are not found yet (Graph's answer, as reported in microsoftgraph/microsoft-graph-docs#12675).
        let stored: Vec<&Value> =
            app["api"]["oauth2PermissionScopes"].as_array().into_iter().flatten().map(|s| &s["id"]).collect();
        for pre in api["preAuthorizedApplications"].as_array().into_iter().flatten() {
            for permission in pre["delegatedPermissionIds"].as_array().into_iter().flatten() {
                if !stored.contains(&permission) {
                    return Err(error_with_details(
                        StatusCode::BAD_REQUEST,
                        "InvalidValue",
                        "Property api.preAuthorizedApplications.delegatedPermissionIds has a Permission Id that cannot be found in the AppPermissions sets.",
                        Some(
                            json!([{"target": "api.preAuthorizedApplications.delegatedPermissionIds", "code": "InvalidValue"}]),
                        ),
                    ));
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
            ("publicClient", v) => {
                let mut public = json!({"redirectUris": []});
                merge(&mut public, v);
                public
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

/// Entra's identifier-URI rules for an app that issues v1 tokens ("Restrictions on identifier
/// URIs of Microsoft Entra applications"): a newly added URI must name the tenant id or the
/// app id (`api://{appId}`, `api://{tenantId}/{string}`, `api://{string}/{appId}`) or use a
/// verified domain (`https://{verified domain or a subdomain}/...`); with the stricter
/// `nonDefaultUriAddition` policy only `api://{appId}` and `api://{tenantId}/{appId}`. The
/// messages are the documented ones.
fn identifier_uri_policy(config: &Config, app_id: &str, uri: &str) -> Result<(), Response> {
    let (tenant, app_id, lower) =
        (config.tenant_id.to_ascii_lowercase(), app_id.to_ascii_lowercase(), uri.to_ascii_lowercase());
    if config.default_uris_only {
        if lower == format!("api://{app_id}") || lower == format!("api://{tenant}/{app_id}") {
            return Ok(());
        }
        return Err(bad_request(&format!(
            "The newly added URI {uri} must comply with the format 'api://{{appId}}' or 'api://{{tenantId}}/{{appId}}' as per the default app management policy of your organization. If the requestedAccessTokenVersion is set to 2, this restriction may not apply. See https://aka.ms/identifier-uri-addition-error for more information on this error."
        )));
    }
    if let Some(rest) = lower.strip_prefix("api://") {
        let segments: Vec<&str> = rest.split('/').collect();
        let names_us = segments.first() == Some(&app_id.as_str())
            || (segments.first() == Some(&tenant.as_str()) && segments.len() > 1)
            || (segments.len() > 1 && segments.last() == Some(&app_id.as_str()));
        if names_us {
            return Ok(());
        }
        return Err(bad_request(&format!(
            "Failed to add identifier URI {uri}. All newly added URIs must contain a tenant verified domain, tenant ID, or app ID, as per the default tenant policy of your organization. See https://aka.ms/identifier-uri-addition-error for more information on this error."
        )));
    }
    let host = url::Url::parse(&lower).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let verified = lower.starts_with("https://")
        && config.verified_domains.iter().any(|d| host == *d || host.ends_with(&format!(".{d}")));
    if verified {
        return Ok(());
    }
    Err(error(
        StatusCode::BAD_REQUEST,
        "HostNameNotOnVerifiedDomain",
        &format!(
            "Values of identifierUris property must use a verified domain of the organization or its subdomain: '{uri}'"
        ),
    ))
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
