//! The token request's form: parsed strictly (a repeated parameter is refused, as in Entra).

use std::collections::HashMap;

use crate::error::EntraError;

pub type Params = HashMap<String, String>;

pub fn parse_form(body: &[u8]) -> Result<Params, EntraError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
        EntraError::new("invalid_request", 9002313, "Invalid request. Request is malformed or invalid.")
    })?;
    let mut params = Params::new();
    for (k, v) in pairs {
        if params.insert(k.clone(), v).is_some() {
            return Err(EntraError::new(
                "invalid_request",
                9002313,
                format!("Invalid request. The parameter '{k}' is duplicated."),
            ));
        }
    }
    Ok(params)
}

/// A parameter that must be present and non-empty.
pub fn required<'p>(params: &'p Params, name: &str) -> Result<&'p str, EntraError> {
    params.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| EntraError::missing_parameter(name))
}

/// MSAL's `client_info=1`: the response carries the user's `client_info`.
pub fn wants_client_info(params: &Params) -> bool {
    params.get("client_info").is_some_and(|v| v == "1")
}

/// RFC 8707's `resource` (an MCP client sends the MCP server's URL), when present.
pub fn resource(params: &Params) -> Option<&str> {
    params.get("resource").map(String::as_str).filter(|v| !v.is_empty())
}
