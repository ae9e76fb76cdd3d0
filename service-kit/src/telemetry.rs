//! Logging set-up shared by every binary: `tracing` with pretty output for people, JSON for
//! containers (`LOG_FORMAT=json`), filtered by `RUST_LOG` (default `info`, with rmcp's
//! per-request connection notices at `warn`).
//!
//! Nothing in this workspace logs a token: the types that hold one redact themselves in `Debug`.

use tracing_subscriber::EnvFilter;

const FORMAT: &str = "LOG_FORMAT";
const FILTER: &str = "RUST_LOG";
/// The variables [`init`] reads, before any service reads its settings: each service's
/// configuration table lists them with its own.
pub const VARIABLES: [&str; 2] = [FORMAT, FILTER];

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init() {
    let filter = EnvFilter::try_from_env(FILTER).unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    let json = std::env::var(FORMAT).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.compact().try_init() };
}
