//! Talking to token endpoints: one timeout, and answers read as a token or as the OAuth error
//! they carry.

use std::time::Duration;

use serde::Deserialize;

use super::error::{AcquireError, describe};

/// Network calls to an identity endpoint give up after this long.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The OAuth error body Entra returns (RFC 6749 §5.2 plus Entra's fields).
#[derive(Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u32>,
}

/// Turns a response into `T`, or into the OAuth error it carries.
pub(crate) async fn read_response<T: for<'de> Deserialize<'de>>(
    endpoint: &str,
    result: Result<reqwest::Response, reqwest::Error>,
) -> Result<T, AcquireError> {
    let response =
        result.map_err(|e| AcquireError::Unreachable { endpoint: endpoint.to_string(), reason: describe(e) })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| AcquireError::Unreachable { endpoint: endpoint.to_string(), reason: describe(e) })?;
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| AcquireError::BadResponse { endpoint: endpoint.to_string(), reason: e.to_string() });
    }
    match serde_json::from_slice::<OAuthErrorBody>(&body) {
        Ok(e) => Err(AcquireError::Rejected {
            status: status.as_u16(),
            error: e.error,
            description: e.error_description,
            codes: e.error_codes,
        }),
        Err(_) => Err(AcquireError::Rejected {
            status: status.as_u16(),
            error: format!("http_{}", status.as_u16()),
            description: status.canonical_reason().unwrap_or("error").to_string(),
            codes: Vec::new(),
        }),
    }
}

/// Accepts `3599` and `"3599"`.
pub(crate) fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(u64),
        Str(String),
    }
    match NumOrString::deserialize(d)? {
        NumOrString::Num(n) => Ok(n),
        NumOrString::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}
