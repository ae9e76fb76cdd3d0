//! Typed settings, read from environment variables and checked all at once at start-up.
//!
//! Tests build [`Settings`] from an [`Env`] map rather than the process environment, so several
//! servers with different settings can run in one test process.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use entra_auth::acquire::Credential;
use entra_auth::settings::{AppRegistration, Identity, Trust};
use service_kit::settings::{Env, SettingsError};
use url::Url;

/// How orders-mcp authenticates to orders-api.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Downstream {
    /// Exchange the user's token for one for orders-api (On-Behalf-Of): the safe default.
    Obo,
    /// Forward the user's token unchanged: refused by orders-api unless it explicitly accepts
    /// orders-mcp's audience. Exists to show why token passthrough is unsafe.
    Passthrough,
}

impl fmt::Display for Downstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Downstream::Obo => "obo",
            Downstream::Passthrough => "passthrough",
        })
    }
}

/// Which `Host` headers the MCP endpoint answers (DNS-rebinding protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    /// Host names, or `host:port` authorities.
    Only(Vec<String>),
    /// `*`: any host (behind an ingress that already checks it).
    Any,
}

/// Which browser `Origin`s may call the MCP endpoint. The Streamable HTTP transport says
/// servers MUST validate `Origin` (DNS rebinding: a page on another site reaching a server on
/// the user's machine or network). Requests without `Origin` (non-browser clients) still pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `scheme://host[:port]` entries (`:*` for any port).
    Only(Vec<String>),
    /// `*`: any origin (not recommended; logged at start).
    Any,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    /// The origin clients reach this server on; the MCP resource is `{public_url}/mcp`.
    pub public_url: Url,
    pub allowed_hosts: AllowedHosts,
    pub allowed_origins: AllowedOrigins,
    pub downstream: Downstream,
    pub orders_api_url: Url,
    /// Time limit for each call to orders-api.
    pub downstream_timeout: Duration,
    /// Where OpenID metadata and tokens are fetched.
    pub authority: Url,
    pub tenant_id: String,
    /// The v2 issuer clients are told to get tokens from (RFC 9728 `authorization_servers`).
    pub issuer_v2: String,
    /// This server's app registration: tokens must name it as audience.
    pub mcp_app: AppRegistration,
    /// orders-api's app registration: the On-Behalf-Of scope is `{app id uri}/.default`.
    pub orders_api_app: AppRegistration,
    /// Required in `obo` mode, unused in `passthrough` mode.
    pub credential: Option<Credential>,
    /// `ENTRA_CA_FILE`: extra roots for HTTPS to the identity provider.
    pub trust: Trust,
}

const DEFAULT_ALLOWED_HOSTS: &str = "localhost,127.0.0.1,::1";

impl Settings {
    /// Reads every `ORDERS_MCP_*` setting and the shared Entra settings; every problem is
    /// reported in one error.
    pub fn from_env(mut env: Env) -> Result<Settings, SettingsError> {
        let addr = env.parse("ORDERS_MCP_ADDR", SocketAddr::from(([127, 0, 0, 1], 3001)), "a socket address");
        let public_url = url_setting(&mut env, "ORDERS_MCP_PUBLIC_URL", "http://localhost:3001");
        let downstream = match env.choice("ORDERS_MCP_DOWNSTREAM", &["obo", "passthrough"], "obo").as_str() {
            "passthrough" => Downstream::Passthrough,
            _ => Downstream::Obo,
        };
        let orders_api_url = url_setting(&mut env, "ORDERS_API_URL", "http://localhost:3002");
        let downstream_timeout = env.seconds("ORDERS_MCP_DOWNSTREAM_TIMEOUT_SECS", 10);
        let allowed_hosts = allowed_hosts(&env.string("ORDERS_MCP_ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS), &public_url);
        let allowed_origins = allowed_origins(&env.string("ORDERS_MCP_ALLOWED_ORIGINS", ""), &public_url);

        let identity = Identity::from_env(&mut env);
        let mcp_app = identity.app(&mut env, "ORDERS_MCP", "orders-mcp");
        let orders_api_app = identity.app(&mut env, "ORDERS_API", "orders-api");
        for (app, var) in [(&mcp_app, "ORDERS_MCP_APP_ID_URI"), (&orders_api_app, "ORDERS_API_APP_ID_URI")] {
            if app.app_id_uri.is_none() {
                env.problem(format!("{var} is not set and the identity manifest does not name it"));
            }
        }
        let credential = identity.credential(&mut env, "ORDERS_MCP", "orders-mcp");
        if downstream == Downstream::Obo && credential.is_none() {
            env.problem(
                "ORDERS_MCP_DOWNSTREAM=obo needs a client credential for the On-Behalf-Of exchange: set \
                 IDENTITY_ENDPOINT and IDENTITY_HEADER (a managed identity; locally the emulator's \
                 http://localhost:3003/msi/token with the emulator's EMULATOR_IDENTITY_HEADER), or, as a local \
                 fallback only, ORDERS_MCP_CLIENT_SECRET",
            );
        }
        let issuer_v2 = identity.issuer_v2();
        env.finish()?;
        Ok(Settings {
            addr,
            public_url,
            allowed_hosts,
            allowed_origins,
            downstream,
            orders_api_url,
            downstream_timeout,
            authority: identity.authority,
            tenant_id: identity.tenant_id,
            issuer_v2,
            mcp_app,
            orders_api_app,
            credential,
            trust: identity.trust,
        })
    }

    /// The MCP endpoint's URL: the protected resource's identifier.
    pub fn mcp_url(&self) -> Url {
        let mut url = self.public_url.clone();
        url.set_path(&format!("{}/mcp", self.public_url.path().trim_end_matches('/')));
        url
    }

    /// The scope requested in the On-Behalf-Of exchange.
    pub fn obo_scope(&self) -> String {
        format!("{}/.default", self.orders_api_app.app_id_uri.as_deref().unwrap_or_default().trim_end_matches('/'))
    }

    /// The scope clients must request for this server: `{app id uri}/access_as_user`.
    pub fn access_scope(&self) -> String {
        format!("{}/{}", self.mcp_app.app_id_uri.as_deref().unwrap_or_default().trim_end_matches('/'), ACCESS_SCOPE)
    }

    /// Accepted token audiences: the client id (what v2 tokens carry) and the app id URI.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.mcp_app.client_id.clone()).chain(self.mcp_app.app_id_uri.clone()).collect()
    }
}

/// The delegated scope every `/mcp` request needs.
pub const ACCESS_SCOPE: &str = "access_as_user";

fn url_setting(env: &mut Env, name: &str, default: &'static str) -> Url {
    let raw = env.string(name, default);
    match Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
        _ => {
            env.problem(format!("{name}={raw:?} is not an http(s) URL with a host"));
            constant_url(default)
        }
    }
}

/// One of this module's default URLs.
fn constant_url(url: &'static str) -> Url {
    #[allow(clippy::expect_used)] // constants that parse; the tests below read every default
    Url::parse(url).expect("constant URL")
}

fn allowed_hosts(raw: &str, public_url: &Url) -> AllowedHosts {
    let mut hosts: Vec<String> = raw.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect();
    if hosts.iter().any(|h| h == "*") {
        return AllowedHosts::Any;
    }
    // The host clients are told to use is always allowed.
    if let Some(host) = public_url.host_str() {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    AllowedHosts::Only(hosts)
}

/// The listed origins plus this server's own; with a loopback public URL, any loopback origin
/// too (a browser-based MCP client such as the Inspector on another local port).
fn allowed_origins(raw: &str, public_url: &Url) -> AllowedOrigins {
    let mut origins: Vec<String> = raw.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect();
    if origins.iter().any(|o| o == "*") {
        return AllowedOrigins::Any;
    }
    let own = public_url.origin().ascii_serialization();
    if !origins.contains(&own) {
        origins.push(own);
    }
    let loopback = matches!(public_url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if loopback {
        for local in ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"] {
            if !origins.iter().any(|o| o == local) {
                origins.push(local.to_string());
            }
        }
    }
    AllowedOrigins::Only(origins)
}

#[cfg(test)]
mod tests {
    use service_kit::settings::documented_variables;

    use super::*;

    fn manifest() -> (String, String) {
        ("IDENTITY_MANIFEST".into(), entra_manifest::REPOSITORY_MANIFEST.into())
    }

    #[test]
    fn defaults_come_from_the_manifest_and_obo_uses_the_managed_identity() {
        let env = Env::from_map([
            manifest(),
            ("IDENTITY_ENDPOINT".into(), "http://localhost:3003/msi/token".into()),
            ("IDENTITY_HEADER".into(), "h".into()),
        ]);
        let s = Settings::from_env(env).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:3001");
        assert_eq!(s.mcp_url().as_str(), "http://localhost:3001/mcp");
        assert_eq!(s.downstream, Downstream::Obo);
        assert_eq!(s.obo_scope(), "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default");
        assert_eq!(s.access_scope(), "http://localhost:3001/mcp/access_as_user");
        assert_eq!(s.audiences(), ["a58242b0-4441-4e9a-b6fa-2c3a3d94ebff", "http://localhost:3001/mcp"]);
        assert_eq!(s.issuer_v2, "http://localhost:3003/afb67780-0dec-4124-a11c-b6e461eb7aad/v2.0");
        assert_eq!(s.allowed_hosts, AllowedHosts::Only(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]));
        assert_eq!(
            s.allowed_origins,
            AllowedOrigins::Only(vec![
                "http://localhost:3001".into(),
                "http://localhost:*".into(),
                "http://127.0.0.1:*".into(),
                "http://[::1]:*".into()
            ])
        );
        assert!(matches!(s.credential, Some(Credential::ManagedIdentity(_))), "{:?}", s.credential);
    }

    #[test]
    fn an_explicit_secret_wins_over_the_managed_identity_endpoint() {
        let env = Env::from_map([
            manifest(),
            ("IDENTITY_ENDPOINT".into(), "http://host.docker.internal:3009/msi/token".into()),
            ("IDENTITY_HEADER".into(), "h".into()),
            ("ORDERS_MCP_CLIENT_SECRET".into(), "from-the-developer".into()),
        ]);
        let s = Settings::from_env(env).unwrap();
        assert!(matches!(s.credential, Some(Credential::Secret(_))), "{:?}", s.credential);
    }

    #[test]
    fn obo_without_any_credential_says_exactly_what_to_set() {
        let err = Settings::from_env(Env::from_map([manifest()])).unwrap_err().to_string();
        for needle in ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "ORDERS_MCP_CLIENT_SECRET"] {
            assert!(err.contains(needle), "{err}");
        }
        // passthrough needs no credential at all
        let env = Env::from_map([manifest(), ("ORDERS_MCP_DOWNSTREAM".into(), "passthrough".into())]);
        assert!(Settings::from_env(env).unwrap().credential.is_none());
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let env = Env::from_map([
            manifest(),
            ("ORDERS_MCP_ADDR".into(), "nowhere".into()),
            ("ORDERS_MCP_PUBLIC_URL".into(), "ftp://example.com".into()),
            ("ORDERS_MCP_DOWNSTREAM".into(), "sideways".into()),
            ("ORDERS_API_URL".into(), "not a url".into()),
            ("IDENTITY_ENDPOINT".into(), "http://localhost:3003/msi/token".into()),
            ("ORDERS_MCP_CLIENT_SECRET".into(), "s".into()),
        ]);
        let err = Settings::from_env(env).unwrap_err();
        let text = err.to_string();
        for needle in
            ["ORDERS_MCP_ADDR", "ORDERS_MCP_PUBLIC_URL", "ORDERS_MCP_DOWNSTREAM", "ORDERS_API_URL", "IDENTITY_HEADER"]
        {
            assert!(text.contains(needle), "{text}");
        }
        assert!(!text.contains("\"s\""), "the secret must not be echoed: {text}");
    }

    #[test]
    fn a_secret_is_the_fallback_and_the_public_host_is_always_allowed() {
        let env = Env::from_map([
            manifest(),
            ("ORDERS_MCP_CLIENT_SECRET".into(), "orders-mcp-local-secret".into()),
            ("ORDERS_MCP_PUBLIC_URL".into(), "https://mcp.example.com".into()),
            ("ORDERS_MCP_ALLOWED_HOSTS".into(), "orders-mcp, orders-mcp:3001".into()),
        ]);
        let s = Settings::from_env(env).unwrap();
        assert!(matches!(s.credential, Some(Credential::Secret(_))));
        assert!(!format!("{:?}", s.credential).contains("orders-mcp-local-secret"));
        assert_eq!(
            s.allowed_hosts,
            AllowedHosts::Only(vec!["orders-mcp".into(), "orders-mcp:3001".into(), "mcp.example.com".into()])
        );
        assert_eq!(s.mcp_url().as_str(), "https://mcp.example.com/mcp");
        let any = Env::from_map([
            manifest(),
            ("ORDERS_MCP_CLIENT_SECRET".into(), "x".into()),
            ("ORDERS_MCP_ALLOWED_HOSTS".into(), "*".into()),
        ]);
        assert_eq!(Settings::from_env(any).unwrap().allowed_hosts, AllowedHosts::Any);
        assert_eq!(
            s.allowed_origins,
            AllowedOrigins::Only(vec!["https://mcp.example.com".into()]),
            "a deployed server allows its own origin only, unless told more"
        );
    }

    #[test]
    fn the_readme_lists_exactly_the_variables_read() {
        let env = Env::from_map([manifest(), ("ORDERS_MCP_CLIENT_SECRET".into(), "x".into())]);
        let read = env.names_read();
        Settings::from_env(env).unwrap();
        let mut names = read.names();
        names.extend(service_kit::telemetry::VARIABLES.map(String::from));
        let documented = documented_variables(include_str!("../README.md"), "## Configuration").unwrap();
        assert_eq!(documented, names);
    }
}
