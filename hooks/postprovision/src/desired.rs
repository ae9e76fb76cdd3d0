//! The tenant the manifest asks for: Graph objects rendered from `infra/app-registrations.toml`
//! for one azd environment, given the application ids Graph assigned.
//!
//! Apps are found again by tag, never by the manifest's (emulator) GUIDs: every app carries
//! the deployment's tag `orders-copilot:<env>:<subscription>:<resource token>` (all of this
//! deployment's apps, for cleanup) and that tag plus `:<app>` (exactly one app); see
//! [`DeploymentId`](crate::deployment::DeploymentId).

use std::collections::BTreeMap;

use entra_auth::acquire::TOKEN_EXCHANGE_AUDIENCE;
use entra_manifest::{App, Manifest, MemberType};

use crate::deployment::{Deployment, TAG};
use crate::model::{
    Api, AppRole, Application, FederatedCredential, InheritablePermission, InheritableScopes, PermissionScope,
    PreAuthorizedApplication, RequiredResourceAccess, ResourceAccess, Web,
};

/// Federated credentials whose description starts with this were made by the hook: it may
/// update or remove them. Others (added by hand) are left alone.
pub const FIC_MARKER: &str = "Managed by orders-copilot postprovision";

/// The issuer of a managed identity's tokens, as a federated credential names it.
pub fn managed_identity_issuer(tenant_id: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant_id}/v2.0")
}

/// Everything rendering needs beyond the manifest: the deployment and Graph's application ids
/// (by manifest app name).
pub struct Context<'a> {
    pub manifest: &'a Manifest,
    pub deployment: &'a Deployment,
    pub app_ids: &'a BTreeMap<String, String>,
}

impl Context<'_> {
    /// The application id of a manifest app or first-party client.
    fn client_app_id(&self, name: &str) -> String {
        self.app_ids
            .get(name)
            .cloned()
            .or_else(|| self.manifest.clients.get(name).map(|c| c.client_id.clone()))
            .unwrap_or_default()
    }

    pub fn application(&self, app: &App) -> Application {
        let vars = self.deployment.vars();
        let id = &self.deployment.id;
        let scope_id = |resource: &App, value: &str| resource.scope(value).map(|s| s.id.clone()).unwrap_or_default();
        Application {
            id: String::new(),
            app_id: String::new(),
            display_name: id.display_name(&app.display_name),
            sign_in_audience: "AzureADMyOrg".into(),
            tags: vec![TAG.into(), id.tag(), id.app_tag(&app.name)],
            identifier_uris: app.identifier_uri.iter().map(|t| t.render(&vars)).collect(),
            api: Api {
                requested_access_token_version: Some(app.access_token_version),
                oauth2_permission_scopes: app
                    .scopes
                    .iter()
                    .map(|s| PermissionScope {
                        id: s.id.clone(),
                        value: s.value.clone(),
                        kind: "User".into(),
                        is_enabled: true,
                        admin_consent_display_name: s.admin_consent_display_name.clone(),
                        admin_consent_description: s.admin_consent_description.clone(),
                        user_consent_display_name: s.user_consent_display_name.clone(),
                        user_consent_description: s.user_consent_description.clone(),
                    })
                    .collect(),
                pre_authorized_applications: app
                    .pre_authorized
                    .iter()
                    .map(|p| PreAuthorizedApplication {
                        app_id: self.client_app_id(&p.client),
                        delegated_permission_ids: p.scopes.iter().map(|s| scope_id(app, s)).collect(),
                    })
                    .collect(),
                known_client_applications: app
                    .known_client_applications
                    .iter()
                    .map(|c| self.client_app_id(c))
                    .collect(),
            },
            app_roles: app
                .app_roles
                .iter()
                .map(|r| AppRole {
                    id: r.id.clone(),
                    value: r.value.clone(),
                    display_name: r.display_name.clone(),
                    description: r.description.clone(),
                    allowed_member_types: r
                        .allowed_member_types
                        .iter()
                        .map(|m| match m {
                            MemberType::User => "User".to_string(),
                            MemberType::Application => "Application".to_string(),
                        })
                        .collect(),
                    is_enabled: true,
                })
                .collect(),
            web: Web {
                redirect_uris: app.redirect_uris.iter().map(|t| t.render(&vars)).collect(),
                logout_url: app.front_channel_logout_url.as_ref().map(|t| t.render(&vars)),
            },
            required_resource_access: app
                .required_access
                .iter()
                .filter_map(|r| {
                    let resource = self.manifest.app(&r.resource)?;
                    Some(RequiredResourceAccess {
                        resource_app_id: self.client_app_id(&r.resource),
                        resource_access: r
                            .scopes
                            .iter()
                            .map(|s| ResourceAccess { id: scope_id(resource, s), kind: "Scope".into() })
                            .collect(),
                    })
                })
                .collect(),
        }
    }

    /// The federated identity credentials `app` must have: one per managed identity it trusts.
    pub fn federated_credentials(&self, app: &App) -> Vec<FederatedCredential> {
        app.federated_credentials
            .iter()
            .map(|f| FederatedCredential {
                id: String::new(),
                name: f.name.clone(),
                issuer: managed_identity_issuer(&self.deployment.id.tenant_id),
                subject: self.deployment.principal_ids.get(&f.managed_identity).cloned().unwrap_or_default(),
                audiences: vec![TOKEN_EXCHANGE_AUDIENCE.to_string()],
                description: Some(format!("{FIC_MARKER}: trusts the {} managed identity", f.managed_identity)),
            })
            .collect()
    }
}

impl Context<'_> {
    /// The inheritable permissions `blueprint` must have: the manifest's scope values, per
    /// resource app (`enumeratedScopes`: exactly those, nothing more).
    pub fn inheritable_permissions(&self, blueprint: &App) -> Vec<InheritablePermission> {
        blueprint
            .inheritable_permissions
            .iter()
            .map(|p| InheritablePermission {
                resource_app_id: self.client_app_id(&p.resource),
                inheritable_scopes: InheritableScopes::enumerated(&p.scopes),
            })
            .collect()
    }
}

/// The admin consent (`AllPrincipals` grant) an app needs on a resource: the scope values,
/// sorted, space-separated as Graph stores them.
pub fn consent_scopes(scopes: &[String]) -> String {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    scopes.join(" ")
}
