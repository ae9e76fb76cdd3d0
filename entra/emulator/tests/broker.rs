//! The managed-identity broker (`entra-emulator --broker`), run as the real binary with fake
//! `az` and `azd` CLIs first on `PATH`, and called by entra-auth's managed-identity client, the
//! code every service runs in a container.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is a failure report
#![cfg(unix)]

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use entra_auth::acquire::{ManagedIdentityCredential, ManagedIdentitySource};
use serde_json::Value;
use url::Url;

const HEADER: &str = "broker-test-identity-header";
const TENANT: &str = "5a8f0e3c-2d4b-4c1e-9f6a-7b8c9d0e1f2a";
const OPENAI: &str = "https://cognitiveservices.azure.com";

/// `az account get-access-token`: records its arguments, prints a numbered token, and fails
/// like the real CLI for a resource the developer has no access to.
const FAKE_AZ: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE_CLI_LOG"
case "$*" in
  *no-access*) echo "ERROR: AADSTS65001: The user has not consented. Please run 'az login'." >&2; exit 1 ;;
esac
n=$(wc -l < "$FAKE_CLI_LOG" | tr -d ' ')
exp=$(( $(date +%s) + 3600 ))
printf '{"accessToken":"fake-az-token-%s","expiresOn":"2100-01-01 00:00:00.000000","expires_on":%s,"tenant":"%s","tokenType":"Bearer"}\n' "$n" "$exp" "$FAKE_TENANT"
"#;

/// `azd auth token`: not signed in, so the broker falls back to the Azure CLI.
const FAKE_AZD: &str = r#"#!/bin/sh
echo "azd $*" >> "$FAKE_CLI_LOG"
echo "ERROR: not logged in, run \`azd auth login\` to login" >&2
exit 1
"#;

struct Broker {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Stops the broker and returns everything it wrote to stderr and stdout.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut output = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            err.read_to_string(&mut output).unwrap();
        }
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut output).unwrap();
        }
        output
    }
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn command(dir: &Path, log: &Path) -> Command {
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new(env!("CARGO_BIN_EXE_entra-emulator"));
    command
        .arg("--broker")
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .env("FAKE_CLI_LOG", log)
        .env("FAKE_TENANT", TENANT)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn start() -> Broker {
    start_with(&[]).await
}

async fn start_with(env: &[(&str, &str)]) -> Broker {
    let dir = tempfile::tempdir().unwrap();
    write_script(&dir.path().join("az"), FAKE_AZ);
    write_script(&dir.path().join("azd"), FAKE_AZD);
    let log = dir.path().join("calls.log");
    let port = free_port();
    let child = command(dir.path(), &log)
        .env("BROKER_ADDR", format!("127.0.0.1:{port}"))
        .env("BROKER_IDENTITY_HEADER", HEADER)
        .env("BROKER_TENANT_ID", TENANT)
        .envs(env.iter().copied())
        .spawn()
        .unwrap();
    let broker = Broker { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{}/healthz", broker.url)).await.is_err() {
        assert!(Instant::now() < deadline, "the broker did not start: {}", broker.stop());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker
}

fn credential(broker: &Broker, header: &str) -> ManagedIdentityCredential {
    let source = ManagedIdentitySource::AppService {
        endpoint: Url::parse(&format!("{}/msi/token", broker.url)).unwrap(),
        header: header.into(),
    };
    // Containers name their user-assigned identity; the broker has only the developer's.
    ManagedIdentityCredential::new(reqwest::Client::new(), source, Some("00000000-0000-0000-0000-00000000c0de".into()))
}

#[tokio::test]
async fn the_managed_identity_client_gets_the_developers_token_through_the_broker() {
    let broker = start().await;
    let token = credential(&broker, HEADER).token(OPENAI).await.unwrap();
    assert!(token.secret().starts_with("fake-az-token-"), "the Azure CLI's token");
    assert!(token.remaining() > 3000, "its lifetime comes through: {}", token.remaining());

    let calls = broker.calls();
    assert_eq!(calls.len(), 2, "azd first, then az: {calls:#?}");
    assert!(calls[0].starts_with("azd auth token") && calls[0].contains(&format!("--tenant-id {TENANT}")));
    assert!(
        calls[1].contains(&format!("account get-access-token -o json --scope {OPENAI}/.default --tenant {TENANT}")),
        "the resource becomes its .default scope, for the configured tenant: {calls:#?}"
    );

    // A second client (another container) is served from the broker's cache: no CLI call.
    let again = credential(&broker, HEADER).token(OPENAI).await.unwrap();
    assert_eq!(again.secret(), token.secret());
    assert_eq!(broker.calls().len(), 2);

    let output = broker.stop();
    assert!(output.contains("managed-identity broker ready"), "{output}");
    assert!(!output.contains("fake-az-token"), "no token in the broker's output:\n{output}");
    assert!(!output.contains(HEADER), "nor the header secret:\n{output}");
}

#[tokio::test]
async fn a_missing_or_wrong_identity_header_is_refused() {
    let broker = start().await;
    let err = credential(&broker, "not-the-secret").token(OPENAI).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    let http = reqwest::Client::new();
    let url = format!("{}/msi/token?api-version=2019-08-01&resource={OPENAI}", broker.url);
    for header in [None, Some(""), Some("broker-test-identity-headeR"), Some("x")] {
        let mut request = http.get(&url);
        if let Some(value) = header {
            request = request.header("X-IDENTITY-HEADER", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "header {header:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["statusCode"], 401);
        assert!(body["message"].as_str().unwrap().contains("X-IDENTITY-HEADER"), "{body}");
    }
    // The right header, but not the App Service request shape.
    for (query, why) in [("resource=x", "api-version"), ("api-version=2019-08-01", "resource")] {
        let response = http
            .get(format!("{}/msi/token?{query}", broker.url))
            .header("X-IDENTITY-HEADER", HEADER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains(why));
    }
    assert!(broker.calls().is_empty(), "no refused request reaches the CLIs");
    broker.stop();
}

#[tokio::test]
async fn a_sign_in_failure_is_reported_with_what_to_do() {
    let broker = start_with(&[("BROKER_ALLOWED_RESOURCES", "api://no-access")]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/msi/token?api-version=2019-08-01&resource=api://no-access", broker.url))
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("az login") && message.contains("azd auth login"), "{message}");
    broker.stop();
}

#[tokio::test]
async fn the_broker_will_not_start_without_a_header_secret() {
    let dir = tempfile::tempdir().unwrap();
    let output = command(dir.path(), &dir.path().join("calls.log"))
        .env("BROKER_ADDR", format!("127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BROKER_IDENTITY_HEADER"), "{stderr}");
}

/// A raw `/msi/token` request for `resource`, as App Service's endpoint takes it.
async fn ask(broker: &Broker, resource: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/msi/token", broker.url))
        .query(&[("api-version", "2019-08-01"), ("resource", resource)])
        .header("X-IDENTITY-HEADER", HEADER)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn only_the_resources_the_stack_needs_are_issued_and_each_issuance_is_logged() {
    let broker = start_with(&[("BROKER_ALLOWED_RESOURCES", "https://vault.azure.net")]).await;

    // The developer's ARM and Graph tokens are not handed to whoever holds the header secret.
    // App Service answers a resource it cannot issue for with 400 and `{statusCode, message}`.
    for resource in [
        "https://management.azure.com",
        "https://graph.microsoft.com/.default",
        "https://cognitiveservices.azure.com.evil.example",
    ] {
        let response = ask(&broker, resource).await;
        assert_eq!(response.status(), 400, "{resource}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["statusCode"], 400);
        assert!(body["message"].as_str().unwrap().contains("BROKER_ALLOWED_RESOURCES"), "{body}");
    }
    let err = credential(&broker, HEADER).token("https://management.azure.com/.default").await.unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    assert!(broker.calls().is_empty(), "a refused resource never reaches the CLIs: {:#?}", broker.calls());

    // Azure OpenAI in every form azure-identity and others send it, and the listed extra.
    for resource in [OPENAI, "https://cognitiveservices.azure.com/", "https://cognitiveservices.azure.com/.default"] {
        assert_eq!(ask(&broker, resource).await.status(), 200, "{resource}");
    }
    let vault = credential(&broker, HEADER).token("https://vault.azure.net/.default").await.unwrap();
    assert!(vault.secret().starts_with("fake-az-token-"));

    let output = broker.stop();
    let issued: Vec<&str> = output.lines().filter(|l| l.contains("issued the developer's token")).collect();
    assert_eq!(issued.len(), 4, "one line per issuance:\n{output}");
    assert!(issued.iter().all(|l| l.contains("127.0.0.1:")), "with the caller's address:\n{output}");
    assert!(issued[3].contains("https://vault.azure.net"), "and the resource:\n{output}");
    assert!(output.contains("https://management.azure.com"), "refusals are logged too:\n{output}");
    assert!(!output.contains("fake-az-token"), "never the token:\n{output}");
}
