//! One chat turn, followed everywhere: the four services (chat-app, orders-mcp, the emulator
//! as Entra, orders-api) run in-process and export their spans over OTLP/HTTP protobuf to a
//! receiver here, which decodes them with the OpenTelemetry proto types. The turn is one trace
//! with an unbroken parent/child chain from the browser's request to the SQLite query, each hop
//! carries its identity attributes, and nothing exported (every span, attribute and event, at
//! trace level) holds a token, a code, a secret or a cookie.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

#[path = "../api/front.rs"]
mod front;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/stack.rs"]
mod stack;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use entra_auth::span_attributes as attr;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use service_kit::telemetry::settings::{BatchSettings, OtlpSettings, Protocol, Sampler};
use service_kit::telemetry::{Telemetry, TelemetrySettings};

use helpers::{Browser, Options, TurnEvent, find_jwt, spawn_with};

/// Everything the receiver was sent: the resource attributes and spans of each request.
#[derive(Default, Clone)]
struct Received {
    spans: Vec<Span>,
    resources: Vec<KeyValue>,
}

/// A real OTLP/HTTP endpoint (`POST /v1/traces`, `application/x-protobuf`), on its own thread
/// and runtime so it outlives each test's runtime.
fn receiver() -> &'static (String, Arc<Mutex<Received>>) {
    static RECEIVER: OnceLock<(String, Arc<Mutex<Received>>)> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let received = Arc::new(Mutex::new(Received::default()));
        let store = received.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/traces",
                    post(move |headers: axum::http::HeaderMap, body: Bytes| {
                        let store = store.clone();
                        async move {
                            assert_eq!(headers["content-type"], "application/x-protobuf");
                            let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
                            let mut store = store.lock().unwrap();
                            for resource_spans in request.resource_spans {
                                store.resources.extend(resource_spans.resource.into_iter().flat_map(|r| r.attributes));
                                for scope in resource_spans.scope_spans {
                                    store.spans.extend(scope.spans);
                                }
                            }
                            (
                                [("content-type", "application/x-protobuf")],
                                ExportTraceServiceResponse::default().encode_to_vec(),
                            )
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(format!("http://{}/v1/traces", listener.local_addr().unwrap())).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        (rx.recv().unwrap(), received)
    })
}

/// Exports every span of the process, at trace level, to [`receiver`]. Installed before
/// anything else logs (the helpers' log capture then finds a subscriber and stays out).
fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let endpoint = receiver().0.parse().unwrap();
        service_kit::telemetry::init_with(TelemetrySettings {
            logs: false,
            json_logs: false,
            filter: Some("trace".into()),
            otlp: Some(OtlpSettings {
                endpoint,
                protocol: Protocol::HttpProtobuf,
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                service_name: "orders-copilot-tests".into(),
                resource: Vec::new(),
                sampler: Sampler::AlwaysOn,
                batch: BatchSettings::default(),
            }),
            warnings: Vec::new(),
        })
    })
}

/// Has the services export what they recorded until `found` finds what it looks for among the
/// spans received (30 s at most, then the test fails naming `what`).
async fn until_exported<T>(what: &str, found: impl Fn(&[Span]) -> Option<T>) -> T {
    let wait = async {
        loop {
            tokio::task::spawn_blocking(|| telemetry().flush()).await.unwrap();
            // A copy: `found` may fail the test, and must not poison the receiver's lock then.
            let spans = receiver().1.lock().unwrap().spans.clone();
            if let Some(hit) = found(&spans) {
                return hit;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.unwrap_or_else(|_| panic!("not exported in 30 s: {what}"))
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            a.values.iter().map(|v| text(&Some(v.clone()))).collect::<Vec<_>>().join(" ")
        }
        Some(any_value::Value::KvlistValue(l)) => {
            l.values.iter().map(|kv| format!("{}={}", kv.key, text(&kv.value))).collect::<Vec<_>>().join(" ")
        }
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value))
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every string a trace viewer would show: names, attributes, events and their attributes,
/// links, status messages, resource attributes.
fn everything_exported(received: &Received) -> String {
    let mut all = String::new();
    let push_kvs = |kvs: &[KeyValue], all: &mut String| {
        for kv in kvs {
            all.push_str(&format!("{}={}\n", kv.key, text(&kv.value)));
        }
    };
    push_kvs(&received.resources, &mut all);
    for span in &received.spans {
        all.push_str(&format!("{}\n", span.name));
        push_kvs(&span.attributes, &mut all);
        for event in &span.events {
            all.push_str(&format!("{}\n", event.name));
            push_kvs(&event.attributes, &mut all);
        }
        for link in &span.links {
            push_kvs(&link.attributes, &mut all);
        }
        if let Some(status) = &span.status {
            all.push_str(&format!("{}\n", status.message));
        }
    }
    all
}

#[tokio::test]
async fn one_chat_turn_is_one_trace_across_the_four_services_with_identity_at_each_hop_and_no_secret() {
    telemetry();
    let viewer = "http://localhost:16686/trace/{trace_id}";
    let env = vec![("CHAT_APP_TRACE_URL", viewer.to_string())];
    let app = spawn_with(Options { orders_stack: true, env, ..Options::default() }).await;
    let manifest = app.idp.handle().manifest().clone();
    let alice = manifest.user("alice").unwrap().oid.clone();
    let browser = Browser::new(&app.origin);
    browser.sign_in(&app, "alice").await;
    let events = browser.chat(&app, "show my orders").await;
    assert_eq!(events.last(), Some(&TurnEvent::Done), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{events:?}");
    // The turn runs in a task inside the request's span, so that span ends when the task does,
    // just after `done` was sent: export until it has arrived.
    until_exported("the turn's spans", |spans| spans.iter().any(|s| s.name == "POST /api/chat/send").then_some(()))
        .await;

    // A copy: the lock is not held across the page request below.
    let received = receiver().1.lock().unwrap().clone();
    let all = &received.spans;
    let by_id: HashMap<&[u8], &Span> = all.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    // chat-app: the browser's request starts the trace; the turn and the tool call are under it.
    // The other tests in this binary export to the same receiver, so what follows looks in this
    // turn's trace only.
    let sends: Vec<&Span> = all.iter().filter(|s| s.name == "POST /api/chat/send").collect();
    let [send] = sends[..] else { panic!("one chat turn sent so far: {sends:?}") };
    let trace = send.trace_id.clone();
    let spans: Vec<&Span> = all.iter().filter(|s| s.trace_id == trace).collect();
    let named = |name: &str| -> Vec<&Span> { spans.iter().copied().filter(|s| s.name == name).collect() };
    let one = |name: &str| -> &Span {
        let found = named(name);
        assert_eq!(
            found.len(),
            1,
            "one `{name}` span expected among {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        found[0]
    };
    let parent_of = |span: &Span| -> Option<&Span> { by_id.get(span.parent_span_id.as_slice()).copied() };
    let is_ancestor = |ancestor: &Span, span: &Span| {
        let mut at = parent_of(span);
        while let Some(s) = at {
            if s.span_id == ancestor.span_id {
                return true;
            }
            at = parent_of(s);
        }
        false
    };

    assert!(send.parent_span_id.is_empty(), "the browser sent no trace context: the turn's request is the root");
    // The agent run, its model calls and its tool call as OpenTelemetry's GenAI and MCP
    // conventions name them (semantic-conventions-genai: `invoke_agent`, `chat`, and
    // `tools/call {tool}` on both sides with `execute_tool`), which GenAI trace views read.
    let [call, tool] = ["client", "server"].map(|side| {
        let kind = if side == "client" { SpanKind::Client } else { SpanKind::Server } as i32;
        let found: Vec<&Span> = named("tools/call list_orders").into_iter().filter(|s| s.kind == kind).collect();
        assert_eq!(found.len(), 1, "one {side} span `tools/call list_orders`");
        found[0]
    });
    assert!(is_ancestor(send, call), "the tool call runs in the turn started by the request");
    let turn = one("invoke_agent Orders Copilot");
    assert!(is_ancestor(turn, call));
    assert_eq!(attribute(turn, "gen_ai.operation.name").as_deref(), Some("invoke_agent"));
    assert_eq!(attribute(turn, "gen_ai.agent.name").as_deref(), Some("Orders Copilot"));
    let models = named("chat offline-planner");
    assert!(!models.is_empty() && models.iter().all(|m| is_ancestor(turn, m)), "the model calls are spans of the turn");
    for model in &models {
        assert_eq!(model.kind, SpanKind::Client as i32);
        assert_eq!(attribute(model, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attribute(model, "gen_ai.provider.name").as_deref(), Some("orders_copilot.planner"));
        assert_eq!(attribute(model, "gen_ai.request.model").as_deref(), Some("offline-planner"));
    }
    for span in [call, tool] {
        assert_eq!(attribute(span, "mcp.method.name").as_deref(), Some("tools/call"), "{}", span.kind);
        assert_eq!(attribute(span, "gen_ai.operation.name").as_deref(), Some("execute_tool"));
        assert_eq!(attribute(span, "gen_ai.tool.name").as_deref(), Some("list_orders"));
        assert_eq!(attribute(span, "error.type"), None);
    }
    assert_eq!(attribute(call, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(attribute(call, "network.transport").as_deref(), Some("tcp"));
    assert!(attribute(tool, "jsonrpc.request.id").is_some_and(|id| !id.is_empty()));
    // orders-mcp: the tool call continues chat-app's span (MCP `_meta.traceparent`).
    // One span per tool call there: it carries orders-mcp's hop, the rest is its children.
    assert_eq!(tool.parent_span_id, call.span_id, "orders-mcp's call is a child of chat-app's");
    // The call is the request's own server span (the direct route), not a span under a
    // one-span trace of `POST /mcp` (chat-app's MCP client sends no `traceparent` header).
    assert_eq!(attribute(tool, "url.path").as_deref(), Some("/mcp"));
    assert_eq!(attribute(tool, "http.response.status_code").as_deref(), Some("200"));
    assert!(
        !spans.iter().any(|s| s.name.starts_with("tool.")),
        "no span per tool method under the call: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    // The On-Behalf-Of exchange at the emulator (Entra), then orders-api, then SQLite.
    let obo = one("obo.token");
    assert!(is_ancestor(tool, obo));
    let token_requests: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|s| attribute(s, "url.path").is_some_and(|p| p.ends_with("/oauth2/v2.0/token")))
        .collect();
    let [exchange] = token_requests[..] else { panic!("one token request in the turn's trace: {token_requests:?}") };
    // Named after the emulator's route, as Entra's endpoint takes the tenant in its path: the
    // tenant id is in `url.path`, not in the span's name.
    assert_eq!(exchange.name, "POST /{tenant}/oauth2/v2.0/token");
    assert_eq!(exchange.parent_span_id, obo.span_id, "the token endpoint continues the OBO span (traceparent header)");
    let api = one("GET /api/orders");
    // An HTTP server span as OpenTelemetry's semantic conventions name it (what trace viewers
    // and Application Insights read a request's method, path and result from).
    assert_eq!(attribute(api, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(api, "url.path").as_deref(), Some("/api/orders"));
    assert_eq!(attribute(api, "http.route").as_deref(), Some("/api/orders"));
    assert_eq!(attribute(api, "http.response.status_code").as_deref(), Some("200"));
    let api_call = parent_of(api).expect("orders-api continues orders-mcp's call");
    assert_eq!(api_call.name, "orders_api.call");
    // An HTTP client span as the conventions describe it: Application Insights' dependency
    // type, target, URL and result come from these.
    assert_eq!(api_call.kind, SpanKind::Client as i32);
    assert_eq!(attribute(api_call, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(api_call, "server.address").as_deref(), Some("127.0.0.1"));
    let port = attribute(api_call, "server.port").expect("server.port");
    assert_eq!(attribute(api_call, "url.full"), Some(format!("http://127.0.0.1:{port}/api/orders")));
    assert_eq!(attribute(api_call, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(api_call, "error.type"), None);
    assert!(is_ancestor(tool, api_call));
    let query = one("store.list");
    assert!(is_ancestor(api, query), "the SQLite query is under orders-api's request");
    for span in [send, call, tool, obo, exchange, api, api_call, query] {
        assert_eq!(hex(&span.trace_id), hex(&trace), "`{}` is in the turn's trace", span.name);
    }

    // The trace panel names the turn's trace and links it to the viewer (CHAT_APP_TRACE_URL),
    // live and after a reload.
    let trace_ids: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolCall { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        })
        .collect();
    assert_eq!(trace_ids, [hex(&trace)], "the tool call event carries the turn's trace id");
    let page = browser.get(&format!("{}/chat", app.url)).await;
    let link = format!("href=\"{}\"", viewer.replace("{trace_id}", &hex(&trace)));
    assert!(page.body.contains(&link), "the reloaded trace panel links the trace: {link}");

    // Identity at each hop, from the hop records.
    let mcp = &manifest.apps["orders-mcp"].client_id;
    let chat = &manifest.apps["chat-app"].client_id;
    for (span, service, grant, audience, version, client) in [
        (call, "chat-app", "sign-in", mcp.as_str(), "2.0", chat.as_str()),
        (tool, "orders-mcp", "direct", mcp.as_str(), "2.0", chat.as_str()),
        (api, "orders-api", "obo", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local", "1.0", mcp.as_str()),
    ] {
        let a = |key| attribute(span, key).unwrap_or_else(|| panic!("`{}` has no {key}", span.name));
        assert_eq!(a(attr::SERVICE), service);
        assert_eq!(a(attr::USER), alice, "{service}");
        assert_eq!(a(attr::GRANT), grant, "{service}");
        assert_eq!(a(attr::AUDIENCE), audience, "{service}");
        assert_eq!(a(attr::TOKEN_VERSION), version, "{service}");
        assert_eq!(a(attr::CLIENT), client, "{service}");
        assert_eq!(a(attr::OUTCOME), "allowed", "{service}");
        assert!(!a(attr::TENANT).is_empty());
        let scopes = a(attr::SCOPES);
        assert!(
            scopes.split(' ').all(|s| !s.is_empty()),
            "{service}: scopes are words separated by one space: {scopes:?}"
        );
        let expected = if service == "orders-api" { "Orders.Read" } else { "access_as_user" };
        assert!(scopes.split(' ').any(|s| s == expected), "{service}: {expected} among {scopes:?}");
    }
    assert_eq!(attribute(obo, attr::TOKEN_SOURCE).as_deref(), Some("issued"));
    // Only names from the one list are identity attributes.
    for span in all {
        for kv in &span.attributes {
            if kv.key.starts_with("identity.") || kv.key.starts_with("enduser.") {
                assert!(attr::NAMES.contains(&kv.key.as_str()), "`{}` is not in span_attributes::NAMES", kv.key);
            }
        }
    }

    // Nothing secret was exported, at trace level, from any span of any request (sign-in
    // included): no JWT, no authorization code, no client secret, no session cookie.
    let exported = everything_exported(&received);
    if let Some(i) = find_jwt(&exported) {
        panic!("a token was exported: ...{}...", &exported[i.saturating_sub(200)..(i + 20).min(exported.len())]);
    }
    let cookie = browser.cookie(&app.url, helpers::COOKIE).expect("signed in");
    let seen = browser.everything_seen();
    let codes: Vec<&str> =
        seen.split(['?', '&', '#', '"', ' ', '\n']).filter_map(|p| p.strip_prefix("code=")).collect();
    assert!(!codes.is_empty(), "the sign-in redirect carried a code");
    for (what, secret) in [("the session cookie", cookie.as_str()), ("the client secret", "chat-app-local-secret")]
        .into_iter()
        .chain(codes.iter().map(|c| ("an authorization code", *c)))
    {
        assert!(!exported.contains(secret), "{what} was exported");
    }

    // The next turn's tool call finds orders-mcp's On-Behalf-Of token cached: no exchange, so no
    // `obo.token` span, and the call to orders-api says where its token came from.
    let again = browser.chat(&app, "show my orders").await;
    assert!(again.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })), "{again:?}");
    let spans = until_exported("the second turn", |spans| {
        let turns: Vec<&Span> = spans.iter().filter(|s| s.name == "POST /api/chat/send").collect();
        if turns.len() != 2 {
            return None;
        }
        let trace = &turns.iter().find(|s| s.trace_id != send.trace_id).unwrap().trace_id;
        Some(spans.iter().filter(|s| &s.trace_id == trace).cloned().collect::<Vec<_>>())
    })
    .await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(!names.contains(&"obo.token"), "no exchange for a cached token: {names:?}");
    let [api_call] = spans.iter().filter(|s| s.name == "orders_api.call").collect::<Vec<_>>()[..] else {
        panic!("one call to orders-api in the second turn: {names:?}")
    };
    assert_eq!(attribute(api_call, attr::TOKEN_SOURCE).as_deref(), Some("cache"));

    // A call orders-api answers with an error is a failed dependency: orders-mcp's CLIENT span
    // says the status (`error.type` is the status code, and the span's status is Error, as
    // OpenTelemetry's HTTP conventions ask of a client span's 4xx), while orders-api's SERVER
    // span leaves a 4xx unset and is named after its route, not the order id.
    let events = browser.chat(&app, "show ORD-999").await;
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: true, .. })), "{events:?}");
    let missing = |s: &Span| attribute(s, "url.full").is_some_and(|u| u.ends_with("/api/orders/ORD-999"));
    let (call, served, tool_calls) = until_exported("the failed call", |spans| {
        let call = spans.iter().find(|s| missing(s))?;
        let served = spans.iter().find(|s| s.parent_span_id == call.span_id && s.kind == SpanKind::Server as i32)?;
        let tool_calls: Vec<Span> =
            spans.iter().filter(|s| s.trace_id == call.trace_id && s.name == "tools/call get_order").cloned().collect();
        (tool_calls.len() == 2).then(|| (call.clone(), served.clone(), tool_calls))
    })
    .await;
    assert_eq!(call.name, "orders_api.call");
    assert_eq!(attribute(&call, "http.response.status_code").as_deref(), Some("404"));
    assert_eq!(attribute(&call, "error.type").as_deref(), Some("404"));
    assert_eq!(call.status.as_ref().map(|s| s.code), Some(2), "a client span's 4xx is an error");
    assert_eq!(served.name, "GET /api/orders/{id}", "orders-api's span is named after its route");
    // The tool's result said `isError`: a failed tool execution on both MCP spans (chat-app's
    // and orders-mcp's).
    let mut kinds: Vec<i32> = tool_calls.iter().map(|s| s.kind).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [SpanKind::Server as i32, SpanKind::Client as i32],
        "chat-app's CLIENT and orders-mcp's SERVER span"
    );
    for span in &tool_calls {
        assert_eq!(attribute(span, "error.type").as_deref(), Some("tool_error"), "{}", span.kind);
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    }
    assert_eq!(attribute(&served, "http.route").as_deref(), Some("/api/orders/{id}"));
    assert_eq!(attribute(&served, "url.path").as_deref(), Some("/api/orders/ORD-999"));
    assert_eq!(attribute(&served, "http.response.status_code").as_deref(), Some("404"));
    assert_ne!(served.status.as_ref().map(|s| s.code), Some(2), "a server span's 4xx leaves its status unset");
}

/// A request span becomes the span of the operation it carries, in the trace a message names
/// (`service_kit::telemetry::context::carry_operation`, what orders-mcp's direct route does with
/// MCP's `_meta`), unless a span was already opened under it: that child is in the request
/// span's trace, so the request span keeps it, and the caller opens a span of its own.
#[tokio::test]
async fn a_request_span_carries_its_operation_unless_a_child_was_opened_under_it() {
    use service_kit::telemetry::context::{KeyValue as Attribute, carry_operation};
    telemetry();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{caller_trace}-{caller_span}-01");
    let from_meta = |key: &str| (key == "traceparent").then(|| traceparent.clone());
    let operation = |tool: &str| (format!("tools/call {tool}"), [Attribute::new("tool", tool.to_owned())]);

    let plain = tracing::info_span!("request", otel.name = "POST /carry-plain", otel.kind = "server");
    let carried = plain.in_scope(|| carry_operation(&plain, || operation("carried"), from_meta));
    assert!(carried, "a request span with no child carries the operation");
    drop(plain);

    let busy = tracing::info_span!("request", otel.name = "POST /carry-busy", otel.kind = "server");
    let child = tracing::info_span!(parent: &busy, "carry.child");
    let carried = busy.in_scope(|| carry_operation(&busy, || operation("refused"), from_meta));
    assert!(!carried, "a span was opened under it: it keeps its own trace");
    drop((child, busy));

    let (carried, busy, child, renamed) = until_exported("the spans", |spans| {
        let find = |name: &str| spans.iter().find(|s| s.name == name).cloned();
        let renamed = spans.iter().any(|s| s.name == "tools/call refused");
        Some((find("tools/call carried")?, find("POST /carry-busy")?, find("carry.child")?, renamed))
    })
    .await;
    assert_eq!(hex(&carried.trace_id), caller_trace, "in the trace `_meta` named");
    assert_eq!(hex(&carried.parent_span_id), caller_span, "a child of the caller's span");
    assert_eq!(attribute(&carried, "tool").as_deref(), Some("carried"));
    assert_eq!(carried.kind, SpanKind::Server as i32);
    assert!(!renamed, "the span with a child was not renamed");
    assert_ne!(hex(&busy.trace_id), caller_trace);
    assert_eq!(child.trace_id, busy.trace_id, "the child is still in its parent's trace");
    assert_eq!(child.parent_span_id, busy.span_id);
}

/// Every service's request span is named and described as OpenTelemetry's HTTP conventions say
/// ("Semantic conventions for HTTP spans", opentelemetry.io/docs/specs/semconv/http/http-spans):
/// `{method} {http.route}` after the route matched, `{method}` when none was ("Instrumentation
/// MUST NOT default to using URI path"; a name with an order id in it would make each order its
/// own operation in Application Insights), `_OTHER` and the name `HTTP` for a method outside
/// RFC 9110's, `url.scheme` as a proxy received the request (`X-Forwarded-Proto`), and a 5xx's
/// `error.type`. Never the query string.
#[tokio::test]
async fn request_spans_are_named_after_the_matched_route_not_the_path() {
    use axum::http::StatusCode;
    use axum::routing::{any, get};
    telemetry();
    let app = axum::Router::new()
        .route("/spans/orders/{id}", get(|| async { "an order" }))
        .route("/spans/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/spans/any", any(|| async { "any method" }))
        .route("/spans/long", any(|| async { "any method" }))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(service_kit::serve::request_spans());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let send = |method: &str, path: &str| {
        client.request(method.parse().unwrap(), format!("{base}{path}")).header("x-forwarded-proto", "https")
    };
    assert_eq!(send("GET", "/spans/orders/ORD-7?code=secret-code").send().await.unwrap().status(), 200);
    assert_eq!(send("GET", "/spans/nowhere/ORD-8").send().await.unwrap().status(), 404);
    assert_eq!(send("PURGE", "/spans/any").send().await.unwrap().status(), 200);
    let long_method = "X".repeat(40);
    assert_eq!(send(&long_method, "/spans/long").send().await.unwrap().status(), 200);
    let broken = client.get(format!("{base}/spans/broken")).send().await.unwrap();
    assert_eq!(broken.status(), 500);
    server.abort();

    let paths = ["/spans/orders/ORD-7", "/spans/nowhere/ORD-8", "/spans/any", "/spans/broken", "/spans/long"];
    let spans = until_exported("the request spans", |spans| {
        let by_path = |path: &&str| spans.iter().find(|s| attribute(s, "url.path").as_deref() == Some(*path)).cloned();
        paths.iter().map(by_path).collect::<Option<Vec<Span>>>()
    })
    .await;
    let [order, nowhere, purge, broken, long] = &spans[..] else { unreachable!() };

    assert_eq!(order.name, "GET /spans/orders/{id}", "named after the route, not the path");
    assert_eq!(order.kind, SpanKind::Server as i32);
    assert_eq!(attribute(order, "http.route").as_deref(), Some("/spans/orders/{id}"));
    assert_eq!(attribute(order, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(attribute(order, "http.request.method_original"), None, "only for a method recorded as _OTHER");
    assert_eq!(attribute(order, "url.scheme").as_deref(), Some("https"), "as the proxy received it");
    assert_eq!(attribute(order, "http.response.status_code").as_deref(), Some("200"));
    assert_eq!(attribute(order, "error.type"), None);
    assert!(
        !everything_exported(&Received { spans: vec![order.clone()], ..Received::default() }).contains("secret-code")
    );

    assert_eq!(nowhere.name, "GET", "no route matched: the method alone");
    assert_eq!(attribute(nowhere, "http.route"), None, "the path never stands in for a route");
    assert_eq!(attribute(nowhere, "http.response.status_code").as_deref(), Some("404"));
    assert_eq!(attribute(nowhere, "error.type"), None, "a 4xx is the client's, not a failed server span");
    assert_ne!(nowhere.status.as_ref().map(|s| s.code), Some(2), "a 4xx leaves a server span's status unset");

    assert_eq!(purge.name, "HTTP /spans/any", "a method outside RFC 9110's does not name spans");
    assert_eq!(attribute(purge, "http.request.method").as_deref(), Some("_OTHER"));
    assert_eq!(attribute(purge, "http.request.method_original").as_deref(), Some("PURGE"));
    assert_eq!(attribute(long, "http.request.method").as_deref(), Some("_OTHER"));
    assert_eq!(attribute(long, "http.request.method_original"), None, "a long method is not copied into the span");

    assert_eq!(broken.name, "GET /spans/broken");
    assert_eq!(attribute(broken, "url.scheme").as_deref(), Some("http"), "no proxy, no TLS: http");
    assert_eq!(attribute(broken, "error.type").as_deref(), Some("500"));
    assert_eq!(broken.status.as_ref().map(|s| s.code), Some(2), "a 5xx marks the span failed");
}
