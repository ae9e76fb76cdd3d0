//! Installing the global subscriber: `tracing` logs (pretty for people, JSON in containers,
//! filtered by `RUST_LOG`) and, when an OTLP endpoint is configured, the OpenTelemetry layer
//! exporting every span through a batch processor.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler as SdkSampler, SdkTracerProvider};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::context::set_exporting;
use super::export::OtlpExporter;
use super::logs::WithTraceIds;
use super::settings::{OtlpSettings, Sampler, TelemetrySettings};
use crate::settings::Env;

/// Keeps the exporter running; dropping it (at the end of `main`) sends the spans still queued.
#[must_use = "dropping it stops exporting spans"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and waits for the collector's answer (blocking: from async
    /// code, call it through `spawn_blocking`).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
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
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if !settings.logs {
        None
    } else if settings.json_logs {
        Some(fmt.json().flatten_event(true).map_event_format(WithTraceIds).boxed())
    } else {
        Some(fmt.compact().boxed())
    };
    let provider = settings.otlp.as_ref().and_then(|otlp| match provider(otlp) {
        Ok(provider) => Some(provider),
        Err(e) => {
            eprintln!("cannot start exporting traces: {e}");
            None
        }
    });
    let otel = provider.as_ref().map(|p| {
        // Only what a trace shows, nothing per poll: no busy/idle timings (two clock reads at
        // every enter and exit of a span, which an async span does at every poll), and no
        // OpenTelemetry context made current on entering a span (nothing here reads
        // `opentelemetry::Context::current()`; parents come from the `tracing` span tree).
        // No `level`/`target` attributes either: every span would carry two more that no
        // view, query or test reads (the span's name and `service.name` say where it is from).
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(env!("CARGO_PKG_NAME")))
            .with_level(false)
            .with_target(false)
            .with_threads(false)
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_context_activation(false)
    });
    let installed = tracing_subscriber::registry().with(filter).with(logs).with(otel).try_init().is_ok();
    if !installed {
        // Someone installed a subscriber first (a test harness): leave it, and export nothing.
        if let Some(provider) = provider {
            let _ = provider.shutdown();
        }
        return Telemetry { provider: None };
    }
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    if let (Some(otlp), Some(_)) = (&settings.otlp, &provider) {
        set_exporting();
        tracing::info!(endpoint = %otlp.endpoint, protocol = ?otlp.protocol, service = %otlp.service_name, "exporting traces");
    }
    Telemetry { provider }
}

fn provider(otlp: &OtlpSettings) -> std::io::Result<SdkTracerProvider> {
    let exporter = OtlpExporter::new(otlp)?;
    let mut resource = Resource::builder_empty().with_service_name(otlp.service_name.clone());
    for (key, value) in &otlp.resource {
        resource = resource.with_attribute(KeyValue::new(key.clone(), value.clone()));
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        .with_sampler(sampler(otlp.sampler))
        .with_resource(resource.build())
        .build())
}

fn sampler(s: Sampler) -> SdkSampler {
    match s {
        Sampler::AlwaysOn => SdkSampler::AlwaysOn,
        Sampler::AlwaysOff => SdkSampler::AlwaysOff,
        Sampler::TraceIdRatio(r) => SdkSampler::TraceIdRatioBased(r),
        Sampler::ParentBasedAlwaysOn => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => SdkSampler::ParentBased(Box::new(SdkSampler::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(r) => SdkSampler::ParentBased(Box::new(SdkSampler::TraceIdRatioBased(r))),
    }
}
