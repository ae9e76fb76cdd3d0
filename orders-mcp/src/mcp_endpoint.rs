//! `/mcp`: rmcp's Streamable HTTP service, with a direct route for the message that is nearly all
//! of the traffic, a stateless `tools/call`.
//!
//! rmcp answers each stateless request by standing up a service for it: the message parsed
//! through `serde_json::Value`, a peer with a 1024-slot channel, three tasks, channels and
//! cancellation tokens between them. That was most of orders-mcp's CPU per tool call (README,
//! "where the time goes"). The direct route recognises two exact shapes of a `POST` sending and
//! accepting JSON, with no session, no `Origin`, an allowed `Host` and a `Content-Length` within
//! the limit:
//!
//! - from a client on a revision before 2026-07-28 (or naming none), with no other `Mcp-*`
//!   header, a body that reads as `{"jsonrpc":"2.0","id":…,"method":"tools/call","params":
//!   {"name":…,"arguments":…}}`;
//! - from a 2026-07-28 client, as rmcp's client sends it (chat-app's calls): `MCP-Protocol-Version:
//!   2026-07-28`, `Mcp-Method: tools/call` and `Mcp-Name` equal to the tool's name (one of each,
//!   no other `Mcp-*` header), and the same body with a `_meta` carrying exactly what 2026-07-28
//!   requires and nothing else rmcp would act on: `io.modelcontextprotocol/protocolVersion`
//!   `2026-07-28`, `io.modelcontextprotocol/clientCapabilities`, and optionally
//!   `io.modelcontextprotocol/clientInfo`, `progressToken`, `traceparent` and `tracestate`
//!   (checked with rmcp's own accessors, so a value rmcp would not decode sends the call to rmcp).
//!
//! In both the arguments must parse. The route answers by running the same tool code
//! ([`OrdersTools::call`]) in the request's own span, named and parented as rmcp's handler's
//! span is ([`call_span`]; `service_kit::telemetry::context::carry_operation`), and writing the
//! JSON rmcp's handler writes for that result on that revision (without rmcp's `Value` trees:
//! [`crate::tool_result`]). Anything else, including everything that would be refused (a header that
//! disagrees with the body, a Base64-encoded `Mcp-Name`, a revision rmcp does not serve), goes to
//! rmcp unchanged (with the body already read), so rmcp stays the judge of the protocol;
//! `tests/api/mcp_endpoint.rs` checks that both routes answer the same calls the same way.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{JsonObject, ProtocolVersion, RequestId, RequestMetaObject};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use serde::Deserialize;
use service_kit::telemetry::context::carry_operation;
use tracing::{Instrument, Span};

use crate::auth::Authenticated;
use crate::configuration::AllowedHosts;
use crate::tools::{OrdersTools, ToolCall, call_attributes, call_span, from_object, trace_context_in};

/// The revisions before 2026-07-28 the direct route answers (and no header at all, which rmcp
/// reads as 2025-03-26): a stateless tool call means the same in each.
const LEGACY_REVISIONS: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25"];
/// The revision whose calls carry their revision and client in `_meta` and mirror the method and
/// tool name in `Mcp-Method`/`Mcp-Name` ("Streamable HTTP", "Request Metadata"; SEP-2243).
const MODERN_REVISION: &str = "2026-07-28";
const MCP_METHOD: &str = "mcp-method";
const MCP_NAME: &str = "mcp-name";
/// The `_meta` keys a direct 2026-07-28 call may carry: what the revision requires, the client's
/// name, W3C Trace Context, and the progress token rmcp's client puts on every request (these
/// tools report no progress, so it changes nothing). Any other (a log level, ...) is rmcp's.
const MODERN_META_KEYS: &[&str] = &[
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/clientInfo",
    "traceparent",
    "tracestate",
    "progressToken",
];

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

/// The MCP endpoint: rmcp's service, and what the direct route needs.
pub struct McpEndpoint {
    rmcp: StreamableHttpService<OrdersTools, NeverSessionManager>,
    tools: OrdersTools,
    allowed_hosts: AllowedHosts,
    max_body: usize,
}

impl McpEndpoint {
    pub fn new(
        rmcp: StreamableHttpService<OrdersTools, NeverSessionManager>,
        tools: OrdersTools,
        allowed_hosts: AllowedHosts,
        max_body: usize,
    ) -> McpEndpoint {
        McpEndpoint { rmcp, tools, allowed_hosts, max_body }
    }

    /// Which direct shape the request's method and headers are, if any. Every check errs
    /// towards `None`: a request that fails one is rmcp's, which accepts or refuses it by the
    /// rules of its revision.
    fn direct_shape<'h>(&self, method: &Method, headers: &'h HeaderMap) -> Option<Shape<'h>> {
        let only = |name: &str| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value.to_str().ok(),
                _ => None,
            }
        };
        let shape = match only("mcp-protocol-version") {
            Some(MODERN_REVISION) => {
                if only(MCP_METHOD) != Some("tools/call") {
                    return None;
                }
                Shape::Modern { tool: only(MCP_NAME)? }
            }
            Some(revision) if LEGACY_REVISIONS.contains(&revision) => Shape::Legacy,
            None if !headers.contains_key("mcp-protocol-version") => Shape::Legacy,
            _ => return None,
        };
        let content_type_ok = only(header::CONTENT_TYPE.as_str()).is_some_and(|v| v.eq_ignore_ascii_case(JSON));
        let length_ok = only(header::CONTENT_LENGTH.as_str())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|length| length <= self.max_body);
        let accept_ok = only(header::ACCEPT.as_str()).is_some_and(accepts_json_and_event_stream);
        let host_ok = only(header::HOST.as_str()).is_some_and(|host| self.host_allowed(host));
        // A session id, `Mcp-Param-*`, or the standard headers on a legacy call: rmcp checks
        // them against the body.
        let mirrored = |name: &str| matches!(shape, Shape::Modern { .. }) && (name == MCP_METHOD || name == MCP_NAME);
        let other_mcp_headers = headers.keys().any(|name| {
            name.as_str().starts_with("mcp-") && name.as_str() != "mcp-protocol-version" && !mirrored(name.as_str())
        });
        let plain = method == Method::POST
            && content_type_ok
            && length_ok
            && accept_ok
            && host_ok
            && !other_mcp_headers
            && !headers.contains_key(header::ORIGIN);
        plain.then_some(shape)
    }

    /// `Host` is one of the allowed host names, with or without a port. It is read as rmcp
    /// reads it (`http::uri::Authority`, so `[::1]@attacker.example` names `attacker.example`),
    /// and one it cannot read is rmcp's to refuse, whatever the allowed hosts. (Allowed entries
    /// that name a port are matched by rmcp.)
    fn host_allowed(&self, host: &str) -> bool {
        let Ok(authority) = Authority::try_from(host) else {
            return false;
        };
        let AllowedHosts::Only(allowed) = &self.allowed_hosts else {
            return true;
        };
        let name = authority.host().trim_start_matches('[').trim_end_matches(']');
        allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
    }
}

/// `Accept` lists both JSON and the event stream, as rmcp requires, in its plainest form: any
/// parameter (a `q` weight) sends the request to rmcp, which weighs them.
fn accepts_json_and_event_stream(accept: &str) -> bool {
    let (mut json, mut event_stream) = (false, false);
    for range in accept.split(',').map(str::trim) {
        if range.contains(';') {
            return false;
        }
        json |= range.eq_ignore_ascii_case(JSON);
        event_stream |= range.eq_ignore_ascii_case(EVENT_STREAM);
    }
    json && event_stream
}

/// The two request shapes the direct route answers.
#[derive(Clone, Copy)]
enum Shape<'h> {
    /// A revision before 2026-07-28: no `_meta`.
    Legacy,
    /// 2026-07-28, with the `Mcp-Name` header's value.
    Modern { tool: &'h str },
}

/// A JSON-RPC `tools/call` request with nothing else in it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, bound = "P: Deserialize<'de>")]
struct ToolCallRequest<P> {
    // Read only to check them: "2.0" and "tools/call".
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion,
    id: RequestId,
    #[serde(rename = "method")]
    _method: ToolsCallMethod,
    #[serde(deserialize_with = "from_object")]
    params: P,
}

impl<'de, P: Deserialize<'de>> ToolCallRequest<P> {
    /// The request, if the body is one JSON object in this shape (not its fields as an array,
    /// which serde's derive would also take and rmcp refuses).
    fn read(body: &'de [u8]) -> Option<ToolCallRequest<P>> {
        let mut body = serde_json::Deserializer::from_slice(body);
        let request = from_object(&mut body).ok()?;
        body.end().ok()?;
        Some(request)
    }
}

/// A 2026-07-28 call's `params`: the tool, its arguments and the request's `_meta`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModernParams {
    name: String,
    arguments: Option<JsonObject>,
    #[serde(rename = "_meta")]
    meta: RequestMetaObject,
}

impl ModernParams {
    /// The call, when rmcp would dispatch it as it is: `_meta` as 2026-07-28 requires (by
    /// rmcp's own checks) with only the keys in [`MODERN_META_KEYS`], the `Mcp-Name` header
    /// equal to the tool's name, and arguments that parse.
    fn into_call(self, header_tool: &str) -> Option<(ToolCall, RequestMetaObject)> {
        let meta = self.meta;
        let meta_ok = meta.keys().all(|key| MODERN_META_KEYS.contains(&key.as_str()))
            && meta.protocol_version() == Some(ProtocolVersion::V_2026_07_28)
            && meta.missing_required_keys(&ProtocolVersion::V_2026_07_28).is_empty()
            && (!meta.contains_key("io.modelcontextprotocol/clientInfo") || meta.client_info().is_some())
            && (!meta.contains_key("progressToken") || meta.get_progress_token().is_some());
        if !meta_ok || header_tool != self.name {
            return None;
        }
        let mut call = JsonObject::new();
        call.insert("name".into(), self.name.into());
        if let Some(arguments) = self.arguments {
            call.insert("arguments".into(), arguments.into());
        }
        let call = serde_json::from_value(call.into()).ok()?;
        Some((call, meta))
    }
}

#[derive(Deserialize)]
enum JsonRpcVersion {
    #[serde(rename = "2.0")]
    V2,
}

#[derive(Deserialize)]
enum ToolsCallMethod {
    #[serde(rename = "tools/call")]
    ToolsCall,
}

/// The handler of `/mcp` (every method), behind the authentication middleware.
pub async fn serve(State(endpoint): State<Arc<McpEndpoint>>, request: Request) -> Response {
    let Some(shape) = endpoint.direct_shape(request.method(), request.headers()) else {
        return endpoint.rmcp.handle(request).await.into_response();
    };
    // The `Mcp-Name` value outlives the request's headers, which go to rmcp on a fallback.
    let modern_tool = match shape {
        Shape::Legacy => None,
        Shape::Modern { tool } => Some(tool.to_owned()),
    };
    let (parts, body) = request.into_parts();
    // Within the limit: `Content-Length` said so, and hyper holds the body to it.
    let Ok(bytes) = axum::body::to_bytes(body, endpoint.max_body).await else {
        return (StatusCode::BAD_REQUEST, "Bad Request: the request body could not be read").into_response();
    };
    let who = parts.extensions.get::<Arc<Authenticated>>().cloned();
    let read = match &modern_tool {
        None => ToolCallRequest::<ToolCall>::read(&bytes).map(|r| (r.id, r.params, None)),
        Some(tool) => ToolCallRequest::<ModernParams>::read(&bytes)
            .and_then(|r| r.params.into_call(tool).map(|(call, meta)| (r.id, call, Some(meta)))),
    };
    let (Some((id, call, meta)), Some(who)) = (read, who) else {
        return endpoint.rmcp.handle(Request::from_parts(parts, Body::from(bytes))).await.into_response();
    };
    // The request's span becomes the call's, in the client's trace (`_meta`), rather than the
    // call being a span under a one-span trace of the request; if it cannot, the call gets its
    // own span as on rmcp's route.
    let request_span = Span::current();
    let tool = call.name();
    let carried = carry_operation(
        &request_span,
        || (format!("tools/call {tool}"), call_attributes(tool, &id)),
        trace_context_in(meta.as_deref()),
    );
    let result = if carried {
        endpoint.tools.call(&who, call).await
    } else {
        let span = call_span(tool, &id, meta.as_deref());
        endpoint.tools.call(&who, call).instrument(span).await
    };
    // As rmcp's handler finishes a result for a peer on 2026-07-28 (`_meta`) or before.
    match serde_json::to_vec(&result.response(&id, meta.is_some())) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a tool result");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;

    use super::*;
    use crate::configuration::Downstream;
    use crate::orders_api::{OrdersApi, TokenSource};

    fn endpoint() -> McpEndpoint {
        let base = url::Url::parse("http://127.0.0.1:9/").unwrap();
        let api = OrdersApi::new(base, Duration::from_secs(1), TokenSource::Passthrough).unwrap();
        let tools = OrdersTools::new(Arc::new(api), Downstream::Passthrough);
        let factory = tools.clone();
        let rmcp = StreamableHttpService::new(
            move || Ok(factory.clone()),
            Arc::new(NeverSessionManager::default()),
            StreamableHttpServerConfig::default(),
        );
        let allowed = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        McpEndpoint::new(rmcp, tools, AllowedHosts::Only(allowed), 4096)
    }

    /// The headers rmcp's Streamable HTTP client sends with a 2026-07-28 `tools/call` (its
    /// `post_message`, and the SEP-2243 headers it mirrors from the body).
    fn modern_headers(tool: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "localhost:3001"),
            ("accept", "text/event-stream, application/json"),
            ("content-type", "application/json"),
            ("content-length", "300"),
            ("authorization", "Bearer x"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ] {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    const MODERN_CALL: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"ORD-001"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"chat-app","version":"0.1.0"},"io.modelcontextprotocol/clientCapabilities":{},"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","progressToken":0}}}"#;

    fn read_modern(body: &str, tool: &str) -> bool {
        ToolCallRequest::<ModernParams>::read(body.as_bytes()).and_then(|r| r.params.into_call(tool)).is_some()
    }

    #[test]
    fn revision_2026_07_28_calls_as_rmcp_clients_send_them_are_read_directly() {
        let endpoint = endpoint();
        let headers = modern_headers("get_order");
        assert!(matches!(endpoint.direct_shape(&Method::POST, &headers), Some(Shape::Modern { tool: "get_order" })));
        assert!(read_modern(MODERN_CALL, "get_order"));
        // Without trace context, or without the optional client name.
        let mut call: serde_json::Value = serde_json::from_str(MODERN_CALL).unwrap();
        let meta = call["params"]["_meta"].as_object_mut().unwrap();
        meta.remove("traceparent");
        meta.remove("progressToken");
        meta.remove("io.modelcontextprotocol/clientInfo");
        assert!(read_modern(&call.to_string(), "get_order"));
    }

    #[test]
    fn revision_2026_07_28_calls_rmcp_must_judge_are_left_to_it() {
        let endpoint = endpoint();
        let shape = |headers: &HeaderMap| endpoint.direct_shape(&Method::POST, headers).is_some();
        for (name, value) in [("mcp-method", "tools/list"), ("mcp-protocol-version", "2099-01-01")] {
            let mut headers = modern_headers("get_order");
            headers.insert(name, HeaderValue::from_static(value));
            assert!(!shape(&headers), "{name}: {value}");
        }
        for (name, value) in [("mcp-name", "get_order"), ("mcp-session-id", "s"), ("mcp-param-id", "ORD-001")] {
            let mut headers = modern_headers("get_order");
            headers.append(name, HeaderValue::from_static(value));
            assert!(!shape(&headers), "{name}: {value}");
        }
        let mut headers = modern_headers("get_order");
        headers.remove("mcp-name");
        assert!(!shape(&headers));
        // The standard headers on a legacy call: rmcp decides what they mean there.
        let mut headers = modern_headers("get_order");
        headers.insert("mcp-protocol-version", HeaderValue::from_static("2025-11-25"));
        assert!(!shape(&headers));

        // `Mcp-Name` names another tool (or encodes it); `_meta` short of 2026-07-28's rules or
        // carrying more; arguments that do not parse.
        assert!(!read_modern(MODERN_CALL, "cancel_order"));
        assert!(!read_modern(MODERN_CALL, "=?base64?Z2V0X29yZGVy?="));
        let changed = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut call: serde_json::Value = serde_json::from_str(MODERN_CALL).unwrap();
            edit(&mut call);
            read_modern(&call.to_string(), "get_order")
        };
        let meta = "_meta";
        assert!(!changed(&|c| c["params"][meta]["io.modelcontextprotocol/protocolVersion"] = "2025-11-25".into()));
        assert!(!changed(&|c| {
            c["params"][meta].as_object_mut().unwrap().remove("io.modelcontextprotocol/clientCapabilities");
        }));
        assert!(!changed(&|c| c["params"][meta]["io.modelcontextprotocol/clientCapabilities"] = 1.into()));
        assert!(!changed(&|c| c["params"][meta]["io.modelcontextprotocol/clientInfo"] = "x".into()));
        assert!(!changed(&|c| c["params"][meta]["progressToken"] = serde_json::json!({})));
        assert!(!changed(&|c| c["params"][meta]["io.modelcontextprotocol/logLevel"] = "debug".into()));
        assert!(!changed(&|c| c["params"]["arguments"]["id"] = 7.into()));
        assert!(!changed(&|c| c["params"]["task"] = serde_json::json!({})));
        assert!(!changed(&|c| {
            c["params"].as_object_mut().unwrap().remove(meta);
        }));
        // The request or its `params` as an array of their fields in order (serde's derive
        // takes both).
        let call: serde_json::Value = serde_json::from_str(MODERN_CALL).unwrap();
        let fields = |object: &serde_json::Value, names: &[&str]| {
            serde_json::Value::Array(names.iter().map(|name| object[name].clone()).collect())
        };
        let params = fields(&call["params"], &["name", "arguments", meta]);
        assert!(!read_modern(&fields(&call, &["jsonrpc", "id", "method", "params"]).to_string(), "get_order"));
        let mut positional = call.clone();
        positional["params"] = params;
        assert!(!read_modern(&positional.to_string(), "get_order"));
    }

    #[test]
    fn the_host_is_read_as_rmcp_reads_it() {
        let endpoint = endpoint();
        for host in ["localhost", "LocalHost:3001", "127.0.0.1:3001", "[::1]:3001", "[::1]"] {
            assert!(endpoint.host_allowed(host), "{host}");
        }
        // Another host, one behind user information, and what is not an authority at all.
        for host in ["attacker.example", "[::1]@attacker.example", "localhost@attacker.example", "local host", ""] {
            assert!(!endpoint.host_allowed(host), "{host}");
        }
        let any = McpEndpoint { allowed_hosts: AllowedHosts::Any, ..endpoint };
        assert!(any.host_allowed("attacker.example"));
        assert!(!any.host_allowed("local host"), "rmcp refuses it (400) whatever the allowed hosts");
    }

    #[test]
    fn accept_headers_with_weights_are_left_to_rmcp() {
        assert!(accepts_json_and_event_stream("application/json, text/event-stream"));
        assert!(accepts_json_and_event_stream("text/event-stream,application/json"));
        assert!(!accepts_json_and_event_stream("application/json"));
        assert!(!accepts_json_and_event_stream("application/json;q=0, text/event-stream"));
        assert!(!accepts_json_and_event_stream("*/*"));
    }

    #[test]
    fn only_plain_tool_calls_are_read_directly() {
        let read = |body: &str| ToolCallRequest::<ToolCall>::read(body.as_bytes()).is_some();
        assert!(read(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"ORD-001"}}}"#
        ));
        assert!(read(
            r#"{"method":"tools/call","params":{"arguments":{"id":"x"},"name":"get_order"},"id":"a","jsonrpc":"2.0"}"#
        ));
        assert!(read(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}"#));
        for other in [
            // another method, a notification, a batch, another JSON-RPC version
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"}}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"}}}]"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"}}}"#,
            // per-request metadata, tasks, an unknown tool, arguments that do not parse
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"},"_meta":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"},"task":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"drop_tables","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":7}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"}}}"#,
            // fields as arrays, which serde's derive takes and rmcp refuses; trailing text
            r#"["2.0",1,"tools/call",{"name":"create_order","arguments":{"product":"Keyboard","quantity":1}}]"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["get_order",{"id":"ORD-001"}]}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"cancel_order","arguments":["ORD-001"]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"x"}}} {}"#,
        ] {
            assert!(!read(other), "{other}");
        }
    }
}
