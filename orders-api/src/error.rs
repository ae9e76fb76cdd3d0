//! Every error the API answers with, as RFC 9457 problem+json. The `type` of each is
//! `urn:orders-copilot:problem:<slug>`; the slugs are listed in the README.
//!
//! axum's own rejections (bad JSON, wrong content type, body too large, bad path or query)
//! are mapped here too, so no client ever sees a plain-text or empty error body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use service_kit::problem::Problem;

use crate::domain::{OrderId, OrderStatus};
use crate::hop_trace::DenyReason;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the request is malformed (JSON syntax, id format, query, header).
    BadRequest(String),
    /// 422: well-formed JSON whose content is invalid (unknown field, wrong type, out of range).
    Validation(String),
    /// 422: an `Idempotency-Key` reused for a different request.
    IdempotencyKeyReused,
    /// 404: no such order *for this caller*: another user's order answers the same.
    OrderNotFound(OrderId),
    /// 409: the order's status does not allow the change.
    NotCancellable(OrderId, OrderStatus),
    PayloadTooLarge,
    UnsupportedMediaType,
    /// 404 for a path no route serves.
    RouteNotFound,
    /// 405 for a method a route does not serve.
    MethodNotAllowed,
    /// 503: the order store cannot answer (details are logged, not returned).
    Unavailable,
    /// 403: the call is an agent's and `ORDERS_API_AGENT_POLICY` does not let agents do this.
    AgentRefused(String),
    /// 403: a user's token issued to a client other than orders-mcp.
    ClientRefused,
    /// 401 with a claims challenge: an agent's write under `approved-writes` whose token lacks
    /// the approval's authentication context (`acrs`). The `WWW-Authenticate` value, then why.
    StepUpRequired {
        challenge: String,
        detail: String,
    },
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            ApiError::BadRequest(detail) => (StatusCode::BAD_REQUEST, "bad-request", detail.clone()),
            ApiError::AgentRefused(detail) => (StatusCode::FORBIDDEN, "agent-refused", detail.clone()),
            ApiError::ClientRefused => (
                StatusCode::FORBIDDEN,
                "client-refused",
                "orders-api accepts a user's token only from orders-mcp, which obtains it On-Behalf-Of the user; \
                 this token was issued to another application"
                    .into(),
            ),
            ApiError::StepUpRequired { detail, .. } => (StatusCode::UNAUTHORIZED, "step-up-required", detail.clone()),
            ApiError::Validation(detail) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", detail.clone()),
            ApiError::IdempotencyKeyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was already used for a different request".into(),
            ),
            ApiError::OrderNotFound(id) => (StatusCode::NOT_FOUND, "not-found", format!("order {id} not found")),
            ApiError::NotCancellable(id, status) => (
                StatusCode::CONFLICT,
                "conflict",
                format!("order {id} is {status}: only pending or processing orders can be cancelled"),
            ),
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "the request body is larger than 64 KiB".into())
            }
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "the request body must be JSON, sent with Content-Type: application/json".into(),
            ),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "not-found", "no resource at this path".into()),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "this resource does not support the method; see the Allow header".into(),
            ),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the order store is unavailable; try again shortly".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, detail) = self.parts();
        let mut response = Problem::new(status, slug, detail.clone()).into_response();
        if let ApiError::StepUpRequired { challenge, .. } = &self
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response.extensions_mut().insert(DenyReason(detail));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // The cause goes to the log only: it may name files and tables.
        tracing::error!(%error, "order store error");
        ApiError::Unavailable
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::Validation(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

pub async fn route_not_found() -> ApiError {
    ApiError::RouteNotFound
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
