//! Running queue jobs at a worker's boundary (the sync-worker Lambda, seyaha-local's worker):
//! a panic fails that job alone, like an infrastructure error, so the other messages of a
//! batch are unaffected and the failed one is delivered again; and a batch respects the
//! invocation's deadline, so no job is consumed without having run.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use crate::ports::SyncJob;
use crate::service::IntegrationService;
use crate::sync::{SyncError, SyncResult};

/// Time kept back from a job's deadline for handing off (releasing the lease, queuing the
/// next job) before the invocation ends.
pub const HAND_OFF_MARGIN: Duration = Duration::from_secs(5);

/// Why a job did not complete; either way it is worth delivering again.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("the job panicked: {0}")]
    Panicked(String),
}

/// What became of one job of a batch.
#[derive(Debug)]
pub enum BatchOutcome {
    Ran(SyncResult),
    Failed(JobFailure),
    /// Too little time was left to start it: it must be delivered again, not consumed.
    NotStarted,
}

/// Runs one job through the service, catching a panic.
pub async fn run_job(
    service: &IntegrationService,
    job: &SyncJob,
) -> Result<SyncResult, JobFailure> {
    let result = isolated(service.handle_job(job)).await;
    count(job, job_outcome(&result));
    result
}

/// Runs a batch one job after another before `ends_at` (the invocation's deadline). A job is
/// started only while `start_reserve` remains (enough for a partner call at its timeout); a
/// started job that cannot finish by `ends_at - HAND_OFF_MARGIN` hands off to a new job.
pub async fn run_batch(
    service: &IntegrationService,
    jobs: &[SyncJob],
    ends_at: Instant,
    start_reserve: Duration,
) -> Vec<BatchOutcome> {
    let job_deadline = ends_at.checked_sub(HAND_OFF_MARGIN).unwrap_or(ends_at);
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        if Instant::now() + start_reserve > ends_at {
            count(job, "not_started");
            outcomes.push(BatchOutcome::NotStarted);
            continue;
        }
        let result = isolated(service.handle_job_before(job, job_deadline)).await;
        count(job, job_outcome(&result));
        outcomes.push(match result {
            Ok(result) => BatchOutcome::Ran(result),
            Err(failure) => BatchOutcome::Failed(failure),
        });
    }
    outcomes
}

fn count(job: &SyncJob, outcome: &'static str) {
    crate::metrics::job(job.work.kind(), outcome);
}

/// The `outcome` label of a job that ran: what its sync came to, or why it must run again.
fn job_outcome(result: &Result<SyncResult, JobFailure>) -> &'static str {
    match result {
        Ok(SyncResult::Done { .. }) => "done",
        Ok(SyncResult::Queued) => "queued",
        Ok(SyncResult::Failed { .. }) => "partner_error",
        Ok(SyncResult::NotNeeded) => "not_needed",
        Err(JobFailure::Sync(_)) => "failed",
        Err(JobFailure::Panicked(_)) => "panicked",
    }
}

async fn isolated(
    work: impl Future<Output = Result<SyncResult, SyncError>>,
) -> Result<SyncResult, JobFailure> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => Ok(result?),
        // A panic message may quote outside text; it ends up in log lines.
        Err(panic) => Err(JobFailure::Panicked(
            crate::logging::Untrusted(&crate::logging::panic_message(panic.as_ref())).to_string(),
        )),
    }
}
