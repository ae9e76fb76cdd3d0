//! OAuth 2.0 Protected Resource Metadata (RFC 9728): what orders-mcp (and orders-api) tell a
//! client about the tokens they accept, and that the authorization server named there exists.

use entra_auth::metadata::ProtectedResourceMetadata;
use serde_json::{Value, json};
use url::Url;

use super::http::Http;
use super::report::{Check, Report};
use super::target::Target;

pub async fn check(http: &Http, target: &Target, report: &mut Report) {
    let Some(mcp) = &target.orders_mcp else {
        report.skip("orders-mcp RFC 9728 metadata", "no orders-mcp URL");
        return;
    };
    let doc = http.json(ProtectedResourceMetadata::url_for(mcp).as_str()).await;
    let doc = report.record(
        "orders-mcp RFC 9728 metadata (/.well-known/oauth-protected-resource/mcp)",
        doc.and_then(|d| complete(d, mcp)),
        |d| d["scopes_supported"].to_string(),
    );
    let root = get_well_known(http, mcp).await;
    report.record(
        "orders-mcp RFC 9728 metadata (root well-known)",
        root.and_then(|d| {
            if d["resource"].as_str() == Some(mcp.as_str()) {
                Ok(())
            } else {
                Err(format!("resource is {}", d["resource"]))
            }
        }),
        |_| "same resource".into(),
    );
    let issuer = doc.as_ref().and_then(|d| d["authorization_servers"][0].as_str());
    let discoverable = match issuer {
        Some(issuer) => discoverable(http, issuer).await,
        None => Err("no authorization server".into()),
    };
    report.record("authorization server in the metadata is discoverable", discoverable, |i| i.clone());
    if let Some(api) = &target.orders_api {
        let doc = get_well_known(http, api).await;
        report.record("orders-api RFC 9728 metadata", doc.map(|d| d["resource"].to_string()), |r| r.clone());
    }
}

/// The document names `resource`, an authorization server, scopes, and header-only bearer use.
fn complete(doc: Value, resource: &Url) -> Check<Value> {
    let ok = doc["resource"].as_str() == Some(resource.as_str())
        && doc["authorization_servers"].as_array().is_some_and(|a| !a.is_empty())
        && doc["scopes_supported"].as_array().is_some_and(|a| !a.is_empty())
        && doc["bearer_methods_supported"] == json!(["header"]);
    if ok { Ok(doc) } else { Err(format!("incomplete document: {doc}")) }
}

/// The metadata at the host's root well-known path.
async fn get_well_known(http: &Http, base: &Url) -> Check<Value> {
    let url = base.join("/.well-known/oauth-protected-resource").map_err(|e| e.to_string())?;
    http.json(url.as_str()).await
}

/// The issuer's discovery document names the same issuer.
async fn discoverable(http: &Http, issuer: &str) -> Check<String> {
    let d = http.json(&format!("{issuer}/.well-known/openid-configuration")).await?;
    if d["issuer"].as_str() == Some(issuer) {
        Ok(issuer.to_string())
    } else {
        Err(format!("{issuer} serves issuer {}", d["issuer"]))
    }
}
