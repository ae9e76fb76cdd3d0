//! Which calls wait for the user's yes, how many a turn may ask, and how a call is put to them: in words, with the
//! order it touches looked up first, so "cancel ORD-004" reads "Cancel ORD-004: 3 × USB-C hub,
//! pending, ordered by Alice Johnson".

use serde_json::{Map, Value};

use super::order_text::{describe_order, order};
use crate::configuration::ApprovalPolicy;
use crate::mcp::{McpSession, ToolSpec};
use crate::transcript::ApprovalState;

/// The longest piece of someone else's text (a product name) a card repeats.
const MAX_QUOTED_CHARS: usize = 120;

/// Whether `tool` must be approved before it runs. Annotations are the server's hints: a tool
/// that does not say it is read-only is treated as one that changes things.
pub fn needs_approval(policy: ApprovalPolicy, tool: &ToolSpec) -> bool {
    match policy {
        ApprovalPolicy::Always => true,
        ApprovalPolicy::Writes => !tool.read_only,
        ApprovalPolicy::Never => false,
    }
}

/// The most calls put to the user in one turn: a request like "cancel these three orders" fits;
/// a model steered by text in a tool result into a stream of changes does not get to keep the
/// user clicking (OWASP's "excessive agency": each card invites a careless yes).
pub const MAX_APPROVALS_PER_TURN: usize = 5;

/// What a turn has asked of its user so far.
#[derive(Debug, Default)]
pub struct Asked {
    count: usize,
    /// The user said no to a call, or let it expire.
    refused: bool,
}

impl Asked {
    /// Why another call must not be put to the user in this turn, if it must not: after a no
    /// (the user's answer stands for the rest of the turn), or past the turn's limit.
    pub fn refusal(&self) -> Option<String> {
        if self.refused {
            return Some(
                "Not asked: the user declined, or did not answer, an earlier change in this reply, so no further \
                 change is put to them now. Nothing was done. Tell the user, and let them ask in a new message."
                    .to_string(),
            );
        }
        (self.count >= MAX_APPROVALS_PER_TURN).then(|| {
            format!(
                "Not asked: at most {MAX_APPROVALS_PER_TURN} changes are put to the user in one reply. Nothing was \
                 done. Tell the user which changes are left, and let them ask again."
            )
        })
    }

    pub fn record(&mut self, answer: &ApprovalState) {
        self.count += 1;
        self.refused |= !matches!(answer, ApprovalState::Approved { .. });
    }
}

/// The call in words, for the approval card. A cancellation names the order as it is now
/// (through `get_order`, read-only, with the same token); anything else lists its arguments.
pub async fn describe(
    session: &McpSession,
    tools: &[ToolSpec],
    tool: &ToolSpec,
    arguments: &Map<String, Value>,
) -> String {
    let id = arguments.get("id").and_then(Value::as_str);
    match (tool.name.as_str(), id) {
        ("cancel_order", Some(id)) => match current_order(session, tools, id).await {
            Some(text) => format!("Cancel {text}"),
            None => format!("Cancel order {} (its details could not be read).", quoted(id)),
        },
        ("create_order", _) => {
            let product = arguments.get("product").and_then(Value::as_str).unwrap_or("(no product)");
            let quantity = arguments.get("quantity").map_or_else(|| "?".to_string(), Value::to_string);
            format!("Order {quantity} × {}.", quoted(product))
        }
        _ => {
            let name = tool.title.as_deref().unwrap_or(&tool.name);
            let listed: Vec<String> = arguments.iter().map(|(k, v)| format!("{k} = {}", quoted(&plain(v)))).collect();
            if listed.is_empty() { format!("{name}.") } else { format!("{name}: {}.", listed.join(", ")) }
        }
    }
}

/// The order `id` as `get_order` shows it now, if the server offers that tool read-only.
async fn current_order(session: &McpSession, tools: &[ToolSpec], id: &str) -> Option<String> {
    let tool = tools.iter().find(|t| t.name == "get_order" && t.read_only)?;
    let mut arguments = Map::new();
    arguments.insert("id".into(), Value::String(id.to_string()));
    let outcome = session.call(tool, arguments).await;
    if outcome.is_error {
        return None;
    }
    let mut found = outcome.structured.as_ref().and_then(order)?;
    found.product = quoted(&found.product);
    found.customer = quoted(&found.customer);
    Some(describe_order(&found, true))
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Someone else's text, shortened to fit a card.
fn quoted(text: &str) -> String {
    if text.chars().count() > MAX_QUOTED_CHARS {
        let cut: String = text.chars().take(MAX_QUOTED_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(name: &str, read_only: bool) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            title: None,
            description: String::new(),
            parameters: Value::Null,
            read_only,
            idempotent: false,
        }
    }

    #[test]
    fn writes_wait_unless_told_otherwise() {
        let (read, write) = (tool("list_orders", true), tool("cancel_order", false));
        assert!(!needs_approval(ApprovalPolicy::Writes, &read) && needs_approval(ApprovalPolicy::Writes, &write));
        assert!(needs_approval(ApprovalPolicy::Always, &read));
        assert!(!needs_approval(ApprovalPolicy::Never, &write));
        assert_eq!(quoted(&"x".repeat(500)).chars().count(), MAX_QUOTED_CHARS);
    }
}
