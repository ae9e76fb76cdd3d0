//! `cargo xtask bench`: runs every benchmark, then prints one table of all results against
//! their targets, so speed and memory are compared side by side in one run.
//!
//! Criterion benchmarks are read from `target/criterion/<group>/<id>/new/estimates.json`. Other
//! benchmarks (latency percentiles, throughput, memory) write their results to
//! `target/bench-results/<name>.json` as `[{"metric", "value", "unit", "target", "lower_is_better"}]`.

use std::path::Path;

use serde::Deserialize;

use crate::run_cmd;

/// A benchmark target: `cargo bench -p <package> --bench <bench>`.
struct Bench {
    package: &'static str,
    bench: &'static str,
}

const BENCHES: &[Bench] = &[
    Bench { package: "entra-auth", bench: "tokens" },
    Bench { package: "entra-auth", bench: "telemetry" },
    Bench { package: "orders-api", bench: "get_order" },
    Bench { package: "orders-api", bench: "point_read" },
    Bench { package: "orders-mcp", bench: "full_path" },
    Bench { package: "chat-app", bench: "chat" },
];

/// Criterion results shown in the table, with their targets (microseconds).
const CRITERION: &[(&str, &str, Option<f64>)] = &[
    ("entra-auth/validate_cached_jwks", "token validation, full check (cached JWKS)", Some(30.0)),
    ("entra-auth/rsa_verify_only", "RSA-2048 signature check alone (the floor; machine speed)", None),
    ("entra-auth/validate_repeat_token", "token validation, token accepted before", None),
    ("entra-auth/obo_cache_hit", "OBO cache hit", None),
    // Off means no layer: the hooks of one full-path call each check a flag. The target is 0.1 %
    // of the ~100 µs of CPU such a call takes.
    (
        "entra-auth/telemetry_off_per_call",
        "OpenTelemetry off (no OTEL_* variable): its hooks in one full-path call",
        Some(0.1),
    ),
    // Exporting, on one thread with nothing else running: the full-path benchmark's tracing rows
    // show what it costs with both cores saturated.
    (
        "entra-auth/telemetry_exporting_per_call",
        "OpenTelemetry exporting every span: one full-path call's 4 spans, one thread",
        None,
    ),
    // One read at a time: orders-api's (rusqlite on the calling thread), the same statement
    // through sqlx (a round trip to its connection thread; what the service used before), and
    // the statement alone (the floor; what SQLite itself costs).
    ("orders-api/point_read_store", "orders-api point read by id, as the service reads (this thread)", None),
    ("orders-api/point_read_sqlx", "the same read through sqlx (its connection thread)", None),
    ("orders-api/point_read_floor", "the same statement alone (the floor; rusqlite)", None),
];

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// One row of `target/bench-results/*.json`.
#[derive(Deserialize)]
struct Row {
    metric: String,
    value: f64,
    unit: String,
    target: Option<f64>,
    #[serde(default = "yes")]
    lower_is_better: bool,
}

fn yes() -> bool {
    true
}

pub fn run() -> anyhow::Result<()> {
    let target = crate::target_dir();
    let results = target.join("bench-results");
    let _ = std::fs::remove_dir_all(&results);
    std::fs::create_dir_all(&results)?;
    // chat-app's bench measures the bundle visitors download: the release build.
    let site = crate::frontend::build(true)?;
    let mut env = site.env();
    env.push(("BENCH_RESULTS_DIR", results.display().to_string()));
    // Every build first: measurements then run back to back on a machine that is not compiling.
    for b in BENCHES {
        run_cmd("cargo", &["bench", "-p", b.package, "--bench", b.bench, "--no-run"], &env)?;
    }
    // The full-path bench runs orders-api's release binary, built with orders-api's own feature
    // set (not the bench's): built here too, or after a change it compiles between measurements.
    run_cmd("cargo", &["build", "--release", "-p", "orders-api", "--bin", "orders-api"], &env)?;
    for b in BENCHES {
        run_cmd("cargo", &["bench", "-p", b.package, "--bench", b.bench], &env)?;
    }
    let rows = collect(&target, &results)?;
    print_table(&rows);
    Ok(())
}

fn collect(target: &Path, results: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (id, label, goal) in CRITERION {
        let path = target.join("criterion").join(id).join("new/estimates.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("no criterion result at {}", path.display());
            continue;
        };
        let estimates: Estimates = serde_json::from_str(&text)?;
        rows.push(Row {
            metric: label.to_string(),
            value: estimates.median.point_estimate / 1000.0,
            unit: "µs".into(),
            target: *goal,
            lower_is_better: true,
        });
    }
    let mut files: Vec<_> = std::fs::read_dir(results)?.filter_map(Result::ok).map(|e| e.path()).collect();
    files.sort();
    for file in files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
        let text = std::fs::read_to_string(file)?;
        let mut more: Vec<Row> =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a results file: {e}", file.display()))?;
        rows.append(&mut more);
    }
    Ok(rows)
}

fn print_table(rows: &[Row]) {
    println!("\n{:<58} {:>12} {:>12}  verdict", "metric", "result", "target");
    println!("{}", "-".repeat(94));
    for row in rows {
        let value = format!("{:.2} {}", row.value, row.unit);
        let (target, verdict) = match row.target {
            Some(t) => {
                let met = if row.lower_is_better { row.value <= t } else { row.value >= t };
                let bound = if row.lower_is_better { "≤" } else { "≥" };
                (format!("{bound} {t} {}", row.unit), if met { "met" } else { "MISSED" })
            }
            None => (String::from("—"), ""),
        };
        println!("{:<58} {:>12} {:>12}  {verdict}", row.metric, value, target);
    }
}
