//! The fan-out: the nightly job and `POST /admin/sync-all` request a sync of every approved,
//! active integration as data (a chain of page jobs, each bounded work), spread over a window;
//! and the start-up resume of requests an earlier process left pending ([`LivePages`] walks the
//! live integrations for it and for the subscriptions' resubscribe).
//!
//! Each page job marks its integrations with the fan-out and sends their catalog jobs in the
//! bulk lane; the catalog sync ([`CatalogSync`](super::catalog_sync::CatalogSync)) serves them
//! like any other request. It uses the lease protocol ([`Leases`]) only for its watchdog delay.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{IntegrationId, IntegrationRecord, RunId, RunTrigger, Timestamp};
use crate::optimistic::{Change, update_record};
use crate::ports::{
    Clock, Cursor, FanOutPage, IntegrationStore, MAX_QUEUE_DELAY, Ports, StoreError, SyncJob,
    SyncQueue,
};

use super::lease::Leases;
use super::shared::{SyncConfig, SyncError, SyncResult};

/// Integrations per page of the start-up resume's listing.
const RESUME_PAGE_SIZE: usize = 100;

pub(super) struct FanOut {
    integrations: Arc<dyn IntegrationStore>,
    queue: Arc<dyn SyncQueue>,
    clock: Arc<dyn Clock>,
    leases: Leases,
    /// `SyncConfig::fan_out_page`: integrations per page job.
    page_size: usize,
    /// `SyncConfig::fan_out_window`: the syncs are spread over this long from the start.
    window: Duration,
    /// `SyncConfig::lease`: a pending request older than one lease is stale.
    lease: Duration,
}

impl FanOut {
    pub(super) fn new(ports: &Ports, config: &SyncConfig, leases: Leases) -> Self {
        Self {
            integrations: ports.integrations.clone(),
            queue: ports.queue.clone(),
            clock: ports.clock.clone(),
            leases,
            page_size: config.fan_out_page,
            window: config.fan_out_window,
            lease: config.lease,
        }
    }

    /// The nightly job and `POST /admin/sync-all`: a sync request for every approved, active
    /// integration (DOWN ones are only probed when the job runs: their sync is a fetch that
    /// writes nothing unless it succeeds). This only queues the fan-out's first page job (see
    /// [`fan_out_page`](Self::fan_out_page)), so it does the same bounded work however many
    /// integrations there are; it returns how many are live now, which is how many syncs the
    /// fan-out will request unless some are already requested (those are served once) or
    /// change meanwhile.
    pub(super) async fn request_all(&self, trigger: RunTrigger) -> Result<u64, SyncError> {
        let live = self.integrations.count_syncable().await?;
        let now = self.clock.now();
        let fan_out = RunId::generate(now.unix_seconds());
        let page = FanOutPage {
            fan_out,
            started_at: now,
            window: self.window,
            after: None,
        };
        self.queue
            .enqueue(&[SyncJob::fan_out_page(trigger, page)])
            .await?;
        tracing::info!(trigger = ?trigger, integrations = live, fan_out = %fan_out, window_secs = self.window.as_secs(), "fan-out queued for every approved integration");
        Ok(live)
    }

    /// One page job of a fan-out: requests the sync of each integration of the page, queues
    /// its job at its place in the window, then queues the next page. Bounded work per job.
    ///
    /// Delivered again (its worker died or failed part-way), the page does its work again
    /// without syncing anything twice: each integration carries the mark of the fan-out that
    /// last requested it, written in the same versioned write as the request. Marked and still
    /// requested: its job may have been lost with the first delivery, so it is sent again (a
    /// duplicate finds the request served, see `CatalogSync::run`). Marked and no longer requested: already
    /// synced for this fan-out, nothing is sent. The order is marks, then the page's jobs, then
    /// the continuation last: a crash before the continuation leaves the page to its
    /// redelivery (which sends the continuation); a crash after it only repeats this page's
    /// harmless re-sends, and the next page may then run twice, which the marks make harmless.
    pub(super) async fn fan_out_page(
        &self,
        trigger: RunTrigger,
        page: &FanOutPage,
    ) -> Result<SyncResult, SyncError> {
        let listed = self
            .integrations
            .list_syncable(self.page_size.max(1), page.after.clone())
            .await?;
        let now = self.clock.now();
        let mut ready = Vec::new();
        let mut later = Vec::new();
        for record in listed.items {
            let id = record.integration.id;
            let due = page.due(&id);
            if !self
                .request_for_fan_out(id, page.fan_out, record, due, now)
                .await?
            {
                continue;
            }
            match due.unix_millis() - now.unix_millis() {
                wait if wait > 0 => {
                    let delay = Duration::from_millis(wait as u64).min(MAX_QUEUE_DELAY);
                    later.push((SyncJob::bulk_catalog(id, trigger, Some(due)), delay));
                }
                _ => ready.push(SyncJob::bulk_catalog(id, trigger, None)),
            }
        }
        let requested = ready.len() + later.len();
        self.queue.enqueue(&ready).await?;
        self.queue.enqueue_each_after(&later).await?;
        if let Some(next) = listed.next {
            let next = FanOutPage {
                after: Some(next),
                ..page.clone()
            };
            self.queue
                .enqueue(&[SyncJob::fan_out_page(trigger, next)])
                .await?;
        } else {
            tracing::info!(trigger = ?trigger, fan_out = %page.fan_out, "fan-out reached the last page");
        }
        tracing::info!(trigger = ?trigger, fan_out = %page.fan_out, requested, "fan-out page done");
        Ok(SyncResult::Queued)
    }

    /// Requests the sync of `id` for the fan-out `fan_out`, due at `due`; true when a job must
    /// be sent.
    async fn request_for_fan_out(
        &self,
        id: IntegrationId,
        fan_out: RunId,
        known: IntegrationRecord,
        due: Timestamp,
        now: Timestamp,
    ) -> Result<bool, SyncError> {
        let stale_after = self.lease.as_millis() as i64;
        let updated = update_record(self.integrations.as_ref(), &id, Some(known), |record| {
            let control = &mut record.sync_control;
            if control.fan_out == Some(fan_out) {
                // A page delivered again: send the job again while the request is pending.
                return Change::Keep(control.requested_at.is_some());
            }
            control.fan_out = Some(fan_out);
            if control
                .pending_request(now)
                .is_some_and(|at| at.plus_millis(stale_after) > now)
            {
                // Coalesced: the pending request's own job serves this fan-out too.
                return Change::Write(false);
            }
            control.request(now);
            // Real-time requests meanwhile are not coalesced into this one (see `Leases::mark_requested`).
            control.deferred_until = (due > now).then_some(due);
            Change::Write(true)
        })
        .await?;
        Ok(updated.is_some_and(|(_, send)| send))
    }

    /// Queues a job for every live integration whose request is still pending: now, or when
    /// the lease of the run that took it expires. Pages through the store.
    pub(super) async fn resume_pending(&self) -> Result<u64, SyncError> {
        let mut resumed = 0;
        let mut pages = LivePages::default();
        while let Some(records) = pages.next(self.integrations.as_ref()).await? {
            let now = self.clock.now();
            for record in records.iter() {
                let control = &record.sync_control;
                // A sync request, and pending availability pulls: each gets its job again.
                let catalog = control
                    .requested_at
                    .map(|_| SyncJob::catalog(record.integration.id, RunTrigger::FollowUp));
                let pulls = control
                    .pulls_requested_at
                    .map(|_| SyncJob::pending_pulls(record.integration.id));
                for job in catalog.into_iter().chain(pulls) {
                    match control.live_lease(now) {
                        Some(lease) => {
                            self.queue
                                .enqueue_after(&job, self.leases.delay_until(lease.expires_at, now))
                                .await?
                        }
                        None => self.queue.enqueue(&[job]).await?,
                    }
                    resumed += 1;
                }
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "resumed sync requests left by an earlier run");
        }
        Ok(resumed)
    }
}

/// The approved, active integrations page by page, following the store's cursors to the end
/// (never loading them all): the start-up resume walks them this way.
#[derive(Default)]
pub(super) struct LivePages {
    after: Option<Cursor>,
    done: bool,
}

impl LivePages {
    pub(super) async fn next(
        &mut self,
        store: &dyn IntegrationStore,
    ) -> Result<Option<Vec<IntegrationRecord>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = store
            .list_syncable(RESUME_PAGE_SIZE, self.after.take())
            .await?;
        self.done = page.next.is_none();
        self.after = page.next;
        Ok(Some(page.items))
    }
}
