//! orders-mcp through rmcp's client, as chat-app talks to it: a Streamable HTTP session
//! authenticated with a bearer token. As the user: initialize, list the tools, call one and
//! read the hops it reports. As an app: refused.

use entra_auth::hop::{Hop, How, MCP_META_KEY};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientJsonRpcMessage, ClientRequest,
    Implementation, InitializeRequest, JsonObject, RequestId,
};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use url::Url;

use super::http::Http;
use super::refusal::{INSUFFICIENT_SCOPE, names_insufficient_scope};
use super::report::{Check, Report};

/// The tools orders-mcp must offer.
const TOOLS: [&str; 5] = ["whoami", "list_orders", "get_order", "create_order", "cancel_order"];

type Session = RunningService<RoleClient, ClientConfig>;

fn client_config() -> ClientConfig {
    ClientConfig::new(ClientCapabilities::default(), Implementation::new("xtask-verify", env!("CARGO_PKG_VERSION")))
}

/// The first message rmcp's client sends, for the checks that send it without a token.
pub fn initialize_request() -> ClientJsonRpcMessage {
    ClientJsonRpcMessage::request(
        ClientRequest::InitializeRequest(InitializeRequest::new(client_config())),
        RequestId::Number(1),
    )
}

async fn connect(http: &Http, url: &Url, token: &str) -> Result<Session, ClientInitializeError> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str()).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(http.client().clone(), config);
    client_config().serve(transport).await
}

/// A session with the user's token: its tools, and `list_orders` (only the user's orders, and
/// the hop chain). `None` when no session could be opened: the later checks need one.
pub async fn as_user(http: &Http, url: &Url, token: &str, oid: &str, report: &mut Report) -> Option<()> {
    let session = connect(http, url, token).await.map_err(|e| e.to_string());
    let session = report.record("MCP initialize with a user token", session, server)?;
    let tools = session.list_all_tools().await.map_err(|e| e.to_string()).and_then(|tools| {
        let names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        match TOOLS.iter().find(|t| !names.iter().any(|n| n == *t)) {
            Some(missing) => Err(format!("no {missing} tool in {names:?}")),
            None => Ok(names),
        }
    });
    report.record("tools/list", tools, |n| n.join(", "));
    let call = session
        .call_tool(CallToolRequestParams::new("list_orders").with_arguments(JsonObject::new()))
        .await
        .map_err(|e| e.to_string());
    report.record("list_orders returns only the caller's orders", own_orders(&call, oid), |n| {
        format!("{n} order(s), all alice's")
    });
    let hops = call.and_then(|r| hop_chain(&r, oid));
    report.record("hop chain on a tool call (same user, audience changes at OBO)", hops, |s| s.clone());
    Some(())
}

/// Who answered, and in which protocol version.
fn server(session: &Session) -> String {
    match session.peer_info() {
        Some(info) => {
            let name =
                info.server_info.as_ref().map_or_else(|| "a server".into(), |s| format!("{} {}", s.name, s.version));
            format!("{name}, protocol {}", info.protocol_version)
        }
        None => "no server info".into(),
    }
}

/// How many orders the call returned, all owned by `oid`.
fn own_orders(call: &Check<CallToolResult>, oid: &str) -> Check<usize> {
    let result = call.as_ref().map_err(Clone::clone)?;
    if result.is_error == Some(true) {
        return Err(format!("tool error: {}", json!(result.content)));
    }
    let orders = result.structured_content.as_ref().and_then(|s| s["orders"].as_array()).cloned().unwrap_or_default();
    match orders.iter().find(|o| o["owner_oid"].as_str() != Some(oid)) {
        Some(other) => Err(format!("alice sees someone else's order: {other}")),
        None => Ok(orders.len()),
    }
}

/// orders-mcp's hop, then orders-api's: the same user, another audience, exchanged by OBO.
fn hop_chain(result: &CallToolResult, oid: &str) -> Check<String> {
    let reported = result.meta.as_ref().and_then(|m| m.get(MCP_META_KEY)).cloned().unwrap_or(Value::Null);
    let hops: Vec<Hop> = serde_json::from_value(reported).map_err(|e| format!("no hops in _meta: {e}"))?;
    match hops.as_slice() {
        [mcp, api, ..] => {
            let same_user = mcp.token.oid == api.token.oid && mcp.token.oid == oid;
            let audience_changed = mcp.token.aud != api.token.aud;
            if same_user && audience_changed && api.how == How::Obo {
                Ok(format!("{} → {} (OBO), same user", mcp.token.aud, api.token.aud))
            } else {
                Err(format!("unexpected chain: {hops:?}"))
            }
        }
        _ => Err(format!("expected orders-mcp and orders-api hops, got {}", hops.len())),
    }
}

/// An app-only token (no user) must not open a session: 403 `insufficient_scope`.
pub async fn app_only_refused(http: &Http, url: &Url, token: Check<String>, report: &mut Report) {
    let refused = match token {
        Ok(token) => insufficient_scope(connect(http, url, &token).await),
        Err(e) => Err(e),
    };
    report.record("app-only token refused by orders-mcp (403)", refused, |s| s.clone());
}

fn insufficient_scope(connected: Result<Session, ClientInitializeError>) -> Check<String> {
    let error = match connected {
        Ok(_) => return Err("the session was opened".into()),
        Err(error) => error,
    };
    // rmcp's transport reports a 401 as "authorization required", a 403 only by its challenge.
    match (error.auth_challenge(), error.is_authorization_required()) {
        (Some(challenge), false) if names_insufficient_scope(challenge) => Ok(INSUFFICIENT_SCOPE.into()),
        (Some(challenge), unauthorized) => Err(format!("{} {challenge}", if unauthorized { 401 } else { 403 })),
        (None, _) => Err(error.to_string()),
    }
}

/// MCP Streamable HTTP: servers must validate `Origin`. A browser page of another site, even
/// with a valid token, is refused.
pub async fn foreign_origin_refused(http: &Http, url: &Url, token: &str, report: &mut Report) {
    let body = serde_json::to_string(&initialize_request()).map_err(|e| e.to_string());
    let answer = match body {
        Ok(body) => http
            .client()
            .post(url.as_str())
            .bearer_auth(token)
            .header("origin", "https://evil.example")
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    report.record(
        ORIGIN_REFUSED,
        answer.and_then(|r| if r.status() == 403 { Ok(()) } else { Err(format!("{}", r.status())) }),
        |_| "403".into(),
    );
}

pub const ORIGIN_REFUSED: &str = "orders-mcp refuses a foreign browser Origin (403)";
