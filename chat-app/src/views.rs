//! What the pages show: the data the server functions return, shared by the server and the
//! browser builds. Nothing here ever carries a token: only names, claims summaries and order
//! data.

use entra_auth::hop::Hop;
use serde::{Deserialize, Serialize};

use crate::transcript::Transcript;

/// The error message of a server function whose caller must sign in (again).
pub const SIGN_IN_REQUIRED: &str = "sign-in required";

/// Where the browser goes to sign in, coming back to `return_to`.
pub fn sign_in_url(return_to: &str) -> String {
    format!("/auth/sign-in?return_to={}", if return_to.starts_with('/') { return_to } else { "/" })
}

/// Where "Confirm with sign-in" leads: a sign-in asking for the authentication `contexts`.
pub fn step_up_url(contexts: &[String]) -> String {
    format!("/auth/step-up?contexts={}", contexts.join(","))
}

/// The signed-in user, as pages show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub username: Option<String>,
    pub oid: String,
}

/// Which model answers, as the chat page labels it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLabel {
    pub name: String,
    /// The offline planner: no model at all.
    pub offline: bool,
}

/// Friendly names for ids that appear in tokens (client ids, audiences): `(id, name)`.
pub type Names = Vec<(String, String)>;

/// Where a trace viewer shows one trace: an http(s) URL template with `{trace_id}` in it, e.g.
/// Jaeger's `http://localhost:16686/trace/{trace_id}` (`CHAT_APP_TRACE_URL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceUrl(String);

impl std::str::FromStr for TraceUrl {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<TraceUrl, &'static str> {
        TraceUrl::parse(s)
    }
}

impl TraceUrl {
    const PLACEHOLDER: &'static str = "{trace_id}";

    /// Refuses what would not be a plain link: another scheme (`javascript:`), no placeholder,
    /// or whitespace, quotes and angle brackets anywhere.
    pub fn parse(template: &str) -> Result<TraceUrl, &'static str> {
        let scheme_ok = template.starts_with("https://") || template.starts_with("http://");
        let clean = !template.chars().any(|c| c.is_whitespace() || c.is_control() || "\"'<>`\\".contains(c));
        match (scheme_ok, template.contains(Self::PLACEHOLDER), clean) {
            (true, true, true) => Ok(TraceUrl(template.to_string())),
            _ => Err("it must start with http:// or https://, contain {trace_id}, and have no spaces or quotes"),
        }
    }

    /// The link to `trace_id`, if it is one (32 hex digits, W3C trace context).
    pub fn link(&self, trace_id: &str) -> Option<String> {
        let valid = trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| self.0.replace(Self::PLACEHOLDER, trace_id))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatView {
    pub user: UserView,
    pub model: ModelLabel,
    pub transcript: Transcript,
    /// A message that could not be sent because sign-in had expired, to offer again.
    pub draft: Option<String>,
    pub names: Names,
    /// Links trace ids in the trace panel to a trace viewer, when configured.
    pub trace_url: Option<TraceUrl>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRow {
    pub id: String,
    pub customer_name: String,
    pub product: String,
    pub quantity: i64,
    pub status: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrdersView {
    pub orders: Vec<OrderRow>,
    /// The identity trace of the `list_orders` call that fetched them.
    pub hops: Vec<Hop>,
    pub names: Names,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_url_is_a_plain_http_link_with_the_trace_id_in_it() {
        let jaeger = TraceUrl::parse("http://localhost:16686/trace/{trace_id}").unwrap();
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        assert_eq!(jaeger.link(id).as_deref(), Some("http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(jaeger.link("not-a-trace-id\"><script>"), None);
        for refused in [
            "javascript:alert(1)//{trace_id}",
            "http://localhost:16686/search",
            "http://x/{trace_id}\" onmouseover=\"alert(1)",
            "http://x/{trace_id} y",
            "//evil.example/{trace_id}",
        ] {
            assert!(TraceUrl::parse(refused).is_err(), "{refused}");
        }
    }
}
