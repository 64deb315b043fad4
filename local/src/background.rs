//! The work seyaha-local runs beside the HTTP server: the queue worker (what the sync-worker
//! Lambda does on AWS) and the nightly schedule (what EventBridge does on AWS). Both go through
//! the service, like every other entry point, and wait on the clock, so tests can move it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use seyaha::adapters::embedded::{InProcessQueue, LaneReceiver, QueueReceiver};
use seyaha::domain::{IntegrationId, Timestamp};
use seyaha::logging::Untrusted;
use seyaha::ports::{Clock, SyncQueue};
use seyaha::service::IntegrationService;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Real-time jobs run at once by the local worker...
const REAL_TIME_CONCURRENCY: usize = 4;
/// ...and bulk ones (fan-out pages and the syncs they request), beside them: each lane has its
/// own cap, so the nightly run never takes the slots real-time work needs.
const BULK_CONCURRENCY: usize = 2;
/// A job that failed on infrastructure is delivered again after this delay, as SQS would
/// after its visibility timeout...
const RETRY_DELAY: Duration = Duration::from_secs(10);
/// ...at most this many times in all (SQS's maxReceiveCount in template.yaml). After that the
/// job is dropped with an error log; its request flag stays set, so the next request for the
/// integration (or the nightly run) still syncs it.
const MAX_ATTEMPTS: u32 = 5;
/// How long a graceful stop waits for running jobs.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `SEYAHA_NIGHTLY_CRON` (5 fields, UTC).
pub fn parse_cron(pattern: &str) -> Result<Cron, String> {
    pattern
        .parse::<Cron>()
        .map_err(|e| format!("SEYAHA_NIGHTLY_CRON {pattern:?} is not a valid cron pattern: {e}"))
}

pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn start(
        service: Arc<IntegrationService>,
        queue: InProcessQueue,
        receiver: QueueReceiver,
        nightly: Cron,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (real_time, bulk) = receiver.into_lanes();
        let real_time = tokio::spawn(run_worker(
            Arc::clone(&service),
            queue.clone(),
            real_time,
            REAL_TIME_CONCURRENCY,
            stopped.clone(),
        ));
        let bulk = tokio::spawn(run_worker(
            Arc::clone(&service),
            queue,
            bulk,
            BULK_CONCURRENCY,
            stopped.clone(),
        ));
        let scheduler = tokio::spawn(run_nightly(service, nightly, clock, stopped));
        Self {
            stop,
            tasks: vec![real_time, bulk, scheduler],
        }
    }

    /// Stops taking jobs, lets running ones finish (up to a bound), then returns.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(error = %error, "a background task ended abnormally");
            }
        }
    }
}

/// One lane's worker: at most `concurrency` of its jobs at once.
async fn run_worker(
    service: Arc<IntegrationService>,
    queue: InProcessQueue,
    mut receiver: LaneReceiver,
    concurrency: usize,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    // Failed attempts by job (a fan-out page is one job of no integration).
    let failures: Arc<Mutex<HashMap<Option<IntegrationId>, u32>>> = Arc::default();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stopped.changed() => break,
        };
        let job = tokio::select! {
            job = receiver.recv() => match job { Some(job) => job, None => break },
            _ = stopped.changed() => break,
        };
        let (service, queue, failures) =
            (Arc::clone(&service), queue.clone(), Arc::clone(&failures));
        tokio::spawn(async move {
            let id = job.integration_id;
            match seyaha::app::jobs::run_job(&service, &job).await {
                Ok(result) => {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&id);
                    tracing::debug!(integration_id = id.map(display), job_kind = job.work.kind(), trigger = ?job.trigger, result = %Untrusted(&format!("{result:?}")), "job done");
                }
                Err(error) => {
                    let attempt = {
                        let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
                        let count = failures.entry(id).or_default();
                        *count += 1;
                        *count
                    };
                    if attempt < MAX_ATTEMPTS {
                        tracing::warn!(integration_id = id.map(display), job_kind = job.work.kind(), trigger = ?job.trigger, attempt, error = %error, "job failed; delivering it again later");
                        if let Err(error) = queue.enqueue_after(&job, RETRY_DELAY).await {
                            tracing::error!(integration_id = id.map(display), error = %error, "could not re-queue a failed job");
                        }
                    } else {
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&id);
                        tracing::error!(integration_id = id.map(display), job_kind = job.work.kind(), trigger = ?job.trigger, attempt, error = %error, "job failed too often; dropped (its sync request stays set)");
                    }
                }
            }
            queue.finished();
            drop(permit);
        });
    }
    // Drain: wait until every running job has given its permit back.
    let all = u32::try_from(concurrency).expect("small");
    if tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "stopping with background jobs still running; their leases expire and the work is redone"
        );
    }
}

async fn run_nightly(
    service: Arc<IntegrationService>,
    schedule: Cron,
    clock: Arc<dyn Clock>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let Some(next) = next_occurrence(&schedule, clock.now()) else {
            tracing::error!("the nightly schedule has no next occurrence; nightly syncs are off");
            return;
        };
        tokio::select! {
            () = clock.sleep_until(next) => {}
            _ = stopped.changed() => return,
        }
        match service.request_nightly_sync().await {
            Ok(queued) => tracing::info!(queued, "nightly sync queued"),
            Err(error) => tracing::error!(error = %error, "nightly sync could not be queued"),
        }
    }
}

/// The schedule's next occurrence strictly after `now`.
fn next_occurrence(schedule: &Cron, now: Timestamp) -> Option<Timestamp> {
    let now = DateTime::<Utc>::from_timestamp_millis(now.unix_millis())?;
    let next = schedule.find_next_occurrence(&now, false).ok()?;
    Some(Timestamp::from_unix_millis(next.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_schedule_and_refuses_nonsense() {
        let cron = parse_cron("0 3 * * *").unwrap();
        let now = Timestamp::parse("2026-11-23T07:00:00Z").unwrap();
        assert_eq!(
            next_occurrence(&cron, now).unwrap().to_string(),
            "2026-11-24T03:00:00.000Z"
        );
        assert!(parse_cron("every night").is_err());
    }
}
