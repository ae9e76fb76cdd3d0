//! Serving HTTP: the listener every service hands to `axum::serve`.

use axum::serve::{Listener, ListenerExt};
use tokio::net::TcpListener;

/// `listener` with Nagle's algorithm off on each accepted connection. Responses written in
/// pieces (streamed Server-Sent Events, MCP answers) would otherwise wait for the peer's delayed
/// ACK (about 40 ms) before their next piece leaves.
pub fn without_delay(listener: TcpListener) -> impl Listener<Addr = std::net::SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    })
}
