//! The OTLP span exporter: a batch of spans as one OTLP `ExportTraceServiceRequest` (encoded
//! by [`super::encode`]), sent with the workspace's one HTTP client, reqwest, either
//! as OTLP/HTTP (`application/x-protobuf`, the specification's default) or as OTLP/gRPC (one
//! length-prefixed message over HTTP/2, `grpc-status` in the trailers), which is what the
//! Container Apps managed agent speaks.
//!
//! It runs on the exporter's own one-thread runtime ([`super::install`]), so it works the same
//! under `#[tokio::main]`, in tests (a runtime per test) and at shutdown, when the service's
//! runtime is already gone.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use url::Url;

use super::encode::{ResourceFields, export_request};
use super::settings::{OtlpSettings, Protocol};

/// The gRPC method of the OTLP trace service (opentelemetry-proto, `trace_service.proto`).
pub const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub struct OtlpExporter {
    http: reqwest::Client,
    url: Url,
    protocol: Protocol,
    headers: HeaderMap,
    timeout: Duration,
    resource: ResourceFields,
}

impl fmt::Debug for OtlpExporter {
    // Headers may carry an API key: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpExporter").field("url", &self.url.as_str()).field("protocol", &self.protocol).finish()
    }
}

impl OtlpExporter {
    pub fn new(settings: &OtlpSettings) -> std::io::Result<OtlpExporter> {
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        let url = match settings.protocol {
            Protocol::HttpProtobuf => settings.endpoint.clone(),
            Protocol::Grpc => {
                // gRPC is HTTP/2 only; over plain http there is no ALPN to agree on it.
                if settings.endpoint.scheme() == "http" {
                    builder = builder.http2_prior_knowledge();
                }
                let base = settings.endpoint.as_str().trim_end_matches('/');
                Url::parse(&format!("{base}{GRPC_EXPORT_PATH}")).map_err(std::io::Error::other)?
            }
        };
        let http = builder.build().map_err(std::io::Error::other)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
                headers.insert(name, value);
            }
        }
        Ok(OtlpExporter {
            http,
            url,
            protocol: settings.protocol,
            headers,
            timeout: settings.timeout,
            resource: ResourceFields::new(&settings.service_name, &settings.resource),
        })
    }

    /// Sends one batch of spans, written by `encode::span_field`, once; `Err` says why it was
    /// not taken and whether sending it again may succeed.
    pub async fn send(&self, spans: &[u8]) -> Result<(), Failure> {
        match self.request(spans).send().await {
            Ok(response) => outcome(self.protocol, response).await,
            // A request that cannot be built will not be built later either; a connection that
            // failed or timed out is transient (the specification's "retryable" errors).
            Err(e) if e.is_builder() => Err(Failure::new(format!("cannot build the request: {e}"), Retry::Never)),
            Err(e) => Err(Failure::new(format!("cannot reach the collector: {}", without_url(&e)), Retry::Backoff)),
        }
    }

    fn request(&self, spans: &[u8]) -> reqwest::RequestBuilder {
        let message = export_request(spans, &self.resource);
        let mut request = self.http.post(self.url.clone()).headers(self.headers.clone());
        // Zero is no limit (configuration/common.md, Timeout: "Implementations SHOULD interpret
        // timeout zero values ... as no limit"); a flush or shutdown is still bounded.
        if !self.timeout.is_zero() {
            request = request.timeout(self.timeout);
        }
        match self.protocol {
            Protocol::HttpProtobuf => request.header(header::CONTENT_TYPE, "application/x-protobuf").body(message),
            Protocol::Grpc => request
                .header(header::CONTENT_TYPE, "application/grpc")
                .header(header::TE, "trailers")
                .body(grpc_frame(&message)),
        }
    }
}

/// Why a batch was not taken (never a header, which may hold a key), and whether to send it
/// again.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub reason: String,
    pub retry: Retry,
}

impl Failure {
    fn new(reason: String, retry: Retry) -> Failure {
        Failure { reason, retry }
    }
}

/// What opentelemetry-proto's `docs/specification.md` says of a failed export.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Retry {
    /// Not retryable: the same batch would fail again.
    Never,
    /// Retryable, after an exponential back-off.
    Backoff,
    /// Retryable, after the wait the collector asked for ("the client SHOULD honour the waiting
    /// interval specified in the Retry-After header").
    After(Duration),
}

/// OTLP/HTTP: "429, 502, 503 or 504" are retryable, every other error status not. gRPC's HTTP
/// status mapping makes these UNAVAILABLE, retryable too, so both transports read them alike.
fn http_retry(status: StatusCode, headers: &HeaderMap) -> Retry {
    match status.as_u16() {
        429 | 502..=504 => match headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()) {
            // delta-seconds only; an HTTP-date is left to the back-off.
            Some(after) => after.trim().parse().map_or(Retry::Backoff, |s| Retry::After(Duration::from_secs(s))),
            None => Retry::Backoff,
        },
        _ => Retry::Never,
    }
}

/// OTLP/gRPC's retryable codes: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE,
/// UNAVAILABLE, DATA_LOSS. RESOURCE_EXHAUSTED (8) is retryable only "if the server signals
/// that a recovery from resource exhaustion is possible" in a RetryInfo detail, which is not
/// read here: it is not retried.
fn grpc_retry(code: &str) -> Retry {
    match code {
        "1" | "4" | "10" | "11" | "14" | "15" => Retry::Backoff,
        _ => Retry::Never,
    }
}

/// A gRPC message: uncompressed flag, big-endian length, the protobuf bytes.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(message.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

/// The most of a collector's answer that is read.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// `Ok` if the collector took the batch. Error texts name the status, never a header.
async fn outcome(protocol: Protocol, response: reqwest::Response) -> Result<(), Failure> {
    let status = response.status();
    let http: axum::http::Response<reqwest::Body> = response.into();
    let (parts, body) = http.into_parts();
    // opentelemetry-proto docs/specification.md: "The client MUST limit the size of the response
    // body when parsing it", 4 MiB recommended, and a larger one is a non-retryable error.
    let collected = Limited::new(body, MAX_ANSWER).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            Failure::new("the collector's answer is larger than 4 MiB".into(), Retry::Never)
        } else {
            // The connection broke, or timed out, during the answer.
            Failure::new(format!("reading the answer: {e}"), Retry::Backoff)
        }
    })?;
    if status != StatusCode::OK && !(protocol == Protocol::HttpProtobuf && status.is_success()) {
        return Err(Failure::new(format!("the collector answered {status}"), http_retry(status, &parts.headers)));
    }
    if protocol == Protocol::Grpc {
        // A gRPC error without a message comes in the headers ("trailers-only"); otherwise
        // the status is in the trailers.
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let grpc_status = trailers.get("grpc-status").or_else(|| parts.headers.get("grpc-status"));
        match grpc_status.and_then(|v| v.to_str().ok()) {
            Some("0") => {}
            Some(code) => {
                return Err(Failure::new(format!("the collector answered grpc-status {code}"), grpc_retry(code)));
            }
            None => return Err(Failure::new("the collector's answer has no grpc-status".into(), Retry::Never)),
        }
    }
    Ok(())
}

/// reqwest's error text without the URL (which may carry credentials in a hosted endpoint).
fn without_url(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut reason = if e.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() };
    while let Some(s) = source {
        reason = s.to_string();
        source = s.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::settings::BatchSettings;
    use crate::telemetry::test_collector::{Answer, Collector};

    fn exporter(collector: &Collector) -> OtlpExporter {
        OtlpExporter::new(&collector.settings(Duration::from_secs(10), BatchSettings::default())).unwrap()
    }

    #[tokio::test]
    async fn a_zero_timeout_is_no_limit() {
        let collector = Collector::start([]).await;
        let exporter = OtlpExporter::new(&collector.settings(Duration::ZERO, BatchSettings::default())).unwrap();
        assert_eq!(exporter.send(&[]).await, Ok(()));
        assert_eq!(collector.received().len(), 1);
    }
    #[tokio::test]
    async fn the_specifications_transient_errors_are_retryable_and_no_others() {
        let answer = |status: u16, after: Option<&str>| match after {
            None => Answer::status(status),
            Some(after) => {
                let headers = vec![("retry-after", after.to_string())];
                Answer::Status(StatusCode::from_u16(status).unwrap(), headers, axum::body::Body::empty())
            }
        };
        let expected = [
            (answer(429, None), Retry::Backoff),
            (answer(502, None), Retry::Backoff),
            (answer(503, Some("7")), Retry::After(Duration::from_secs(7))),
            (answer(504, Some("Wed, 21 Oct 2015 07:28:00 GMT")), Retry::Backoff),
            (answer(400, Some("1")), Retry::Never),
            (answer(401, None), Retry::Never),
            (answer(404, None), Retry::Never),
            (answer(413, None), Retry::Never),
            (answer(500, None), Retry::Never),
        ];
        let (answers, retries): (Vec<_>, Vec<_>) = expected.into_iter().unzip();
        let collector = Collector::start(answers).await;
        let exporter = exporter(&collector);
        for retry in retries {
            assert_eq!(exporter.send(&[]).await.unwrap_err().retry, retry);
        }
        // Nothing listening: the connection fails, which is transient.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut settings = collector.settings(Duration::from_secs(10), BatchSettings::default());
        settings.endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap()).parse().unwrap();
        drop(listener);
        assert_eq!(OtlpExporter::new(&settings).unwrap().send(&[]).await.unwrap_err().retry, Retry::Backoff);
    }

    #[test]
    fn grpc_codes_are_retryable_as_the_specification_lists_them() {
        // CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
        for code in ["1", "4", "10", "11", "14", "15"] {
            assert_eq!(grpc_retry(code), Retry::Backoff, "{code}");
        }
        // INVALID_ARGUMENT, NOT_FOUND, PERMISSION_DENIED, RESOURCE_EXHAUSTED (no RetryInfo read),
        // UNIMPLEMENTED, INTERNAL, UNAUTHENTICATED, and what is not a code.
        for code in ["2", "3", "5", "7", "8", "12", "13", "16", "x"] {
            assert_eq!(grpc_retry(code), Retry::Never, "{code}");
        }
    }

    #[tokio::test]
    async fn an_answer_over_4_mib_is_not_read_and_fails() {
        let big = |len: usize| Answer::Status(StatusCode::OK, Vec::new(), vec![0; len].into());
        // A stream, without a length, and a body whose Content-Length says it at once.
        let stream = |len: usize| {
            let chunks = futures::stream::iter((0..4).map(move |_| Ok::<_, std::io::Error>(vec![0u8; len / 4])));
            Answer::Status(StatusCode::OK, Vec::new(), axum::body::Body::from_stream(chunks))
        };
        let collector = Collector::start([big(MAX_ANSWER), big(MAX_ANSWER + 1), stream(MAX_ANSWER + 4)]).await;
        let exporter = exporter(&collector);
        assert_eq!(exporter.send(&[]).await, Ok(()), "4 MiB is read");
        for _ in 0..2 {
            let failed = exporter.send(&[]).await.unwrap_err();
            assert!(failed.reason.contains("larger than 4 MiB"), "{failed:?}");
            assert_eq!(failed.retry, Retry::Never);
        }
    }
}
