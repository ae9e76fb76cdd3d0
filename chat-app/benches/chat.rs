//! chat-app's numbers, printed as a table: one chat turn with the offline planner end to end
//! (send → agent → orders-mcp → orders-api → SSE `done`), the chat page's time to first byte,
//! and the hydrate bundle's gzipped size.
//!
//! `cargo bench -p chat-app --bench chat` (release build). The bundle size needs
//! `CHAT_APP_SITE_ROOT` pointing at a *release* site (`cargo xtask bench` sets it).
//! Targets: turn p99 ≤ 50 ms, bundle ≤ 400 KB gzipped.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

#[path = "../tests/api/front.rs"]
mod front;
#[path = "../tests/api/helpers.rs"]
mod helpers;
#[path = "../tests/api/stack.rs"]
mod stack;

use std::process::Command;
use std::time::{Duration, Instant};

use helpers::{Browser, Options, TurnEvent, site_root, spawn_with};

const SESSIONS: usize = 4;
const TURNS_PER_SESSION: usize = 50;
const PAGE_LOADS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!("| {name:<34} | {:>6} | {:>10} | {:>10} | {:>10} |", samples.len(), ms(p50), ms(p99), ms(mean));
    (p50, p99)
}

/// gzip -9 size of a file, in bytes.
fn gzipped(path: &std::path::Path) -> Option<u64> {
    let out = Command::new("gzip").arg("-9").arg("-c").arg(path).output().ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let app = spawn_with(Options { orders_stack: true, ..Options::default() }).await;
        let mut turns = Vec::new();
        let mut pages = Vec::new();
        let mut landing = Vec::new();
        for _ in 0..SESSIONS {
            let browser = Browser::new(&app.origin);
            browser.sign_in(&app, "alice").await;
            // Warm-up: connections, JWKS, the OBO cache.
            for _ in 0..5 {
                browser.chat(&app, "show my orders").await;
            }
            for _ in 0..TURNS_PER_SESSION {
                let started = Instant::now();
                let events = browser.chat(&app, "show my orders").await;
                turns.push(started.elapsed());
                assert_eq!(events.last(), Some(&TurnEvent::Done));
                assert!(
                    events.iter().any(|e| matches!(e, TurnEvent::ToolResult { is_error: false, .. })),
                    "{events:?}"
                );
            }
        }
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let browser = Browser::new(&app.origin);
        browser.sign_in(&app, "alice").await;
        browser.chat(&app, "show my orders").await;
        let cookie = format!("chat_session={}", browser.cookie(&app.url, "chat_session").unwrap());
        for _ in 0..PAGE_LOADS {
            // Time to first byte: `send` returns once the status line and headers arrived.
            let started = Instant::now();
            let response = http.get(format!("{}/chat", app.url)).header("cookie", &cookie).send().await.unwrap();
            pages.push(started.elapsed());
            assert_eq!(response.status(), 200);
            let _ = response.bytes().await;
            let started = Instant::now();
            let response = http.get(format!("{}/", app.url)).send().await.unwrap();
            landing.push(started.elapsed());
            let _ = response.bytes().await;
        }

        println!();
        println!("chat-app (in-process: emulator + orders-api + orders-mcp + chat-app, offline planner)");
        println!("| {:<34} | {:>6} | {:>10} | {:>10} | {:>10} |", "measure", "n", "p50", "p99", "mean");
        println!("|{:-<36}|{:-<8}|{:-<12}|{:-<12}|{:-<12}|", "", "", "", "", "");
        let (turn_p50, turn_p99) = row("chat turn, end to end", &mut turns);
        let (chat_p50, chat_p99) = row("TTFB GET /chat (signed in, SSR)", &mut pages);
        let (landing_p50, _) = row("TTFB GET / (landing)", &mut landing);
        let mut results = vec![
            result("chat-app turn p50 (offline planner, end to end)", turn_p50, None),
            result("chat-app turn p99 (offline planner, end to end)", turn_p99, Some(50.0)),
            result("chat-app TTFB /chat p50 (signed in, SSR)", chat_p50, None),
            result("chat-app TTFB /chat p99 (signed in, SSR)", chat_p99, None),
            result("chat-app TTFB / p50 (landing)", landing_p50, None),
        ];
        println!();
        let verdict = |ok: bool| if ok { "meets target" } else { "MISSES target" };
        println!("turn p99 {} (target ≤ 50 ms): {}", ms(turn_p99), verdict(turn_p99 <= Duration::from_millis(50)));
        match site_root() {
            Some(site) => {
                let pkg = site.join("pkg");
                let wasm = gzipped(&pkg.join("chat_app_bg.wasm"));
                let js = gzipped(&pkg.join("chat_app.js"));
                match (wasm, js) {
                    (Some(wasm), Some(js)) => {
                        let total = wasm + js;
                        results.push(serde_json::json!({
                            "metric": "chat-app hydrate bundle, gzipped (wasm + js)",
                            "value": total as f64 / 1000.0, "unit": "KB", "target": 400.0, "lower_is_better": true,
                        }));
                        println!(
                            "hydrate bundle gzipped: {} KB (wasm {} KB + js {} KB) (target ≤ 400 KB): {}",
                            total / 1000,
                            wasm / 1000,
                            js / 1000,
                            verdict(total <= 400_000)
                        );
                    }
                    _ => println!("hydrate bundle: not found in {} (build it with cargo xtask bench)", pkg.display()),
                }
            }
            None => println!("hydrate bundle: CHAT_APP_SITE_ROOT not set (cargo xtask bench sets it)"),
        }
        // For `cargo xtask bench`, which gathers every benchmark's results into one table.
        if let Ok(dir) = std::env::var("BENCH_RESULTS_DIR") {
            let path = std::path::Path::new(&dir).join("chat-app.json");
            std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();
            println!("results written to {}", path.display());
        }
    });
}

/// A row of `cargo xtask bench`'s results table, in milliseconds.
fn result(metric: &str, value: Duration, target: Option<f64>) -> serde_json::Value {
    serde_json::json!({
        "metric": metric, "value": value.as_secs_f64() * 1000.0, "unit": "ms", "target": target, "lower_is_better": true,
    })
}
