//! The identity provider the services trust: its discovery documents name the tenant's
//! issuers, and its key set publishes the RS256 signing keys.

use serde_json::Value;

use super::http::Http;
use super::report::{Check, Report};
use super::target::Target;

pub async fn check(http: &Http, target: &Target, report: &mut Report) {
    let tenant = &target.tenant;
    let v2 = http.json(&target.discovery_url(true)).await;
    let v2 = report.record(
        "OpenID discovery (v2)",
        v2.and_then(|d| {
            let issuer = d["issuer"].as_str().unwrap_or_default();
            if issuer.contains(tenant) && issuer.ends_with("/v2.0") {
                Ok(d)
            } else {
                Err(format!("unexpected issuer {issuer}"))
            }
        }),
        |d| d["issuer"].as_str().unwrap_or_default().to_string(),
    );
    let v1 = http.json(&target.discovery_url(false)).await;
    report.record(
        "OpenID discovery (v1)",
        v1.and_then(|d| {
            let issuer = d["issuer"].as_str().unwrap_or_default().to_string();
            if issuer.contains(tenant) && issuer.ends_with('/') {
                Ok(issuer)
            } else {
                Err(format!("unexpected issuer {issuer}"))
            }
        }),
        |i| i.clone(),
    );
    let jwks = match v2.as_ref().and_then(|d| d["jwks_uri"].as_str()) {
        Some(uri) => http.json(uri).await,
        None => Err("no jwks_uri".into()),
    };
    report.record("JWKS publishes RS256 signing keys", jwks.and_then(signing_keys), |n| format!("{n} key(s)"));
}

/// How many RSA keys with a key id the set holds (at least one).
fn signing_keys(jwks: Value) -> Check<usize> {
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    let rsa = keys.iter().filter(|k| k["kty"] == "RSA" && k["kid"].is_string()).count();
    if rsa > 0 { Ok(rsa) } else { Err("no RSA key with a kid".into()) }
}
