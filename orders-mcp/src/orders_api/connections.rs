//! HTTP/1.1 connections to orders-api, each driven by the call that is using it.
//!
//! Why not reqwest, as for every other HTTP call: its pool runs each connection as a task of its
//! own, so a call is a round trip between tasks (the request handed to the connection's task,
//! the answer handed back, each a wake-up, often of the other thread). Here the call polls its
//! connection itself, with hyper's low-level client (`hyper::client::conn::http1`), and an idle
//! connection is polled by nobody. On the full path that took orders-mcp from 72 to 54 µs of CPU
//! per call at concurrency 16, 1.25× the throughput, beside the build before it
//! (docs/performance.md).
//!
//! What reqwest's pool did and this does too:
//! - a request on a kept connection the server has closed since (an idle timeout, a restart) goes
//!   on another: hyper reads the socket before it writes, sees the end, and hands the request back
//!   unsent. A request that was sent is never sent twice. A connection idle for [`IDLE_TIMEOUT`]
//!   is closed instead of used (when the pool is next used: nothing runs in between);
//! - TCP as reqwest sets it up (hyper-util's connector: no Nagle delay, keep-alive probes, so a
//!   peer gone silently fails a kept connection rather than a request; happy eyeballs);
//! - https verifies the server with the platform's roots (`SSL_CERT_FILE` on Linux), through the
//!   same verifier as reqwest's rustls; redirects are not followed (a bearer token must not
//!   follow one anywhere).
//!
//! Not kept: HTTP/2 (measured slower on this hop, docs/performance.md) and proxies from
//! `HTTP_PROXY`/`HTTPS_PROXY` (a call to a service beside this one, inside its network).
//! New: an answer larger than [`MAX_BODY`] is refused, not buffered.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls_platform_verifier::BuilderVerifierExt;
use service_kit::causes::with_causes;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig};
use tokio_util::either::Either;
use tower::ServiceExt;
use url::Url;

/// Idle connections older than this are closed rather than used (reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// TCP keep-alive: probes after this long idle, this often, this many times (reqwest's).
const KEEPALIVE: (Duration, Duration, u32) = (Duration::from_secs(15), Duration::from_secs(15), 3);
/// At most this many idle connections are kept; more are closed when their call ends.
const MAX_IDLE: usize = 256;
/// The largest answer read from orders-api (a page of orders is a few kB).
const MAX_BODY: usize = 1024 * 1024;

type Io = TokioIo<Either<TcpStream, TlsStream<TcpStream>>>;
type Body = Full<Bytes>;

/// Why a request got no answer, with its causes. Never names the server (callers show these to
/// users, and `/readyz` to anyone).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {}", with_causes(.0.as_ref()))]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    #[error("TLS handshake failed: {}", tls_failure(.0))]
    Tls(std::io::Error),
    #[error("{}", with_causes(.0))]
    Http(hyper::Error),
    /// The answer's head came but its body could not be read.
    #[error("its answer could not be read: {0}")]
    Body(String),
}

/// Why a TLS handshake failed, without the names a certificate mismatch would quote (rustls
/// says which name was asked for and which the certificate has: the internal host).
fn tls_failure(error: &std::io::Error) -> String {
    use rustls::{CertificateError, Error};
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => "the server's certificate is not valid for its name".to_string(),
        _ => with_causes(error),
    }
}

/// TLS as reqwest's rustls sets it up: aws-lc-rs, rustls' safe protocol versions, servers
/// verified by the platform's verifier.
pub fn platform_tls() -> Result<Arc<ClientConfig>, rustls::Error> {
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Where the connections go.
struct Target {
    /// `scheme://host:port`, what the TCP connector reads.
    origin: Uri,
    tcp: HttpConnector,
    /// For `https`: how to start TLS, and the name the certificate must show.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// The pool of connections to one origin.
pub struct Connections {
    target: Target,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// One connection: the handle requests are sent through and the state machine that does the
/// work, polled by whichever call holds it (`None` once it has ended).
struct Conn {
    send: SendRequest<Body>,
    driver: Option<Connection<Io, Body>>,
}

/// How one exchange on one connection failed.
enum Failure {
    /// hyper did not send the request (the connection was closed): it can go on another.
    NotSent(Box<Request<Body>>, hyper::Error),
    Failed(SendError),
}

impl Connections {
    /// Connections to `base`'s origin (`http` or `https`), verifying https servers with the
    /// configuration `tls` makes (only called for https: the platform verifier refuses to start
    /// on a host without CA certificates, which an http deployment need not have).
    pub fn new(
        base: &Url,
        tls: impl FnOnce() -> Result<Arc<ClientConfig>, rustls::Error>,
    ) -> Result<Connections, String> {
        let url_host = base.host_str().ok_or("the URL has no host")?;
        // `[::1]` in a URL, `::1` as a name to verify.
        let host = url_host.trim_start_matches('[').trim_end_matches(']');
        let port = base.port_or_known_default().ok_or("the URL has no port")?;
        let tls = match base.scheme() {
            "http" => None,
            "https" => {
                let name =
                    ServerName::try_from(host.to_string()).map_err(|e| format!("{host} is not a server name: {e}"))?;
                let mut config = (*tls().map_err(|e| format!("cannot set up TLS: {e}"))?).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            other => return Err(format!("{other}: only http and https are supported")),
        };
        let origin = format!("{}://{url_host}:{port}", base.scheme());
        let origin = Uri::try_from(origin).map_err(|e| format!("{base} is not a server's address: {e}"))?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false); // it only opens TCP connections; TLS is ours
        // One small request, one small answer: neither held back.
        tcp.set_nodelay(true);
        let (idle, interval, retries) = KEEPALIVE;
        tcp.set_keepalive(Some(idle));
        tcp.set_keepalive_interval(Some(interval));
        tcp.set_keepalive_retries(Some(retries));
        let target = Target { origin, tcp, tls };
        Ok(Connections { target, idle: Mutex::new(Vec::new()) })
    }

    /// Sends `request` (origin-form URI, with its `Host` header) and reads the whole answer.
    pub async fn send(&self, mut request: Request<Body>) -> Result<Response<Bytes>, SendError> {
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            match conn.exchange(request).await {
                Ok(response) => {
                    self.give_back(conn);
                    return Ok(response);
                }
                // The server closed a kept connection as it was taken: another one, or a new
                // one. Each failure drops a kept connection, so this ends.
                Err(Failure::NotSent(unsent, _)) if reused => request = *unsent,
                Err(Failure::NotSent(_, e)) => return Err(SendError::Http(e)),
                Err(Failure::Failed(e)) => return Err(e),
            }
        }
    }

    /// The most recently used idle connection, unless it has been idle too long.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let kept = idle.pop()?;
        if kept.since.elapsed() < IDLE_TIMEOUT {
            return Some(kept.conn);
        }
        idle.clear(); // the rest are older still
        None
    }

    fn give_back(&self, conn: Conn) {
        // Ready is when hyper has asked for the next request: the answer read to its end, no
        // `Connection: close`, nothing left to write.
        if conn.driver.is_none() || !conn.send.is_ready() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Oldest first: those unused for too long (fewer calls than connections) are closed.
        let expired = idle.iter().take_while(|kept| kept.since.elapsed() >= IDLE_TIMEOUT).count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: Instant::now() });
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let Target { origin, tcp, tls } = &self.target;
        let tcp = tcp.clone().oneshot(origin.clone()).await.map_err(|e| SendError::Connect(e.into()))?.into_inner();
        let io = match tls {
            None => Either::Left(tcp),
            Some((connector, name)) => {
                Either::Right(connector.connect(name.clone(), tcp).await.map_err(SendError::Tls)?)
            }
        };
        let (send, driver) = http1::handshake(TokioIo::new(io)).await.map_err(SendError::Http)?;
        Ok(Conn { send, driver: Some(driver) })
    }
}

impl Conn {
    async fn exchange(&mut self, request: Request<Body>) -> Result<Response<Bytes>, Failure> {
        let Conn { send, driver } = self;
        let work = async {
            if let Err(e) = send.ready().await {
                return Err(Failure::NotSent(Box::new(request), e));
            }
            let response = send.try_send_request(request).await.map_err(|mut e| match e.take_message() {
                Some(request) => Failure::NotSent(Box::new(request), e.into_error()),
                None => Failure::Failed(SendError::Http(e.into_error())),
            })?;
            let (head, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
                let why = if e.is::<LengthLimitError>() {
                    format!("larger than {MAX_BODY} bytes")
                } else {
                    with_causes(e.as_ref())
                };
                Failure::Failed(SendError::Body(why))
            })?;
            Ok(Response::from_parts(head, body.to_bytes()))
        };
        drive(driver, work).await
    }
}

/// Runs `work` while polling the connection's `driver`, which does the reading and writing
/// `work` waits for. A driver that ends (the connection closed, or failed) is dropped at once:
/// that is what fails the requests it had not finished, so `work` always ends too.
async fn drive<F: Future>(driver: &mut Option<Connection<Io, Body>>, work: F) -> F::Output {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if let Poll::Ready(out) = work.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        if let Some(running) = driver
            && Pin::new(running).poll(cx).is_ready()
        {
            *driver = None;
        }
        // The driver's progress (an answer read) may have readied `work`: poll it now rather
        // than after the wake-up the driver just sent this same task.
        work.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;
    use tokio_rustls::rustls::RootCertStore;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;

    use super::*;

    /// What the test server does with the `n`th request (from 1) on a connection.
    #[derive(Clone, Copy)]
    enum Server {
        /// Answers every request and keeps the connection.
        KeepsConnections,
        /// Answers, then closes the connection a moment later, without having said it would
        /// (as an idle timeout does).
        ClosesWhenIdle,
        /// Answers the first request; reads the second and closes without an answer.
        HangsUpOnTheSecond,
        /// Answers with a body one byte over the limit.
        AnswersTooMuch,
    }

    /// What the server saw.
    #[derive(Default)]
    struct Seen {
        connections: AtomicUsize,
        requests: AtomicUsize,
        /// Reads with data after the server closed its side (`ClosesWhenIdle`).
        after_close: AtomicUsize,
    }

    async fn serve_http(behaviour: Server) -> (Url, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, behaviour, counts.clone()));
            }
        });
        (url, seen)
    }

    /// One connection, served as `behaviour` says (requests without a body: these are GETs).
    async fn answer(mut stream: impl AsyncRead + AsyncWrite + Unpin, behaviour: Server, seen: Arc<Seen>) {
        seen.connections.fetch_add(1, Ordering::SeqCst);
        let mut buffer = Vec::new();
        for n in 1.. {
            while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(read) => buffer.extend_from_slice(&chunk[..read]),
                }
            }
            let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            buffer.drain(..end);
            seen.requests.fetch_add(1, Ordering::SeqCst);
            let body = match (behaviour, n) {
                (Server::HangsUpOnTheSecond, 2) => return,
                (Server::AnswersTooMuch, _) => vec![b'x'; MAX_BODY + 1],
                _ => format!("answer {n}").into_bytes(),
            };
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(&body).await.is_err() {
                return;
            }
            if let Server::ClosesWhenIdle = behaviour {
                // Once the client has put the connection back in its pool.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = stream.shutdown().await;
                // Still listening: a request written to this connection now would be lost.
                let mut chunk = [0u8; 4096];
                while let Ok(1..) = stream.read(&mut chunk).await {
                    seen.after_close.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }

    fn get(url: &Url) -> Request<Body> {
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        Request::get("/answer").header("host", host).body(Full::new(Bytes::new())).unwrap()
    }

    fn text(response: &Response<Bytes>) -> &str {
        std::str::from_utf8(response.body()).unwrap()
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_calls() {
        let (url, seen) = serve_http(Server::KeepsConnections).await;
        let connections = Connections::new(&url, platform_tls).unwrap();
        for n in 1..=5 {
            let response = connections.send(get(&url)).await.unwrap();
            assert_eq!(text(&response), format!("answer {n}"));
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_while_idle_is_not_used() {
        let (url, seen) = serve_http(Server::ClosesWhenIdle).await;
        let connections = Connections::new(&url, platform_tls).unwrap();
        for call in 0..3 {
            if call > 0 {
                let kept = connections.idle.lock().unwrap().len();
                assert_eq!(kept, 1, "the previous call's connection is kept, and taken next");
            }
            let response = connections.send(get(&url)).await.unwrap();
            assert_eq!(text(&response), "answer 1", "each call on a new connection");
            // The server's close reaches this side while the connection is idle.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(seen.after_close.load(Ordering::SeqCst), 0, "nothing written to a closed connection");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 3, "no request sent twice");
        assert_eq!(seen.connections.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_that_was_sent_is_never_sent_again() {
        // Sent and unanswered, it may have been carried out: sending it again could do a
        // state-changing call twice. The caller hears of the failure instead.
        let (url, seen) = serve_http(Server::HangsUpOnTheSecond).await;
        let connections = Connections::new(&url, platform_tls).unwrap();
        connections.send(get(&url)).await.unwrap();
        let failed = connections.send(get(&url)).await.unwrap_err();
        assert!(matches!(failed, SendError::Http(_)), "{failed}");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
        // The pool is not left holding the broken connection.
        assert_eq!(text(&connections.send(get(&url)).await.unwrap()), "answer 1");
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_refused() {
        let (url, _) = serve_http(Server::AnswersTooMuch).await;
        let connections = Connections::new(&url, platform_tls).unwrap();
        let failed = connections.send(get(&url)).await.unwrap_err();
        assert!(matches!(&failed, SendError::Body(why) if why.contains("larger than")), "{failed}");
    }

    /// An https server on `ip` with a certificate from the emulator's local CA (for localhost,
    /// 127.0.0.1 and ::1), answering as [`Server::KeepsConnections`]; and the CA's file.
    async fn serve_https(ip: &str, dir: &std::path::Path) -> (u16, std::path::PathBuf, Arc<Seen>) {
        let ca = entra_emulator::tls::load_or_create(dir, &[]).unwrap();
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Seen::default());
        let counts = seen.clone();
        let acceptor = TlsAcceptor::from(ca.server);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Ok(tls) = acceptor.accept(stream).await {
                    tokio::spawn(answer(tls, Server::KeepsConnections, counts.clone()));
                }
            }
        });
        (port, ca.ca_file, seen)
    }

    /// A client configuration trusting the CA in `ca_file` only.
    fn trusting(ca_file: &std::path::Path) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    #[tokio::test]
    async fn https_servers_are_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (port, ca_file, seen) = serve_https("127.0.0.1", dir.path()).await;
        let url = Url::parse(&format!("https://localhost:{port}/")).unwrap();

        // The platform's roots do not include the emulator's local CA.
        let untrusting = Connections::new(&url, platform_tls).unwrap();
        let failed = untrusting.send(get(&url)).await.unwrap_err();
        assert!(matches!(failed, SendError::Tls(_)), "{failed}");

        let connections = Connections::new(&url, || Ok(trusting(&ca_file))).unwrap();
        for n in 1..=2 {
            assert_eq!(text(&connections.send(get(&url)).await.unwrap()), format!("answer {n}"));
        }
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_certificate_for_another_name_is_refused_without_naming_the_server() {
        // All of 127/8 is this host (Linux); the certificate names 127.0.0.1, not 127.0.0.2.
        let dir = tempfile::tempdir().unwrap();
        let (port, ca_file, seen) = serve_https("127.0.0.2", dir.path()).await;
        let url = Url::parse(&format!("https://127.0.0.2:{port}/")).unwrap();
        let connections = Connections::new(&url, || Ok(trusting(&ca_file))).unwrap();
        let failed = connections.send(get(&url)).await.unwrap_err().to_string();
        // rustls' own message quotes both names: "certificate not valid for name \"127.0.0.2\";
        // certificate is only valid for ...".
        assert_eq!(failed, "TLS handshake failed: the server's certificate is not valid for its name");
        assert_eq!(seen.requests.load(Ordering::SeqCst), 0);
    }
}
