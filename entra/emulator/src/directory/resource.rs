//! Resources tokens are issued for, and the `scope` parameter that names one.

use entra_manifest::{App, Vars};

use crate::error::EntraError;

/// The OpenID Connect scopes, which name no resource.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Microsoft Graph's app id: tokens requested with only OpenID scopes are for Graph, as in Entra.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const GRAPH_URI: &str = "https://graph.microsoft.com";

/// A resource tokens can be issued for.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Manifest name, or `microsoft-graph`.
    pub name: String,
    pub client_id: String,
    pub identifier_uri: Option<String>,
    pub version: u8,
    pub scopes: Vec<String>,
}

impl Resource {
    /// An app registration of the manifest, its identifier URI rendered for this environment.
    pub fn of(app: &App, vars: &Vars) -> Self {
        Resource {
            name: app.name.clone(),
            client_id: app.client_id.clone(),
            identifier_uri: app.identifier_uri.as_ref().map(|t| t.render(vars)),
            version: app.access_token_version,
            scopes: app.scopes.iter().map(|s| s.value.clone()).collect(),
        }
    }

    /// Microsoft Graph, with the one delegated scope the demo needs.
    pub fn graph() -> Self {
        Resource {
            name: "microsoft-graph".into(),
            client_id: GRAPH_APP_ID.into(),
            identifier_uri: Some(GRAPH_URI.into()),
            version: 1,
            scopes: vec!["User.Read".into()],
        }
    }

    /// The `aud` Entra puts in tokens for this resource: the GUID in v2, the URI in v1.
    pub fn audience(&self) -> String {
        match (self.version, &self.identifier_uri) {
            (1, Some(uri)) => uri.clone(),
            _ => self.client_id.clone(),
        }
    }

    /// The scope prefix in token responses (`http://localhost:3001/mcp/`).
    pub fn scope_prefix(&self) -> String {
        self.identifier_uri.clone().unwrap_or_else(|| self.client_id.clone())
    }

    pub fn full_scopes(&self, values: &[String]) -> Vec<String> {
        let prefix = self.scope_prefix();
        values.iter().map(|v| format!("{prefix}/{v}")).collect()
    }
}

/// A parsed `scope` parameter.
#[derive(Debug, Clone, Default)]
pub struct ScopeRequest {
    /// The OpenID scopes present (`openid`, `profile`, `email`, `offline_access`).
    pub oidc: Vec<String>,
    pub resource: Option<Resource>,
    /// Scope values on that resource; `[".default"]` for everything consented.
    pub values: Vec<String>,
}

impl ScopeRequest {
    pub fn has(&self, oidc_scope: &str) -> bool {
        self.oidc.iter().any(|s| s == oidc_scope)
    }

    pub fn is_default(&self) -> bool {
        self.values.iter().any(|v| v == ".default")
    }
}

impl ScopeRequest {
    /// RFC 8707's `resource` on the v2 endpoints, checked as Entra checks it: it must be an
    /// Application ID URI of the app that owns every requested scope, else AADSTS9010010
    /// (`invalid_target`, RFC 8707 §2's error for a bad resource). MCP clients send the MCP
    /// server's URL here (the MCP authorization spec requires it), which is why an MCP server's
    /// Application ID URI must be its canonical endpoint URL ("Secure a Model Context Protocol
    /// server with Microsoft Entra ID"). Older tenants refuse the parameter outright
    /// (AADSTS901002); the emulator behaves as current ones do. The v1 endpoints (the
    /// managed-identity endpoint here) take `resource` as their own parameter instead of scopes.
    pub fn check_resource_indicator(&self, resource: Option<&str>) -> Result<(), EntraError> {
        let Some(given) = resource else {
            return Ok(());
        };
        let given = given.trim_end_matches('/');
        let owner = self.resource.clone().unwrap_or_else(Resource::graph);
        let matches =
            owner.identifier_uri.as_deref().is_some_and(|uri| uri.trim_end_matches('/').eq_ignore_ascii_case(given));
        if matches {
            Ok(())
        } else {
            Err(EntraError::new(
                "invalid_target",
                9010010,
                "The resource parameter provided in the request doesn't match with the requested scopes.",
            ))
        }
    }
}
