//! The sync queue on SQS: two standard queues, one per lane (real-time and bulk), each with its
//! own dead-letter queue and its own event source on the worker. Coalescing and idempotency
//! come from the `requested_at` flag on the integration (a conditional write), not from FIFO
//! deduplication (docs/operations.md, "SQS", says why).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::SdkFailure;
use crate::adapters::stored::JobMessage;
use crate::ports::{Lane, MAX_QUEUE_DELAY, QueueError, SyncJob, SyncQueue};

/// SQS's SendMessageBatch limit.
const BATCH_LIMIT: usize = 10;
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    real_time_url: String,
    bulk_url: String,
}

fn failed<E: std::error::Error + Send + Sync + 'static>(error: E) -> QueueError {
    QueueError::new(SdkFailure::new(error))
}

fn body(job: &SyncJob) -> Result<String, QueueError> {
    Ok(JobMessage::encode(job))
}

impl SqsQueue {
    pub fn new(
        client: Client,
        real_time_url: impl Into<String>,
        bulk_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            real_time_url: real_time_url.into(),
            bulk_url: bulk_url.into(),
        }
    }

    fn url(&self, lane: Lane) -> &str {
        match lane {
            Lane::RealTime => &self.real_time_url,
            Lane::Bulk => &self.bulk_url,
        }
    }
}

#[async_trait]
impl SyncQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        for lane in [Lane::RealTime, Lane::Bulk] {
            let lane_jobs: Vec<(&SyncJob, Duration)> = jobs
                .iter()
                .filter(|job| job.lane == lane)
                .map(|job| (job, Duration::ZERO))
                .collect();
            self.send_batches(self.url(lane), &lane_jobs).await?;
        }
        Ok(())
    }

    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        let url = self.url(job.lane);
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body(job)?)
            .delay_seconds(seconds(delay))
            .send()
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn enqueue_each_after(&self, jobs: &[(SyncJob, Duration)]) -> Result<(), QueueError> {
        for lane in [Lane::RealTime, Lane::Bulk] {
            let lane_jobs: Vec<(&SyncJob, Duration)> = jobs
                .iter()
                .filter(|(job, _)| job.lane == lane)
                .map(|(job, delay)| (job, *delay))
                .collect();
            self.send_batches(self.url(lane), &lane_jobs).await?;
        }
        Ok(())
    }
}

/// SQS's `DelaySeconds`: whole seconds, rounded up (never early), at most 15 minutes.
fn seconds(delay: Duration) -> i32 {
    delay.min(MAX_QUEUE_DELAY).as_secs_f64().ceil() as i32
}

impl SqsQueue {
    /// Sends in batches of 10, each job after its delay (none when zero).
    async fn send_batches(
        &self,
        url: &str,
        jobs: &[(&SyncJob, Duration)],
    ) -> Result<(), QueueError> {
        for chunk in jobs.chunks(BATCH_LIMIT) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (job, delay))| {
                    let entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body(job)?);
                    let entry = if delay.is_zero() {
                        entry
                    } else {
                        entry.delay_seconds(seconds(*delay))
                    };
                    entry.build().map_err(failed)
                })
                .collect::<Result<Vec<_>, QueueError>>()?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(failed)?;
            if let Some(failure) = output.failed.first() {
                return Err(QueueError::new(format!(
                    "SQS refused {} of {} messages: {}",
                    output.failed.len(),
                    chunk.len(),
                    failure.code
                )));
            }
        }
        Ok(())
    }
}
