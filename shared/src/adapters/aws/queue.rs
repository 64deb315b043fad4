//! The sync queue on SQS (a standard queue). Coalescing and idempotency come from the
//! `requested_at` flag on the integration (a conditional write), not from FIFO deduplication
//! (the README's storage section says why).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::SdkFailure;
use crate::adapters::stored::JobMessage;
use crate::ports::{QueueError, SyncJob, SyncQueue};

/// SQS's SendMessageBatch limit.
const BATCH_LIMIT: usize = 10;
/// SQS's longest message delay.
const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

fn failed<E: std::error::Error + Send + Sync + 'static>(error: E) -> QueueError {
    QueueError::new(SdkFailure::new(error))
}

fn body(job: &SyncJob) -> Result<String, QueueError> {
    Ok(JobMessage::encode(job))
}

impl SqsQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl SyncQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        for chunk in jobs.chunks(BATCH_LIMIT) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body(job)?).build().map_err(failed))
                .collect::<Result<Vec<_>, QueueError>>()?;
            let output = self.client.send_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await.map_err(failed)?;
            if let Some(failure) = output.failed.first() {
                return Err(QueueError::new(format!("SQS refused {} of {} messages: {}", output.failed.len(), chunk.len(), failure.code)));
            }
        }
        Ok(())
    }

    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay.min(MAX_DELAY).as_secs_f64().ceil() as i32;
        self.client.send_message().queue_url(&self.url).message_body(body(job)?).delay_seconds(seconds).send().await.map_err(failed)?;
        Ok(())
    }
}
