//! The MCP tools: the signed-in user's orders, through orders-api, as that user.
//!
//! Each result carries typed `structuredContent` (with an `outputSchema` in `tools/list`), a
//! short text for clients that ignore structured output, and the hop trace in `_meta`. What the
//! model should see and react to (no such order, cannot cancel, orders-api down, token refused)
//! is a result with `isError`, never a protocol error.

use std::sync::Arc;

use entra_auth::hop::{Decision, Hop, How};
use entra_auth::span_attributes;
use http::request::Parts;
use rmcp::handler::server::tool::{Extension, ToolCallContext, ToolRouter, schema_for_output};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, MetaObject, RequestId, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use service_kit::telemetry::context::{KeyValue, record_error};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::auth::Authenticated;
use crate::configuration::Downstream;
use crate::order::{NewOrder, Order, OrderId, OrderPage, OrderStatus};
use crate::orders_api::{CallError, OrdersApi, SentToken, Traced};
use crate::tool_result::{ResultMeta, ToolResult};

/// The name this service reports in hop records.
pub const SERVICE: &str = "orders-mcp";

#[derive(Clone)]
pub struct OrdersTools {
    api: Arc<OrdersApi>,
    downstream: Downstream,
    /// Built once: the transport makes a handler per request, and each clones this.
    tool_router: Arc<ToolRouter<OrdersTools>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListOrdersArgs {
    /// Only orders in this status; omit for every status.
    pub status: Option<OrderStatus>,
    /// The most orders to return, 1 to 100 (20 when omitted).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// `next_cursor` from a previous `list_orders` result, to get the page after it.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct OrderIdArgs {
    /// The order id, like `ORD-001`.
    pub id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateOrderArgs {
    /// What to order, e.g. `Keyboard`.
    pub product: String,
    /// How many, 1 to 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub quantity: i64,
}

/// A `tools/call` request's `params`: the tool's name and its typed arguments. The direct route
/// for stateless calls ([`crate::mcp_endpoint`]) reads it straight from the request body; a call
/// in any other shape (extra keys such as `_meta` or `task`, arguments that do not parse) fails to
/// read and goes to rmcp's router instead, which answers it as it answers every other message.
#[derive(Debug, Deserialize)]
#[serde(tag = "name", content = "arguments", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolCall {
    Whoami,
    #[serde(deserialize_with = "from_object")]
    ListOrders(ListOrdersArgs),
    #[serde(deserialize_with = "from_object")]
    GetOrder(OrderIdArgs),
    #[serde(deserialize_with = "from_object")]
    CreateOrder(CreateOrderArgs),
    #[serde(deserialize_with = "from_object")]
    CancelOrder(OrderIdArgs),
}

/// Reads `T` from a JSON object only. serde's derived structs also take an array of their
/// fields in order (`["ORD-001"]` for `{"id": "ORD-001"}`), a form MCP does not have (a tool's
/// `arguments` are an object) and rmcp refuses: what rmcp's route would refuse, the direct route
/// must not run.
pub fn from_object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOnly<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOnly<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    deserializer.deserialize_map(ObjectOnly(std::marker::PhantomData))
}

impl ToolCall {
    /// The tool's name, as `tools/list` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::Whoami => "whoami",
            ToolCall::ListOrders(_) => "list_orders",
            ToolCall::GetOrder(_) => "get_order",
            ToolCall::CreateOrder(_) => "create_order",
            ToolCall::CancelOrder(_) => "cancel_order",
        }
    }
}

/// The caller, as orders-mcp validated their token.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoAmI {
    /// The user's object id: orders-api shows them the orders with this `owner_oid`.
    pub oid: String,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub tenant_id: String,
    /// Delegated scopes in the token (`scp`).
    pub scopes: Vec<String>,
    /// App roles in the token (`roles`).
    pub roles: Vec<String>,
    /// The app the user signed in to (`azp`).
    pub client_id: String,
    /// `2.0` for orders-mcp's tokens.
    pub token_version: String,
    pub audience: String,
    pub issuer: String,
    /// Token expiry, seconds since the Unix epoch.
    pub expires_at: i64,
    /// How orders-mcp calls orders-api for this user: `obo` or `passthrough`.
    pub downstream: String,
}

#[tool_router]
impl OrdersTools {
    pub fn new(api: Arc<OrdersApi>, downstream: Downstream) -> Self {
        OrdersTools { api, downstream, tool_router: Arc::new(Self::tool_router()) }
    }

    /// Who the signed-in user is, as this server sees them from their token.
    #[tool(
        description = "Show who the signed-in user is, as the orders server sees them: name, user id, tenant, the \
                       scopes and roles in their token, and how the server calls the orders API for them.",
        annotations(title = "Who am I", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<WhoAmI>()
    )]
    async fn whoami(&self, Extension(parts): Extension<Parts>) -> Result<CallToolResult, ErrorData> {
        Ok(self.call(authenticated(&parts)?, ToolCall::Whoami).await.into_call_tool_result())
    }

    #[tool(
        description = "List the signed-in user's orders, newest first (administrators see every customer's orders). \
                       Optionally only orders in one status; page with `cursor` when `next_cursor` is not null.",
        annotations(title = "List orders", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<OrderPage>()
    )]
    async fn list_orders(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<ListOrdersArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.call(authenticated(&parts)?, ToolCall::ListOrders(args)).await.into_call_tool_result())
    }

    #[tool(
        description = "Get one of the signed-in user's orders by id (like ORD-001): product, quantity, status, dates.",
        annotations(title = "Get an order", read_only_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Order>()
    )]
    async fn get_order(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<OrderIdArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.call(authenticated(&parts)?, ToolCall::GetOrder(args)).await.into_call_tool_result())
    }

    #[tool(
        description = "Place a new order for the signed-in user: a product and a quantity. Returns the created order \
                       (status pending). Each call places a new order.",
        annotations(
            title = "Create an order",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<Order>()
    )]
    async fn create_order(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<CreateOrderArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.call(authenticated(&parts)?, ToolCall::CreateOrder(args)).await.into_call_tool_result())
    }

    #[tool(
        description = "Cancel one of the signed-in user's orders by id (like ORD-001). Only pending or processing \
                       orders can be cancelled; for any other order (including one already cancelled) nothing \
                       changes and the result says why.",
        annotations(
            title = "Cancel an order",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        ),
        output_schema = schema_for_output::<Order>()
    )]
    async fn cancel_order(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(args): Parameters<OrderIdArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(self.call(authenticated(&parts)?, ToolCall::CancelOrder(args)).await.into_call_tool_result())
    }
}

impl OrdersTools {
    /// Runs one tool call for `who`. The `#[tool]` methods above (rmcp's router) and the direct
    /// route for plain stateless calls ([`crate::mcp_endpoint`]) both end here.
    pub async fn call(&self, who: &Authenticated, call: ToolCall) -> ToolResult {
        // Named in a failed call's log line: on the direct route the call's name is an exported
        // span attribute only, not a field the log line could print.
        let tool = call.name();
        match call {
            ToolCall::Whoami => self.run_whoami(who),
            ToolCall::ListOrders(args) => self.run_list_orders(who, tool, args).await,
            ToolCall::GetOrder(args) => self.run_get_order(who, tool, args).await,
            ToolCall::CreateOrder(args) => self.run_create_order(who, tool, args).await,
            ToolCall::CancelOrder(args) => self.run_cancel_order(who, tool, args).await,
        }
    }

    fn run_whoami(&self, who: &Authenticated) -> ToolResult {
        let c = &who.caller;
        let me = WhoAmI {
            oid: c.oid.clone(),
            name: c.name.clone(),
            preferred_username: c.preferred_username.clone(),
            tenant_id: c.tid.clone(),
            scopes: c.scopes.clone(),
            roles: c.roles.clone(),
            client_id: c.client_id.clone(),
            token_version: c.version.as_str().to_string(),
            audience: c.audience.clone(),
            issuer: c.issuer.clone(),
            expires_at: c.expires_at,
            downstream: self.downstream.to_string(),
        };
        let text = format!(
            "You are {} ({}), user id {}, with scopes [{}] and roles [{}].",
            me.name.as_deref().unwrap_or("an unnamed user"),
            me.preferred_username.as_deref().unwrap_or("no username"),
            me.oid,
            me.scopes.join(", "),
            me.roles.join(", ")
        );
        // Through a `Value`, for its keys in order (`ToolResult::success`); not a hot path.
        let me = serde_json::to_value(&me).unwrap_or_default();
        ToolResult::success(&me, text, meta(who, None, None))
    }

    async fn run_list_orders(&self, who: &Authenticated, tool: &'static str, args: ListOrdersArgs) -> ToolResult {
        let traced = self.api.list_orders(who, args.status, args.limit, args.cursor).await;
        respond(who, tool, traced, |page| {
            if page.orders.is_empty() {
                return "No orders found.".to_string();
            }
            let mut text = format!("{} order(s):", page.orders.len());
            for order in &page.orders {
                text.push_str(&format!("\n- {order}"));
            }
            if page.next_cursor.is_some() {
                text.push_str("\nMore orders follow: call list_orders again with cursor = next_cursor.");
            }
            text
        })
    }

    async fn run_get_order(&self, who: &Authenticated, tool: &'static str, args: OrderIdArgs) -> ToolResult {
        let id = match OrderId::parse(&args.id) {
            Ok(id) => id,
            Err(why) => return ToolResult::error(why, meta(who, None, None)),
        };
        let traced = self.api.get_order(who, &id).await;
        respond_about(who, tool, &id, traced, |order| format!("Order {order}"))
    }

    async fn run_create_order(&self, who: &Authenticated, tool: &'static str, args: CreateOrderArgs) -> ToolResult {
        let order = NewOrder { product: args.product, quantity: args.quantity };
        // One key per tool call: orders-mcp's own retry (after a refused cached token) cannot
        // place the order twice.
        let traced = self.api.create_order(who, &order, uuid::Uuid::new_v4().to_string()).await;
        respond(who, tool, traced, |order| format!("Created order {order}"))
    }

    async fn run_cancel_order(&self, who: &Authenticated, tool: &'static str, args: OrderIdArgs) -> ToolResult {
        let id = match OrderId::parse(&args.id) {
            Ok(id) => id,
            Err(why) => return ToolResult::error(why, meta(who, None, None)),
        };
        let traced = self.api.cancel_order(who, &id).await;
        respond_about(who, tool, &id, traced, |order| format!("Cancelled order {order}"))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for OrdersTools {
    /// Every tool call under one span that continues the client's trace ([`call_span`]).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let span = call_span(&request.name, &context.id, Some(&*context.meta));
        self.tool_router.call(ToolCallContext::new(self, request, context)).instrument(span).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new(SERVICE, env!("CARGO_PKG_VERSION")).with_title("Orders (Contoso Orders Copilot)"),
            )
            .with_instructions(
                "Tools for the signed-in user's orders. Every call runs as that user: they see and change only their \
                 own orders (administrators see all). Use list_orders to find order ids, get_order for details, \
                 create_order to place an order and cancel_order to cancel one.",
            )
    }
}

/// The span of one tool call, continuing the client's trace from the request's `_meta`: MCP
/// carries W3C Trace Context there (`traceparent`, `tracestate`; SEP-414, "Document OpenTelemetry
/// Trace Context Propagation Conventions"), since one HTTP request of a Streamable HTTP session
/// is not one call. rmcp's route uses it; the direct route ([`crate::mcp_endpoint`]) makes the
/// request's own span the call's instead, and uses this only when it cannot. It is the tool's
/// only span: orders-mcp's hop record becomes its attributes ([`meta`]), and
/// the call to orders-api is its child. (A span per tool method under it repeated the same
/// facts at the cost of one more span per call: see the README's tracing overhead.)
///
/// Named and described as OpenTelemetry's MCP server span ("Semantic conventions for Model
/// Context Protocol", semantic-conventions-genai `docs/gen-ai/mcp.md`): `{mcp.method.name}
/// {gen_ai.tool.name}`, with `gen_ai.operation.name` `execute_tool` so that GenAI views treat
/// it as a tool execution, and `error.type` `tool_error` when the result says `isError`.
pub fn call_span(tool: &str, id: &RequestId, meta: Option<&MetaObject>) -> Span {
    let span = tracing::info_span!(
        "mcp.tools/call",
        otel.name = %format_args!("tools/call {tool}"),
        otel.kind = "server",
        mcp.method.name = "tools/call",
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %tool,
        jsonrpc.request.id = jsonrpc_id(id),
        error.type = Empty,
        otel.status_code = Empty,
    );
    service_kit::telemetry::context::continue_trace_from(&span, trace_context_in(meta));
    span
}

/// [`call_span`]'s attributes, for a span made before the call was known (the direct route's
/// request span, which becomes the call's).
pub fn call_attributes(tool: &str, id: &RequestId) -> impl IntoIterator<Item = KeyValue> {
    [
        KeyValue::new("mcp.method.name", "tools/call"),
        KeyValue::new("gen_ai.operation.name", "execute_tool"),
        KeyValue::new("gen_ai.tool.name", tool.to_owned()),
    ]
    .into_iter()
    .chain(jsonrpc_id(id).map(|id| KeyValue::new("jsonrpc.request.id", id)))
}

/// A request's JSON-RPC id as its span's `jsonrpc.request.id`, unless it is long: the client
/// chooses it, and a span is not the place for whatever it put there.
fn jsonrpc_id(id: &RequestId) -> Option<String> {
    const MAX: usize = 64;
    let id = id.to_string();
    (id.len() <= MAX).then_some(id)
}

/// Reads the W3C Trace Context a request's `_meta` carries (`traceparent`, `tracestate`), if it
/// has a `_meta`.
pub fn trace_context_in(meta: Option<&MetaObject>) -> impl Fn(&str) -> Option<String> + '_ {
    move |key| match key {
        "traceparent" => meta?.get_traceparent().map(String::from),
        "tracestate" => meta?.get_tracestate().map(String::from),
        _ => None,
    }
}

/// The caller the auth middleware put on the request. Without it the request never passed the
/// middleware: refuse (this is a server fault, not the model's).
fn authenticated(parts: &Parts) -> Result<&Authenticated, ErrorData> {
    parts
        .extensions
        .get::<Arc<Authenticated>>()
        .map(Arc::as_ref)
        .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
}

/// The hop trace: orders-mcp's own hop, then orders-api's when it sent one; and the token
/// orders-mcp sent downstream.
fn meta(who: &Authenticated, sent: Option<SentToken>, api_hop: Option<Hop>) -> ResultMeta {
    let own = who.caller.hop(SERVICE, How::Direct, Decision::Allowed, who.received.elapsed());
    span_attributes::record_hop(&Span::current(), &own);
    let hops: Vec<Hop> = std::iter::once(own).chain(api_hop).collect();
    ResultMeta { hops, sent, claims_challenge: None }
}

/// The result of a call to orders-api: its answer as structured content after a short summary
/// (for clients that read only text content), or the error.
fn respond<T: Serialize>(
    who: &Authenticated,
    tool: &str,
    traced: Traced<T>,
    text: impl FnOnce(&T) -> String,
) -> ToolResult {
    let Traced { result, sent, api_hop } = traced;
    let mut meta = meta(who, sent, api_hop);
    match result {
        Ok(value) => ToolResult::success(&value, text(&value), meta),
        Err(e) => {
            tracing::warn!(tool, oid = %who.caller.oid, error = %e, "tool call failed");
            // A result with `isError` is a failed tool execution (MCP conventions' `error.type`).
            record_error(&Span::current(), "tool_error");
            if let CallError::StepUpRequired { challenge, .. } = &e {
                meta.claims_challenge = Some(challenge.header_value());
            }
            ToolResult::error(e.to_string(), meta)
        }
    }
}

/// [`respond`], with the wording for a call about one order.
fn respond_about(
    who: &Authenticated,
    tool: &str,
    id: &OrderId,
    traced: Traced<Order>,
    text: impl FnOnce(&Order) -> String,
) -> ToolResult {
    let traced = Traced {
        result: traced.result.map_err(|e| match e {
            CallError::Status { status, detail } if status == http::StatusCode::NOT_FOUND => CallError::Status {
                status,
                detail: format!("no order {id} was found among the orders you can see ({detail})"),
            },
            CallError::Status { status, detail } if status == http::StatusCode::CONFLICT => {
                CallError::Status { status, detail: format!("order {id} cannot be cancelled: {detail}") }
            }
            other => other,
        }),
        ..traced
    };
    respond(who, tool, traced, text)
}
