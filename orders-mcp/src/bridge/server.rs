//! Before the bridge sends a token anywhere: is the server reached safely, and is it the resource
//! the token is for?
//!
//! A bearer token is usable by whoever receives it, so the bridge sends one only over https
//! (plain http is allowed to a loopback address, where nothing crosses a network), and only to a
//! server whose RFC 9728 protected-resource metadata names exactly the URL the bridge calls.
//! RFC 9728 §3.3: the `resource` in the metadata MUST be identical to the resource identifier the
//! client used to build the metadata URL, and if it is not, the metadata MUST NOT be used. The MCP
//! authorization spec (2025-06-18 onwards) makes clients discover the authorization server this
//! way, and Microsoft's guidance for MCP servers makes that URL the server's Application ID URI,
//! which is why it is also the bridge's default `--resource`.

use std::net::IpAddr;
use std::time::Duration;

use entra_auth::metadata::ProtectedResourceMetadata;
use serde::Deserialize;
use url::{Host, Url};

/// What the bridge reads of RFC 9728 metadata: `resource` is the one required member, so other
/// servers' documents may leave out the rest.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "{0} is not https: the bridge sends a bearer token only over https (plain http only to a loopback address)"
    )]
    NotHttps(Url),
    #[error("cannot read the server's resource metadata at {url}: {reason}")]
    Metadata { url: Url, reason: String },
    #[error(
        "the server's resource metadata ({metadata_url}) names the resource {named:?}, not {url}: it is not the server \
the token would be for, so no token is sent (RFC 9728 §3.3)"
    )]
    OtherResource { url: Url, metadata_url: Url, named: String },
}

/// Checks `url` and its metadata (fetched within `timeout`); returns the metadata.
pub async fn check(http: &reqwest::Client, url: &Url, timeout: Duration) -> Result<Metadata, ServerError> {
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(url)) {
        return Err(ServerError::NotHttps(url.clone()));
    }
    let metadata_url = ProtectedResourceMetadata::url_for(url);
    let fail = |reason: String| ServerError::Metadata { url: metadata_url.clone(), reason };
    let response = http.get(metadata_url.clone()).timeout(timeout).send().await.map_err(|e| fail(e.to_string()))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let metadata: Metadata =
        response.json().await.map_err(|_| fail("not an RFC 9728 metadata document".to_string()))?;
    if Url::parse(&metadata.resource).ok().as_ref() != Some(url) {
        return Err(ServerError::OtherResource { url: url.clone(), metadata_url, named: metadata.resource });
    }
    Ok(metadata)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_use_plain_http() {
        for ok in ["http://localhost:3001/mcp", "http://127.0.0.1:9/mcp", "http://[::1]:9/mcp"] {
            assert!(is_loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in ["http://orders.example/mcp", "http://10.0.0.1/mcp", "http://localhost.evil.example/mcp"] {
            assert!(!is_loopback(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
