//! Logs and traces, set up once per process by [`init`]:
//!
//! - logs: `tracing` with pretty output for people, JSON for containers (`LOG_FORMAT=json`),
//!   filtered by `RUST_LOG` (default `info`, with rmcp's per-request notices at `warn`);
//! - traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, every span is
//!   recorded ([`layer`]) and exported over OTLP (HTTP/protobuf or gRPC) in batches
//!   ([`batch`], [`export`]), W3C trace context is read from each request and sent with each
//!   outbound call ([`context`]), and JSON log lines carry `trace_id`/`span_id` and the spans
//!   as exported ([`logs`]). Unset, none of that runs.
//!
//! Nothing in this workspace logs or records a token: the types that hold one redact
//! themselves in `Debug`, and span attributes come from validated claims, never a token.

mod batch;
pub mod context;
mod encode;
pub mod export;
mod install;
mod layer;
mod logs;
mod sampling;
pub mod settings;
mod span_record;
#[cfg(test)]
mod test_collector;
mod trace_context;

pub use install::{Telemetry, init, init_with};
pub use settings::{TelemetrySettings, VARIABLES};
