//! The full path, measured: `tools/call get_order` through orders-mcp (token validation, cached
//! On-Behalf-Of token) to orders-api (token validation, SQLite) and back.
//!
//! orders-mcp and orders-api run as the real release binaries in child processes, so their
//! memory can be read from `/proc/<pid>/status`; the Entra emulator runs in this process (it is
//! only asked for keys and one exchange, during warm-up). Each concurrency level sends requests
//! back to back from that many tasks for `BENCH_SECONDS` (default 5) and prints throughput and
//! latency percentiles, and the CPU time each process spent per request (orders-api,
//! orders-mcp, and this process: the load generator and the emulator), since they share the
//! machine's cores.
//!
//! Run: `cargo bench -p orders-mcp --bench full_path` (it has cargo build the orders-api release
//! binary into the same target directory first). With `BENCH_RESULTS_DIR` set (as `cargo xtask
//! bench` does) the results are also written to `<dir>/orders-mcp-full-path.json`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use entra_emulator::EmulatorConfig;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

// The load generator shares the two cores with the services: the services' allocator keeps its
// share of the CPU small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDENTITY_HEADER: &str = "bench-header";
const LEVELS: [usize; 3] = [1, 16, 64];

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

/// A child process killed when dropped.
struct Service {
    name: &'static str,
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) used so far by process `pid`, from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("reading /proc/<pid>/stat (Linux only)")?;
    // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').context("malformed stat")?.1.split_whitespace().collect();
    let ticks =
        fields.get(11).context("no utime")?.parse::<u64>()? + fields.get(12).context("no stime")?.parse::<u64>()?;
    // USER_HZ is 100 on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

impl Service {
    fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_time(&self.child.id().to_string())
    }

    /// `VmRSS` and `VmHWM` (peak) in MB (10^6 bytes, the unit of the 30 MB target).
    fn memory(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("reading /proc/<pid>/status (Linux only)")?;
        let field = |name: &str| -> anyhow::Result<f64> {
            let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name}"))?;
            let kib: f64 = line.split_whitespace().nth(1).context("no value")?.parse()?;
            Ok(kib * 1024.0 / 1e6)
        };
        Ok((field("VmRSS:")?, field("VmHWM:")?))
    }
}

async fn run() -> anyhow::Result<()> {
    let manifest = entra_manifest::REPOSITORY_MANIFEST;
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let orders_api_bin = orders_api_binary()?;
    let orders_mcp_bin = PathBuf::from(env!("CARGO_BIN_EXE_orders-mcp"));

    let idp = entra_emulator::Application::build(EmulatorConfig {
        identity_header: Some(IDENTITY_HEADER.into()),
        ..EmulatorConfig::from_repository()?
    })
    .await?
    .spawn();
    let data = tempfile::tempdir()?;
    let (api_addr, mcp_addr) = (free_port()?, free_port()?);

    let api = Service {
        name: "orders-api",
        child: Command::new(&orders_api_bin)
            .env("IDENTITY_MANIFEST", manifest)
            .env("ENTRA_AUTHORITY", idp.url())
            .env("ORDERS_API_ADDR", api_addr.to_string())
            .env("ORDERS_API_DATABASE", data.path().join("orders.db"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", orders_api_bin.display()))?,
    };
    let mcp = Service {
        name: "orders-mcp",
        child: Command::new(&orders_mcp_bin)
            .env("IDENTITY_MANIFEST", manifest)
            .env("ENTRA_AUTHORITY", idp.url())
            .env("ORDERS_MCP_ADDR", mcp_addr.to_string())
            .env("ORDERS_MCP_PUBLIC_URL", format!("http://{mcp_addr}"))
            .env("ORDERS_API_URL", format!("http://{api_addr}"))
            .env("IDENTITY_ENDPOINT", format!("{}/msi/token", idp.url()))
            .env("IDENTITY_HEADER", IDENTITY_HEADER)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", orders_mcp_bin.display()))?,
    };
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("http://{api_addr}/readyz")).await?;
    wait_ready(&http, &format!("http://{mcp_addr}/readyz")).await?;
    let idle = [(api.name, api.memory()?), (mcp.name, mcp.memory()?)];

    let token = Arc::new(idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"])?);
    let url = Arc::new(format!("http://{mcp_addr}/mcp"));
    // Warm-up: keys fetched by both services, alice's On-Behalf-Of token cached.
    let client = LoadClient::new();
    let warm = load(&client, &url, &token, 16, Duration::from_secs(1)).await?;
    let exchanges = idp.handle().stats().on_behalf_of;

    println!("\nfull path: tools/call get_order -> orders-mcp -> orders-api -> SQLite (warm OBO cache)");
    println!("{} s per level; warm-up {} requests\n", seconds, warm.latencies.len());
    println!(
        "{:>11} {:>9} {:>8} {:>7} {:>7} {:>7} {:>6}   CPU µs per request: orders-api orders-mcp load+IdP",
        "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut results = Vec::new();
    let mut p99_at_16 = f64::NAN;
    for concurrency in LEVELS {
        let before = (api.cpu()?, mcp.cpu()?, cpu_time("self")?);
        let mut run = load(&client, &url, &token, concurrency, Duration::from_secs(seconds)).await?;
        let after = (api.cpu()?, mcp.cpu()?, cpu_time("self")?);
        run.latencies.sort();
        let count = run.latencies.len() as f64;
        let per_request = |a: Duration, b: Duration| (b - a).as_micros() as f64 / count;
        let p =
            |q: f64| run.latencies[((run.latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "{:>11} {:>9} {:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>6}   {:>29.0} {:>10.0} {:>8.0}",
            concurrency,
            run.latencies.len(),
            run.latencies.len() as f64 / run.elapsed.as_secs_f64(),
            p(0.50),
            p(0.99),
            p(1.0),
            run.errors,
            per_request(before.0, after.0),
            per_request(before.1, after.1),
            per_request(before.2, after.2),
        );
        let at = format!("full path tools/call get_order, concurrency {concurrency}");
        let throughput = count / run.elapsed.as_secs_f64();
        if concurrency == 16 {
            p99_at_16 = p(0.99);
        }
        results.push(row(format!("{at}: throughput"), throughput, "req/s", None, false));
        results.push(row(format!("{at}: p50"), p(0.50), "ms", None, true));
        results.push(row(format!("{at}: p99"), p(0.99), "ms", (concurrency == 16).then_some(P99_TARGET_MS), true));
        results.push(row(
            format!("{at}: orders-mcp CPU per request"),
            per_request(before.1, after.1),
            "µs",
            None,
            true,
        ));
    }
    let exchanges_during_runs = idp.handle().stats().on_behalf_of - exchanges;
    println!("\nOn-Behalf-Of exchanges: {exchanges} during warm-up, {exchanges_during_runs} during the measured runs");
    println!("\n{:>11} {:>13} {:>17} {:>13}", "service", "idle RSS MB", "after-load RSS MB", "peak RSS MB");
    let mut verdicts = vec![verdict("p99 at concurrency 16", p99_at_16, P99_TARGET_MS, "ms")];
    for ((name, (idle_rss, _)), service) in idle.iter().zip([&api, &mcp]) {
        let (rss, peak) = service.memory()?;
        println!("{name:>11} {idle_rss:>13.1} {rss:>17.1} {peak:>13.1}");
        verdicts.push(verdict(&format!("{name} idle RSS"), *idle_rss, RSS_TARGET_MB, "MB"));
        results.push(row(format!("{name} RSS idle (full-path bench)"), *idle_rss, "MB", Some(RSS_TARGET_MB), true));
        results.push(row(format!("{name} RSS under full-path load (peak)"), peak, "MB", None, true));
    }
    println!("\ntargets: {}", verdicts.join("; "));

    // For `cargo xtask bench`, which gathers every benchmark's results into one table.
    if let Ok(dir) = std::env::var("BENCH_RESULTS_DIR") {
        let path = Path::new(&dir).join("orders-mcp-full-path.json");
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

const P99_TARGET_MS: f64 = 5.0;
const RSS_TARGET_MB: f64 = 30.0;

/// A row of `cargo xtask bench`'s results table.
fn row(metric: String, value: f64, unit: &str, target: Option<f64>, lower_is_better: bool) -> serde_json::Value {
    serde_json::json!({ "metric": metric, "value": value, "unit": unit, "target": target, "lower_is_better": lower_is_better })
}

fn verdict(what: &str, value: f64, target: f64, unit: &str) -> String {
    let met = if value <= target { "met" } else { "MISSED" };
    format!("{what} <= {target} {unit}: {met} ({value:.2} {unit})")
}

struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

/// The load generator's HTTP client: hyper's pooled HTTP/1 client without reqwest's conveniences
/// (redirects, URL parsing, per-request timeouts), since every microsecond it spends is taken
/// from the services it measures.
#[derive(Clone)]
struct LoadClient(Client<HttpConnector, String>);

impl LoadClient {
    fn new() -> LoadClient {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        LoadClient(Client::builder(TokioExecutor::new()).pool_max_idle_per_host(128).build(connector))
    }

    /// POSTs one JSON-RPC message; whether the answer is a successful tool result.
    async fn call(&self, url: &str, token: &str, body: String) -> anyhow::Result<bool> {
        let request = http::Request::post(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)?;
        let response = self.0.request(request).await?;
        if !response.status().is_success() {
            return Ok(false);
        }
        let body = response.into_body().collect().await?.to_bytes();
        Ok(std::str::from_utf8(&body).is_ok_and(|t| t.contains("\"isError\":false")))
    }
}

/// `concurrency` tasks sending `tools/call get_order` back to back for `duration`.
async fn load(
    http: &LoadClient,
    url: &Arc<String>,
    token: &Arc<String>,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Run> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                let mut n: u64 = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let body = format!(
                        r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"get_order","arguments":{{"id":"ORD-00{}"}}}}}}"#,
                        [1, 2, 4, 7][(task + n as usize) % 4]
                    );
                    let sent = Instant::now();
                    let ok = http.call(&url, &token, body).await.unwrap_or(false);
                    latencies.push(sent.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut run = Run { latencies: Vec::new(), errors: 0, elapsed: Duration::ZERO };
    for task in tasks {
        let (latencies, errors) = task.await?;
        run.latencies.extend(latencies);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    if run.latencies.is_empty() {
        bail!("no request completed");
    }
    Ok(run)
}

async fn wait_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// orders-api's release binary in this bench's target directory, built (or found up to date)
/// by cargo first.
fn orders_api_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/full_path-<hash> -> target/<profile>/orders-api
    let dir = exe.parent().and_then(Path::parent).context("unexpected bench location")?;
    let bin = dir.join("orders-api");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status =
        Command::new(cargo).args(["build", "--release", "-p", "orders-api", "--bin", "orders-api"]).status()?;
    if !status.success() || !bin.exists() {
        bail!("cannot build {}: run `cargo build --release -p orders-api` first", bin.display());
    }
    Ok(bin)
}
