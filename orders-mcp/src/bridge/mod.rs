//! `orders-mcp bridge`: MCP over stdio in front of a remote, Entra-protected MCP server.
//!
//! Many MCP clients still launch servers as child processes speaking stdio. The bridge is that
//! child: it reads JSON-RPC messages from stdin and sends them to the remote server over
//! Streamable HTTP with a bearer token, and writes the server's messages to stdout. stdout
//! carries the MCP stream only; diagnostics go to stderr.
//!
//! It forwards messages, not meanings: rmcp's stdio transport on one side, rmcp's Streamable
//! HTTP client transport on the other, and nothing in between re-interprets the protocol. The
//! client and the server negotiate version and capabilities with each other directly, and any
//! method either knows passes through; rmcp's HTTP transport handles what HTTP adds (session
//! ids, protocol-version and standard headers, SSE streams, closing the session). The bridge
//! adds the token (fetched, cached, refreshed a margin before expiry, and once more on a `401`),
//! extra headers, and a time limit per request.

mod http;
mod server;
mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use ::http::{HeaderName, HeaderValue};
use anyhow::Context;
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification, ErrorCode, ErrorData,
    RequestId, ServerJsonRpcMessage,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, Transport};
use rmcp::{RoleClient, RoleServer};
use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;

use token::TokenProvider;
pub use token::TokenSourceKind;

/// `orders-mcp bridge` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BridgeArgs {
    /// The remote MCP endpoint, e.g. https://orders-mcp.example.com/mcp.
    #[arg(long)]
    pub url: Url,
    /// What the token is for: the server's Application ID URI or a scope under it
    /// (api://orders-mcp-dev/access_as_user). Default: the --url itself, which is orders-mcp's
    /// Application ID URI (Microsoft's guidance for MCP servers).
    #[arg(long)]
    pub resource: Option<String>,
    /// Where the token comes from.
    #[arg(long, value_enum, default_value = "az")]
    pub token_source: TokenSourceKind,
    /// With --token-source static: the environment variable holding the token.
    #[arg(long, default_value = "ORDERS_MCP_BRIDGE_TOKEN")]
    pub token_env: String,
    /// Tenant to get the token from (az --tenant / azd --tenant-id); default: the CLI's own.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Fetch a new token this many seconds before the current one expires.
    #[arg(long, default_value_t = 300)]
    pub refresh_margin: u64,
    /// An extra HTTP header for every request, as `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Give up on a request after this many seconds (the client gets a JSON-RPC error).
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
}

/// Headers the transport sets itself; overriding them would break the protocol or the token.
const RESERVED_HEADERS: [&str; 6] =
    ["authorization", "accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id"];

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = raw.split_once(':').ok_or_else(|| format!("{raw:?} is not `Name: value`"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("bad header name {:?}: {e}", name.trim()))?;
    if RESERVED_HEADERS.contains(&name.as_str()) || name.as_str().starts_with("mcp-") {
        return Err(format!("the bridge sets {name} itself"));
    }
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("bad value for header {name}: {e}"))?;
    Ok((name, value))
}

/// Runs the bridge until stdin closes.
pub async fn run(args: BridgeArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;
    // Before any token exists: the server must be reached over https and be the resource.
    let metadata = server::check(&http, &args.url, Duration::from_secs(args.timeout.max(1))).await?;
    let resource = args.resource.clone().unwrap_or_else(|| args.url.to_string());
    let tokens = Arc::new(TokenProvider::new(
        args.token_source,
        &resource,
        args.tenant.clone(),
        &args.token_env,
        Duration::from_secs(args.refresh_margin),
    ));
    // Fail now, with the reason, rather than at the client's first request.
    tokens.token().await.with_context(|| format!("cannot get a token from {}", tokens.describe()))?;
    tracing::info!(
        url = %args.url,
        source = %tokens.describe(),
        authorization_servers = ?metadata.authorization_servers,
        "bridging stdio to the remote MCP server"
    );

    let config = StreamableHttpClientTransportConfig::with_uri(args.url.as_str())
        .custom_headers(args.headers.iter().cloned().collect());
    let remote = StreamableHttpClientTransport::with_client(http::BearerClient::new(http, tokens), config);
    let local = rmcp::transport::async_rw::AsyncRwTransport::new_server(tokio::io::stdin(), tokio::io::stdout());
    forward(local, remote, Duration::from_secs(args.timeout.max(1))).await
}

/// Moves messages between the stdio client (`local`) and the remote server until the client
/// closes stdin. Requests that get no answer within `timeout` are answered with an error here
/// and cancelled at the server.
async fn forward<L, R>(mut local: L, mut remote: R, timeout: Duration) -> anyhow::Result<()>
where
    L: Transport<RoleServer>,
    R: Transport<RoleClient>,
{
    // Requests from the client awaiting the server's answer, with their deadlines.
    let mut pending: HashMap<RequestId, Instant> = HashMap::new();
    let (failed_tx, mut failed_rx) = mpsc::unbounded_channel::<(RequestId, String)>();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let outcome = loop {
        tokio::select! {
            // In this order: a failure is reported before the remote side's end is noticed, and answers
            // go out before new requests come in.
            biased;
            Some((id, reason)) = failed_rx.recv() => {
                if pending.remove(&id).is_some() {
                    tracing::warn!(%reason, "a request could not be forwarded");
                    let error = ErrorData::new(ErrorCode::INTERNAL_ERROR, format!("the bridge could not forward the request: {reason}"), None);
                    if let Err(e) = local.send(ServerJsonRpcMessage::error(error, Some(id))).await {
                        break Err(anyhow::anyhow!("cannot write to stdout: {e}"));
                    }
                }
            }
            message = remote.receive() => {
                let Some(message) = message else {
                    break Err(anyhow::anyhow!("the connection to the remote MCP server ended"));
                };
                if let Some(id) = answered(&message)
                    && pending.remove(&id).is_none()
                {
                    // Already answered here (timed out or cancelled): the client has moved on.
                    continue;
                }
                if let Err(e) = local.send(message).await {
                    break Err(anyhow::anyhow!("cannot write to stdout: {e}"));
                }
            }
            message = local.receive() => {
                let Some(message) = message else { break Ok(()) };
                let id = match &message {
                    ClientJsonRpcMessage::Request(request) => {
                        pending.insert(request.id.clone(), Instant::now() + timeout);
                        Some(request.id.clone())
                    }
                    ClientJsonRpcMessage::Notification(n) => {
                        if let ClientNotification::CancelledNotification(c) = &n.notification
                            && let Some(id) = &c.params.request_id
                        {
                            pending.remove(id);
                        }
                        None
                    }
                    _ => None,
                };
                // The first poll queues the message, so messages leave in the order they came;
                // the rest (waiting for the HTTP exchange) runs on its own.
                let mut send = Box::pin(remote.send(message));
                let failed_tx = failed_tx.clone();
                let report = move |result: Result<(), R::Error>| {
                    if let (Err(e), Some(id)) = (result, id) {
                        let _ = failed_tx.send((id, e.to_string()));
                    }
                };
                match futures::poll!(&mut send) {
                    Poll::Ready(result) => report(result),
                    Poll::Pending => {
                        tokio::spawn(async move { report(send.await) });
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                let expired: Vec<RequestId> = pending.iter().filter(|(_, deadline)| **deadline <= now).map(|(id, _)| id.clone()).collect();
                let mut write_failed = None;
                for id in expired {
                    pending.remove(&id);
                    tracing::warn!(?id, timeout_secs = timeout.as_secs(), "the remote server did not answer in time");
                    let reason = format!("the remote MCP server did not answer within {} s", timeout.as_secs());
                    let cancel = CancelledNotification::new(CancelledNotificationParam::new(Some(id.clone()), Some(reason.clone())));
                    tokio::spawn(remote.send(ClientJsonRpcMessage::notification(ClientNotification::CancelledNotification(cancel))));
                    let error = ErrorData::new(ErrorCode::INTERNAL_ERROR, reason, None);
                    if let Err(e) = local.send(ServerJsonRpcMessage::error(error, Some(id))).await {
                        write_failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = write_failed {
                    break Err(anyhow::anyhow!("cannot write to stdout: {e}"));
                }
            }
        }
    };
    // Ends the remote session, if the server keeps one.
    let _ = remote.close().await;
    outcome
}

/// The id of the client request a server message answers, if it is an answer.
fn answered(message: &ServerJsonRpcMessage) -> Option<RequestId> {
    match message {
        ServerJsonRpcMessage::Response(r) => Some(r.id.clone()),
        ServerJsonRpcMessage::Error(e) => e.id.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_are_parsed_and_protocol_headers_refused() {
        let (name, value) = parse_header("X-Tenant:  contoso ").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-tenant", "contoso"));
        for bad in
            ["Authorization: Bearer x", "mcp-session-id: 1", "Mcp-Protocol-Version: 1", "no colon", "bad name: x"]
        {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
    }
}
