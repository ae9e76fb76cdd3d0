//! chat-app's settings, from environment variables (see the README's table), or built in code
//! by tests. Every problem is reported at once by [`Settings::from_env`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use entra_auth::acquire::Credential;
use entra_auth::settings::{Identity, Trust};
use secrecy::SecretString;
use service_kit::settings::Env;
use url::Url;

use crate::views::TraceUrl;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `CHAT_APP_ADDR`: where to listen.
    pub addr: SocketAddr,
    /// `CHAT_APP_URL`: the origin browsers use. Redirect URIs, the `Origin` check and the
    /// cookie's `Secure` flag derive from it.
    pub public_url: Url,
    /// Where sessions, conversations and the running-turn marks live.
    pub store: StoreSettings,
    /// `ORDERS_MCP_URL`: the MCP endpoint.
    pub orders_mcp_url: Url,
    pub identity: IdentitySettings,
    pub session: SessionSettings,
    pub model: ModelSettings,
    pub agent: AgentSettings,
    /// `CHAT_APP_AGENT_IDENTITY=entra-agent-id`: the agent acts as its own Microsoft Entra
    /// Agent ID identity. `None` (the default, `none`): it uses the user's sign-in token.
    pub agent_identity: Option<AgentIdentitySettings>,
    pub site: SiteSettings,
    /// Friendly names for ids in tokens (from the identity manifest), for the trace panel.
    pub names: Vec<(String, String)>,
    /// `CHAT_APP_TRACE_URL`: a trace viewer's page for one trace, `{trace_id}` filled in; the
    /// trace panel links each tool call to its trace.
    pub trace_url: Option<TraceUrl>,
    /// `CHAT_APP_PASSTHROUGH_DEMO_MCP_URL`: a second orders-mcp, started with
    /// `ORDERS_MCP_DOWNSTREAM=passthrough`, that the presenter view's replay calls. Unset, no
    /// replay is offered. In a deployment also needs `CHAT_APP_PASSTHROUGH_DEMO_IN_DEPLOYMENT=true`.
    pub passthrough_demo_mcp_url: Option<Url>,
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// Back channel to the identity provider (discovery, keys, token endpoint).
    pub authority: Url,
    /// The identity provider as browsers reach it (sign-in and sign-out pages).
    pub public_authority: Url,
    pub tenant_id: String,
    /// chat-app's client id.
    pub client_id: String,
    /// How chat-app authenticates to the token endpoint (required).
    pub credential: Credential,
    /// The scopes asked for at sign-in: OpenID ones and orders-mcp's `access_as_user`.
    pub scope: String,
    /// `ENTRA_CA_FILE`: extra roots for HTTPS to the identity provider.
    pub trust: Trust,
}

/// `CHAT_APP_SESSION_STORE`: `sqlite` (the default) or a Redis URL.
#[derive(Debug, Clone)]
pub enum StoreSettings {
    /// `CHAT_APP_SESSION_DB`: one SQLite file, so one replica.
    Sqlite(PathBuf),
    /// `redis://` or `rediss://` (TLS): shared by every replica.
    Redis(RedisSettings),
}

/// A Redis server. `Debug` shows no password.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The URL as given; a password in it stays secret.
    pub url: SecretString,
    /// `CHAT_APP_REDIS_ENTRA_USER`: authenticate with chat-app's managed identity instead of a
    /// password (Azure Managed Redis): the identity's object id, which Redis takes as the user
    /// name, with an Entra token for `https://redis.azure.com` as the password.
    pub entra: Option<(String, Credential)>,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// `CHAT_APP_SESSION_IDLE_SECS`: a session unused this long ends.
    pub idle: Duration,
    /// `CHAT_APP_SESSION_MAX_SECS`: a sign-in lasts at most this long, however active.
    pub absolute: Duration,
}

/// Which model answers. `Debug` shows no key.
#[derive(Clone, Debug)]
pub enum ModelSettings {
    /// The deterministic planner: no model.
    Offline,
    /// Any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, ...); the key, if any, as a bearer.
    OpenAi { base_url: Url, api_key: Option<SecretString>, model: String, stream: bool },
    /// Azure OpenAI's v1 endpoint, with a key or an Entra token.
    Azure { endpoint: Url, deployment: String, auth: ModelAuth, stream: bool },
}

/// How model requests authenticate. `Debug` shows no key.
#[derive(Clone, Debug)]
pub enum ModelAuth {
    /// No credential (a local Ollama or vLLM).
    None,
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers).
    Bearer(SecretString),
    /// `api-key: <key>` (Azure OpenAI with a key).
    ApiKey(SecretString),
    /// `Authorization: Bearer <Entra token>` (Azure OpenAI, secretless): chat-app's managed
    /// identity, or the developer's sign-in.
    Entra(Credential),
}

#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// `AGENT_MAX_ITERATIONS`: model calls per turn.
    pub max_iterations: usize,
    /// `AGENT_TIMEOUT_SECS`: the agent's own work in a turn (time spent waiting for a person's
    /// answer does not count).
    pub timeout: Duration,
    /// `CHAT_APP_APPROVAL`: which tool calls wait for the user's yes.
    pub approval: ApprovalPolicy,
    /// `CHAT_APP_APPROVAL_TIMEOUT_SECS`: how long a call waits for that answer.
    pub approval_timeout: Duration,
}

/// The agent's own identity (Microsoft Entra Agent ID; docs/agent-identity.md). The user signs
/// in for the blueprint; the agent exchanges that token On-Behalf-Of, as the agent identity, for
/// orders-mcp's, the blueprint authenticated by chat-app's managed identity. `Debug` shows no
/// secret (the credential is a managed identity).
#[derive(Debug, Clone)]
pub struct AgentIdentitySettings {
    /// `CHAT_APP_AGENT_BLUEPRINT_ID`: the blueprint's app id (default: the manifest's).
    pub blueprint_id: String,
    /// `CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI`: the blueprint's Application ID URI, whose
    /// `access_as_user` the user signs in for (default: the manifest's).
    pub blueprint_app_id_uri: String,
    /// `CHAT_APP_AGENT_ID`: the agent identity's app id (default: the manifest's).
    pub agent_id: String,
    /// `CHAT_APP_AGENT_NAME`: how the trace names the agent (default: the manifest's display name).
    pub agent_name: String,
    /// The blueprint's credential: chat-app's managed identity (`IDENTITY_ENDPOINT`,
    /// `IDENTITY_HEADER`), which the blueprint's federated credential trusts. Never a secret.
    pub blueprint_credential: Credential,
    /// What the agent asks for: orders-mcp's `access_as_user`.
    pub orders_mcp_scope: String,
}

/// Which tool calls the signed-in user must approve before they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalPolicy {
    /// Every call, read-only ones included.
    Always,
    /// Every call whose tool is not annotated `readOnlyHint: true` (the default).
    Writes,
    /// None: the model's calls run as proposed (logged as a warning at start).
    Never,
}

/// Where the browser bundle is (`cargo xtask` builds it; see `scripts/src/frontend.rs`).
#[derive(Debug, Clone)]
pub struct SiteSettings {
    /// `LEPTOS_SITE_ROOT`
    pub root: PathBuf,
    /// `LEPTOS_SITE_PKG_DIR`: under `root`, served at `/<pkg_dir>`.
    pub pkg_dir: String,
    /// `LEPTOS_OUTPUT_NAME`: `<name>.js` and `<name>_bg.wasm`.
    pub output_name: String,
}

impl SiteSettings {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SiteSettings { root: root.into(), pkg_dir: "pkg".into(), output_name: "chat_app".into() }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, service_kit::settings::SettingsError> {
        Settings::from(Env::from_process())
    }

    pub fn from(mut env: Env) -> Result<Settings, service_kit::settings::SettingsError> {
        let addr = env.parse("CHAT_APP_ADDR", SocketAddr::from(([127, 0, 0, 1], 3000)), "a socket address");
        let public_url = env
            .optional::<Url>("CHAT_APP_URL", "a URL like http://localhost:3000")
            .unwrap_or_else(|| local("http://localhost:3000"));
        let orders_mcp_url = env
            .optional::<Url>("ORDERS_MCP_URL", "a URL like http://localhost:3001/mcp")
            .unwrap_or_else(|| local("http://localhost:3001/mcp"));

        let identity = Identity::from_env(&mut env);
        let chat_app = identity.app(&mut env, "CHAT_APP", "chat-app");
        let orders_mcp = identity.app(&mut env, "ORDERS_MCP", "orders-mcp");
        // After a problem is recorded the value is a placeholder: `finish()` fails anyway.
        let credential = identity.credential(&mut env, "CHAT_APP", "chat-app").unwrap_or_else(|| {
            env.problem(
                "chat-app has no client credential: set IDENTITY_ENDPOINT and IDENTITY_HEADER (managed identity), or \
                 CHAT_APP_CLIENT_SECRET (local runs only)",
            );
            Credential::Secret(SecretString::from(""))
        });
        let store = store_settings(&mut env, &credential);
        let orders_mcp_uri = orders_mcp.app_id_uri.clone().unwrap_or_else(|| {
            env.problem("ORDERS_MCP_APP_ID_URI is not set and the identity manifest has no orders-mcp identifier URI");
            String::new()
        });
        let agent_identity = agent_identity_settings(&mut env, &identity, &orders_mcp_uri);
        let scope = match &agent_identity {
            Some(agent) => sign_in_scope(&agent.blueprint_app_id_uri),
            None => sign_in_scope(&orders_mcp_uri),
        };

        let session = SessionSettings {
            idle: env.seconds("CHAT_APP_SESSION_IDLE_SECS", 30 * 60),
            absolute: env.seconds("CHAT_APP_SESSION_MAX_SECS", 8 * 3600),
        };
        let model = model_settings(&mut env, &credential);
        let agent = AgentSettings {
            max_iterations: env.parse("AGENT_MAX_ITERATIONS", 6, "a whole number"),
            timeout: env.seconds("AGENT_TIMEOUT_SECS", 60),
            approval: match env.choice("CHAT_APP_APPROVAL", &["always", "writes", "never"], "writes").as_str() {
                "always" => ApprovalPolicy::Always,
                "never" => ApprovalPolicy::Never,
                _ => ApprovalPolicy::Writes,
            },
            approval_timeout: env.seconds("CHAT_APP_APPROVAL_TIMEOUT_SECS", 300),
        };
        if agent.max_iterations == 0 {
            env.problem("AGENT_MAX_ITERATIONS must be at least 1");
        }
        let site = SiteSettings {
            root: PathBuf::from(env.string("LEPTOS_SITE_ROOT", "target/site")),
            pkg_dir: env.string("LEPTOS_SITE_PKG_DIR", "pkg"),
            output_name: env.string("LEPTOS_OUTPUT_NAME", "chat_app"),
        };
        let mut names = identity.manifest.as_ref().map(|m| names_from(m, &identity.vars)).unwrap_or_default();
        if let Some(agent) = &agent_identity {
            // First, so it wins over the manifest's (emulator) entries in a deployment.
            names.insert(0, (agent.agent_id.clone(), agent.agent_name.clone()));
        }
        let trace_url = env.optional("CHAT_APP_TRACE_URL", "a trace viewer URL template");
        let passthrough_demo_mcp_url: Option<Url> =
            env.optional("CHAT_APP_PASSTHROUGH_DEMO_MCP_URL", "a URL like http://localhost:3011/mcp");
        let demo_in_deployment = env.flag("CHAT_APP_PASSTHROUGH_DEMO_IN_DEPLOYMENT", false);
        // The replay forwards a user's token to a server that passes it on unchanged: a
        // demonstration of what must not be done, so a deployment has to ask for it twice.
        if let Some(why) = &identity.deployment
            && passthrough_demo_mcp_url.is_some()
            && !demo_in_deployment
        {
            env.problem(format!(
                "CHAT_APP_PASSTHROUGH_DEMO_MCP_URL is set in a deployment ({}): the replay forwards users' tokens \
                 to a passthrough orders-mcp, for the confused-deputy demonstration only. Unset it, or also set \
                 CHAT_APP_PASSTHROUGH_DEMO_IN_DEPLOYMENT=true",
                why.why()
            ));
        }
        env.finish()?;
        Ok(Settings {
            addr,
            public_url,
            store,
            orders_mcp_url,
            identity: IdentitySettings {
                authority: identity.authority,
                public_authority: identity.public_authority,
                tenant_id: identity.tenant_id,
                client_id: chat_app.client_id,
                credential,
                scope,
                trust: identity.trust,
            },
            session,
            model,
            agent,
            agent_identity,
            site,
            names,
            trace_url,
            passthrough_demo_mcp_url,
        })
    }

    /// The origin (`scheme://host[:port]`) browsers send in `Origin`.
    pub fn origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// The redirect URI registered for sign-in.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url.as_str().trim_end_matches('/'))
    }

    /// Where the identity provider returns after sign-out (registered in the manifest).
    pub fn post_logout_uri(&self) -> String {
        format!("{}/auth/signed-out", self.public_url.as_str().trim_end_matches('/'))
    }

    /// Cookies are `Secure` except on plain-http localhost, where browsers would drop them.
    pub fn secure_cookies(&self) -> bool {
        !(self.public_url.scheme() == "http" && self.is_loopback())
    }

    /// Whether browsers are told to come back over https only (HSTS, RFC 6797): when the public
    /// URL is https, so a first visit typed as http cannot be kept on plain http by someone in
    /// between (OWASP HTTP Headers Cheat Sheet). Not for a loopback name: a year of https-only
    /// localhost would break every other local server on plain http.
    pub fn strict_transport(&self) -> bool {
        self.public_url.scheme() == "https" && !self.is_loopback()
    }

    fn is_loopback(&self) -> bool {
        matches!(self.public_url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    }
}

fn store_settings(env: &mut Env, app_credential: &Credential) -> StoreSettings {
    let db = PathBuf::from(env.string("CHAT_APP_SESSION_DB", "./data/chat-app.db"));
    let entra_user = env.get("CHAT_APP_REDIS_ENTRA_USER");
    let Some(url) = env.get("CHAT_APP_SESSION_STORE").filter(|v| v != "sqlite") else {
        if entra_user.is_some() {
            env.problem("CHAT_APP_REDIS_ENTRA_USER is set but CHAT_APP_SESSION_STORE is not a Redis URL");
        }
        return StoreSettings::Sqlite(db);
    };
    // Never echo the value: it may hold a password.
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("redis" | "rediss")) {
        env.problem("CHAT_APP_SESSION_STORE must be `sqlite` or a redis:// or rediss:// URL");
    }
    let entra = entra_user.map(|user| {
        if scheme != Some("rediss") {
            // Azure Managed Redis takes Entra tokens over TLS only; a token must not cross in clear.
            env.problem("CHAT_APP_REDIS_ENTRA_USER needs a rediss:// (TLS) CHAT_APP_SESSION_STORE");
        }
        if !matches!(app_credential, Credential::ManagedIdentity(_)) {
            env.problem(
                "CHAT_APP_REDIS_ENTRA_USER needs chat-app to run as its managed identity (IDENTITY_ENDPOINT, \
                 IDENTITY_HEADER, no CHAT_APP_CLIENT_SECRET)",
            );
        }
        (user, app_credential.clone())
    });
    StoreSettings::Redis(RedisSettings { url: url.into(), entra })
}

/// What chat-app asks for at sign-in: an ID token, a refresh token, and a token for orders-mcp
/// (for the agent identity blueprint in agent mode: the user's token is for the blueprint).
pub fn sign_in_scope(app_id_uri: &str) -> String {
    format!("openid profile offline_access {}/access_as_user", app_id_uri.trim_end_matches('/'))
}

/// `CHAT_APP_AGENT_IDENTITY`: `none` (the default) or `entra-agent-id`, with the blueprint and
/// agent identity from their variables or, offline, the manifest.
fn agent_identity_settings(env: &mut Env, identity: &Identity, orders_mcp_uri: &str) -> Option<AgentIdentitySettings> {
    if env.choice("CHAT_APP_AGENT_IDENTITY", &["none", "entra-agent-id"], "none") != "entra-agent-id" {
        return None;
    }
    let manifest = identity.manifest.as_ref().filter(|_| identity.deployment.is_none());
    let blueprint = manifest.and_then(|m| m.agent_blueprints.values().next());
    let agent = manifest.and_then(|m| m.agent_identities.values().next());
    let required = |env: &mut Env, var: &str, default: Option<String>| {
        env.get(var).or(default).unwrap_or_else(|| {
            env.problem(format!("CHAT_APP_AGENT_IDENTITY=entra-agent-id needs {var} (the postprovision hook sets it)"));
            String::new()
        })
    };
    let blueprint_id = required(env, "CHAT_APP_AGENT_BLUEPRINT_ID", blueprint.map(|b| b.client_id.clone()));
    let blueprint_uri = blueprint.and_then(|b| b.identifier_uri.as_ref()).map(|t| t.render(&identity.vars));
    let blueprint_app_id_uri = required(env, "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI", blueprint_uri);
    let agent_id = required(env, "CHAT_APP_AGENT_ID", agent.map(|a| a.client_id.clone()));
    let agent_name = env
        .get("CHAT_APP_AGENT_NAME")
        .or_else(|| agent.map(|a| a.display_name.clone()))
        .unwrap_or_else(|| "the agent".to_string());
    let blueprint_credential = managed_identity(env).unwrap_or_else(|| {
        env.problem(
            "CHAT_APP_AGENT_IDENTITY=entra-agent-id needs chat-app's managed identity (IDENTITY_ENDPOINT and \
             IDENTITY_HEADER): it is the blueprint's credential, and a blueprint takes no secret here",
        );
        Credential::Secret(SecretString::from(""))
    });
    Some(AgentIdentitySettings {
        blueprint_id,
        blueprint_app_id_uri,
        agent_id,
        agent_name,
        blueprint_credential,
        orders_mcp_scope: format!("{}/access_as_user", orders_mcp_uri.trim_end_matches('/')),
    })
}

/// chat-app's managed identity even when a client secret authenticates the app registration
/// (locally, the emulator's broker serves the identity endpoint).
fn managed_identity(env: &mut Env) -> Option<Credential> {
    let mut without_secret = Env::from_map(
        ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "CHAT_APP_MANAGED_IDENTITY_CLIENT_ID"]
            .into_iter()
            .filter_map(|name| env.get(name).map(|value| (name, value))),
    );
    let identity = Identity::from_env(&mut without_secret);
    identity.credential(&mut without_secret, "CHAT_APP", "chat-app")
}

fn model_settings(env: &mut Env, app_credential: &Credential) -> ModelSettings {
    // Offline unless a model is configured; naming a provider makes its settings required.
    let inferred = if env.get("AZURE_OPENAI_ENDPOINT").is_some() {
        "azure"
    } else if env.get("OPENAI_BASE_URL").is_some() || env.get("OPENAI_API_KEY").is_some() {
        "openai"
    } else {
        "offline"
    };
    let stream = env.flag("MODEL_STREAM", true);
    match env.choice("MODEL_PROVIDER", &["offline", "openai", "azure"], inferred).as_str() {
        "openai" => {
            let base_url = env
                .optional::<Url>("OPENAI_BASE_URL", "a URL like https://api.openai.com/v1")
                .unwrap_or_else(|| local("https://api.openai.com/v1"));
            ModelSettings::OpenAi {
                base_url,
                api_key: env.get("OPENAI_API_KEY").map(SecretString::from),
                model: env.string("OPENAI_MODEL", "gpt-4o-mini"),
                stream,
            }
        }
        "azure" => {
            let endpoint: Option<Url> =
                env.required("AZURE_OPENAI_ENDPOINT", "a URL like https://<resource>.openai.azure.com");
            let deployment: Option<String> = env.required("AZURE_OPENAI_DEPLOYMENT", "the model deployment's name");
            let auth = match env.get("AZURE_OPENAI_API_KEY") {
                Some(key) => ModelAuth::ApiKey(key.into()),
                None => ModelAuth::Entra(azure_openai_credential(env, app_credential)),
            };
            match (endpoint, deployment) {
                (Some(endpoint), Some(deployment)) => ModelSettings::Azure { endpoint, deployment, auth, stream },
                _ => ModelSettings::Offline,
            }
        }
        _ => ModelSettings::Offline,
    }
}

/// Azure OpenAI without a key: chat-app's own managed identity (the one it signs users in with;
/// in Azure the platform's, on a laptop the broker's), else the developer's own sign-in.
fn azure_openai_credential(env: &mut Env, app_credential: &Credential) -> Credential {
    let default = if env.get("IDENTITY_ENDPOINT").is_some() { "managed-identity" } else { "developer-tools" };
    let choice = env.choice("AZURE_OPENAI_CREDENTIAL", &["managed-identity", "developer-tools"], default);
    if choice == "developer-tools" {
        return Credential::developer().unwrap_or_else(|e| {
            env.problem(format!("AZURE_OPENAI_CREDENTIAL=developer-tools: {e}"));
            app_credential.clone()
        });
    }
    if let Credential::ManagedIdentity(_) = app_credential {
        return app_credential.clone();
    }
    // An explicit client secret won for the app registration; the managed-identity endpoint
    // (the broker, on a laptop) still serves Azure OpenAI.
    match managed_identity(env) {
        Some(credential) => credential,
        None => {
            env.problem("AZURE_OPENAI_CREDENTIAL=managed-identity needs IDENTITY_ENDPOINT and IDENTITY_HEADER");
            app_credential.clone()
        }
    }
}

/// Client ids and audiences of the manifest's apps and clients, with their names.
fn names_from(m: &entra_manifest::Manifest, vars: &entra_manifest::Vars) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for (name, app) in &m.apps {
        names.push((app.client_id.clone(), name.clone()));
        if let Some(uri) = &app.identifier_uri {
            names.push((uri.render(vars), name.clone()));
        }
    }
    for (name, client) in &m.clients {
        names.push((client.client_id.clone(), name.clone()));
    }
    for (name, blueprint) in &m.agent_blueprints {
        names.push((blueprint.client_id.clone(), format!("{name} (agent blueprint)")));
        if let Some(uri) = &blueprint.identifier_uri {
            names.push((uri.render(vars), format!("{name} (agent blueprint)")));
        }
    }
    for agent in m.agent_identities.values() {
        names.push((agent.client_id.clone(), agent.display_name.clone()));
    }
    names
}

fn local(url: &str) -> Url {
    #[allow(clippy::expect_used)] // constants that parse; the configuration tests use them
    Url::parse(url).expect("constant URL")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> String {
        entra_manifest::REPOSITORY_MANIFEST.to_string()
    }

    #[test]
    fn https_deployments_get_strict_transport_security_and_local_ones_do_not() {
        let at = |url: &str| {
            let env = Env::from_map([
                ("IDENTITY_MANIFEST", manifest()),
                ("CHAT_APP_URL", url.to_string()),
                ("CHAT_APP_CLIENT_SECRET", "s".into()),
            ]);
            Settings::from(env).unwrap().strict_transport()
        };
        assert!(at("https://chat-app.example.azurecontainerapps.io"));
        assert!(at("https://chat.contoso.example:8443"));
        let local = ["https://localhost:3000", "https://127.0.0.1:3000", "https://[::1]:3000", "https://[::1]"];
        for url in local.into_iter().chain(["http://chat.contoso.example"]) {
            assert!(!at(url), "{url}");
        }
    }

    #[test]
    fn defaults_come_from_the_manifest_and_the_offline_planner() {
        let env = Env::from_map([("IDENTITY_MANIFEST", manifest()), ("CHAT_APP_CLIENT_SECRET", "s".into())]);
        let s = Settings::from(env).unwrap();
        assert_eq!(s.addr.port(), 3000);
        assert_eq!(s.identity.scope, "openid profile offline_access http://localhost:3001/mcp/access_as_user");
        assert_eq!(s.identity.client_id, "8c2dce4e-b22a-4731-86d9-4f40acf63eed");
        assert!(matches!(s.identity.credential, Credential::Secret(_)));
        assert!(matches!(s.model, ModelSettings::Offline));
        assert!(!s.secure_cookies(), "plain-http localhost cannot keep Secure cookies");
        assert_eq!(s.origin(), "http://localhost:3000");
        assert_eq!(s.redirect_uri(), "http://localhost:3000/auth/callback");
        assert!(s.names.iter().any(|(id, n)| id == "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local" && n == "orders-api"));
        assert_eq!(s.agent.max_iterations, 6);
        assert_eq!(s.agent.approval, ApprovalPolicy::Writes, "writes wait for a yes unless told otherwise");
        assert_eq!(s.site.output_name, "chat_app");
    }

    #[test]
    fn the_session_store_is_sqlite_unless_a_redis_url_is_given() {
        let with = |extra: &[(&str, &str)]| {
            let mut vars = vec![("IDENTITY_MANIFEST".to_string(), manifest())];
            vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            Settings::from(Env::from_map(vars))
        };
        let secret = [("CHAT_APP_CLIENT_SECRET", "s")];
        assert!(matches!(with(&secret).unwrap().store, StoreSettings::Sqlite(_)));
        let redis = with(&[secret[0], ("CHAT_APP_SESSION_STORE", "redis://:pa55word@cache:6379")]).unwrap();
        let StoreSettings::Redis(redis) = redis.store else { panic!("redis") };
        assert!(redis.entra.is_none());
        assert!(!format!("{redis:?}").contains("pa55word"), "the password never reaches a log");

        let err = with(&[secret[0], ("CHAT_APP_SESSION_STORE", "http://:pa55word@cache")]).unwrap_err().to_string();
        assert!(err.contains("CHAT_APP_SESSION_STORE") && !err.contains("pa55word"), "{err}");
        // An Entra token is a password: TLS only, and only chat-app's managed identity has one.
        let err = with(&[
            secret[0],
            ("CHAT_APP_SESSION_STORE", "redis://cache:6379"),
            ("CHAT_APP_REDIS_ENTRA_USER", "00000000-0000-0000-0000-000000000001"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("rediss://") && err.contains("managed identity"), "{err}");
        let err = with(&[secret[0], ("CHAT_APP_REDIS_ENTRA_USER", "x")]).unwrap_err().to_string();
        assert!(err.contains("CHAT_APP_SESSION_STORE is not a Redis URL"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_and_secrets_never_printed() {
        let env = Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("CHAT_APP_ADDR", "nowhere".into()),
            ("MODEL_PROVIDER", "azure".into()),
            ("AGENT_MAX_ITERATIONS", "0".into()),
        ]);
        let err = Settings::from(env).unwrap_err().to_string();
        for name in [
            "CHAT_APP_ADDR",
            "client credential",
            "AZURE_OPENAI_ENDPOINT",
            "AZURE_OPENAI_DEPLOYMENT",
            "AGENT_MAX_ITERATIONS",
        ] {
            assert!(err.contains(name), "{name} missing from: {err}");
        }
        let env = Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("CHAT_APP_URL", "https://chat.example.com".into()),
            ("CHAT_APP_CLIENT_SECRET", "top-secret".into()),
            ("OPENAI_API_KEY", "sk-secret".into()),
        ]);
        let s = Settings::from(env).unwrap();
        assert!(s.secure_cookies());
        assert!(s.strict_transport());
        let shown = format!("{s:?}");
        assert!(!shown.contains("top-secret") && !shown.contains("sk-secret"), "{shown}");
        assert!(matches!(s.model, ModelSettings::OpenAi { .. }), "a key alone selects the openai provider");
    }

    #[test]
    fn an_explicit_secret_wins_over_the_managed_identity_endpoint() {
        let env = Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("IDENTITY_ENDPOINT", "http://localhost:3003/msi/token".into()),
            ("IDENTITY_HEADER", "h".into()),
            ("CHAT_APP_CLIENT_SECRET", "s".into()),
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com".into()),
            ("AZURE_OPENAI_DEPLOYMENT", "gpt".into()),
        ]);
        let s = Settings::from(env).unwrap();
        assert!(matches!(&s.identity.credential, Credential::Secret(_)));
        // The endpoint still serves Azure OpenAI (the broker, on a laptop).
        assert!(
            matches!(&s.model, ModelSettings::Azure { auth: ModelAuth::Entra(Credential::ManagedIdentity(_)), .. }),
            "{:?}",
            s.model
        );
    }

    /// The passthrough replay is for demonstrations: in Container Apps only when asked twice.
    #[test]
    fn the_passthrough_replay_in_a_deployment_needs_an_explicit_opt_in() {
        let local = Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("CHAT_APP_CLIENT_SECRET", "s".into()),
            ("CHAT_APP_PASSTHROUGH_DEMO_MCP_URL", "http://localhost:3011/mcp".into()),
        ]);
        let s = Settings::from(local).unwrap();
        assert_eq!(s.passthrough_demo_mcp_url.unwrap().as_str(), "http://localhost:3011/mcp");
        let deployed = || {
            vec![
                ("ENTRA_AUTHORITY", "https://login.microsoftonline.com".to_string()),
                ("ENTRA_TENANT_ID", "afb67780-0dec-4124-a11c-b6e461eb7aad".into()),
                ("CHAT_APP_CLIENT_ID", "11111111-2222-4333-8444-555555555555".into()),
                ("ORDERS_MCP_CLIENT_ID", "22222222-2222-4333-8444-555555555555".into()),
                ("ORDERS_MCP_APP_ID_URI", "api://22222222-2222-4333-8444-555555555555".into()),
                ("ORDERS_API_CLIENT_ID", "0d9f3b3e-1f8e-4b8a-9c43-2f4b5e6d7a8b".into()),
                ("ORDERS_API_APP_ID_URI", "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-dev".into()),
                ("CHAT_APP_CLIENT_SECRET", "s".into()),
                ("CHAT_APP_PASSTHROUGH_DEMO_MCP_URL", "https://mcp-demo.example.com/mcp".into()),
            ]
        };
        let err = Settings::from(Env::from_map(deployed())).unwrap_err().to_string();
        assert!(err.contains("CHAT_APP_PASSTHROUGH_DEMO_IN_DEPLOYMENT=true"), "{err}");
        let mut opted_in = deployed();
        opted_in.push(("CHAT_APP_PASSTHROUGH_DEMO_IN_DEPLOYMENT", "true".into()));
        let s = Settings::from(Env::from_map(opted_in));
        assert!(s.as_ref().is_ok_and(|s| s.passthrough_demo_mcp_url.is_some()), "{:?}", s.err().map(|e| e.to_string()));
    }

    #[test]
    fn the_managed_identity_is_used_when_no_secret_is_set() {
        let env = Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("IDENTITY_ENDPOINT", "http://localhost:3003/msi/token".into()),
            ("IDENTITY_HEADER", "h".into()),
        ]);
        let s = Settings::from(env).unwrap();
        assert!(matches!(s.identity.credential, Credential::ManagedIdentity(_)));
        assert!(format!("{:?}", s.identity.credential).contains("client_id: Some("));
    }

    /// Agent mode: sign-in is for the blueprint, the blueprint's credential is the managed
    /// identity even when a secret signs users in, and without a managed identity it does not
    /// start; the default mode is unchanged.
    #[test]
    fn agent_identity_mode_needs_the_managed_identity_and_signs_in_for_the_blueprint() {
        let default =
            Settings::from(Env::from_map([("IDENTITY_MANIFEST", manifest()), ("CHAT_APP_CLIENT_SECRET", "s".into())]))
                .unwrap();
        assert!(default.agent_identity.is_none());
        assert!(default.identity.scope.ends_with("http://localhost:3001/mcp/access_as_user"));

        let err = Settings::from(Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("CHAT_APP_CLIENT_SECRET", "s".into()),
            ("CHAT_APP_AGENT_IDENTITY", "entra-agent-id".into()),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("needs chat-app's managed identity (IDENTITY_ENDPOINT and IDENTITY_HEADER)"), "{err}");

        let s = Settings::from(Env::from_map([
            ("IDENTITY_MANIFEST", manifest()),
            ("CHAT_APP_CLIENT_SECRET", "s".into()),
            ("CHAT_APP_AGENT_IDENTITY", "entra-agent-id".into()),
            ("IDENTITY_ENDPOINT", "http://localhost:3003/msi/token".into()),
            ("IDENTITY_HEADER", "h".into()),
        ]))
        .unwrap();
        let agent = s.agent_identity.as_ref().unwrap();
        assert!(matches!(agent.blueprint_credential, Credential::ManagedIdentity(_)));
        assert!(matches!(s.identity.credential, Credential::Secret(_)), "users still sign in with the secret");
        assert_eq!(
            s.identity.scope,
            "openid profile offline_access api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-copilot-agent-local/access_as_user"
        );
        assert_eq!(agent.orders_mcp_scope, "http://localhost:3001/mcp/access_as_user");
        assert_eq!(agent.agent_name, "Orders Copilot agent");
        assert!(s.names.iter().any(|(id, name)| id == &agent.agent_id && name == "Orders Copilot agent"));
    }
}
