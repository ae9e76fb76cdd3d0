//! `/mcp`: rmcp's Streamable HTTP service, with a direct route for the message that is nearly all
//! of the traffic, a stateless `tools/call`.
//!
//! rmcp answers each stateless request by standing up a service for it: the message parsed
//! through `serde_json::Value`, a peer with a 1024-slot channel, three tasks, channels and
//! cancellation tokens between them. That was most of orders-mcp's CPU per tool call (README,
//! "where the time goes"). The direct route recognises one exact shape: a `POST` sending and
//! accepting JSON, from a client on a revision before 2026-07-28 (or naming none), with no
//! session, no `Origin`, an allowed `Host`, no other `Mcp-*` header, a `Content-Length` within the
//! limit, and a body that reads as `{"jsonrpc":"2.0","id":…,"method":"tools/call","params":
//! {"name":…,"arguments":…}}` with arguments that parse. It answers by running the same tool
//! code ([`OrdersTools::call`]) and serialising rmcp's own response type, stripped for a legacy
//! peer with rmcp's own functions, as rmcp's handler does. Anything else, including everything
//! that would be refused, goes to rmcp unchanged (with the body already read), so rmcp stays the
//! judge of the protocol; `tests/api/mcp_endpoint.rs` checks that both routes answer the same
//! call with the same bytes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{RequestId, ServerJsonRpcMessage, ServerResult};
use rmcp::transport::streamable_http_server::StreamableHttpService;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use serde::Deserialize;

use crate::auth::Authenticated;
use crate::configuration::AllowedHosts;
use crate::tools::{OrdersTools, ToolCall};

/// The protocol revisions the direct route answers (and no header at all, which rmcp reads as
/// 2025-03-26). Before 2026-07-28 a stateless tool call means the same in each; from 2026-07-28
/// on, per-request `_meta`, standard headers and result shapes apply, and rmcp handles them.
const DIRECT_REVISIONS: &[&str] = &["2025-03-26", "2025-06-18", "2025-11-25"];

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

    /// Whether the request's method and headers are those of a plain stateless call. Every
    /// check errs towards `false`: a request that fails one is rmcp's, which accepts or refuses
    /// it by the rules of its revision.
    fn direct_headers(&self, method: &Method, headers: &HeaderMap) -> bool {
        let only = |name: header::HeaderName| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value.to_str().ok(),
                _ => None,
            }
        };
        let revision_ok = match only(header::HeaderName::from_static("mcp-protocol-version")) {
            Some(revision) => DIRECT_REVISIONS.contains(&revision),
            None => !headers.contains_key("mcp-protocol-version"),
        };
        let content_type_ok = only(header::CONTENT_TYPE).is_some_and(|v| v.eq_ignore_ascii_case(JSON));
        let length_ok = only(header::CONTENT_LENGTH)
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|length| length <= self.max_body);
        let accept_ok = only(header::ACCEPT).is_some_and(accepts_json_and_event_stream);
        let host_ok = only(header::HOST).is_some_and(|host| self.host_allowed(host));
        // SEP-2243's standard headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`), a session id:
        // rmcp checks them against the body.
        let other_mcp_headers =
            headers.keys().any(|name| name.as_str().starts_with("mcp-") && name.as_str() != "mcp-protocol-version");
        method == Method::POST
            && revision_ok
            && content_type_ok
            && length_ok
            && accept_ok
            && host_ok
            && !other_mcp_headers
            && !headers.contains_key(header::ORIGIN)
    }

    /// `Host` is one of the allowed host names, with or without a port. (Allowed entries that
    /// name a port are matched by rmcp.)
    fn host_allowed(&self, host: &str) -> bool {
        let AllowedHosts::Only(allowed) = &self.allowed_hosts else {
            return true;
        };
        let name = match host.strip_prefix('[') {
            // `[::1]:3001`
            Some(v6) => v6.split_once(']').map(|(name, _)| name),
            None => Some(match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            }),
        };
        name.is_some_and(|name| allowed.iter().any(|a| a.eq_ignore_ascii_case(name)))
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

/// A JSON-RPC `tools/call` request with nothing else in it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallRequest {
    // Read only to check them: "2.0" and "tools/call".
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion,
    id: RequestId,
    #[serde(rename = "method")]
    _method: ToolsCallMethod,
    params: ToolCall,
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
    if !endpoint.direct_headers(request.method(), request.headers()) {
        return endpoint.rmcp.handle(request).await.into_response();
    }
    let (parts, body) = request.into_parts();
    // Within the limit: `Content-Length` said so, and hyper holds the body to it.
    let Ok(bytes) = axum::body::to_bytes(body, endpoint.max_body).await else {
        return (StatusCode::BAD_REQUEST, "Bad Request: the request body could not be read").into_response();
    };
    let who = parts.extensions.get::<Arc<Authenticated>>().cloned();
    let (Ok(call), Some(who)) = (serde_json::from_slice::<ToolCallRequest>(&bytes), who) else {
        return endpoint.rmcp.handle(Request::from_parts(parts, Body::from(bytes))).await.into_response();
    };
    let mut result = ServerResult::CallToolResult(endpoint.tools.call(&who, call.params).await);
    // What rmcp's handler does for a peer on a revision before 2026-07-28.
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    match serde_json::to_vec(&ServerJsonRpcMessage::response(result, call.id)) {
        Ok(body) => ([(header::CONTENT_TYPE, HeaderValue::from_static(JSON))], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise a tool result");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let read = |body: &str| serde_json::from_str::<ToolCallRequest>(body).is_ok();
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
        ] {
            assert!(!read(other), "{other}");
        }
    }
}
