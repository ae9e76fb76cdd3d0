//! Acceptance 5: the stdio bridge, spawned as a child process (the built binary), in front of the
//! real orders-mcp and orders-api, with a static token and with fake `az` and `azd` on PATH.

use std::path::Path;
use std::process::Stdio;

use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;
use tempfile::TempDir;
use tokio::process::Command;

use crate::helpers::{TestStack, call, is_error, structured, text};

/// An explicit `--resource` (a deployment whose Application ID URI is not its MCP URL).
const RESOURCE: &str = "api://orders-mcp-local";

/// A stand-in for the Azure CLI (or the Azure Developer CLI): records each call's arguments in
/// `calls`, fails with the text of `fail` if that file exists, else prints the token in
/// `token-<n>` for the n-th call (else `token`) the way the real CLI does.
const FAKE_CLI: &str = r#"#!/bin/sh
echo "$*" >> "$FAKE_AZ_DIR/calls"
n=$(wc -l < "$FAKE_AZ_DIR/calls" | tr -d ' ')
if [ -f "$FAKE_AZ_DIR/fail" ]; then cat "$FAKE_AZ_DIR/fail" >&2; exit 1; fi
if [ -f "$FAKE_AZ_DIR/token-$n" ]; then token=$(cat "$FAKE_AZ_DIR/token-$n"); else token=$(cat "$FAKE_AZ_DIR/token"); fi
now=$(date +%s)
"#;

/// `az account get-access-token --output json`: `expires_on` is `FAKE_AZ_LIFETIME` seconds ahead.
const AZ_OUTPUT: &str = r#"printf '{"accessToken": "%s", "expiresOn": "2030-01-01 00:00:00.000000", "expires_on": %d, "tokenType": "Bearer"}\n' "$token" $((now + FAKE_AZ_LIFETIME))"#;

/// `azd auth token --output json`: only an RFC 3339 `expiresOn`, so the token's own `exp` counts.
const AZD_OUTPUT: &str = r#"printf '{"token": "%s", "expiresOn": "2030-01-01T00:00:00Z"}\n' "$token""#;

struct FakeCli {
    dir: TempDir,
}

impl FakeCli {
    fn new(token: &str) -> FakeCli {
        FakeCli::cli("az", AZ_OUTPUT, token)
    }

    fn azd(token: &str) -> FakeCli {
        FakeCli::cli("azd", AZD_OUTPUT, token)
    }

    fn cli(name: &str, output: &str, token: &str) -> FakeCli {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join(name);
        std::fs::write(&script, format!("{FAKE_CLI}{output}\n")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(dir.path().join("token"), token).unwrap();
        FakeCli { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The argument lists `az` was called with, one per call.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path().join("calls")).unwrap_or_default().lines().map(String::from).collect()
    }

    fn configure(&self, cmd: &mut Command, lifetime_secs: u64) {
        let path = format!("{}:{}", self.path().display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("PATH", path).env("FAKE_AZ_DIR", self.path()).env("FAKE_AZ_LIFETIME", lifetime_secs.to_string());
    }
}

fn bridge(stack: &TestStack, args: &[&str]) -> Command {
    Command::new(env!("CARGO_BIN_EXE_orders-mcp")).configure(|cmd| {
        cmd.args(["bridge", "--url", &stack.mcp_url])
            .args(args)
            .env("RUST_LOG", "info")
            .env_remove("ORDERS_MCP_BRIDGE_TOKEN");
    })
}

async fn connect(command: Command) -> RunningService<RoleClient, ()> {
    let (transport, _stderr) = TokioChildProcess::builder(command).stderr(Stdio::inherit()).spawn().unwrap();
    ().serve(transport).await.unwrap()
}

/// A token as `az` would get it for alice: the Azure CLI is a pre-authorized client of orders-mcp.
fn cli_token(stack: &TestStack, user: &str) -> String {
    stack.emulator.user_token(user, "azure-cli", "orders-mcp", &["access_as_user"]).unwrap()
}

#[tokio::test]
async fn with_a_static_token_the_bridge_lists_and_calls_tools() {
    let stack = TestStack::spawn().await;
    let command =
        bridge(&stack, &["--token-source", "static", "--token-env", "TEST_BRIDGE_TOKEN", "--header", "x-demo: bridge"])
            .configure(|cmd| {
                cmd.env("TEST_BRIDGE_TOKEN", cli_token(&stack, "alice"));
            });
    let client = connect(command).await;

    let mut names: Vec<String> =
        client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["cancel_order", "create_order", "get_order", "list_orders", "whoami"]);

    let me = structured(&call(&client, "whoami", json!({})).await);
    assert_eq!(me["oid"], stack.user_oid("alice"));
    assert_eq!(me["client_id"], stack.client_id("azure-cli"), "the bridge's token, from the Azure CLI's client");
    let page = structured(&call(&client, "list_orders", json!({})).await);
    assert!(page["orders"].as_array().unwrap().iter().all(|o| o["owner_oid"] == stack.user_oid("alice")));
    let created = structured(&call(&client, "create_order", json!({"product": "Headset", "quantity": 1})).await);
    let cancelled = structured(&call(&client, "cancel_order", json!({"id": created["id"]})).await);
    assert_eq!(cancelled["status"], "cancelled");
    // Tool errors pass through as tool errors.
    let bobs = call(&client, "get_order", json!({"id": "ORD-003"})).await;
    assert!(is_error(&bobs) && text(&bobs).contains("no order ORD-003 was found"), "{}", text(&bobs));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn with_az_the_token_is_fetched_again_before_it_expires() {
    let stack = TestStack::spawn().await;
    let az = FakeCli::new(&cli_token(&stack, "alice"));
    // az says each token lives 4 s; the bridge refreshes 2 s before expiry.
    let command = bridge(&stack, &["--refresh-margin", "2"]).configure(|cmd| az.configure(cmd, 4));
    let client = connect(command).await;
    assert_eq!(client.list_all_tools().await.unwrap().len(), 5);
    let before = az.calls().len();
    assert!(before >= 1);
    // No --resource: the token is for the MCP URL, orders-mcp's Application ID URI.
    assert_eq!(az.calls()[0], format!("account get-access-token --resource {} --output json", stack.mcp_url));

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let me = structured(&call(&client, "whoami", json!({})).await);
    assert_eq!(me["oid"], stack.user_oid("alice"));
    assert_eq!(az.calls().len(), before + 1, "one new token, fetched because the old one was 2 s from expiry");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn with_azd_the_bridge_asks_for_a_scope_and_reads_the_expiry_from_the_token() {
    let stack = TestStack::spawn().await;
    let azd = FakeCli::azd(&cli_token(&stack, "carol"));
    let command = bridge(&stack, &["--token-source", "azd", "--tenant", "contoso.example", "--resource", RESOURCE])
        .configure(|cmd| azd.configure(cmd, 0));
    let client = connect(command).await;
    let page = structured(&call(&client, "list_orders", json!({"limit": 100})).await);
    assert!(page["orders"].as_array().unwrap().len() >= 8, "carol is an admin: {page}");
    assert_eq!(
        azd.calls(),
        [format!("auth token --scope {RESOURCE}/.default --output json --tenant-id contoso.example")],
        "one token: it is valid for an hour"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_token_the_server_refuses_is_replaced_once() {
    let stack = TestStack::spawn().await;
    let az = FakeCli::new(&cli_token(&stack, "bob"));
    // The first token az hands out is for another resource (what a mistyped --resource gives).
    let wrong = stack.emulator.user_token("bob", "azure-cli", "orders-api", &["Orders.Read"]).unwrap();
    std::fs::write(az.path().join("token-1"), wrong).unwrap();
    let command = bridge(&stack, &[]).configure(|cmd| az.configure(cmd, 3600));
    let client = connect(command).await;
    let me = structured(&call(&client, "whoami", json!({})).await);
    assert_eq!(me["oid"], stack.user_oid("bob"));
    assert_eq!(az.calls().len(), 2, "the refused token was replaced, once");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn without_a_token_the_bridge_says_why_on_stderr_and_exits() {
    let stack = TestStack::spawn().await;
    let az = FakeCli::new("unused");
    std::fs::write(az.path().join("fail"), "ERROR: Please run 'az login' to setup account.").unwrap();
    let output =
        bridge(&stack, &[]).configure(|cmd| az.configure(cmd, 3600)).stdin(Stdio::null()).output().await.unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "stdout is for MCP only");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot get a token from the Azure CLI"), "{stderr}");
    assert!(stderr.contains("Please run 'az login'"), "{stderr}");

    // A static source with its variable unset says which variable.
    let output = bridge(&stack, &["--token-source", "static"]).stdin(Stdio::null()).output().await.unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ORDERS_MCP_BRIDGE_TOKEN is not set"));
}

#[tokio::test]
async fn a_request_the_server_does_not_answer_in_time_gets_an_error_and_the_bridge_carries_on() {
    let stack = TestStack::spawn().await;
    // An orders-api that accepts connections and never answers: orders-mcp waits (10 s), the
    // bridge gives up after 1 s.
    let black_hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp = stack.spawn_mcp(black_hole.local_addr().unwrap()).await;
    let url = format!("{}/mcp", mcp.url());
    let command = Command::new(env!("CARGO_BIN_EXE_orders-mcp")).configure(|cmd| {
        cmd.args(["bridge", "--url", &url, "--resource", RESOURCE, "--token-source", "static", "--timeout", "1"])
            .env("ORDERS_MCP_BRIDGE_TOKEN", cli_token(&stack, "alice"));
    });
    let client = connect(command).await;

    let started = std::time::Instant::now();
    let mut params = rmcp::model::CallToolRequestParams::new("list_orders");
    params = params.with_arguments(serde_json::Map::new());
    let err = client.call_tool(params).await.unwrap_err();
    assert!(err.to_string().contains("did not answer within 1 s"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    // The bridge is still usable.
    assert_eq!(structured(&call(&client, "whoami", json!({})).await)["oid"], stack.user_oid("alice"));
    client.cancel().await.unwrap();
}

/// Runs the bridge with a static token and one `initialize` on stdin; returns its output.
async fn bridge_once(url: &str, token: &str) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_orders-mcp"))
        .args(["bridge", "--url", url, "--token-source", "static", "--timeout", "5"])
        .env("ORDERS_MCP_BRIDGE_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let mut stdin = child.stdin.take().unwrap();
    // The bridge may exit before reading: a refused write is part of what is tested.
    let _ = stdin.write_all(format!("{initialize}\n").as_bytes()).await;
    drop(stdin);
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap()
}

/// RFC 9728 §3.3: a client MUST check that the metadata's `resource` is identical to the URL it
/// built the metadata URL from, and MUST NOT use the metadata otherwise. A server that names
/// another resource is not the one the token is for: the bridge exits without sending it.
#[tokio::test]
async fn a_server_whose_metadata_names_another_resource_never_sees_the_token() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            axum::routing::get(|| async {
                axum::Json(json!({"resource": "https://orders.contoso.example/mcp",
                    "authorization_servers": ["https://login.microsoftonline.com/t/v2.0"]}))
            }),
        )
        .fallback(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
                record.lock().unwrap().push(auth.to_string());
                axum::http::StatusCode::UNAUTHORIZED
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let output = bridge_once(&url, "secret-token-for-orders-mcp").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("names the resource \"https://orders.contoso.example/mcp\""), "{stderr}");
    assert!(seen.lock().unwrap().iter().all(|auth| auth.is_empty()), "a token was sent: {:?}", seen.lock().unwrap());
    assert!(output.stdout.is_empty(), "stdout is for MCP only");
}

/// A bearer token over plain http can be read on the way: only a loopback server may use http.
#[tokio::test]
async fn a_plain_http_server_off_this_machine_is_refused_before_any_token() {
    let output = bridge_once("http://orders.contoso.example/mcp", "secret-token-for-orders-mcp").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("is not https"), "{stderr}");
}
