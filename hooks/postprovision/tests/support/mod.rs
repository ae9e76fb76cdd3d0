//! Test helpers: an environment as `azd provision` leaves it (azd environment file, manifest,
//! fake cloud) and a way to run the hook against it in-process, exactly as `main` does but
//! signed in through fake CLIs.

// Each test file uses its own part of the support.
#![allow(dead_code, unused_imports)]

pub mod clis;
pub mod fake_cloud;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use postprovision::cli::{self, Cli, Io};
use postprovision::reconcile::Summary;
use postprovision::retry::RetryPolicy;

use clis::Clis;
use fake_cloud::{Config, FakeCloud, TOKEN};

pub const TENANT: &str = "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a";
pub const SUBSCRIPTION: &str = "0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6";
pub const GROUP: &str = "rg-dev";
pub const CHAT_APP_URL: &str = "https://chat-app-abc123.happyfield-1234.swedencentral.azurecontainerapps.io";
pub const ORDERS_MCP_URL: &str = "https://orders-mcp-abc123.happyfield-1234.swedencentral.azurecontainerapps.io";
/// Bicep's `uniqueString(subscription().id, environmentName, location)` for the test deployment.
pub const RESOURCE_TOKEN: &str = "abc123xyz7890";
pub const CHAT_MI: &str = "6f1c2a9e-1111-4c1e-9f6a-000000000001";
pub const MCP_MI: &str = "6f1c2a9e-2222-4c1e-9f6a-000000000002";
/// The managed identities' client ids (what a token request names), as Bicep outputs them.
pub const CHAT_MI_CLIENT: &str = "6f1c2a9e-1111-4c1e-9f6a-100000000001";
pub const MCP_MI_CLIENT: &str = "6f1c2a9e-2222-4c1e-9f6a-100000000002";
/// orders-api's internal ingress (`https://<name>.internal.<environment domain>`).
pub const ORDERS_API_URL: &str =
    "https://orders-api-abc123.internal.happyfield-1234.swedencentral.azurecontainerapps.io";
pub const OPENAI_ENDPOINT: &str = "https://oai-abc123xyz7890.openai.azure.com/";

/// The environment variables infra/main.bicep gives each container app that the hook updates,
/// as they are after the first `azd provision` (ids not known yet).
pub const CONTAINER_APPS: [(&str, &str, &[&str]); 3] = [
    ("orders-api", "orders-api-abc123", &["ORDERS_API_CLIENT_ID", "ORDERS_API_APP_ID_URI", "ORDERS_MCP_CLIENT_ID"]),
    (
        "orders-mcp",
        "orders-mcp-abc123",
        &["ORDERS_MCP_CLIENT_ID", "ORDERS_MCP_APP_ID_URI", "ORDERS_API_CLIENT_ID", "ORDERS_API_APP_ID_URI"],
    ),
    (
        "chat-app",
        "chat-app-abc123",
        &[
            "CHAT_APP_CLIENT_ID",
            "ORDERS_MCP_CLIENT_ID",
            "ORDERS_MCP_APP_ID_URI",
            "CHAT_APP_AGENT_BLUEPRINT_ID",
            "CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI",
            "CHAT_APP_AGENT_ID",
        ],
    ),
];

/// The public origins of the two externally reachable container apps: Bicep computes them from
/// the Container Apps environment's domain (`https://<app name>.<default domain>`).
#[derive(Debug, Clone)]
pub struct Origins {
    pub chat_app: String,
    pub orders_mcp: String,
}

impl Default for Origins {
    fn default() -> Self {
        Origins { chat_app: CHAT_APP_URL.into(), orders_mcp: ORDERS_MCP_URL.into() }
    }
}

/// The environment infra/main.bicep gives container app `app` (`commonEnv` and the app's own
/// list, in its order), as the first `azd provision` leaves it: the app registrations' ids
/// are empty until the hook sets them. bicep.rs checks these names against main.bicep.
pub fn bicep_container_env(app: &str, env_name: &str, origins: &Origins) -> Vec<(&'static str, String)> {
    let mcp_host = url::Url::parse(&origins.orders_mcp).unwrap().host_str().unwrap().to_string();
    let mut env = vec![
        ("ENTRA_AUTHORITY", "https://login.microsoftonline.com".to_string()),
        ("ENTRA_TENANT_ID", TENANT.to_string()),
        ("LOG_FORMAT", "json".to_string()),
        ("IDENTITY_SUFFIX", format!("{env_name}-{RESOURCE_TOKEN}")),
    ];
    let own: Vec<(&'static str, String)> = match app {
        "orders-api" => vec![
            ("ORDERS_API_ADDR", "0.0.0.0:3002".into()),
            ("ORDERS_API_DATABASE", "/data/orders.db".into()),
            ("ORDERS_API_PUBLIC_URL", ORDERS_API_URL.into()),
            ("ORDERS_API_CLIENT_ID", String::new()),
            ("ORDERS_API_APP_ID_URI", String::new()),
            ("ORDERS_MCP_CLIENT_ID", String::new()),
        ],
        "orders-mcp" => vec![
            ("ORDERS_MCP_ADDR", "0.0.0.0:3001".into()),
            ("ORDERS_MCP_PUBLIC_URL", origins.orders_mcp.clone()),
            ("ORDERS_MCP_CLIENT_ID", String::new()),
            ("ORDERS_MCP_APP_ID_URI", String::new()),
            ("ORDERS_MCP_ALLOWED_HOSTS", mcp_host),
            ("ORDERS_MCP_MANAGED_IDENTITY_CLIENT_ID", MCP_MI_CLIENT.into()),
            ("ORDERS_MCP_DOWNSTREAM", "obo".into()),
            ("ORDERS_API_URL", ORDERS_API_URL.into()),
            ("ORDERS_API_CLIENT_ID", String::new()),
            ("ORDERS_API_APP_ID_URI", String::new()),
        ],
        "chat-app" => vec![
            ("CHAT_APP_ADDR", "0.0.0.0:3000".into()),
            ("CHAT_APP_URL", origins.chat_app.clone()),
            ("CHAT_APP_CLIENT_ID", String::new()),
            // main.bicep's default `chatAppAgentIdentity`; the ids are the hook's, in agent mode.
            ("CHAT_APP_AGENT_IDENTITY", "none".into()),
            ("CHAT_APP_AGENT_BLUEPRINT_ID", String::new()),
            ("CHAT_APP_AGENT_BLUEPRINT_APP_ID_URI", String::new()),
            ("CHAT_APP_AGENT_ID", String::new()),
            ("CHAT_APP_MANAGED_IDENTITY_CLIENT_ID", CHAT_MI_CLIENT.into()),
            ("CHAT_APP_SESSION_DB", "/data/sessions.db".into()),
            // One replica (main.bicep's default `chatAppMaxReplicas`): sessions in SQLite, no Redis.
            ("CHAT_APP_SESSION_STORE", "sqlite".into()),
            ("CHAT_APP_REDIS_ENTRA_USER", String::new()),
            ("ORDERS_MCP_URL", format!("{}/mcp", origins.orders_mcp)),
            ("ORDERS_MCP_CLIENT_ID", String::new()),
            ("ORDERS_MCP_APP_ID_URI", String::new()),
            ("MODEL_PROVIDER", "azure".into()),
            ("AZURE_OPENAI_ENDPOINT", OPENAI_ENDPOINT.into()),
            ("AZURE_OPENAI_DEPLOYMENT", "gpt-5-mini".into()),
        ],
        other => panic!("main.bicep has no container app for {other}"),
    };
    env.extend(own);
    env
}

/// An azd environment after `azd provision`, before the hook: its environment file and a copy
/// of the repository's manifest (in `files`, for tests to edit), and the cloud.
pub struct Provisioned {
    pub cloud: FakeCloud,
    pub files: tempfile::TempDir,
    pub env_name: String,
    pub manifest: PathBuf,
    pub origins: Origins,
}

/// The tags the hook gives the apps of deployment (`env_name`, `subscription`, `token`).
pub fn deployment_tag(env_name: &str, subscription: &str, token: &str) -> String {
    format!("orders-copilot:{env_name}:{subscription}:{token}")
}

impl Provisioned {
    pub async fn new() -> Provisioned {
        Provisioned::with(Config::new(TENANT), "dev").await
    }

    pub async fn with(config: Config, env_name: &str) -> Provisioned {
        Provisioned::at(config, env_name, Origins::default()).await
    }

    /// A deployment whose public origins are `origins`.
    pub async fn at(config: Config, env_name: &str, origins: Origins) -> Provisioned {
        let cloud = FakeCloud::start(config).await;
        let files = tempfile::tempdir().unwrap();
        let manifest = files.path().join("app-registrations.toml");
        std::fs::copy(entra_manifest::REPOSITORY_MANIFEST, &manifest).unwrap();
        let provisioned = Provisioned { cloud, files, env_name: env_name.to_string(), manifest, origins };
        provisioned.write_env_file(env_name);
        for (app, name, _) in CONTAINER_APPS {
            let env = bicep_container_env(app, env_name, &provisioned.origins);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            provisioned.cloud.add_container_app(SUBSCRIPTION, GROUP, name, &env);
        }
        provisioned
    }

    /// Agent mode, as `azd env set CHAT_APP_AGENT_IDENTITY entra-agent-id` and the next
    /// provision leave it: in the azd environment and in chat-app's container.
    pub fn set_agent_mode(&self) {
        let mut values = self.env_values();
        values.insert("CHAT_APP_AGENT_IDENTITY".into(), "entra-agent-id".into());
        std::fs::write(self.env_file(), postprovision::dotenv::render(&values)).unwrap();
        self.cloud.dir(|d| {
            let app = d.container_apps.values_mut().find(|a| a["name"] == "chat-app-abc123").unwrap();
            let env = app["properties"]["template"]["containers"][0]["env"].as_array_mut().unwrap();
            let var = env.iter_mut().find(|e| e["name"] == "CHAT_APP_AGENT_IDENTITY").unwrap();
            var["value"] = "entra-agent-id".into();
        });
    }

    /// The tag on every app of this deployment.
    pub fn tag(&self) -> String {
        deployment_tag(&self.env_name, SUBSCRIPTION, RESOURCE_TOKEN)
    }

    /// The tag on the app registration of manifest app `app`.
    pub fn app_tag(&self, app: &str) -> String {
        format!("{}:{app}", self.tag())
    }

    /// The azd environment as `azd provision` leaves it: azd's values and the Bicep outputs.
    pub fn write_env_file(&self, env_name: &str) {
        let mut values = BTreeMap::new();
        for (k, v) in [
            ("AZURE_ENV_NAME", env_name),
            ("AZURE_LOCATION", "swedencentral"),
            ("AZURE_SUBSCRIPTION_ID", SUBSCRIPTION),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_RESOURCE_GROUP", GROUP),
            ("AZURE_RESOURCE_TOKEN", RESOURCE_TOKEN),
            ("CHAT_APP_URL", self.origins.chat_app.as_str()),
            ("ORDERS_MCP_PUBLIC_URL", self.origins.orders_mcp.as_str()),
            ("ORDERS_MCP_URL", &format!("{}/mcp", self.origins.orders_mcp)),
            ("CHAT_APP_MANAGED_IDENTITY_PRINCIPAL_ID", CHAT_MI),
            ("ORDERS_MCP_MANAGED_IDENTITY_PRINCIPAL_ID", MCP_MI),
        ] {
            values.insert(k.to_string(), v.to_string());
        }
        for (app, name, _) in CONTAINER_APPS {
            values.insert(format!("{}_CONTAINER_APP_NAME", app.to_uppercase().replace('-', "_")), name.to_string());
        }
        std::fs::write(self.env_file(), postprovision::dotenv::render(&values)).unwrap();
    }

    pub fn env_file(&self) -> PathBuf {
        self.files.path().join(format!("{}.env", self.env_name))
    }

    pub fn env_values(&self) -> BTreeMap<String, String> {
        postprovision::dotenv::parse(&std::fs::read_to_string(self.env_file()).unwrap()).unwrap()
    }

    pub fn edit_manifest(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.manifest).unwrap();
        let edited = edit(text.clone());
        assert_ne!(text, edited, "the edit changed nothing");
        std::fs::write(&self.manifest, edited).unwrap();
    }

    /// Runs `postprovision <args>` against the fake cloud; the output and the result.
    pub async fn run(&self, args: &[&str]) -> (String, Result<Summary, String>) {
        let mut argv = vec![
            "postprovision".to_string(),
            "--manifest".into(),
            self.manifest.display().to_string(),
            "--env-file".into(),
            self.env_file().display().to_string(),
            "--graph-url".into(),
            self.cloud.graph_url(),
            "--arm-url".into(),
            self.cloud.url.clone(),
            // The fake serves Entra's sign-in endpoints too (agent mode's sign-in).
            "--authority".into(),
            self.cloud.url.clone(),
        ];
        argv.extend(args.iter().map(|a| a.to_string()));
        run_cli(argv, BTreeMap::new()).await
    }
}

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
        replication: Duration::from_secs(5),
    }
}

/// What agent mode's sign-in showed the developer (stderr for real) starts with this in the
/// output [`run_cli`] returns.
pub const PROMPTED: &str = "[stderr] ";

/// How long the browser sign-in waits in tests (the person answers at once, or never).
pub const SIGN_IN_TIME_LIMIT: Duration = Duration::from_secs(3);

/// The person at the terminal: opens the address a browser sign-in shows, as a browser does
/// (following the fake Entra's redirect to the hook's loopback listener), and reloads it while
/// the page says the client is not found yet, as the message tells them to.
fn follow_sign_in_address(message: &str) {
    let Some(address) = message.split_whitespace().find(|w| w.starts_with("http") && w.contains("/authorize?")) else {
        return;
    };
    let (address, reload) = (address.to_string(), message.contains("AADSTS700016") && message.contains("reload"));
    tokio::spawn(async move {
        for _ in 0..10 {
            let Ok(page) = reqwest::get(&address).await else { return };
            let not_found = page.text().await.is_ok_and(|text| text.contains("AADSTS700016"));
            if !(not_found && reload) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Runs the hook as `main` does, signed in to azd with the token the fake cloud accepts. The
/// output is stdout, then any sign-in message (after [`PROMPTED`]).
pub async fn run_cli(argv: Vec<String>, process_env: BTreeMap<String, String>) -> (String, Result<Summary, String>) {
    let cli = Cli::try_parse_from(argv).unwrap();
    let mut out = Vec::new();
    let prompts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let shown = prompts.clone();
    let io = Io {
        process_env,
        sign_in_clis: Some(Clis::azd_signed_in(TOKEN)),
        sign_in_prompt: std::sync::Arc::new(move |message: &str| {
            shown.lock().unwrap().push(message.to_string());
            follow_sign_in_address(message);
        }),
        sign_in_time_limit: SIGN_IN_TIME_LIMIT,
        retry: fast_retries(),
        out: &mut out,
    };
    let result = cli::run(cli, io).await;
    let mut out = String::from_utf8(out).unwrap();
    for message in prompts.lock().unwrap().iter() {
        out.push_str(&format!("{PROMPTED}{message}\n"));
    }
    (out, result)
}
