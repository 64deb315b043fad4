//! seyaha-local's accept loop: what `axum::serve` does, plus the limits a server facing
//! untrusted clients needs (on AWS, API Gateway provides them):
//! - a **header read timeout**: a client that trickles its request head (one header line a
//!   second) is disconnected after it, and so is a keep-alive connection left idle that long,
//!   since hyper waits for the next request head under the same timer;
//! - a **connection cap**: past it, new connections wait in the listen backlog until one ends,
//!   so idle sockets cannot exhaust file descriptors and starve the clients already connected;
//! - a **per-client cap**: one address holding its share has its further connections closed
//!   on accept, so one client opening thousands of idle sockets cannot fill the connection cap
//!   and keep everyone else waiting in the backlog.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long in-flight requests get to finish once a shutdown was asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection caps (in all, and per client address), and what is open under them.
#[derive(Debug, Clone)]
pub struct Connections {
    permits: Arc<Semaphore>,
    max: usize,
    per_client: Arc<PerClient>,
}

impl Connections {
    pub fn new(max: usize, max_per_client: usize) -> Self {
        let max = max.max(1);
        let per_client = Arc::new(PerClient {
            max: max_per_client.max(1),
            open: Mutex::default(),
        });
        Self {
            permits: Arc::new(Semaphore::new(max)),
            max,
            per_client,
        }
    }

    /// Connections being served now (never more than the cap).
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Connections `client` holds now (never more than the per-client cap).
    pub fn open_from(&self, client: IpAddr) -> usize {
        self.per_client
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&client)
            .copied()
            .unwrap_or(0)
    }
}

#[derive(Debug)]
struct PerClient {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    /// A share for one more connection from `client`, or `None` when it holds the cap.
    fn take(self: &Arc<Self>, client: IpAddr) -> Option<ClientShare> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = open.entry(client).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(ClientShare {
            clients: Arc::clone(self),
            client,
        })
    }
}

/// One connection's place under its client's cap, given back when the connection ends.
struct ClientShare {
    clients: Arc<PerClient>,
    client: IpAddr,
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the open connections
/// finish their requests (for at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections: Connections,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let Connections {
        permits,
        per_client,
        ..
    } = connections;
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, the next connection waits in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(share) = per_client.take(client) else {
            // Closed at once (dropping the stream), and the permit goes back with it.
            tracing::debug!(client = %client, "closing a connection past the per-client cap");
            continue;
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients that went away: routine.
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop((share, permit));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {} s; closing them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}
