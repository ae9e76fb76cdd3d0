//! The hop trace: what each service saw of the token it validated.
//!
//! Every hop (chat-app, orders-mcp, orders-api) reports one [`Hop`]. It is built from a
//! validated [`Caller`](crate::Caller), so it can never contain the raw token: only the claims
//! worth showing on stage and the last characters of the token's id.

use serde::{Deserialize, Serialize};

/// HTTP response header in which a service returns its own hop record, as base64url (no
/// padding) of the JSON [`Hop`]. orders-api sets it on every authenticated response.
pub const HOP_HEADER: &str = "x-hop-trace";

/// The key under which orders-mcp puts the hops (a JSON array of [`Hop`]) in a tool result's
/// `_meta`, first its own, then orders-api's.
pub const MCP_META_KEY: &str = "dev.orders-copilot/hops";

/// One service's view of the identity it was called with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hop {
    /// The service that validated the token, e.g. `orders-api`.
    pub service: String,
    /// What the token said, as validated by that service.
    pub token: TokenSummary,
    /// How the caller obtained the token this service received.
    pub how: How,
    pub decision: Decision,
    /// Time this service spent on the request, in milliseconds.
    pub elapsed_ms: f64,
}

/// The claims of a validated token that matter for identity propagation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    pub aud: String,
    pub iss: String,
    /// `"1.0"` or `"2.0"`.
    pub ver: String,
    /// Delegated scopes (`scp`); empty for app-only tokens.
    pub scp: Vec<String>,
    pub roles: Vec<String>,
    /// The client the token was issued to (`azp` in v2, `appid` in v1).
    pub client_id: String,
    /// Object id of the user (or, for app-only tokens, of the service principal).
    pub oid: String,
    pub name: Option<String>,
    pub tid: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// The last characters of the token identifier (`uti`), enough to tell tokens apart.
    pub token_id_suffix: String,
    /// The token's JOSE header as this hop read it (the presenter view shows it). Absent in
    /// records made before hops kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<TokenHeader>,
    /// The agent acting for the user, when the token names one (Microsoft Entra Agent ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentActor>,
    /// Conditional Access authentication contexts the user stepped up for (`acrs`), e.g. `c1`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acrs: Vec<String>,
}

/// The agent a token names (Microsoft Entra Agent ID): shown at every hop, never a reason to
/// allow anything. Authorization stays on `scp`/`roles` and the user; Microsoft's guidance for
/// resources is to validate agent tokens like any other and not to authorize on the blueprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentActor {
    /// The agent identity's app id.
    pub id: String,
    /// Its blueprint's app id (`xms_par_app_azp`).
    pub blueprint_id: String,
    pub named_as: AgentNamedAs,
}

/// Where in the token the agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentNamedAs {
    /// The token was issued to the agent: `azp`/`appid` is the agent identity, and
    /// `xms_par_app_azp` (present only in agent tokens) names its blueprint.
    Client,
    /// A middle tier exchanged an agent's token On-Behalf-Of: the middle tier is `azp`/`appid`,
    /// the agent the prior actor (`act`). Entra's docs do not describe this token; the
    /// emulator's choice, see docs/agent-identity.md.
    PriorActor,
}

/// RFC 8693's `act` claim, as the emulator writes it for a middle tier's token.
#[cfg(feature = "server")]
#[derive(Debug, Deserialize)]
pub(crate) struct Act {
    sub: Option<String>,
    xms_par_app_azp: Option<String>,
}

/// The agent a token's claims name: `xms_par_app_azp` present marks a token issued to an agent
/// identity (then `client_id`, its `azp`/`appid`, is the agent), else a prior actor in `act`.
#[cfg(feature = "server")]
pub(crate) fn agent_of(client_id: &str, xms_par_app_azp: Option<&str>, act: Option<&Act>) -> Option<AgentActor> {
    match (xms_par_app_azp, act) {
        (Some(blueprint), _) if !blueprint.is_empty() && !client_id.is_empty() => Some(AgentActor {
            id: client_id.to_string(),
            blueprint_id: blueprint.to_string(),
            named_as: AgentNamedAs::Client,
        }),
        (_, Some(Act { sub: Some(id), xms_par_app_azp: Some(blueprint) })) => {
            Some(AgentActor { id: id.clone(), blueprint_id: blueprint.clone(), named_as: AgentNamedAs::PriorActor })
        }
        _ => None,
    }
}

/// A token's JOSE header: which key signed it and how. Never the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenHeader {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The signing key's id in the tenant's JWKS.
    pub kid: String,
}

/// How the token arrived at a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// Issued to the user's client at sign-in (chat-app's own record of the token it sends).
    SignIn,
    /// Issued for this service to the client that called it, and sent by that client: the
    /// normal case at orders-mcp (chat-app's sign-in token, validated there).
    Direct,
    /// Issued for another service and forwarded unchanged by the previous hop: the
    /// confused-deputy pattern, seen only in the passthrough demonstration.
    Forwarded,
    /// Exchanged by the previous hop through On-Behalf-Of.
    Obo,
}

/// What the hop decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Decision {
    Allowed,
    /// The identity was refused: no valid token, or a token without the scope or role needed.
    Denied {
        reason: String,
    },
    /// The token was accepted and the request refused on its merits (not found, already
    /// shipped, invalid input): not an identity decision.
    Refused {
        reason: String,
    },
}

#[cfg(feature = "server")]
impl TokenSummary {
    /// Summarises a token *without validating it*: for a client showing the token it is about
    /// to send (it is not the audience, so it cannot and need not validate it). Never use this
    /// to make an access decision. `None` if the token is not a readable JWT.
    pub fn from_unverified(token: &str) -> Option<TokenSummary> {
        #[derive(Deserialize)]
        struct Claims {
            #[serde(default)]
            aud: String,
            #[serde(default)]
            iss: String,
            #[serde(default)]
            ver: String,
            scp: Option<String>,
            #[serde(default)]
            roles: Vec<String>,
            azp: Option<String>,
            appid: Option<String>,
            #[serde(default)]
            oid: String,
            name: Option<String>,
            #[serde(default)]
            tid: String,
            #[serde(default)]
            exp: i64,
            #[serde(default)]
            uti: String,
            xms_par_app_azp: Option<String>,
            act: Option<Act>,
            #[serde(default)]
            acrs: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Header {
            #[serde(default)]
            alg: String,
            typ: Option<String>,
            #[serde(default)]
            kid: String,
        }
        let mut segments = token.split('.');
        let header: Option<Header> = segments.next().and_then(|h| crate::jwt::decode_payload(h).ok());
        let c: Claims = crate::jwt::decode_payload(segments.next()?).ok()?;
        let client_id = c.azp.or(c.appid).unwrap_or_default();
        let agent = agent_of(&client_id, c.xms_par_app_azp.as_deref(), c.act.as_ref());
        Some(TokenSummary {
            aud: c.aud,
            iss: c.iss,
            ver: c.ver,
            scp: c.scp.map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect()).unwrap_or_default(),
            roles: c.roles,
            client_id,
            oid: c.oid,
            name: c.name,
            tid: c.tid,
            exp: c.exp,
            token_id_suffix: id_suffix(&c.uti),
            header: header.map(|h| TokenHeader { alg: h.alg, typ: h.typ, kid: h.kid }),
            agent,
            acrs: c.acrs,
        })
    }
}

/// The last characters of a token id: enough to tell tokens apart on screen, useless to replay.
#[cfg(feature = "server")]
pub(crate) fn id_suffix(token_id: &str) -> String {
    let start = token_id.char_indices().rev().nth(5).map_or(0, |(i, _)| i);
    token_id[start..].to_string()
}

#[cfg(feature = "server")]
mod encoding {
    use super::Hop;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    impl Hop {
        /// The value for [`HOP_HEADER`](super::HOP_HEADER).
        pub fn to_header_value(&self) -> String {
            // Serializing plain strings and numbers cannot fail; an empty value is harmless.
            let json = serde_json::to_vec(self).unwrap_or_default();
            URL_SAFE_NO_PAD.encode(json)
        }

        /// Parses a [`HOP_HEADER`](super::HOP_HEADER) value; `None` if it is not a hop record.
        pub fn from_header_value(value: &str) -> Option<Hop> {
            let json = URL_SAFE_NO_PAD.decode(value.trim()).ok()?;
            serde_json::from_slice(&json).ok()
        }
    }
}
