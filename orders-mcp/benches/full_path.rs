//! The full path, measured: `tools/call get_order` through orders-mcp (token validation, cached
//! On-Behalf-Of token) to orders-api (token validation, SQLite) and back, under an external load
//! generator, [oha](https://github.com/hatoo/oha) (HTTP/1.1, keep-alive).
//!
//! orders-mcp and orders-api run as the real release binaries in child processes, so their
//! memory and CPU time can be read from `/proc/<pid>/`; the Entra emulator runs in this process
//! (it is only asked for keys and one exchange, during warm-up). Each concurrency level runs oha
//! for `BENCH_ROUNDS` (default 10) rounds of `BENCH_SECONDS` (default 3) against each stack in
//! turn, every other round in reverse order, and prints throughput, latency percentiles (the
//! median round's) and the CPU time each service spent per request. (Ten, not six: one round's
//! ratio between two stacks ranges over ±25 % on these hosts, and the median of six moved by
//! more than a target's margin from run to run.)
//!
//! Comparisons between stacks are paired: two stacks' throughputs are compared round by round
//! (each pair ran seconds apart) and the median of those ratios is the result, printed with the
//! lowest and highest. This host's CPU speed drifts by tens of percent over minutes; a ratio of
//! totals over the whole level carries that drift, and a stack always run after another would
//! always see more of it (hence the reversed rounds).
//!
//! With `BENCH_BASELINE_ORDERS_MCP=<path to another orders-mcp binary>` (an older build, say),
//! that binary runs beside this one on its own orders-api (`BENCH_BASELINE_ORDERS_API=<path>`
//! for another orders-api build too), taking turns with it, so the comparison is made in one run
//! on the same machine at the same moment. An older build that cannot read today's identity
//! manifest gets its own checkout's through `BENCH_BASELINE_MANIFEST=<path>`. With
//! `BENCH_BASELINE_EXPORTING=<sampler>` (`always_on`, or any `OTEL_TRACES_SAMPLER` value) the
//! baseline stack is configured as the exporting stack below but with that sampler, and is
//! compared with that stack rather than with this build's plain one: two builds' cost of
//! exporting, paired (with `BENCH_RATE`, and a profile, per call), or with `always_off` and this
//! build as the baseline, what recording spans costs without sending them.
//!
//! The call is chat-app's: MCP 2026-07-28, with `_meta` and the `Mcp-Method`/`Mcp-Name` headers.
//!
//! Every stack logs as deployed: JSON lines (`LOG_FORMAT=json`, the Dockerfile's), unless
//! `LOG_FORMAT` is set for the benchmark.
//!
//! Tracing overhead: two more copies of the stack run with the services' default log filter
//! (`info,rmcp=warn`, as in Azure, so their spans exist), one with OpenTelemetry off (no
//! `OTEL_*` variable) and one exporting every span (`OTEL_TRACES_SAMPLER=always_on`) over
//! OTLP/HTTP to a receiver in this process, which answers as a collector does and counts the
//! spans without decoding them (a collector's CPU is not the services' cost: see [`Receiver`]).
//! They take turns with the others, next to each other in every round, and their paired ratio is
//! printed against the target: exporting costs at most 10 % of the throughput. (That
//! OpenTelemetry costs nothing when off is a comparison with a build without it:
//! `BENCH_BASELINE_ORDERS_MCP`.)
//!
//! The machine's speed is measured in the same run, before the loads and after them: the time of
//! one RSA-2048 signature check (the floor of a token validation), on the emulator's key, so the
//! CPU per call can be read against it and the drift during the run is visible.
//!
//! With `BENCH_RATE=<requests per second>` oha sends at most that many requests per second at
//! each concurrency (`oha -q`; a level that cannot reach it runs flat out), so the stacks do the
//! same work in the same time: each one's CPU per call is for the same load (at saturation it
//! moves with the throughput), and a profile taken during the run (`perf record -a`) compares
//! them by samples per call, which is how the cost of exporting spans was taken apart.
//! Throughput is then the cap, so no target is judged but memory's.
//!
//! oha is installed into `target/tools/oha` with `cargo install --locked` when missing (a few
//! minutes, once; never in CI, which does not run benchmarks).
//!
//! Run: `cargo bench -p orders-mcp --bench full_path` (it has cargo build the orders-api release
//! binary into the same target directory first). With `BENCH_RESULTS_DIR` set (as `cargo xtask
//! bench` does) the results are also written to `<dir>/orders-mcp-full-path.json`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::http::{StatusCode, header};
use entra_emulator::EmulatorConfig;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use serde::Deserialize;

const IDENTITY_HEADER: &str = "bench-header";
const LEVELS: [usize; 3] = [1, 16, 64];
/// The call as chat-app's MCP client (rmcp, MCP 2026-07-28) sends it: the revision and the
/// client in `_meta`, the method and tool mirrored in `Mcp-Method`/`Mcp-Name` ([`HEADERS`]).
const BODY: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_order","arguments":{"id":"ORD-001"},"#,
    r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","#,
    r#""io.modelcontextprotocol/clientInfo":{"name":"chat-app","version":"0.1.0"},"#,
    r#""io.modelcontextprotocol/clientCapabilities":{},"progressToken":0}}}"#
);
const HEADERS: [(&str, &str); 3] =
    [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "get_order")];

const P99_TARGET_MS: f64 = 5.0;
const MCP_CPU_TARGET_US: f64 = 60.0;
const API_CPU_TARGET_US: f64 = 40.0;
/// Throughput at concurrency 16 against the baseline build (the issue's "1.8× today's").
const SPEEDUP_TARGET: f64 = 1.8;
/// Throughput at concurrency 64 against 16: no collapse.
const C64_TARGET: f64 = 0.9;
const IDLE_RSS_TARGET_MB: f64 = 16.0;
/// Throughput exporting every span against OpenTelemetry off: at most 10 % less.
const TRACING_TARGET: f64 = 0.9;
/// The services' own log filter when `RUST_LOG` is unset (service_kit::telemetry), as deployed.
const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";
const PEAK_RSS_TARGET_MB: f64 = 32.0;

/// The services' log format: JSON, as every container runs them (the Dockerfile's
/// `LOG_FORMAT=json`), unless this process has `LOG_FORMAT` set (`pretty`, say, to measure the
/// format people read at a terminal).
fn log_format() -> String {
    std::env::var("LOG_FORMAT").unwrap_or_else(|_| "json".into())
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

/// A child process killed when dropped.
struct Service {
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn start(command: &mut Command) -> anyhow::Result<Service> {
        let child = command.stdout(Stdio::null()).spawn()?;
        Ok(Service { child })
    }

    /// CPU time (user + system) used so far, from `/proc/<pid>/stat`.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .context("reading /proc/<pid>/stat (Linux only)")?;
        // The fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').context("malformed stat")?.1.split_whitespace().collect();
        let ticks =
            fields.get(11).context("no utime")?.parse::<u64>()? + fields.get(12).context("no stime")?.parse::<u64>()?;
        // USER_HZ is 100 on Linux.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// `VmRSS` and `VmHWM` (peak) in MB (10^6 bytes).
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

/// One orders-mcp build with its own orders-api and database.
struct Stack {
    label: &'static str,
    api: Service,
    mcp: Service,
    url: String,
    _data: tempfile::TempDir,
}

impl Stack {
    /// `env`: more variables for both services (they override `RUST_LOG=warn` and the
    /// repository's `IDENTITY_MANIFEST`).
    async fn start(
        label: &'static str,
        mcp_bin: &Path,
        api_bin: &Path,
        idp_url: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Stack> {
        let manifest = entra_manifest::REPOSITORY_MANIFEST;
        let data = tempfile::tempdir()?;
        let [api_addr, mcp_addr] = free_ports()?;
        let api = Service::start(
            Command::new(api_bin)
                .env("RUST_LOG", "warn")
                .env("LOG_FORMAT", log_format())
                .env("IDENTITY_MANIFEST", manifest)
                .envs(env.iter().copied())
                .env("ENTRA_AUTHORITY", idp_url)
                .env("ORDERS_API_ADDR", api_addr.to_string())
                .env("ORDERS_API_DATABASE", data.path().join("orders.db")),
        )
        .with_context(|| format!("starting {}", api_bin.display()))?;
        let mcp = Service::start(
            Command::new(mcp_bin)
                .env("RUST_LOG", "warn")
                .env("LOG_FORMAT", log_format())
                .env("IDENTITY_MANIFEST", manifest)
                .envs(env.iter().copied())
                .env("ENTRA_AUTHORITY", idp_url)
                .env("ORDERS_MCP_ADDR", mcp_addr.to_string())
                .env("ORDERS_MCP_PUBLIC_URL", format!("http://{mcp_addr}"))
                .env("ORDERS_API_URL", format!("http://{api_addr}"))
                .env("IDENTITY_ENDPOINT", format!("{idp_url}/msi/token"))
                .env("IDENTITY_HEADER", IDENTITY_HEADER),
        )
        .with_context(|| format!("starting {}", mcp_bin.display()))?;
        let http = reqwest::Client::new();
        wait_ready(&http, &format!("http://{api_addr}/readyz")).await?;
        wait_ready(&http, &format!("http://{mcp_addr}/readyz")).await?;
        Ok(Stack { label, api, mcp, url: format!("http://{mcp_addr}/mcp"), _data: data })
    }

    /// One call, checked: the load generator only counts status codes, so the answer it will
    /// get is checked here to be a successful tool result.
    async fn check(&self, token: &str) -> anyhow::Result<()> {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json");
        for (name, value) in HEADERS {
            request = request.header(name, value);
        }
        let body = request.body(BODY).send().await?.text().await?;
        if !body.contains("\"isError\":false") || !body.contains("ORD-001") {
            bail!("{}: unexpected answer to the benchmark's call: {body}", self.label);
        }
        Ok(())
    }
}

/// What one oha run measured, with the services' CPU time over it.
struct Level {
    requests: f64,
    seconds: f64,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    api_cpu_us: f64,
    mcp_cpu_us: f64,
    /// The runs this level combines (none for one run).
    rounds: Vec<Level>,
}

impl Level {
    /// One level from several rounds of it: throughput and CPU per call over all their requests,
    /// the median round's latencies (oha's percentiles of different runs cannot be merged).
    fn combine(rounds: Vec<Level>) -> Level {
        let requests: f64 = rounds.iter().map(|l| l.requests).sum();
        let seconds: f64 = rounds.iter().map(|l| l.seconds).sum();
        let per_call =
            |cpu: fn(&Level) -> f64| rounds.iter().map(|l| cpu(l) * l.requests).sum::<f64>() / requests.max(1.0);
        let median = |of: fn(&Level) -> f64| median(rounds.iter().map(of).collect());
        Level {
            requests,
            seconds,
            throughput: requests / seconds,
            p50_ms: median(|l| l.p50_ms),
            p99_ms: median(|l| l.p99_ms),
            errors: rounds.iter().map(|l| l.errors).sum(),
            api_cpu_us: per_call(|l| l.api_cpu_us),
            mcp_cpu_us: per_call(|l| l.mcp_cpu_us),
            rounds,
        }
    }

    /// This level's throughput against `other`'s, round by round (the two ran next to each
    /// other in each round): the median ratio and the lowest and highest. On a host whose speed
    /// drifts, the ratio of two runs a few seconds apart is steadier than the ratio of totals.
    fn against(&self, other: &Level) -> Ratio {
        let mut ratios: Vec<f64> =
            self.rounds.iter().zip(&other.rounds).map(|(a, b)| a.throughput / b.throughput).collect();
        ratios.sort_by(f64::total_cmp);
        Ratio {
            low: ratios.first().copied().unwrap_or(f64::NAN),
            high: ratios.last().copied().unwrap_or(f64::NAN),
            median: median(ratios),
        }
    }
}

struct Ratio {
    median: f64,
    low: f64,
    high: f64,
}

/// The middle value, or the mean of the two middle ones for an even count (the upper one alone
/// would lean every even-round result up).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[mid],
        _ => (values[mid - 1] + values[mid]) / 2.0,
    }
}

async fn run() -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10).max(1);
    let rate: Option<u32> = std::env::var("BENCH_RATE").ok().and_then(|s| s.parse().ok()).filter(|r| *r > 0);
    // Under a rate cap throughput, latency and CPU per call are not what the targets are about.
    let judged = |target: Option<f64>| target.filter(|_| rate.is_none());
    let oha = oha_binary()?;
    let api_bin = orders_api_binary()?;
    let mcp_bin = PathBuf::from(env!("CARGO_BIN_EXE_orders-mcp"));
    let baseline_bin = std::env::var_os("BENCH_BASELINE_ORDERS_MCP").map(PathBuf::from);
    // The baseline stack's orders-api: another build too, or this one.
    let baseline_api_bin = std::env::var_os("BENCH_BASELINE_ORDERS_API").map_or_else(|| api_bin.clone(), PathBuf::from);
    let baseline_sampler =
        std::env::var("BENCH_BASELINE_EXPORTING").ok().filter(|s| baseline_bin.is_some() && !s.is_empty());
    let baseline_exports = baseline_sampler.is_some();

    let idp = entra_emulator::Application::build(EmulatorConfig {
        identity_header: Some(IDENTITY_HEADER.into()),
        ..EmulatorConfig::from_repository()?
    })
    .await?
    .spawn();
    let receiver = Receiver::start().await?;
    // An exporting baseline's own receiver, so the spans counted are the `otel on` stack's.
    let baseline_receiver = if baseline_exports { Some(Receiver::start().await?) } else { None };
    let mut stacks = vec![Stack::start("this build", &mcp_bin, &api_bin, &idp.url(), &[]).await?];
    if let Some(baseline) = &baseline_bin {
        // An older build may not read today's manifest (sections added since): its own
        // checkout's, with the same apps, through BENCH_BASELINE_MANIFEST.
        let manifest = std::env::var("BENCH_BASELINE_MANIFEST").ok();
        let mut env: Vec<(&str, &str)> = manifest.iter().map(|m| ("IDENTITY_MANIFEST", m.as_str())).collect();
        if let (Some(sampler), Some(receiver)) = (&baseline_sampler, &baseline_receiver) {
            env.extend(receiver.exporting_env(sampler));
        }
        stacks.push(Stack::start("baseline", baseline, &baseline_api_bin, &idp.url(), &env).await?);
    }
    let tracing_off = stacks.len();
    stacks.push(Stack::start("otel off", &mcp_bin, &api_bin, &idp.url(), &[("RUST_LOG", DEFAULT_LOG_FILTER)]).await?);
    stacks.push(Stack::start("otel on", &mcp_bin, &api_bin, &idp.url(), &receiver.exporting_env("always_on")).await?);
    let idle: Vec<_> =
        stacks.iter().map(|s| Ok((s.api.memory()?.0, s.mcp.memory()?.0))).collect::<anyhow::Result<_>>()?;

    let token = idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"])?;
    let rsa = RsaFloor::new(&idp, &token).await?;
    let rsa_before = rsa.measure()?;
    // Warm-up: keys fetched by both services, alice's On-Behalf-Of token cached.
    for stack in &stacks {
        stack.check(&token).await?;
        oha_run(&oha, stack, &token, 16, 1, None).await?;
    }
    let exchanges = idp.handle().stats().on_behalf_of;
    let (spans_before, bytes_before) = receiver.received.counts();

    println!("\nfull path: tools/call get_order -> orders-mcp -> orders-api -> SQLite (warm OBO cache), load by oha");
    if let Some(baseline) = &baseline_bin {
        let exports = match &baseline_sampler {
            Some(sampler) => format!(", exporting with sampler {sampler}, against `otel on`"),
            None => String::new(),
        };
        println!("baseline orders-mcp: {} (alternating with this build{exports})", baseline.display());
        println!("baseline orders-api: {}", baseline_api_bin.display());
    }
    println!(
        "{rounds} rounds of {seconds} s per level, the builds taking turns in each round (every other round in reverse)"
    );
    match rate {
        Some(rate) => {
            println!("at most {rate} requests per second (BENCH_RATE): compare CPU per call, not throughput\n")
        }
        None => println!(),
    }
    println!(
        "{:>10} {:>11} {:>9} {:>8} {:>7} {:>7} {:>6}   CPU µs per request: orders-mcp orders-api",
        "build", "concurrency", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    // levels[stack][level]
    let mut levels: Vec<Vec<Level>> = stacks.iter().map(|_| Vec::new()).collect();
    for concurrency in LEVELS {
        // Rounds in turn, not one long run per build: this host's speed drifts by tens of
        // percent over minutes, and each build should see the same drift.
        // Every other round runs them in reverse order, so a drift during a round slows each
        // stack as much as the others over a pair of rounds (a stack always run after another
        // would otherwise always see more of it).
        let mut runs: Vec<Vec<Level>> = stacks.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            for i in 0..stacks.len() {
                let i = if round % 2 == 0 { i } else { stacks.len() - 1 - i };
                runs[i].push(oha_run(&oha, &stacks[i], &token, concurrency, seconds, rate).await?);
            }
        }
        for ((stack, results), runs) in stacks.iter().zip(levels.iter_mut()).zip(runs) {
            let level = Level::combine(runs);
            println!(
                "{:>10} {:>11} {:>9} {:>8.0} {:>7.2} {:>7.2} {:>6}   {:>30.0} {:>10.0}",
                stack.label,
                concurrency,
                level.requests,
                level.throughput,
                level.p50_ms,
                level.p99_ms,
                level.errors,
                level.mcp_cpu_us,
                level.api_cpu_us
            );
            results.push(level);
        }
    }
    let rsa_after = rsa.measure()?;
    println!(
        "\nRSA-2048 signature check (the machine's speed; the floor of a token validation): {rsa_before:.1} µs before \
         the loads, {rsa_after:.1} µs after"
    );
    let exchanges_during_runs = idp.handle().stats().on_behalf_of - exchanges;
    println!("\nOn-Behalf-Of exchanges during the measured runs: {exchanges_during_runs}");
    // The exporter sends a batch at most every few seconds: wait for the last ones.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (spans, bytes) = receiver.received.counts();
    let (spans_exported, bytes_exported) = (spans - spans_before, bytes - bytes_before);
    let exported_calls: f64 = levels[tracing_off + 1].iter().map(|l| l.requests).sum();
    if spans_exported == 0 {
        bail!("the exporting stack sent no spans to the receiver: the tracing rows would measure nothing");
    }

    let mut results = Vec::new();
    results.push(row("full path run: RSA-2048 signature check before the loads".into(), rsa_before, "µs", None, true));
    results.push(row("full path run: RSA-2048 signature check after the loads".into(), rsa_after, "µs", None, true));
    let ours = &levels[0];
    for (concurrency, level) in LEVELS.iter().zip(ours) {
        let at = format!("full path tools/call get_order (oha), concurrency {concurrency}");
        let c16 = *concurrency == 16;
        results.push(row(format!("{at}: throughput"), level.throughput, "req/s", None, false));
        results.push(row(format!("{at}: p50"), level.p50_ms, "ms", None, true));
        results.push(row(format!("{at}: p99"), level.p99_ms, "ms", judged(c16.then_some(P99_TARGET_MS)), true));
        results.push(row(
            format!("{at}: orders-mcp CPU per call"),
            level.mcp_cpu_us,
            "µs",
            judged(c16.then_some(MCP_CPU_TARGET_US)),
            true,
        ));
        results.push(row(
            format!("{at}: orders-api CPU per call"),
            level.api_cpu_us,
            "µs",
            judged(c16.then_some(API_CPU_TARGET_US)),
            true,
        ));
    }
    results.push(row(
        "full path: throughput at concurrency 64 / 16 (no collapse)".into(),
        ours[2].throughput / ours[1].throughput,
        "×",
        judged(Some(C64_TARGET)),
        false,
    ));
    let spans_per_call = spans_exported as f64 / exported_calls.max(1.0);
    let bytes_per_call = bytes_exported as f64 / exported_calls.max(1.0);
    println!(
        "\ntracing overhead (both with RUST_LOG={DEFAULT_LOG_FILTER} and LOG_FORMAT={}; exporting every span over OTLP/HTTP to a \
         receiver in this process that counts them, {spans_per_call:.1} spans and {bytes_per_call:.0} bytes per call)",
        log_format()
    );
    println!(
        "{:>11} {:>12} {:>16} {:>19} {:>8}   CPU µs per call, off → exporting: orders-mcp orders-api",
        "concurrency", "off req/s", "exporting req/s", "exporting/off", "target"
    );
    for (i, concurrency) in LEVELS.iter().enumerate() {
        let (off, on) = (&levels[tracing_off][i], &levels[tracing_off + 1][i]);
        let ratio = on.against(off);
        println!(
            "{concurrency:>11} {:>12.0} {:>16.0} {:>19} {:>8}   {:>35} {:>10}",
            off.throughput,
            on.throughput,
            format!("{:.2} ({:.2}-{:.2})", ratio.median, ratio.low, ratio.high),
            format!("≥ {TRACING_TARGET}"),
            format!("{:.0} → {:.0}", off.mcp_cpu_us, on.mcp_cpu_us),
            format!("{:.0} → {:.0}", off.api_cpu_us, on.api_cpu_us),
        );
        // Each round's ratio too: one slow round shows as an outlier here, not as a shift.
        let rounds: Vec<String> = on
            .rounds
            .iter()
            .zip(&off.rounds)
            .map(|(on, off)| format!("{:.2}", on.throughput / off.throughput))
            .collect();
        println!("{:>11} each round: {}", "", rounds.join(" "));
        let at = format!("concurrency {concurrency}");
        results.push(row(
            format!("full path, OpenTelemetry off, {at}: throughput"),
            off.throughput,
            "req/s",
            None,
            false,
        ));
        results.push(row(
            format!("full path, exporting every span, {at}: throughput"),
            on.throughput,
            "req/s",
            None,
            false,
        ));
        results.push(row(
            format!("full path: throughput exporting traces / off, {at} (median of the rounds)"),
            ratio.median,
            "×",
            judged(Some(TRACING_TARGET)),
            false,
        ));
    }
    results.push(row("full path, exporting: spans received per call".into(), spans_per_call, "spans", None, false));
    results.push(row("full path, exporting: OTLP bytes received per call".into(), bytes_per_call, "bytes", None, true));
    if baseline_bin.is_some() {
        // An exporting baseline is compared with this build exporting, and judged by nothing.
        let (ours, judged_speedup) =
            if baseline_exports { (&levels[tracing_off + 1], None) } else { (ours, Some(SPEEDUP_TARGET)) };
        let which = if baseline_exports { "baseline build exporting" } else { "baseline build" };
        for (concurrency, (ours, theirs)) in LEVELS.iter().zip(ours.iter().zip(&levels[1])) {
            let c16 = *concurrency == 16;
            let at = format!("full path, {which}, concurrency {concurrency}");
            results.push(row(format!("{at}: throughput"), theirs.throughput, "req/s", None, false));
            results.push(row(format!("{at}: p99"), theirs.p99_ms, "ms", None, true));
            results.push(row(format!("{at}: orders-mcp CPU per call"), theirs.mcp_cpu_us, "µs", None, true));
            results.push(row(
                format!("full path: throughput against the {which}, concurrency {concurrency} (median of the rounds)"),
                ours.against(theirs).median,
                "×",
                judged(judged_speedup.filter(|_| c16)),
                false,
            ));
        }
    }

    println!(
        "\n{:>10} {:>11} {:>13} {:>17} {:>13}",
        "build", "service", "idle RSS MB", "after-load RSS MB", "peak RSS MB"
    );
    for (stack, (api_idle, mcp_idle)) in stacks.iter().zip(&idle) {
        for (name, service, idle_rss) in [("orders-api", &stack.api, api_idle), ("orders-mcp", &stack.mcp, mcp_idle)] {
            let (rss, peak) = service.memory()?;
            println!("{:>10} {name:>11} {idle_rss:>13.1} {rss:>17.1} {peak:>13.1}", stack.label);
            if stack.label == "this build" {
                results.push(row(format!("{name} RSS idle"), *idle_rss, "MB", Some(IDLE_RSS_TARGET_MB), true));
                results.push(row(
                    format!("{name} RSS peak under full-path load"),
                    peak,
                    "MB",
                    Some(PEAK_RSS_TARGET_MB),
                    true,
                ));
            }
        }
    }
    println!();
    for r in &results {
        if let (Some(target), Some(value)) = (r["target"].as_f64(), r["value"].as_f64()) {
            let lower = r["lower_is_better"].as_bool().unwrap_or(true);
            let met = if lower { value <= target } else { value >= target };
            println!("target {}: {} ({value:.2} against {target})", r["metric"], if met { "met" } else { "MISSED" });
        }
    }

    // For `cargo xtask bench`, which gathers every benchmark's results into one table.
    if let Ok(dir) = std::env::var("BENCH_RESULTS_DIR") {
        let path = Path::new(&dir).join("orders-mcp-full-path.json");
        std::fs::write(&path, serde_json::to_string_pretty(&results)?)?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

/// An OTLP/HTTP trace receiver (`POST /v1/traces`) in this process. It answers as a collector
/// does (an empty `ExportTraceServiceResponse`) and counts the spans, but does not decode them:
/// a collector runs beside the services, not on their cores, and here it would share this
/// machine's two cores with them, so its decoding would be counted as the services' cost. The
/// count walks the protobuf framing only (request → resource spans → scope spans → spans); the
/// first request is also decoded with the OpenTelemetry types, to check the count.
struct Receiver {
    /// The base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    url: String,
    received: Arc<Received>,
}

/// What a [`Receiver`] has been sent so far.
#[derive(Default)]
struct Received {
    spans: AtomicU64,
    /// Request bytes: what sending the spans costs scales with them.
    bytes: AtomicU64,
}

impl Received {
    /// Spans and bytes received.
    fn counts(&self) -> (u64, u64) {
        (self.spans.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

impl Receiver {
    /// A stack's settings for exporting to this receiver with `sampler` (an
    /// `OTEL_TRACES_SAMPLER` value), under the services' default log filter.
    fn exporting_env<'a>(&'a self, sampler: &'a str) -> [(&'static str, &'a str); 3] {
        [
            ("RUST_LOG", DEFAULT_LOG_FILTER),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.url.as_str()),
            ("OTEL_TRACES_SAMPLER", sampler),
        ]
    }

    async fn start() -> anyhow::Result<Receiver> {
        let received = Arc::new(Received::default());
        let counted = received.clone();
        let checked = Arc::new(std::sync::Once::new());
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (counted, checked) = (counted.clone(), checked.clone());
                async move {
                    let received = count_spans(&body).ok_or(StatusCode::BAD_REQUEST)?;
                    checked.call_once(|| {
                        let decoded = ExportTraceServiceRequest::decode(body.clone())
                            .map(|r| r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum());
                        if decoded.as_ref().ok() != Some(&received) {
                            eprintln!("the OTLP receiver miscounted: {received} spans, decoded {decoded:?}");
                            std::process::exit(1);
                        }
                    });
                    counted.spans.fetch_add(received as u64, Ordering::Relaxed);
                    counted.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    Ok::<_, StatusCode>(([(header::CONTENT_TYPE, "application/x-protobuf")], answer))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("the OTLP receiver stopped: {e}");
            }
        });
        Ok(Receiver { url, received })
    }
}

/// The spans in an `ExportTraceServiceRequest` (opentelemetry-proto: `resource_spans` = 1, its
/// `scope_spans` = 2, their `spans` = 2), counted without decoding them.
fn count_spans(request: &[u8]) -> Option<usize> {
    let mut spans = 0;
    for resource_spans in fields(request, 1)? {
        for scope_spans in fields(resource_spans, 2)? {
            spans += fields(scope_spans, 2)?.len();
        }
    }
    Some(spans)
}

/// The bytes of each length-delimited field numbered `number` in a protobuf message, every
/// other field skipped; `None` if `message` is not protobuf.
fn fields(mut message: &[u8], number: u64) -> Option<Vec<&[u8]>> {
    let mut found = Vec::new();
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match key & 7 {
            0 => _ = varint(&mut message)?,
            1 => message = message.get(8..)?,
            5 => message = message.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut message)?).ok()?;
                let value = message.get(..len)?;
                message = message.get(len..)?;
                if key >> 3 == number {
                    found.push(value);
                }
            }
            _ => return None,
        }
    }
    Some(found)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// One RSA-2048 signature check on the emulator's published key: what a full token validation
/// cannot go below, and a reading of the machine's speed at that moment.
struct RsaFloor {
    key: aws_lc_rs::signature::ParsedPublicKey,
    signed: String,
    signature: Vec<u8>,
}

impl RsaFloor {
    async fn new(idp: &entra_emulator::Running, token: &str) -> anyhow::Result<RsaFloor> {
        use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let url = format!("{}/{}/discovery/v2.0/keys", idp.url(), idp.handle().tenant_id());
        let jwks: serde_json::Value = reqwest::get(url).await?.json().await?;
        let decode = |field: &str| -> anyhow::Result<Vec<u8>> {
            Ok(URL_SAFE_NO_PAD.decode(jwks["keys"][0][field].as_str().context("no JWK field")?)?)
        };
        let (n, e) = (decode("n")?, decode("e")?);
        let key = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .map_err(|_| anyhow::anyhow!("the emulator's key does not parse"))?;
        let (signed, signature) = token.rsplit_once('.').context("not a JWT")?;
        Ok(RsaFloor { key, signed: signed.to_string(), signature: URL_SAFE_NO_PAD.decode(signature)? })
    }

    /// µs per check: the median of 9 rounds of 200.
    fn measure(&self) -> anyhow::Result<f64> {
        let mut rounds = Vec::new();
        for _ in 0..9 {
            let started = Instant::now();
            for _ in 0..200 {
                self.key
                    .verify_sig(self.signed.as_bytes(), &self.signature)
                    .map_err(|_| anyhow::anyhow!("the token's signature does not verify"))?;
            }
            rounds.push(started.elapsed().as_secs_f64() * 1e6 / 200.0);
        }
        rounds.sort_by(f64::total_cmp);
        Ok(rounds[rounds.len() / 2])
    }
}

/// A row of `cargo xtask bench`'s results table.
fn row(metric: String, value: f64, unit: &str, target: Option<f64>, lower_is_better: bool) -> serde_json::Value {
    serde_json::json!({ "metric": metric, "value": value, "unit": unit, "target": target, "lower_is_better": lower_is_better })
}

/// The parts of oha's JSON report used here (latencies in seconds).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaReport {
    summary: OhaSummary,
    latency_percentiles: OhaPercentiles,
    status_code_distribution: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    error_distribution: std::collections::BTreeMap<String, u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OhaSummary {
    total: f64,
}

#[derive(Deserialize)]
struct OhaPercentiles {
    p50: Option<f64>,
    p99: Option<f64>,
}

/// Runs oha for `seconds` at `concurrency` against `stack`, measuring the services' CPU.
async fn oha_run(
    oha: &Path,
    stack: &Stack,
    token: &str,
    concurrency: usize,
    seconds: u64,
    rate: Option<u32>,
) -> anyhow::Result<Level> {
    let before = (stack.api.cpu()?, stack.mcp.cpu()?);
    let mut command = tokio::process::Command::new(oha);
    command.args(["--no-tui", "--output-format", "json", "-w", "-m", "POST", "-T", "application/json"]);
    command.args(["-c", &concurrency.to_string(), "-z", &format!("{seconds}s")]);
    if let Some(rate) = rate {
        command.args(["-q", &rate.to_string()]);
    }
    command.args(["-A", "application/json, text/event-stream", "-d", BODY]);
    for (name, value) in HEADERS {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command.arg("-H");
    command.arg(format!("Authorization: Bearer {token}")).arg(&stack.url);
    let output = command.stderr(Stdio::inherit()).output().await.context("running oha")?;
    let after = (stack.api.cpu()?, stack.mcp.cpu()?);
    if !output.status.success() {
        bail!("oha failed: {}", output.status);
    }
    let report: OhaReport = serde_json::from_slice(&output.stdout).context("reading oha's JSON report")?;
    let ok = report.status_code_distribution.get("200").copied().unwrap_or(0);
    let all: u64 =
        report.status_code_distribution.values().sum::<u64>() + report.error_distribution.values().sum::<u64>();
    let requests = ok as f64;
    let per_request = |a: Duration, b: Duration| (b - a).as_micros() as f64 / requests.max(1.0);
    Ok(Level {
        requests,
        seconds: report.summary.total,
        throughput: requests / report.summary.total,
        p50_ms: report.latency_percentiles.p50.unwrap_or(f64::NAN) * 1000.0,
        p99_ms: report.latency_percentiles.p99.unwrap_or(f64::NAN) * 1000.0,
        errors: all - ok,
        api_cpu_us: per_request(before.0, after.0),
        mcp_cpu_us: per_request(before.1, after.1),
        rounds: Vec::new(),
    })
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

/// `N` distinct free local ports, each held until all are chosen (a port let go at once can be
/// the next bind's to port 0).
fn free_ports<const N: usize>() -> anyhow::Result<[SocketAddr; N]> {
    let held: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let addrs: Vec<SocketAddr> = held.iter().map(|listener| listener.local_addr()).collect::<Result<_, _>>()?;
    addrs.try_into().map_err(|_| anyhow::anyhow!("{N} ports"))
}

/// `target/<profile>/deps/full_path-<hash>` -> `target`.
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors().nth(3).map(Path::to_path_buf).context("unexpected bench location")
}

/// orders-api's release binary in this bench's target directory, built (or found up to date)
/// by cargo first.
fn orders_api_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
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

/// oha in `target/tools/oha`, installed there by `cargo install --locked` when missing.
fn oha_binary() -> anyhow::Result<PathBuf> {
    let root = target_dir()?.join("tools/oha");
    let bin = root.join("bin/oha");
    if bin.exists() {
        return Ok(bin);
    }
    println!("installing the load generator oha into {} (once)", root.display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo).args(["install", "--locked", "oha", "--root"]).arg(&root).status()?;
    if !status.success() || !bin.exists() {
        bail!("cannot install oha into {}", root.display());
    }
    Ok(bin)
}
