//! Each service's resident memory (`VmRSS` from `/proc/<pid>/status`), sampled through the run:
//! at start, peak, end, and the growth of the process running at the end since it warmed up.

use std::collections::BTreeMap;
use std::time::Duration;

/// One reading of one process.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Duration,
    pid: u32,
    kib: u64,
}

#[derive(Default)]
pub struct Memory {
    readings: BTreeMap<&'static str, Vec<Reading>>,
}

/// What the table prints for one service.
pub struct Summary {
    pub service: &'static str,
    pub start_kib: u64,
    pub peak_kib: u64,
    pub end_kib: u64,
    /// The process running at the end: its RSS once warmed up, and the growth since (percent).
    pub warm_kib: u64,
    pub growth_percent: f64,
}

impl Memory {
    pub fn sample(&mut self, service: &'static str, pid: u32, at: Duration) {
        if let Some(kib) = rss_kib(pid) {
            self.readings.entry(service).or_default().push(Reading { at, pid, kib });
        }
    }

    /// `warm_up`: how long after a process starts its memory counts as settled.
    pub fn summaries(&self, warm_up: Duration) -> Vec<Summary> {
        self.readings
            .iter()
            .filter_map(|(service, readings)| {
                let first = readings.first()?;
                let last = readings.last()?;
                let born = readings.iter().find(|r| r.pid == last.pid)?.at;
                let warm = readings
                    .iter()
                    .find(|r| r.pid == last.pid && r.at >= born + warm_up)
                    .or_else(|| readings.iter().find(|r| r.pid == last.pid))?;
                let growth = (last.kib as f64 - warm.kib as f64) * 100.0 / warm.kib.max(1) as f64;
                Some(Summary {
                    service,
                    start_kib: first.kib,
                    peak_kib: readings.iter().map(|r| r.kib).max().unwrap_or_default(),
                    end_kib: last.kib,
                    warm_kib: warm.kib,
                    growth_percent: growth,
                })
            })
            .collect()
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
