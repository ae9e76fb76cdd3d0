//! The identity attributes on trace spans: what a [`Hop`] record says, as OpenTelemetry span
//! attributes, so a trace viewer or Application Insights shows who called, with which token
//! audience and grant, and what the hop decided.
//!
//! [`NAMES`] is the one list of these names: the services emit only these, and the Azure
//! Monitor workbook's queries (`infra/workbook/`) may name only these (a test checks). Values
//! come from validated claims, never from a token, code, secret or cookie.

use service_kit::telemetry::context::{exporting, set_attribute};
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

/// Puts `hop` on `span` (a no-op when traces are not exported).
pub fn record_hop(span: &Span, hop: &Hop) {
    // Checked here too, not only per attribute: the values are copies, made on every request.
    if !exporting() {
        return;
    }
    let t = &hop.token;
    set_attribute(span, SERVICE, hop.service.clone());
    set_attribute(span, USER, t.oid.clone());
    set_attribute(span, TENANT, t.tid.clone());
    set_attribute(span, AUDIENCE, t.aud.clone());
    set_attribute(span, TOKEN_VERSION, t.ver.clone());
    set_attribute(span, SCOPES, t.scp.join(" "));
    set_attribute(span, ROLES, t.roles.join(" "));
    set_attribute(span, CLIENT, t.client_id.clone());
    set_attribute(span, GRANT, grant(hop.how));
    record_decision(span, &hop.decision);
}

/// Puts a decision on `span`: [`OUTCOME`], and [`REASON`] unless allowed.
pub fn record_decision(span: &Span, decision: &Decision) {
    let (outcome, reason) = match decision {
        Decision::Allowed => ("allowed", None),
        Decision::Denied { reason } => ("denied", Some(reason)),
        Decision::Refused { reason } => ("refused", Some(reason)),
    };
    set_attribute(span, OUTCOME, outcome);
    if let Some(reason) = reason {
        set_attribute(span, REASON, reason.clone());
    }
}

/// A refusal before any token was accepted (missing, expired, wrong audience, ...): `service`
/// denied with a short `reason` code.
pub fn record_refusal(span: &Span, reason: &'static str) {
    set_attribute(span, OUTCOME, "denied");
    set_attribute(span, REASON, reason);
}
