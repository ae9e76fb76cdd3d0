//! Conditional Access authentication context: the `claims` request parameter that asks for one
//! (`{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`), and the `acrs` claim of the
//! tokens issued once the user stepped up.
//!
//! "Claims challenges, claims requests and client capabilities"
//! (learn.microsoft.com/entra/identity-platform/claims-challenge) and "Developer guide to
//! Conditional Access authentication context" (learn.microsoft.com/entra/identity-platform/
//! developer-guide-conditional-access-authentication-context): a resource answers a token that
//! lacks the context with a claims challenge; the client sends the challenge's JSON as the
//! `claims` parameter of a new authorization request; Entra evaluates the policy targeting the
//! context and issues tokens whose `acrs` lists it. The emulator's "policy" for every context
//! is the step-up page: the signed-in user confirms again.

use serde_json::{Value, json};

use crate::error::EntraError;
use crate::state::Emulator;

/// How long a step-up keeps counting for refreshed tokens. Entra re-evaluates the policy's
/// sign-in frequency; the emulator's stand-in is one hour (docs/agent-identity.md, "Not settled").
pub const STEP_UP_LIFETIME_SECS: i64 = 3600;

/// The authentication contexts a `claims` parameter asks for in the access token (`acrs` with
/// `value` or `values`), checked against the tenant's. Other claims (`xms_cc`, ...) are accepted
/// and ignored, as Entra ignores claims it does not act on.
pub fn requested(emulator: &Emulator, claims: Option<&str>) -> Result<Vec<String>, EntraError> {
    let Some(text) = claims.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(Vec::new());
    };
    let json: Value = serde_json::from_str(text).map_err(|_| malformed("the claims parameter is not valid JSON"))?;
    let acrs = &json["access_token"]["acrs"];
    let mut ids: Vec<String> = match (&acrs["value"], &acrs["values"]) {
        (Value::Null, Value::Null) if acrs.is_null() => return Ok(Vec::new()),
        (Value::String(one), Value::Null) => vec![one.clone()],
        (Value::Null, Value::Array(many)) => many.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => return Err(malformed("access_token.acrs needs a string \"value\" or an array of strings \"values\"")),
    };
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Err(malformed("access_token.acrs names no authentication context"));
    }
    // An id the tenant has no authentication context for cannot be satisfied: refused rather
    // than ignored, so a typo never yields a token the resource will refuse again.
    if let Some(unknown) = ids.iter().find(|id| emulator.manifest().auth_context(id).is_none()) {
        return Err(EntraError::new(
            "invalid_request",
            9002313,
            format!(
                "Invalid request. The authentication context '{unknown}' requested in the claims parameter is not defined in this tenant."
            ),
        ));
    }
    Ok(ids)
}

/// The authentication contexts of `held` that a token request's `claims` asks for. Asking for
/// one that `held` lacks needs the user: Entra's `interaction_required` with the claims to send
/// in an interactive request ("Microsoft identity platform and OAuth 2.0 On-Behalf-Of flow",
/// error response example: the middle tier passes the error and its `claims` to its client).
/// AADSTS50076 is Entra's code for a sign-in that must satisfy a stronger requirement.
pub fn granted(emulator: &Emulator, claims: Option<&str>, held: &[String]) -> Result<Vec<String>, EntraError> {
    let wanted = requested(emulator, claims)?;
    let missing: Vec<&String> = wanted.iter().filter(|id| !held.contains(id)).collect();
    if missing.is_empty() {
        return Ok(wanted);
    }
    let challenge = json!({ "access_token": { "acrs": { "essential": true, "values": missing } } });
    Err(EntraError::new(
        "interaction_required",
        50076,
        "Due to a configuration change made by your administrator, you must satisfy the authentication context required by the resource. Send an interactive authorization request with the claims in this response.",
    )
    .with_claims(challenge.to_string()))
}

fn malformed(detail: &str) -> EntraError {
    EntraError::new("invalid_request", 9002313, format!("Invalid request. {detail}."))
}
