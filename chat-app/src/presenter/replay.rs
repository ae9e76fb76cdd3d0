//! The confused-deputy replay: the same read-only call again, through a second orders-mcp that
//! forwards the user's token to orders-api unchanged (`ORDERS_MCP_DOWNSTREAM=passthrough`).
//!
//! chat-app never tells an orders-mcp how to reach orders-api: the passthrough server is a
//! separate instance at its own URL (`CHAT_APP_PASSTHROUGH_DEMO_MCP_URL`), which exists only
//! when someone starts it for a demonstration. No request to the normal orders-mcp, from chat-app
//! or any other client, can switch it into passthrough.

use entra_auth::acquire::AccessToken;
use entra_auth::hop::{Decision, How};

use super::sequence::refusal;
use crate::mcp::{McpConnector, McpError};
use crate::transcript::{ToolCall, ToolOutcome};
use crate::ui::trace::{name_of, short};
use crate::views::Names;

/// Why a replay did not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("Only read-only tools are replayed; {0} changes things.")]
    NotReadOnly(String),
    #[error("The passthrough orders-mcp offers no tool named {0}.")]
    UnknownTool(String),
    #[error(transparent)]
    Mcp(#[from] McpError),
}

/// Calls `call`'s tool with its arguments at the passthrough server, as the user.
pub async fn replay(demo: &McpConnector, token: &AccessToken, call: &ToolCall) -> Result<ToolCall, ReplayError> {
    let session = demo.connect(token).await?;
    let result = run(&session, call).await;
    session.close().await;
    result
}

async fn run(session: &crate::mcp::McpSession, call: &ToolCall) -> Result<ToolCall, ReplayError> {
    let tools = session.tools().await?;
    let tool = tools.iter().find(|t| t.name == call.name).ok_or_else(|| ReplayError::UnknownTool(call.name.clone()))?;
    // The server's own annotation decides, as it does for approvals: a replay never changes data.
    if !tool.read_only {
        return Err(ReplayError::NotReadOnly(call.name.clone()));
    }
    let arguments = match &call.arguments {
        serde_json::Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let outcome = session.call(tool, arguments).await;
    Ok(ToolCall {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        outcome: Some(ToolOutcome { summary: outcome.summary, is_error: outcome.is_error, hops: outcome.hops }),
        trace_id: None,
        approval: None,
    })
}

/// The replay's lesson in one sentence.
pub fn reason(replayed: &ToolCall, names: &Names) -> String {
    let Some(outcome) = &replayed.outcome else {
        return "The replay did not run.".to_string();
    };
    let api = outcome.hops.iter().find(|h| h.service == "orders-api");
    let mcp = outcome.hops.iter().find(|h| h.service == "orders-mcp");
    match (mcp, api) {
        // orders-api names the first check the token fails: for a v2 token at this v1 resource that
        // is the issuer, before the audience; either way it was issued for someone else.
        (Some(mcp), None) if outcome.is_error && outcome.summary.contains("refused the token") => format!(
            "orders-api refused the forwarded token because it was issued for orders-mcp (aud: {}, a v{} token), \
             not for orders-api (its answer: “{}”): a token is good only at the API it names, which is why orders-mcp \
             exchanges it On-Behalf-Of.",
            name_of(names, &mcp.token.aud).map_or_else(|| short(&mcp.token.aud), String::from),
            mcp.token.ver,
            refusal(&outcome.summary)
        ),
        (_, Some(api)) if api.how == How::Forwarded && api.decision == Decision::Allowed => {
            "orders-api accepted a token issued for orders-mcp (it was started with \
             ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE): any holder of a user's token for orders-mcp can now act as that \
             user at orders-api, the confused deputy."
                .to_string()
        }
        _ => format!("The forwarded call ended with: {}", outcome.summary),
    }
}
