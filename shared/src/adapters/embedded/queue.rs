//! The in-process sync queue. Like SQS it delivers every job it is given, duplicates included
//! (coalescing is the engine's business, through the `requested_at` flag), and delays jobs on
//! the clock, so a test that moves a fake clock releases delayed jobs. It also knows when it
//! is settled (nothing ready, running, or due), so tests can wait for quiet instead of sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::Timestamp;
use crate::ports::{Clock, QueueError, SyncJob, SyncQueue};

#[derive(Clone)]
pub struct InProcessQueue {
    sender: mpsc::UnboundedSender<SyncJob>,
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

/// The consuming end, owned by the worker.
pub struct QueueReceiver {
    receiver: mpsc::UnboundedReceiver<SyncJob>,
}

impl InProcessQueue {
    pub fn new(clock: Arc<dyn Clock>) -> (Self, QueueReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Self { sender, clock, state: Arc::default() }, QueueReceiver { receiver })
    }

    /// The worker calls this once for every job it received, when the job is done.
    pub fn finished(&self) {
        self.state.add_unfinished(-1);
    }

    /// Nothing waiting, nothing running, and no delayed job due by the clock's `now`.
    pub fn is_settled(&self) -> bool {
        let now = self.clock.now();
        let unfinished = *self.state.unfinished.lock().unwrap_or_else(|p| p.into_inner());
        let due = self.state.scheduled.lock().unwrap_or_else(|p| p.into_inner()).values().any(|due| *due <= now);
        unfinished == 0 && !due
    }

    fn send(&self, job: SyncJob) -> Result<(), QueueError> {
        self.state.add_unfinished(1);
        self.sender.send(job).map_err(|_| {
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
        if self.sender.is_closed() {
            return Err(stopped());
        }
        let due = self.clock.now().plus_millis(delay.as_millis() as i64);
        let key = self.state.sequence.fetch_add(1, Ordering::Relaxed);
        self.state.scheduled.lock().unwrap_or_else(|p| p.into_inner()).insert(key, due);
        let (queue, job) = (self.clone(), job.clone());
        tokio::spawn(async move {
            queue.clock.sleep_until(due).await;
            // Counted as unfinished before it stops counting as scheduled: never settled between.
            let sent = queue.send(job);
            queue.state.scheduled.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            if sent.is_err() {
                // Shutting down: the job's request flag stays set, so the next run picks it up.
                tracing::debug!("queue worker stopped before a delayed job was due");
            }
        });
        Ok(())
    }
}

impl QueueReceiver {
    /// The next job; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<SyncJob> {
        self.receiver.recv().await
    }

    /// The next job if one is ready now.
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
        let received = [receiver.recv().await, receiver.recv().await, receiver.recv().await];
        assert_eq!(received.map(|j| j.unwrap().integration_id), [a, a, b]);
        for _ in 0..3 {
            queue.finished();
        }
        assert!(queue.is_settled());
        drop(queue);
        assert!(receiver.recv().await.is_none());
    }
}
