//! Claims challenges for Conditional Access authentication context: the resource's side (a
//! `401` whose `WWW-Authenticate` says which claims a new token needs) and the client's side
//! (reading one back, to ask the user to step up).
//!
//! The shape is Microsoft's ("Claims challenges, claims requests and client capabilities",
//! learn.microsoft.com/entra/identity-platform/claims-challenge):
//! `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize",
//! error="insufficient_claims", claims="<base64 of the claims request>"` (realm names the tenant
//! when the authorization_uri is a tenant's), where the claims request
//! for an authentication context is `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
//! ("Developer guide to Conditional Access authentication context").

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// The key under which orders-mcp puts a downstream claims challenge in a failed tool result's
/// `_meta` (the `WWW-Authenticate` value, as a string), for its MCP client's code to act on.
/// Never for the model: it decides nothing about identity.
pub const MCP_META_KEY: &str = "dev.orders-copilot/claims-challenge";

/// A claims challenge: where to sign in, and the claims request (JSON) to send there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsChallenge {
    pub authorization_uri: String,
    /// The decoded claims request, e.g. `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`.
    pub claims: String,
}

impl ClaimsChallenge {
    /// The challenge for authentication context `id` (`c1` ... `c99`).
    pub fn for_auth_context(authorization_uri: impl Into<String>, id: &str) -> Self {
        let claims = json!({ "access_token": { "acrs": { "essential": true, "value": id } } }).to_string();
        ClaimsChallenge { authorization_uri: authorization_uri.into(), claims }
    }

    /// The `WWW-Authenticate` value, in the documented shape (the claims base64-encoded).
    pub fn header_value(&self) -> String {
        format!(
            "Bearer realm=\"{}\", authorization_uri=\"{}\", error=\"insufficient_claims\", claims=\"{}\"",
            self.realm(),
            self.authorization_uri,
            STANDARD.encode(&self.claims)
        )
    }

    /// The tenant the `authorization_uri` signs in to, or empty for a multi-tenant endpoint. The
    /// Learn page: realm "must be an empty string" when authentication "goes through the common
    /// endpoint", and "if specified in realm, the tenant information must be included in
    /// authorization_uri": the two agree.
    fn realm(&self) -> &str {
        let path =
            self.authorization_uri.split("://").nth(1).and_then(|rest| rest.split_once('/')).map(|(_, path)| path);
        let tenant = path.and_then(|path| {
            let segments: Vec<&str> = path.split('/').collect();
            let oauth2 = segments.iter().position(|s| *s == "oauth2")?;
            oauth2.checked_sub(1).map(|i| segments[i])
        });
        match tenant {
            Some("common" | "organizations" | "consumers") | None => "",
            Some(tenant) => tenant,
        }
    }

    /// Reads a `WWW-Authenticate` value; `None` unless it is a claims challenge
    /// (`error="insufficient_claims"` with a `claims` whose base64 decodes to a JSON object).
    pub fn parse(header: &str) -> Option<ClaimsChallenge> {
        let header = header.trim();
        let scheme = header.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer "))?;
        let rest = &header[scheme.len()..];
        let param = |name: &str| quoted_param(rest, name);
        if param("error")? != "insufficient_claims" {
            return None;
        }
        let encoded = param("claims")?;
        let bytes =
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(&encoded).ok())?;
        let claims = String::from_utf8(bytes).ok()?;
        serde_json::from_str::<Value>(&claims).ok().filter(Value::is_object)?;
        Some(ClaimsChallenge { authorization_uri: param("authorization_uri").unwrap_or_default(), claims })
    }

    /// The authentication contexts the challenge asks for (`access_token.acrs`, `value` or
    /// `values`), ids `c1` ... `c99` only: anything else in a challenge is ignored.
    pub fn auth_contexts(&self) -> Vec<String> {
        let Ok(json) = serde_json::from_str::<Value>(&self.claims) else {
            return Vec::new();
        };
        let acrs = &json["access_token"]["acrs"];
        let ids: Vec<&str> = match (&acrs["value"], &acrs["values"]) {
            (Value::String(one), _) => vec![one.as_str()],
            (_, Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        ids.into_iter().filter(|id| entra_manifest::is_auth_context_id(id)).map(String::from).collect()
    }
}

/// The value of `name="..."` among a challenge's comma-separated parameters.
fn quoted_param(params: &str, name: &str) -> Option<String> {
    params.split(',').map(str::trim).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        (key.trim().eq_ignore_ascii_case(name)).then(|| value.trim().trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_the_documented_shape_and_reads_back() {
        let challenge = ClaimsChallenge::for_auth_context("https://login.example/t/oauth2/v2.0/authorize", "c1");
        let header = challenge.header_value();
        assert!(header.starts_with(
            "Bearer realm=\"t\", authorization_uri=\"https://login.example/t/oauth2/v2.0/authorize\", error=\"insufficient_claims\", claims=\""
        ));
        assert_eq!(ClaimsChallenge::parse(&header), Some(challenge.clone()));
        assert_eq!(challenge.auth_contexts(), ["c1"]);
        // The Learn page's own example: it parses; its acrs value "cp1" is no context id (c1 ... c99).
        let learn = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", error=\"insufficient_claims\", claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiY3AxIn19fQ==\"";
        assert!(ClaimsChallenge::parse(learn).unwrap().auth_contexts().is_empty());
        assert_eq!(ClaimsChallenge::parse("Bearer error=\"invalid_token\""), None);
    }

    /// realm names the tenant the authorization_uri signs in to; it is empty only for the
    /// multi-tenant endpoints (the Learn page's table).
    #[test]
    fn the_realm_is_the_tenant_of_the_authorization_uri() {
        let realm = |uri: &str| {
            let header = ClaimsChallenge::for_auth_context(uri, "c1").header_value();
            quoted_param(header.trim_start_matches("Bearer "), "realm").unwrap()
        };
        let tid = "afb67780-0dec-4124-a11c-b6e461eb7aad";
        assert_eq!(realm(&format!("https://login.microsoftonline.com/{tid}/oauth2/v2.0/authorize")), tid);
        assert_eq!(realm(&format!("http://localhost:3003/{tid}/oauth2/v2.0/authorize")), tid);
        assert_eq!(realm(&format!("https://idp.example/prefix/{tid}/oauth2/authorize")), tid);
        assert_eq!(realm("https://login.microsoftonline.com/common/oauth2/authorize"), "");
        assert_eq!(realm("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"), "");
        assert_eq!(realm("not a url"), "");
    }
}
