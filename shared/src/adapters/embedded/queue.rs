//! The in-process sync queue. Jobs for an integration that already has a job waiting are
//! coalesced: the waiting job's run will see every change made before it starts.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::domain::IntegrationId;
use crate::ports::{QueueError, SyncJob, SyncQueue};

#[derive(Clone)]
pub struct InProcessQueue {
    sender: mpsc::UnboundedSender<SyncJob>,
    waiting: Arc<Mutex<HashSet<IntegrationId>>>,
}

/// The consuming end, owned by the worker.
pub struct QueueReceiver {
    receiver: mpsc::UnboundedReceiver<SyncJob>,
    waiting: Arc<Mutex<HashSet<IntegrationId>>>,
}

impl InProcessQueue {
    pub fn new() -> (Self, QueueReceiver) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(HashSet::new()));
        (Self { sender, waiting: Arc::clone(&waiting) }, QueueReceiver { receiver, waiting })
    }
}

#[async_trait]
impl SyncQueue for InProcessQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        let mut waiting = self.waiting.lock().expect("queue lock poisoned");
        for job in jobs {
            if waiting.insert(job.integration_id) {
                self.sender.send(job.clone()).map_err(|_| QueueError("the queue worker has stopped".into()))?;
            }
        }
        Ok(())
    }

    /// Delayed jobs stay outside the coalescing window: an immediate request made meanwhile
    /// must not wait for the delay.
    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        let sender = self.sender.clone();
        let job = job.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = sender.send(job);
        });
        Ok(())
    }
}

impl QueueReceiver {
    /// The next job; `None` once every sender is gone. Taking a job ends its coalescing
    /// window, so a request made after this point queues a new job.
    pub async fn recv(&mut self) -> Option<SyncJob> {
        let job = self.receiver.recv().await?;
        self.waiting.lock().expect("queue lock poisoned").remove(&job.integration_id);
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RunTrigger;

    fn job(id: IntegrationId) -> SyncJob {
        SyncJob { integration_id: id, trigger: RunTrigger::Fallback }
    }

    #[tokio::test]
    async fn coalesces_waiting_jobs_per_integration() {
        let (queue, mut receiver) = InProcessQueue::new();
        let (a, b) = (IntegrationId::generate(1), IntegrationId::generate(2));
        queue.enqueue(&[job(a), job(a), job(b)]).await.unwrap();
        queue.enqueue(&[job(a)]).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap().integration_id, a);
        // `a` was taken: a new request queues a new job behind `b`.
        queue.enqueue(&[job(a)]).await.unwrap();
        assert_eq!(receiver.recv().await.unwrap().integration_id, b);
        assert_eq!(receiver.recv().await.unwrap().integration_id, a);
        drop(queue);
        assert!(receiver.recv().await.is_none());
    }
}
