//! Lambda `nightly-sync`: invoked by the EventBridge schedule. Pages through approved, active
//! integrations and queues one sync (DOWN ones: a probe) for each, in SQS batches of 10.
//! The event's content is not used, so both Scheduler input and scheduled events work.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use seyaha::adapters::aws::{AwsBackend, init_tracing};
use seyaha::domain::RunTrigger;

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_tracing();
    let engine = AwsBackend::from_env().await?.engine;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| {
        let engine = engine.clone();
        async move {
            let queued = engine.request_all(RunTrigger::Nightly).await?;
            tracing::info!(queued, "nightly sync queued");
            Ok::<_, Error>(json!({ "queued": queued }))
        }
    }))
    .await
}
