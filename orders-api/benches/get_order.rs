//! `GET /api/orders/{id}` with token validation: throughput and latency at concurrency 1 and
//! 16, and the resident memory of the real `orders-api` binary, idle and under that load.
//!
//! Run: `cargo bench -p orders-api --bench get_order` (BENCH_SECONDS per row, default 5).
//! The binary runs as a child process (so its RSS is its own); the emulator and the load
//! generator run in this process, on the same machine, which the numbers include.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use entra_emulator::EmulatorConfig;

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

fn start_server(authority: &str, database: &std::path::Path) -> anyhow::Result<Server> {
    let manifest = format!("{}/../infra/app-registrations.toml", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_orders-api"))
        .env_clear()
        .env("IDENTITY_MANIFEST", manifest)
        .env("ENTRA_AUTHORITY", authority)
        .env("ORDERS_API_DATABASE", database)
        .env("ORDERS_API_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,orders_api=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30))?;
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if entry["message"] == "orders-api ready" {
            let addr = entry["addr"].as_str().ok_or_else(|| anyhow::anyhow!("no addr in {line}"))?;
            return Ok(Server { child, address: format!("http://{addr}") });
        }
    }
}

/// VmRSS and VmHWM of a process, in MiB.
fn memory(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status.lines().find(|l| l.starts_with(name)).ok_or_else(|| anyhow::anyhow!("no {name}"))?;
        let kib: f64 = line.split_whitespace().nth(1).ok_or_else(|| anyhow::anyhow!("bad {name}"))?.parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

struct Row {
    concurrency: usize,
    requests: usize,
    throughput: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

async fn run(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<Row> {
    let url: Arc<str> = Arc::from(url);
    let token: Arc<str> = Arc::from(token);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client.get(&*url).bearer_auth(&*token).send().await?;
                let status = response.status();
                response.bytes().await?;
                latencies.push(sent.elapsed());
                anyhow::ensure!(status == 200, "unexpected status {status}");
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    let elapsed = started.elapsed();
    all.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(all[((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1]);
    Ok(Row {
        concurrency,
        requests: all.len(),
        throughput: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        max: all.last().map_or(0.0, |d| ms(*d)),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes harness flags such as `--bench`; there is nothing to filter here.
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let idp = entra_emulator::spawn(EmulatorConfig::from_repository()?).await?;
    let dir = tempfile::tempdir()?;
    let server = start_server(&idp.url(), &dir.path().join("orders.db"))?;
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (idle_rss, _) = memory(pid)?;

    let token = idp.emulator.user_token("alice", "orders-mcp", "orders-api", &["Orders.Read", "Orders.ReadWrite"])?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let url = format!("{}{PATH}", server.address);
    // Warm-up: the first request fetches the signing keys; then connections and caches settle.
    run(&client, &url, &token, 16, Duration::from_secs(1)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (warm_rss, _) = memory(pid)?;

    let mut rows = Vec::new();
    for concurrency in [1, 16] {
        rows.push(run(&client, &url, &token, concurrency, Duration::from_secs(seconds)).await?);
    }
    let (loaded_rss, peak_rss) = memory(pid)?;

    println!();
    println!("orders-api  GET {PATH}  (RS256 token validated on every request; {seconds} s per row)");
    println!(
        "{:>11} {:>10} {:>14} {:>9} {:>9} {:>9}",
        "concurrency", "requests", "throughput/s", "p50 ms", "p99 ms", "max ms"
    );
    for r in &rows {
        println!(
            "{:>11} {:>10} {:>14.0} {:>9.3} {:>9.3} {:>9.3}",
            r.concurrency, r.requests, r.throughput, r.p50, r.p99, r.max
        );
    }
    println!();
    println!("RSS of the orders-api process (MiB):");
    println!("  idle after start   {idle_rss:>7.1}");
    println!("  idle after warm-up {warm_rss:>7.1}");
    println!("  after the load     {loaded_rss:>7.1}");
    println!("  peak (VmHWM)       {peak_rss:>7.1}");
    println!();
    let p99_16 = rows.iter().find(|r| r.concurrency == 16).map_or(f64::NAN, |r| r.p99);
    println!(
        "targets: p99 <= 2 ms at concurrency 16: {} ({p99_16:.3} ms); RSS <= 30 MB idle: {} ({idle_rss:.1} MiB)",
        if p99_16 <= 2.0 { "met" } else { "MISSED" },
        if idle_rss <= 30.0 { "met" } else { "MISSED" },
    );
    Ok(())
}
