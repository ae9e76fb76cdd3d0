//! What the standard OpenTelemetry variables ask for: the OTLP endpoint, protocol, headers,
//! timeout (each also for traces only, overriding the general one), service name, resource
//! attributes and sampler. Read the way the OpenTelemetry
//! specification describes ("SDK environment variables", "OTLP exporter configuration"): an
//! invalid value is reported and ignored, never fatal, so a typo in a tracing variable does not
//! stop a service; an unset endpoint means no export at all.

use std::time::Duration;

use url::Url;

use crate::settings::Env;

pub const LOG_FORMAT: &str = "LOG_FORMAT";
pub const RUST_LOG: &str = "RUST_LOG";
pub const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
pub const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
pub const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
pub const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
pub const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
pub const TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
pub const TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
pub const TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
pub const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
pub const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
pub const SAMPLER: &str = "OTEL_TRACES_SAMPLER";
pub const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
pub const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
pub const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
pub const BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
pub const BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
pub const BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";

/// Every variable [`TelemetrySettings::from_env`] reads. Each service's configuration table
/// lists them with its own. The span limits are the specification's defaults (128 attributes,
/// 128 events per span), not configurable.
pub const VARIABLES: [&str; 19] = [
    LOG_FORMAT,
    RUST_LOG,
    ENDPOINT,
    TRACES_ENDPOINT,
    PROTOCOL,
    TRACES_PROTOCOL,
    HEADERS,
    TRACES_HEADERS,
    TIMEOUT,
    TRACES_TIMEOUT,
    SERVICE_NAME,
    RESOURCE_ATTRIBUTES,
    SAMPLER,
    SAMPLER_ARG,
    TRACES_EXPORTER,
    SDK_DISABLED,
    BSP_SCHEDULE_DELAY,
    BSP_MAX_QUEUE_SIZE,
    BSP_MAX_EXPORT_BATCH_SIZE,
];

/// How logs are written and whether (and where) traces are exported.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// Write log lines to stderr (always, for a service; a test that only wants the export
    /// turns it off).
    pub logs: bool,
    pub json_logs: bool,
    /// `RUST_LOG`; `None`: `info`, with rmcp's per-request notices at `warn`.
    pub filter: Option<String>,
    /// `None`: no OpenTelemetry at all (no layer, no propagation, no cost).
    pub otlp: Option<OtlpSettings>,
    /// Values that were ignored, and why: logged once logging is up.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct OtlpSettings {
    /// Where spans are sent: the full URL for HTTP (`.../v1/traces`), the server for gRPC.
    pub endpoint: Url,
    pub protocol: Protocol,
    /// Extra request headers (an API key for a hosted backend). Never logged.
    pub headers: Vec<(String, String)>,
    /// How long one export request may take; zero: no limit.
    pub timeout: Duration,
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, without `service.name` (that is [`Self::service_name`]).
    pub resource: Vec<(String, String)>,
    pub sampler: Sampler,
    pub batch: BatchSettings,
}

/// The batch span processor's `OTEL_BSP_*` settings, with the specification's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    /// How long a finished span may wait before it is sent (5 s).
    pub schedule_delay: Duration,
    /// Spans waiting at most (2048); more are dropped.
    pub max_queue_size: usize,
    /// Spans per export request at most (512; never more than the queue holds).
    pub max_export_batch_size: usize,
}

impl BatchSettings {
    /// Batches a full queue holds.
    pub fn batches(&self) -> usize {
        self.max_queue_size.div_ceil(self.max_export_batch_size)
    }
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings { schedule_delay: Duration::from_secs(5), max_queue_size: 2048, max_export_batch_size: 512 }
    }
}

/// The OTLP transports: HTTP with protobuf bodies (the default the specification recommends),
/// and gRPC, the only one the Container Apps managed OpenTelemetry agent accepts ("The managed
/// agent only supports `grpc`", Collect and read OpenTelemetry data in Azure Container Apps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    Grpc,
}

/// `OTEL_TRACES_SAMPLER` and its argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    TraceIdRatio(f64),
    ParentBasedAlwaysOn,
    ParentBasedAlwaysOff,
    ParentBasedTraceIdRatio(f64),
}

/// The specification's default: 10 seconds.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl TelemetrySettings {
    /// Reads the variables in [`VARIABLES`]; `service` names the service when
    /// `OTEL_SERVICE_NAME` does not.
    pub fn from_env(env: &mut Env, service: &str) -> TelemetrySettings {
        let json_logs = env.get(LOG_FORMAT).is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let filter = env.get(RUST_LOG);
        let mut warnings = Vec::new();
        let otlp = otlp(env, service, &mut warnings);
        TelemetrySettings { logs: true, json_logs, filter, otlp, warnings }
    }
}

fn otlp(env: &mut Env, service: &str, warnings: &mut Vec<String>) -> Option<OtlpSettings> {
    let disabled = env.get(SDK_DISABLED).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let exporter = env.get(TRACES_EXPORTER).map(|e| e.to_ascii_lowercase());
    let protocol = protocol(env, warnings);
    let endpoint = endpoint(env, protocol, warnings);
    // The traces' list replaces the general one, as their endpoint and protocol do.
    let headers_from = if env.get(TRACES_HEADERS).is_some() { TRACES_HEADERS } else { HEADERS };
    let headers = http_headers(headers_from, key_values(env, headers_from), warnings);
    let timeout = timeout(env, warnings);
    let mut resource = resource_attributes(env, warnings);
    let from_resource = resource.iter().position(|(k, _)| k == "service.name").map(|i| resource.remove(i).1);
    let service_name = env.get(SERVICE_NAME).or(from_resource).unwrap_or_else(|| service.to_string());
    let sampler = sampler(env, warnings);
    let batch = batch(env, warnings);
    if disabled {
        return None;
    }
    match exporter.as_deref() {
        None | Some("otlp") => {}
        Some("none") => return None,
        Some(other) => {
            warnings.push(format!("{TRACES_EXPORTER}={other:?}: only `otlp` and `none` are supported; not exporting"));
            return None;
        }
    }
    Some(OtlpSettings { endpoint: endpoint?, protocol, headers, timeout, service_name, resource, sampler, batch })
}

/// The traces' timeout, else the general one, else 10 s. An invalid value is ignored, as if
/// unset (configuration/common.md: "generate a warning and gracefully ignore the setting, i.e.,
/// treat them as not set"); zero is no limit.
fn timeout(env: &mut Env, warnings: &mut Vec<String>) -> Duration {
    for name in [TRACES_TIMEOUT, TIMEOUT] {
        if let Some(ms) = env.get(name) {
            match ms.parse::<u64>() {
                Ok(ms) => return Duration::from_millis(ms),
                Err(_) => warnings.push(format!("{name}={ms:?} is not a number of milliseconds; ignored")),
            }
        }
    }
    DEFAULT_TIMEOUT
}

fn batch(env: &mut Env, warnings: &mut Vec<String>) -> BatchSettings {
    let defaults = BatchSettings::default();
    let mut number = |name: &str, default: usize| match env.get(name) {
        None => default,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.push(format!("{name}={v:?} is not a positive number; using {default}"));
                default
            }
        },
    };
    let delay = number(BSP_SCHEDULE_DELAY, 5000);
    let max_queue_size = number(BSP_MAX_QUEUE_SIZE, defaults.max_queue_size);
    let max_export_batch_size = number(BSP_MAX_EXPORT_BATCH_SIZE, defaults.max_export_batch_size).min(max_queue_size);
    BatchSettings { schedule_delay: Duration::from_millis(delay as u64), max_queue_size, max_export_batch_size }
}

fn protocol(env: &mut Env, warnings: &mut Vec<String>) -> Protocol {
    let (name, value) = match env.get(TRACES_PROTOCOL) {
        Some(v) => (TRACES_PROTOCOL, v),
        None => match env.get(PROTOCOL) {
            Some(v) => (PROTOCOL, v),
            None => return Protocol::HttpProtobuf,
        },
    };
    match value.to_ascii_lowercase().as_str() {
        "http/protobuf" => Protocol::HttpProtobuf,
        "grpc" => Protocol::Grpc,
        other => {
            warnings.push(format!("{name}={other:?}: supported are `http/protobuf` and `grpc`; using http/protobuf"));
            Protocol::HttpProtobuf
        }
    }
}

/// The signal-specific endpoint is used as it is; the general one is a base to which HTTP adds
/// `v1/traces` (OTLP exporter configuration: "Endpoint URLs for OTLP/HTTP").
fn endpoint(env: &mut Env, protocol: Protocol, warnings: &mut Vec<String>) -> Option<Url> {
    let (name, raw, base) = match env.get(TRACES_ENDPOINT) {
        Some(url) => (TRACES_ENDPOINT, url, false),
        None => (ENDPOINT, env.get(ENDPOINT)?, true),
    };
    let url = match Url::parse(&raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        _ => {
            warnings.push(format!("{name}={raw:?} is not an http(s) URL; not exporting traces"));
            return None;
        }
    };
    if !base || protocol == Protocol::Grpc {
        return Some(url);
    }
    // To the path, keeping a query string where it was (the endpoint's path "MUST be honoured").
    let mut url = url;
    let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Some(url)
}

/// `key1=value1,key2=value2`, percent-decoded (W3C Baggage's format, as the specification says):
/// each entry, `None` where it is not `key=value`.
fn key_values(env: &mut Env, name: &str) -> Vec<Option<(String, String)>> {
    let Some(raw) = env.get(name) else { return Vec::new() };
    raw.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|item| {
            item.split_once('=')
                .and_then(|(k, v)| Some((percent_decode(k.trim())?, percent_decode(v.trim())?)))
                .filter(|(k, _)| !k.is_empty())
        })
        .collect()
}

/// `OTEL_RESOURCE_ATTRIBUTES`, all or nothing: "If any invalid value is found, the entire value
/// of OTEL_RESOURCE_ATTRIBUTES SHOULD be discarded" (the resource SDK specification); a key given
/// twice keeps its last value, as an attribute is set again (keys "MUST be unique").
fn resource_attributes(env: &mut Env, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let Some(pairs) = key_values(env, RESOURCE_ATTRIBUTES).into_iter().collect::<Option<Vec<_>>>() else {
        warnings.push(format!("{RESOURCE_ATTRIBUTES} has an entry that is not key=value; all of it is ignored"));
        return Vec::new();
    };
    let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        match unique.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => unique.push((key, value)),
        }
    }
    unique
}

/// Headers that HTTP can carry; an entry that is not `key=value`, or a header HTTP cannot send,
/// is named in a warning (never its value, which may be a key) rather than dropped without a
/// word when the exporter starts.
fn http_headers(
    name: &str,
    entries: Vec<Option<(String, String)>>,
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut valid = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            None => warnings.push(format!("{name} has an entry that is not key=value; ignored")),
            Some((key, value))
                if axum::http::HeaderName::try_from(key.as_str()).is_ok()
                    && axum::http::HeaderValue::from_str(&value).is_ok() =>
            {
                valid.push((key, value));
            }
            Some((key, _)) => warnings.push(format!("{name}: {key:?} is not a header HTTP can send; ignored")),
        }
    }
    valid
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn sampler(env: &mut Env, warnings: &mut Vec<String>) -> Sampler {
    let arg = env.get(SAMPLER_ARG);
    let ratio = |warnings: &mut Vec<String>| match arg.as_deref().map(str::parse::<f64>) {
        None => 1.0,
        Some(Ok(r)) if (0.0..=1.0).contains(&r) => r,
        Some(_) => {
            warnings.push(format!("{SAMPLER_ARG} is not a ratio between 0 and 1; using 1.0"));
            1.0
        }
    };
    match env.get(SAMPLER).map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("parentbased_always_on") => Sampler::ParentBasedAlwaysOn,
        Some("always_on") => Sampler::AlwaysOn,
        Some("always_off") => Sampler::AlwaysOff,
        Some("traceidratio") => Sampler::TraceIdRatio(ratio(warnings)),
        Some("parentbased_always_off") => Sampler::ParentBasedAlwaysOff,
        Some("parentbased_traceidratio") => Sampler::ParentBasedTraceIdRatio(ratio(warnings)),
        Some(other) => {
            warnings.push(format!("{SAMPLER}={other:?} is not a supported sampler; using parentbased_always_on"));
            Sampler::ParentBasedAlwaysOn
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> TelemetrySettings {
        TelemetrySettings::from_env(&mut Env::from_map(vars.iter().copied()), "orders-api")
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let s = read(&[("OTEL_SERVICE_NAME", "x"), ("OTEL_TRACES_SAMPLER", "always_on")]);
        assert!(s.otlp.is_none() && s.warnings.is_empty());
        let off = read(&[(ENDPOINT, "http://collector:4318"), (SDK_DISABLED, "true")]);
        assert!(off.otlp.is_none());
        let none = read(&[(ENDPOINT, "http://collector:4318"), (TRACES_EXPORTER, "none")]);
        assert!(none.otlp.is_none());
    }

    #[test]
    fn endpoints_follow_the_specification() {
        let s = read(&[(ENDPOINT, "http://collector:4318/")]).otlp.unwrap();
        assert_eq!(s.endpoint.as_str(), "http://collector:4318/v1/traces");
        assert_eq!(
            (s.protocol, s.timeout, s.service_name.as_str()),
            (Protocol::HttpProtobuf, DEFAULT_TIMEOUT, "orders-api")
        );
        assert_eq!(s.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(s.batch, BatchSettings::default());
        // A base with a path of its own, or a query string: `v1/traces` goes onto the path.
        let s = read(&[(ENDPOINT, "https://otlp.example/tenant/a/")]).otlp.unwrap();
        assert_eq!(s.endpoint.as_str(), "https://otlp.example/tenant/a/v1/traces");
        let s = read(&[(ENDPOINT, "http://collector:4318?key=1")]).otlp.unwrap();
        assert_eq!(s.endpoint.as_str(), "http://collector:4318/v1/traces?key=1");
        let s = read(&[(ENDPOINT, "http://a:4318"), (TRACES_ENDPOINT, "http://b:9999/custom")]).otlp.unwrap();
        assert_eq!(s.endpoint.as_str(), "http://b:9999/custom");
        // What the Container Apps managed agent injects.
        let s = read(&[(ENDPOINT, "http://otel.service.k8se-apps:4317/"), (PROTOCOL, "grpc")]).otlp.unwrap();
        assert_eq!((s.endpoint.as_str(), s.protocol), ("http://otel.service.k8se-apps:4317/", Protocol::Grpc));
    }

    #[test]
    fn resource_headers_and_sampler_are_parsed_and_bad_values_ignored() {
        let s = read(&[
            (ENDPOINT, "http://c:4318"),
            (RESOURCE_ATTRIBUTES, "service.name=from-resource,deployment.environment=dev%20one"),
            (HEADERS, "api-key=s3cr%3Dt, broken"),
            (SAMPLER, "parentbased_traceidratio"),
            (SAMPLER_ARG, "0.25"),
            (TIMEOUT, "soon"),
            (BSP_SCHEDULE_DELAY, "100"),
            (BSP_MAX_QUEUE_SIZE, "64"),
            (BSP_MAX_EXPORT_BATCH_SIZE, "512"),
        ]);
        let o = s.otlp.unwrap();
        assert_eq!(o.service_name, "from-resource");
        assert_eq!(o.resource, [("deployment.environment".to_string(), "dev one".to_string())]);
        assert_eq!(o.headers, [("api-key".to_string(), "s3cr=t".to_string())]);
        assert_eq!(o.sampler, Sampler::ParentBasedTraceIdRatio(0.25));
        // A batch is never larger than the queue (the specification: "must be less than or
        // equal to OTEL_BSP_MAX_QUEUE_SIZE").
        let batch =
            BatchSettings { schedule_delay: Duration::from_millis(100), max_queue_size: 64, max_export_batch_size: 64 };
        assert_eq!(o.batch, batch);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(!s.warnings.iter().any(|w| w.contains("s3cr")), "a header value is never repeated");
        let unlimited = read(&[(ENDPOINT, "http://c:4318"), (TIMEOUT, "0")]);
        assert_eq!((unlimited.otlp.unwrap().timeout, unlimited.warnings.len()), (Duration::ZERO, 0), "0: no limit");
        // One bad entry discards the whole resource; a key given twice keeps its last value;
        // a header HTTP cannot carry is named, never its value.
        let s = read(&[(ENDPOINT, "http://c:4318"), (RESOURCE_ATTRIBUTES, "a=1,broken,b=2")]);
        assert!(s.otlp.unwrap().resource.is_empty());
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        let s = read(&[(ENDPOINT, "http://c:4318"), (RESOURCE_ATTRIBUTES, "a=1,b=2,a=3")]).otlp.unwrap();
        assert_eq!(s.resource, [("a".to_string(), "3".to_string()), ("b".to_string(), "2".to_string())]);
        let s = read(&[(ENDPOINT, "http://c:4318"), (HEADERS, "bad%20name=s3cret,ok=1,x=line%0Abreak")]);
        assert_eq!(s.otlp.unwrap().headers, [("ok".to_string(), "1".to_string())]);
        assert_eq!(s.warnings.len(), 2, "{:?}", s.warnings);
        assert!(!s.warnings.iter().any(|w| w.contains("s3cret") || w.contains("break")), "{:?}", s.warnings);
        let bad = read(&[(ENDPOINT, "collector:4318"), (PROTOCOL, "http/json")]);
        assert!(bad.otlp.is_none());
        assert_eq!(bad.warnings.len(), 2, "{:?}", bad.warnings);
    }

    #[test]
    fn trace_specific_variables_override_the_general_ones() {
        // OTLP exporter configuration: each option "MUST be available" generally, "overridable
        // by a signal specific option".
        let general = [(ENDPOINT, "http://c:4318"), (HEADERS, "api-key=general,x=1"), (TIMEOUT, "2000")];
        let s = read(&general).otlp.unwrap();
        assert_eq!((s.headers.len(), s.timeout), (2, Duration::from_secs(2)));
        let traces = [
            (TRACES_HEADERS, "api-key=traces"),
            (TRACES_TIMEOUT, "0"),
            (PROTOCOL, "http/protobuf"),
            (TRACES_PROTOCOL, "grpc"),
        ];
        let s = read(&[&general[..], &traces[..]].concat()).otlp.unwrap();
        assert_eq!(s.headers, [("api-key".to_string(), "traces".to_string())], "the traces' list replaces the other");
        assert_eq!((s.timeout, s.protocol), (Duration::ZERO, Protocol::Grpc));
        let bad = read(&[(ENDPOINT, "http://c:4318"), (TIMEOUT, "1000"), (TRACES_TIMEOUT, "soon")]);
        assert_eq!(bad.otlp.unwrap().timeout, Duration::from_secs(1), "an invalid value is ignored: as if unset");
        assert!(bad.warnings[0].contains(TRACES_TIMEOUT), "{:?}", bad.warnings);
    }
}
