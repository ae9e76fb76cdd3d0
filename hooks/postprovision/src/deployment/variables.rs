//! The names of the azd environment's variables the hook reads and writes: the contract with
//! azd, infra/main.bicep (which tests/bicep.rs checks against these) and the services.

use entra_manifest::Manifest;

/// azd's own variables, present in every azd environment.
pub const AZD_ENV_NAME: &str = "AZURE_ENV_NAME";
pub const AZD_SUBSCRIPTION_ID: &str = "AZURE_SUBSCRIPTION_ID";

/// Bicep outputs (infra/main.bicep) this hook reads; the per-app names below complete the list.
pub const TENANT_ID: &str = "AZURE_TENANT_ID";
pub const RESOURCE_GROUP: &str = "AZURE_RESOURCE_GROUP";
/// Bicep's `uniqueString(subscription().id, environmentName, location)`: names the deployment's
/// resources, and (with the environment name and subscription) its app registrations' tags.
pub const RESOURCE_TOKEN: &str = "AZURE_RESOURCE_TOKEN";
pub const CHAT_APP_URL: &str = "CHAT_APP_URL";
/// orders-mcp's https origin: its Application ID URI is `<origin>/mcp` (a Bicep output).
pub const ORDERS_MCP_PUBLIC_URL: &str = "ORDERS_MCP_PUBLIC_URL";

/// App roles to give the signed-in user, e.g. `orders-api/Orders.Admin` (comma-separated).
pub const ASSIGN_ROLES: &str = "ORDERS_COPILOT_ASSIGN_ROLES";

/// How the developer signs in to agent mode's provisioning client: `browser` (the default) or
/// `device-code` (machines without a browser; also `--device-code`).
pub const SIGN_IN: &str = "ORDERS_COPILOT_SIGN_IN";
/// The values of [`SIGN_IN`], the default first.
pub const SIGN_IN_FLOWS: [&str; 2] = ["browser", "device-code"];

/// chat-app's agent mode (`none` or `entra-agent-id`), set by you (`azd env set`) and given to
/// chat-app by Bicep: in agent mode the hook also creates the manifest's Agent ID objects.
pub const AGENT_IDENTITY: &str = "CHAT_APP_AGENT_IDENTITY";
/// The value of [`AGENT_IDENTITY`] that turns agent mode on.
pub const AGENT_MODE: &str = "entra-agent-id";
/// Written by the hook in agent mode, read by chat-app: the blueprint's app id, its
/// Application ID URI (what users sign in for) and the agent identity's app id.
pub const AGENT_BLUEPRINT_ID: &str = "CHAT_APP_AGENT_BLUEPRINT_ID";
pub const AGENT_BLUEPRINT_APP_ID_URI: &str = "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI";
pub const AGENT_ID: &str = "CHAT_APP_AGENT_ID";

/// `orders-mcp` -> `ORDERS_MCP`: how a manifest name appears in variable names.
pub fn env_prefix(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// Bicep output: the principal (object) id of a managed identity named in the manifest.
pub fn principal_id_key(identity: &str) -> String {
    format!("{}_MANAGED_IDENTITY_PRINCIPAL_ID", env_prefix(identity))
}

/// Bicep output: the name of the container app hosting a manifest app.
pub fn container_app_key(app: &str) -> String {
    format!("{}_CONTAINER_APP_NAME", env_prefix(app))
}

/// Written by the hook: an app registration's application (client) id.
pub fn client_id_key(app: &str) -> String {
    format!("{}_CLIENT_ID", env_prefix(app))
}

/// Written by the hook: an app registration's application id URI.
pub fn app_id_uri_key(app: &str) -> String {
    format!("{}_APP_ID_URI", env_prefix(app))
}

/// Every Bicep output the hook reads for `manifest`: infra/main.bicep must declare them all.
pub fn required_outputs(manifest: &Manifest) -> Vec<String> {
    let mut keys = vec![
        TENANT_ID.to_string(),
        RESOURCE_GROUP.to_string(),
        RESOURCE_TOKEN.to_string(),
        CHAT_APP_URL.to_string(),
        ORDERS_MCP_PUBLIC_URL.to_string(),
    ];
    keys.extend(federated_identities(manifest).into_iter().map(|mi| principal_id_key(&mi)));
    keys.extend(manifest.apps.keys().map(|app| container_app_key(app)));
    keys
}

/// The variables the hook writes (and applies to the container apps that declare them).
pub fn written_keys(manifest: &Manifest) -> Vec<String> {
    let mut keys = Vec::new();
    for (name, app) in &manifest.apps {
        keys.push(client_id_key(name));
        if app.identifier_uri.is_some() {
            keys.push(app_id_uri_key(name));
        }
    }
    if !manifest.agent_identities.is_empty() {
        keys.extend([AGENT_BLUEPRINT_ID, AGENT_BLUEPRINT_APP_ID_URI, AGENT_ID].map(str::to_string));
    }
    keys
}

/// Managed identities that some app's (or agent blueprint's) federated credential trusts.
pub fn federated_identities(manifest: &Manifest) -> Vec<String> {
    let mut names: Vec<String> = manifest
        .apps
        .values()
        .chain(manifest.agent_blueprints.values())
        .flat_map(|app| app.federated_credentials.iter().map(|f| f.managed_identity.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_manifest() {
        let m = Manifest::load(entra_manifest::REPOSITORY_MANIFEST).unwrap();
        assert_eq!(
            required_outputs(&m),
            [
                "AZURE_TENANT_ID",
                "AZURE_RESOURCE_GROUP",
                "AZURE_RESOURCE_TOKEN",
                "CHAT_APP_URL",
                "ORDERS_MCP_PUBLIC_URL",
                "CHAT_APP_MANAGED_IDENTITY_PRINCIPAL_ID",
                "ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID",
                "CHAT_APP_CONTAINER_APP_NAME",
                "ORDERS_API_CONTAINER_APP_NAME",
                "ORDERS_MCP_CONTAINER_APP_NAME",
            ]
        );
        assert_eq!(
            written_keys(&m),
            [
                "CHAT_APP_CLIENT_ID",
                "ORDERS_API_CLIENT_ID",
                "ORDERS_API_APP_ID_URI",
                "ORDERS_MCP_CLIENT_ID",
                "ORDERS_MCP_APP_ID_URI",
                "CHAT_APP_AGENT_BLUEPRINT_ID",
                "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI",
                "CHAT_APP_AGENT_ID",
            ]
        );
    }
}
