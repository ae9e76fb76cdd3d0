//! The tenant as the emulator sees it: the manifest, rendered for this environment, with the
//! rules Entra applies to it (who a client is, which scopes exist, what was consented to).
//!
//! Consent model: every app's `required_access` counts as admin-consented (postprovision grants
//! admin consent in a real tenant), pre-authorized clients need no consent for their scopes,
//! and anything else is refused with AADSTS65001, as Entra does for a client nobody consented to.

use entra_manifest::{App, Manifest, User, Vars};

use crate::error::EntraError;

/// The OpenID Connect scopes, which name no resource.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Microsoft Graph's app id: tokens requested with only OpenID scopes are for Graph, as in Entra.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const GRAPH_URI: &str = "https://graph.microsoft.com";

pub struct Directory {
    pub manifest: Manifest,
    pub vars: Vars,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientKind {
    /// Holds a credential: a secret (local fallback) and/or managed identities it trusts.
    Confidential { secret: Option<String>, federated_principals: Vec<String> },
    /// Cannot hold a secret (Azure CLI, VS Code): must not present one; PKCE is required.
    Public,
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
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }
}

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
    /// The `aud` Entra puts in tokens for this resource: the GUID in v2, the URI in v1.
    pub fn audience(&self) -> String {
        match (self.version, &self.identifier_uri) {
            (1, Some(uri)) => uri.clone(),
            _ => self.client_id.clone(),
        }
    }

    /// The scope prefix in token responses (`api://orders-mcp-local/`).
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

/// Loopback redirect URIs match whatever the port, as Entra allows for local development.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    loopback(&reg)
        && reg.scheme() == req.scheme()
        && reg.host_str() == req.host_str()
        && (reg.path() == req.path() || reg.path() == "/")
        && req.query().is_none()
}

impl Directory {
    pub fn new(manifest: Manifest, vars: Vars) -> Self {
        Directory { manifest, vars }
    }

    pub fn tenant_id(&self) -> &str {
        &self.manifest.tenant.id
    }

    /// Whether `tenant` (an id or the domain) names this tenant.
    pub fn is_tenant(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.manifest.tenant.id)
            || tenant.eq_ignore_ascii_case(&self.manifest.tenant.domain)
    }

    pub fn client(&self, client_id: &str) -> Result<ClientApp, EntraError> {
        let m = &self.manifest;
        if let Some(app) = m.app_by_client_id(client_id) {
            let federated_principals = app
                .federated_credentials
                .iter()
                .filter_map(|f| m.managed_identities.get(&f.managed_identity))
                .map(|mi| mi.principal_id.clone())
                .collect();
            return Ok(ClientApp {
                client_id: app.client_id.clone(),
                display_name: app.display_name.clone(),
                object_id: app.object_id.clone(),
                redirect_uris: app.redirect_uris.iter().map(|t| t.render(&self.vars)).collect(),
                front_channel_logout_url: app.front_channel_logout_url.as_ref().map(|t| t.render(&self.vars)),
                kind: ClientKind::Confidential { secret: app.emulator_client_secret.clone(), federated_principals },
            });
        }
        if let Some(client) = m.clients.values().find(|c| c.client_id.eq_ignore_ascii_case(client_id)) {
            return Ok(ClientApp {
                client_id: client.client_id.clone(),
                display_name: client.display_name.clone(),
                object_id: client.client_id.clone(),
                redirect_uris: client.redirect_uris.clone(),
                front_channel_logout_url: None,
                kind: ClientKind::Public,
            });
        }
        Err(EntraError::unknown_client(client_id))
    }

    pub fn check_redirect_uri(&self, client: &ClientApp, uri: &str) -> Result<(), EntraError> {
        if client.redirect_uris.iter().any(|r| redirect_matches(r, uri)) {
            Ok(())
        } else {
            Err(EntraError::bad_redirect_uri(uri, &client.client_id))
        }
    }

    fn resource_of(&self, app: &App) -> Resource {
        Resource {
            name: app.name.clone(),
            client_id: app.client_id.clone(),
            identifier_uri: app.identifier_uri.as_ref().map(|t| t.render(&self.vars)),
            version: app.access_token_version,
            scopes: app.scopes.iter().map(|s| s.value.clone()).collect(),
        }
    }

    fn graph() -> Resource {
        Resource {
            name: "microsoft-graph".into(),
            client_id: GRAPH_APP_ID.into(),
            identifier_uri: Some(GRAPH_URI.into()),
            version: 1,
            scopes: vec!["User.Read".into()],
        }
    }

    /// Finds a resource by identifier URI, `api://<client id>`, or client id.
    pub fn resource(&self, identifier: &str) -> Option<Resource> {
        let id = identifier.trim_end_matches('/');
        let bare = id.strip_prefix("api://").unwrap_or(id);
        self.manifest
            .apps
            .values()
            .find(|app| {
                app.client_id.eq_ignore_ascii_case(bare)
                    || app.identifier_uri.as_ref().is_some_and(|t| t.render(&self.vars).eq_ignore_ascii_case(id))
            })
            .map(|app| self.resource_of(app))
    }

    /// The resource a managed identity asks for by `resource=` (a URI, maybe with `/.default`).
    /// Azure resources outside the manifest get v1 tokens with the URI as audience.
    pub fn resource_for_managed_identity(&self, resource: &str) -> Resource {
        let resource = resource.strip_suffix("/.default").unwrap_or(resource);
        self.resource(resource).unwrap_or_else(|| Resource {
            name: resource.to_string(),
            client_id: resource.to_string(),
            identifier_uri: Some(resource.to_string()),
            version: if resource == entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE { 2 } else { 1 },
            scopes: Vec::new(),
        })
    }

    /// Parses a `scope` parameter: OpenID scopes plus scopes of at most one resource.
    pub fn parse_scopes(&self, scope: &str) -> Result<ScopeRequest, EntraError> {
        let mut request = ScopeRequest::default();
        for item in scope.split(' ').filter(|s| !s.is_empty()) {
            if OIDC_SCOPES.contains(&item) {
                request.oidc.push(item.to_string());
                continue;
            }
            let Some((resource_id, value)) = item.rsplit_once('/') else {
                return Err(EntraError::invalid_scope(format!(
                    "The scope '{item}' does not name a resource this tenant has."
                )));
            };
            let resource = if resource_id.eq_ignore_ascii_case(GRAPH_URI) {
                Self::graph()
            } else {
                self.resource(resource_id).ok_or_else(|| {
                    EntraError::new(
                        "invalid_resource",
                        500011,
                        format!("The resource principal named {resource_id} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", self.manifest.tenant.display_name),
                    )
                })?
            };
            match &request.resource {
                Some(existing) if existing.client_id != resource.client_id => {
                    return Err(EntraError::new(
                        "invalid_request",
                        28000,
                        "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope values may be requested for one resource at a time.",
                    ));
                }
                Some(_) => {}
                None => request.resource = Some(resource.clone()),
            }
            if value != ".default" && !resource.scopes.iter().any(|s| s == value) {
                return Err(EntraError::invalid_scope(format!("The scope '{item}' does not exist on the resource.")));
            }
            request.values.push(value.to_string());
        }
        if request.is_default() && request.values.len() > 1 {
            return Err(EntraError::new(
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. '.default' cannot be combined with other scopes of the same resource.",
            ));
        }
        Ok(request)
    }

    /// The scopes `client` may have on `resource` without asking the user: pre-authorization
    /// plus (admin-consented) required access. An app may always use its own scopes.
    fn consented(&self, client: &ClientApp, resource: &Resource) -> Vec<String> {
        let m = &self.manifest;
        let client_name = m
            .apps
            .values()
            .map(|a| (&a.name, &a.client_id))
            .chain(m.clients.values().map(|c| (&c.name, &c.client_id)))
            .find(|(_, id)| id.eq_ignore_ascii_case(&client.client_id))
            .map(|(name, _)| name.clone());
        let Some(client_name) = client_name else {
            return Vec::new();
        };
        if resource.name == client_name || resource.name == "microsoft-graph" {
            return resource.scopes.clone();
        }
        let mut scopes: Vec<String> = Vec::new();
        if let Some(resource_app) = m.app(&resource.name) {
            for pre in resource_app.pre_authorized.iter().filter(|p| p.client == client_name) {
                scopes.extend(pre.scopes.iter().cloned());
            }
        }
        if let Some(client_app) = m.app(&client_name) {
            for req in client_app.required_access.iter().filter(|r| r.resource == resource.name) {
                scopes.extend(req.scopes.iter().cloned());
            }
        }
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The delegated scopes granted for a request, or AADSTS65001 if any was never consented.
    pub fn grant(&self, client: &ClientApp, request: &ScopeRequest) -> Result<Vec<String>, EntraError> {
        let Some(resource) = &request.resource else {
            return Ok(Vec::new());
        };
        let consented = self.consented(client, resource);
        let granted: Vec<String> = if request.is_default() {
            consented
        } else {
            if let Some(missing) = request.values.iter().find(|v| !consented.contains(v)) {
                tracing::debug!(scope = %missing, client = %client.client_id, "scope not consented");
                return Err(EntraError::consent_required(&client.client_id, &client.display_name));
            }
            request.values.clone()
        };
        if granted.is_empty() {
            return Err(EntraError::consent_required(&client.client_id, &client.display_name));
        }
        Ok(granted)
    }

    /// App roles `user` holds on `resource`.
    pub fn user_roles(&self, user: &User, resource: &Resource) -> Vec<String> {
        user.app_roles.iter().filter(|r| r.app == resource.name).map(|r| r.role.clone()).collect()
    }

    /// A user by sign-in name or user principal name (case-insensitive, as Entra).
    pub fn user_by_login(&self, login: &str) -> Option<&User> {
        let tenant = &self.manifest.tenant;
        self.manifest
            .users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(login) || u.upn(tenant).eq_ignore_ascii_case(login))
    }

    pub fn user_by_oid(&self, oid: &str) -> Option<&User> {
        self.manifest.users.iter().find(|u| u.oid.eq_ignore_ascii_case(oid))
    }
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
    }
}
