//! Validation cost per token (JWKS cached): in full (RS256 signature and claims), and for a token
//! the validator accepted before; and OBO-cache hit cost. Target: ≤ 30 µs per full validation.
//! The RSA signature check alone is measured beside them: it is the floor of a full validation,
//! and it shows how fast this machine is during the run (shared cloud cores vary).
//! And what OpenTelemetry costs a full-path call when it is off (no `OTEL_*` variable): the
//! trace-context and span-attribute hooks that call runs, with no layer installed.
//! Run: `cargo xtask bench` (or `cargo bench -p entra-auth --bench tokens`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::time::Duration;

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use entra_auth::acquire::{ConfidentialClient, Credential, OnBehalfOf};
use entra_auth::span_attributes;
use entra_auth::validate::{TokenValidator, TokenVersion, ValidatorConfig};
use entra_emulator::EmulatorConfig;
use service_kit::telemetry::context::{carry_operation, continue_trace, set_attribute, trace_headers};
use url::Url;

mod common;

// Measured with the allocator of the services that validate tokens.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let idp = rt.block_on(async {
        entra_emulator::Application::build(EmulatorConfig::from_repository().unwrap()).await.unwrap().spawn()
    });
    let m = idp.handle().manifest().clone();
    let authority = Url::parse(&idp.url()).unwrap();
    let api = m.app("orders-api").unwrap();
    let config = ValidatorConfig::new(
        authority.clone(),
        idp.handle().tenant_id(),
        vec!["api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local".into(), api.client_id.clone()],
    )
    .versions(&[TokenVersion::V1]);
    let full = TokenValidator::new(ValidatorConfig { accepted_tokens: 0, ..config.clone() }, reqwest::Client::new());
    let repeat = TokenValidator::new(config, reqwest::Client::new());
    let token =
        idp.handle().user_token("alice", "orders-mcp", "orders-api", &["Orders.Read", "Orders.ReadWrite"]).unwrap();
    rt.block_on(full.validate(&token)).unwrap();
    rt.block_on(repeat.validate(&token)).unwrap();

    let mut group = c.benchmark_group("entra-auth");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("validate_cached_jwks", |b| b.to_async(&rt).iter(|| full.validate(&token)));
    group.bench_function("validate_repeat_token", |b| b.to_async(&rt).iter(|| repeat.validate(&token)));
    let (key, signed, signature) = rt.block_on(signature_parts(&idp, &token));
    group.bench_function("rsa_verify_only", |b| b.iter(|| key.verify_sig(signed.as_bytes(), &signature).unwrap()));

    let mcp = m.app("orders-mcp").unwrap();
    let endpoint = ConfidentialClient::token_endpoint(&authority, idp.handle().tenant_id()).unwrap();
    let client = ConfidentialClient::new(
        reqwest::Client::new(),
        endpoint,
        &mcp.client_id,
        Credential::Secret(mcp.emulator_client_secret.clone().unwrap().into()),
    );
    let obo = OnBehalfOf::new(client);
    let user_token = idp.handle().user_token("alice", "chat-app", "orders-mcp", &["access_as_user"]).unwrap();
    let mcp_config = ValidatorConfig::new(authority, idp.handle().tenant_id(), vec![mcp.client_id.clone()])
        .versions(&[TokenVersion::V2]);
    let caller = rt.block_on(TokenValidator::new(mcp_config, reqwest::Client::new()).validate(&user_token)).unwrap();
    let scope = "api://afb67780-0dec-4124-a11c-b6e461eb7aad/orders-api-local/.default";
    rt.block_on(obo.token(&caller, &user_token, scope)).unwrap();
    group.bench_function("obo_cache_hit", |b| b.to_async(&rt).iter(|| obo.token(&caller, &user_token, scope)));

    // A full-path call with OpenTelemetry off: orders-mcp reads trace context from the request's
    // headers and `_meta`, records its hop and the token's source, and writes trace context on
    // its call; orders-api reads it and records its hop. With no layer installed each of these
    // checks one flag and returns.
    let hop = common::obo_hop(&token);
    let headers = common::traced_headers();
    let span = tracing::info_span!("request");
    group.bench_function("telemetry_off_per_call", |b| {
        b.iter(|| {
            continue_trace(&span, &headers);
            carry_operation(&span, || (String::from("tools/call get_order"), []), |_| Some(common::TRACEPARENT.into()));
            span_attributes::record_hop(&span, &hop);
            set_attribute(&span, span_attributes::TOKEN_SOURCE, "cache");
            std::hint::black_box(trace_headers());
            continue_trace(&span, &headers);
            span_attributes::record_hop(&span, &hop);
        })
    });
    group.finish();
    assert_eq!(idp.handle().stats().on_behalf_of, 1, "every OBO call after the first was a cache hit");
}

/// The emulator's published signing key, and the token's signed part and signature.
async fn signature_parts(idp: &entra_emulator::Running, token: &str) -> (ParsedPublicKey, String, Vec<u8>) {
    let url = format!("{}/{}/discovery/v2.0/keys", idp.url(), idp.handle().tenant_id());
    let jwks: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    let jwk = &jwks["keys"][0];
    let decode = |field: &str| URL_SAFE_NO_PAD.decode(jwk[field].as_str().unwrap()).unwrap();
    let (n, e) = (decode("n"), decode("e"));
    let key = RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    (key, signed.to_string(), URL_SAFE_NO_PAD.decode(signature).unwrap())
}

criterion_group!(tokens, benches);
criterion_main!(tokens);
