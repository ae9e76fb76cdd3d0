//! The MCP client: a Streamable HTTP connection to orders-mcp, authenticated with the signed-in
//! user's own access token (audience orders-mcp, scope `access_as_user`), sent as it came from
//! sign-in. It lists the tools (the model's tool definitions come from here, never from a
//! hand-written copy) and calls them, collecting the identity trace of each call.
//!
//! It speaks MCP 2026-07-28 and falls back to an older server: it opens with `server/discover`
//! and, when the answer is not a 2026-07-28 error (an older server has no such method), with
//! `initialize` at 2025-11-25 (the server may answer an older revision it supports). This is
//! the "dual-era" client of the 2026-07-28 specification ("Versioning", "Backward Compatibility
//! with Initialization-Based Versions"; "Streamable HTTP", "Backward Compatibility"); rmcp
//! implements the probe, the per-request `_meta` and the `Mcp-Method`/`Mcp-Name` headers.

use std::time::{Duration, Instant};

use entra_auth::acquire::AccessToken;
use entra_auth::claims_challenge::{ClaimsChallenge, MCP_META_KEY as CLAIMS_CHALLENGE_META_KEY};
use entra_auth::hop::{Decision, Hop, How, MCP_META_KEY, TokenSummary};
use entra_auth::span_attributes;
use rmcp::ServiceError;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, JsonObject,
    ProtocolVersion, RequestMetaObject,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::{StreamableHttpClientTransportConfig, StreamableHttpError};
use serde_json::Value;
use service_kit::telemetry::context::record_error;
use tracing::field::Empty;
use url::Url;

/// The service name of chat-app's own hop in the trace.
pub const SERVICE: &str = "chat-app";

#[derive(Debug, Clone, thiserror::Error)]
pub enum McpError {
    #[error("orders-mcp is unavailable right now ({0}). Please try again in a moment.")]
    Unreachable(String),
    /// The server refused the token: signing in again gets a new one.
    #[error("orders-mcp refused your sign-in token. Please sign in again.")]
    Refused(String),
    #[error("orders-mcp answered unexpectedly: {0}")]
    Protocol(String),
}

/// A tool the server offers (from its `tools/list`), as the model is told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    /// The server's human-readable title (`title`, else the annotations' `title`), if any.
    pub title: Option<String>,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    /// The server annotates the tool `readOnlyHint: true`. Absent means it may change things
    /// (the annotation's default is `false`).
    pub read_only: bool,
    /// The server annotates the tool `idempotentHint: true`: calling it twice with the same
    /// arguments does what calling it once does (meaningful only when not read-only).
    pub idempotent: bool,
}

impl ToolSpec {
    /// Whether a call whose fate is unknown (sent, no answer) may be sent again: it changes
    /// nothing, or sending it twice does what sending it once does.
    fn may_resend(&self) -> bool {
        self.read_only || self.idempotent
    }
}

#[derive(Clone)]
pub struct McpConnector {
    url: Url,
    http: reqwest::Client,
}

/// What came back from one tool call.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// One line for people.
    pub summary: String,
    /// What the model reads: the structured result as JSON when there is one, else the text.
    pub for_model: String,
    pub is_error: bool,
    pub structured: Option<Value>,
    /// chat-app's hop, then those orders-mcp reported (its own, then orders-api's).
    pub hops: Vec<Hop>,
    /// The authentication contexts a failed call needs the user to step up for (a claims
    /// challenge orders-mcp passed back in `_meta`); empty otherwise. Only ids (`c1` ... `c99`)
    /// are kept: where to sign in comes from chat-app's configuration, never from the challenge.
    pub step_up: Vec<String>,
}

/// The revision chat-app asks for first.
pub const PREFERRED_REVISION: ProtocolVersion = ProtocolVersion::V_2026_07_28;
/// The revision its `initialize` offers a server that does not speak [`PREFERRED_REVISION`].
pub const LEGACY_REVISION: ProtocolVersion = ProtocolVersion::V_2025_11_25;

/// A connection to the MCP server for one user's token: on 2026-07-28 every request stands
/// alone; on an older revision it is the session `initialize` began.
pub struct McpSession {
    service: RunningService<RoleClient, ClientConfig>,
    /// What chat-app sends, summarised without validation (it is not the token's audience).
    sent: Option<TokenSummary>,
    /// To call again on a fresh connection when this one failed (see [`McpSession::call`]).
    connector: McpConnector,
    token: AccessToken,
}

impl McpConnector {
    pub fn new(url: Url, http: reqwest::Client) -> Self {
        McpConnector { url, http }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    #[tracing::instrument(name = "mcp.connect", skip_all, fields(url = %self.url))]
    pub async fn connect(&self, token: &AccessToken) -> Result<McpSession, McpError> {
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str()).auth_header(token.secret());
        let transport = StreamableHttpClientTransport::with_client(self.http.clone(), config);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("chat-app", env!("CARGO_PKG_VERSION")),
        );
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![PREFERRED_REVISION],
            legacy_version: Some(LEGACY_REVISION),
        };
        let service = info.serve_with_lifecycle(transport, lifecycle).await.map_err(|e| {
            if e.is_authorization_required() {
                McpError::Refused(e.to_string())
            } else {
                tracing::warn!(error = %e, url = %self.url, "cannot connect to orders-mcp");
                McpError::Unreachable(self.url.to_string())
            }
        })?;
        let session = McpSession {
            service,
            sent: TokenSummary::from_unverified(token.secret()),
            connector: self.clone(),
            token: token.clone(),
        };
        tracing::debug!(revision = ?session.revision().map(|v| v.to_string()), "connected to orders-mcp");
        Ok(session)
    }
}

fn service_error(e: ServiceError) -> McpError {
    if e.is_authorization_required() { McpError::Refused(e.to_string()) } else { McpError::Protocol(e.to_string()) }
}

impl McpSession {
    /// The MCP revision agreed with the server.
    pub fn revision(&self) -> Option<ProtocolVersion> {
        self.service.peer_info().map(|info| info.protocol_version.clone())
    }

    /// The server's tools, as the model sees them.
    #[tracing::instrument(name = "mcp.list_tools", skip_all)]
    pub async fn tools(&self) -> Result<Vec<ToolSpec>, McpError> {
        let tools = match self.service.list_all_tools().await {
            Ok(tools) => tools,
            // Listing changes nothing: lost in transport, it is asked again on a fresh
            // connection, as a read-only call is (see `call`).
            Err(e) if Lost::of(&e).is_some() => {
                tracing::warn!(error = %e, "tools/list lost in transport; asking again on a fresh connection");
                tokio::time::sleep(RESEND_AFTER).await;
                let fresh = self.connector.connect(&self.token).await?;
                let listed = fresh.service.list_all_tools().await;
                fresh.close().await;
                listed.map_err(|e| {
                    tracing::warn!(error = %e, "tools/list failed again");
                    self.unreachable_if_lost(e)
                })?
            }
            Err(e) => return Err(service_error(e)),
        };
        Ok(tools
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name.to_string(),
                title: t.title.clone().or_else(|| t.annotations.as_ref().and_then(|a| a.title.clone())),
                description: t.description.map(|d| d.to_string()).unwrap_or_default(),
                parameters: Value::Object((*t.input_schema).clone()),
                read_only: t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true),
                idempotent: t.annotations.as_ref().and_then(|a| a.idempotent_hint) == Some(true),
            })
            .collect())
    }

    /// Calls a tool. Failures (the tool's own, or reaching it) are outcomes with `is_error`.
    ///
    /// A call lost in transport (orders-mcp restarted under a connection, say) is made once
    /// more on a fresh connection when that cannot do anything twice: the request never left
    /// (the connection was refused), or the tool changes nothing or is idempotent. A
    /// state-changing call that may have reached the server is not: `create_order` sent twice
    /// would place two orders. Whatever the transport said goes to the log, not to the user.
    pub async fn call(&self, tool: &ToolSpec, arguments: JsonObject) -> ToolOutcome {
        self.call_tool(&tool.name, arguments, tool.may_resend()).await
    }

    /// Calls `name`, a tool the caller knows changes nothing (`list_orders` for the orders
    /// page), without listing the tools first.
    pub async fn call_read_only(&self, name: &str, arguments: JsonObject) -> ToolOutcome {
        self.call_tool(name, arguments, true).await
    }

    /// Under OpenTelemetry's MCP client span ("Semantic conventions for Model Context Protocol",
    /// semantic-conventions-genai `docs/gen-ai/mcp.md`): named `tools/call {tool}`, with
    /// `gen_ai.operation.name` `execute_tool` so that GenAI views (Application Insights' agent
    /// views among them) treat it as the agent's tool execution; `error.type` is `tool_error`
    /// for a result with `isError`, else what failed.
    #[tracing::instrument(
        name = "mcp.call_tool",
        skip_all,
        fields(
            otel.name = %format_args!("tools/call {name}"),
            otel.kind = "client",
            mcp.method.name = "tools/call",
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = name,
            server.address = self.connector.url.host_str(),
            server.port = self.connector.url.port_or_known_default(),
            network.transport = "tcp",
            error.type = Empty,
            otel.status_code = Empty,
        )
    )]
    async fn call_tool(&self, name: &str, arguments: JsonObject, may_resend: bool) -> ToolOutcome {
        let started = Instant::now();
        let mut params = CallToolRequestParams::new(name.to_string()).with_arguments(arguments);
        // W3C Trace Context travels in the request's `_meta` (MCP SEP-414): one HTTP request of
        // the session is not one call, and rmcp sends from its own task.
        let context = service_kit::telemetry::context::trace_fields();
        if !context.is_empty() {
            let mut meta = RequestMetaObject::default();
            for (key, value) in context {
                meta.insert(key, Value::String(value));
            }
            params.meta = Some(meta);
        }
        let mut result = self.service.call_tool(params.clone()).await;
        if let Err(e) = &result
            && let Some(lost) = Lost::of(e)
            && (lost == Lost::NotSent || may_resend)
        {
            tracing::warn!(error = %e, tool = name, "tool call lost in transport; calling again on a fresh connection");
            tokio::time::sleep(RESEND_AFTER).await;
            if let Some(again) = self.on_fresh_connection(params).await {
                result = again;
            }
        }
        let elapsed = started.elapsed();
        match result {
            Ok(result) => {
                let text: Vec<&str> =
                    result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect();
                let text = text.join("\n");
                let reported: Vec<Hop> = result
                    .meta
                    .as_ref()
                    .and_then(|m| m.get(MCP_META_KEY))
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                let is_error = result.is_error.unwrap_or(false);
                if is_error {
                    record_error(&tracing::Span::current(), "tool_error");
                }
                let step_up = result
                    .meta
                    .as_ref()
                    .filter(|_| is_error)
                    .and_then(|m| m.get(CLAIMS_CHALLENGE_META_KEY))
                    .and_then(Value::as_str)
                    .and_then(ClaimsChallenge::parse)
                    .map(|c| c.auth_contexts())
                    .unwrap_or_default();
                let structured = result.structured_content.filter(|v| !v.is_null());
                let for_model = match (&structured, is_error) {
                    (Some(v), false) => v.to_string(),
                    _ => text.clone(),
                };
                let mut hops = self.own_hop(elapsed, Decision::Allowed);
                hops.extend(reported);
                ToolOutcome { summary: summarise(&text, name), for_model, is_error, structured, hops, step_up }
            }
            Err(e) => {
                let refused = e.is_authorization_required();
                tracing::warn!(error = %e, tool = name, "tool call failed");
                record_error(&tracing::Span::current(), &error_type(&e));
                let message = match (refused, Lost::of(&e)) {
                    (true, _) => "orders-mcp refused the token".to_string(),
                    (false, Some(lost)) => lost.message(name, may_resend),
                    (false, None) => format!("orders-mcp could not run {name}: {}", service_error(e)),
                };
                let decision = if refused { Decision::Denied { reason: message.clone() } } else { Decision::Allowed };
                ToolOutcome {
                    summary: message.clone(),
                    for_model: message,
                    is_error: true,
                    structured: None,
                    hops: self.own_hop(elapsed, decision),
                    step_up: Vec::new(),
                }
            }
        }
    }

    /// The transport's failures as "unavailable" (their text is logged by the caller).
    fn unreachable_if_lost(&self, e: ServiceError) -> McpError {
        match Lost::of(&e) {
            Some(_) => McpError::Unreachable(self.connector.url().to_string()),
            None => service_error(e),
        }
    }

    /// `params` sent again on a new connection (a new HTTP connection, and on an older revision
    /// a new session); `None` if orders-mcp cannot be reached at all.
    async fn on_fresh_connection(&self, params: CallToolRequestParams) -> Option<Result<CallToolResult, ServiceError>> {
        let fresh = self.connector.connect(&self.token).await.ok()?;
        let result = fresh.service.call_tool(params).await;
        fresh.close().await;
        Some(result)
    }

    fn own_hop(&self, elapsed: Duration, decision: Decision) -> Vec<Hop> {
        let hop = self.sent.clone().map(|token| Hop {
            service: SERVICE.to_string(),
            // An agent's token (Entra Agent ID mode) came from the agent's own On-Behalf-Of.
            how: if token.agent.is_some() { How::Obo } else { How::SignIn },
            token,
            decision,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        });
        if let Some(hop) = &hop {
            span_attributes::record_hop(&tracing::Span::current(), hop);
        }
        hop.into_iter().collect()
    }

    /// Ends the connection (on an older revision, the session: the server drops its state).
    pub async fn close(self) {
        let _ = self.service.cancel().await;
    }
}

/// A failed call's `error.type`: the JSON-RPC error code when orders-mcp answered with one (as
/// the MCP conventions ask), else what kept the call from an answer.
fn error_type(e: &ServiceError) -> String {
    match e {
        ServiceError::McpError(error) => error.code.0.to_string(),
        _ if e.is_authorization_required() => "unauthorized".into(),
        ServiceError::Timeout { .. } => "timeout".into(),
        _ => "transport_error".into(),
    }
}

/// How long a call lost in transport waits before it is sent again: about what a restarting
/// orders-mcp takes to listen again, short enough not to be noticed in a reply.
const RESEND_AFTER: Duration = Duration::from_millis(300);

/// How far a call that failed in transport got, as far as chat-app can tell.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lost {
    /// No connection could be made: the request never left.
    NotSent,
    /// Sent, or possibly sent, and no answer came (the connection closed or reset): the server
    /// may have done it.
    Unanswered,
}

impl Lost {
    /// `None`: the failure is not the transport's (orders-mcp answered with an error).
    fn of(e: &ServiceError) -> Option<Lost> {
        match e {
            ServiceError::TransportSend(e) => {
                let refused = e
                    .error
                    .downcast_ref::<StreamableHttpError<reqwest::Error>>()
                    .is_some_and(|e| matches!(e, StreamableHttpError::Client(e) if e.is_connect()));
                Some(if refused { Lost::NotSent } else { Lost::Unanswered })
            }
            ServiceError::TransportClosed => Some(Lost::Unanswered),
            _ => None,
        }
    }

    /// What the user (and the model) is told: plain words; the transport's own text is logged.
    fn message(self, name: &str, may_resend: bool) -> String {
        match self {
            Lost::NotSent => {
                format!("orders-mcp is unavailable right now, so {name} did not run. Please try again in a moment.")
            }
            Lost::Unanswered if may_resend => {
                format!("orders-mcp stopped answering, so {name} did not complete. Please try again in a moment.")
            }
            Lost::Unanswered => format!(
                "orders-mcp stopped answering while {name} was being sent: it may or may not have been done. \
                 Check your orders before trying again."
            ),
        }
    }
}

/// The first line of the text, shortened: what the chat shows under a tool call.
fn summarise(text: &str, tool: &str) -> String {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    if line.is_empty() {
        return format!("{tool} answered");
    }
    if line.chars().count() > 240 {
        let cut: String = line.chars().take(239).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_one_short_line() {
        assert_eq!(summarise("\n  3 orders\nORD-001 ...", "list_orders"), "3 orders");
        assert_eq!(summarise("", "whoami"), "whoami answered");
        assert_eq!(summarise(&"x".repeat(500), "t").chars().count(), 240);
    }
}
