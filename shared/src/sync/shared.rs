//! The types every sync unit shares, apart from the engine that dispatches to the units (so
//! the units need not depend on it): the configuration, the infrastructure error, what a run
//! came to, and a probe's outcome.

use std::time::Duration;

use crate::domain::{CatalogLimits, Rejection, SyncCounts};
use crate::ports::{QueueError, SecretStoreError, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct SyncConfig {
    /// How long a sync may hold the lease before another may take over.
    pub lease: Duration,
    /// How long a webhook-triggered sync may run inside the request before handing off.
    pub request_budget: Duration,
    /// Activities written per store call; the budget is checked between batches.
    pub write_batch: usize,
    /// Fallback syncs wait this long before starting, so a burst of notifies for unknown
    /// products coalesces into one run.
    pub fallback_delay: Duration,
    /// How long a slot is kept after it starts (its expiry when an availability pull writes it).
    pub slot_retention: Duration,
    /// Integrations per fan-out page job (nightly, sync-all).
    pub fan_out_page: usize,
    /// A fan-out's syncs are spread over this long from its start, by a hash of each id.
    pub fan_out_window: Duration,
    /// Largest single product of `GET /products` read, as sent; a larger one is rejected.
    pub max_product_bytes: usize,
    /// The most one integration stores, and how long deactivated activities are kept.
    pub catalog_limits: CatalogLimits,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(300),
            request_budget: Duration::from_secs(25),
            write_batch: 100,
            fallback_delay: Duration::from_secs(2),
            slot_retention: Duration::from_secs(30 * 24 * 3600),
            fan_out_page: 100,
            fan_out_window: Duration::ZERO,
            max_product_bytes: 1024 * 1024,
            catalog_limits: CatalogLimits::default(),
        }
    }
}

/// Why the engine could not do its work: infrastructure failures only (partner failures are
/// results, recorded on the integration). A queue job that fails this way is worth a redelivery.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a sync run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncResult {
    /// Finished: written (`skipped: false`) or unchanged by hash (`skipped: true`).
    Done {
        counts: SyncCounts,
        skipped: bool,
        rejections: Vec<Rejection>,
    },
    /// Another sync holds the lease, the request budget ran out, or the partner asked to be
    /// called later (429, 503 with `Retry-After`): a sync will run after this.
    Queued,
    /// The partner's endpoint failed; the message names the cause.
    Failed { message: String },
    /// Nothing to do: the job's request was already served, or the integration is gone or
    /// no longer approved and active.
    NotNeeded,
}

/// Whether a probe (a sync's fetch or a connection test) worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    Success,
    Failure,
}
