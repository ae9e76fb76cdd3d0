//! The offline planner: a deterministic stand-in for a model. It turns plain requests ("show my
//! orders", "cancel ORD-003", "order 2 keyboards", ...) into tool calls, and once the results
//! are in, writes the answer from them. Same loop, same tools, same identity path as a real
//! model; no network, no randomness.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::model::{ChatModel, Completion, Message, ModelError, ModelTelemetry, OnText, TOOL_ERROR_PREFIX, ToolCall};
use super::order_text::{Order, describe_order, order};
use super::prompt::unfence;
use crate::mcp::ToolSpec;
use crate::views::ModelLabel;

pub const LABEL: &str = "offline planner (no model)";

const HELP: &str = "I'm the offline planner: no language model is configured, so I understand a few plain requests. \
Try “show my orders”, “show pending orders”, “show ORD-001”, “order 2 keyboards”, “cancel ORD-003” or “who am I”.";

const STATUSES: [&str; 5] = ["pending", "processing", "shipped", "delivered", "cancelled"];

pub struct Planner;

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
enum Intent {
    WhoAmI,
    List { status: Option<&'static str> },
    Get { id: String },
    Cancel { id: String },
    Create { product: String, quantity: u32 },
    Unknown,
}

impl ChatModel for Planner {
    fn label(&self) -> ModelLabel {
        ModelLabel { name: LABEL.to_string(), offline: true }
    }

    fn telemetry(&self) -> ModelTelemetry<'_> {
        ModelTelemetry { provider: "orders_copilot.planner", model: "offline-planner", server: None }
    }

    fn complete<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [ToolSpec],
        on_text: OnText<'a>,
    ) -> BoxFuture<'a, Result<Completion, ModelError>> {
        async move {
            let completion = plan(messages, tools);
            for line in completion.text.split_inclusive('\n') {
                on_text(line);
            }
            Ok(completion)
        }
        .boxed()
    }
}

fn plan(messages: &[Message], tools: &[ToolSpec]) -> Completion {
    let last_user = messages.iter().rposition(|m| matches!(m, Message::User(_)));
    let Some(start) = last_user else { return text(HELP) };
    let since = &messages[start + 1..];
    if since.iter().any(|m| matches!(m, Message::Tool { .. })) {
        return text(&answer(since));
    }
    let Message::User(request) = &messages[start] else { return text(HELP) };
    let intent = parse(request);
    let (name, arguments) = match &intent {
        Intent::WhoAmI => ("whoami", Map::new()),
        Intent::List { status } => {
            let mut args = Map::new();
            if let Some(s) = status {
                args.insert("status".into(), json!(s));
            }
            ("list_orders", args)
        }
        Intent::Get { id } => ("get_order", id_arguments(tools, "get_order", id)),
        Intent::Cancel { id } => ("cancel_order", id_arguments(tools, "cancel_order", id)),
        Intent::Create { product, quantity } => {
            let mut args = Map::new();
            args.insert("product".into(), json!(product));
            args.insert("quantity".into(), json!(quantity));
            ("create_order", args)
        }
        Intent::Unknown => return text(HELP),
    };
    if !tools.iter().any(|t| t.name == name) {
        return text(&format!("orders-mcp does not offer the {name} tool right now, so I cannot do that."));
    }
    let calls = messages.iter().filter(|m| matches!(m, Message::Tool { .. })).count();
    Completion {
        text: String::new(),
        tool_calls: vec![ToolCall {
            id: format!("call_{}", calls + 1),
            name: name.to_string(),
            arguments: Value::Object(arguments).to_string(),
        }],
    }
}

fn text(s: &str) -> Completion {
    Completion { text: s.to_string(), tool_calls: Vec::new() }
}

/// `{ <the tool's id parameter>: id }`: the parameter named in its schema (`id`, `order_id`, ...).
fn id_arguments(tools: &[ToolSpec], tool: &str, id: &str) -> Map<String, Value> {
    let schema = tools.iter().find(|t| t.name == tool).map(|t| &t.parameters);
    let param = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .and_then(|props| props.keys().find(|k| k.to_ascii_lowercase().contains("id")).cloned())
        .unwrap_or_else(|| "id".to_string());
    let mut args = Map::new();
    args.insert(param, json!(id));
    args
}

fn parse(request: &str) -> Intent {
    let lower = request.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '-')).filter(|w| !w.is_empty()).collect();
    if let Some(id) = words.iter().find_map(|w| order_id(w)) {
        return if words.iter().any(|w| ["cancel", "cancelled", "canceled", "cancellation"].contains(w)) {
            Intent::Cancel { id }
        } else {
            Intent::Get { id }
        };
    }
    if lower.contains("who am i") || words.contains(&"whoami") || lower.contains("signed in as") {
        return Intent::WhoAmI;
    }
    let verb = words.iter().position(|w| ["order", "buy", "purchase", "create", "place", "add"].contains(w));
    if let Some(start) = verb
        && let Some((quantity, product)) = quantity_and_product(&words[start + 1..])
    {
        return Intent::Create { product, quantity };
    }
    if words.iter().any(|w| w.starts_with("order")) {
        let status = STATUSES
            .iter()
            .copied()
            .find(|s| words.iter().any(|w| *w == *s || (*s == "cancelled" && *w == "canceled")));
        return Intent::List { status };
    }
    Intent::Unknown
}

/// `ord-3` / `ORD-003` → `ORD-003`.
fn order_id(word: &str) -> Option<String> {
    let digits = word.strip_prefix("ord-")?;
    let n: u32 = digits.parse().ok()?;
    Some(format!("ORD-{n:03}"))
}

/// `[an] [order] [for] 2 keyboards` → `(2, "Keyboard")`.
fn quantity_and_product(words: &[&str]) -> Option<(u32, String)> {
    const NUMBERS: [&str; 12] =
        ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"];
    let skip = ["an", "order", "orders", "for", "me", "of", "new", "please"];
    let rest: Vec<&str> = words.iter().copied().skip_while(|w| skip.contains(w)).collect();
    let (first, product) = rest.split_first()?;
    let quantity = match *first {
        "a" => 1,
        w => w.parse().ok().or_else(|| NUMBERS.iter().position(|n| *n == w).map(|i| i as u32 + 1))?,
    };
    let product: Vec<&str> = product.iter().copied().filter(|w| !["please", "now"].contains(w)).collect();
    if product.is_empty() || quantity == 0 {
        return None;
    }
    let mut name: Vec<String> = product.iter().map(|w| w.to_string()).collect();
    if let Some(last) = name.last_mut() {
        *last = singular(last);
    }
    let name = name.join(" ");
    let mut chars = name.chars();
    let name = chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str())?;
    Some((quantity, name))
}

fn singular(word: &str) -> String {
    if let Some(stem) = word.strip_suffix("ies") {
        format!("{stem}y")
    } else if word.ends_with("ss") || word.ends_with("us") {
        word.to_string()
    } else if let Some(stem) =
        word.strip_suffix("es").filter(|s| s.ends_with("ch") || s.ends_with("sh") || s.ends_with('x'))
    {
        stem.to_string()
    } else {
        word.strip_suffix('s').unwrap_or(word).to_string()
    }
}

/// The answer, written from the tool results since the last request.
fn answer(since: &[Message]) -> String {
    let mut calls: Vec<&ToolCall> = Vec::new();
    let mut parts = Vec::new();
    for m in since {
        match m {
            Message::Assistant { tool_calls, .. } => calls.extend(tool_calls),
            Message::Tool { call_id, content } => {
                let tool = calls.iter().find(|c| c.id == *call_id).map_or("", |c| c.name.as_str());
                parts.push(describe(tool, unfence(content)));
            }
            _ => {}
        }
    }
    parts.join("\n")
}

fn describe(tool: &str, content: &str) -> String {
    if let Some(error) = content.strip_prefix(TOOL_ERROR_PREFIX) {
        return format!("I couldn't do that: {}", error.trim());
    }
    let value: Value = serde_json::from_str(content).unwrap_or(Value::String(content.to_string()));
    match tool {
        "list_orders" => describe_list(&value),
        "get_order" => order(&value).map_or_else(|| content.to_string(), |o| describe_order(&o, true)),
        "create_order" => order(&value).map_or_else(
            || content.to_string(),
            |o| format!("Done: I placed {} for {} × {}. Its status is {}.", o.id, o.quantity, o.product, o.status),
        ),
        "cancel_order" => order(&value).map_or_else(
            || content.to_string(),
            |o| format!("{} ({} × {}) is now {}.", o.id, o.quantity, o.product, o.status),
        ),
        "whoami" => describe_identity(&value),
        _ => content.to_string(),
    }
}

fn describe_list(value: &Value) -> String {
    let list = value.get("orders").unwrap_or(value).as_array().cloned().unwrap_or_default();
    let orders: Vec<Order> = list.iter().filter_map(order).collect();
    if orders.is_empty() {
        return "There are no orders to show.".to_string();
    }
    let customers: std::collections::BTreeSet<&str> = orders.iter().map(|o| o.customer.as_str()).collect();
    let several = customers.len() > 1;
    let mut out = format!(
        "{} {}:",
        if several { "Here are all" } else { "You have" },
        if orders.len() == 1 { "1 order".to_string() } else { format!("{} orders", orders.len()) }
    );
    for o in &orders {
        out.push_str("\n• ");
        out.push_str(&describe_order(o, several));
    }
    out
}

fn describe_identity(value: &Value) -> String {
    let s = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
    let name = s("name").unwrap_or_else(|| "someone without a name claim".into());
    let username = s("preferred_username").or_else(|| s("username")).map(|u| format!(" ({u})")).unwrap_or_default();
    let mut out = format!("orders-mcp sees you as {name}{username}");
    if let Some(oid) = s("oid") {
        out.push_str(&format!(", object id {oid}"));
    }
    if let Some(scopes) = value.get("scopes").or_else(|| value.get("scp")).and_then(Value::as_array) {
        let scopes: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
        out.push_str(&format!(", with scopes {}", scopes.join(", ")));
    }
    out.push('.');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools() -> Vec<ToolSpec> {
        ["whoami", "list_orders", "get_order", "create_order", "cancel_order"]
            .into_iter()
            .map(|name| ToolSpec {
                name: name.into(),
                title: None,
                description: String::new(),
                parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
                read_only: !name.ends_with("_order") || name == "get_order",
                idempotent: false,
            })
            .collect()
    }

    fn plan_for(request: &str) -> (String, Value) {
        let c = plan(&[Message::User(request.into())], &tools());
        let call = c.tool_calls.first().unwrap_or_else(|| panic!("no tool call for {request:?}: {}", c.text));
        (call.name.clone(), serde_json::from_str(&call.arguments).unwrap())
    }

    #[test]
    fn demo_requests_become_tool_calls() {
        assert_eq!(plan_for("show my orders"), ("list_orders".into(), json!({})));
        assert_eq!(plan_for("Show pending orders"), ("list_orders".into(), json!({"status": "pending"})));
        assert_eq!(plan_for("list canceled orders"), ("list_orders".into(), json!({"status": "cancelled"})));
        assert_eq!(
            plan_for("order 2 keyboards"),
            ("create_order".into(), json!({"product": "Keyboard", "quantity": 2}))
        );
        assert_eq!(
            plan_for("Please buy three USB cables"),
            ("create_order".into(), json!({"product": "Usb cable", "quantity": 3}))
        );
        assert_eq!(plan_for("cancel ORD-003"), ("cancel_order".into(), json!({"order_id": "ORD-003"})));
        assert_eq!(plan_for("show ord-1"), ("get_order".into(), json!({"order_id": "ORD-001"})));
        assert_eq!(plan_for("Who am I?"), ("whoami".into(), json!({})));
    }

    #[test]
    fn anything_else_gets_help_and_no_tool_call() {
        for request in ["hello", "what's the weather", ""] {
            let c = plan(&[Message::User(request.into())], &tools());
            assert!(c.tool_calls.is_empty() && c.text.contains("offline planner"), "{request:?}: {c:?}");
        }
        let c = plan(&[Message::User("show my orders".into())], &[]);
        assert!(c.tool_calls.is_empty() && c.text.contains("list_orders"), "{c:?}");
    }

    #[test]
    fn answers_are_written_from_results() {
        let call = ToolCall { id: "call_1".into(), name: "list_orders".into(), arguments: "{}".into() };
        let result = json!({"orders": [
            {"id": "ORD-001", "product": "Keyboard", "quantity": 2, "status": "pending", "customer_name": "Alice Johnson"},
            {"id": "ORD-002", "product": "Mouse", "quantity": 1, "status": "shipped", "customer_name": "Alice Johnson"}
        ], "next_cursor": null});
        let messages = vec![
            Message::User("show my orders".into()),
            Message::Assistant { text: String::new(), tool_calls: vec![call] },
            Message::Tool { call_id: "call_1".into(), content: result.to_string() },
        ];
        let c = plan(&messages, &tools());
        assert!(c.tool_calls.is_empty());
        assert_eq!(c.text, "You have 2 orders:\n• ORD-001: 2 × Keyboard, pending.\n• ORD-002: 1 × Mouse, shipped.");

        let call = ToolCall { id: "call_2".into(), name: "cancel_order".into(), arguments: "{}".into() };
        let messages = vec![
            Message::User("cancel ORD-004".into()),
            Message::Assistant { text: String::new(), tool_calls: vec![call] },
            Message::Tool {
                call_id: "call_2".into(),
                content: format!("{TOOL_ERROR_PREFIX}ORD-004 cannot be cancelled: it was shipped"),
            },
        ];
        assert_eq!(plan(&messages, &tools()).text, "I couldn't do that: ORD-004 cannot be cancelled: it was shipped");
    }

    #[test]
    fn planning_is_deterministic() {
        let a = plan(&[Message::User("order 2 keyboards".into())], &tools());
        let b = plan(&[Message::User("order 2 keyboards".into())], &tools());
        assert_eq!(a, b);
    }
}
