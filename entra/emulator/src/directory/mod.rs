//! The tenant as the emulator sees it: the manifest, rendered for this environment, with the
//! rules Entra applies to it: who a client is ([`client`]), which resources and scopes exist
//! ([`resource`]), what was consented to ([`consent`]).

mod client;
mod consent;
mod resource;

use entra_manifest::{Manifest, User, Vars};

pub use self::client::{ClientApp, ClientKind};
use self::resource::{GRAPH_URI, OIDC_SCOPES};
pub use self::resource::{Resource, ScopeRequest};
use crate::error::EntraError;

/// Azure resources a managed identity may ask for beyond the manifest's apps (their Entra
/// service principals exist in every tenant): what this project's services use (Azure OpenAI,
/// Azure Cache for Redis, the federated-credential exchange) and the common others.
pub const AZURE_RESOURCES: &[&str] = &[
    "https://cognitiveservices.azure.com",
    "https://redis.azure.com",
    entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE,
    "https://management.azure.com",
    "https://vault.azure.net",
    "https://storage.azure.com",
    "https://graph.microsoft.com",
    "https://monitor.azure.com",
];

pub struct Directory {
    pub manifest: Manifest,
    pub vars: Vars,
    /// Whether `required_access` counts as admin-consented (see [`consent`]).
    pub admin_consent: bool,
}

impl Directory {
    pub fn new(manifest: Manifest, vars: Vars, admin_consent: bool) -> Self {
        Directory { manifest, vars, admin_consent }
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
        if let Some(app) = m.app_by_client_id(client_id).or_else(|| m.agent_blueprint_by_client_id(client_id)) {
            return Ok(ClientApp::confidential(app, m, &self.vars));
        }
        if let Some(agent) = m.agent_identity_by_client_id(client_id)
            && let Some(blueprint) = m.agent_blueprints.get(&agent.blueprint)
        {
            return Ok(ClientApp::agent_identity(agent, &blueprint.client_id));
        }
        if let Some(client) = m.clients.values().find(|c| c.client_id.eq_ignore_ascii_case(client_id)) {
            return Ok(ClientApp::public(client));
        }
        Err(EntraError::unknown_client(client_id))
    }

    /// Whether `client_id` is an agent identity blueprint's.
    pub fn is_agent_blueprint(&self, client_id: &str) -> bool {
        self.manifest.agent_blueprint_by_client_id(client_id).is_some()
    }

    /// Finds a resource (an app, or an agent identity blueprint: the user's token for an agent
    /// is for its blueprint) by identifier URI or client id. `api://<client id>` is an app's
    /// only when registered as its identifier URI, as in Entra (AADSTS500011 otherwise).
    pub fn resource(&self, identifier: &str) -> Option<Resource> {
        let id = identifier.trim_end_matches('/');
        self.manifest
            .apps
            .values()
            .chain(self.manifest.agent_blueprints.values())
            .find(|app| {
                app.client_id.eq_ignore_ascii_case(id)
                    || app.identifier_uri.as_ref().is_some_and(|t| t.render(&self.vars).eq_ignore_ascii_case(id))
            })
            .map(|app| Resource::of(app, &self.vars))
    }

    /// The resource a managed identity asks for by `resource=` (a resource URI, not a scope):
    /// an app of the manifest, or one of the Azure resources in [`AZURE_RESOURCES`], which get v1
    /// tokens with the URI as audience. Anything else Entra refuses, "AADSTS500011: The resource
    /// principal named ... was not found in the tenant", so a misspelt resource (or a scope such
    /// as `https://cognitiveservices.azure.com/.default`) fails here as it would in Azure.
    pub fn resource_for_managed_identity(&self, resource: &str) -> Result<Resource, String> {
        if let Some(app) = self.resource(resource) {
            return Ok(app);
        }
        let uri = resource.trim_end_matches('/');
        if !AZURE_RESOURCES.contains(&uri) {
            return Err(format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.",
                self.manifest.tenant.display_name
            ));
        }
        Ok(Resource {
            name: resource.to_string(),
            client_id: resource.to_string(),
            identifier_uri: Some(resource.to_string()),
            version: if uri == entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE { 2 } else { 1 },
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
                Resource::graph()
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

    /// The delegated scopes granted for a request (see [`consent`]).
    pub fn grant(&self, client: &ClientApp, request: &ScopeRequest) -> Result<Vec<String>, EntraError> {
        consent::grant(&self.manifest, self.admin_consent, client, request)
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
