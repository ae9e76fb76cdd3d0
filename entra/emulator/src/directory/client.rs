//! A client application as the token and authorize endpoints see it: an app registration of the
//! manifest (confidential) or a public client (Azure CLI, VS Code), and its redirect URIs.

use entra_manifest::{AgentIdentity, App, Client, Manifest, Vars};

use crate::error::EntraError;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientKind {
    /// Holds a credential: a secret (local fallback) and/or managed identities it trusts.
    Confidential { secret: Option<String>, federated_principals: Vec<String> },
    /// Cannot hold a secret (Azure CLI, VS Code): must not present one; PKCE is required.
    Public,
    /// A Microsoft Entra Agent ID agent identity: no credential of its own. It authenticates
    /// with a token its blueprint got for it (client credentials with `fmi_path`), and never
    /// signs a user in interactively.
    AgentIdentity { blueprint_client_id: String },
}

/// A client application as the token endpoint needs it.
#[derive(Debug, Clone)]
pub struct ClientApp {
    pub client_id: String,
    pub display_name: String,
    /// The service principal's object id: the `oid` of app-only tokens.
    pub object_id: String,
    pub redirect_uris: Vec<String>,
    pub front_channel_logout_url: Option<String>,
    pub kind: ClientKind,
}

impl ClientApp {
    /// An app registration, its URIs rendered for this environment.
    pub fn confidential(app: &App, manifest: &Manifest, vars: &Vars) -> Self {
        let federated_principals = app
            .federated_credentials
            .iter()
            .filter_map(|f| manifest.managed_identities.get(&f.managed_identity))
            .map(|mi| mi.principal_id.clone())
            .collect();
        ClientApp {
            client_id: app.client_id.clone(),
            display_name: app.display_name.clone(),
            object_id: app.object_id.clone(),
            redirect_uris: app.redirect_uris.iter().map(|t| t.render(vars)).collect(),
            front_channel_logout_url: app.front_channel_logout_url.as_ref().map(|t| t.render(vars)),
            kind: ClientKind::Confidential { secret: app.emulator_client_secret.clone(), federated_principals },
        }
    }

    pub fn public(client: &Client) -> Self {
        ClientApp {
            client_id: client.client_id.clone(),
            display_name: client.display_name.clone(),
            object_id: client.client_id.clone(),
            redirect_uris: client.redirect_uris.clone(),
            front_channel_logout_url: None,
            kind: ClientKind::Public,
        }
    }

    pub fn agent_identity(agent: &AgentIdentity, blueprint_client_id: &str) -> Self {
        ClientApp {
            client_id: agent.client_id.clone(),
            display_name: agent.display_name.clone(),
            object_id: agent.object_id.clone(),
            redirect_uris: Vec::new(),
            front_channel_logout_url: None,
            kind: ClientKind::AgentIdentity { blueprint_client_id: blueprint_client_id.to_string() },
        }
    }

    /// The blueprint's app id, when this client is an agent identity.
    pub fn agent_blueprint(&self) -> Option<&str> {
        match &self.kind {
            ClientKind::AgentIdentity { blueprint_client_id } => Some(blueprint_client_id),
            _ => None,
        }
    }

    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }

    /// Whether `uri` is one of the client's redirect URIs (AADSTS50011 if not).
    pub fn check_redirect_uri(&self, uri: &str) -> Result<(), EntraError> {
        if self.redirect_uris.iter().any(|r| redirect_matches(r, uri)) {
            Ok(())
        } else {
            Err(EntraError::bad_redirect_uri(uri, &self.client_id))
        }
    }
}

/// Loopback redirect URIs match whatever the port, as Entra allows for local development, and
/// nothing else: "Redirect URI (reply URL) best practices and limitations"
/// (learn.microsoft.com/entra/identity-platform/reply-url), on localhost: the port is ignored,
/// but "`http://localhost/MyWebApp` doesn't match `http://localhost/MyNativeApp`", and "The
/// IPv6 loopback address (`[::1]`) is not currently supported".
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    // A URL's empty path is `/` once parsed: `http://localhost` registered, `http://localhost:8400/` sent.
    let loopback = |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1"));
    loopback(&reg)
        && reg.scheme() == req.scheme()
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && req.query().is_none()
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn loopback_redirects_ignore_the_port_and_nothing_else() {
        assert!(redirect_matches("http://localhost:3000/auth/callback", "http://localhost:3000/auth/callback"));
        assert!(redirect_matches("http://localhost:3000/auth/callback", "http://localhost:49152/auth/callback"));
        assert!(redirect_matches("http://localhost", "http://localhost:8400/"));
        assert!(!redirect_matches("http://localhost:3000/auth/callback", "http://localhost:3000/auth/other"));
        assert!(!redirect_matches("http://localhost:3000/auth/callback", "http://evil.example/auth/callback"));
        assert!(!redirect_matches("http://localhost:3000/auth/callback", "https://localhost:3000/auth/callback"));
        assert!(!redirect_matches("https://app.example/cb", "https://app.example:444/cb"));
        // Only the port: a bare loopback URI is not every path on it, and IPv6 is not loopback
        // to Entra ("Redirect URI (reply URL) best practices and limitations",
        // learn.microsoft.com/entra/identity-platform/reply-url: `http://localhost/MyWebApp`
        // does not match `http://localhost/MyNativeApp`; "[::1] is not currently supported").
        assert!(!redirect_matches("http://localhost", "http://localhost:8400/other"));
        assert!(!redirect_matches("http://[::1]/cb", "http://[::1]:8400/cb"));
    }
}
