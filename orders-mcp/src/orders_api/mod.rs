//! The client for orders-api, calling it as the user whose request is being served.
//!
//! In `obo` mode the user's token is exchanged On-Behalf-Of for one for orders-api (cached per
//! user until near expiry; if orders-api refuses a cached token it is forgotten and the call is
//! retried once with a fresh exchange). In `passthrough` mode the user's token is forwarded as
//! is. Every call reports, success or not, which token was sent and the hop orders-api returned.
//! The calls go over orders-mcp's own HTTP/1.1 connections to orders-api (`connections`).

mod connections;

use std::time::Duration;

use entra_auth::acquire::{AccessToken, AcquireError, OnBehalfOf};
use entra_auth::claims_challenge::ClaimsChallenge;
use entra_auth::hop::{HOP_HEADER, Hop, How, TokenSummary};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use service_kit::problem::Problem;
use service_kit::telemetry::context::{record_error, trace_headers};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use url::Url;

use crate::auth::Authenticated;
use crate::order::{NewOrder, Order, OrderId, OrderPage, OrderStatus};
use connections::{Connections, SendError};

/// How the token for orders-api is obtained.
pub enum TokenSource {
    /// On-Behalf-Of exchange for `scope` (`{orders-api app id uri}/.default`).
    Obo { obo: Box<OnBehalfOf>, scope: String },
    /// The incoming token, unchanged.
    Passthrough,
}

pub struct OrdersApi {
    connections: Connections,
    base: Url,
    timeout: Duration,
    tokens: TokenSource,
}

/// The token orders-mcp sent to orders-api, as shown in the hop trace (never the token itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentToken {
    pub how: How,
    pub token: TokenSummary,
}

/// The outcome of one call, with what was seen along the way whether it succeeded or not.
#[derive(Debug)]
pub struct Traced<T> {
    pub result: Result<T, CallError>,
    /// The token orders-mcp sent (absent if none could be obtained).
    pub sent: Option<SentToken>,
    /// orders-api's own hop record, from its `x-hop-trace` header.
    pub api_hop: Option<Hop>,
}

/// Why a call failed, in words the user (and the model) can act on. Never contains a token,
/// nor an internal address (orders-api's, the token endpoint's): those go to the log.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("could not obtain a token for orders-api on your behalf (On-Behalf-Of exchange failed): {}{}", shown(.0), what_to_do(.0))]
    Exchange(AcquireError),
    #[error("orders-api is unreachable: {reason}")]
    Unreachable { reason: String },
    #[error("orders-api refused the token: {reason}{hint}")]
    TokenRefused { reason: String, hint: &'static str },
    /// orders-api wants a token the user stepped up for (a claims challenge, Conditional Access
    /// authentication context): only the user's client can get one, so it goes back to it.
    #[error("orders-api needs you to confirm this at sign-in first ({}): {detail}", .challenge.auth_contexts().join(", "))]
    StepUpRequired { challenge: ClaimsChallenge, detail: String },
    /// Any other error status, with orders-api's problem detail.
    #[error("orders-api answered {status}: {detail}")]
    Status { status: StatusCode, detail: String },
    #[error("orders-api sent an unexpected answer: {0}")]
    BadResponse(String),
    /// The request could not be written (a header value HTTP cannot carry): never sent.
    #[error("the request to orders-api could not be made: {0}")]
    Request(String),
}

impl CallError {
    /// The call span's `error.type`: orders-api's status code when it answered with an error
    /// (as OpenTelemetry's HTTP conventions ask), else what went wrong, in a word.
    fn error_type(&self) -> &str {
        match self {
            CallError::Status { status, .. } => status.as_str(),
            CallError::TokenRefused { .. } | CallError::StepUpRequired { .. } => StatusCode::UNAUTHORIZED.as_str(),
            CallError::Exchange(_) => "token_exchange",
            CallError::Unreachable { .. } => "unreachable",
            CallError::BadResponse(_) => "bad_response",
            CallError::Request(_) => "request",
        }
    }
}

/// What the model and the user see of a failed exchange: Entra's answer, but not the address of
/// the identity endpoint orders-mcp talks to.
fn shown(e: &AcquireError) -> String {
    match e {
        AcquireError::Unreachable { reason, .. } => format!("cannot reach the identity provider: {reason}"),
        AcquireError::BadResponse { reason, .. } => format!("unexpected answer from the identity provider: {reason}"),
        other => other.to_string(),
    }
}

/// What the user or an administrator can do when Entra wants a person before it exchanges the
/// token: a bare AADSTS code helps no one in a chat.
fn what_to_do(e: &AcquireError) -> &'static str {
    let AcquireError::Rejected { error, codes, description, .. } = e else { return "" };
    // AADSTS65001, suberror consent_required: nobody consented to orders-mcp acting on
    // orders-api, and On-Behalf-Of cannot show the user a prompt (Microsoft identity platform
    // On-Behalf-Of flow, "Gaining consent for the middle-tier application").
    if codes.contains(&65001) || description.contains("consent_required") {
        return ". Nobody has consented to orders-mcp using orders-api for you, and this exchange cannot ask you. \
An administrator of the tenant can fix it: run the deployment's postprovision hook again (`azd hooks run \
postprovision`, it pre-authorizes orders-mcp on orders-api), or grant admin consent to the Orders MCP server app \
(Cloud Application Administrator or Application Administrator: Entra admin center > App registrations > API \
permissions > Grant admin consent). Then ask again.";
    }
    // interaction_required (e.g. AADSTS50076/50079 multifactor, 53003 Conditional Access): the
    // user must sign in again, meeting the policy, before the exchange can succeed.
    if error == "interaction_required" || codes.iter().any(|c| [50076, 50079, 53003].contains(c)) {
        return ". Your organization requires you to sign in again (for example with multifactor authentication) \
before orders-mcp may act for you: sign out, sign in again and ask again. If it repeats, an administrator should \
check the Conditional Access policies that apply to the Orders API app.";
    }
    ""
}

const PASSTHROUGH_HINT: &str = " (passthrough mode: orders-mcp forwarded the token it received, which was issued for \
     orders-mcp, not for orders-api; orders-api accepts it only if started with ORDERS_API_ALLOW_PASSTHROUGH_AUDIENCE. \
     ORDERS_MCP_DOWNSTREAM=obo exchanges it for a token for orders-api instead)";

/// What a call saw on its way, whatever its outcome.
#[derive(Default)]
struct Seen {
    sent: Option<SentToken>,
    api_hop: Option<Hop>,
}

/// A request to orders-api, relative to its base URL.
struct Call<'a> {
    method: Method,
    path: &'a [&'a str],
    query: Vec<(&'static str, String)>,
    body: Option<serde_json::Value>,
    idempotency_key: Option<String>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a [&'a str]) -> Self {
        Call { method, path, query: Vec::new(), body: None, idempotency_key: None }
    }

    /// This call to `url` with `token` as its bearer token (a header marked sensitive, so no
    /// `Debug` of the request shows it) and the current span's trace context.
    fn request(&self, url: &Url, token: &AccessToken) -> Result<Request<Full<Bytes>>, http::Error> {
        let mut headers = trace_headers();
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", token.secret()))?;
        bearer.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, bearer);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(key) = &self.idempotency_key {
            headers.insert("idempotency-key", HeaderValue::try_from(key)?);
        }
        let body = match &self.body {
            Some(json) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        request(self.method.clone(), url, headers, body)
    }
}

impl OrdersApi {
    /// A client for orders-api at `base` (`http` or `https`, verified with the platform's roots).
    pub fn new(base: Url, timeout: Duration, tokens: TokenSource) -> Result<OrdersApi, String> {
        let connections = Connections::new(&base, connections::platform_tls)?;
        Ok(OrdersApi { connections, base, timeout, tokens })
    }

    pub async fn list_orders(
        &self,
        who: &Authenticated,
        status: Option<OrderStatus>,
        limit: Option<u32>,
        cursor: Option<String>,
    ) -> Traced<OrderPage> {
        let mut call = Call::new(Method::GET, &["api", "orders"]);
        call.query.extend(status.map(|s| ("status", s.as_str().to_string())));
        call.query.extend(limit.map(|l| ("limit", l.to_string())));
        call.query.extend(cursor.map(|c| ("cursor", c)));
        self.send(who, call).await
    }

    pub async fn get_order(&self, who: &Authenticated, id: &OrderId) -> Traced<Order> {
        self.send(who, Call::new(Method::GET, &["api", "orders", id.as_str()])).await
    }

    /// `idempotency_key` makes a retried request (ours, after a refused token) create one order.
    pub async fn create_order(&self, who: &Authenticated, order: &NewOrder, idempotency_key: String) -> Traced<Order> {
        let mut call = Call::new(Method::POST, &["api", "orders"]);
        call.body = serde_json::to_value(order).ok();
        call.idempotency_key = Some(idempotency_key);
        self.send(who, call).await
    }

    pub async fn cancel_order(&self, who: &Authenticated, id: &OrderId) -> Traced<Order> {
        self.send(who, Call::new(Method::POST, &["api", "orders", id.as_str(), "cancel"])).await
    }

    /// orders-api's readiness (`GET /readyz` answers 2xx); `Err` says why not, without its
    /// address (`/readyz` is public): the log has that.
    #[tracing::instrument(name = "orders_api.ready", skip_all)]
    pub async fn ready(&self) -> Result<(), String> {
        let url = self.url(&["readyz"]);
        let answer = match request(Method::GET, &url, HeaderMap::new(), Bytes::new()) {
            Ok(ready) => self.exchange(ready, Duration::from_secs(2)).await,
            Err(e) => Err(CallError::Request(e.to_string())),
        };
        let why = match answer {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("its /readyz answered {}", r.status()),
            Err(CallError::Unreachable { reason }) => format!("unreachable: {reason}"),
            Err(e) => e.to_string(),
        };
        tracing::warn!(%url, %why, "orders-api is not ready");
        Err(why)
    }

    fn url(&self, path: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Segments are percent-encoded, so an id can never add a path segment or a query.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        url
    }

    /// [`Self::url`] with `query` form-encoded (`application/x-www-form-urlencoded`).
    fn url_with_query(&self, path: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.url(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The token to send to orders-api for `who`, and how it was obtained.
    async fn token(&self, who: &Authenticated) -> Result<(AccessToken, How), CallError> {
        match &self.tokens {
            TokenSource::Passthrough => Ok((who.token.clone(), How::Forwarded)),
            TokenSource::Obo { obo, scope } => {
                // Cached, or exchanged at the identity provider (under its own span).
                let token = obo.token(&who.caller, who.token.secret(), scope).await.map_err(CallError::Exchange)?;
                Ok((token, How::Obo))
            }
        }
    }

    /// One call to orders-api, under its CLIENT span: described as OpenTelemetry's HTTP client
    /// spans are ("Semantic conventions for HTTP spans": `http.request.method`,
    /// `server.address`, `server.port`, `url.full`, `http.response.status_code`; a 4xx or 5xx,
    /// or no answer, marks it failed with `error.type`), which is what Application Insights
    /// reads a dependency's type, target, URL and result from.
    async fn send<T: DeserializeOwned>(&self, who: &Authenticated, call: Call<'_>) -> Traced<T> {
        let url = self.url_with_query(call.path, &call.query);
        let span = tracing::info_span!(
            "orders_api.call",
            otel.kind = "client",
            http.request.method = call.method.as_str(),
            server.address = self.base.host_str(),
            server.port = self.base.port_or_known_default(),
            url.full = url.as_str(),
            http.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        let mut seen = Seen::default();
        let result = self.attempt(who, &call, &url, &mut seen).instrument(span.clone()).await;
        if let Err(e) = &result {
            record_error(&span, e.error_type());
        }
        Traced { result, sent: seen.sent, api_hop: seen.api_hop }
    }

    /// Sends `call` to `url`, recording in `seen` the token sent and orders-api's hop.
    async fn attempt<T: DeserializeOwned>(
        &self,
        who: &Authenticated,
        call: &Call<'_>,
        url: &Url,
        seen: &mut Seen,
    ) -> Result<T, CallError> {
        let mut retried = false;
        loop {
            let (token, how) = self.token(who).await?;
            // Nothing is sent, so nothing is recorded as sent (no header value prints itself).
            let request = call.request(url, &token).map_err(|e| CallError::Request(e.to_string()))?;
            let response = self.exchange(request, self.timeout).await;
            seen.api_hop = response
                .as_ref()
                .ok()
                .and_then(|r| r.headers().get(HOP_HEADER))
                .and_then(|v| v.to_str().ok())
                .and_then(Hop::from_header_value);
            seen.sent = sent_token(who, &token, how, seen.api_hop.as_ref());
            if let Err(CallError::Unreachable { reason }) = &response {
                tracing::warn!(url = %self.base, %reason, "orders-api is unreachable");
            }
            let response = response?;
            Span::current().record("http.response.status_code", response.status().as_u16());
            // A claims challenge is not a stale token: a fresh exchange of the same user token
            // would carry the same claims. It goes back to the client instead.
            if response.status() == StatusCode::UNAUTHORIZED
                && !retried
                && claims_challenge(response.headers()).is_none()
                && let TokenSource::Obo { obo, scope } = &self.tokens
            {
                // A cached token orders-api no longer accepts (keys rolled over, token revoked,
                // its configuration changed): exchange again, once.
                tracing::info!(oid = %who.caller.oid, "orders-api refused the cached On-Behalf-Of token; exchanging again");
                obo.forget(&who.caller, scope);
                retried = true;
                continue;
            }
            return self.read(response);
        }
    }

    /// Sends `request` on a connection of the pool and reads the answer, giving up after
    /// `timeout`. Why it failed names no address: the model and the user read it.
    async fn exchange(&self, request: Request<Full<Bytes>>, timeout: Duration) -> Result<Response<Bytes>, CallError> {
        match tokio::time::timeout(timeout, self.connections.send(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e @ SendError::Body(_))) => Err(CallError::BadResponse(e.to_string())),
            Ok(Err(e)) => Err(CallError::Unreachable { reason: e.to_string() }),
            Err(_) => Err(CallError::Unreachable { reason: format!("no answer within {} s", timeout.as_secs_f32()) }),
        }
    }

    fn read<T: DeserializeOwned>(&self, response: Response<Bytes>) -> Result<T, CallError> {
        let status = response.status();
        let step_up = claims_challenge(response.headers());
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(error_description)
            .map(String::from);
        let body = response.into_body();
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| CallError::BadResponse(e.to_string()));
        }
        let detail = serde_json::from_slice::<Problem>(&body)
            .map(|p| p.detail)
            .unwrap_or_else(|_| status.canonical_reason().unwrap_or("error").to_string());
        if status == StatusCode::UNAUTHORIZED
            && let Some(challenge) = step_up
        {
            return Err(CallError::StepUpRequired { challenge, detail });
        }
        if status == StatusCode::UNAUTHORIZED {
            let hint = match self.tokens {
                TokenSource::Passthrough => PASSTHROUGH_HINT,
                TokenSource::Obo { .. } => "",
            };
            return Err(CallError::TokenRefused { reason: challenge.unwrap_or(detail), hint });
        }
        Err(CallError::Status { status, detail })
    }
}

/// What to show of the token sent to orders-api.
fn sent_token(who: &Authenticated, token: &AccessToken, how: How, api_hop: Option<&Hop>) -> Option<SentToken> {
    let summary = match (how, api_hop) {
        // The token orders-mcp itself validated.
        (How::Forwarded, _) => who.caller.summary(),
        // orders-api validated the token and reported what it saw: the same token, checked.
        (_, Some(hop)) => hop.token.clone(),
        // orders-mcp is this token's client, not its audience: the claims it sent, unverified.
        (_, None) => TokenSummary::from_unverified(token.secret())?,
    };
    Some(SentToken { how, token: summary })
}

/// orders-api's claims challenge, if its answer is one.
fn claims_challenge(headers: &HeaderMap) -> Option<ClaimsChallenge> {
    let header = headers.get(header::WWW_AUTHENTICATE)?.to_str().ok()?;
    ClaimsChallenge::parse(header)
}

/// A request for `url` as HTTP/1.1 sends it: the path and query as its target, the host in
/// `Host` (with the port unless it is the scheme's).
fn request(
    method: Method,
    url: &Url,
    mut headers: HeaderMap,
    body: Bytes,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let host = HeaderValue::from_str(&url[url::Position::BeforeHost..url::Position::AfterPort])?;
    headers.insert(header::HOST, host);
    let mut request = Request::builder().method(method).uri(&url[url::Position::BeforePath..]).body(Full::new(body))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// The `error_description` of an RFC 6750 challenge.
fn error_description(challenge: &str) -> Option<&str> {
    let start = challenge.find("error_description=\"")? + "error_description=\"".len();
    let rest = &challenge[start..];
    rest.find('"').map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_descriptions_are_extracted() {
        let c = r#"Bearer error="invalid_token", error_description="the token is for another audience", resource_metadata="http://x""#;
        assert_eq!(error_description(c), Some("the token is for another audience"));
        assert_eq!(error_description("Bearer resource_metadata=\"http://x\""), None);
    }

    #[test]
    fn ids_are_encoded_into_one_path_segment() {
        let api = OrdersApi::new(
            Url::parse("http://api:3002/base/").unwrap(),
            Duration::from_secs(1),
            TokenSource::Passthrough,
        )
        .unwrap();
        assert_eq!(api.url(&["api", "orders", "ORD-1"]).as_str(), "http://api:3002/base/api/orders/ORD-1");
        assert_eq!(api.url(&["api", "orders", "a/../b?c"]).as_str(), "http://api:3002/base/api/orders/a%2F..%2Fb%3Fc");
        assert_eq!(api.url(&["readyz"]).as_str(), "http://api:3002/base/readyz");
    }

    #[test]
    fn requests_name_their_target_and_host_as_http_1_1_does() {
        let url = Url::parse("http://api:3002/base/api/orders?status=shipped").unwrap();
        let get = request(Method::GET, &url, HeaderMap::new(), Bytes::new()).unwrap();
        assert_eq!(get.uri(), "/base/api/orders?status=shipped");
        assert_eq!(get.headers()[header::HOST], "api:3002");
        let default_port =
            request(Method::GET, &Url::parse("https://[::1]/readyz").unwrap(), HeaderMap::new(), Bytes::new());
        assert_eq!(default_port.unwrap().headers()[header::HOST], "[::1]");
    }

    #[test]
    fn a_consent_or_interaction_refusal_says_what_to_do() {
        let refused = |error: &str, code: u32| {
            CallError::Exchange(AcquireError::Rejected {
                status: 400,
                error: error.into(),
                description: format!("AADSTS{code}: refused"),
                codes: vec![code],
            })
            .to_string()
        };
        let consent = refused("invalid_grant", 65001);
        assert!(consent.contains("AADSTS65001"), "{consent}");
        assert!(consent.contains("azd hooks run postprovision"), "{consent}");
        assert!(consent.contains("Grant admin consent"), "{consent}");
        let mfa = refused("interaction_required", 50076);
        assert!(mfa.contains("sign out, sign in again"), "{mfa}");
        assert!(!refused("invalid_grant", 70000).contains("administrator"));
    }
}
