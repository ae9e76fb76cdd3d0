//! RFC 9728 OAuth 2.0 Protected Resource Metadata: how a client discovers which authorization
//! server to ask for a token, and for which scopes, after a `401` challenge.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use url::Url;

/// The well-known path prefix (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the URL clients call (for MCP, the `/mcp` endpoint).
    pub resource: String,
    /// Issuer identifiers of the authorization servers that issue tokens for this resource.
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    /// Always `["header"]`: tokens in bodies or query strings are refused.
    pub bearer_methods_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    pub fn new(resource: &Url, authorization_server: &str, scopes: Vec<String>) -> Self {
        ProtectedResourceMetadata {
            resource: resource.to_string(),
            authorization_servers: vec![authorization_server.to_string()],
            scopes_supported: scopes,
            bearer_methods_supported: vec!["header".to_string()],
            resource_name: None,
            resource_documentation: None,
        }
    }

    /// Where this document is served for `resource`, per RFC 9728 §3.1: the well-known prefix
    /// goes between the host and the resource's path (`https://h/.well-known/oauth-protected-resource/mcp`).
    pub fn url_for(resource: &Url) -> Url {
        let mut url = resource.clone();
        let path = resource.path().trim_end_matches('/');
        url.set_path(&format!("{WELL_KNOWN}{path}"));
        url.set_query(None);
        url.set_fragment(None);
        url
    }

    /// Serves the document at the RFC 9728 path for its resource and, when that differs, at
    /// the bare well-known path too (clients that ignore the path suffix look there).
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        let resource = Url::parse(&self.resource).ok();
        let path = resource.as_ref().map_or(WELL_KNOWN.to_string(), |r| Self::url_for(r).path().to_string());
        let doc = Arc::new(self);
        let serve = move || {
            let doc = doc.clone();
            async move {
                let mut response = Json(doc.as_ref().clone()).into_response();
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
                response
            }
        };
        let mut router = Router::new().route(&path, get(serve.clone()));
        if path != WELL_KNOWN {
            router = router.route(WELL_KNOWN, get(serve));
        }
        router
    }
}
