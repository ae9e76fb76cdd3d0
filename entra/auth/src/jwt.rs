//! The one piece of JWT decoding both validation and display need: a base64url JSON segment.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

/// A JWT segment was not base64url JSON of the expected shape.
#[derive(Debug)]
pub(crate) struct NotJson;

/// Decodes a payload segment. Only for a verified token, or for display (see `hop`).
pub(crate) fn decode_payload<C: DeserializeOwned>(segment: &str) -> Result<C, NotJson> {
    let json = URL_SAFE_NO_PAD.decode(segment).map_err(|_| NotJson)?;
    serde_json::from_slice(&json).map_err(|_| NotJson)
}
