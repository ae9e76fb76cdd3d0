//! What exporting traces costs one full-path call on one thread with nothing else running: the
//! four spans such a call makes (the services' own request spans, `service_kit::serve`'s, the
//! first carrying orders-mcp's `tools/call` as its direct route does, and spans shaped as
//! orders-mcp's `orders_api.call` and orders-api's `store.get`), its
//! two hops' identity attributes, and trace context read and written, with every span sampled,
//! recorded, written as OTLP and exported to a receiver in this process.
//! Compare with `tokens`' `telemetry_off_per_call` (the same hooks with nothing installed) and
//! with the full-path benchmark's tracing rows, where both cores are saturated and the same
//! work costs several times more.
//! Its own binary: it installs the global subscriber, which the `tokens` rows must not have.
//! Run: `cargo xtask bench` (or `cargo bench -p entra-auth --bench telemetry`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use entra_auth::span_attributes;
use entra_emulator::EmulatorConfig;
use service_kit::serve::request_span;
use service_kit::settings::Env;
use service_kit::telemetry::context::{KeyValue, carry_operation, set_attribute, trace_headers};
use service_kit::telemetry::{TelemetrySettings, init_with};
use tracing::Instrument;

mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (receiver, idp) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        // A collector's answer to every export: an empty ExportTraceServiceResponse.
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(|_: axum::body::Bytes| async { ([("content-type", "application/x-protobuf")], "") }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let idp = entra_emulator::Application::build(EmulatorConfig::from_repository().unwrap()).await.unwrap().spawn();
        (url, idp)
    });
    let env = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.as_str()), ("OTEL_TRACES_SAMPLER", "always_on")];
    let mut settings = TelemetrySettings::from_env(&mut Env::from_map(env), "bench");
    settings.logs = false;
    let _telemetry = init_with(settings);

    let token = idp.handle().user_token("alice", "orders-mcp", "orders-api", &["Orders.Read"]).unwrap();
    let hop = common::obo_hop(&token);
    // The requests as the two services receive them, each with its caller's trace context.
    let request = |method: &str, path: &str| {
        let mut request = axum::http::Request::builder().method(method).uri(path).body(()).unwrap();
        *request.headers_mut() = common::traced_headers();
        request
    };
    let (mcp_call, api_call) = (request("POST", "/mcp"), request("GET", "/api/orders/ORD-001"));

    let mut group = c.benchmark_group("entra-auth");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("telemetry_exporting_per_call", |b| {
        b.to_async(&rt).iter(|| async {
            let mcp_request = request_span(&mcp_call);
            async {
                // orders-mcp's direct route: the request's span becomes the tool call's.
                carry_operation(
                    &tracing::Span::current(),
                    || (format!("tools/call {}", "get_order"), [KeyValue::new("tool", "get_order")]),
                    |_| Some(common::TRACEPARENT.into()),
                );
                async {
                    set_attribute(&tracing::Span::current(), span_attributes::TOKEN_SOURCE, "cache");
                    let client = tracing::info_span!(
                        "orders_api.call",
                        otel.kind = "client",
                        http.request.method = "GET",
                        server.address = "127.0.0.1",
                        server.port = 3001,
                        url.full = "http://127.0.0.1:3001/api/orders/ORD-001",
                        http.response.status_code = tracing::field::Empty,
                    );
                    async {
                        std::hint::black_box(trace_headers());
                        let api_request = request_span(&api_call);
                        async {
                            span_attributes::record_hop(&tracing::Span::current(), &hop);
                            async {}
                                .instrument(tracing::info_span!("store.get", order = %"ORD-001", visibility = ?"owner"))
                                .await;
                        }
                        .instrument(api_request.clone())
                        .await;
                        api_request.record("http.response.status_code", 200);
                        tracing::Span::current().record("http.response.status_code", 200);
                    }
                    .instrument(client)
                    .await;
                    span_attributes::record_hop(&tracing::Span::current(), &hop);
                }
                .await;
            }
            .instrument(mcp_request.clone())
            .await;
            mcp_request.record("http.response.status_code", 200);
        })
    });
    group.finish();
}

criterion_group!(telemetry, benches);
criterion_main!(telemetry);
