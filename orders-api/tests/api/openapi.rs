//! Acceptance 5: the OpenAPI document is a valid OpenAPI 3.1 document, and every response
//! each route can give is documented: the test provokes every documented (route, status)
//! pair for real, and checks each real response's status, content type, headers and body
//! against the document's schemas.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ALL_SCOPES, TestApp, settings, spawn_app, spawn_idp, start};

struct Doc(Value);

impl Doc {
    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(pointer) => self.0.pointer(pointer.trim_start_matches('#')).unwrap_or(&Value::Null),
            None => value,
        }
    }

    fn response(&self, method: &str, template: &str, status: u16) -> Option<&Value> {
        let operation = self.0["paths"].get(template)?.get(method)?;
        Some(self.resolve(operation["responses"].get(status.to_string())?))
    }

    /// A validator for `schema`, with the document's components reachable by `$ref`.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let root = json!({ "$ref": "#/schema", "schema": schema, "components": self.0["components"] });
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
    }
}

struct Observed {
    method: &'static str,
    template: &'static str,
    status: u16,
    content_type: Option<String>,
    headers: Vec<String>,
    body: String,
}

struct Call<'a> {
    method: &'static str,
    template: &'static str,
    path: String,
    token: Option<&'a str>,
    body: Option<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
}

fn call<'a>(method: &'static str, template: &'static str, path: impl Into<String>, token: Option<&'a str>) -> Call<'a> {
    Call { method, template, path: path.into(), token, body: None, headers: Vec::new() }
}

impl Call<'_> {
    fn json(mut self, body: Value) -> Self {
        self.body = Some(("application/json", body.to_string()));
        self
    }

    fn raw(mut self, content_type: &'static str, body: String) -> Self {
        self.body = Some((content_type, body));
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }

    async fn send(self, app: &TestApp) -> Observed {
        let method = Method::from_bytes(self.method.to_uppercase().as_bytes()).unwrap();
        let mut request = app.client.request(method, app.url(&self.path));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, body)) = self.body {
            request = request.header("content-type", content_type).body(body);
        }
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        Observed {
            method: self.method,
            template: self.template,
            status: response.status().as_u16(),
            content_type: response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()),
            headers: response.headers().keys().map(|k| k.as_str().to_string()).collect(),
            body: response.text().await.unwrap(),
        }
    }
}

/// Headers this API sets that the document must mention wherever they appear.
const DOCUMENTED_HEADERS: [&str; 4] = ["x-hop-trace", "location", "idempotent-replayed", "www-authenticate"];

fn check(doc: &Doc, seen: &Observed) -> Result<(), String> {
    let what = format!("{} {} -> {}", seen.method, seen.template, seen.status);
    let documented =
        doc.response(seen.method, seen.template, seen.status).ok_or(format!("{what}: undocumented status"))?;
    let content = documented.get("content").and_then(Value::as_object);
    if seen.body.is_empty() {
        return match content {
            Some(c) if !c.is_empty() => Err(format!("{what}: documented with a body, but has none")),
            _ => Ok(()),
        };
    }
    let media =
        seen.content_type.as_deref().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_string();
    let entry = content.and_then(|c| c.get(&media)).ok_or(format!("{what}: content type {media} is not documented"))?;
    if media.ends_with("json") {
        let body: Value = serde_json::from_str(&seen.body).map_err(|e| format!("{what}: body is not JSON: {e}"))?;
        let validator = doc.validator(&entry["schema"]);
        let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(format!("{what}: body does not match the schema: {errors:?}\n{body}"));
        }
    }
    let headers: BTreeSet<String> = documented
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    for header in DOCUMENTED_HEADERS {
        if seen.headers.iter().any(|h| h == header) && !headers.contains(header) {
            return Err(format!("{what}: header {header} is not documented"));
        }
    }
    Ok(())
}

/// Every `$ref` in the document points at something.
fn dangling_refs(doc: &Value, node: &Value, found: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && doc.pointer(r.trim_start_matches('#')).is_none()
            {
                found.push(r.clone());
            }
            map.values().for_each(|v| dangling_refs(doc, v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1() {
    let app = spawn_app().await;
    let text = app.client.get(app.url("/openapi.json")).send().await.unwrap().text().await.unwrap();
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    let version = spec.validate_version().expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1));
    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in spec.operations() {
        let id = operation.operation_id.clone().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(operation_ids.insert(id.clone()), "operationId {id} is used twice");
        let resolved = operation.responses(&spec);
        assert_eq!(
            resolved.len(),
            operation.responses.as_ref().map_or(0, |r| r.len()),
            "{method} {path}: a response does not resolve"
        );
        for (status, response) in &resolved {
            assert!(
                !response.description.as_deref().unwrap_or_default().is_empty(),
                "{method} {path} {status}: no description"
            );
        }
        if path.contains("{id}") {
            let params = operation.parameters(&spec).unwrap();
            assert!(params.iter().any(|p| p.name == "id"), "{method} {path}: path parameter undeclared");
        }
    }

    let doc: Value = serde_json::from_str(&text).unwrap();
    let mut dangling = Vec::new();
    dangling_refs(&doc, &doc, &mut dangling);
    assert!(dangling.is_empty(), "dangling $refs: {dangling:?}");
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let mut schema = schema.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("component schema {name} is not valid JSON Schema 2020-12: {e}");
        }
    }
    assert_eq!(doc["components"]["securitySchemes"]["entra"]["scheme"], "bearer");
    for template in ["/api/orders", "/api/orders/{id}", "/api/orders/{id}/cancel"] {
        for (method, operation) in doc["paths"][template].as_object().unwrap() {
            assert!(operation["security"][0]["entra"].is_array(), "{method} {template} declares no security");
        }
    }
}

#[tokio::test]
async fn every_documented_response_happens_and_matches_its_schema() {
    let app = spawn_app().await;
    let doc = Doc(app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap());

    // A second instance whose identity provider is unreachable (503 on protected routes) and
    // whose database file then goes bad (503 from /readyz).
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let broken_settings = settings("http://127.0.0.1:9", &dir.path().join("orders.db"), &[]);
    let broken = start(idp, dir, broken_settings).await;

    let alice = app.token("alice", ALL_SCOPES);
    let read_only = app.token("alice", &["Orders.Read"]);
    let carol = app.token("carol", ALL_SCOPES);
    let app_only = app.idp.handle().app_token("orders-mcp", "orders-api").unwrap();
    let (a, r, c, o) = (Some(alice.as_str()), Some(read_only.as_str()), Some(carol.as_str()), Some(app_only.as_str()));
    let order = json!({ "product": "Documented", "quantity": 1 });
    let big = json!({ "product": "x".repeat(65 * 1024), "quantity": 1 }).to_string();

    let calls = vec![
        call("get", "/api/orders", "/api/orders", a),
        call("get", "/api/orders", "/api/orders?limit=0", a),
        call("get", "/api/orders", "/api/orders", None),
        call("get", "/api/orders", "/api/orders", o),
        call("get", "/api/orders/{id}", "/api/orders/ORD-001", a),
        call("get", "/api/orders/{id}", "/api/orders/ORD-1", a),
        call("get", "/api/orders/{id}", "/api/orders/ORD-001", None),
        call("get", "/api/orders/{id}", "/api/orders/ORD-001", o),
        call("get", "/api/orders/{id}", "/api/orders/ORD-006", a),
        call("post", "/api/orders", "/api/orders", a).json(order.clone()).header("idempotency-key", "doc-1"),
        call("post", "/api/orders", "/api/orders", a).json(order.clone()).header("idempotency-key", "doc-1"),
        call("post", "/api/orders", "/api/orders", a).raw("application/json", "{".into()),
        call("post", "/api/orders", "/api/orders", None).json(order.clone()),
        call("post", "/api/orders", "/api/orders", r).json(order.clone()),
        call("post", "/api/orders", "/api/orders", a).raw("application/json", big),
        call("post", "/api/orders", "/api/orders", a).raw("text/plain", order.to_string()),
        call("post", "/api/orders", "/api/orders", a).json(json!({ "product": "x", "quantity": 0 })),
        call("post", "/api/orders", "/api/orders", a)
            .json(json!({ "product": "y", "quantity": 1 }))
            .header("idempotency-key", "doc-1"),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-004/cancel", a),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-1/cancel", a),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-004/cancel", None),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-004/cancel", r),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-006/cancel", a),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-002/cancel", a),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-008", c),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-1", c),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-001", None),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-001", a),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-999", c),
        call("get", "/healthz", "/healthz", None),
        call("get", "/readyz", "/readyz", None),
        call("get", "/openapi.json", "/openapi.json", None),
        call("get", "/docs", "/docs", None),
        call("get", "/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource", None),
    ];
    let broken_calls = vec![
        call("get", "/api/orders", "/api/orders", a),
        call("get", "/api/orders/{id}", "/api/orders/ORD-001", a),
        call("post", "/api/orders", "/api/orders", a).json(order.clone()),
        call("post", "/api/orders/{id}/cancel", "/api/orders/ORD-001/cancel", a),
        call("delete", "/api/orders/{id}", "/api/orders/ORD-001", c),
    ];

    let mut observed = Vec::new();
    for c in calls {
        observed.push(c.send(&app).await);
    }
    for c in broken_calls {
        observed.push(c.send(&broken).await);
    }
    std::fs::write(broken.database(), b"garbage, not a database").unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", broken.database().display()));
    }
    observed.push(call("get", "/readyz", "/readyz", None).send(&broken).await);

    let failures: Vec<String> = observed.iter().filter_map(|seen| check(&doc, seen).err()).collect();
    assert!(failures.is_empty(), "responses that contradict the document:\n{}", failures.join("\n"));

    // And the other way round: every documented response was seen.
    let seen: BTreeSet<(String, String, String)> =
        observed.iter().map(|o| (o.template.to_string(), o.method.to_string(), o.status.to_string())).collect();
    let mut unseen = Vec::new();
    for (template, item) in doc.0["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                if !seen.contains(&(template.clone(), method.clone(), status.clone())) {
                    unseen.push(format!("{method} {template} {status}"));
                }
            }
        }
    }
    assert!(unseen.is_empty(), "documented but never produced: {unseen:?}");
}

/// Issue 16: a fuzzer driven by the document found requests it calls valid that the server
/// refused (order id shape, cursor, `Idempotency-Key`, `525.0` as an integer). The document
/// now states the rules the domain types enforce (the same constants), and requests it calls
/// valid are accepted. JSON Schema counts `525.0` as an integer
/// (https://json-schema.org/understanding-json-schema/reference/numeric#integer), and OpenAPI
/// 3.1 schemas are JSON Schema 2020-12.
#[tokio::test]
async fn the_document_states_every_rule_and_the_server_accepts_what_it_calls_valid() {
    use orders_api::domain::{IDEMPOTENCY_KEY_PATTERN, ORDER_ID_PATTERN, PRODUCT_MAX_CHARS, PRODUCT_PATTERN};

    let app = spawn_app().await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let param = |template: &str, method: &str, name: &str| -> Value {
        let params = doc["paths"][template][method]["parameters"].as_array().cloned().unwrap_or_default();
        params.into_iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{method} {template}: no {name}"))
    };
    for (template, method) in
        [("/api/orders/{id}", "get"), ("/api/orders/{id}", "delete"), ("/api/orders/{id}/cancel", "post")]
    {
        assert_eq!(param(template, method, "id")["schema"]["pattern"], ORDER_ID_PATTERN, "{method} {template}");
    }
    assert_eq!(param("/api/orders", "get", "cursor")["schema"]["pattern"], ORDER_ID_PATTERN);
    assert_eq!(param("/api/orders", "post", "Idempotency-Key")["schema"]["pattern"], IDEMPOTENCY_KEY_PATTERN);
    let create = &doc["components"]["schemas"]["CreateOrder"]["properties"];
    assert_eq!(create["product"]["pattern"], PRODUCT_PATTERN);
    assert_eq!(create["product"]["maxLength"], PRODUCT_MAX_CHARS);

    let alice = app.token("alice", ALL_SCOPES);
    let created = app.create(&alice, &json!({ "product": " Desk lamp ", "quantity": 525.0 })).await;
    assert_eq!(created.status(), 201, "an integer written as 525.0 is an integer to JSON Schema");
    let created: Value = created.json().await.unwrap();
    assert_eq!((created["quantity"].as_i64(), created["product"].as_str()), (Some(525), Some("Desk lamp")));
    assert_eq!(app.create(&alice, &json!({ "product": "Desk lamp", "quantity": 2.5 })).await.status(), 422);

    for cursor in ["ORD-001", "ORD-999999999999"] {
        let page = app.get(&format!("/api/orders?cursor={cursor}"), &alice).await;
        assert_eq!(page.status(), 200, "cursor {cursor} matches the documented pattern");
    }
    let keyed = app
        .request(Method::POST, "/api/orders", &alice)
        .header("idempotency-key", "~!{}[]|\\^`")
        .json(&json!({ "product": "Keyed", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 201, "any visible ASCII key is documented as valid");
}
