//! The Entra settings every service shares, and the app credential, read one way everywhere.
//!
//! The identity manifest is the source of defaults: an explicit variable wins (Azure sets them
//! from postprovision's output), else the manifest (`IDENTITY_MANIFEST`, or
//! `infra/app-registrations.toml` found from the working directory) rendered for
//! `IDENTITY_SUFFIX` (default `local`). So no service hard-codes an id.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use entra_manifest::{Manifest, Vars};
use service_kit::settings::Env;
use url::Url;

use crate::acquire::{Credential, ManagedIdentityCredential, ManagedIdentitySource};

/// Where the identity provider is, which tenant, and the manifest the ids default to.
pub struct Identity {
    /// Where OpenID metadata and tokens are fetched (`ENTRA_AUTHORITY`, default the local
    /// emulator `http://localhost:3003`; `https://login.microsoftonline.com` in Azure).
    pub authority: Url,
    /// The authority browsers and MCP clients use (`ENTRA_PUBLIC_AUTHORITY`, default
    /// `authority`): differs only when services reach the IdP on an internal address (compose).
    pub public_authority: Url,
    pub tenant_id: String,
    pub manifest: Option<Manifest>,
    pub vars: Vars,
    /// Running against real Entra (see [`Deployment`]): the manifest's ids are the emulator's
    /// and must not be used.
    pub deployment: Option<Deployment>,
    /// Who to trust for HTTPS to the identity provider besides the system's roots.
    pub trust: Trust,
}

/// Why the settings count as a deployment: then every id must come from its variable (set
/// by the postprovision hook), never from the manifest, whose ids exist only in the emulator;
/// and the authority must be https. A service started with the emulator's ids against real
/// Entra would refuse every token (or, worse, accept the wrong ones), so it does not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// `CONTAINER_APP_NAME` is set: Azure Container Apps sets it in every container.
    ContainerApps,
    /// `ENTRA_AUTHORITY` is Microsoft Entra's (a Microsoft login host), not the emulator.
    EntraAuthority,
}

impl Deployment {
    pub fn why(&self) -> &'static str {
        match self {
            Deployment::ContainerApps => "CONTAINER_APP_NAME is set: this runs in Azure Container Apps",
            Deployment::EntraAuthority => "ENTRA_AUTHORITY is Microsoft Entra's",
        }
    }
}

/// Certificate authorities trusted for HTTPS besides the system's roots: `ENTRA_CA_FILE` (PEM,
/// one or more certificates), which names the Entra emulator's local CA in its `--tls` mode.
/// Verification itself is never turned off.
#[derive(Clone, Default)]
pub struct Trust {
    roots: Vec<reqwest::Certificate>,
}

impl Trust {
    /// Reads `ENTRA_CA_FILE`; a file that cannot be read or holds no certificate is a problem.
    pub fn from_env(env: &mut Env) -> Trust {
        let Some(path) = env.get("ENTRA_CA_FILE") else {
            return Trust::default();
        };
        let roots = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()));
        match roots {
            Ok(roots) if !roots.is_empty() => Trust { roots },
            Ok(_) => {
                env.problem(format!("ENTRA_CA_FILE: {path} holds no PEM certificate"));
                Trust::default()
            }
            Err(e) => {
                env.problem(format!("ENTRA_CA_FILE: cannot read certificates from {path}: {e}"));
                Trust::default()
            }
        }
    }

    /// An HTTP client builder trusting these authorities as well as the system's: every client
    /// that talks to the identity provider starts here.
    pub fn http(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder().tls_certs_merge(self.roots.iter().cloned())
    }
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trust({} extra root(s))", self.roots.len())
    }
}

/// One app registration's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRegistration {
    pub client_id: String,
    /// The identifier URI (`api://...`), for resources.
    pub app_id_uri: Option<String>,
}

impl Identity {
    /// Reads `ENTRA_AUTHORITY`, `ENTRA_PUBLIC_AUTHORITY`, `ENTRA_TENANT_ID`, `IDENTITY_MANIFEST`,
    /// `IDENTITY_SUFFIX`, `CHAT_APP_URL`, `ORDERS_MCP_PUBLIC_URL` (the manifest's placeholders),
    /// `CONTAINER_APP_NAME` (whether this is a deployment), `ENTRA_CA_FILE`.
    pub fn from_env(env: &mut Env) -> Identity {
        let authority = env
            .optional::<Url>("ENTRA_AUTHORITY", "a URL like https://login.microsoftonline.com")
            .unwrap_or_else(local_emulator);
        let deployment = if env.get("CONTAINER_APP_NAME").is_some() {
            Some(Deployment::ContainerApps)
        } else if is_entra(&authority) {
            Some(Deployment::EntraAuthority)
        } else {
            None
        };
        if let Some(why) = &deployment
            && authority.scheme() != "https"
        {
            env.problem(format!("ENTRA_AUTHORITY={authority} must be https in a deployment ({})", why.why()));
        }
        if let Some(why) = &deployment
            && env.get("ENTRA_TENANT_ID").is_none()
        {
            env.problem(format!(
                "ENTRA_TENANT_ID is not set: in a deployment ({}) the manifest's tenant is the emulator's",
                why.why()
            ));
        }
        let path = match env.get("IDENTITY_MANIFEST") {
            Some(p) => Some(PathBuf::from(p)),
            None => std::env::current_dir().ok().and_then(Manifest::locate),
        };
        let manifest = match path.map(Manifest::load) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                env.problem(format!("IDENTITY_MANIFEST: {e}"));
                None
            }
            None => None,
        };
        let tenant_id = match (env.get("ENTRA_TENANT_ID"), &manifest) {
            (Some(t), _) => t,
            (None, Some(m)) => m.tenant.id.clone(),
            (None, None) => {
                env.problem("ENTRA_TENANT_ID is not set and no identity manifest was found (set IDENTITY_MANIFEST)");
                String::new()
            }
        };
        let vars = Vars {
            suffix: env.string("IDENTITY_SUFFIX", "local"),
            chat_app_url: env.string("CHAT_APP_URL", "http://localhost:3000"),
            orders_mcp_url: env.string("ORDERS_MCP_PUBLIC_URL", "http://localhost:3001"),
            tenant_id: tenant_id.clone(),
        };
        let public_authority = env
            .optional::<Url>("ENTRA_PUBLIC_AUTHORITY", "a URL like http://localhost:3003")
            .unwrap_or_else(|| authority.clone());
        let trust = Trust::from_env(env);
        Identity { authority, public_authority, tenant_id, manifest, vars, deployment, trust }
    }

    /// `{PREFIX}_CLIENT_ID` and `{PREFIX}_APP_ID_URI`, else the manifest's app `name`; in a
    /// deployment the variables only (the manifest's ids are the emulator's).
    pub fn app(&self, env: &mut Env, prefix: &str, name: &str) -> AppRegistration {
        let client_id = self.client_id(env, prefix, name);
        let app = self.manifest.as_ref().and_then(|m| m.app(name));
        let uri_var = format!("{prefix}_APP_ID_URI");
        let explicit_uri = env.get(&uri_var);
        if let Some(why) = &self.deployment
            && app.is_some_and(|a| a.identifier_uri.is_some())
            && explicit_uri.is_none()
        {
            env.problem(format!(
                "{uri_var} is not set: in a deployment ({}) it comes from the postprovision hook (`azd provision`)",
                why.why()
            ));
        }
        let app_id_uri =
            explicit_uri.or_else(|| app.and_then(|a| a.identifier_uri.as_ref()).map(|t| t.render(&self.vars)));
        AppRegistration { client_id, app_id_uri }
    }

    /// `{PREFIX}_CLIENT_ID`, else the manifest's app `name`'s client id; in a deployment the
    /// variable only (the manifest's ids are the emulator's).
    pub fn client_id(&self, env: &mut Env, prefix: &str, name: &str) -> String {
        let app = self.manifest.as_ref().and_then(|m| m.app(name));
        let id_var = format!("{prefix}_CLIENT_ID");
        let explicit_id = env.get(&id_var);
        if let Some(why) = &self.deployment {
            let emulator_id = app.map(|a| a.client_id.as_str());
            if explicit_id.is_none() || explicit_id.as_deref() == emulator_id {
                env.problem(format!(
                    "{id_var} is not set to the app registration's client id: in a deployment ({}) the identity \
manifest's ids are the emulator's. The postprovision hook sets it (`azd provision`)",
                    why.why()
                ));
            }
        }
        explicit_id.or_else(|| app.map(|a| a.client_id.clone())).unwrap_or_else(|| {
            env.problem(format!("{id_var} is not set and the identity manifest has no app {name:?}"));
            String::new()
        })
    }

    /// The app's credential, the same way for every service: `{PREFIX}_CLIENT_SECRET` when set
    /// (an explicit local fallback wins: the platform never sets one, and on a laptop the
    /// managed-identity endpoint may be the broker, whose developer token Entra does not accept
    /// as the app's client assertion); else the managed identity the platform advertises with
    /// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (user-assigned: `{PREFIX}_MANAGED_IDENTITY_CLIENT_ID`,
    /// else the manifest's managed identity `name`); else `None`. Setting only one of the pair
    /// is a problem.
    pub fn credential(&self, env: &mut Env, prefix: &str, name: &str) -> Option<Credential> {
        let endpoint = env.optional::<Url>("IDENTITY_ENDPOINT", "a URL");
        let header = env.get("IDENTITY_HEADER");
        let secret = env.get(&format!("{prefix}_CLIENT_SECRET"));
        let mi_var = format!("{prefix}_MANAGED_IDENTITY_CLIENT_ID");
        let explicit = env.get(&mi_var);
        if let Some(why) = &self.deployment
            && explicit.is_none()
            && secret.is_none()
            && header.is_some()
        {
            env.problem(format!(
                "{mi_var} is not set: in a deployment ({}) the manifest's managed identity is the emulator's",
                why.why()
            ));
        }
        let client_id =
            explicit.or_else(|| self.manifest.as_ref()?.managed_identities.get(name).map(|mi| mi.client_id.clone()));
        match (endpoint, header) {
            (Some(_), None) => {
                env.problem("IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not: set both, or neither");
                None
            }
            (None, Some(_)) if env.get("IDENTITY_ENDPOINT").is_none() => {
                env.problem("IDENTITY_HEADER is set but IDENTITY_ENDPOINT is not: set both, or neither");
                None
            }
            _ if secret.is_some() => secret.map(|s| Credential::Secret(s.into())),
            (Some(endpoint), Some(header)) => {
                let source = ManagedIdentitySource::AppService { endpoint, header: header.into() };
                match identity_http(&self.trust) {
                    Ok(http) => Some(Credential::ManagedIdentity(Arc::new(ManagedIdentityCredential::new(
                        http, source, client_id,
                    )))),
                    Err(e) => {
                        env.problem(format!("cannot build the HTTP client for the managed identity: {e}"));
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// The v2 issuer clients are told to use (RFC 9728 `authorization_servers`): under the
    /// public authority, as tokens name it.
    pub fn issuer_v2(&self) -> String {
        format!("{}/{}/v2.0", self.public_authority.as_str().trim_end_matches('/'), self.tenant_id)
    }
}

/// Tokens ride on these requests: never follow a redirect elsewhere with them.
fn identity_http(trust: &Trust) -> reqwest::Result<reqwest::Client> {
    trust.http().connect_timeout(Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()).build()
}

/// Microsoft Entra's sign-in hosts (the public and national clouds, External ID): the emulator
/// runs anywhere else, over http or https, on this machine or in compose.
fn is_entra(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    ["login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn", "login.windows.net"]
        .contains(&host.as_str())
        || host.ends_with(".ciamlogin.com")
}

/// The emulator on its default port.
fn local_emulator() -> Url {
    #[allow(clippy::expect_used)] // a constant that parses; the settings tests exercise it
    Url::parse("http://localhost:3003").expect("constant URL")
}

#[cfg(test)]
mod tests {
    use entra_manifest::REPOSITORY_MANIFEST;

    use super::*;

    #[test]
    fn identity_comes_from_the_manifest_unless_overridden() {
        let mut env = Env::from_map([
            ("IDENTITY_MANIFEST", REPOSITORY_MANIFEST),
            ("ORDERS_API_CLIENT_ID", "11111111-1111-1111-1111-111111111111"),
        ]);
        let identity = Identity::from_env(&mut env);
        let api = identity.app(&mut env, "ORDERS_API", "orders-api");
        let mcp = identity.app(&mut env, "ORDERS_MCP", "orders-mcp");
        env.finish().unwrap();
        let m = identity.manifest.as_ref().unwrap();
        assert_eq!(identity.authority.as_str(), "http://localhost:3003/");
        assert_eq!(identity.tenant_id, m.tenant.id);
        assert_eq!(api.client_id, "11111111-1111-1111-1111-111111111111");
        assert_eq!(api.app_id_uri.as_deref(), Some("api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local"));
        assert_eq!(mcp.client_id, m.apps["orders-mcp"].client_id);
    }

    #[test]
    fn without_a_manifest_the_ids_are_required() {
        let mut env = Env::from_map([("IDENTITY_MANIFEST", "/nonexistent.toml")]);
        let identity = Identity::from_env(&mut env);
        let _ = identity.app(&mut env, "ORDERS_API", "orders-api");
        let err = env.finish().unwrap_err();
        assert!(err.to_string().contains("IDENTITY_MANIFEST"), "{err}");
        assert!(err.to_string().contains("ORDERS_API_CLIENT_ID"), "{err}");
    }

    const REAL_API: &str = "0b5f9c52-7d0e-4f4e-9d55-2f3f7f4c1a01";
    const REAL_TENANT: &str = "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a";

    fn deployed(vars: &[(&str, &str)]) -> Result<(), String> {
        let mut env = Env::from_map(vars.iter().copied().chain([("IDENTITY_MANIFEST", REPOSITORY_MANIFEST)]));
        let identity = Identity::from_env(&mut env);
        let _ = identity.app(&mut env, "ORDERS_API", "orders-api");
        let _ = identity.credential(&mut env, "ORDERS_API", "orders-api");
        env.finish().map_err(|e| e.to_string())
    }

    /// Defect: with empty client ids a service in Azure fell back to the emulator's ids baked
    /// into the image and started against real Entra, refusing every token.
    #[test]
    fn a_deployment_refuses_the_emulators_ids_naming_the_variable() {
        let entra = ("ENTRA_AUTHORITY", "https://login.microsoftonline.com");
        let err = deployed(&[entra, ("ENTRA_TENANT_ID", REAL_TENANT), ("ORDERS_API_CLIENT_ID", "")]).unwrap_err();
        assert!(err.contains("ORDERS_API_CLIENT_ID is not set to the app registration's client id"), "{err}");
        assert!(err.contains("ORDERS_API_APP_ID_URI is not set"), "{err}");
        assert!(err.contains("ENTRA_AUTHORITY is Microsoft Entra's"), "{err}");
        let err = deployed(&[entra]).unwrap_err();
        assert!(err.contains("ENTRA_TENANT_ID is not set"), "{err}");
        let manifest = Manifest::load(REPOSITORY_MANIFEST).unwrap();
        let emulator_id = manifest.apps["orders-api"].client_id.clone();
        let err = deployed(&[
            entra,
            ("ENTRA_TENANT_ID", REAL_TENANT),
            ("ORDERS_API_CLIENT_ID", &emulator_id),
            ("ORDERS_API_APP_ID_URI", "api://x/orders-api-dev"),
        ])
        .unwrap_err();
        assert!(err.contains("ORDERS_API_CLIENT_ID"), "{err}");
        deployed(&[
            entra,
            ("ENTRA_TENANT_ID", REAL_TENANT),
            ("ORDERS_API_CLIENT_ID", REAL_API),
            ("ORDERS_API_APP_ID_URI", "api://x/orders-api-dev"),
        ])
        .unwrap();
    }

    #[test]
    fn in_container_apps_the_authority_must_be_https_and_the_managed_identity_explicit() {
        let err = deployed(&[
            ("CONTAINER_APP_NAME", "orders-api-abc"),
            ("ENTRA_TENANT_ID", REAL_TENANT),
            ("ORDERS_API_CLIENT_ID", REAL_API),
            ("ORDERS_API_APP_ID_URI", "api://x/orders-api-dev"),
            ("IDENTITY_ENDPOINT", "http://localhost:42356/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ])
        .unwrap_err();
        assert!(err.contains("ENTRA_AUTHORITY=http://localhost:3003/ must be https in a deployment"), "{err}");
        assert!(err.contains("ORDERS_API_MANAGED_IDENTITY_CLIENT_ID is not set"), "{err}");
    }

    #[test]
    fn the_emulator_is_not_a_deployment_wherever_it_runs() {
        deployed(&[("ENTRA_AUTHORITY", "https://localhost:3443")]).unwrap();
        deployed(&[("ENTRA_AUTHORITY", "http://127.0.0.1:3003")]).unwrap();
        deployed(&[("ENTRA_AUTHORITY", "https://entra-emulator:3443")]).unwrap();
    }

    fn credential(vars: &[(&str, &str)]) -> (Option<Credential>, Result<(), String>) {
        let mut env = Env::from_map(vars.iter().copied().chain([("IDENTITY_MANIFEST", REPOSITORY_MANIFEST)]));
        let identity = Identity::from_env(&mut env);
        let credential = identity.credential(&mut env, "ORDERS_MCP", "orders-mcp");
        (credential, env.finish().map_err(|e| e.to_string()))
    }

    #[test]
    fn the_managed_identity_comes_from_the_platform_and_its_client_id_from_the_manifest() {
        let (credential, ok) =
            credential(&[("IDENTITY_ENDPOINT", "http://localhost:3003/msi/token"), ("IDENTITY_HEADER", "h")]);
        ok.unwrap();
        let shown = format!("{credential:?}");
        assert!(matches!(credential, Some(Credential::ManagedIdentity(_))), "{shown}");
        assert!(shown.contains("ec45dfb3-39aa-4a39-a22a-a18cec4241cc"), "{shown}");
        assert!(!shown.contains("\"h\""), "the header secret must not show: {shown}");
    }

    #[test]
    fn an_explicit_secret_wins_and_never_shows() {
        let (credential, ok) = credential(&[
            ("IDENTITY_ENDPOINT", "http://host.docker.internal:3009/msi/token"),
            ("IDENTITY_HEADER", "h"),
            ("ORDERS_MCP_CLIENT_SECRET", "from-the-developer"),
        ]);
        ok.unwrap();
        assert!(matches!(credential, Some(Credential::Secret(_))));
        assert!(!format!("{credential:?}").contains("from-the-developer"));
    }

    #[test]
    fn half_a_managed_identity_is_a_problem_and_nothing_is_none() {
        let (_, err) =
            credential(&[("IDENTITY_ENDPOINT", "http://localhost:3003/msi/token"), ("ORDERS_MCP_CLIENT_SECRET", "s")]);
        assert!(err.unwrap_err().contains("IDENTITY_HEADER"));
        let (_, err) = credential(&[("IDENTITY_HEADER", "h")]);
        assert!(err.unwrap_err().contains("IDENTITY_ENDPOINT"));
        let (none, ok) = credential(&[]);
        ok.unwrap();
        assert!(none.is_none());
    }
}
