//! The identity attributes on trace spans: what a [`Hop`] record says, as OpenTelemetry span
//! attributes, so a trace viewer or Application Insights shows who called, with which token
//! audience and grant, and what the hop decided.
//!
//! [`NAMES`] is the one list of these names: the services emit only these, and the Azure
//! Monitor workbook's queries (`infra/workbook/`) may name only these (a test checks). Values
//! come from validated claims, never from a token, code, secret or cookie.

use service_kit::telemetry::context::{KeyValue, exporting, set_attribute, set_attributes};
use tracing::Span;

use crate::hop::{Decision, Hop, How};

/// The service that recorded the hop (`chat-app`, `orders-mcp`, `orders-api`).
pub const SERVICE: &str = "identity.service";
/// The user's object id (OpenTelemetry's semantic convention for the end user).
pub const USER: &str = "enduser.id";
pub const TENANT: &str = "identity.tenant_id";
/// The token's `aud`.
pub const AUDIENCE: &str = "identity.audience";
/// `1.0` or `2.0`.
pub const TOKEN_VERSION: &str = "identity.token_version";
/// Delegated scopes (`scp`), space-separated.
pub const SCOPES: &str = "identity.scopes";
/// App roles, space-separated.
pub const ROLES: &str = "identity.roles";
/// The client the token was issued to (`azp` / `appid`).
pub const CLIENT: &str = "identity.client_id";
/// How the token arrived: `sign-in`, `direct`, `forwarded` or `obo` ([`How`]).
pub const GRANT: &str = "identity.grant";
/// For an On-Behalf-Of exchange: `cache` when the cached token was used, `issued` otherwise.
pub const TOKEN_SOURCE: &str = "identity.token_source";
/// `allowed`, `denied` (the identity fell short) or `refused` (the request did).
pub const OUTCOME: &str = "identity.outcome";
/// Why a hop denied or refused, one short phrase (`wrong-audience`, `expired`, ...).
pub const REASON: &str = "identity.reason";

/// Every identity attribute name a service may put on a span.
pub const NAMES: [&str; 12] =
    [SERVICE, USER, TENANT, AUDIENCE, TOKEN_VERSION, SCOPES, ROLES, CLIENT, GRANT, TOKEN_SOURCE, OUTCOME, REASON];

/// The [`GRANT`] value of `how`.
pub fn grant(how: How) -> &'static str {
    match how {
        How::SignIn => "sign-in",
        How::Direct => "direct",
        How::Forwarded => "forwarded",
        How::Obo => "obo",
    }
}

/// Puts `hop` on `span` (a no-op when traces are not exported), in one update of the span.
pub fn record_hop(span: &Span, hop: &Hop) {
    // Checked here, not only where they are set: the values are copies, made on every request.
    if !exporting() {
        return;
    }
    let t = &hop.token;
    let (outcome, reason) = match &hop.decision {
        Decision::Allowed => ("allowed", None),
        Decision::Denied { reason } => ("denied", Some(reason)),
        Decision::Refused { reason } => ("refused", Some(reason)),
    };
    let attributes = [
        KeyValue::new(SERVICE, hop.service.clone()),
        KeyValue::new(USER, t.oid.clone()),
        KeyValue::new(TENANT, t.tid.clone()),
        KeyValue::new(AUDIENCE, t.aud.clone()),
        KeyValue::new(TOKEN_VERSION, t.ver.clone()),
        KeyValue::new(SCOPES, t.scp.join(" ")),
        KeyValue::new(ROLES, t.roles.join(" ")),
        KeyValue::new(CLIENT, t.client_id.clone()),
        KeyValue::new(GRANT, grant(hop.how)),
        KeyValue::new(OUTCOME, outcome),
    ];
    let reason = reason.map(|r| KeyValue::new(REASON, r.clone()));
    set_attributes(span, attributes.into_iter().chain(reason));
}

/// A refusal before any token was accepted (missing, expired, wrong audience, ...): `service`
/// denied with a short `reason` code.
pub fn record_refusal(span: &Span, reason: &'static str) {
    set_attribute(span, OUTCOME, "denied");
    set_attribute(span, REASON, reason);
}
