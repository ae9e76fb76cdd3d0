//! Installing the global subscriber: `tracing` logs (pretty for people, JSON in containers,
//! filtered by `RUST_LOG`) and, when an OTLP endpoint is configured, the layer recording spans
//! for export with the task exporting them on a runtime of its own.

use std::io::IsTerminal;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::mpsc as channel;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::batch::{self, Control, FLUSH_LIMIT, Queue, Retries};
use super::context::set_exporting;
use super::export::OtlpExporter;
use super::layer::{OtlpLayer, suppress_on_this_thread};
use super::logs;
use super::settings::{OtlpSettings, TelemetrySettings};
use crate::settings::Env;

/// Keeps the exporter running; dropping it (at the end of `main`) sends the spans still queued.
#[must_use = "dropping it stops exporting spans"]
pub struct Telemetry {
    exporting: Option<Exporting>,
}

/// The exporting task, its runtime, and how to talk to it.
struct Exporting {
    control: channel::UnboundedSender<Control>,
    runtime: Option<Runtime>,
}

/// How long a flush or shutdown is waited for: the task answers within [`FLUSH_LIMIT`] of the
/// request (nothing waits forever on a collector); a second more for the answer to come back.
const WAIT: Duration = FLUSH_LIMIT.saturating_add(Duration::from_secs(1));
// Within Azure Container Apps' default grace period of 30 s, whatever the queue holds.
const _: () = assert!(WAIT.as_secs() < 30);

impl Exporting {
    fn start(otlp: &OtlpSettings) -> std::io::Result<(Exporting, OtlpLayer)> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .on_thread_start(suppress_on_this_thread)
            .enable_all()
            .build()?;
        let exporter = OtlpExporter::new(otlp)?;
        let queue = Arc::new(Queue::new(otlp.batch));
        let (control, requests) = channel::unbounded_channel();
        runtime.spawn(batch::run(queue.clone(), exporter, requests, Retries::DEFAULT, FLUSH_LIMIT));
        Ok((Exporting { control, runtime: Some(runtime) }, OtlpLayer::new(otlp.sampler, queue)))
    }

    /// Asks the task for `request` and waits (blocking) for its answer, within the limit.
    fn ask(&self, request: impl FnOnce(mpsc::Sender<()>) -> Control) {
        let (done, answer) = mpsc::channel();
        if self.control.send(request(done)).is_ok() {
            let _ = answer.recv_timeout(WAIT);
        }
    }
}

impl Telemetry {
    /// Sends the spans queued so far and waits for the collector's answer, 16 s at most
    /// (blocking: from async code, call it through `spawn_blocking`).
    pub fn flush(&self) {
        if let Some(exporting) = &self.exporting {
            exporting.ask(Control::Flush);
        }
    }
}

impl Drop for Exporting {
    fn drop(&mut self) {
        self.ask(Control::Shutdown);
        // Without blocking, so dropping it is safe anywhere (even inside an async context, where
        // dropping a runtime would panic).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Installs logging and tracing from the process environment; `service` is the
/// `service.name` unless `OTEL_SERVICE_NAME` says otherwise. A second call (as in tests) is a
/// no-op.
pub fn init(service: &str) -> Telemetry {
    init_with(TelemetrySettings::from_env(&mut Env::from_process(), service))
}

/// [`init`] with explicit settings (tests and benchmarks).
pub fn init_with(settings: TelemetrySettings) -> Telemetry {
    let filter = settings.filter.as_deref().map(EnvFilter::new).unwrap_or_else(|| EnvFilter::new("info,rmcp=warn"));
    let started = settings.otlp.as_ref().and_then(|otlp| match Exporting::start(otlp) {
        Ok(started) => Some(started),
        Err(e) => {
            eprintln!("cannot start exporting traces: {e}");
            None
        }
    });
    let logs = settings.logs.then(|| {
        if settings.json_logs {
            return logs::json(std::io::stderr, started.is_some());
        }
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        // Colours are for a person at a terminal (and tracing-subscriber's default there,
        // unless NO_COLOR is set); a file, a pipe or a container's log gets plain text, without
        // escape codes in every line and the work of writing them into every span's fields.
        let fmt = if std::io::stderr().is_terminal() { fmt } else { fmt.with_ansi(false) };
        fmt.compact().boxed()
    });
    let (exporting, layer) = started.unzip();
    let installed = tracing_subscriber::registry().with(filter).with(logs).with(layer).try_init().is_ok();
    if !installed {
        // Someone installed a subscriber first (a test harness): leave it, and export nothing.
        return Telemetry { exporting: None };
    }
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    if let (Some(otlp), Some(_)) = (&settings.otlp, &exporting) {
        set_exporting(otlp.sampler);
        tracing::info!(endpoint = %otlp.endpoint, protocol = ?otlp.protocol, service = %otlp.service_name, "exporting traces");
    }
    Telemetry { exporting }
}
