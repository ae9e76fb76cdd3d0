//! The Microsoft Graph v1.0 objects the hook manages, with the properties it owns. Graph
//! returns more; those are ignored on read and never written back.

use serde::{Deserialize, Deserializer, Serialize};

/// Graph sends `null` for some empty collections and strings; read it as the default.
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default, skip_serializing)]
    pub id: String,
    #[serde(default, skip_serializing)]
    pub app_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub sign_in_audience: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub identifier_uris: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub api: Api,
    #[serde(default, deserialize_with = "nullable")]
    pub app_roles: Vec<AppRole>,
    #[serde(default, deserialize_with = "nullable")]
    pub web: Web,
    #[serde(default, deserialize_with = "nullable")]
    pub required_resource_access: Vec<RequiredResourceAccess>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Api {
    /// `null` in Graph means 1.
    #[serde(default)]
    pub requested_access_token_version: Option<u8>,
    #[serde(default, deserialize_with = "nullable")]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    #[serde(default, deserialize_with = "nullable")]
    pub pre_authorized_applications: Vec<PreAuthorizedApplication>,
    #[serde(default, deserialize_with = "nullable")]
    pub known_client_applications: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub value: String,
    /// `User`: users may consent; `Admin`: only an administrator.
    #[serde(default, deserialize_with = "nullable", rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub is_enabled: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub admin_consent_display_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub admin_consent_description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user_consent_display_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub user_consent_description: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreAuthorizedApplication {
    pub app_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub delegated_permission_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub value: String,
    #[serde(default, deserialize_with = "nullable")]
    pub display_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    #[serde(default, deserialize_with = "nullable")]
    pub allowed_member_types: Vec<String>,
    #[serde(default)]
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Web {
    #[serde(default, deserialize_with = "nullable")]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub logout_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceAccess {
    pub id: String,
    /// `Scope` (delegated) or `Role` (application).
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    #[serde(default)]
    pub id: String,
    pub app_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default, deserialize_with = "nullable")]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionGrant {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Object id of the client's service principal.
    pub client_id: String,
    /// `AllPrincipals`: admin consent for every user.
    pub consent_type: String,
    #[serde(default)]
    pub principal_id: Option<String>,
    /// Object id of the resource's service principal.
    pub resource_id: String,
    /// Space-separated scope values.
    #[serde(default, deserialize_with = "nullable")]
    pub scope: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub principal_id: String,
    pub resource_id: String,
    pub app_role_id: String,
}

/// Delegated permissions an agent identity blueprint's agent identities inherit from it, for
/// one resource app (Graph v1.0 `inheritablePermission`, keyed by `resourceAppId`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InheritablePermission {
    pub resource_app_id: String,
    #[serde(default)]
    pub inheritable_scopes: InheritableScopes,
}

/// `enumeratedScopes`: only the listed scope values are inherited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InheritableScopes {
    #[serde(rename = "@odata.type", default)]
    pub odata_type: String,
    #[serde(default, deserialize_with = "nullable")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub scopes: Vec<String>,
}

/// The `@odata.type` and `kind` of [`InheritableScopes::enumerated`].
const ENUMERATED_TYPE: &str = "#microsoft.graph.enumeratedScopes";
const ENUMERATED_KIND: &str = "enumerated";

impl InheritableScopes {
    /// Exactly `scopes` (sorted, deduplicated: Graph requires unique entries).
    pub fn enumerated(scopes: &[String]) -> InheritableScopes {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        InheritableScopes { odata_type: ENUMERATED_TYPE.into(), kind: ENUMERATED_KIND.into(), scopes }
    }

    /// Whether two grant the same scopes, whatever the order.
    pub fn same_as(&self, other: &InheritableScopes) -> bool {
        let sorted = |s: &InheritableScopes| {
            let mut scopes = s.scopes.clone();
            scopes.sort();
            scopes
        };
        self.kind == other.kind && sorted(self) == sorted(other)
    }
}

/// An agent identity (Graph v1.0 `agentIdentity`, a service principal): found by its tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentIdentity {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub app_id: String,
    /// The app id of the blueprint it was created from.
    #[serde(default, deserialize_with = "nullable")]
    pub agent_identity_blueprint_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
}
