//! A JSON REST client for Microsoft Graph and Azure Resource Manager: both answer errors as
//! `{"error": {"code", "message"}}`, throttle with `429` + `Retry-After`, and lag behind a
//! write for a few seconds (a `404` for an object just created). Requests are retried where
//! a retry is safe; a `POST` is retried only when the server says it did nothing.

use std::time::Duration;

use entra_auth::acquire::{AcquireError, Credential};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::retry::RetryPolicy;

const TIMEOUT: Duration = Duration::from_secs(60);
/// Entra's "Application with identifier ... was not found in the directory".
const CLIENT_NOT_FOUND: u32 = 700016;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error. `code` is its own (`Request_ResourceNotFound`,
    /// `Authorization_RequestDenied`, `ResourceNotFound`...).
    #[error("{service} refused {method} {path}: {status} {code}: {message}")]
    Refused { service: &'static str, method: String, path: String, status: u16, code: String, message: String },
    #[error("cannot reach {service} at {url}: {reason}")]
    Unreachable { service: &'static str, url: String, reason: String },
    #[error("unexpected answer from {service} to {method} {path}: {reason}")]
    BadResponse { service: &'static str, method: String, path: String, reason: String },
    #[error("cannot get a token for {scope}: {source}")]
    Token { scope: &'static str, source: AcquireError },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The caller lacks the directory role or permission for this request.
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(403)
    }

    /// Graph does not know yet an object this request names (created moments ago and not
    /// replicated everywhere): `400 Not a valid reference update.`
    pub fn is_replication_lag(&self) -> bool {
        matches!(self, ApiError::Refused { status: 400, message, .. } if message.contains("Not a valid reference update"))
    }
}

/// What a `404` means for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFound {
    /// The object may have been created moments ago and not be visible everywhere yet: retry.
    Lag,
    /// The object is already gone: that is the wanted outcome (a delete).
    Gone,
    /// A plain error.
    Error,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    pub headers: reqwest::header::HeaderMap,
    /// `None` for an empty body (`204 No Content`) or a `404` accepted as [`NotFound::Gone`].
    pub body: Option<Value>,
}

/// One service, Microsoft Graph or Azure Resource Manager: its base URL, the token scope it
/// takes, and how often to try.
pub struct Rest {
    http: reqwest::Client,
    service: &'static str,
    base: String,
    scope: &'static str,
    credential: Credential,
    retry: RetryPolicy,
}

impl Rest {
    pub fn new(
        service: &'static str,
        base: &str,
        scope: &'static str,
        credential: Credential,
        retry: RetryPolicy,
    ) -> Result<Rest, ApiError> {
        let http = reqwest::Client::builder().timeout(TIMEOUT).build().map_err(|e| ApiError::Unreachable {
            service,
            url: base.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Rest { http, service, base: base.trim_end_matches('/').to_string(), scope, credential, retry })
    }

    /// The absolute URL of `path` (relative to the base) or `path` itself when absolute.
    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    /// Sends one request, again while the answer says to wait (throttling, replication delay,
    /// a transient failure) and repeating it is safe.
    #[tracing::instrument(skip_all, fields(service = self.service, %method, path = %strip_query(path)))]
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        not_found: NotFound,
    ) -> Result<Answer, ApiError> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = match self.credential.token(self.scope).await {
                Ok(token) => token,
                // AADSTS700016: the client signing in was registered moments ago and the token
                // service does not know it yet (replication, like Graph's 404 for a new object).
                Err(source) if source.codes().contains(&CLIENT_NOT_FOUND) && attempt < self.retry.attempts => {
                    let wait = self.retry.delay(attempt, &reqwest::header::HeaderMap::new());
                    tracing::info!(
                        service = self.service,
                        scope = self.scope,
                        ?wait,
                        "sign-in client not known yet; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(source) => return Err(ApiError::Token { scope: self.scope, source }),
            };
            let mut request = self.http.request(method.clone(), &url).bearer_auth(token.secret()).query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                // A lost connection may hide a write that happened: only retry what is safe to repeat.
                Err(e) if method != Method::POST && attempt < self.retry.attempts => {
                    let wait = self.retry.delay(attempt, &reqwest::header::HeaderMap::new());
                    tracing::warn!(service = self.service, %method, path, error = %e, ?wait, "request failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => {
                    return Err(ApiError::Unreachable {
                        service: self.service,
                        url: strip_query(&url),
                        reason: e.to_string(),
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                let body = if text.trim().is_empty() {
                    None
                } else {
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| self.bad(&method, path, format!("invalid JSON: {e}")))?,
                    )
                };
                return Ok(Answer { headers, body });
            }
            let (code, message) = error_parts(&text, status);
            if status == StatusCode::NOT_FOUND && not_found == NotFound::Gone {
                return Ok(Answer { headers, body: None });
            }
            let retry = match status.as_u16() {
                429 => true,
                404 => not_found == NotFound::Lag,
                // Creating a service principal right after its application: not replicated yet.
                400 => message.contains("does not reference a valid application object"),
                500 | 502 | 503 | 504 => method != Method::POST,
                _ => false,
            };
            if retry && attempt < self.retry.attempts {
                let wait = self.retry.delay(attempt, &headers);
                tracing::info!(service = self.service, %method, path, status = status.as_u16(), code, ?wait, "retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(ApiError::Refused {
                service: self.service,
                method: method.to_string(),
                path: path.to_string(),
                status: status.as_u16(),
                code,
                message,
            });
        }
    }

    /// Every item of a Graph list, following `@odata.nextLink` from page to page.
    #[tracing::instrument(skip_all, fields(service = self.service, path))]
    pub async fn list<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, ApiError> {
        // A top-level collection always exists; an object's own list (`applications/{id}/...`)
        // may belong to an object created moments ago and not replicated yet.
        let not_found = if path.contains('/') { NotFound::Lag } else { NotFound::Error };
        let mut items = Vec::new();
        let mut next = Some((path.to_string(), query.to_vec()));
        while let Some((url, query)) = next.take() {
            let body = self.send(Method::GET, &url, &query, None, not_found).await?.body.unwrap_or(Value::Null);
            let page = body.get("value").cloned().unwrap_or(Value::Null);
            let page: Vec<T> =
                serde_json::from_value(page).map_err(|e| self.bad(&Method::GET, path, format!("not a list: {e}")))?;
            items.extend(page);
            next = body.get("@odata.nextLink").and_then(Value::as_str).map(|link| (link.to_string(), Vec::new()));
        }
        Ok(items)
    }

    /// How this client retries: the budget for waiting on replication is the caller's to spend.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    pub fn bad(&self, method: &Method, path: &str, reason: String) -> ApiError {
        ApiError::BadResponse { service: self.service, method: method.to_string(), path: path.to_string(), reason }
    }
}

/// `{"error": {"code": ..., "message": ...}}`, or the status when the body is something else.
fn error_parts(text: &str, status: StatusCode) -> (String, String) {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_string);
    let code = field("code").unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let message = field("message").unwrap_or_else(|| text.chars().take(200).collect());
    (code, message)
}

fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}
