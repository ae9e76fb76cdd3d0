//! The client libraries people already use, unmodified, against the stack: MSAL Python,
//! azure-identity and MSAL Node against the emulator over HTTPS (azure-identity also against the
//! managed-identity broker, run as a process), the MCP TypeScript SDK's OAuth
//! client and MCP Inspector's CLI against orders-mcp, and Schemathesis against orders-api's live
//! OpenAPI document. The stack runs in-process (emulator with `--tls`, orders-api, orders-mcp);
//! the clients are installed from PyPI into a virtual environment and from npm (with a pinned
//! lock) into a `node_modules`, both under `target/clients/` (the Rust build does not depend on
//! them), and run as programs whose exit code and output are checked. When a registry cannot be
//! reached the tests say so on the terminal and skip; any other installation failure fails them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use entra_emulator::{EmulatorConfig, Running, TlsSettings};
use entra_manifest::{Manifest, REPOSITORY_MANIFEST};
use service_kit::settings::Env;
use tempfile::TempDir;

/// The versions tested, listed in the README's "Client compatibility" section.
const PYTHON_PACKAGES: &[&str] = &["msal==1.39.0", "azure-identity==1.27.0", "schemathesis==4.32.5"];
const IDENTITY_HEADER: &str = "clients-test-identity-header";
/// A generous bound that catches a hang; the flows take a few seconds.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(180);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Straight to the terminal: the test harness captures `println!`, and a skip must be seen.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

fn registry_reachable(host: &str) -> bool {
    let Ok(mut addrs) = (host, 443).to_socket_addrs() else { return false };
    addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok())
}

/// Runs `install` unless `dir`'s marker says `wanted` is installed there already. `false` (said
/// out loud) when the install fails and `registry` is unreachable; any other failure panics.
fn install_once(dir: &Path, wanted: &str, registry: &str, install: impl FnOnce() -> Output) -> bool {
    let marker = dir.join("installed.txt");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return true;
    }
    let installed = install();
    if !installed.status.success() {
        if !registry_reachable(registry) {
            say(&format!("SKIPPED: the client-library tests need {registry}, which is unreachable"));
            return false;
        }
        panic!("installing into {} failed: {}", dir.display(), report(&installed));
    }
    std::fs::write(&marker, wanted).unwrap();
    true
}

/// The virtual environment's `python`, with [`PYTHON_PACKAGES`] installed; `None` when PyPI is
/// unreachable.
fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = workspace().join("target").join("clients").join("py");
            let python = venv.join("bin").join("python");
            let ready = install_once(&venv, &PYTHON_PACKAGES.join("\n"), "pypi.org", || {
                let created = Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).output();
                match created {
                    Ok(out) if out.status.success() => {}
                    Ok(out) => panic!(
                        "python3 -m venv failed (Debian: apt-get install python3-venv): {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                    Err(e) => panic!("python3 is needed for the client tests: {e}"),
                }
                Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                    .args(PYTHON_PACKAGES)
                    .output()
                    .unwrap()
            });
            ready.then_some(python)
        })
        .clone()
}

/// The Node client programs' directory under `target/`: `scripts/tests/clients/package.json`
/// installed from its lock (`npm ci`, so every transitive version is pinned), including Node 22
/// itself from the npm registry (MSAL Node needs Node 20, MCP Inspector 22.19; Debian ships 18),
/// and the programs copied beside their `node_modules` (ES modules resolve packages from the
/// importing file's directory). `None` when the npm registry is unreachable.
fn node_programs() -> Option<PathBuf> {
    static NODE: OnceLock<Option<PathBuf>> = OnceLock::new();
    NODE.get_or_init(|| {
        let sources = workspace().join("scripts/tests/clients");
        let dir = workspace().join("target").join("clients").join("node");
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(sources.join(file), dir.join(file)).unwrap();
        }
        let lock = std::fs::read_to_string(sources.join("package-lock.json")).unwrap();
        let ready = install_once(&dir, &lock, "registry.npmjs.org", || {
            match Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .output()
            {
                Ok(out) => out,
                Err(e) => panic!("npm is needed for the client tests (Debian: apt-get install nodejs npm): {e}"),
            }
        });
        if !ready {
            return None;
        }
        for entry in std::fs::read_dir(&sources).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "mjs") {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        Some(dir)
    })
    .clone()
}

/// `node` (the pinned one) running `program` from [`node_programs`].
fn node(dir: &Path, program: &str) -> Command {
    let mut node = Command::new(dir.join("node_modules/.bin/node"));
    node.arg(dir.join(program)).current_dir(dir);
    node
}

/// The emulator over HTTPS with its CA, orders-api and orders-mcp trusting it through
/// `ENTRA_CA_FILE`, as `cargo xtask up --tls` runs them.
struct Stack {
    idp: Running,
    api: service_kit::serve::Running<()>,
    _mcp: service_kit::serve::Running<()>,
    /// orders-mcp's canonical endpoint, `http://localhost:<port>/mcp`.
    mcp_url: String,
    manifest: Manifest,
    ca_file: PathBuf,
    _dir: TempDir,
}

impl Stack {
    async fn start() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        // orders-mcp's URL is in its Application ID URI and resource metadata, which MCP clients
        // check against the URL they connect to: its port is chosen before the emulator starts.
        let mcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mcp_public_url = format!("http://localhost:{}", mcp_listener.local_addr().unwrap().port());
        let mut config = EmulatorConfig::from_repository().unwrap();
        config.vars.orders_mcp_url = mcp_public_url.clone();
        config.tls = Some(TlsSettings { dir: dir.path().join("emulator"), names: vec![] });
        config.identity_header = Some(IDENTITY_HEADER.into());
        config.device_poll_interval = Duration::from_secs(1);
        let idp = entra_emulator::Application::build(config).await.unwrap().spawn();
        let ca_file = dir.path().join("emulator").join(entra_emulator::tls::CA_FILE);
        let manifest = idp.handle().manifest().clone();
        let common = |extra: &[(&str, String)]| {
            let mut vars = vec![
                ("IDENTITY_MANIFEST".to_string(), REPOSITORY_MANIFEST.to_string()),
                ("ENTRA_AUTHORITY".to_string(), idp.url()),
                ("ENTRA_CA_FILE".to_string(), ca_file.display().to_string()),
            ];
            vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
            Env::from_map(vars)
        };
        let api = orders_api::configuration::Settings::from_env(common(&[
            ("ORDERS_API_ADDR", "127.0.0.1:0".into()),
            ("ORDERS_API_DATABASE", dir.path().join("orders.db").display().to_string()),
        ]))
        .unwrap();
        let api = orders_api::startup::Application::build(api).await.unwrap().spawn();
        let mcp = orders_mcp::configuration::Settings::from_env(common(&[
            ("ORDERS_MCP_PUBLIC_URL", mcp_public_url.clone()),
            ("ORDERS_API_URL", api.url()),
            ("ORDERS_MCP_CLIENT_SECRET", manifest.apps["orders-mcp"].emulator_client_secret.clone().unwrap()),
        ]))
        .unwrap();
        let mcp = orders_mcp::startup::Application::build_on(mcp_listener, mcp).await.unwrap().spawn();
        Stack { idp, api, _mcp: mcp, mcp_url: format!("{mcp_public_url}/mcp"), manifest, ca_file, _dir: dir }
    }

    fn authority(&self) -> String {
        format!("{}/{}", self.idp.url(), self.idp.handle().tenant_id())
    }

    fn app_id_uri(&self, app: &str) -> String {
        let vars = &self.idp.handle().config().vars;
        self.manifest.apps[app].identifier_uri.as_ref().unwrap().render(vars)
    }

    /// What every client program is told: where things are, and the CA to trust.
    fn env(&self) -> Vec<(String, String)> {
        let ca = self.ca_file.display().to_string();
        let secret = |app: &str| self.manifest.apps[app].emulator_client_secret.clone().unwrap();
        [
            ("AUTHORITY", self.authority()),
            ("MCP_SCOPE", format!("{}/access_as_user", self.app_id_uri("orders-mcp"))),
            ("API_DEFAULT", format!("{}/.default", self.app_id_uri("orders-api"))),
            ("MCP_URL", self.mcp_url.clone()),
            ("API_URL", self.api.url()),
            ("PUBLIC_CLIENT_ID", self.manifest.clients["azure-cli"].client_id.clone()),
            ("VSCODE_CLIENT_ID", self.manifest.clients["vscode"].client_id.clone()),
            ("MCP_CLIENT_ID", self.manifest.apps["orders-mcp"].client_id.clone()),
            ("MCP_CLIENT_SECRET", secret("orders-mcp")),
            ("CHAT_CLIENT_ID", self.manifest.apps["chat-app"].client_id.clone()),
            ("CHAT_CLIENT_SECRET", secret("chat-app")),
            ("MANAGED_IDENTITY_CLIENT_ID", self.manifest.managed_identities["chat-app"].client_id.clone()),
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", self.idp.url())),
            ("IDENTITY_HEADER", IDENTITY_HEADER.into()),
            ("REQUESTS_CA_BUNDLE", ca.clone()),
            ("SSL_CERT_FILE", ca.clone()),
            ("NODE_EXTRA_CA_CERTS", ca),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Runs `program` to its end (bounded by [`PROGRAM_TIMEOUT`]) without blocking the runtime the
/// stack serves on.
async fn run(mut program: Command) -> Output {
    program.stdin(std::process::Stdio::null());
    let mut program = tokio::process::Command::from(program);
    program.kill_on_drop(true);
    tokio::time::timeout(PROGRAM_TIMEOUT, program.output())
        .await
        .expect("the client program finishes (a hang is a bug)")
        .unwrap()
}

/// What the MSAL programs (Python and Node) report, one line per flow.
const MSAL_STEPS: [&str; 6] = [
    "ok authorization code + PKCE",
    "ok refresh token",
    "ok on-behalf-of",
    "ok client credentials",
    "ok device code",
    "ok refusals",
];

/// Runs a client program that prints `ok <step>` per step: it succeeds and reports each of `steps`.
async fn run_reporting(program: Command, steps: &[&str]) {
    let output = run(program).await;
    let out = String::from_utf8_lossy(&output.stdout);
    println!("{out}");
    assert!(output.status.success(), "{}", report(&output));
    for step in steps {
        assert!(out.contains(step), "{step} missing: {}", report(&output));
    }
}

fn report(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// MSAL Python (public and confidential clients) and azure-identity, over HTTPS: auth code +
/// PKCE through the login form, refresh, On-Behalf-Of, client credentials, device code,
/// typical refusals, and `ManagedIdentityCredential`; each token used at the service it is for.
#[tokio::test(flavor = "multi_thread")]
async fn msal_python_and_azure_identity_complete_every_flow_over_https() {
    let Some(python) = python() else { return };
    let stack = Stack::start().await;
    let mut program = Command::new(python);
    program.arg(workspace().join("scripts/tests/clients/msal_flows.py")).envs(stack.env());
    let steps: Vec<&str> = MSAL_STEPS.into_iter().chain(["ok azure-identity ManagedIdentityCredential"]).collect();
    run_reporting(program, &steps).await;
    let stats = stack.idp.handle().stats();
    assert!(stats.on_behalf_of >= 1 && stats.device_code >= 1 && stats.managed_identity >= 1, "{stats:?}");
}

/// azure-identity's `ManagedIdentityCredential` against the managed-identity broker
/// (`entra-emulator broker`), which hands out the developer's azd sign-in: here a fake `azd` on
/// the broker's `PATH`. Azure OpenAI's resource is issued; ARM is refused by the allow-list.
#[tokio::test(flavor = "multi_thread")]
async fn azure_identity_gets_the_developers_token_from_the_broker_for_azure_openai_only() {
    let Some(python) = python() else { return };
    let bin = xtask::stack::workspace_binaries().unwrap();
    let fake = TempDir::new().unwrap();
    let token = "developer-token-from-a-fake-azd";
    let azd = fake.path().join("azd");
    std::fs::write(
        &azd,
        format!("#!/bin/sh\necho '{{\"token\":\"{token}\",\"expiresOn\":\"2100-01-01T00:00:00Z\"}}'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&azd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = format!("{}:{}", fake.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut broker = tokio::process::Command::new(bin.join("entra-emulator"))
        .arg("broker")
        .env("PATH", path)
        .env("BROKER_ADDR", format!("127.0.0.1:{port}"))
        .env("BROKER_IDENTITY_HEADER", IDENTITY_HEADER)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let health = format!("http://127.0.0.1:{port}/healthz");
    let ready = async {
        loop {
            let health = health.clone();
            if tokio::task::spawn_blocking(move || service_kit::probe::status(&health)).await.unwrap().ok() == Some(200)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ready).await.expect("the broker starts");
    let mut program = Command::new(python);
    program
        .arg(workspace().join("scripts/tests/clients/broker_mi.py"))
        .env("IDENTITY_ENDPOINT", format!("http://127.0.0.1:{port}/msi/token"))
        .env("IDENTITY_HEADER", IDENTITY_HEADER)
        .env("EXPECTED_TOKEN", token);
    run_reporting(program, &["ok Azure OpenAI token from the broker", "ok ARM refused"]).await;
    broker.kill().await.unwrap();
}

/// MSAL Node (public and confidential clients) over HTTPS: the same flows as MSAL Python, each
/// token used at the service it is for, and the refusals as MSAL Node's `ServerError`s.
#[tokio::test(flavor = "multi_thread")]
async fn msal_node_completes_every_flow_over_https() {
    let Some(dir) = node_programs() else { return };
    let stack = Stack::start().await;
    let mut program = node(&dir, "msal_flows.mjs");
    program.envs(stack.env());
    run_reporting(program, &MSAL_STEPS).await;
    let stats = stack.idp.handle().stats();
    assert!(stats.on_behalf_of >= 1 && stats.device_code >= 1, "{stats:?}");
}

/// The official MCP TypeScript SDK's client with its OAuth support, from nothing but orders-mcp's
/// URL: 401, resource metadata, authorization server metadata, auth code + PKCE through the
/// login form as the pre-authorized VS Code client (no dynamic registration: Entra has none),
/// with RFC 8707 `resource` = orders-mcp's Application ID URI; then `tools/call`.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_typescript_sdk_discovers_auth_signs_in_and_calls_a_tool() {
    let Some(dir) = node_programs() else { return };
    let stack = Stack::start().await;
    let mut program = node(&dir, "mcp_sdk.mjs");
    program.envs(stack.env());
    run_reporting(
        program,
        &[
            "ok 401, protected resource metadata",
            "ok auth code + PKCE as the pre-authorized VS Code client",
            "ok tools/call list_orders as alice",
        ],
    )
    .await;
}

/// MCP Inspector's CLI, as a developer runs it against a server that wants a bearer token:
/// `mcp-inspector --cli <url> --method tools/list --header "Authorization: Bearer ..."`.
#[tokio::test(flavor = "multi_thread")]
async fn mcp_inspector_cli_lists_the_tools_with_a_bearer_header() {
    let Some(dir) = node_programs() else { return };
    let stack = Stack::start().await;
    let token = stack.idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    // The Inspector keeps a server catalog and OAuth storage under the home directory.
    let home = tempfile::tempdir().unwrap();
    let inspector = || {
        let mut program = node(&dir, "node_modules/.bin/mcp-inspector");
        program
            .args(["--cli", &stack.mcp_url, "--transport", "http", "--method", "tools/list"])
            .envs(stack.env())
            .env("HOME", home.path());
        program
    };
    let mut program = inspector();
    program.arg("--header").arg(format!("Authorization: Bearer {token}"));
    let output = run(program).await;
    assert!(output.status.success(), "{}", report(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("tools/list prints JSON");
    let names: Vec<&str> = listed["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"list_orders") && names.contains(&"whoami"), "{names:?}");

    // Without the header the Inspector gets orders-mcp's 401 and stops where it would start its
    // own OAuth sign-in (which needs a person at a terminal).
    let output = run(inspector()).await;
    let refused = !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("auth_required");
    assert!(refused, "{}", report(&output));
}

/// Schemathesis, driven by orders-api's live `/openapi.json` with a valid token (a user with
/// every scope and the admin role, so every operation is allowed): no 5xx, every response
/// matches its documented status, content type, headers and schema, every schema-valid request
/// is accepted (`positive_data_acceptance`) and every invalid one refused
/// (`negative_data_rejection`), and no operation ignores its authentication.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_nothing_the_openapi_document_does_not_say() {
    let Some(python) = python() else { return };
    let stack = Stack::start().await;
    let token = stack
        .idp
        .handle()
        .user_token("carol", "orders-mcp", "orders-api", &["Orders.Read", "Orders.ReadWrite"])
        .unwrap();
    let reports = tempfile::tempdir().unwrap();
    let mut program = Command::new(python);
    program
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/openapi.json", stack.api.url()))
        .args(["--checks", "all", "--max-examples", "25", "--seed", "16", "--no-color"])
        // `--header` puts the token back on the request that check sends without `Authorization`
        // (a false 201); `ignored_auth` checks that rule instead, removing the token itself.
        .args(["--exclude-checks", "missing_required_header"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .arg("--header")
        .arg(format!("Authorization: Bearer {token}"))
        .arg("--report-dir")
        .arg(reports.path())
        .current_dir(reports.path())
        .env("SCHEMATHESIS_HOOKS", workspace().join("scripts/tests/clients/schemathesis_hooks.py"));
    let output = run(program).await;
    assert!(output.status.success(), "Schemathesis found a disagreement:\n{}", report(&output));
}
