//! A collector for the exporter's tests: a real OTLP/HTTP endpoint on 127.0.0.1:0, on the test's
//! runtime, answering each export with the next answer it was given (then 200 with an empty
//! `ExportTraceServiceResponse`) and keeping the spans of each request it read.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use url::Url;

use super::settings::{BatchSettings, OtlpSettings, Protocol, Sampler};

pub enum Answer {
    /// This status, these headers, this body.
    Status(StatusCode, Vec<(&'static str, String)>, Body),
    /// No answer at all: the request is read and the connection left open.
    Never,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer::Status(StatusCode::from_u16(status).unwrap(), Vec::new(), Body::empty())
    }
}

/// When a request was read, and its span names.
type Received = (Instant, Vec<String>);

#[derive(Clone)]
pub struct Collector {
    pub url: Url,
    answers: Arc<Mutex<VecDeque<Answer>>>,
    /// When each request was read, and its span names, in order.
    received: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    pub async fn start(answers: impl IntoIterator<Item = Answer>) -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap()).parse().unwrap();
        let answers = Arc::new(Mutex::new(answers.into_iter().collect()));
        let collector = Collector { url, answers, received: Arc::default() };
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
        self.received.lock().unwrap().push((Instant::now(), names));
        let answer = self.answers.lock().unwrap().pop_front();
        match answer {
            None => ExportTraceServiceResponse::default().encode_to_vec().into_response(),
            Some(Answer::Status(status, headers, body)) => {
                let mut response = (status, body).into_response();
                for (name, value) in headers {
                    response.headers_mut().insert(name, value.parse().unwrap());
                }
                response
            }
            Some(Answer::Never) => std::future::pending().await,
        }
    }

    /// The span names of each request read so far.
    pub fn received(&self) -> Vec<Vec<String>> {
        self.received.lock().unwrap().iter().map(|(_, names)| names.clone()).collect()
    }

    /// When each request was read.
    pub fn times(&self) -> Vec<Instant> {
        self.received.lock().unwrap().iter().map(|(at, _)| *at).collect()
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
