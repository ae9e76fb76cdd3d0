//! A TCP front for a service that fails the way a killed process does, at the socket level:
//! [`Front::crash`] closes every open connection and refuses new ones until [`Front::restart`];
//! [`Front::lose_next`] makes the next request that carries a marker vanish as a request in
//! flight does when its server dies (read, never forwarded, the connection closed unanswered).
//! An in-process service cannot be killed: its connection tasks would outlive a stop.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct Front {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// The accept loop and, through it, every relayed connection; dropped: all closed.
    serving: Mutex<Option<JoinSet<()>>>,
}

struct Shared {
    backend: SocketAddr,
    /// Lowercase text a request must contain to be lost, while armed.
    lose: Mutex<Option<String>>,
    /// The requests lost so far (their first bytes, lowercased).
    lost: Mutex<Vec<String>>,
}

impl Front {
    /// A front listening on a free loopback port, relaying to `backend`.
    pub async fn start(backend: SocketAddr) -> Front {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let front = Front {
            addr,
            shared: Arc::new(Shared { backend, lose: Mutex::new(None), lost: Mutex::new(Vec::new()) }),
            serving: Mutex::new(None),
        };
        front.serve(listener);
        front
    }

    /// Every connection closed at once, the port closed (connections refused).
    pub fn crash(&self) {
        self.serving.lock().unwrap().take();
    }

    /// Listening again on the same port.
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// The next request containing `marker` (matched without case: HTTP/1 header names) is lost.
    pub fn lose_next(&self, marker: &str) {
        *self.shared.lose.lock().unwrap() = Some(marker.to_lowercase());
    }

    /// How many requests were lost.
    pub fn lost(&self) -> usize {
        self.shared.lost.lock().unwrap().len()
    }

    fn serve(&self, listener: TcpListener) {
        let shared = self.shared.clone();
        let mut set = JoinSet::new();
        set.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, shared.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        *self.serving.lock().unwrap() = Some(set);
    }
}

async fn relay(client: TcpStream, shared: Arc<Shared>) {
    let Ok(server) = TcpStream::connect(shared.backend).await else { return };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // Dropped with this task (a crash, a lost request): both directions close.
    let mut answers = JoinSet::new();
    answers.spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from_client.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buffer[..n]).to_lowercase();
        {
            let mut lose = shared.lose.lock().unwrap();
            if lose.as_ref().is_some_and(|marker| text.contains(marker.as_str())) {
                lose.take();
                shared.lost.lock().unwrap().push(text);
                return;
            }
        }
        if to_server.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to_server.shutdown().await;
    while answers.join_next().await.is_some() {}
}
