//! Running one queue job at a worker's boundary (the sync-worker Lambda, seyaha-local's worker):
//! a panic fails that job alone, like an infrastructure error, so the other messages of a
//! batch are unaffected and the failed one is delivered again.

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use crate::ports::SyncJob;
use crate::service::IntegrationService;
use crate::sync::{SyncError, SyncResult};

/// Why a job did not complete; either way it is worth delivering again.
#[derive(Debug, thiserror::Error)]
pub enum JobFailure {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("the job panicked: {0}")]
    Panicked(String),
}

/// Runs one job through the service, catching a panic.
pub async fn run_job(service: &IntegrationService, job: &SyncJob) -> Result<SyncResult, JobFailure> {
    match AssertUnwindSafe(service.run_job(job)).catch_unwind().await {
        Ok(result) => Ok(result?),
        Err(panic) => Err(JobFailure::Panicked(panic_message(panic.as_ref()))),
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}
