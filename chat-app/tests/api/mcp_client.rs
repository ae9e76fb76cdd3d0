//! chat-app's MCP client against the real orders-mcp (MCP 2026-07-28) and against a server of
//! the 2025-11-25 era, which it must reach by falling back to `initialize`.

use std::sync::Arc;

use chat_app::mcp::{McpConnector, McpError};
use entra_auth::acquire::AccessToken;
use rmcp::model::ProtocolVersion;
use rmcp_2025::handler::server::ServerHandler;
use rmcp_2025::model::{
    CallToolRequestParams, CallToolResult, Content, ErrorData, ListToolsResult, PaginatedRequestParams,
    ServerCapabilities, ServerInfo, Tool,
};
use rmcp_2025::service::{RequestContext, RoleServer};
use rmcp_2025::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp_2025::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;
use tokio::net::TcpListener;
use url::Url;

use crate::helpers::emulator_config;
use crate::stack::OrdersStack;

fn connector(url: &str) -> McpConnector {
    McpConnector::new(Url::parse(url).unwrap(), reqwest::Client::new())
}

fn token(idp: &entra_emulator::Running, user: &str) -> AccessToken {
    let token = idp.handle().user_token(user, "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    AccessToken::new(token, u64::MAX)
}

/// Against orders-mcp the client speaks 2026-07-28: no `initialize`, no session. orders-mcp
/// refuses a 2026-07-28 request whose `Mcp-Method`/`Mcp-Name` headers are missing or disagree
/// with the body (its own tests show that), so the tool calls succeeding shows the client sends them.
#[tokio::test]
async fn speaks_2026_07_28_with_orders_mcp() {
    let idp = entra_emulator::Application::build(emulator_config()).await.unwrap().spawn();
    let orders = OrdersStack::spawn(&idp).await;
    let session = connector(&orders.mcp_url).connect(&token(&idp, "alice")).await.unwrap();
    assert_eq!(session.revision(), Some(ProtocolVersion::V_2026_07_28));

    let tools = session.tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["cancel_order", "create_order", "get_order", "list_orders", "whoami"]);

    let tool = |name: &str| tools.iter().find(|t| t.name == name).unwrap();
    let whoami = session.call(tool("whoami"), serde_json::Map::new()).await;
    assert!(!whoami.is_error, "{}", whoami.for_model);
    let oid = idp.handle().manifest().user("alice").unwrap().oid.clone();
    assert_eq!(whoami.structured.as_ref().unwrap()["oid"], oid);
    let mut arguments = serde_json::Map::new();
    arguments.insert("id".into(), json!("ORD-001"));
    let order = session.call(tool("get_order"), arguments).await;
    assert_eq!(order.structured.as_ref().map(|o| o["id"].clone()), Some(json!("ORD-001")), "{}", order.for_model);
    // Each call reports chat-app's hop, then orders-mcp's and orders-api's.
    let services: Vec<&str> = order.hops.iter().map(|h| h.service.as_str()).collect();
    assert_eq!(services, ["chat-app", "orders-mcp", "orders-api"]);
    session.close().await;

    // A token orders-mcp refuses is a sign-in problem, on this revision as on the older ones.
    let refused = connector(&orders.mcp_url).connect(&AccessToken::new("not-a-token", u64::MAX)).await;
    assert!(matches!(refused, Err(McpError::Refused(_))), "{:?}", refused.err());
}

/// An MCP server as servers were before 2026-07-28 (rmcp 1.8: sessions, SSE answers,
/// `initialize`, no `server/discover`), with one tool.
#[derive(Clone)]
struct Server2025;

impl ServerHandler for Server2025 {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
        let serde_json::Value::Object(schema) = schema else { unreachable!() };
        Ok(ListToolsResult::with_all_items(vec![Tool::new("echo", "Says the text back.", Arc::new(schema))]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let text = request.arguments.and_then(|a| a.get("text").cloned()).unwrap_or_default();
        Ok(CallToolResult::success(vec![Content::text(format!("echo: {}", text.as_str().unwrap_or_default()))]))
    }
}

/// Per 2026-07-28 "Streamable HTTP", "Backward Compatibility": a modern request answered with a
/// 4xx that is not a 2026-07-28 JSON-RPC error identifies an older server; the client falls back
/// to `initialize` and keeps that revision (and its session) for the connection.
#[tokio::test]
async fn falls_back_to_initialize_with_a_2025_11_25_server() {
    let idp = entra_emulator::Application::build(emulator_config()).await.unwrap().spawn();
    let service = StreamableHttpService::new(
        || Ok(Server2025),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = axum::Router::new().nest_service("/mcp", service);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let session = connector(&url).connect(&token(&idp, "alice")).await.unwrap();
    assert_eq!(session.revision(), Some(ProtocolVersion::V_2025_11_25));
    let tools = session.tools().await.unwrap();
    assert_eq!(tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["echo"]);
    let mut arguments = serde_json::Map::new();
    arguments.insert("text".into(), json!("hello"));
    let outcome = session.call(&tools[0], arguments).await;
    assert!(!outcome.is_error, "{}", outcome.for_model);
    assert_eq!(outcome.for_model, "echo: hello");
    session.close().await;
    server.abort();
}
