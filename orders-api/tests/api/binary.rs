//! The `orders-api` binary itself: usage, configuration errors, `--reset`, start-up failures
//! on a corrupt or read-only database, readiness when the file turns read-only, and the
//! warning logged when passthrough tokens are allowed.
//!
//! Read-only files need a process that cannot write them; root can write anything, so when
//! the tests run as root the binary is started as `nobody` (uid 65534) on files it owns.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use entra_manifest::REPOSITORY_MANIFEST;
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};

use crate::helpers::{ALL_SCOPES, spawn_app, spawn_idp};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

pub fn orders_api(authority: &str, database: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orders-api"));
    command
        .env_clear()
        .env("IDENTITY_MANIFEST", REPOSITORY_MANIFEST)
        .env("ENTRA_AUTHORITY", authority)
        .env("ORDERS_API_DATABASE", database)
        .env("ORDERS_API_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs the command as a user that cannot write root's files, when we are root.
fn unprivileged(command: &mut Command, dir: &Path) {
    if is_root() {
        std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            std::os::unix::fs::chown(entry.unwrap().path(), Some(NOBODY), Some(NOBODY)).unwrap();
        }
        command.uid(NOBODY).gid(NOBODY);
    }
}

pub struct Running {
    child: Child,
    pub address: String,
    log: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl Running {
    /// Stops the process and returns its whole log.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader thread ends at end of file, which closes the channel.
        let mut log = std::mem::take(&mut self.log);
        log.extend(self.lines.iter());
        log
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary, its log read line by line as it comes.
pub fn start(mut command: Command) -> Running {
    // Owned by `Running` from the start, so the child is killed and reaped whatever happens.
    let (tx, lines) = mpsc::channel();
    let mut running = Running { child: command.spawn().unwrap(), address: String::new(), log: Vec::new(), lines };
    let stderr = running.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    running
}

impl Running {
    /// Waits (30 s at most) for the first log line that `ready` reads something from, and
    /// returns what it read.
    pub fn wait_for<T>(&mut self, ready: impl Fn(&str) -> Option<T>) -> T {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no ready line: {:#?}", self.log));
            let found = ready(&line);
            self.log.push(line);
            if let Some(found) = found {
                return found;
            }
        }
    }
}

/// Starts the binary and waits for its "ready" log line, which names the bound address.
pub fn serve(command: Command) -> Running {
    let mut running = start(command);
    let entry = running.wait_for(|line| {
        serde_json::from_str::<Value>(line).ok().filter(|entry| entry["message"] == "orders-api ready")
    });
    running.address = format!("http://{}", entry["addr"].as_str().unwrap());
    running
}

#[test]
fn help_prints_usage_and_bad_arguments_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_orders-api")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let usage = String::from_utf8(output.stdout).unwrap();
    assert!(usage.contains("--reset") && usage.contains("ORDERS_API_DATABASE"), "{usage}");

    let output = Command::new(env!("CARGO_BIN_EXE_orders-api")).arg("--frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("unexpected argument"));
}

#[test]
fn invalid_settings_are_all_reported_and_the_process_exits() {
    let dir = tempfile::tempdir().unwrap();
    let output = orders_api("http://127.0.0.1:9", &dir.path().join("orders.db"))
        .env("ORDERS_API_ADDR", "everywhere")
        .env("ORDERS_API_PUBLIC_URL", "not a url")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("ORDERS_API_ADDR") && stderr.contains("ORDERS_API_PUBLIC_URL"), "{stderr}");
    assert!(!dir.path().join("orders.db").exists(), "nothing is created with bad settings");
}

#[tokio::test]
async fn reset_drops_every_order_and_seeds_again() {
    let app = spawn_app().await;
    let alice = app.token("alice", ALL_SCOPES);
    let carol = app.token("carol", ALL_SCOPES);
    for _ in 0..3 {
        assert_eq!(app.create(&alice, &json!({ "product": "Extra", "quantity": 1 })).await.status(), 201);
    }
    assert_eq!(app.delete("ORD-001", &carol).await.status(), 204);
    let authority = app.idp.url();
    let (idp, dir, settings) = app.stop().await;

    let output = orders_api(&authority, &settings.database).arg("--reset").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8(output.stdout).unwrap().contains("8 demo orders seeded"));

    let app = crate::helpers::start(idp, dir, settings).await;
    let carol = app.token("carol", ALL_SCOPES);
    let orders = app.list_all(&carol, "").await;
    let ids: Vec<_> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ORD-001", "ORD-002", "ORD-003", "ORD-004", "ORD-005", "ORD-006", "ORD-007", "ORD-008"]);
    // The idempotency keys went too: a key used before the reset creates a fresh order.
    let response = app
        .request(reqwest::Method::POST, "/api/orders", &app.token("alice", ALL_SCOPES))
        .header("idempotency-key", "after-reset")
        .json(&json!({ "product": "New", "quantity": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["id"], "ORD-009");
}

#[test]
fn a_corrupt_database_stops_the_binary_with_a_message_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    std::fs::write(&path, vec![0xa5u8; 16 * 1024]).unwrap();
    let output = orders_api("http://127.0.0.1:9", &path).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected = format!("the order database {} is corrupt or not a SQLite database", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `/readyz` checks the file through SQLite only. It used to open the file itself to see whether
/// it was writable, and closing that descriptor released every POSIX lock the process held on
/// the file, its connections' too ("How To Corrupt An SQLite Database File", §2.2): the next
/// other process to close a connection (`sqlite3` in a terminal, a `--reset`) then believed it
/// was the last, checkpointed and deleted the WAL the running service was still writing to.
#[tokio::test]
async fn readyz_leaves_the_services_locks_alone() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    let running = serve(orders_api(&idp.url(), &path));
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(client.get(format!("{}/readyz", running.address)).send().await.unwrap().status(), 200);
    }
    // Another process's connection, read-write, opened and closed.
    let mut other = sqlx::sqlite::SqliteConnectOptions::new().filename(&path).connect().await.unwrap();
    sqlx::query("SELECT count(*) FROM orders").fetch_one(&mut other).await.unwrap();
    other.close().await.unwrap();
    let wal = dir.path().join("orders.db-wal");
    assert!(wal.exists(), "the running service's WAL was checkpointed and deleted under it");
    drop(running);
}

#[tokio::test]
async fn a_read_only_database_stops_the_binary_and_turns_readyz_not_ready_while_running() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");

    // First run creates the database, then serves; the file then becomes read-only under it.
    let mut command = orders_api(&idp.url(), &path);
    unprivileged(&mut command, dir.path());
    let running = serve(command);
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/readyz", running.address)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let response = client.get(format!("{}/readyz", running.address)).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:orders-copilot:problem:not-ready");
    assert!(problem["detail"].as_str().unwrap().contains("not writable"), "{problem}");
    drop(running);

    // A start on the read-only file fails, naming it.
    let mut command = orders_api(&idp.url(), &path);
    unprivileged(&mut command, dir.path());
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let expected = format!("the order database {} is read-only", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[tokio::test]
async fn allowing_the_passthrough_audience_logs_a_warning_at_start() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let mcp = idp.handle().manifest().app("orders-mcp").unwrap().client_id.clone();
    let mut command = orders_api(&idp.url(), &dir.path().join("orders.db"));
    command.env("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE", &mcp);
    let running = serve(command);
    let warning = running
        .log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| entry["level"] == "WARN")
        .unwrap_or_else(|| panic!("no warning in {:#?}", running.log));
    assert!(warning["message"].as_str().unwrap().contains("ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE"), "{warning}");
    assert_eq!(warning["audience"], mcp);

    // Without the setting: no warning.
    let dir = tempfile::tempdir().unwrap();
    let running = serve(orders_api(&idp.url(), &dir.path().join("orders.db")));
    assert!(running.log.iter().all(|line| !line.contains("\"WARN\"")), "{:#?}", running.log);
}

/// Readable logs (no `LOG_FORMAT`) written to a pipe or a file, as `cargo xtask up` and
/// process managers keep them, are plain text: terminal colour codes only reach a terminal.
#[tokio::test]
async fn logs_to_a_pipe_carry_no_terminal_colour_codes() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = orders_api(&idp.url(), &dir.path().join("orders.db"));
    command.env_remove("LOG_FORMAT");
    let mut running = start(command);
    let ready = running.wait_for(|line| line.contains("orders-api ready").then(|| line.to_owned()));
    let log = running.stop();
    assert!(ready.contains("addr="), "fields are written plainly: {ready}");
    assert!(log.iter().all(|line| !line.contains('\u{1b}')), "an escape code in {log:#?}");
}

#[tokio::test]
async fn no_token_reaches_the_log_even_at_trace_level() {
    let idp = spawn_idp().await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = orders_api(&idp.url(), &dir.path().join("orders.db"));
    command.env("RUST_LOG", "trace");
    let running = serve(command);
    let valid = idp.handle().user_token("alice", "orders-mcp", "orders-api", ALL_SCOPES).unwrap();
    let wrong_audience = idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", running.address);
    let requests = [
        client.get(url("/api/orders/ORD-001")).bearer_auth(&valid),
        client.get(url("/api/orders/ORD-006")).bearer_auth(&valid),
        client.post(url("/api/orders")).bearer_auth(&valid).json(&json!({ "product": "", "quantity": 0 })),
        client.get(url("/api/orders")).bearer_auth(&wrong_audience),
        client.get(url(&format!("/api/orders?access_token={valid}"))),
        client.get(url(&format!("/api/orders?cursor={valid}"))).bearer_auth(&valid),
        client.delete(url("/api/orders/ORD-001")).bearer_auth(&valid),
    ];
    for request in requests {
        let status = request.send().await.unwrap().status();
        assert!(status.as_u16() < 500, "{status}");
    }
    let log = running.stop().join("\n");
    assert!(log.contains("request"), "the trace log is not empty: {log}");
    for token in [&valid, &wrong_audience] {
        // Not the token, nor its signature, nor its payload.
        for secret in std::iter::once(token.as_str()).chain(token.split('.').skip(1)) {
            assert!(!log.contains(secret), "a token (or part of one) is in the log");
        }
    }
}

#[tokio::test]
async fn healthcheck_exits_zero_only_when_the_service_answers() {
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_string();
    let probe = |addr: String| {
        Command::new(env!("CARGO_BIN_EXE_orders-api"))
            .arg("healthcheck")
            .env_clear()
            .env("ORDERS_API_ADDR", addr)
            .output()
            .unwrap()
    };
    let healthy = tokio::task::spawn_blocking(move || probe(addr)).await.unwrap();
    assert!(healthy.status.success(), "{}", String::from_utf8_lossy(&healthy.stderr));
    // Nothing listens on port 9 (discard) here: the probe fails, naming why.
    let down = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_orders-api"))
            .arg("healthcheck")
            .env_clear()
            .env("ORDERS_API_ADDR", "127.0.0.1:9")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("unhealthy"));
}
