//! The one start-up shape of every service, as in zero2prod:
//!
//! ```text
//! let app = Application::build(settings).await?;   // everything that can fail at start
//! let port = app.port();                           // port 0 in tests: the one it got
//! app.run_until_stopped(shutdown_signal()).await?; // serve, then drain and clean up
//! ```
//!
//! Each service implements [`Service`] in its `startup.rs` and names
//! `type Application = service_kit::serve::Application<TheService>`, so the three services, the
//! emulator, their tests and `xtask` all start a service the same way.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use axum::serve::{ListenerExt, TapIo};
use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, TraceLayer};
use tracing::Span;
use tracing::field::Empty;

use crate::tls::TlsListener;
use crate::tls::rustls::ServerConfig;

/// A service: how to build its router from its settings.
pub trait Service: Sized + 'static {
    type Settings: Send + 'static;
    /// What the built service offers whoever built it besides its address (the emulator's
    /// signing state for tests); `()` for most.
    type Handle: Clone + Send + Sync + 'static;

    /// Where [`Application::build`] listens.
    fn address(settings: &Self::Settings) -> SocketAddr;

    /// Everything that can fail at start-up happens here, before anything is served. `local`
    /// is the bound address (port 0 resolved); `stopping` is cancelled when the server stops, so
    /// background work ends with it.
    fn build(
        settings: Self::Settings,
        local: SocketAddr,
        stopping: CancellationToken,
    ) -> impl Future<Output = anyhow::Result<Built<Self::Handle>>> + Send;
}

/// What [`Service::build`] makes.
pub struct Built<H> {
    pub router: Router,
    pub handle: H,
    /// Runs once the last request has finished (closing a database, for example).
    pub on_stopped: Option<BoxFuture<'static, ()>>,
    /// Serve HTTPS with this configuration instead of plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
}

impl Built<()> {
    pub fn router(router: Router) -> Self {
        Built { router, handle: (), on_stopped: None, tls: None }
    }
}

/// A service bound to its address and ready to serve.
pub struct Application<S: Service> {
    listener: TcpListener,
    local: SocketAddr,
    router: Router,
    handle: S::Handle,
    stopping: CancellationToken,
    on_stopped: Option<BoxFuture<'static, ()>>,
    tls: Option<Arc<ServerConfig>>,
    drain_limit: Duration,
    service: PhantomData<fn() -> S>,
}

/// How long a stopping service waits for the requests in flight before closing their
/// connections: long enough for any request the services answer, short enough that with the
/// spans' last flush (at most 16 s, `telemetry::install`) it ends inside Azure Container Apps'
/// default termination grace period of 30 s. A client sending its body a byte a minute must not
/// hold a stop open for ever.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(10);

impl<S: Service> Application<S> {
    /// Binds the settings' address, then builds the service.
    pub async fn build(settings: impl Into<S::Settings>) -> anyhow::Result<Self> {
        let settings = settings.into();
        let addr = S::address(&settings);
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        Application::build_on(listener, settings).await
    }

    /// Builds the service on a listener bound already (tests bind port 0 first when the
    /// settings must name the port, as public URLs do).
    pub async fn build_on(listener: TcpListener, settings: impl Into<S::Settings>) -> anyhow::Result<Self> {
        let local = listener.local_addr().context("the listener has no local address")?;
        let stopping = CancellationToken::new();
        let built = S::build(settings.into(), local, stopping.clone()).await?;
        Ok(Application {
            listener,
            local,
            router: built.router,
            handle: built.handle,
            stopping,
            on_stopped: built.on_stopped,
            tls: built.tls,
            drain_limit: DRAIN_LIMIT,
            service: PhantomData,
        })
    }

    pub fn port(&self) -> u16 {
        self.local.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How long [`Self::run_until_stopped`] waits for the requests in flight ([`DRAIN_LIMIT`] by
    /// default).
    pub fn drain_limit(mut self, limit: Duration) -> Self {
        self.drain_limit = limit;
        self
    }

    /// `https` when the service serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// See [`Service::Handle`].
    pub fn handle(&self) -> &S::Handle {
        &self.handle
    }

    /// Serves until `stop` completes, lets the requests in flight finish (within the drain
    /// limit), then cleans up.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let stopping = self.stopping.clone();
        let stop = async move {
            stop.await;
            stopping.cancel();
        };
        // Counted from the stop: `stopping` is cancelled there (and nowhere else before serving ends).
        let (stopping, limit) = (self.stopping.clone(), self.drain_limit);
        let drained = async move {
            stopping.cancelled().await;
            tokio::time::sleep(limit).await;
        };
        // Handlers may read the caller's address (`ConnectInfo<SocketAddr>`): the broker logs
        // whom it issued a token to. axum provides it for `TapIo` listeners, hence the no-op tap
        // on the TLS one.
        let router = match self.tls {
            Some(_) => self.router.layer(axum::Extension(ServedOverTls)),
            None => self.router,
        };
        let app = router.into_make_service_with_connect_info::<SocketAddr>();
        let served = match self.tls {
            Some(config) => {
                let listener = TlsListener::new(self.listener, config)?.tap_io(|_| ());
                within(axum::serve(listener, app).with_graceful_shutdown(stop), drained, limit).await
            }
            None => {
                within(axum::serve(without_delay(self.listener), app).with_graceful_shutdown(stop), drained, limit)
                    .await
            }
        };
        self.stopping.cancel();
        if let Some(cleanup) = self.on_stopped {
            cleanup.await;
        }
        served
    }
}

/// The server's graceful shutdown, given up on once `drained` (the drain limit after the stop)
/// comes first: the connections still open are left to close with the process.
async fn within(
    serving: impl std::future::IntoFuture<Output = std::io::Result<()>>,
    drained: impl Future<Output = ()>,
    limit: Duration,
) -> std::io::Result<()> {
    tokio::select! {
        served = serving.into_future() => served,
        () = drained => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "requests still in flight after the drain limit; not waiting for them");
            Ok(())
        }
    }
}

impl<S: Service> Application<S> {
    /// Serves in the background until the returned [`Running`] is stopped or dropped: how tests,
    /// benches and in-process tools run a service.
    pub fn spawn(self) -> Running<S::Handle> {
        let (handle, addr, scheme) = (self.handle.clone(), self.local, self.scheme());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Running { handle, addr, scheme, stop: Some(stop), task }
    }
}

/// A service serving in the background (see [`Application::spawn`]). Dropping it aborts the
/// server; [`Running::stop`] shuts it down gracefully.
pub struct Running<H> {
    handle: H,
    addr: SocketAddr,
    scheme: &'static str,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl<H: Clone> Running<H> {
    /// See [`Service::Handle`].
    pub fn handle(&self) -> &H {
        &self.handle
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<address>` (`https://` for TLS), as the server listens (not necessarily its
    /// public URL).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stops serving, waits for the requests in flight, and gives back the handle (the
    /// emulator's keys and sessions survive a restart this way).
    pub async fn stop(mut self) -> H {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        self.handle.clone()
    }
}

impl<H> Drop for Running<H> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The plain-TCP listener services serve on: see [`without_delay`]. A named `TapIo` so that
/// axum gives handlers the peer's address (`ConnectInfo<SocketAddr>`).
pub type Plain = TapIo<TcpListener, fn(&mut TcpStream)>;

/// See [`request_spans`].
pub type RequestSpans<B> = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<B>) -> Span,
    DefaultOnRequest,
    fn(&Response<Body>, Duration, &Span),
>;

/// The request span every service logs under: method and route only. Never the query string:
/// it can carry an authorization code, `state`, a front-channel `sid`, or a token a careless
/// client put there. When traces are exported, the span continues the caller's W3C trace
/// context (`traceparent`), so one chat turn is one trace across the services.
///
/// Its name and attributes are OpenTelemetry's for an HTTP server span ("Semantic conventions
/// for HTTP spans", opentelemetry.io/docs/specs/semconv/http/http-spans): named `{method}
/// {http.route}` after the route axum matched (`GET /api/orders/{id}`), or `{method}` alone when
/// none did, since the conventions forbid naming it after the path ("Instrumentation MUST NOT
/// default to using URI path"): a name holding ids would make every order its own operation in
/// Application Insights and in a trace viewer's list. A method outside RFC 9110's (and PATCH) is
/// `_OTHER` (named `HTTP`) with the original in `http.request.method_original`. `url.path` and
/// `url.scheme` are the request's (the scheme a proxy says it received, `X-Forwarded-Proto`, as
/// Container Apps' ingress sends). A 5xx marks the span failed with `error.type`, a 4xx does
/// not. The route needs the layer added with `Router::layer`, which runs it after routing.
pub fn request_spans<B>() -> RequestSpans<B> {
    TraceLayer::new_for_http()
        .make_span_with(request_span::<B> as fn(&Request<B>) -> Span)
        .on_response(response_status as fn(&Response<Body>, Duration, &Span))
}

/// The span [`request_spans`] makes for `request` (public so that a benchmark measures this
/// span, not a copy of it).
pub fn request_span<B>(request: &Request<B>) -> Span {
    let method = known_method(request.method());
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        otel.name = %SpanName { method, route },
        otel.kind = "server",
        http.request.method = method.unwrap_or("_OTHER"),
        http.request.method_original = method.is_none().then(|| original_method(request.method())).flatten(),
        http.route = route,
        url.path = request.uri().path(),
        url.scheme = url_scheme(request),
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
    );
    crate::telemetry::context::continue_trace(&span, request.headers());
    span
}

/// `{method} {route}`, `{method}`, or `HTTP` for a method the conventions do not know.
struct SpanName<'a> {
    method: Option<&'a str>,
    route: Option<&'a str>,
}

impl fmt::Display for SpanName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.method.unwrap_or("HTTP"))?;
        match self.route {
            Some(route) => write!(f, " {route}"),
            None => Ok(()),
        }
    }
}

/// The method, if it is one of RFC 9110's or PATCH (the conventions' "known" methods): any
/// other is recorded as `_OTHER`, so a client cannot mint span names.
fn known_method(method: &Method) -> Option<&'static str> {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    KNOWN.iter().find(|known| *known == method).map(Method::as_str)
}

/// An unknown method as the client sent it, unless it is long: a span is not the place for
/// whatever a client put in its request line.
fn original_method(method: &Method) -> Option<&str> {
    const MAX: usize = 32;
    Some(method.as_str()).filter(|m| m.len() <= MAX)
}

/// Whether the request reached this service over TLS (an extension [`Application`] adds to
/// requests when it serves HTTPS).
#[derive(Clone, Copy)]
struct ServedOverTls;

/// The scheme of the client's request: what a proxy in front says it received, else how this
/// service was reached.
fn url_scheme<B>(request: &Request<B>) -> &'static str {
    let forwarded = request.headers().get("x-forwarded-proto").map(|value| value.as_bytes());
    match forwarded {
        Some(proto) if proto.eq_ignore_ascii_case(b"https") => "https",
        Some(proto) if proto.eq_ignore_ascii_case(b"http") => "http",
        _ if request.extensions().get::<ServedOverTls>().is_some() => "https",
        _ => "http",
    }
}

/// The response's status on its request span, and tower-http's default debug line.
fn response_status(response: &Response<Body>, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        crate::telemetry::context::record_error(span, status.as_str());
    }
    tracing::debug!(parent: span, status = status.as_u16(), latency_ms = latency.as_millis(), "finished processing request");
}

/// `listener` with Nagle's algorithm off on each accepted connection. Responses written in
/// pieces (streamed Server-Sent Events, MCP answers) would otherwise wait for the peer's delayed
/// ACK (about 40 ms) before their next piece leaves.
pub fn without_delay(listener: TcpListener) -> Plain {
    fn no_delay(tcp: &mut TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }
    listener.tap_io(no_delay as fn(&mut TcpStream))
}

/// Completes on Ctrl-C, or on SIGTERM (what container runtimes send to stop a service): the
/// signal for a graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    use super::*;

    /// A service answering `/scheme` with the `url.scheme` its request spans record.
    struct Scheme;

    impl Service for Scheme {
        type Settings = Option<Arc<ServerConfig>>;
        type Handle = ();

        fn address(_: &Self::Settings) -> SocketAddr {
            SocketAddr::from(([127, 0, 0, 1], 0))
        }

        async fn build(tls: Self::Settings, _: SocketAddr, _: CancellationToken) -> anyhow::Result<Built<()>> {
            let router = Router::new()
                .route("/scheme", get(|request: Request<Body>| async move { url_scheme(&request) }))
                .route("/echo", axum::routing::post(|body: String| async move { body }));
            Ok(Built { router, handle: (), on_stopped: None, tls })
        }
    }

    /// A CA, and a server configuration with a certificate for `localhost` it signed.
    fn local_tls() -> (reqwest::Certificate, Arc<ServerConfig>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &Issuer::new(ca, &ca_key))
            .unwrap();
        let config = crate::tls::server_config(leaf.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        (reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap(), config)
    }

    #[tokio::test]
    async fn a_service_serving_https_records_the_https_scheme_on_its_request_spans() {
        let (ca, config) = local_tls();
        let https = Application::<Scheme>::build(Some(config)).await.unwrap().spawn();
        let plain = Application::<Scheme>::build(None).await.unwrap().spawn();
        let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
        let scheme = |url: String| {
            let client = client.clone();
            async move { client.get(url).send().await.unwrap().text().await.unwrap() }
        };
        let https_url = format!("https://localhost:{}/scheme", https.addr().port());
        assert_eq!(scheme(https_url).await, "https");
        assert_eq!(scheme(format!("{}/scheme", plain.url())).await, "http");
    }

    /// A request whose body never finishes (a byte sent, a hundred promised) cannot hold a stop
    /// open: after the drain limit the server stops waiting for it.
    #[tokio::test]
    async fn a_request_that_never_finishes_does_not_hold_the_stop_open() {
        use tokio::io::AsyncWriteExt;
        let app = Application::<Scheme>::build(None).await.unwrap().drain_limit(Duration::from_millis(200));
        let running = app.spawn();
        let mut slow = TcpStream::connect(running.addr()).await.unwrap();
        slow.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nx").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopped = tokio::time::timeout(Duration::from_secs(5), running.stop()).await;
        assert!(stopped.is_ok(), "the stop waited for a body that never comes");
        drop(slow);
    }
}
