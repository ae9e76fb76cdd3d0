//! A collector for the exporter's tests: a real OTLP/HTTP endpoint on 127.0.0.1:0, on the test's
//! runtime, answering each export with 200 and an empty `ExportTraceServiceResponse`, keeping
//! the spans of each request it read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use url::Url;

use super::settings::{BatchSettings, OtlpSettings, Protocol, Sampler};

#[derive(Clone)]
pub struct Collector {
    pub url: Url,
    /// The span names of each request read, in order.
    received: Arc<Mutex<Vec<Vec<String>>>>,
}

impl Collector {
    pub async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap()).parse().unwrap();
        let collector = Collector { url, received: Arc::default() };
        let state = collector.clone();
        let app = axum::Router::new().route("/v1/traces", post(move |body: Bytes| state.clone().export(body)));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        collector
    }

    async fn export(self, body: Bytes) -> Response {
        let request = ExportTraceServiceRequest::decode(body).unwrap();
        let names = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|s| s.name)
            .collect();
        self.received.lock().unwrap().push(names);
        ExportTraceServiceResponse::default().encode_to_vec().into_response()
    }

    /// The span names of each request read so far.
    pub fn received(&self) -> Vec<Vec<String>> {
        self.received.lock().unwrap().clone()
    }

    /// Settings exporting to this collector over OTLP/HTTP.
    pub fn settings(&self, timeout: Duration, batch: BatchSettings) -> OtlpSettings {
        OtlpSettings {
            endpoint: self.url.clone(),
            protocol: Protocol::HttpProtobuf,
            headers: Vec::new(),
            timeout,
            service_name: "tests".into(),
            resource: Vec::new(),
            sampler: Sampler::AlwaysOn,
            batch,
        }
    }
}
