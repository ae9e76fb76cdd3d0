//! A fake Microsoft Graph (v1.0) and Azure Resource Manager, in one axum server on port 0.
//!
//! It speaks the real wire format: `{"value": [...]}` lists with `@odata.context` and
//! `@odata.nextLink` paging, `$filter` on `tags/any(...)`, `appId`, `clientId`, Graph's error
//! body `{"error": {"code", "message", "innerError"}}`, and ARM's long-running `PATCH` (`202` +
//! `Azure-AsyncOperation`). It enforces the Graph rules the hook must respect: unique
//! identifier URIs (soft-deleted apps keep theirs), https redirect URIs, no removal of an
//! enabled scope or app role, pre-authorized permission ids must exist, a service principal
//! needs an existing application, admin consent and role assignments need an administrator,
//! unknown properties are refused.
//!
//! Faults to inject: `429` + `Retry-After` every n-th request, replication delay (`404` for an
//! object just created), and a failure or a hang after n writes (a killed run).

#![allow(dead_code)]
// Handlers answer errors as responses; their size does not matter in a test server.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

pub const TOKEN: &str = "fake-graph-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer `400` to every write after the limit.
    Refuse,
    /// Never answer writes after the limit: the run is stuck there until killed.
    Hang,
    /// Make the next write, then never answer: killed after the server acted, before the
    /// client heard.
    HangAfterWrite,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tenant_id: String,
    pub me: String,
    pub admin: bool,
    pub page_size: usize,
    /// Every n-th request is throttled.
    pub throttle_every: Option<usize>,
    pub retry_after_secs: u64,
    /// Requests addressing a new object that fail before it is visible.
    pub lag: usize,
    pub fail_after_writes: Option<(usize, Fault)>,
}

impl Config {
    pub fn new(tenant_id: &str) -> Self {
        Config {
            tenant_id: tenant_id.to_string(),
            me: uuid::Uuid::new_v4().to_string(),
            admin: true,
            page_size: 2,
            throttle_every: None,
            retry_after_secs: 0,
            lag: 0,
            fail_after_writes: None,
        }
    }
}

#[derive(Default)]
pub struct Directory {
    pub applications: BTreeMap<String, Value>,
    pub deleted: BTreeMap<String, Value>,
    pub service_principals: BTreeMap<String, Value>,
    /// Application object id -> its credentials.
    pub federated: BTreeMap<String, Vec<Value>>,
    pub grants: BTreeMap<String, Value>,
    pub assignments: BTreeMap<String, Value>,
    pub container_apps: BTreeMap<String, Value>,
    operations: HashMap<String, u32>,
    /// Id (object id, app id) -> requests still answered as if it did not exist.
    lagging: HashMap<String, usize>,
    /// Successful writes: "METHOD path".
    pub writes: Vec<String>,
    pub requests: usize,
    pub throttled: usize,
    pub lag_answers: usize,
}

pub struct Shared {
    pub config: Mutex<Config>,
    pub dir: Mutex<Directory>,
    pub hung: Notify,
    base: Mutex<String>,
}

pub struct FakeCloud {
    pub url: String,
    pub shared: Arc<Shared>,
}

impl FakeCloud {
    pub async fn start(config: Config) -> FakeCloud {
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            dir: Mutex::new(Directory::default()),
            hung: Notify::new(),
            base: Mutex::new(String::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *shared.base.lock().unwrap() = url.clone();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeCloud { url, shared }
    }

    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.url)
    }

    pub fn config(&self, edit: impl FnOnce(&mut Config)) {
        edit(&mut self.shared.config.lock().unwrap());
    }

    pub fn dir<T>(&self, read: impl FnOnce(&mut Directory) -> T) -> T {
        read(&mut self.shared.dir.lock().unwrap())
    }

    pub fn writes(&self) -> Vec<String> {
        self.dir(|d| d.writes.clone())
    }

    pub fn add_container_app(&self, subscription: &str, group: &str, name: &str, env: &[(&str, &str)]) {
        let id = format!(
            "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.App/containerApps/{name}"
        );
        let env: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        let app = json!({
            "id": id, "name": name, "type": "Microsoft.App/containerApps", "location": "swedencentral",
            "properties": {
                "provisioningState": "Succeeded",
                "configuration": {"activeRevisionsMode": "Single", "ingress": {"external": true, "targetPort": 3000}},
                "template": {
                    "containers": [{"name": name, "image": "crabc.azurecr.io/orders-copilot/app:1", "env": env,
                                    "resources": {"cpu": 0.5, "memory": "1Gi"}}],
                    "scale": {"minReplicas": 1, "maxReplicas": 1}
                }
            }
        });
        self.dir(|d| d.container_apps.insert(id.to_ascii_lowercase(), app));
    }

    /// A container app's environment variables.
    pub fn container_env(&self, name: &str) -> BTreeMap<String, String> {
        self.dir(|d| {
            let app = d.container_apps.values().find(|a| a["name"] == name).cloned().unwrap();
            app["properties"]["template"]["containers"][0]["env"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].as_str().unwrap_or("").to_string()))
                .collect()
        })
    }

    /// The directory with generated ids replaced by names, so two runs' results compare equal.
    pub fn snapshot(&self) -> Value {
        self.dir(|d| {
            let mut names: Vec<(String, String)> = Vec::new();
            for app in d.applications.values() {
                let tag =
                    app["tags"].as_array().and_then(|t| t.last()).and_then(Value::as_str).unwrap_or("?").to_string();
                names.push((app["id"].as_str().unwrap().to_string(), format!("<app {tag}>")));
                names.push((app["appId"].as_str().unwrap().to_string(), format!("<appId {tag}>")));
                for sp in d.service_principals.values().filter(|sp| sp["appId"] == app["appId"]) {
                    names.push((sp["id"].as_str().unwrap().to_string(), format!("<sp {tag}>")));
                }
            }
            names.push((self.shared.config.lock().unwrap().me.clone(), "<me>".into()));
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("id");
                }
                v
            };
            let mut federated: Vec<Value> = d
                .federated
                .iter()
                .flat_map(|(app, list)| list.iter().map(move |f| json!({"app": app, "fic": f})))
                .map(|mut f| {
                    f["fic"].as_object_mut().unwrap().remove("id");
                    f
                })
                .collect();
            federated.sort_by_key(|f| f.to_string());
            let sorted = |m: &BTreeMap<String, Value>| {
                let mut list: Vec<Value> = m.values().map(strip).collect();
                list.sort_by_key(|v| v.to_string());
                list
            };
            let snapshot = json!({
                "applications": d.applications.values().cloned().collect::<Vec<_>>(),
                "servicePrincipals": sorted(&d.service_principals),
                "federated": federated,
                "grants": sorted(&d.grants),
                "assignments": sorted(&d.assignments),
                "deleted": d.deleted.len(),
                "containerApps": d.container_apps.values().cloned().collect::<Vec<_>>(),
            });
            let mut text = snapshot.to_string();
            for (id, name) in names {
                text = text.replace(&id, &name);
            }
            let mut value: Value = serde_json::from_str(&text).unwrap();
            for list in ["applications", "servicePrincipals", "federated", "grants", "assignments", "containerApps"] {
                let mut items = value[list].as_array().cloned().unwrap();
                for item in &mut items {
                    // Names the server's own address.
                    item.as_object_mut().map(|o| o.remove("@odata.context"));
                }
                items.sort_by_key(|v| v.to_string());
                value[list] = Value::Array(items);
            }
            value
        })
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2025-01-01T00:00:00", "request-id": uuid::Uuid::new_v4().to_string(),
                           "client-request-id": uuid::Uuid::new_v4().to_string()}
        }
    });
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

fn json_response(status: StatusCode, value: Value) -> Response {
    (status, [("content-type", "application/json")], value.to_string()).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = shared.config.lock().unwrap().clone();
    let base = shared.base.lock().unwrap().clone();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "Access token is empty or invalid.");
    }
    let is_write = method != Method::GET;
    let fault = {
        let mut dir = shared.dir.lock().unwrap();
        dir.requests += 1;
        if let Some(every) = config.throttle_every
            && dir.requests % every == 0
        {
            dir.throttled += 1;
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests from Identifier under tenant. Please try again later.",
            );
            response.headers_mut().insert("retry-after", config.retry_after_secs.to_string().parse().unwrap());
            return response;
        }
        match config.fail_after_writes {
            Some((limit, fault)) if is_write && dir.writes.len() >= limit => Some(fault),
            _ => None,
        }
    };
    match fault {
        Some(Fault::Refuse) => return bad_request("Injected fault: the service is unavailable for writes."),
        Some(Fault::Hang) => {
            shared.hung.notify_one();
            std::future::pending::<()>().await;
        }
        _ => {}
    }
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(_) => return bad_request("Unable to read JSON request payload."),
        }
    };
    let query: BTreeMap<String, String> =
        uri.query().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let path = uri.path().to_string();
    let response = {
        let mut dir = shared.dir.lock().unwrap();
        let response = if let Some(graph_path) = path.strip_prefix("/v1.0/") {
            let segments: Vec<&str> = graph_path.split('/').collect();
            graph(&mut dir, &config, &base, &method, &segments, &query, body)
        } else {
            arm(&mut dir, &base, &method, &path, &query, body)
        };
        if is_write && response.status().is_success() {
            dir.writes.push(format!("{method} {path}"));
        }
        response
    };
    if fault == Some(Fault::HangAfterWrite) {
        shared.hung.notify_one();
        std::future::pending::<()>().await;
    }
    response
}

/// Whether `id` is still replicating: answers one more request as missing.
fn lags(dir: &mut Directory, id: &str) -> bool {
    match dir.lagging.get_mut(id) {
        Some(n) if *n > 0 => {
            *n -= 1;
            dir.lag_answers += 1;
            true
        }
        _ => false,
    }
}

fn list(base: &str, path: &str, query: &BTreeMap<String, String>, items: Vec<Value>, page_size: usize) -> Response {
    let skip: usize = query.get("$skiptoken").and_then(|s| s.parse().ok()).unwrap_or(0);
    let page: Vec<Value> = items.iter().skip(skip).take(page_size).cloned().collect();
    let mut body = json!({"@odata.context": format!("{base}/v1.0/$metadata#{path}"), "value": page});
    if skip + page_size < items.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in query.iter().filter(|(k, _)| *k != "$skiptoken") {
            next.append_pair(k, v);
        }
        next.append_pair("$skiptoken", &(skip + page_size).to_string());
        body["@odata.nextLink"] = json!(format!("{base}/v1.0/{path}?{}", next.finish()));
    }
    json_response(StatusCode::OK, body)
}

/// Supports the filters the hook uses: `tags/any(t:t eq 'x')` and `<property> eq 'x'`.
fn matches(filter: Option<&String>, item: &Value) -> Result<bool, Response> {
    let Some(filter) = filter else { return Ok(true) };
    if let Some(rest) = filter.strip_prefix("tags/any(t:t eq '") {
        let tag = rest.strip_suffix("')").ok_or_else(|| bad_request("Invalid filter clause"))?;
        return Ok(item["tags"].as_array().is_some_and(|t| t.iter().any(|x| x == tag)));
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

fn graph(
    dir: &mut Directory,
    config: &Config,
    base: &str,
    method: &Method,
    segments: &[&str],
    query: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Response {
    let filter = query.get("$filter");
    let body_obj = body.clone().unwrap_or(Value::Null);
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
        (Method::POST, ["applications"]) => {
            let Some(fields) = body_obj.as_object() else { return bad_request("A request body is required.") };
            if let Some(r) = unknown_property(fields) {
                return r;
            }
            if fields.get("displayName").and_then(Value::as_str).is_none_or(str::is_empty) {
                return bad_request("Property 'displayName' is required.");
            }
            let id = new_id();
            let app_id = new_id();
            let mut app = json!({
                "@odata.context": format!("{base}/v1.0/$metadata#applications/$entity"),
                "id": id, "appId": app_id, "displayName": null, "signInAudience": "AzureADMyOrg", "tags": [],
                "identifierUris": [], "description": null, "appRoles": [],
                "api": {"acceptMappedClaims": null, "knownClientApplications": [], "requestedAccessTokenVersion": null,
                        "oauth2PermissionScopes": [], "preAuthorizedApplications": []},
                "web": {"homePageUrl": null, "logoutUrl": null, "redirectUris": [],
                        "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
                "requiredResourceAccess": [], "passwordCredentials": [], "keyCredentials": [],
            });
            if let Err(r) = apply_application(dir, &id, &mut app, fields) {
                return r;
            }
            dir.applications.insert(id.clone(), app.clone());
            dir.lagging.insert(id, config.lag);
            dir.lagging.insert(app_id, config.lag);
            json_response(StatusCode::CREATED, app)
        }
        (_, ["applications", id, rest @ ..]) => {
            let id = id.to_string();
            if lags(dir, &id) || !dir.applications.contains_key(&id) {
                return not_found(&id);
            }
            match (method.clone(), rest) {
                (Method::GET, []) => json_response(StatusCode::OK, dir.applications[&id].clone()),
                (Method::PATCH, []) => {
                    let Some(fields) = body_obj.as_object() else { return bad_request("A request body is required.") };
                    if let Some(r) = unknown_property(fields) {
                        return r;
                    }
                    let mut app = dir.applications[&id].clone();
                    if let Err(r) = apply_application(dir, &id, &mut app, fields) {
                        return r;
                    }
                    dir.applications.insert(id, app);
                    no_content()
                }
                (Method::DELETE, []) => {
                    let app = dir.applications.remove(&id).unwrap_or_default();
                    dir.federated.remove(&id);
                    dir.deleted.insert(id, app);
                    no_content()
                }
                (m, ["federatedIdentityCredentials", fic @ ..]) => federated(dir, &id, m, fic, base, query, body_obj),
                _ => error(StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest", "Unsupported request."),
            }
        }

        (Method::GET, ["servicePrincipals"]) => {
            let mut items = Vec::new();
            for sp in dir.service_principals.values() {
                match matches(filter, sp) {
                    Ok(true) => items.push(sp.clone()),
                    Ok(false) => {}
                    Err(r) => return r,
                }
            }
            list(base, "servicePrincipals", query, items, config.page_size)
        }
        (Method::POST, ["servicePrincipals"]) => {
            let app_id = body_obj["appId"].as_str().unwrap_or_default().to_string();
            let app = dir.applications.values().find(|a| a["appId"] == app_id.as_str()).cloned();
            if lags(dir, &app_id) || app.is_none() {
                return bad_request(&format!(
                    "The appId '{app_id}' of the service principal does not reference a valid application object."
                ));
            }
            if dir.service_principals.values().any(|sp| sp["appId"] == app_id.as_str()) {
                return error(
                    StatusCode::CONFLICT,
                    "Request_MultipleObjectsWithSameKeyValue",
                    "The service principal cannot be created, updated, or restored because the service principal name is already in use.",
                );
            }
            let id = new_id();
            let sp = json!({"id": id, "appId": app_id, "displayName": app.map(|a| a["displayName"].clone()),
                            "servicePrincipalType": "Application", "tags": []});
            dir.service_principals.insert(id.clone(), sp.clone());
            dir.lagging.insert(id, config.lag);
            json_response(StatusCode::CREATED, sp)
        }
        (_, ["servicePrincipals", id, rest @ ..]) => {
            let id = id.to_string();
            if lags(dir, &id) || !dir.service_principals.contains_key(&id) {
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
                if lags(dir, &id) || !dir.service_principals.contains_key(&id) {
                    return not_found(&id);
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

fn unknown_property(fields: &Map<String, Value>) -> Option<Response> {
    fields
        .keys()
        .find(|k| !APP_PROPERTIES.contains(&k.as_str()))
        .map(|k| bad_request(&format!("Property '{k}' does not exist on type 'microsoft.graph.application'.")))
}

/// Applies `fields` to `app` (complex properties are replaced whole, as Graph does) after
/// checking Graph's rules.
fn apply_application(dir: &Directory, id: &str, app: &mut Value, fields: &Map<String, Value>) -> Result<(), Response> {
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

fn federated(
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

/// JSON merge patch (RFC 7386), as ARM applies a `PATCH`.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in fields {
                if v.is_null() {
                    target.as_object_mut().map(|o| o.remove(k));
                } else {
                    merge(&mut target[k], v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn arm(
    dir: &mut Directory,
    base: &str,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    body: Option<Value>,
) -> Response {
    let arm_error = |status: StatusCode, code: &str, message: &str| {
        json_response(status, json!({"error": {"code": code, "message": message}}))
    };
    if !query.contains_key("api-version") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    if path.contains("/containerappOperationStatuses/") {
        let op = path.rsplit('/').next().unwrap_or_default().to_string();
        let Some(polls) = dir.operations.get_mut(&op) else {
            return arm_error(StatusCode::NOT_FOUND, "NotFound", "operation not found");
        };
        let status = if *polls == 0 { "Succeeded" } else { "InProgress" };
        *polls = polls.saturating_sub(1);
        let mut response = json_response(StatusCode::OK, json!({"id": path, "name": op, "status": status}));
        response.headers_mut().insert("retry-after", "0".parse().unwrap());
        return response;
    }
    let key = path.to_ascii_lowercase();
    let Some(app) = dir.container_apps.get_mut(&key) else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!(
                "The Resource 'Microsoft.App/containerApps/{}' was not found.",
                path.rsplit('/').next().unwrap_or("")
            ),
        );
    };
    match *method {
        Method::GET => json_response(StatusCode::OK, app.clone()),
        Method::PATCH => {
            merge(app, &body.unwrap_or(Value::Null));
            let op = new_id();
            dir.operations.insert(op.clone(), 1);
            let status_url = format!(
                "{base}/subscriptions/x/providers/Microsoft.App/locations/swedencentral/containerappOperationStatuses/{op}?api-version=2024-03-01"
            );
            let mut response = StatusCode::ACCEPTED.into_response();
            response.headers_mut().insert("azure-asyncoperation", status_url.parse().unwrap());
            response.headers_mut().insert("retry-after", "0".parse().unwrap());
            response
        }
        _ => arm_error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "unsupported"),
    }
}
