//! Lambda `nightly-sync`: invoked by the EventBridge schedule. Queues the first page job of the
//! nightly fan-out on the bulk queue (the sync-worker pages through approved, active
//! integrations from there, one page per job) and answers how many integrations are live.
//! The event's content is not used, so both Scheduler input and scheduled events work.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start_or_exit().await;
    seyaha::lambda::run(service_fn(move |_event: LambdaEvent<Value>| {
        let service = app.service().clone();
        async move {
            let queued = service.request_nightly_sync().await?;
            tracing::info!(queued, "nightly sync queued");
            Ok::<_, Error>(json!({ "queued": queued }))
        }
    }))
    .await
}
