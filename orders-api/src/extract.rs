//! axum's extractors with this API's rejections: each failure becomes a problem+json
//! [`ApiError`] instead of axum's plain-text body.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::IdempotencyKey;
use crate::error::ApiError;

/// A JSON body (64 KiB at most, `Content-Type: application/json`), or a JSON response.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The optional `Idempotency-Key` header; sent twice or malformed, it is a 400.
pub struct Idempotency(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(Idempotency(None));
        };
        if values.next().is_some() {
            return Err(ApiError::BadRequest("send at most one Idempotency-Key header".into()));
        }
        IdempotencyKey::parse(value.as_bytes()).map(|key| Idempotency(Some(key))).map_err(ApiError::BadRequest)
    }
}
