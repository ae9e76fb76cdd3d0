//! `/openapi.json` and `/docs`: the OpenAPI document, and a page rendering it for people,
//! generated from the same document and served from the binary (no CDN, no JavaScript).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr};

use crate::openapi::OPERATIONS_TAG;

/// The rendered document and page, built once at start.
#[derive(Clone)]
pub struct Docs {
    json: Arc<str>,
    html: Arc<str>,
}

impl Docs {
    pub fn new(openapi: &OpenApi) -> Docs {
        // Serialising utoipa's own types cannot fail; an empty document would show it if it did.
        let json = openapi.to_pretty_json().unwrap_or_default();
        Docs { json: json.into(), html: render(openapi).into() }
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = OPERATIONS_TAG,
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(State(docs): State<Docs>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], docs.json.to_string()).into_response()
}

/// The API reference, for people.
#[utoipa::path(
    get,
    path = "/docs",
    tag = OPERATIONS_TAG,
    responses((status = 200, description = "The API reference as an HTML page.", content_type = "text/html", body = String))
)]
pub async fn docs_page(State(docs): State<Docs>) -> Html<String> {
    Html(docs.html.to_string())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn render(openapi: &OpenApi) -> String {
    let mut page = String::new();
    let title = escape(&openapi.info.title);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}\
         h2{{border-top:1px solid #ccc;padding-top:1rem}}code,pre{{background:#f4f4f4;padding:.1rem .3rem}}\
         pre{{padding:.6rem;overflow-x:auto}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;\
         padding:.2rem .5rem;text-align:left;vertical-align:top}}.m{{font-weight:bold;text-transform:uppercase}}\
         </style></head><body><h1>{title} <small>{}</small></h1><p>{}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>",
        escape(&openapi.info.version),
        escape(openapi.info.description.as_deref().unwrap_or_default()),
        escape(serde_json::to_value(&openapi.openapi).unwrap_or_default().as_str().unwrap_or_default()),
    );
    for (path, item) in &openapi.paths.paths {
        let methods = [
            ("get", &item.get),
            ("post", &item.post),
            ("put", &item.put),
            ("patch", &item.patch),
            ("delete", &item.delete),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                render_operation(&mut page, openapi, method, path, operation);
            }
        }
    }
    page.push_str("<h2>Schemas</h2>");
    if let Some(components) = &openapi.components {
        for (name, schema) in &components.schemas {
            let json = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ = write!(page, "<h3 id=\"schema-{0}\">{0}</h3><pre>{1}</pre>", escape(name), escape(&json));
        }
    }
    page.push_str("</body></html>");
    page
}

fn render_operation(page: &mut String, openapi: &OpenApi, method: &str, path: &str, operation: &Operation) {
    let tag = operation.tags.as_ref().and_then(|t| t.first()).map_or("", String::as_str);
    let _ = write!(page, "<h2><span class=\"m\">{method}</span> <code>{}</code></h2>", escape(path));
    if let Some(summary) = &operation.summary {
        let _ = write!(page, "<p><strong>{}</strong></p>", escape(summary));
    }
    if let Some(description) = &operation.description {
        let _ = write!(page, "<p>{}</p>", escape(description));
    }
    if let Some(requirements) = &operation.security {
        let scopes = serde_json::to_string(requirements).unwrap_or_default();
        let _ = write!(page, "<p>Bearer token; scopes (any one): <code>{}</code></p>", escape(&scopes));
    } else if tag == OPERATIONS_TAG {
        page.push_str("<p>No token needed.</p>");
    }
    if let Some(parameters) = operation.parameters.as_ref().filter(|p| !p.is_empty()) {
        page.push_str("<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>");
        for p in parameters {
            let location = serde_json::to_value(&p.parameter_in).unwrap_or_default();
            let _ = write!(
                page,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.name),
                escape(location.as_str().unwrap_or_default()),
                serde_json::to_value(&p.required).unwrap_or_default() == serde_json::Value::Bool(true),
                escape(p.description.as_deref().unwrap_or_default()),
            );
        }
        page.push_str("</table>");
    }
    if let Some(body) = &operation.request_body {
        let content: Vec<_> = body.content.keys().map(|k| escape(k)).collect();
        let _ = write!(page, "<p>Request body: {}</p>", content.join(", "));
        for media in body.content.values() {
            if let Some(schema) = &media.schema {
                let json = serde_json::to_string_pretty(schema).unwrap_or_default();
                let _ = write!(page, "<pre>{}</pre>", escape(&json));
            }
        }
    }
    page.push_str("<table><tr><th>status</th><th>meaning</th><th>body</th><th>headers</th></tr>");
    for (status, response) in &operation.responses.responses {
        let response = match response {
            RefOr::T(r) => Some(r),
            RefOr::Ref(r) => {
                let name = r.ref_location.rsplit('/').next().unwrap_or_default();
                openapi.components.as_ref().and_then(|c| c.responses.get(name)).and_then(|r| match r {
                    RefOr::T(r) => Some(r),
                    RefOr::Ref(_) => None,
                })
            }
        };
        let description = response.map_or("", |r| r.description.as_str());
        let bodies: Vec<String> = response
            .map(|r| {
                r.content.iter().map(|(kind, media)| format!("{kind} {}", schema_name(media.schema.as_ref()))).collect()
            })
            .unwrap_or_default();
        let headers: Vec<&str> = response.map(|r| r.headers.keys().map(String::as_str).collect()).unwrap_or_default();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(status),
            escape(description),
            escape(&bodies.join(", ")),
            escape(&headers.join(", ")),
        );
    }
    page.push_str("</table>");
}

fn schema_name(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> String {
    match schema {
        Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().unwrap_or_default().to_string(),
        Some(RefOr::T(_)) => "(inline)".to_string(),
        None => String::new(),
    }
}
