//! `/api/orders`: list, read, create, cancel and delete the caller's orders.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::authorization::{DeleteOrders, Permitted, ReadOrders, WriteOrders};
use crate::domain::{Cursor, NewOrder, Order, OrderId, OrderPage, OrderStatus, PageLimit};
use crate::error::ApiError;
use crate::extract::{Idempotency, Json, Path, Query};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, ORDERS_TAG, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::state::AppState;
use crate::store::{Cancelled, Created, OrderStore};

/// Set on a `201` that replays the first response to an `Idempotency-Key`.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only orders with this status.
    status: Option<OrderStatus>,
    /// Orders per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged: the id of its last order. Any order id
    /// is valid (the page after it, possibly empty).
    #[param(pattern = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$", example = "ORD-020")]
    cursor: Option<String>,
}

/// A new order. `product`: at most 200 characters, no control characters (line breaks, tabs,
/// U+2028, U+2029), no invisible characters (zero-width spaces, text-direction controls, Unicode
/// tags U+E0000 to U+E007F, U+1BCA0 to U+1BCA3, U+1D173 to U+1D17A), a variation selector
/// (U+FE00 to U+FE0F, U+E0100 to U+E01EF, Mongolian U+180B to U+180D and U+180F) only right
/// after a character that is neither white space nor a selector, not only white space and
/// zero-width characters; stored trimmed. (The patterns in this module's attributes are
/// `domain`'s `PRODUCT_PATTERN`, `ORDER_ID_PATTERN` and `IDEMPOTENCY_KEY_PATTERN`: attributes
/// take only literals, so the OpenAPI test compares them.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    #[schema(
        max_length = 200,
        pattern = r"^(?:[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u180b-\u180d\u180f\ufe00-\ufe0f]|[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u180b-\u180d\u180f\ufe00-\ufe0f \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000][\u180b-\u180d\u180f\ufe00-\ufe0f])*[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u180b-\u180d\u180f\ufe00-\ufe0f \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000\u061c\u200c-\u200f][\u180b-\u180d\u180f\ufe00-\ufe0f]?(?:[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u180b-\u180d\u180f\ufe00-\ufe0f]|[^\u0000-\u001f\u007f-\u009f\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u2028\u2029\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff9-\ufffb\u180b-\u180d\u180f\ufe00-\ufe0f \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000][\u180b-\u180d\u180f\ufe00-\ufe0f])*$",
        example = "Mechanical keyboard"
    )]
    product: String,
    /// A whole number; JSON Schema counts `2.0` as one, so it is accepted as 2.
    #[schema(minimum = 1, maximum = 1000, example = 2)]
    #[serde(deserialize_with = "whole_number")]
    quantity: i64,
}

/// A JSON number with no fractional part, as an `i64`: `2` and `2.0` alike (JSON Schema's
/// `integer` includes both, and the OpenAPI document promises JSON Schema's meaning).
fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_i64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!("expected a whole number, got {number}"))),
    }
}

/// The caller's orders (every user's for `Orders.Admin`), oldest first.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = ORDERS_TAG,
    params(ListQuery),
    security(("entra" = ["Orders.Read", "Orders.ReadWrite"])),
    responses(
        (status = 200, description = "One page of orders.", body = OrderPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
pub async fn list_orders(
    Permitted(user, _): Permitted<ReadOrders>,
    State(store): State<OrderStore>,
    Query(query): Query<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let limit = PageLimit::parse(query.limit).map_err(ApiError::BadRequest)?;
    let cursor = query.cursor.as_deref().map(Cursor::decode).transpose().map_err(ApiError::BadRequest)?;
    Ok(Json(store.list(user.visibility(), query.status, limit, cursor).await?))
}

/// One order, if the caller may see it.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = ORDERS_TAG,
    params(("id" = String, Path, description = "Order id, e.g. ORD-001.", example = "ORD-001", pattern = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$")),
    security(("entra" = ["Orders.Read", "Orders.ReadWrite"])),
    responses(
        (status = 200, description = "The order.", body = Order),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_order(
    Permitted(user, _): Permitted<ReadOrders>,
    State(store): State<OrderStore>,
    Path(id): Path<OrderId>,
) -> Result<Json<Order>, ApiError> {
    store.get(id, user.visibility()).await?.map(Json).ok_or(ApiError::OrderNotFound(id))
}

/// Places an order for the caller. With an `Idempotency-Key`, a retry of the same request
/// returns the first response (marked `Idempotent-Replayed: true`) and creates nothing.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = ORDERS_TAG,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$",
        description = "1 to 255 visible ASCII characters naming this create attempt, per user. The same key with the \
            same body replays the first response; with a different body it is refused (422).")),
    request_body = CreateOrder,
    security(("entra" = ["Orders.ReadWrite"])),
    responses(
        (status = 201, description = "The new order (or, for a retried Idempotency-Key, the first response again).",
            body = Order,
            headers(
                ("Location" = String, description = "The order's URL."),
                ("idempotent-replayed" = String, description = "`true` when this is a replayed response.")
            )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 503, response = Unavailable),
    )
)]
pub async fn create_order(
    Permitted(user, _): Permitted<WriteOrders>,
    State(state): State<AppState>,
    Idempotency(key): Idempotency,
    Json(body): Json<CreateOrder>,
) -> Result<Response, ApiError> {
    let new =
        NewOrder::parse(&body.product, body.quantity).map_err(|problems| ApiError::Validation(problems.join("; ")))?;
    let (order, replayed) = match state.store.create(&user, &new, key.as_ref()).await? {
        Created::New(order) => (order, false),
        Created::Replayed(order) => (order, true),
        Created::KeyReused => return Err(ApiError::IdempotencyKeyReused),
    };
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("{}/api/orders/{}", state.public_url, order.id)) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok((StatusCode::CREATED, headers, Json(order)).into_response())
}

/// Cancels an order that is still pending or processing.
#[utoipa::path(
    post,
    path = "/api/orders/{id}/cancel",
    tag = ORDERS_TAG,
    params(("id" = String, Path, description = "Order id, e.g. ORD-001.", example = "ORD-001", pattern = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$")),
    security(("entra" = ["Orders.ReadWrite"])),
    responses(
        (status = 200, description = "The cancelled order.", body = Order),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
pub async fn cancel_order(
    Permitted(user, _): Permitted<WriteOrders>,
    State(store): State<OrderStore>,
    Path(id): Path<OrderId>,
) -> Result<Json<Order>, ApiError> {
    match store.cancel(id, user.visibility()).await? {
        Cancelled::Done(order) => Ok(Json(order)),
        Cancelled::NotFound => Err(ApiError::OrderNotFound(id)),
        Cancelled::NotCancellable(status) => Err(ApiError::NotCancellable(id, status)),
    }
}

/// Deletes any user's order: `Orders.Admin` only.
#[utoipa::path(
    delete,
    path = "/api/orders/{id}",
    tag = ORDERS_TAG,
    params(("id" = String, Path, description = "Order id, e.g. ORD-001.", example = "ORD-001", pattern = r"^ORD-(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2,11})$")),
    security(("entra" = ["Orders.ReadWrite"])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn delete_order(
    Permitted(_admin, _): Permitted<DeleteOrders>,
    State(store): State<OrderStore>,
    Path(id): Path<OrderId>,
) -> Result<StatusCode, ApiError> {
    if store.delete(id).await? { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::OrderNotFound(id)) }
}
