//! seyaha-local's accept loop: what `axum::serve` does, plus the limits a server facing
//! untrusted clients needs (on AWS, API Gateway provides them):
//! - a **header read timeout**: a client that trickles its request head (one header line a
//!   second) is disconnected after it, and so is a keep-alive connection left idle that long,
//!   since hyper waits for the next request head under the same timer;
//! - a **connection cap**: past it, new connections wait in the listen backlog until one ends,
//!   so idle sockets cannot exhaust file descriptors and starve the clients already connected.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long in-flight requests get to finish once a shutdown was asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The connection cap, and how many connections are open under it.
#[derive(Debug, Clone)]
pub struct Connections {
    permits: Arc<Semaphore>,
    max: usize,
}

impl Connections {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self { permits: Arc::new(Semaphore::new(max)), max }
    }

    /// Connections being served now (never more than the cap).
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
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
    let permits = connections.permits;
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_read_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A permit first: at the cap, the next connection waits in the backlog.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Timeouts and clients that went away: routine.
                tracing::debug!(error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {} s; closing them", DRAIN_TIMEOUT.as_secs());
    }
    Ok(())
}
