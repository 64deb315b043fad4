//! The run log: one [`Run`]'s identity and timing, carried through its steps, and
//! [`RunLog::record`], which writes what the run came to into the sync log (`RunStore`) with
//! its metrics. Every other unit records its runs here; it calls no other unit.

use std::sync::Arc;
use std::time::Instant;

use crate::domain::{
    ContentHash, IntegrationId, RUN_RETENTION_DAYS, Rejection, RunId, RunOutcome, RunTrigger,
    SyncCounts, SyncRun, Timestamp,
};
use crate::metrics::{self, Rejected};
use crate::ports::{Lane, RunStore};

/// The longest an error message from a partner call may be on the record.
const MAX_ERROR_MESSAGE_LEN: usize = 300;

/// One sync run's identity and timing, carried through its steps.
pub(super) struct Run {
    pub(super) id: IntegrationId,
    pub(super) run_id: RunId,
    pub(super) trigger: RunTrigger,
    /// The lane of the job behind it (real-time unless a fan-out asked).
    pub(super) lane: Lane,
    pub(super) started_at: Timestamp,
    pub(super) clock: Instant,
}

/// What a run record says besides who and when.
pub(super) struct RunReport {
    pub(super) outcome: RunOutcome,
    pub(super) counts: SyncCounts,
    pub(super) hash: Option<ContentHash>,
    pub(super) error: Option<String>,
    pub(super) rejections: Vec<Rejection>,
}

impl Run {
    /// A run of `id` starting now.
    pub(super) fn start(id: IntegrationId, trigger: RunTrigger, now: Timestamp) -> Self {
        Self {
            id,
            run_id: RunId::generate(now.unix_seconds()),
            trigger,
            lane: Lane::RealTime,
            started_at: now,
            clock: Instant::now(),
        }
    }
}

impl RunReport {
    pub(super) fn queued() -> Self {
        Self {
            outcome: RunOutcome::Queued,
            counts: SyncCounts::default(),
            hash: None,
            error: None,
            rejections: Vec::new(),
        }
    }

    /// A partner failure, with its message.
    pub(super) fn failed(message: String) -> Self {
        Self {
            outcome: RunOutcome::Error,
            counts: SyncCounts::default(),
            hash: None,
            error: Some(message),
            rejections: Vec::new(),
        }
    }
}

/// The sync log: the run records every unit writes.
#[derive(Clone)]
pub(super) struct RunLog {
    runs: Arc<dyn RunStore>,
}

impl RunLog {
    pub(super) fn new(runs: Arc<dyn RunStore>) -> Self {
        Self { runs }
    }

    pub(super) async fn record(&self, run: &Run, report: RunReport) {
        let rejected = if run.trigger == RunTrigger::AvailabilityPull {
            Rejected::Availability
        } else {
            Rejected::Product
        };
        metrics::rejections(rejected, report.counts.rejected);
        metrics::sync_run(run.trigger, report.outcome, run.clock.elapsed());
        let record = SyncRun {
            run_id: run.run_id,
            integration_id: run.id,
            trigger: run.trigger,
            started_at: run.started_at,
            duration_ms: run.clock.elapsed().as_millis() as u64,
            outcome: report.outcome,
            counts: report.counts,
            hash: report.hash,
            error: report.error,
            rejections: report.rejections,
            expires_at: run
                .started_at
                .plus_millis(RUN_RETENTION_DAYS * 24 * 3600 * 1000),
        };
        // History is best effort: losing a record must not fail the sync it describes.
        if let Err(error) = self.runs.record_run(&record).await {
            tracing::error!(integration_id = %run.id, error = %error, "could not record the sync run");
        }
    }
}

/// Error messages are short: partner bodies are never echoed, but a hostname can be long.
pub(super) fn truncate(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE_LEN {
        let mut cut = MAX_ERROR_MESSAGE_LEN;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}
