//! Lambda `sync-worker`: consumes the sync queue. Each message is one `SyncJob`; a job whose
//! request was already served is a no-op, so redelivery is harmless. Messages that fail on
//! infrastructure (or cannot be read) are reported as batch item failures: SQS retries them
//! and, after maxReceiveCount, moves them to the DLQ (which alarms).

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use seyaha::adapters::stored::JobMessage;
use seyaha::app::jobs::run_job;
use seyaha::service::IntegrationService;

async fn handle(service: Arc<IntegrationService>, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let mut response = SqsBatchResponse::default();
    for message in event.payload.records {
        let id = message.message_id.clone().unwrap_or_default();
        let job = match message.body.as_deref().map(JobMessage::decode) {
            Some(Ok(job)) => job,
            _ => {
                tracing::error!(message_id = %id, "unreadable sync message; leaving it to the DLQ");
                response.batch_item_failures.push(failure(id));
                continue;
            }
        };
        match run_job(&service, &job).await {
            Ok(result) => {
                tracing::info!(message_id = %id, integration_id = %job.integration_id, trigger = ?job.trigger, ?result, "job done")
            }
            Err(error) => {
                tracing::error!(message_id = %id, integration_id = %job.integration_id, error = %error, "job failed; SQS will retry it");
                response.batch_item_failures.push(failure(id));
            }
        }
    }
    Ok(response)
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let app = seyaha::lambda::start().await?;
    let service = Arc::clone(app.service());
    lambda_runtime::run(service_fn(move |event| handle(Arc::clone(&service), event))).await
}
