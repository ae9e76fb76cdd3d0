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

    /// Sends one batch of spans, written by `encode::span_field`; `Err` says why it was not
    /// taken (never a header, which may hold a key).
    pub async fn send(&self, spans: &[u8]) -> Result<(), String> {
        match self.request(spans).send().await {
            Ok(response) => outcome(self.protocol, response).await,
            Err(e) => Err(format!("cannot reach the collector: {}", without_url(&e))),
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
async fn outcome(protocol: Protocol, response: reqwest::Response) -> Result<(), String> {
    let status = response.status();
    let http: axum::http::Response<reqwest::Body> = response.into();
    let (parts, body) = http.into_parts();
    // opentelemetry-proto docs/specification.md: "The client MUST limit the size of the response
    // body when parsing it", 4 MiB recommended, and a larger one is a non-retryable error.
    let collected = Limited::new(body, MAX_ANSWER).collect().await.map_err(|e| {
        if e.is::<LengthLimitError>() {
            "the collector's answer is larger than 4 MiB".to_string()
        } else {
            format!("reading the answer: {e}")
        }
    })?;
    if status != StatusCode::OK && !(protocol == Protocol::HttpProtobuf && status.is_success()) {
        return Err(format!("the collector answered {status}"));
    }
    if protocol == Protocol::Grpc {
        // A gRPC error without a message comes in the headers ("trailers-only"); otherwise
        // the status is in the trailers.
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let grpc_status = trailers.get("grpc-status").or_else(|| parts.headers.get("grpc-status"));
        match grpc_status.and_then(|v| v.to_str().ok()) {
            Some("0") => {}
            Some(code) => return Err(format!("the collector answered grpc-status {code}")),
            None => return Err("the collector's answer has no grpc-status".into()),
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
            assert!(failed.contains("larger than 4 MiB"), "{failed}");
        }
    }
}
