//! The in-process sync queue. Like SQS it delivers every job it is given, duplicates included
//! (coalescing is the engine's business, through the `requested_at` flag), and delays jobs on
//! the clock, so a test that moves a fake clock releases delayed jobs. It also knows when it
//! is settled (nothing ready, running, or due), so tests can wait for quiet instead of sleeping.
//! Like the two SQS queues, it has two lanes: each job goes to the one its `lane` names, and
//! a consumer of both takes real-time jobs first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::Timestamp;
use crate::ports::{Clock, Lane, QueueError, SyncJob, SyncQueue};

#[derive(Clone)]
pub struct InProcessQueue {
    real_time: mpsc::UnboundedSender<SyncJob>,
    bulk: mpsc::UnboundedSender<SyncJob>,
    clock: Arc<dyn Clock>,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    /// Jobs sent and not yet finished by the worker (waiting in the channel or running).
    unfinished: Mutex<u64>,
    /// Delayed jobs not yet sent, by a sequence number, with when they are due.
    scheduled: Mutex<HashMap<u64, Timestamp>>,
    sequence: AtomicU64,
}

impl State {
    fn add_unfinished(&self, delta: i64) {
        let mut unfinished = self.unfinished.lock().unwrap_or_else(|p| p.into_inner());
        *unfinished = unfinished.saturating_add_signed(delta);
    }
}

/// The consuming end of both lanes, owned by the worker.
pub struct QueueReceiver {
    real_time: LaneReceiver,
    bulk: LaneReceiver,
}

/// The consuming end of one lane (a worker with a concurrency cap per lane takes them apart).
pub struct LaneReceiver {
    receiver: mpsc::UnboundedReceiver<SyncJob>,
}

impl InProcessQueue {
    pub fn new(clock: Arc<dyn Clock>) -> (Self, QueueReceiver) {
        let (real_time, real_time_receiver) = mpsc::unbounded_channel();
        let (bulk, bulk_receiver) = mpsc::unbounded_channel();
        let receiver = QueueReceiver {
            real_time: LaneReceiver {
                receiver: real_time_receiver,
            },
            bulk: LaneReceiver {
                receiver: bulk_receiver,
            },
        };
        (
            Self {
                real_time,
                bulk,
                clock,
                state: Arc::default(),
            },
            receiver,
        )
    }

    fn sender(&self, lane: Lane) -> &mpsc::UnboundedSender<SyncJob> {
        match lane {
            Lane::RealTime => &self.real_time,
            Lane::Bulk => &self.bulk,
        }
    }

    /// The worker calls this once for every job it received, when the job is done.
    pub fn finished(&self) {
        self.state.add_unfinished(-1);
    }

    /// Nothing waiting, nothing running, and no delayed job due by the clock's `now`.
    pub fn is_settled(&self) -> bool {
        let now = self.clock.now();
        let unfinished = *self
            .state
            .unfinished
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let due = self
            .state
            .scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|due| *due <= now);
        unfinished == 0 && !due
    }

    fn send(&self, job: SyncJob) -> Result<(), QueueError> {
        self.state.add_unfinished(1);
        self.sender(job.lane).send(job).map_err(|_| {
            self.state.add_unfinished(-1);
            stopped()
        })
    }
}

fn stopped() -> QueueError {
    QueueError::new("the queue worker has stopped")
}

#[async_trait]
impl SyncQueue for InProcessQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        for job in jobs {
            self.send(job.clone())?;
        }
        Ok(())
    }

    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        if self.sender(job.lane).is_closed() {
            return Err(stopped());
        }
        let due = self.clock.now().plus_millis(delay.as_millis() as i64);
        let key = self.state.sequence.fetch_add(1, Ordering::Relaxed);
        self.state
            .scheduled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, due);
        let (queue, job) = (self.clone(), job.clone());
        tokio::spawn(async move {
            queue.clock.sleep_until(due).await;
            // Counted as unfinished before it stops counting as scheduled: never settled between.
            let sent = queue.send(job);
            queue
                .state
                .scheduled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
            if sent.is_err() {
                // Shutting down: the job's request flag stays set, so the next run picks it up.
                tracing::debug!("queue worker stopped before a delayed job was due");
            }
        });
        Ok(())
    }
}

impl QueueReceiver {
    /// The next job, real-time first; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<SyncJob> {
        tokio::select! {
            biased;
            Some(job) = self.real_time.recv() => Some(job),
            Some(job) = self.bulk.recv() => Some(job),
            else => None,
        }
    }

    /// The next job if one is ready now, real-time first.
    pub fn try_recv(&mut self) -> Option<SyncJob> {
        self.real_time.try_recv().or_else(|| self.bulk.try_recv())
    }

    /// The two lanes apart: (real-time, bulk).
    pub fn into_lanes(self) -> (LaneReceiver, LaneReceiver) {
        (self.real_time, self.bulk)
    }
}

impl LaneReceiver {
    /// The lane's next job; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<SyncJob> {
        self.receiver.recv().await
    }

    pub fn try_recv(&mut self) -> Option<SyncJob> {
        self.receiver.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IntegrationId, RunTrigger};
    use crate::ports::SystemClock;

    fn job(id: IntegrationId) -> SyncJob {
        SyncJob::catalog(id, RunTrigger::Fallback)
    }

    #[tokio::test]
    async fn delivers_every_job_in_order_duplicates_included_like_sqs() {
        let (queue, mut receiver) = InProcessQueue::new(Arc::new(SystemClock));
        let (a, b) = (IntegrationId::generate(1), IntegrationId::generate(2));
        queue.enqueue(&[job(a), job(a), job(b)]).await.unwrap();
        assert!(!queue.is_settled());
        let received = [
            receiver.recv().await,
            receiver.recv().await,
            receiver.recv().await,
        ];
        assert_eq!(
            received.map(|j| j.unwrap().integration_id.unwrap()),
            [a, a, b]
        );
        for _ in 0..3 {
            queue.finished();
        }
        assert!(queue.is_settled());
        drop(queue);
        assert!(receiver.recv().await.is_none());
    }

    #[tokio::test]
    async fn real_time_jobs_are_taken_before_bulk_jobs_queued_earlier() {
        let (queue, mut receiver) = InProcessQueue::new(Arc::new(SystemClock));
        let ids: Vec<IntegrationId> = (1..=4).map(IntegrationId::generate).collect();
        let bulk: Vec<SyncJob> = ids[..3]
            .iter()
            .map(|id| SyncJob::bulk_catalog(*id, RunTrigger::Nightly, None))
            .collect();
        queue.enqueue(&bulk).await.unwrap();
        queue.enqueue(&[job(ids[3])]).await.unwrap();
        let mut order = Vec::new();
        while let Some(job) = receiver.try_recv() {
            order.push((job.integration_id.unwrap(), job.lane));
        }
        assert_eq!(order[0], (ids[3], Lane::RealTime), "{order:?}");
        assert_eq!(
            order[1..].iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            ids[..3]
        );
        queue.enqueue(&bulk[..1]).await.unwrap();
        queue.enqueue(&[job(ids[3])]).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap().lane, Lane::RealTime);
        assert_eq!(receiver.recv().await.unwrap().lane, Lane::Bulk);
    }
}
