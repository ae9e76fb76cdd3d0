//! How the fake answers, in Graph's wire format: JSON bodies, error bodies
//! (`{"error": {"code", "message", "innerError"}}`), paged lists; and the merge patch both
//! services apply.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    error_with_details(status, code, message, None)
}

/// Graph's error body with its `details` list, e.g. `[{"code": "InvalidValue", "target": "..."}]`.
pub fn error_with_details(status: StatusCode, code: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2025-01-01T00:00:00", "request-id": uuid::Uuid::new_v4().to_string(),
                           "client-request-id": uuid::Uuid::new_v4().to_string()}
        }
    });
    if let Some(details) = details {
        body["error"]["details"] = details;
    }
    (status, [("content-type", "application/json")], body.to_string()).into_response()
}

pub fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
    )
}

pub fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

pub fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

pub fn json_response(status: StatusCode, value: Value) -> Response {
    (status, [("content-type", "application/json")], value.to_string()).into_response()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One page of a Graph list, with `@odata.nextLink` when more follow.
pub fn list(base: &str, path: &str, query: &BTreeMap<String, String>, items: Vec<Value>, page_size: usize) -> Response {
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

/// JSON merge patch (RFC 7386), as ARM applies a `PATCH`.
pub fn merge(target: &mut Value, patch: &Value) {
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
