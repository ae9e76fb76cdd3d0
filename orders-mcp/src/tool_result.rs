//! A tool call's result, kept typed until it is written: rmcp's route turns it into rmcp's
//! [`CallToolResult`], the direct route ([`crate::mcp_endpoint`]) serialises it straight into
//! the JSON-RPC response, with the same JSON.
//!
//! Through rmcp's types every result was built as `serde_json::Value` trees (the hop records,
//! the token sent, the structured content) and then serialised: a tree of small allocations per
//! call, on the path nearly every call takes. Written directly, a result is one buffer.

use entra_auth::claims_challenge::MCP_META_KEY as CLAIMS_CHALLENGE_META_KEY;
use entra_auth::hop::{Hop, MCP_META_KEY};
use rmcp::model::{CallToolResult, ContentBlock, MetaObject, RequestId, ResultType};
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::orders_api::SentToken;

/// `_meta` key of the token orders-mcp sent to orders-api (`{ "how", "token" }`): in `obo`
/// mode the exchanged token's claims, in `passthrough` mode the incoming token's.
pub const SENT_TOKEN_META_KEY: &str = "dev.orders-copilot/downstream-token";

/// The result of one tool call.
pub struct ToolResult {
    outcome: Outcome,
    meta: ResultMeta,
}

enum Outcome {
    /// A short text for clients that read only text, and the structured content as JSON text.
    Success { summary: String, structured: Box<RawValue> },
    /// What the model and the user are told.
    Error(String),
}

/// The result's `_meta`: the hop trace, the token sent downstream and a claims challenge.
pub struct ResultMeta {
    /// orders-mcp's own hop, then orders-api's when it sent one.
    pub hops: Vec<Hop>,
    pub sent: Option<SentToken>,
    /// For the MCP client's code (chat-app asks its user to step up), not the model.
    pub claims_challenge: Option<String>,
}

impl ToolResult {
    /// `structured` must serialise with its object keys in order, as a `Value` would: the
    /// content's text is that JSON, as rmcp's `CallToolResult::structured` writes it.
    pub fn success(structured: &impl Serialize, summary: String, meta: ResultMeta) -> ToolResult {
        match serde_json::value::to_raw_value(structured) {
            Ok(structured) => ToolResult { outcome: Outcome::Success { summary, structured }, meta },
            // Plain strings and numbers cannot fail to serialise; should they, say so.
            Err(e) => ToolResult::error(format!("the result could not be serialised: {e}"), meta),
        }
    }

    pub fn error(message: String, meta: ResultMeta) -> ToolResult {
        ToolResult { outcome: Outcome::Error(message), meta }
    }

    /// The JSON-RPC response to request `id` carrying this result, for a peer on 2026-07-28
    /// (`modern`: the result says `resultType`) or an earlier revision: what rmcp writes for
    /// the [`CallToolResult`] of [`Self::into_call_tool_result`], finished for the revision by
    /// rmcp's handler. (The structured content is always an object, so the older revisions'
    /// rules leave it in place.)
    pub fn response<'a>(&'a self, id: &'a RequestId, modern: bool) -> impl Serialize + 'a {
        Response { id, result: Result { result: self, modern } }
    }

    /// rmcp's form of the result, for rmcp's route.
    pub fn into_call_tool_result(self) -> CallToolResult {
        let mut result = match self.outcome {
            Outcome::Success { summary, structured } => {
                let structured = serde_json::from_str(structured.get()).unwrap_or(Value::Null);
                let mut result = CallToolResult::structured(structured);
                result.content.insert(0, ContentBlock::text(summary));
                result
            }
            Outcome::Error(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        result.meta = Some(self.meta.into_object());
        result
    }
}

impl ResultMeta {
    fn into_object(self) -> MetaObject {
        let mut meta = MetaObject::new();
        meta.insert(MCP_META_KEY.to_string(), serde_json::to_value(self.hops).unwrap_or(Value::Null));
        if let Some(sent) = self.sent {
            meta.insert(SENT_TOKEN_META_KEY.to_string(), serde_json::to_value(sent).unwrap_or(Value::Null));
        }
        if let Some(challenge) = self.claims_challenge {
            meta.insert(CLAIMS_CHALLENGE_META_KEY.to_string(), Value::String(challenge));
        }
        meta
    }
}

impl Serialize for ResultMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        // In key order, as rmcp's `MetaObject` (a sorted map) writes them.
        let mut map = serializer.serialize_map(None)?;
        if let Some(challenge) = &self.claims_challenge {
            map.serialize_entry(CLAIMS_CHALLENGE_META_KEY, challenge)?;
        }
        if let Some(sent) = &self.sent {
            map.serialize_entry(SENT_TOKEN_META_KEY, sent)?;
        }
        map.serialize_entry(MCP_META_KEY, &self.hops)?;
        map.end()
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`
struct Response<'a> {
    id: &'a RequestId,
    result: Result<'a>,
}

impl Serialize for Response<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut response = serializer.serialize_struct("JsonRpcResponse", 3)?;
        response.serialize_field("jsonrpc", "2.0")?;
        response.serialize_field("id", self.id)?;
        response.serialize_field("result", &self.result)?;
        response.end()
    }
}

/// rmcp's `CallToolResult`, field for field.
struct Result<'a> {
    result: &'a ToolResult,
    modern: bool,
}

/// rmcp's text content block.
struct Text<'a>(&'a str);

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut text = serializer.serialize_struct("TextContent", 2)?;
        text.serialize_field("type", "text")?;
        text.serialize_field("text", self.0)?;
        text.end()
    }
}

impl Serialize for Result<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut result = serializer.serialize_struct("CallToolResult", 5)?;
        if self.modern {
            result.serialize_field("resultType", &ResultType::COMPLETE)?;
        }
        match &self.result.outcome {
            Outcome::Success { summary, structured } => {
                result.serialize_field("content", &[Text(summary), Text(structured.get())])?;
                result.serialize_field("structuredContent", structured)?;
                result.serialize_field("isError", &false)?;
            }
            Outcome::Error(message) => {
                result.serialize_field("content", &[Text(message)])?;
                result.serialize_field("isError", &true)?;
            }
        }
        result.serialize_field("_meta", &self.result.meta)?;
        result.end()
    }
}

#[cfg(test)]
mod tests {
    use entra_auth::hop::{Decision, How, TokenSummary};
    use rmcp::model::{ServerJsonRpcMessage, ServerResult};

    use super::*;
    use crate::order::{Order, OrderPage, OrderStatus};

    fn summary() -> TokenSummary {
        TokenSummary {
            aud: "api://orders-api".into(),
            iss: "https://login.microsoftonline.com/t/v2.0".into(),
            ver: "1.0".into(),
            scp: vec!["Orders.Read".into()],
            roles: Vec::new(),
            client_id: "c".into(),
            oid: "o".into(),
            name: None,
            tid: "t".into(),
            exp: 1,
            token_id_suffix: "abcdef".into(),
            header: None,
            agent: None,
            acrs: vec!["c1".into()],
        }
    }

    fn meta(claims_challenge: Option<&str>) -> ResultMeta {
        let hop = |service: &str, decision| Hop {
            service: service.into(),
            token: summary(),
            how: How::Direct,
            decision,
            elapsed_ms: 0.125,
        };
        ResultMeta {
            hops: vec![
                hop("orders-mcp", Decision::Allowed),
                hop("orders-api", Decision::Refused { reason: "no".into() }),
            ],
            sent: Some(SentToken { how: How::Obo, token: summary() }),
            claims_challenge: claims_challenge.map(String::from),
        }
    }

    fn order() -> Order {
        Order {
            id: "ORD-001".into(),
            owner_oid: "o".into(),
            customer_name: "Alice \"A\" Johnson".into(),
            product: "Keyboard\u{e9}".into(),
            quantity: 2,
            status: OrderStatus::Pending,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-02T00:00:00Z".into(),
        }
    }

    /// What rmcp's route writes for the same result (its handler's steps for each revision).
    fn rmcp_response(result: CallToolResult, id: RequestId, modern: bool) -> String {
        let mut result = ServerResult::CallToolResult(result);
        if modern {
            result.fill_missing_cache_hints();
        } else {
            result.strip_result_type_for_legacy_peer();
            result.strip_non_object_output_for_legacy_peer();
        }
        serde_json::to_string(&ServerJsonRpcMessage::response(result, id)).unwrap()
    }

    fn results() -> Vec<ToolResult> {
        let page = OrderPage { orders: vec![order(), order()], next_cursor: Some("ORD-002".into()) };
        let empty = OrderPage { orders: Vec::new(), next_cursor: None };
        vec![
            ToolResult::success(&order(), "Order ORD-001".into(), meta(None)),
            ToolResult::success(&page, "2 order(s)".into(), meta(None)),
            ToolResult::success(&empty, "No orders found.".into(), meta(None)),
            ToolResult::error("orders-api answered 404 Not Found: \"x\"".into(), meta(Some("Bearer error=\"x\""))),
        ]
    }

    /// The same JSON (the content's texts byte for byte; the hop records' keys in another order,
    /// which JSON does not count).
    #[test]
    fn the_direct_response_is_rmcps() {
        for (id, modern) in [(RequestId::Number(7), true), (RequestId::String("a".into()), false)] {
            for (direct, via_rmcp) in results().into_iter().zip(results()) {
                let direct = serde_json::to_string(&direct.response(&id, modern)).unwrap();
                let via_rmcp = rmcp_response(via_rmcp.into_call_tool_result(), id.clone(), modern);
                let (direct, via_rmcp): (Value, Value) =
                    (serde_json::from_str(&direct).unwrap(), serde_json::from_str(&via_rmcp).unwrap());
                assert_eq!(direct, via_rmcp);
            }
        }
    }

    /// The structured content's text is a `Value`'s (sorted keys): orders are written that way.
    #[test]
    fn orders_serialise_with_their_keys_in_order() {
        let page = OrderPage { orders: vec![order()], next_cursor: None };
        assert_eq!(serde_json::to_string(&order()).unwrap(), serde_json::to_value(order()).unwrap().to_string());
        assert_eq!(serde_json::to_string(&page).unwrap(), serde_json::to_value(&page).unwrap().to_string());
    }
}
