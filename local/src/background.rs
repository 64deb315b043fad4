//! The work seyaha-local runs beside the HTTP server: the queue worker (what the sync-worker
//! Lambda does on AWS) and the nightly schedule (what EventBridge does on AWS).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use croner::Cron;
use seyaha::adapters::embedded::{InProcessQueue, QueueReceiver};
use seyaha::domain::RunTrigger;
use seyaha::ports::SyncQueue;
use seyaha::sync::SyncEngine;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Jobs run at once by the local worker.
const WORKER_CONCURRENCY: usize = 4;
/// A job that failed on infrastructure is retried once after this delay (SQS would redeliver).
const RETRY_DELAY: Duration = Duration::from_secs(10);
/// How long a graceful stop waits for running jobs.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `SEYAHA_NIGHTLY_CRON` (5 fields, UTC).
pub fn parse_cron(pattern: &str) -> Result<Cron, String> {
    pattern.parse::<Cron>().map_err(|e| format!("SEYAHA_NIGHTLY_CRON {pattern:?} is not a valid cron pattern: {e}"))
}

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn start(engine: Arc<SyncEngine>, queue: InProcessQueue, receiver: QueueReceiver, nightly: Cron) -> Self {
        let (stop, stopped) = watch::channel(false);
        let worker = tokio::spawn(run_worker(Arc::clone(&engine), queue, receiver, stopped.clone()));
        let scheduler = tokio::spawn(run_nightly(engine, nightly, stopped));
        Self { stop, tasks: vec![worker, scheduler] }
    }

    /// Stops taking jobs, lets running ones finish (up to a bound), then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn run_worker(engine: Arc<SyncEngine>, queue: InProcessQueue, mut receiver: QueueReceiver, mut stopped: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(WORKER_CONCURRENCY));
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stopped.changed() => break,
        };
        let job = tokio::select! {
            job = receiver.recv() => match job { Some(job) => job, None => break },
            _ = stopped.changed() => break,
        };
        let engine = Arc::clone(&engine);
        let queue = queue.clone();
        tokio::spawn(async move {
            match engine.handle_job(&job).await {
                Ok(result) => tracing::debug!(integration_id = %job.integration_id, trigger = ?job.trigger, ?result, "job done"),
                Err(error) => {
                    tracing::error!(integration_id = %job.integration_id, trigger = ?job.trigger, error = %error, "job failed; retrying later");
                    // The sync request flag is still set, so a retry (or the next request) picks it up.
                    let _ = queue.enqueue_after(&job, RETRY_DELAY).await;
                }
            }
            drop(permit);
        });
    }
    // Drain: wait until every running job has given its permit back.
    let all = u32::try_from(WORKER_CONCURRENCY).expect("small");
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all)).await;
}

async fn run_nightly(engine: Arc<SyncEngine>, schedule: Cron, mut stopped: watch::Receiver<bool>) {
    loop {
        let now = Utc::now();
        let Ok(next) = schedule.find_next_occurrence(&now, false) else {
            tracing::error!("the nightly schedule has no next occurrence; nightly syncs are off");
            return;
        };
        let wait = (next - now).to_std().unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
        match engine.request_all(RunTrigger::Nightly).await {
            Ok(queued) => tracing::info!(queued, "nightly sync queued"),
            Err(error) => tracing::error!(error = %error, "nightly sync could not be queued"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_schedule_and_refuses_nonsense() {
        let cron = parse_cron("0 3 * * *").unwrap();
        let next = cron.find_next_occurrence(&"2026-11-23T07:00:00Z".parse::<chrono::DateTime<Utc>>().unwrap(), false).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-11-24T03:00:00+00:00");
        assert!(parse_cron("every night").is_err());
    }
}
