//! Every request the simulated users make: route, when, how long, and how it ended; and what the
//! run saw otherwise (fault windows, messages users were shown, orders acknowledged).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every response must complete within this; a request still open after it is hung.
pub const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    /// Not complete within [`BOUND`].
    Hung,
    /// No HTTP answer (connection refused or reset): expected only while a service is down.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub route: &'static str,
    /// Since the start of the run.
    pub start: Duration,
    pub took: Duration,
    pub outcome: Outcome,
}

/// A fault, from the moment it is injected until the stack answered users normally again.
#[derive(Debug, Clone)]
pub struct Window {
    pub start: Duration,
    pub end: Duration,
}

/// An order creation orders-api acknowledged with 201 (the direct API users).
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub id: String,
    pub owner_oid: String,
    pub idempotency_key: String,
    pub product: String,
}

#[derive(Default)]
struct Log {
    samples: Vec<Sample>,
    /// Fault → what users were shown while it lasted (distinct, first few).
    messages: BTreeMap<&'static str, Vec<String>>,
    acknowledged: Vec<Acknowledged>,
    /// Order ids a user was shown that are not its own, with the user.
    leaks: Vec<String>,
    /// (user's oid, order id) pairs users were shown, checked against the database at the end.
    shown: Vec<(String, String)>,
    windows: Vec<Window>,
    /// The fault running now, if any.
    current: Option<&'static str>,
}

/// Shared by every user, the fault injector and the report.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    log: Arc<Mutex<Log>>,
}

impl Recorder {
    pub fn start() -> Recorder {
        Recorder { started: Instant::now(), log: Arc::new(Mutex::new(Log::default())) }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        // A panicking user thread poisons nothing we cannot still read.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut log)
    }

    pub fn record(&self, route: &'static str, started: Instant, outcome: Outcome) {
        let start = started.saturating_duration_since(self.started);
        self.with(|l| l.samples.push(Sample { route, start, took: started.elapsed(), outcome }));
    }

    /// What a user was shown when something failed: kept per fault (or "no fault").
    pub fn message(&self, text: &str) {
        let text: String = text.chars().take(160).collect();
        self.with(|l| {
            let seen = l.messages.entry(l.current.unwrap_or("no fault")).or_default();
            if seen.len() < 4 && !seen.contains(&text) {
                seen.push(text);
            }
        });
    }

    pub fn acknowledged(&self, order: Acknowledged) {
        self.with(|l| l.acknowledged.push(order));
    }

    pub fn leak(&self, what: String) {
        self.with(|l| l.leaks.push(what));
    }

    pub fn shown(&self, oid: &str, id: &str) {
        self.with(|l| l.shown.push((oid.to_string(), id.to_string())));
    }

    pub fn fault_started(&self, fault: &'static str) -> Duration {
        let now = self.elapsed();
        self.with(|l| l.current = Some(fault));
        now
    }

    pub fn fault_ended(&self, start: Duration) {
        let end = self.elapsed();
        self.with(|l| {
            l.current = None;
            l.windows.push(Window { start, end });
        });
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.with(|l| l.samples.clone())
    }

    pub fn windows(&self) -> Vec<Window> {
        self.with(|l| l.windows.clone())
    }

    pub fn messages(&self) -> BTreeMap<&'static str, Vec<String>> {
        self.with(|l| l.messages.clone())
    }

    pub fn all_acknowledged(&self) -> Vec<Acknowledged> {
        self.with(|l| l.acknowledged.clone())
    }

    pub fn leaks(&self) -> Vec<String> {
        self.with(|l| l.leaks.clone())
    }

    pub fn all_shown(&self) -> Vec<(String, String)> {
        self.with(|l| l.shown.clone())
    }
}

impl Sample {
    /// Whether this request overlapped a fault window.
    pub fn during(&self, windows: &[Window]) -> bool {
        let end = self.start + self.took;
        windows.iter().any(|w| self.start <= w.end && end >= w.start)
    }
}
