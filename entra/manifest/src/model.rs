//! The manifest as the rest of the workspace reads it: checked, with references resolved.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::template::{Template, Vars};

/// The Entra scope value that stands for "everything this client was granted on a resource".
pub const DEFAULT_SCOPE: &str = ".default";

#[derive(Debug, Clone)]
pub struct Manifest {
    pub tenant: Tenant,
    /// App registrations this project owns, by manifest name (`orders-api`, ...).
    pub apps: BTreeMap<String, App>,
    /// First-party clients that exist in every tenant (Azure CLI, VS Code), by manifest name.
    pub clients: BTreeMap<String, Client>,
    pub managed_identities: BTreeMap<String, ManagedIdentity>,
    /// Microsoft Entra Agent ID blueprints, by manifest name: apps that hold the credential and
    /// the inheritable permissions of their agent identities. Kept apart from [`Self::apps`]:
    /// they are created through the Agent ID Graph APIs, not as ordinary app registrations.
    pub agent_blueprints: BTreeMap<String, App>,
    /// Agent identities, by manifest name: each a child of one blueprint.
    pub agent_identities: BTreeMap<String, AgentIdentity>,
    pub users: Vec<User>,
    /// Conditional Access authentication contexts, by id (`c1` ... `c99`): the step-ups an API
    /// may demand through a claims challenge. In a tenant an administrator creates them
    /// (Conditional Access, Authentication contexts) and a policy that targets each.
    pub auth_contexts: BTreeMap<String, AuthContext>,
}

/// Whether `id` is an authentication context id: `c1` through `c99` (Microsoft Graph's
/// authenticationContextClassReference: "Supported values are c1 through c99").
pub fn is_auth_context_id(id: &str) -> bool {
    let number = id.strip_prefix('c').filter(|n| !n.starts_with('0') && n.len() <= 2);
    number.and_then(|n| n.parse::<u8>().ok()).is_some_and(|n| (1..=99).contains(&n))
}

/// A Conditional Access authentication context ("Developer guide to Conditional Access
/// authentication context": ids `c1` through `c99`).
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub id: String,
    pub display_name: String,
}

/// An agent identity (Microsoft Entra Agent ID): a service principal with no credential of its
/// own, parented by a blueprint whose credential it acts with and whose inheritable permissions
/// it receives.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    pub name: String,
    pub display_name: String,
    /// The agent identity's app id: `azp` / `appid` of the tokens it gets.
    pub client_id: String,
    pub object_id: String,
    /// Manifest name of the parent blueprint.
    pub blueprint: String,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub domain: String,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub object_id: String,
    pub identifier_uri: Option<Template>,
    /// 1 or 2: the shape of access tokens issued *for* this app (`requestedAccessTokenVersion`).
    pub access_token_version: u8,
    pub scopes: Vec<Scope>,
    pub app_roles: Vec<AppRole>,
    pub pre_authorized: Vec<PreAuthorized>,
    pub required_access: Vec<RequiredAccess>,
    /// Manifest names of apps whose consent also covers this one.
    pub known_client_applications: Vec<String>,
    pub federated_credentials: Vec<FederatedCredential>,
    pub redirect_uris: Vec<Template>,
    pub front_channel_logout_url: Option<Template>,
    /// The emulator's client secret: a local fallback only, never applied to a real tenant.
    pub emulator_client_secret: Option<String>,
    /// Blueprints only: delegated permissions every child agent identity inherits (Entra's
    /// `inheritablePermissions`, kind `enumeratedScopes`): the one way an agent identity gets
    /// consent, since it cannot be consented to interactively.
    pub inheritable_permissions: Vec<RequiredAccess>,
}

impl App {
    pub fn scope(&self, value: &str) -> Option<&Scope> {
        self.scopes.iter().find(|s| s.value == value)
    }

    pub fn app_role(&self, value: &str) -> Option<&AppRole> {
        self.app_roles.iter().find(|r| r.value == value)
    }

    /// The full scope string a client requests, e.g. `api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.Read`.
    pub fn scope_uri(&self, value: &str, vars: &Vars) -> Option<String> {
        let uri = self.identifier_uri.as_ref()?.render(vars);
        Some(format!("{uri}/{value}"))
    }

    /// Whether this app is a confidential client (can hold a credential and use OBO / client
    /// credentials): it has a federated credential or an emulator secret.
    pub fn is_confidential(&self) -> bool {
        !self.federated_credentials.is_empty() || self.emulator_client_secret.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    pub value: String,
    pub id: String,
    pub admin_consent_display_name: String,
    pub admin_consent_description: String,
    pub user_consent_display_name: String,
    pub user_consent_description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRole {
    pub value: String,
    pub id: String,
    pub display_name: String,
    pub description: String,
    pub allowed_member_types: Vec<MemberType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum MemberType {
    User,
    Application,
}

#[derive(Debug, Clone)]
pub struct PreAuthorized {
    /// Manifest name of an app or a first-party client.
    pub client: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RequiredAccess {
    /// Manifest name of the resource app.
    pub resource: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub name: String,
    /// Manifest name of the managed identity this app trusts.
    pub managed_identity: String,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub display_name: String,
    pub client_id: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    pub name: String,
    pub client_id: String,
    /// The identity's service principal object id: the `sub` of its tokens.
    pub principal_id: String,
}

#[derive(Debug, Clone)]
pub struct User {
    /// Sign-in name; the user principal name is `name@tenant.domain`.
    pub name: String,
    pub display_name: String,
    pub oid: String,
    pub password: String,
    pub app_roles: Vec<RoleAssignment>,
}

impl User {
    pub fn upn(&self, tenant: &Tenant) -> String {
        format!("{}@{}", self.name, tenant.domain)
    }
}

/// An app role given to a user: `orders-api/Orders.Admin` in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAssignment {
    pub app: String,
    pub role: String,
}

impl Manifest {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.get(name)
    }

    pub fn app_by_client_id(&self, client_id: &str) -> Option<&App> {
        self.apps.values().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn agent_blueprint_by_client_id(&self, client_id: &str) -> Option<&App> {
        self.agent_blueprints.values().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn agent_identity_by_client_id(&self, client_id: &str) -> Option<&AgentIdentity> {
        self.agent_identities.values().find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }

    pub fn auth_context(&self, id: &str) -> Option<&AuthContext> {
        self.auth_contexts.get(id)
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}
