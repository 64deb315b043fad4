//! Lambda `sync-worker`: consumes both sync queues (real-time and bulk, each its own event
//! source with its own concurrency cap). Each message is one `SyncJob`; a job whose request was
//! already served is a no-op, so redelivery is harmless. Jobs run one after another
//! before the invocation's deadline: one that cannot finish hands off to a new job, and one
//! there is no time left to start is reported back, like one that failed on infrastructure,
//! panicked, or cannot be read. SQS delivers those again and, after maxReceiveCount, moves
//! them to the DLQ (which alarms).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use seyaha::adapters::stored::JobMessage;
use seyaha::app::App;
use seyaha::app::jobs::BatchOutcome;
use seyaha::logging::Untrusted;

async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let ends_at = invocation_end(event.context.deadline);
    let mut response = SqsBatchResponse::default();
    let mut readable = Vec::new();
    for message in event.payload.records {
        let id = message.message_id.clone().unwrap_or_default();
        match message.body.as_deref().map(JobMessage::decode) {
            Some(Ok(job)) => readable.push((id, job)),
            _ => {
                tracing::error!(message_id = %id, "unreadable sync message; leaving it to the DLQ");
                response.batch_item_failures.push(failure(id));
            }
        }
    }
    let (ids, jobs): (Vec<String>, Vec<_>) = readable.into_iter().unzip();
    let outcomes = app.run_batch(&jobs, ends_at).await;
    for ((id, job), outcome) in ids.into_iter().zip(&jobs).zip(outcomes) {
        match outcome {
            BatchOutcome::Ran(result) => {
                tracing::info!(message_id = %id, integration_id = job.integration_id.map(display), job_kind = job.work.kind(), trigger = ?job.trigger, result = %Untrusted(&format!("{result:?}")), "job done")
            }
            BatchOutcome::Failed(error) => {
                tracing::error!(message_id = %id, integration_id = job.integration_id.map(display), job_kind = job.work.kind(), error = %error, "job failed; SQS will retry it");
                response.batch_item_failures.push(failure(id));
            }
            BatchOutcome::NotStarted => {
                tracing::warn!(message_id = %id, integration_id = job.integration_id.map(display), job_kind = job.work.kind(), "no time left in this invocation; SQS will deliver the job again");
                response.batch_item_failures.push(failure(id));
            }
        }
    }
    Ok(response)
}

/// The invocation's deadline (milliseconds since the epoch) as an instant on this machine.
fn invocation_end(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start_or_exit().await;
    seyaha::lambda::run(service_fn(|event| handle(&app, event))).await
}
