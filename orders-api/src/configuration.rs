//! Typed settings from environment variables, checked at start with every problem reported at once.
//!
//! Entra identifiers default from the identity manifest (`infra/app-registrations.toml`), so
//! nothing here hard-codes an id; Azure sets them explicitly.

use std::net::SocketAddr;
use std::path::PathBuf;

use entra_auth::settings::{Identity, Trust};
use service_kit::settings::{Env, SettingsError};
use url::Url;

use crate::permissions::SCOPES;
use crate::seed::{self, SeedUser};

#[derive(Debug, Clone)]
pub struct Settings {
    /// `ORDERS_API_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// `ORDERS_API_DATABASE`: the SQLite file; its directory is created if missing.
    pub database: PathBuf,
    /// `ORDERS_API_PUBLIC_URL`: the URL clients call; the RFC 9728 `resource`.
    pub public_url: Url,
    /// `ENTRA_AUTHORITY`: where OpenID metadata and keys are fetched.
    pub authority: Url,
    pub tenant_id: String,
    /// The issuer named in the RFC 9728 metadata (under `ENTRA_PUBLIC_AUTHORITY`).
    pub issuer_v2: String,
    /// `ORDERS_API_CLIENT_ID`.
    pub client_id: String,
    /// `ORDERS_API_APP_ID_URI` (`api://<tenant id>/orders-api-<suffix>`): the `aud` of v1 tokens.
    pub app_id_uri: Option<String>,
    /// `ORDERS_MCP_CLIENT_ID`: orders-mcp's client id, the one application whose users' tokens
    /// orders-api accepts (it obtains them On-Behalf-Of the user).
    pub orders_mcp_client_id: String,
    /// `ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE`: an extra accepted audience (orders-mcp's), for
    /// the passthrough demonstration only.
    pub passthrough_audience: Option<String>,
    /// Owners of the demo orders, from the manifest; empty when there is none.
    pub seed_users: Vec<SeedUser>,
    /// `ORDERS_API_AGENT_POLICY`: what a call by an agent (Microsoft Entra Agent ID) may do.
    pub agent_policy: AgentPolicy,
    /// `ORDERS_API_APPROVAL_AUTH_CONTEXT` (default `c1`): the Conditional Access authentication
    /// context an agent's write needs under `approved-writes`.
    pub approval_auth_context: String,
    /// Where a claims challenge sends the user to step up: the public authority's v2 authorize
    /// endpoint for the tenant.
    pub step_up_authorization_uri: String,
    /// `ENTRA_CA_FILE`: extra roots for HTTPS to the identity provider.
    pub trust: Trust,
}

/// What orders-api lets an agent do for its user. Whatever the policy, an agent never gets more
/// than its token's scopes: the policy only takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentPolicy {
    /// `allow` (the default): an agent acts with its user's delegated permissions.
    #[default]
    Allow,
    /// `read-only`: an agent may read; creating, cancelling or deleting needs the user's own
    /// token. (An exception for calls the person approved in chat-app is not built yet: no
    /// proof of that approval reaches orders-api; docs/agent-identity.md.)
    ReadOnly,
    /// `users-only`: every call must carry a user's own token; an agent's is refused.
    UsersOnly,
    /// `approved-writes`: an agent may read; its writes need the token to show the user stepped
    /// up for the approval's authentication context (`acrs`), else a claims challenge (401).
    ApprovedWrites,
}

impl Settings {
    pub fn from_env(mut env: Env) -> Result<Settings, SettingsError> {
        let addr = env.parse("ORDERS_API_ADDR", SocketAddr::from(([127, 0, 0, 1], 3002)), "a socket address");
        let database = PathBuf::from(env.string("ORDERS_API_DATABASE", "./data/orders.db"));
        let public_url = env
            .optional::<Url>("ORDERS_API_PUBLIC_URL", "a URL like http://localhost:3002")
            .unwrap_or_else(default_public_url);
        if !matches!(public_url.scheme(), "http" | "https") || public_url.query().is_some() {
            env.problem(format!("ORDERS_API_PUBLIC_URL={public_url} must be an http(s) URL without a query"));
        }
        let passthrough_audience = env.get("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE");
        let passthrough_in_deployment = env.flag("ORDERS_API_PASSTHROUGH_IN_DEPLOYMENT", false);
        let identity = Identity::from_env(&mut env);
        // The passthrough demonstration accepts tokens issued to another API (the confused
        // deputy it exists to show): never in a deployment by accident.
        if identity.deployment.is_some() && passthrough_audience.is_some() && !passthrough_in_deployment {
            env.problem(
                "ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE is set in a deployment: it accepts tokens issued to another \
API, for the passthrough demonstration only. Unset it, or also set ORDERS_API_PASSTHROUGH_IN_DEPLOYMENT=true",
            );
        }
        let app = identity.app(&mut env, "ORDERS_API", "orders-api");
        let orders_mcp_client_id = identity.client_id(&mut env, "ORDERS_MCP", "orders-mcp");
        let seed_users = identity.manifest.as_ref().map_or_else(Vec::new, seed::seed_users);
        let policies = ["allow", "read-only", "users-only", "approved-writes"];
        let agent_policy = match env.choice("ORDERS_API_AGENT_POLICY", &policies, "allow").as_str() {
            "read-only" => AgentPolicy::ReadOnly,
            "users-only" => AgentPolicy::UsersOnly,
            "approved-writes" => AgentPolicy::ApprovedWrites,
            _ => AgentPolicy::Allow,
        };
        let approval_auth_context = env.string("ORDERS_API_APPROVAL_AUTH_CONTEXT", "c1");
        if !entra_manifest::is_auth_context_id(&approval_auth_context) {
            env.problem(format!(
                "ORDERS_API_APPROVAL_AUTH_CONTEXT={approval_auth_context:?} is not an authentication context id (c1 ... c99)"
            ));
        }
        let step_up_authorization_uri = format!(
            "{}/{}/oauth2/v2.0/authorize",
            identity.public_authority.as_str().trim_end_matches('/'),
            identity.tenant_id
        );
        env.finish()?;
        Ok(Settings {
            addr,
            database,
            public_url,
            issuer_v2: identity.issuer_v2(),
            authority: identity.authority,
            tenant_id: identity.tenant_id,
            client_id: app.client_id,
            app_id_uri: app.app_id_uri,
            orders_mcp_client_id,
            passthrough_audience,
            seed_users,
            agent_policy,
            approval_auth_context,
            step_up_authorization_uri,
            trust: identity.trust,
        })
    }

    /// The `aud` values orders-api accepts: its `api://` URI and client id, plus the
    /// passthrough audience when explicitly allowed.
    pub fn audiences(&self) -> Vec<String> {
        self.app_id_uri
            .iter()
            .chain(std::iter::once(&self.client_id))
            .chain(self.passthrough_audience.iter())
            .cloned()
            .collect()
    }

    /// The scopes clients request for this API, as Entra spells them (`api://.../Orders.Read`).
    pub fn scopes_supported(&self) -> Vec<String> {
        let resource = self.app_id_uri.as_deref().unwrap_or(&self.client_id);
        SCOPES.iter().map(|s| format!("{resource}/{s}")).collect()
    }
}

fn default_public_url() -> Url {
    #[allow(clippy::expect_used)] // a constant that parses; the tests below exercise it
    Url::parse("http://localhost:3002").expect("constant URL")
}

#[cfg(test)]
mod tests {
    use entra_manifest::REPOSITORY_MANIFEST;
    use service_kit::settings::documented_variables;

    use super::*;
    use crate::seed::SEED_USERS;

    #[test]
    fn defaults_come_from_the_manifest() {
        let settings = Settings::from_env(Env::from_map([("IDENTITY_MANIFEST", REPOSITORY_MANIFEST)])).unwrap();
        let manifest = entra_manifest::Manifest::load(REPOSITORY_MANIFEST).unwrap();
        let api = manifest.app("orders-api").unwrap();
        assert_eq!(settings.addr.to_string(), "127.0.0.1:3002");
        assert_eq!(settings.database, PathBuf::from("./data/orders.db"));
        assert_eq!(settings.public_url.as_str(), "http://localhost:3002/");
        assert_eq!(settings.tenant_id, manifest.tenant.id);
        assert_eq!(settings.client_id, api.client_id);
        assert_eq!(settings.orders_mcp_client_id, manifest.app("orders-mcp").unwrap().client_id);
        assert_eq!(
            settings.audiences(),
            ["api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local".to_string(), api.client_id.clone()]
        );
        assert_eq!(settings.passthrough_audience, None);
        assert_eq!(settings.issuer_v2, format!("http://localhost:3003/{}/v2.0", manifest.tenant.id));
        let names: Vec<_> = settings.seed_users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, SEED_USERS);
        assert_eq!(settings.seed_users[0].oid, manifest.user("alice").unwrap().oid);
        assert_eq!(
            settings.scopes_supported(),
            [
                "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.Read",
                "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/Orders.ReadWrite"
            ]
        );
    }

    /// Passthrough accepts tokens issued to another API: in a deployment only when asked twice.
    #[test]
    fn passthrough_in_a_deployment_needs_an_explicit_opt_in() {
        let err = Settings::from_env(Env::from_map([
            ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST),
            ("CONTAINER_APP_NAME", "orders-api-abc"),
            ("ENTRA_AUTHORITY", "https://login.microsoftonline.com"),
            ("ENTRA_TENANT_ID", "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a"),
            ("ORDERS_API_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("ORDERS_API_APP_ID_URI", "api://orders-api-prod"),
            ("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE", "a58242b0-4441-4e9a-b6fa-2c3a3d94ebff"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("ORDERS_API_PASSTHROUGH_IN_DEPLOYMENT=true"), "{err}");
    }

    #[test]
    fn variables_override_defaults() {
        let settings = Settings::from_env(Env::from_map([
            ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST),
            ("ORDERS_API_ADDR", "0.0.0.0:8080"),
            ("ORDERS_API_DATABASE", "/var/lib/orders/orders.db"),
            ("ORDERS_API_PUBLIC_URL", "https://orders.internal.example"),
            ("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE", "a58242b0-4441-4e9a-b6fa-2c3a3d94ebff"),
            ("ORDERS_API_PASSTHROUGH_IN_DEPLOYMENT", "true"),
            ("ENTRA_AUTHORITY", "https://login.microsoftonline.com"),
            ("ENTRA_TENANT_ID", "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a"),
            ("ORDERS_API_CLIENT_ID", "11111111-2222-3333-4444-555555555555"),
            ("ORDERS_API_APP_ID_URI", "api://orders-api-prod"),
            ("ORDERS_MCP_CLIENT_ID", "66666666-7777-8888-9999-000000000000"),
        ]))
        .unwrap();
        assert_eq!(settings.addr.port(), 8080);
        assert_eq!(settings.orders_mcp_client_id, "66666666-7777-8888-9999-000000000000");
        assert_eq!(settings.database, PathBuf::from("/var/lib/orders/orders.db"));
        assert_eq!(settings.public_url.as_str(), "https://orders.internal.example/");
        assert_eq!(settings.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(
            settings.audiences(),
            ["api://orders-api-prod", "11111111-2222-3333-4444-555555555555", "a58242b0-4441-4e9a-b6fa-2c3a3d94ebff"]
        );
    }

    #[test]
    fn every_bad_value_is_reported_by_name() {
        let err = Settings::from_env(Env::from_map([
            ("IDENTITY_MANIFEST", "/nonexistent/app-registrations.toml"),
            ("ORDERS_API_ADDR", "localhost"),
            ("ORDERS_API_PUBLIC_URL", "ftp://orders"),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for name in ["ORDERS_API_ADDR", "ORDERS_API_PUBLIC_URL", "IDENTITY_MANIFEST", "ORDERS_API_CLIENT_ID"] {
            assert!(text.contains(name), "{name} missing from: {text}");
        }
    }

    #[test]
    fn the_readme_lists_exactly_the_variables_read() {
        let env = Env::from_map([("IDENTITY_MANIFEST", REPOSITORY_MANIFEST)]);
        let read = env.names_read();
        Settings::from_env(env).unwrap();
        let mut names = read.names();
        names.extend(service_kit::telemetry::VARIABLES.map(String::from));
        let documented = documented_variables(include_str!("../README.md"), "## Configuration").unwrap();
        assert_eq!(documented, names);
    }
}
