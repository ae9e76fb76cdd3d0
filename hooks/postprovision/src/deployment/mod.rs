//! What the hook knows about the deployment: the azd environment's values (azd's own, plus
//! the Bicep outputs), parsed into typed settings with every problem reported at once. The
//! variables' names are in [`variables`].

pub mod variables;

use std::collections::BTreeMap;

use entra_manifest::{Manifest, Vars};
use service_kit::settings::{Env, SettingsError};

use variables::{
    AGENT_IDENTITY, AGENT_MODE, ASSIGN_ROLES, AZD_ENV_NAME, AZD_SUBSCRIPTION_ID, CHAT_APP_URL, ORDERS_MCP_PUBLIC_URL,
    RESOURCE_GROUP, RESOURCE_TOKEN, TENANT_ID, container_app_key, federated_identities, principal_id_key,
};

/// Every app registration the hook makes carries this tag (and the more specific ones below).
pub const TAG: &str = "orders-copilot";

/// What tells one deployment from every other: the azd environment name, the subscription and
/// Bicep's resource token (`uniqueString(subscription().id, environmentName, location)`), in
/// one tenant. The hook's tags name all three, so two people's `dev` environments in one
/// tenant never share, change or delete each other's app registrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentId {
    pub env_name: String,
    pub subscription_id: String,
    pub resource_token: String,
    pub tenant_id: String,
}

impl DeploymentId {
    /// Reads the deployment's identity, recording every problem in `env`.
    fn read(env: &mut Env) -> Option<DeploymentId> {
        let env_name: Option<String> = env.required(AZD_ENV_NAME, "the azd environment name");
        if let Some(name) = &env_name
            && !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            env.problem(format!("{AZD_ENV_NAME}={name:?} may hold only letters, digits, '-' and '_'"));
        }
        let subscription_id = guid(env, AZD_SUBSCRIPTION_ID, "the subscription (set by azd)");
        let resource_token: Option<String> =
            env.required(RESOURCE_TOKEN, "the deployment's resource token (a Bicep output)");
        if let Some(token) = &resource_token
            && !(token.len() <= 20 && token.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        {
            env.problem(format!(
                "{RESOURCE_TOKEN}={token:?} must be Bicep's uniqueString(): lowercase letters and digits"
            ));
        }
        let tenant_id = guid(env, TENANT_ID, "the tenant id (a Bicep output)");
        Some(DeploymentId {
            env_name: env_name?,
            subscription_id: subscription_id?,
            resource_token: resource_token?,
            tenant_id: tenant_id?,
        })
    }

    /// What `cleanup` needs, and nothing more: it must work after a failed provision, when azd
    /// holds only its own values. `Ok(None)`: the Bicep outputs that `apply` needs were never
    /// written, so `apply` never ran for this environment and there is nothing of it to remove.
    pub fn for_cleanup(values: BTreeMap<String, String>) -> Result<Option<DeploymentId>, SettingsError> {
        let mut env = Env::from_map(values);
        if env.get(TENANT_ID).is_none() || env.get(RESOURCE_TOKEN).is_none() {
            let _: Option<String> = env.required(AZD_ENV_NAME, "the azd environment name");
            env.finish()?;
            return Ok(None);
        }
        let id = DeploymentId::read(&mut env);
        env.finish()?;
        Ok(id)
    }

    /// On every app registration of this deployment: how `cleanup` finds them.
    pub fn tag(&self) -> String {
        format!("{TAG}:{}:{}:{}", self.env_name, self.subscription_id, self.resource_token)
    }

    /// On exactly one app registration: manifest app `app` of this deployment.
    pub fn app_tag(&self, app: &str) -> String {
        format!("{}:{app}", self.tag())
    }

    /// `{suffix}` in the manifest (identifier URIs): unique per deployment, like the tags.
    pub fn suffix(&self) -> String {
        format!("{}-{}", self.env_name, self.resource_token)
    }

    /// How a display name says which deployment an app belongs to: `Orders API (dev 3kx8...)`.
    pub fn display_name(&self, name: &str) -> String {
        format!("{name} ({} {})", self.env_name, self.resource_token)
    }
}

/// Where the container apps are, when the environment has them (it does after `azd provision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerApps {
    pub subscription_id: String,
    pub resource_group: String,
    /// Manifest app name -> container app name.
    pub apps: BTreeMap<String, String>,
}

/// An app role for a user, as `<app>/<role>` in the manifest's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRequest {
    pub app: String,
    pub role: String,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: DeploymentId,
    pub chat_app_url: String,
    /// orders-mcp's https origin: `{orders_mcp_url}` in the manifest's templates.
    pub orders_mcp_url: String,
    /// Managed identity name -> principal (object) id.
    pub principal_ids: BTreeMap<String, String>,
    pub container_apps: Option<ContainerApps>,
    pub assign_roles: Vec<RoleRequest>,
    /// chat-app runs as its own agent identity ([`AGENT_IDENTITY`] = [`AGENT_MODE`]): the hook
    /// also creates the manifest's agent blueprints and agent identities. Off, it leaves them
    /// alone (neither plans nor deletes them).
    pub agent_mode: bool,
    /// Every value the environment holds, to tell which outputs actually change.
    pub values: BTreeMap<String, String>,
}

impl Deployment {
    /// Reads the deployment from azd environment `values`, checked against `manifest`.
    /// `extra_roles` come from the command line and add to [`ASSIGN_ROLES`].
    pub fn from_values(
        values: BTreeMap<String, String>,
        manifest: &Manifest,
        extra_roles: &[String],
    ) -> Result<Deployment, SettingsError> {
        let mut env = Env::from_map(values.clone());
        let id = DeploymentId::read(&mut env);
        let chat_app_url: Option<String> = env.required(CHAT_APP_URL, "chat-app's https origin (a Bicep output)");
        if let Some(url) = &chat_app_url {
            check_origin(&mut env, CHAT_APP_URL, url);
        }
        let orders_mcp_url: Option<String> =
            env.required(ORDERS_MCP_PUBLIC_URL, "orders-mcp's https origin (a Bicep output)");
        if let Some(url) = &orders_mcp_url {
            check_origin(&mut env, ORDERS_MCP_PUBLIC_URL, url);
        }
        let mut principal_ids = BTreeMap::new();
        for mi in federated_identities(manifest) {
            let key = principal_id_key(&mi);
            if let Some(id) = guid(&mut env, &key, "a managed identity's principal id (a Bicep output)") {
                principal_ids.insert(mi, id);
            }
        }
        let container_apps = container_apps(&mut env, manifest, id.as_ref());
        let mut requested: Vec<String> = env
            .get(ASSIGN_ROLES)
            .map(|v| v.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect())
            .unwrap_or_default();
        requested.extend(extra_roles.iter().cloned());
        let mut assign_roles = Vec::new();
        for text in requested {
            match role_request(&text, manifest) {
                Ok(role) if !assign_roles.contains(&role) => assign_roles.push(role),
                Ok(_) => {}
                Err(problem) => env.problem(problem),
            }
        }
        let agent_mode = env.choice(AGENT_IDENTITY, &["none", AGENT_MODE], "none") == AGENT_MODE;
        if agent_mode && manifest.agent_identities.is_empty() {
            env.problem(format!("{AGENT_IDENTITY}={AGENT_MODE} needs an [agent_identity.*] in the identity manifest"));
        }
        env.finish()?;
        match (id, chat_app_url, orders_mcp_url) {
            (Some(id), Some(chat_app_url), Some(orders_mcp_url)) => Ok(Deployment {
                id,
                chat_app_url: chat_app_url.trim_end_matches('/').to_string(),
                orders_mcp_url: orders_mcp_url.trim_end_matches('/').to_string(),
                principal_ids,
                container_apps,
                assign_roles,
                agent_mode,
                values,
            }),
            // `finish` has already reported whichever is missing.
            _ => Err(SettingsError { problems: vec!["incomplete deployment settings".into()] }),
        }
    }

    /// The values the manifest's templates are rendered with.
    pub fn vars(&self) -> Vars {
        Vars {
            suffix: self.id.suffix(),
            chat_app_url: self.chat_app_url.clone(),
            orders_mcp_url: self.orders_mcp_url.clone(),
            tenant_id: self.id.tenant_id.clone(),
        }
    }
}

fn guid(env: &mut Env, key: &str, what: &str) -> Option<String> {
    let value: String = env.required(key, what)?;
    if is_guid(&value) {
        Some(value.to_ascii_lowercase())
    } else {
        env.problem(format!("{key}={value:?} is not a GUID: expected {what}"));
        None
    }
}

pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_origin(env: &mut Env, name: &str, value: &str) {
    match url::Url::parse(value) {
        Ok(url) if url.scheme() == "https" || url.host_str() == Some("localhost") => {
            if url.path() != "/" || url.query().is_some() {
                env.problem(format!("{name}={value:?} must be an origin (scheme and host), without a path"));
            }
        }
        Ok(_) => env.problem(format!(
            "{name}={value:?} must use https: Entra accepts http redirect and identifier URIs only for localhost"
        )),
        Err(e) => env.problem(format!("{name}={value:?} is not a URL: {e}")),
    }
}

fn container_apps(env: &mut Env, manifest: &Manifest, id: Option<&DeploymentId>) -> Option<ContainerApps> {
    let apps: BTreeMap<String, String> = manifest
        .apps
        .keys()
        .filter_map(|app| env.get(&container_app_key(app)).map(|name| (app.clone(), name)))
        .collect();
    if apps.is_empty() {
        return None;
    }
    let resource_group: Option<String> = env.required(RESOURCE_GROUP, "the resource group the apps are in");
    Some(ContainerApps { subscription_id: id?.subscription_id.clone(), resource_group: resource_group?, apps })
}

fn role_request(text: &str, manifest: &Manifest) -> Result<RoleRequest, String> {
    let Some((app, role)) = text.split_once('/') else {
        return Err(format!("app role {text:?} must be written <app>/<role>, e.g. orders-api/Orders.Admin"));
    };
    let defined = manifest.app(app).and_then(|a| a.app_role(role));
    match defined {
        Some(r) if r.allowed_member_types.contains(&entra_manifest::MemberType::User) => {
            Ok(RoleRequest { app: app.to_string(), role: role.to_string() })
        }
        Some(_) => Err(format!("app role {text:?} cannot be assigned to users")),
        None => Err(format!("app role {text:?} is not defined in the identity manifest")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap()
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    const MCP_MI: &str = "11111111-1111-1111-1111-111111111111";
    const CHAT_MI: &str = "22222222-2222-2222-2222-222222222222";

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AZURE_ENV_NAME", "dev"),
            ("AZURE_SUBSCRIPTION_ID", "33333333-3333-3333-3333-333333333333"),
            ("AZURE_RESOURCE_TOKEN", "k3xq7n2m4p5ra"),
            ("AZURE_TENANT_ID", "AFB67780-0DEC-4124-A11C-B6E461EB7AAD"),
            ("CHAT_APP_URL", "https://chat.example.io/"),
            ("ORDERS_MCP_PUBLIC_URL", "https://mcp.example.io"),
            ("ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID", MCP_MI),
            ("CHAT_APP_MANAGED_IDENTITY_PRINCIPAL_ID", CHAT_MI),
        ]
    }

    #[test]
    fn a_complete_environment_parses() {
        let d = Deployment::from_values(values(&complete()), &manifest(), &[]).unwrap();
        assert_eq!(d.id.env_name, "dev");
        assert_eq!(d.id.tenant_id, "afb67780-0dec-4124-a11c-b6e461eb7aad");
        assert_eq!(d.id.tag(), "orders-copilot:dev:33333333-3333-3333-3333-333333333333:k3xq7n2m4p5ra");
        assert_eq!(d.vars().suffix, "dev-k3xq7n2m4p5ra");
        assert_eq!(d.chat_app_url, "https://chat.example.io");
        assert_eq!(d.principal_ids["orders-mcp"], MCP_MI);
        assert_eq!(d.principal_ids["chat-app"], CHAT_MI);
        assert!(d.container_apps.is_none());
        assert!(d.assign_roles.is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = Deployment::from_values(
            values(&[
                ("AZURE_TENANT_ID", "not-a-guid"),
                ("CHAT_APP_URL", "http://chat.example.io"),
                ("ORDERS_COPILOT_ASSIGN_ROLES", "orders-api/Orders.Boss"),
                ("CHAT_APP_CONTAINER_APP_NAME", "chat-app-x"),
            ]),
            &manifest(),
            &["nonsense".to_string()],
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "AZURE_ENV_NAME is not set",
            "AZURE_TENANT_ID=\"not-a-guid\" is not a GUID",
            "must use https",
            "ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID is not set",
            "CHAT_APP_MANAGED_IDENTITY_PRINCIPAL_ID is not set",
            "AZURE_SUBSCRIPTION_ID is not set",
            "AZURE_RESOURCE_TOKEN is not set",
            "AZURE_RESOURCE_GROUP is not set",
            "\"orders-api/Orders.Boss\" is not defined",
            "\"nonsense\" must be written <app>/<role>",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn container_apps_and_roles_are_read() {
        let mut pairs = complete();
        pairs.extend([
            ("AZURE_RESOURCE_GROUP", "rg-dev"),
            ("ORDERS_API_CONTAINER_APP_NAME", "orders-api-abc"),
            ("CHAT_APP_CONTAINER_APP_NAME", "chat-app-abc"),
            ("ORDERS_COPILOT_ASSIGN_ROLES", "orders-api/Orders.Admin"),
        ]);
        let d = Deployment::from_values(values(&pairs), &manifest(), &["orders-api/Orders.Admin".into()]).unwrap();
        let apps = d.container_apps.unwrap();
        assert_eq!(apps.resource_group, "rg-dev");
        assert_eq!(apps.subscription_id, "33333333-3333-3333-3333-333333333333");
        assert_eq!(apps.apps.len(), 2);
        assert_eq!(apps.apps["orders-api"], "orders-api-abc");
        assert_eq!(d.assign_roles, [RoleRequest { app: "orders-api".into(), role: "Orders.Admin".into() }]);
    }

    #[test]
    fn agent_mode_is_opt_in_and_spelled_as_chat_app_spells_it() {
        let d = Deployment::from_values(values(&complete()), &manifest(), &[]).unwrap();
        assert!(!d.agent_mode, "off unless asked for");
        let mut pairs = complete();
        pairs.push(("CHAT_APP_AGENT_IDENTITY", "entra-agent-id"));
        assert!(Deployment::from_values(values(&pairs), &manifest(), &[]).unwrap().agent_mode);
        pairs.pop();
        pairs.push(("CHAT_APP_AGENT_IDENTITY", "agent-id"));
        let err = Deployment::from_values(values(&pairs), &manifest(), &[]).unwrap_err().to_string();
        assert!(err.contains("CHAT_APP_AGENT_IDENTITY=\"agent-id\" is not one of: none, entra-agent-id"), "{err}");
    }

    #[test]
    fn cleanup_needs_only_what_identifies_the_deployment() {
        // After a failed first provision azd holds only its own values: nothing was applied.
        let bare =
            values(&[("AZURE_ENV_NAME", "dev"), ("AZURE_SUBSCRIPTION_ID", "33333333-3333-3333-3333-333333333333")]);
        assert_eq!(DeploymentId::for_cleanup(bare).unwrap(), None);
        let pairs = [
            ("AZURE_ENV_NAME", "dev"),
            ("AZURE_SUBSCRIPTION_ID", "33333333-3333-3333-3333-333333333333"),
            ("AZURE_RESOURCE_TOKEN", "k3xq7n2m4p5ra"),
            ("AZURE_TENANT_ID", "afb67780-0dec-4124-a11c-b6e461eb7aad"),
        ];
        let id = DeploymentId::for_cleanup(values(&pairs)).unwrap().unwrap();
        assert_eq!(id.app_tag("orders-api"), format!("{}:orders-api", id.tag()));
        let err = DeploymentId::for_cleanup(values(&[])).unwrap_err().to_string();
        assert!(err.contains("AZURE_ENV_NAME is not set"), "{err}");
    }
}
