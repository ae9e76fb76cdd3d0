//! What to verify: the services' URLs and the identity provider they trust.

use entra_manifest::{Manifest, Vars};
use url::Url;

/// Microsoft Entra ID, the authority of every deployment but the local stack.
pub const ENTRA: &str = "https://login.microsoftonline.com";

pub struct Target {
    pub chat_app: Url,
    /// The MCP endpoint (`.../mcp`).
    pub orders_mcp: Option<Url>,
    /// Only reachable locally (internal ingress in Azure).
    pub orders_api: Option<Url>,
    /// Where tokens come from: the emulator locally, Entra otherwise.
    pub authority: Url,
    pub tenant: String,
    /// Set locally: verify may mint tokens through the emulator.
    pub local: Option<Local>,
}

/// The local stack's identity manifest: its apps, users and emulator-only secrets.
pub struct Local {
    pub manifest: Manifest,
    pub vars: Vars,
}

impl Target {
    /// The tenant's OpenID discovery document, v2.0 or v1.
    pub fn discovery_url(&self, v2: bool) -> String {
        let version = if v2 { "/v2.0" } else { "" };
        format!("{}{version}/.well-known/openid-configuration", self.tenant_url())
    }

    pub fn authorize_endpoint(&self) -> String {
        format!("{}/oauth2/v2.0/authorize", self.tenant_url())
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.tenant_url())
    }

    fn tenant_url(&self) -> String {
        format!("{}/{}", self.authority.as_str().trim_end_matches('/'), self.tenant)
    }
}

impl Local {
    /// The application ID URI of a manifest app, rendered for the local stack.
    pub fn app_id_uri(&self, app: &str) -> Option<String> {
        self.manifest.app(app).and_then(|a| a.identifier_uri.as_ref()).map(|t| t.render(&self.vars))
    }
}
