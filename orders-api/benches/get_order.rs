//! `GET /api/orders/{id}` with token validation: throughput and latency at concurrency 1 and
//! 16, and the resident memory of the real `orders-api` binary, idle and under that load.
//!
//! Run: `cargo bench -p orders-api --bench get_order` (BENCH_SECONDS per row, default 5).
//! The binary runs as a child process (so its RSS is its own); the emulator and the load
//! generator run in this process, on the same machine, which the client-side numbers include.
//! The "in-service" columns are the service's own `elapsed_ms` from its hop record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entra_auth::hop::{HOP_HEADER, Hop};
use entra_emulator::EmulatorConfig;

// The load generator shares the two cores with the services: the services' allocator keeps its
// share of the CPU small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PATH: &str = "/api/orders/ORD-001";

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and waits for its "ready" log line, which names the bound address.
fn start_server(authority: &str, database: &std::path::Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_orders-api"))
        .env_clear()
        .env("IDENTITY_MANIFEST", entra_manifest::REPOSITORY_MANIFEST)
        .env("ENTRA_AUTHORITY", authority)
        .env("ORDERS_API_DATABASE", database)
        .env("ORDERS_API_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,orders_api=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orders-api starts");
    let mut server = Server { child, address: String::new() };
    let stderr = server.child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("orders-api logs that it is ready");
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == "orders-api ready" {
            server.address = format!("http://{}", entry["addr"].as_str().unwrap());
            return server;
        }
    }
}

/// VmRSS and VmHWM of a process, in MB (10^6 bytes: the unit of the 30 MB target).
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() * 1024.0 / 1e6
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The q-quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

struct Row {
    concurrency: usize,
    requests: usize,
    throughput: f64,
    p50: f64,
    p99: f64,
    max: f64,
    in_service_p50: f64,
    in_service_p99: f64,
}

async fn run(client: &reqwest::Client, url: &str, token: &str, concurrency: usize, duration: Duration) -> Row {
    let url: Arc<str> = Arc::from(url);
    let token: Arc<str> = Arc::from(token);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut in_service) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&*url).bearer_auth(&*token).send().await.unwrap();
                assert_eq!(response.status(), 200);
                let hop = response.headers().get(HOP_HEADER).and_then(|v| Hop::from_header_value(v.to_str().ok()?));
                response.bytes().await.unwrap();
                latencies.push(ms(sent.elapsed()));
                in_service.push(hop.expect("a hop record").elapsed_ms);
            }
            (latencies, in_service)
        }));
    }
    let (mut all, mut in_service) = (Vec::new(), Vec::new());
    for task in tasks {
        let (latencies, service) = task.await.unwrap();
        all.extend(latencies);
        in_service.extend(service);
    }
    let elapsed = started.elapsed();
    all.sort_by(f64::total_cmp);
    in_service.sort_by(f64::total_cmp);
    Row {
        concurrency,
        requests: all.len(),
        throughput: all.len() as f64 / elapsed.as_secs_f64(),
        p50: quantile(&all, 0.50),
        p99: quantile(&all, 0.99),
        max: quantile(&all, 1.0),
        in_service_p50: quantile(&in_service, 0.50),
        in_service_p99: quantile(&in_service, 0.99),
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes harness flags such as `--bench`; there is nothing to filter here.
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let idp = entra_emulator::Application::build(EmulatorConfig::from_repository().unwrap()).await.unwrap().spawn();
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&idp.url(), &dir.path().join("orders.db"));
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = memory(pid);

    let token =
        idp.handle().user_token("alice", "orders-mcp", "orders-api", &["Orders.Read", "Orders.ReadWrite"]).unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let url = format!("{}{PATH}", server.address);
    // Warm-up: the first request fetches the signing keys; then connections and caches settle.
    run(&client, &url, &token, 16, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (warm_rss, _) = memory(pid);

    let load_before = load_average();
    let mut rows = Vec::new();
    for concurrency in [1, 16] {
        rows.push(run(&client, &url, &token, concurrency, Duration::from_secs(seconds)).await);
    }
    let (loaded_rss, peak_rss) = memory(pid);

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!();
    println!("orders-api  GET {PATH}  (RS256 token validated on every request; {seconds} s per row)");
    println!("machine: {cpus} CPUs, load average before the runs: {load_before}");
    println!(
        "{:>11} {:>9} {:>13} {:>8} {:>8} {:>8} {:>15} {:>15}",
        "concurrency", "requests", "throughput/s", "p50 ms", "p99 ms", "max ms", "in-service p50", "in-service p99"
    );
    for r in &rows {
        println!(
            "{:>11} {:>9} {:>13.0} {:>8.3} {:>8.3} {:>8.3} {:>15.3} {:>15.3}",
            r.concurrency, r.requests, r.throughput, r.p50, r.p99, r.max, r.in_service_p50, r.in_service_p99
        );
    }
    println!();
    println!("RSS of the orders-api process (MB):");
    println!("  idle after start   {idle_rss:>7.1}");
    println!("  idle after warm-up {warm_rss:>7.1}");
    println!("  after the load     {loaded_rss:>7.1}");
    println!("  peak (VmHWM)       {peak_rss:>7.1}");
    println!();
    let p99_16 = rows.iter().find(|r| r.concurrency == 16).map_or(f64::NAN, |r| r.p99);
    println!(
        "targets: p99 <= 2 ms at concurrency 16: {} ({p99_16:.3} ms); RSS <= 30 MB idle: {} ({idle_rss:.1} MB)",
        if p99_16 <= 2.0 { "met" } else { "MISSED" },
        if idle_rss <= 30.0 { "met" } else { "MISSED" },
    );

    // For `cargo xtask bench`, which gathers every benchmark's results into one table.
    if let Ok(dir) = std::env::var("BENCH_RESULTS_DIR") {
        let row = |metric: String, value: f64, unit: &str, target: Option<f64>, lower_is_better: bool| {
            serde_json::json!({ "metric": metric, "value": value, "unit": unit, "target": target,
                                "lower_is_better": lower_is_better })
        };
        let mut results = Vec::new();
        for r in &rows {
            let at = format!("GET /api/orders/{{id}}, concurrency {}", r.concurrency);
            let p99_target = (r.concurrency == 16).then_some(2.0);
            results.push(row(format!("orders-api {at}: throughput"), r.throughput, "req/s", None, false));
            results.push(row(format!("orders-api {at}: p50"), r.p50, "ms", None, true));
            results.push(row(format!("orders-api {at}: p99"), r.p99, "ms", p99_target, true));
        }
        results.push(row("orders-api RSS idle".into(), idle_rss, "MB", Some(30.0), true));
        results.push(row("orders-api RSS under load (peak)".into(), peak_rss, "MB", None, true));
        let path = std::path::Path::new(&dir).join("orders-api.json");
        std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
        println!("results written to {}", path.display());
    }
}
