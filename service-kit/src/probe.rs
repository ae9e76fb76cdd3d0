//! A dependency-free HTTP health probe: `<service> healthcheck` in a container (distroless
//! images have no curl), and readiness polling in `cargo xtask`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// `GET url` over plain HTTP/1.1; the status code.
pub fn status(url: &str) -> std::io::Result<u16> {
    let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let rest = url.strip_prefix("http://").ok_or_else(|| bad(format!("only http:// URLs can be probed: {url}")))?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let addr: SocketAddr = host.to_socket_addrs()?.next().ok_or_else(|| bad(format!("{host} does not resolve")))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(format!("not an HTTP answer from {url}: {line:?}")))
}

/// Probes the service's own `/healthz` on the port of `addr_var` (e.g. `ORDERS_API_ADDR`,
/// defaulting to `default_port`): exit 0 when it answers 200.
pub fn healthcheck(addr_var: &str, default_port: u16) -> ExitCode {
    let port =
        std::env::var(addr_var).ok().and_then(|a| a.parse::<SocketAddr>().ok()).map_or(default_port, |a| a.port());
    match status(&format!("http://127.0.0.1:{port}/healthz")) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("unhealthy: /healthz answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
