//! A person's sign-in through a public client in their browser: OAuth 2.0 authorization code
//! with PKCE (`S256`, RFC 7636) and a loopback redirect (RFC 8252 §7.3, "OAuth 2.0 for Native
//! Apps"). The client listens on the loopback interface on a port the system picks, shows the
//! person the `/authorize` address, receives the redirect there, checks `state`, answers the
//! browser with a short page and redeems the code at `/token` with its verifier. No secret: the
//! verifier proves the redeemer is the one who asked.
//!
//! Entra's loopback rules ("Redirect URI (reply URL) restrictions and limitations", Localhost
//! exceptions, https://learn.microsoft.com/entra/identity-platform/reply-url): `http` is allowed
//! for loopback redirect URIs, and "the port component ... is ignored for the purposes of
//! matching a redirect URI", so one registered `http://127.0.0.1` or `http://localhost` serves
//! any ephemeral port; the host is not: `localhost` and `127.0.0.1` are registered separately,
//! and Entra recommends the IP literal ("Prefer 127.0.0.1 over localhost"); `[::1]` is not
//! supported. The caller passes the redirect URI it registered; the port is the listener's.
//!
//! Used where device code sign-in is blocked ("Microsoft recommends blocking device code flow
//! wherever possible", https://learn.microsoft.com/entra/identity/conditional-access/concept-authentication-flows):
//! the post-provision hook, as Microsoft's Agent 365 CLI signs in to its custom client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use url::Url;

use super::error::AcquireError;
use super::http::read_response;
use super::public_client::{Prompt, PublicClient};
use super::token::{AccessToken, TokenResponse};
use crate::pkce;

/// How long the person has to finish signing in, unless [`BrowserSignIn::with_time_limit`] says otherwise.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(300);

/// A public client signing a person in through their browser, for one tenant. Tokens are
/// cached per scope, so a run signs in once.
pub struct BrowserSignIn {
    client: PublicClient,
    redirect_uri: Url,
    time_limit: Duration,
}

/// What the browser brought back to the redirect URI, `state` already checked.
enum Answer {
    Code(String),
    Refused { error: String, description: String },
}

/// The listener's side of a redirect: the query it came with, and the `state` it must carry.
#[derive(Clone)]
struct Redirects {
    state: Arc<str>,
    answers: mpsc::Sender<Answer>,
}

impl BrowserSignIn {
    /// `authority`: e.g. `https://login.microsoftonline.com`; `client_id`: a public client
    /// registered in `tenant` with loopback redirect URI `redirect_uri` (`http://127.0.0.1`
    /// or `http://localhost`, any path; its port, if any, is replaced by the listener's).
    pub fn new(
        authority: Url,
        tenant: &str,
        client_id: &str,
        redirect_uri: &str,
        prompt: Prompt,
    ) -> Result<Self, AcquireError> {
        let not_loopback = || {
            AcquireError::NotConfigured(format!(
                "browser sign-in: redirect URI {redirect_uri:?} is not http://127.0.0.1 or http://localhost"
            ))
        };
        let redirect_uri = Url::parse(redirect_uri).map_err(|_| not_loopback())?;
        if redirect_uri.scheme() != "http"
            || !matches!(redirect_uri.host_str(), Some("127.0.0.1" | "localhost"))
            || redirect_uri.query().is_some()
        {
            return Err(not_loopback());
        }
        Ok(BrowserSignIn {
            client: PublicClient::new("browser sign-in", authority, tenant, client_id, prompt)?,
            redirect_uri,
            time_limit: DEFAULT_TIME_LIMIT,
        })
    }

    /// Gives up when nobody finished signing in within `limit` (default: [`DEFAULT_TIME_LIMIT`]).
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    pub fn client_id(&self) -> &str {
        &self.client.client_id
    }

    /// A token for `scope` (e.g. `https://graph.microsoft.com/.default`), signing in when none is cached.
    pub async fn token(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        self.client.token(scope, || self.sign_in(scope)).await
    }

    async fn sign_in(&self, scope: &str) -> Result<AccessToken, AcquireError> {
        let random = |e| AcquireError::NotConfigured(format!("browser sign-in: {e}"));
        let verifier = pkce::verifier().map_err(random)?;
        let state: Arc<str> = service_kit::secret::urlsafe::<16>().map_err(random)?.into();
        let (answers, mut answered) = mpsc::channel(1);
        let (listener, extra) = self.listen().await?;
        let mut redirect_uri = self.redirect_uri.clone();
        let port = listener.local_addr().map(|a| a.port()).map_err(|e| self.cannot_listen(&e))?;
        // A URL with an http scheme and a host always takes a port.
        let _ = redirect_uri.set_port(Some(port));

        let listeners = std::iter::once(listener).chain(extra);
        let stop = serve(listeners, redirect_uri.path(), Redirects { state: Arc::clone(&state), answers });

        let mut authorize = self.client.endpoint("authorize")?;
        authorize
            .query_pairs_mut()
            .append_pair("client_id", &self.client.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("response_mode", "query")
            .append_pair("scope", scope)
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce::challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        (self.client.prompt)(&format!("To sign in, open this page in a browser on this machine: {authorize}"));

        let answer = tokio::time::timeout(self.time_limit, answered.recv()).await;
        drop(stop);
        let code = match answer {
            Ok(Some(Answer::Code(code))) => code,
            Ok(Some(Answer::Refused { error, description })) => {
                return Err(AcquireError::Rejected {
                    status: 400,
                    codes: aadsts_codes(&description),
                    description: if description.is_empty() {
                        "the sign-in was not completed in the browser".into()
                    } else {
                        description
                    },
                    error,
                });
            }
            Ok(None) | Err(_) => {
                return Err(AcquireError::NotCompleted(format!(
                    "nobody finished signing in to client {} in the browser within {} s",
                    self.client.client_id,
                    self.time_limit.as_secs()
                )));
            }
        };
        self.redeem(&code, &verifier, &redirect_uri, scope).await
    }

    /// The code for tokens, with the verifier and the very redirect URI it was sent to (RFC 6749 §4.1.3).
    async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &Url,
        scope: &str,
    ) -> Result<AccessToken, AcquireError> {
        let token_endpoint = self.client.endpoint("token")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", self.client.client_id.as_str()),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier),
            ("scope", scope),
        ];
        let result = self.client.http.post(token_endpoint.clone()).form(&form).send().await;
        let response: TokenResponse = read_response(token_endpoint.as_str(), result).await?;
        tracing::info!(scope, client_id = %self.client.client_id, "browser sign-in token");
        Ok(response.access())
    }

    /// The loopback listener on an ephemeral port (127.0.0.1), and for `localhost`, which a
    /// browser may resolve to either address, the IPv6 one on the same port when it can
    /// (RFC 8252 §7.3: "attempt to bind to the loopback interface using both IPv4 and IPv6").
    async fn listen(&self) -> Result<(TcpListener, Option<TcpListener>), AcquireError> {
        let v4 = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .await
            .map_err(|e| self.cannot_listen(&e))?;
        let port = v4.local_addr().map_err(|e| self.cannot_listen(&e))?.port();
        let v6 = if self.redirect_uri.host_str() == Some("localhost") {
            TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)).await.ok()
        } else {
            None
        };
        Ok((v4, v6))
    }

    fn cannot_listen(&self, e: &std::io::Error) -> AcquireError {
        AcquireError::NotConfigured(format!("browser sign-in: cannot listen on the loopback interface: {e}"))
    }
}

/// Serves the redirect URI's path on `listeners` until the returned sender is dropped (then each
/// answers what it received and stops).
fn serve(listeners: impl Iterator<Item = TcpListener>, path: &str, redirects: Redirects) -> watch::Sender<()> {
    let app = Router::new().route(path, axum::routing::get(redirected)).with_state(redirects);
    let (stop, stopped) = watch::channel(());
    for listener in listeners {
        let (app, mut stopped) = (app.clone(), stopped.clone());
        let shutdown = async move { while stopped.changed().await.is_ok() {} };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
    }
    stop
}

/// One redirect to the listener. An answer whose `state` is not this sign-in's is refused and
/// ignored (RFC 6749 §10.12: it may be forged, and must not end the real one); the first with
/// the right `state` ends the wait. The page says only what happened: never a code or token.
async fn redirected(
    State(redirects): State<Redirects>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let page = |status, text: &'static str| (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text);
    let right_state = query.get("state").is_some_and(|s| service_kit::secret::same(s, &redirects.state));
    if !right_state {
        return page(
            StatusCode::BAD_REQUEST,
            "This answer does not belong to the sign-in in progress and was ignored. You can close this tab.",
        );
    }
    let answer = match (query.get("code"), query.get("error")) {
        (_, Some(error)) => Answer::Refused {
            error: error.clone(),
            description: query.get("error_description").cloned().unwrap_or_default(),
        },
        (Some(code), None) => Answer::Code(code.clone()),
        (None, None) => return page(StatusCode::BAD_REQUEST, "This answer has neither a code nor an error."),
    };
    let signed_in = matches!(answer, Answer::Code(_));
    // A full channel: an answer already arrived; this one changes nothing.
    let _ = redirects.answers.try_send(answer);
    if signed_in {
        page(StatusCode::OK, "Signed in. You can close this tab and return to the terminal.")
    } else {
        page(StatusCode::OK, "The sign-in was not completed. You can close this tab and return to the terminal.")
    }
}

/// Entra's `AADSTS<code>` at the start of an `error_description`.
fn aadsts_codes(description: &str) -> Vec<u32> {
    description
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .into_iter()
        .collect()
}

impl std::fmt::Debug for BrowserSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSignIn")
            .field("client", &self.client)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .finish_non_exhaustive()
    }
}
