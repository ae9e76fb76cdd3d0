//! The file's shape, as written; `check` turns it into a [`Manifest`](crate::Manifest).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::model::{AppRole, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub tenant: Tenant,
    #[serde(default)]
    pub app: BTreeMap<String, App>,
    #[serde(default)]
    pub client: BTreeMap<String, Client>,
    #[serde(default)]
    pub managed_identity: BTreeMap<String, ManagedIdentity>,
    /// Microsoft Entra Agent ID: agent identity blueprints (an app, written like one, plus
    /// `inheritable_permission`) and the agent identities they parent.
    #[serde(default)]
    pub agent_blueprint: BTreeMap<String, App>,
    #[serde(default)]
    pub agent_identity: BTreeMap<String, AgentIdentity>,
    #[serde(default)]
    pub user: Vec<User>,
    /// Conditional Access authentication contexts (`c1` ... `c99`) the apps ask for.
    #[serde(default)]
    pub auth_context: BTreeMap<String, AuthContext>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthContext {
    pub display_name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: Spanned<String>,
    pub domain: String,
    pub display_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub display_name: String,
    pub client_id: Spanned<String>,
    pub object_id: Spanned<String>,
    pub identifier_uri: Option<Spanned<String>>,
    #[serde(default = "v1")]
    pub access_token_version: Spanned<u8>,
    #[serde(default)]
    pub scope: Vec<Spanned<Scope>>,
    #[serde(default)]
    pub app_role: Vec<Spanned<AppRole>>,
    #[serde(default)]
    pub pre_authorized: Vec<PreAuthorized>,
    #[serde(default)]
    pub required_access: Vec<RequiredAccess>,
    #[serde(default)]
    pub known_client_applications: Vec<Spanned<String>>,
    #[serde(default)]
    pub federated_credential: Vec<FederatedCredential>,
    #[serde(default)]
    pub redirect_uris: Vec<Spanned<String>>,
    pub front_channel_logout_url: Option<Spanned<String>>,
    pub emulator_client_secret: Option<String>,
    /// Agent identity blueprints only.
    #[serde(default)]
    pub inheritable_permission: Vec<RequiredAccess>,
}

/// Entra issues v1 tokens when `requestedAccessTokenVersion` is unset.
fn v1() -> Spanned<u8> {
    Spanned::new(0..0, 1)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreAuthorized {
    pub client: Spanned<String>,
    pub scopes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredAccess {
    pub resource: Spanned<String>,
    pub scopes: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    pub name: String,
    pub managed_identity: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentIdentity {
    pub display_name: String,
    pub client_id: Spanned<String>,
    pub object_id: Spanned<String>,
    pub blueprint: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub display_name: String,
    pub client_id: Spanned<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedIdentity {
    pub client_id: Spanned<String>,
    pub principal_id: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: Spanned<String>,
    pub display_name: String,
    pub oid: Spanned<String>,
    pub password: String,
    #[serde(default)]
    pub app_roles: Vec<Spanned<String>>,
}
