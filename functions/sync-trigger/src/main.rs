//! Lambda `sync-trigger`: the sync trigger webhook behind API Gateway (HTTP API).
//! Clients are built once per container by the library's composition root; metrics are
//! flushed after each invocation.

use seyaha::lambda::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start_or_exit().await;
    seyaha::lambda::run_http(app.sync_trigger_router()).await
}
