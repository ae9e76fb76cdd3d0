//! Serving HTTP: the listener every service hands to `axum::serve`, and when to stop.

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
