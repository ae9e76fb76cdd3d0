//! The fake Azure Resource Manager: container apps, and the long-running operation a `PATCH`
//! starts (`202` + `Azure-AsyncOperation`, polled until `Succeeded`); the Azure OpenAI models a
//! region offers and the subscription's quota there (`Microsoft.CognitiveServices/locations/
//! {location}/models` and `/usages`, as in the 2024-10-01 REST examples).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::reply::{json_response, merge, new_id};
use super::state::Directory;

/// Answers one ARM request: a container app (`GET`, `PATCH` as a long-running operation) or
/// the status of such an operation.
pub fn route(
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
    let lower = path.to_ascii_lowercase();
    if let Some(rest) = lower.split("/providers/microsoft.cognitiveservices/locations/").nth(1) {
        let (location, list) = rest.split_once('/').unwrap_or((rest, ""));
        let items = match (method, list) {
            (&Method::GET, "models") => dir.models.get(location).cloned().unwrap_or_default(),
            (&Method::GET, "usages") => dir.usages.get(location).cloned().unwrap_or_default(),
            _ => return arm_error(StatusCode::NOT_FOUND, "NotFound", "unsupported"),
        };
        return json_response(StatusCode::OK, json!({"value": items}));
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
