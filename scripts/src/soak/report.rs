//! The one table a run prints, and the bounds it judges: each broken bound is a line of the
//! returned list.

use std::collections::BTreeMap;
use std::time::Duration;

use super::faults::{self, Outcome as FaultOutcome};
use super::ledger::Findings;
use super::memory::Summary;
use super::record::{BOUND, Outcome, Sample, Window};

/// Memory growth after warm-up above this breaks the run...
pub const GROWTH_BOUND_PERCENT: f64 = 20.0;
/// ...of this length or longer.
const JUDGED_FROM: Duration = Duration::from_secs(120);

pub struct Run<'a> {
    pub users: usize,
    pub duration: Duration,
    pub samples: &'a [Sample],
    pub windows: &'a [Window],
    pub faults: &'a [FaultOutcome],
    pub messages: &'a BTreeMap<&'static str, Vec<String>>,
    pub memory: &'a [Summary],
    pub ledger: &'a Findings,
    /// Seen while running (an Idempotency-Key answering two orders, another user's order listed).
    pub leaks: &'a [String],
}

#[derive(Default)]
struct RouteStats {
    took: Vec<Duration>,
    server_errors_outside: usize,
    server_errors_during: usize,
    failed_outside: usize,
    failed_during: usize,
    hung: usize,
}

/// Prints the table; returns every broken bound.
pub fn print(run: &Run) -> Vec<String> {
    let mut broken = Vec::new();
    let mut routes: BTreeMap<&str, RouteStats> = BTreeMap::new();
    for s in run.samples {
        let r = routes.entry(s.route).or_default();
        r.took.push(s.took);
        let during = s.during(run.windows);
        match s.outcome {
            Outcome::Status(code) if code >= 500 && during => r.server_errors_during += 1,
            Outcome::Status(code) if code >= 500 => r.server_errors_outside += 1,
            // The identity provider's own page while it is stopped on purpose: the browser
            // waits on it, not on a service of ours.
            Outcome::Hung if during && s.route.contains("emulator") => r.server_errors_during += 1,
            Outcome::Hung => r.hung += 1,
            Outcome::Failed if during => r.failed_during += 1,
            Outcome::Failed => r.failed_outside += 1,
            Outcome::Status(_) => {}
        }
    }
    println!(
        "\n== soak: {} users, {} s, {} requests, {} fault(s)\n",
        run.users,
        run.duration.as_secs(),
        run.samples.len(),
        run.faults.len()
    );
    println!(
        "{:<44} {:>6} {:>8} {:>8} {:>8} {:>5} {:>9} {:>9}",
        "route", "count", "p50 ms", "p99 ms", "max ms", "hung", "5xx out", "5xx/conn in"
    );
    println!("{}", "-".repeat(104));
    for (route, r) in &mut routes {
        r.took.sort();
        let pct = |p: f64| r.took.get(((r.took.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default();
        let outside = r.server_errors_outside + r.failed_outside;
        println!(
            "{route:<44} {:>6} {:>8} {:>8} {:>8} {:>5} {:>9} {:>9}",
            r.took.len(),
            pct(0.5).as_millis(),
            pct(0.99).as_millis(),
            pct(1.0).as_millis(),
            r.hung,
            outside,
            r.server_errors_during + r.failed_during,
        );
        if r.hung > 0 {
            broken.push(format!("{route}: {} request(s) did not complete within {} s", r.hung, BOUND.as_secs()));
        }
        if outside > 0 {
            broken.push(format!("{route}: {outside} 5xx or unanswered request(s) outside the fault windows"));
        }
    }

    println!("\n{:<32} {:>9} {:>13}  what users saw", "fault", "down s", "recovered s");
    println!("{}", "-".repeat(104));
    for f in run.faults {
        let recovered = f.recovered.map_or("NO".to_string(), |d| format!("{:.1}", d.as_secs_f64()));
        let seen = run.messages.get(f.fault.name).cloned().unwrap_or_default();
        let seen = if seen.is_empty() { "nothing failed".to_string() } else { seen.join(" | ") };
        println!("{:<32} {:>9.1} {:>13}  {seen}", f.fault.name, f.down.as_secs_f64(), recovered);
        if let Some(e) = &f.error {
            broken.push(format!("{}: {e}", f.fault.name));
        } else if f.recovered.is_none() {
            broken.push(format!(
                "{}: users were not served again within {} s",
                f.fault.name,
                faults::RECOVERY_BOUND.as_secs()
            ));
        }
    }
    if let Some(seen) = run.messages.get("no fault") {
        println!("{:<32} {:>9} {:>13}  {}", "(no fault running)", "", "", seen.join(" | "));
    }

    println!(
        "\n{:<16} {:>10} {:>10} {:>10} {:>12} {:>8}",
        "service RSS", "start MiB", "peak MiB", "end MiB", "warm MiB", "growth"
    );
    println!("{}", "-".repeat(104));
    let mib = |kib: u64| kib as f64 / 1024.0;
    // Seconds of load after a warm-up of seconds cannot tell growth from warming up.
    let judge_memory = run.duration >= JUDGED_FROM;
    if !judge_memory {
        println!("(growth not judged: runs shorter than {} s cannot tell it from warm-up)", JUDGED_FROM.as_secs());
    }
    for m in run.memory {
        println!(
            "{:<16} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>7.1}%",
            m.service,
            mib(m.start_kib),
            mib(m.peak_kib),
            mib(m.end_kib),
            mib(m.warm_kib),
            m.growth_percent
        );
        if judge_memory && m.growth_percent > GROWTH_BOUND_PERCENT {
            broken.push(format!("{}: RSS grew {:.1} % after warm-up", m.service, m.growth_percent));
        }
    }

    let l = run.ledger;
    println!(
        "\nacknowledged orders (201): {}, lost: {}, owner changed: {}, created twice for one key: {}",
        l.acknowledged,
        l.lost.len(),
        l.changed_owner.len(),
        l.duplicated.len()
    );
    println!(
        "orders shown to users checked against the database: {}, not their own: {}",
        l.shown_checked,
        l.leaked.len() + run.leaks.len()
    );
    for (what, items) in [
        ("lost", &l.lost),
        ("changed owner", &l.changed_owner),
        ("created twice", &l.duplicated),
        ("leaked", &l.leaked),
    ] {
        if !items.is_empty() {
            broken.push(format!("{} order(s) {what}: {}", items.len(), items.join(", ")));
        }
    }
    if !run.leaks.is_empty() {
        broken.push(format!("seen while running: {}", run.leaks.join("; ")));
    }
    if l.acknowledged == 0 {
        broken.push("no order creation was acknowledged: the check checked nothing".into());
    }
    broken
}
