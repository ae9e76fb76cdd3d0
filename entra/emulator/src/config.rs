//! The emulator's settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use entra_manifest::{Manifest, Vars};
use service_kit::settings::Env;
use url::Url;

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub manifest: Manifest,
    /// Values substituted into the manifest (`{suffix}`, `{chat_app_url}`).
    pub vars: Vars,
    pub bind: SocketAddr,
    /// The URL browsers use, and the base of the issuer in every token. `None`: the bound address.
    pub public_url: Option<Url>,
    pub token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub device_code_lifetime: Duration,
    /// How often device-code clients are told to poll.
    pub device_poll_interval: Duration,
    /// The `X-IDENTITY-HEADER` secret of the managed-identity endpoint; `None` disables it.
    pub identity_header: Option<String>,
    /// Whether an administrator granted every app's `required_access` (`EMULATOR_ADMIN_CONSENT`,
    /// default true). `false` is a tenant where nobody could: only pre-authorization counts.
    pub admin_consent: bool,
    /// Serve HTTPS with a local CA (see [`crate::tls`]); `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
}

/// Where the local CA lives and which names the certificate covers besides loopback.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub dir: PathBuf,
    /// Extra DNS names or IP addresses, e.g. the compose service name `emulator`.
    pub names: Vec<String>,
}

impl EmulatorConfig {
    /// Defaults for `manifest`: port 0 on loopback, one-hour tokens, no managed identity.
    pub fn new(manifest: Manifest) -> Self {
        EmulatorConfig {
            vars: Vars::local(&manifest.tenant.id),
            manifest,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            token_lifetime: Duration::from_secs(3600),
            refresh_token_lifetime: Duration::from_secs(24 * 3600),
            code_lifetime: Duration::from_secs(300),
            device_code_lifetime: Duration::from_secs(900),
            device_poll_interval: Duration::from_secs(5),
            identity_header: None,
            admin_consent: true,
            tls: None,
        }
    }

    /// The repository's manifest with defaults; for tests.
    pub fn from_repository() -> anyhow::Result<Self> {
        Ok(EmulatorConfig::new(Manifest::load(entra_manifest::REPOSITORY_MANIFEST)?))
    }

    /// Settings from `EMULATOR_*` variables (see the README's configuration table); `tls`
    /// (the `--tls` flag) turns HTTPS on as `EMULATOR_TLS=true` does.
    pub fn from_env(mut env: Env, tls: bool) -> anyhow::Result<Self> {
        // The same manifest as the services (IDENTITY_MANIFEST, set once in the images), unless
        // the emulator is pointed at another one.
        let manifest_path: PathBuf = match env.get("EMULATOR_MANIFEST").or_else(|| env.get("IDENTITY_MANIFEST")) {
            Some(p) => PathBuf::from(p),
            None => std::env::current_dir()
                .ok()
                .and_then(Manifest::locate)
                .unwrap_or_else(|| PathBuf::from(entra_manifest::DEFAULT_PATH)),
        };
        let bind: SocketAddr =
            env.parse("EMULATOR_ADDR", SocketAddr::from(([127, 0, 0, 1], 3003)), "a socket address like 0.0.0.0:3003");
        let public_url: Option<Url> = env.optional("EMULATOR_PUBLIC_URL", "a URL like http://localhost:3003");
        let tls = (env.flag("EMULATOR_TLS", false) || tls).then(|| TlsSettings {
            dir: PathBuf::from(env.string("EMULATOR_DATA_DIR", "data/emulator")),
            names: env
                .string("EMULATOR_TLS_NAMES", "")
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect(),
        });
        let vars = Vars {
            suffix: env.string("EMULATOR_SUFFIX", "local"),
            chat_app_url: env.string("EMULATOR_CHAT_APP_URL", "http://localhost:3000"),
            orders_mcp_url: env.string("EMULATOR_ORDERS_MCP_URL", "http://localhost:3001"),
            tenant_id: String::new(),
        };
        let token_lifetime = env.seconds("EMULATOR_TOKEN_LIFETIME_SECS", 3600);
        let refresh_token_lifetime = env.seconds("EMULATOR_REFRESH_TOKEN_LIFETIME_SECS", 24 * 3600);
        let device_poll_interval = env.seconds("EMULATOR_DEVICE_POLL_SECS", 5);
        let identity_header = env.get("EMULATOR_IDENTITY_HEADER");
        let admin_consent = env.flag("EMULATOR_ADMIN_CONSENT", true);
        if token_lifetime < Duration::from_secs(60) {
            env.problem("EMULATOR_TOKEN_LIFETIME_SECS must be at least 60");
        }
        let manifest = Manifest::load(&manifest_path);
        if let Err(e) = &manifest {
            env.problem(format!("EMULATOR_MANIFEST: {e}"));
        }
        env.finish()?;
        let manifest = manifest?;
        // The emulator is the tenant its manifest describes.
        let vars = Vars { tenant_id: manifest.tenant.id.clone(), ..vars };
        Ok(EmulatorConfig {
            vars,
            bind,
            public_url: public_url.or_else(|| {
                let scheme = if tls.is_some() { "https" } else { "http" };
                Url::parse(&format!("{scheme}://localhost:{}", bind.port())).ok()
            }),
            token_lifetime,
            refresh_token_lifetime,
            device_poll_interval,
            identity_header,
            admin_consent,
            tls,
            ..EmulatorConfig::new(manifest)
        })
    }
}
