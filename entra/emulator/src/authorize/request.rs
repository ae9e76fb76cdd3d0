//! What the client asked the authorize endpoint for, checked as Entra checks it: the client and
//! its redirect URI first (a failure is shown on a page), then everything else (a failure goes
//! back to that redirect URI).

use std::collections::HashMap;

use crate::auth_context;
use crate::directory::ClientApp;
use crate::error::EntraError;
use crate::state::Emulator;

/// The parameters Entra's authorize endpoint understands (the rest are ignored, as there).
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub client: ClientApp,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
    pub form_post: bool,
    pub client_info: bool,
    /// Authentication contexts asked for through the `claims` parameter: the user steps up.
    pub acrs: Vec<String>,
    /// Everything received but the credentials, to carry through the login form.
    pub fields: Vec<(String, String)>,
}

/// How a request failed: on a page, or back at the client.
pub enum Failure {
    Page(EntraError),
    /// Back to the (verified) redirect URI of the request.
    Redirect(Box<AuthorizeRequest>, EntraError),
}

pub fn parse(emulator: &Emulator, params: &HashMap<String, String>) -> Result<AuthorizeRequest, Failure> {
    let dir = &emulator.0.dir;
    let get = |k: &str| params.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or_else(|| Failure::Page(EntraError::missing_parameter("client_id")))?;
    let client = dir.client(&client_id).map_err(Failure::Page)?;
    if client.agent_blueprint().is_some() || dir.is_agent_blueprint(&client.client_id) {
        return Err(Failure::Page(no_interactive_agent(&client.client_id)));
    }
    let redirect_uri =
        get("redirect_uri").ok_or_else(|| Failure::Page(EntraError::missing_parameter("redirect_uri")))?;
    client.check_redirect_uri(&redirect_uri).map_err(Failure::Page)?;
    let mut fields: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !["login", "password", "step_up"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    fields.sort();
    let request = AuthorizeRequest {
        client,
        redirect_uri,
        state: get("state"),
        nonce: get("nonce"),
        scope: get("scope").unwrap_or_default(),
        code_challenge: get("code_challenge"),
        prompt: get("prompt"),
        login_hint: get("login_hint"),
        form_post: get("response_mode").as_deref() == Some("form_post"),
        client_info: get("client_info").as_deref() == Some("1"),
        acrs: Vec::new(),
        fields,
    };
    // From here on the redirect URI is trusted: errors go back to the client.
    let fail = |e: EntraError| Failure::Redirect(Box::new(request.clone()), e);
    match get("response_type").as_deref() {
        Some("code") => {}
        Some(other) => {
            return Err(fail(EntraError::new(
                "unsupported_response_type",
                700054,
                format!("response_type '{other}' is not enabled for the application."),
            )));
        }
        None => return Err(fail(EntraError::missing_parameter("response_type"))),
    }
    if request.scope.is_empty() {
        return Err(fail(EntraError::missing_parameter("scope")));
    }
    let scopes = dir.parse_scopes(&request.scope).map_err(fail)?;
    scopes.check_resource_indicator(get("resource").as_deref()).map_err(fail)?;
    dir.grant(&request.client, &scopes).map_err(fail)?;
    match (request.code_challenge.as_deref(), get("code_challenge_method").as_deref()) {
        // An S256 challenge is a SHA-256 hash in base64url, 43 characters; RFC 7636 allows 43 to
        // 128 characters of its alphabet, and Entra refuses others: "AADSTS501491: Invalid size
        // of Code_Challenge parameter" (Microsoft Entra authentication and authorization error
        // codes).
        (Some(challenge), Some("S256")) if !pkce_challenge_shaped(challenge) => {
            return Err(fail(EntraError::new("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")));
        }
        (Some(_), Some("S256")) => {}
        (Some(_), method) => {
            return Err(fail(EntraError::new(
                "invalid_request",
                501491,
                format!("Invalid code_challenge_method '{}': only S256 is supported.", method.unwrap_or("plain")),
            )));
        }
        (None, _) if request.client.is_public() => {
            return Err(fail(EntraError::new(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for public clients.",
            )));
        }
        (None, _) => {}
    }
    let acrs = auth_context::requested(emulator, get("claims").as_deref()).map_err(fail)?;
    Ok(AuthorizeRequest { acrs, ..request })
}

/// Agent identities and their blueprints never sign a user in: "Agent identity blueprints can't
/// initiate interactive authorization (/authorize) flows directly ... Like their parent
/// blueprints, child agent identities can't initiate interactive /authorize flows. Consequently,
/// users can't grant them consent interactively (attempting this on the child identity returns
/// the error AADSTS82014)" (Agent OAuth flows: On behalf of flow). A blueprint may use
/// /authorize for consent only (`response_type=none`), which the emulator does not offer; it
/// answers both with AADSTS82014.
fn no_interactive_agent(client_id: &str) -> EntraError {
    EntraError::new(
        "invalid_request",
        82014,
        format!(
            "Application '{client_id}' is an agent identity or agent identity blueprint: it cannot use interactive /authorize flows, and cannot be consented to interactively. Grant its permissions as inheritable permissions on the blueprint."
        ),
    )
}

/// RFC 7636 §4.2: `code_challenge` is 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" /
/// "." / "_" / "~"`.
fn pkce_challenge_shaped(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}
