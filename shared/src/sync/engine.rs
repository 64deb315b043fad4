//! One sync engine for every trigger (webhook, nightly, fallback, admin, follow-up, recovery,
//! hand-off): lease -> stream the catalog, parsing, hashing, diffing and writing it in batches
//! as it arrives -> deactivate what it lacked -> commit.
//!
//! Coordination lives on the integration record and changes only through versioned writes:
//! - the **lease** says who may sync; it expires, so a crashed sync never blocks forever;
//! - **`requested_at`** says a sync is wanted. The run that takes the lease covers the pending
//!   request and clears it when it commits, so one run serves every request made before it
//!   started and a run that dies leaves its request behind. A request made while the lease is
//!   held gets a new value and the holder enqueues a follow-up when it finishes; a delayed
//!   watchdog job covers a holder that died;
//! - DOWN's deactivation of the catalog is a catalog write too, so it is done under the lease.
//!
//! Background jobs only run while `requested_at` is set, so duplicate and redelivered queue
//! messages change nothing. Catalog writes are per activity and idempotent, and the catalog
//! hash is committed last, so a run cut short (crash, request budget, a worker's deadline)
//! leaves a catalog that the next run's diff completes: it writes only what is still missing.
//!
//! Memory does not grow with the catalog: one product at a time (at most
//! `SyncConfig::max_product_bytes`), a batch of writes, and per activity its name and content
//! hash (the stored states, and the names the parser has seen).

use std::time::{Duration, Instant};

use crate::domain::{
    Activity, BaseUrl, ContentHash, DOWN_AFTER_FAILURES, HealthStatus, HealthTransition, IntegrationId, IntegrationRecord, Lease,
    MAX_REPORTED_REJECTIONS, RUN_RETENTION_DAYS, Rejection, RunId, RunOutcome, RunTrigger, SyncCounts, SyncRun, SyncStatus, Timestamp,
};
use crate::logging::Untrusted;
use crate::metrics::{self, Record, Rejected, Write};
use crate::octo::{OctoClient, OctoCredentials, OctoError};
use crate::ports::{
    Cursor, FanOutPage, IntegrationStore, JobWork, Lane, MAX_QUEUE_DELAY, Ports, QueueError, SecretStoreError, StoreError, SyncJob,
};
use crate::records::{Change, update_record};

use super::catalog::{CatalogItem, CatalogParser};
use super::diff::StreamingDiff;

/// What a run or subscription records when the integration has no stored credential.
pub(super) const NO_CREDENTIAL: &str = "no credential is stored for this integration";

/// The longest an error message from a partner call may be on the record.
const MAX_ERROR_MESSAGE_LEN: usize = 300;
/// Integrations per page of the start-up resume's listing.
const RESUME_PAGE_SIZE: usize = 100;
/// A deferred job given to a worker at most this early runs (the queue's delay is rounded to
/// seconds, and clocks differ a little); earlier, it goes back to the queue.
const DUE_TOLERANCE_MS: i64 = 1_000;
/// A 429 on `GET /products` without `Retry-After` is retried after this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest a retry after `Retry-After` waits (SQS delays a message 15 minutes at most).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

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
    Done { counts: SyncCounts, skipped: bool, rejections: Vec<Rejection> },
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

/// A catalog read by [`SyncEngine::read_catalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogRead {
    pub products: u64,
    /// False when the deadline came first (everything read until then was fine).
    pub complete: bool,
}

/// Why [`SyncEngine::read_catalog`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFailure {
    pub message: String,
    /// False for a catalog too large or still arriving at the timeout, a 429 and a 503 with
    /// `Retry-After`: the endpoint works, so they never lead to DOWN.
    pub counts_against_health: bool,
}

enum Start {
    NotNeeded,
    Busy { newly_requested: bool, lease_expires_at: Timestamp },
    Acquired { record: Box<IntegrationRecord>, force: bool },
}

pub struct SyncEngine {
    pub(super) ports: Ports,
    pub(super) octo: OctoClient,
    pub(super) config: SyncConfig,
    /// The API's public base URL (`SEYAHA_PUBLIC_URL`): where partners' platforms push.
    pub(super) public_url: Option<String>,
}

impl SyncEngine {
    pub fn new(ports: Ports, octo: OctoClient, config: SyncConfig) -> Self {
        Self { ports, octo, config, public_url: None }
    }

    /// How long a sync may run inside a caller's request (the connection test reads a catalog
    /// within it too).
    pub fn request_budget(&self) -> Duration {
        self.config.request_budget
    }

    /// With a public URL, approved integrations are subscribed to their partner's push channel.
    pub fn with_public_url(mut self, public_url: Option<String>) -> Self {
        self.public_url = public_url;
        self
    }

    /// `POST /{id}/sync/trigger`, after authentication: sync now within the request budget.
    pub async fn trigger(&self, record: IntegrationRecord) -> Result<SyncResult, SyncError> {
        let deadline = Instant::now() + self.config.request_budget;
        let id = record.integration.id;
        self.run(id, RunTrigger::Webhook, Lane::RealTime, Some(record), false, Some(deadline)).await
    }

    /// A queue message. Errors are infrastructure failures (worth a redelivery); partner
    /// failures are recorded on the integration and are not errors here. With a deadline (the
    /// worker's invocation ends then), a run that cannot finish by it hands off to a new job.
    pub async fn handle_job(&self, job: &SyncJob) -> Result<SyncResult, SyncError> {
        self.handle_job_before(job, None).await
    }

    pub async fn handle_job_before(&self, job: &SyncJob, deadline: Option<Instant>) -> Result<SyncResult, SyncError> {
        if let Some(due) = job.not_before {
            let now = self.ports.clock.now();
            if due.unix_millis() - now.unix_millis() > DUE_TOLERANCE_MS {
                // Early (SQS delays 15 minutes at most): back to the queue for the rest.
                let rest = Duration::from_millis((due.unix_millis() - now.unix_millis()) as u64);
                self.ports.queue.enqueue_after(job, rest.min(MAX_QUEUE_DELAY)).await?;
                return Ok(SyncResult::Queued);
            }
        }
        let id = match (&job.work, job.integration_id) {
            (JobWork::FanOutPage(page), _) => return self.fan_out_page(job.trigger, page).await,
            (_, Some(id)) => id,
            (_, None) => {
                // `JobMessage::decode` refuses these, and the constructors never build one.
                tracing::error!(job_kind = job.work.kind(), "a job without its integration; dropped");
                return Ok(SyncResult::NotNeeded);
            }
        };
        match &job.work {
            JobWork::Catalog => self.run(id, job.trigger, job.lane, None, true, deadline).await,
            JobWork::Product { product_id } => self.sync_product(id, product_id).await,
            JobWork::Availability(pull) => self.pull_availability(id, pull).await,
            JobWork::Subscribe => self.subscribe(id).await,
            JobWork::Unsubscribe(what) => self.unsubscribe(id, what).await,
            JobWork::FanOutPage(_) => unreachable!("handled above"),
        }
    }

    /// Asks for a background sync. Coalesced: if one is already requested (and not stale),
    /// nothing is written or sent. Returns whether a job was sent.
    pub async fn request_sync(&self, id: IntegrationId, trigger: RunTrigger, known: Option<IntegrationRecord>) -> Result<bool, SyncError> {
        let now = self.ports.clock.now();
        let Some((requested_at, lease_expires_at)) = self.mark_requested(id, known, now).await? else {
            return Ok(false);
        };
        let job = SyncJob::catalog(id, trigger);
        let sent = match lease_expires_at {
            // The holder enqueues a follow-up when it finishes; this covers a holder that dies.
            Some(expires_at) => self.ports.queue.enqueue_after(&job, self.delay_until(expires_at, now)).await,
            None if trigger == RunTrigger::Fallback => self.ports.queue.enqueue_after(&job, self.config.fallback_delay).await,
            None => self.ports.queue.enqueue(&[job]).await,
        };
        if let Err(error) = sent {
            // A request whose message never left must not coalesce the caller's retry away.
            self.withdraw_requests(&[(id, requested_at)]).await;
            return Err(error.into());
        }
        Ok(true)
    }

    /// Clears `requested_at` where it is still the request made at `at` (a newer one stays).
    /// Best effort: if this fails too, the request goes stale after one lease and the next
    /// request is sent again.
    async fn withdraw_requests(&self, requests: &[(IntegrationId, Timestamp)]) {
        for (id, at) in requests {
            let withdrawn = update_record(self.ports.integrations.as_ref(), id, None, |record| {
                if record.sync_control.requested_at != Some(*at) {
                    return Change::Keep(());
                }
                record.sync_control.requested_at = None;
                Change::Write(())
            })
            .await;
            if let Err(error) = withdrawn {
                tracing::error!(integration_id = %id, error = %error, "could not withdraw a sync request whose message was not sent; it goes stale after one lease");
            }
        }
    }

    /// The nightly job and `POST /admin/sync-all`: a sync request for every approved, active
    /// integration (DOWN ones are only probed when the job runs: their sync is a fetch that
    /// writes nothing unless it succeeds). This only queues the fan-out's first page job (see
    /// [`fan_out_page`](Self::fan_out_page)), so it does the same bounded work however many
    /// integrations there are; it returns how many are live now, which is how many syncs the
    /// fan-out will request unless some are already requested (those are served once) or
    /// change meanwhile.
    pub async fn request_all(&self, trigger: RunTrigger) -> Result<u64, SyncError> {
        let live = self.ports.integrations.count_syncable().await?;
        let now = self.ports.clock.now();
        let fan_out = RunId::generate(now.unix_seconds());
        let page = FanOutPage { fan_out, started_at: now, window: self.config.fan_out_window, after: None };
        self.ports.queue.enqueue(&[SyncJob::fan_out_page(trigger, page)]).await?;
        tracing::info!(trigger = ?trigger, integrations = live, fan_out = %fan_out, window_secs = self.config.fan_out_window.as_secs(), "fan-out queued for every approved integration");
        Ok(live)
    }

    /// One page job of a fan-out: requests the sync of each integration of the page, queues
    /// its job at its place in the window, then queues the next page. Bounded work per job.
    ///
    /// Delivered again (its worker died or failed part-way), the page does its work again
    /// without syncing anything twice: each integration carries the mark of the fan-out that
    /// last requested it, written in the same versioned write as the request. Marked and still
    /// requested: its job may have been lost with the first delivery, so it is sent again (a
    /// duplicate finds the request served, see `run`). Marked and no longer requested: already
    /// synced for this fan-out, nothing is sent. The order is marks, then the page's jobs, then
    /// the continuation last: a crash before the continuation leaves the page to its
    /// redelivery (which sends the continuation); a crash after it only repeats this page's
    /// harmless re-sends, and the next page may then run twice, which the marks make harmless.
    async fn fan_out_page(&self, trigger: RunTrigger, page: &FanOutPage) -> Result<SyncResult, SyncError> {
        let listed = self.ports.integrations.list_syncable(self.config.fan_out_page.max(1), page.after.clone()).await?;
        let now = self.ports.clock.now();
        let mut ready = Vec::new();
        let mut later = Vec::new();
        for record in listed.items {
            let id = record.integration.id;
            let due = page.due(&id);
            if !self.request_for_fan_out(id, page.fan_out, record, due, now).await? {
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
        self.ports.queue.enqueue(&ready).await?;
        self.ports.queue.enqueue_each_after(&later).await?;
        if let Some(next) = listed.next {
            let next = FanOutPage { after: Some(next), ..page.clone() };
            self.ports.queue.enqueue(&[SyncJob::fan_out_page(trigger, next)]).await?;
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
        let stale_after = self.config.lease.as_millis() as i64;
        let updated = update_record(self.ports.integrations.as_ref(), &id, Some(known), |record| {
            let control = &mut record.sync_control;
            if control.fan_out == Some(fan_out) {
                // A page delivered again: send the job again while the request is pending.
                return Change::Keep(control.requested_at.is_some());
            }
            control.fan_out = Some(fan_out);
            if control.pending_request(now).is_some_and(|at| at.plus_millis(stale_after) > now) {
                // Coalesced: the pending request's own job serves this fan-out too.
                return Change::Write(false);
            }
            control.request(now);
            // Real-time requests meanwhile are not coalesced into this one (see `mark_requested`).
            control.deferred_until = (due > now).then_some(due);
            Change::Write(true)
        })
        .await?;
        Ok(updated.is_some_and(|(_, send)| send))
    }

    /// Queues a job for every live integration whose request is still pending: now, or when
    /// the lease of the run that took it expires. Pages through the store.
    pub async fn resume_pending(&self) -> Result<u64, SyncError> {
        let mut resumed = 0;
        let mut pages = LivePages::default();
        while let Some(records) = pages.next(self.ports.integrations.as_ref()).await? {
            let now = self.ports.clock.now();
            for record in records.iter().filter(|record| record.sync_control.requested_at.is_some()) {
                let job = SyncJob::catalog(record.integration.id, RunTrigger::FollowUp);
                match record.sync_control.live_lease(now) {
                    Some(lease) => self.ports.queue.enqueue_after(&job, self.delay_until(lease.expires_at, now)).await?,
                    None => self.ports.queue.enqueue(&[job]).await?,
                }
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(resumed, "resumed sync requests left by an earlier run");
        }
        Ok(resumed)
    }

    /// Sets `requested_at` unless a fresh request no running sync serves exists. `None` when
    /// coalesced; otherwise the request's time and, if a sync is running, when its lease expires.
    async fn mark_requested(
        &self,
        id: IntegrationId,
        known: Option<IntegrationRecord>,
        now: Timestamp,
    ) -> Result<Option<(Timestamp, Option<Timestamp>)>, SyncError> {
        let stale_after = self.config.lease.as_millis() as i64;
        let updated = update_record(self.ports.integrations.as_ref(), &id, known, |record| {
            let control = &mut record.sync_control;
            // A request the running sync already serves does not cover this one, nor does one
            // a fan-out spread to later in its window.
            if control.pending_request(now).is_some_and(|at| at.plus_millis(stale_after) > now) && !control.deferred(now) {
                return Change::Keep(None);
            }
            let at = control.request(now);
            Change::Write(Some((at, control.live_lease(now).map(|l| l.expires_at))))
        })
        .await?;
        Ok(updated.and_then(|(_, newly)| newly))
    }

    /// Records a probe on the health state and acts on the transition: DOWN deactivates the
    /// catalog (and forces the next sync to be full); recovery from DOWN requests that sync.
    pub async fn record_probe(&self, id: IntegrationId, outcome: ProbeOutcome) -> Result<(), SyncError> {
        let now = self.ports.clock.now();
        let updated = update_record(self.ports.integrations.as_ref(), &id, None, |record| {
            let transition = apply_probe(record, outcome, now);
            Change::Write(transition)
        })
        .await?;
        if let Some((_, transition)) = &updated {
            metrics::health_transition(*transition);
        }
        match updated {
            Some((_, HealthTransition::BecameDown)) => self.deactivate_when_down(id).await,
            Some((record, HealthTransition::RecoveredFromDown)) => {
                self.request_sync(id, RunTrigger::Recovery, Some(record)).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// DOWN deactivates the catalog. That is a catalog write like a sync's, so it takes the
    /// lease: a sync committing meanwhile would otherwise be undone after its hash was
    /// recorded, and every later sync would skip the unchanged catalog and leave it inactive.
    /// If a sync holds the lease, that sync decides: success brings the integration back, a
    /// failure deactivates under its own lease (see `fail`).
    async fn deactivate_when_down(&self, id: IntegrationId) -> Result<(), SyncError> {
        let now = self.ports.clock.now();
        let run = Run::start(id, RunTrigger::FollowUp, now);
        let taken = self.take_lease(&run, |record| record.integration.health.status == HealthStatus::Down).await?;
        if !matches!(taken, Some((_, true))) {
            return Ok(());
        }
        let reason = format!("the integration became DOWN: {DOWN_AFTER_FAILURES} probes (syncs or connection tests) failed in a row");
        let deactivated = self.deactivate(id, now, reason, true).await;
        // Give the lease back either way; a request made meanwhile gets its follow-up now.
        self.release(&run, RunTrigger::FollowUp, Request::Served, |_| {}).await?;
        deactivated
    }

    /// Takes the lease for a run that serves no sync request (a product sync, an availability
    /// pull, DOWN's deactivation) when `may_take` allows it and no live lease is held. `None`
    /// when the integration is gone; otherwise its record (with our lease when taken) and
    /// whether the lease was taken. A sync asked for meanwhile still runs after it.
    pub(super) async fn take_lease(
        &self,
        run: &Run,
        may_take: impl Fn(&IntegrationRecord) -> bool,
    ) -> Result<Option<(IntegrationRecord, bool)>, SyncError> {
        let now = run.started_at;
        let lease_for = self.config.lease.as_millis() as i64;
        Ok(update_record(self.ports.integrations.as_ref(), &run.id, None, |record| {
            if !may_take(record) || record.sync_control.live_lease(now).is_some() {
                return Change::Keep(false);
            }
            record.sync_control.lease = Some(Lease { run_id: run.run_id, expires_at: now.plus_millis(lease_for), covers: None });
            Change::Write(true)
        })
        .await?)
    }

    /// Runs `work` under a lease from [`take_lease`](Self::take_lease), then gives the lease
    /// back either way; a request made meanwhile gets its follow-up now.
    pub(super) async fn release_after<T>(&self, run: &Run, work: impl Future<Output = Result<T, SyncError>>) -> Result<T, SyncError> {
        let result = work.await;
        let released = self.release(run, RunTrigger::FollowUp, Request::Served, |_| {}).await;
        let result = result?;
        released?;
        Ok(result)
    }

    /// The partner credential of `integration` (`None`: none is stored).
    pub async fn credentials(&self, integration: &crate::domain::Integration) -> Result<Option<OctoCredentials>, SecretStoreError> {
        let auth_key = self.ports.secrets.get_auth_key(&integration.id).await?;
        Ok(auth_key.map(|auth_key| OctoCredentials { auth_type: integration.auth_type, auth_key }))
    }

    /// Deactivates the catalog of a DOWN integration; the caller holds the lease. When it just
    /// became DOWN (`became_down`), or anything was still active, this is recorded as a run of
    /// its own (trigger `health_down`, outcome `deactivated`) with `reason` and the count, so
    /// the sync log says when and why the catalog went inactive; a failed probe of an
    /// integration long DOWN, finding nothing active, adds none.
    async fn deactivate(&self, id: IntegrationId, now: Timestamp, reason: String, became_down: bool) -> Result<(), SyncError> {
        let run = Run::start(id, RunTrigger::HealthDown, now);
        let deactivated = self.ports.catalog.deactivate_all(&id, now).await?;
        metrics::catalog_writes(Record::Activity, Write::Deactivate, deactivated);
        if !became_down && deactivated == 0 {
            return Ok(());
        }
        metrics::down_deactivation();
        // The reason can name what a partner sent (a status, a hostname): outside text.
        tracing::warn!(integration_id = %id, deactivated, reason = %Untrusted(&reason), "integration is DOWN: activities deactivated, scheduled syncs only probe");
        let counts = SyncCounts { deactivated, ..SyncCounts::default() };
        let report =
            RunReport { outcome: RunOutcome::Deactivated, counts, hash: None, error: Some(truncate(reason)), rejections: Vec::new() };
        self.record_run(&run, report).await;
        Ok(())
    }

    fn delay_until(&self, at: Timestamp, now: Timestamp) -> Duration {
        let millis = (at.unix_millis() - now.unix_millis()).max(0) as u64;
        Duration::from_millis(millis) + Duration::from_secs(1)
    }

    /// A full sync. `lane` is the lane of the job that asked for it: the jobs it leaves (a
    /// watchdog, a follow-up, a hand-off) stay in it, so a bulk run's never crowd real-time work.
    async fn run(
        &self,
        id: IntegrationId,
        trigger: RunTrigger,
        lane: Lane,
        known: Option<IntegrationRecord>,
        only_if_requested: bool,
        deadline: Option<Instant>,
    ) -> Result<SyncResult, SyncError> {
        let started_at = self.ports.clock.now();
        let run = Run { lane, ..Run::start(id, trigger, started_at) };

        let (record, force) = match self.start(&run, known, only_if_requested).await? {
            Start::NotNeeded => return Ok(SyncResult::NotNeeded),
            Start::Busy { newly_requested, lease_expires_at } => {
                // The holder sends a follow-up when it finishes; the watchdog covers a holder
                // that died. A job meeting a held lease (a redelivery, perhaps of the holder's
                // own job) also leaves one, so its work is not consumed while the lease holds.
                if newly_requested || only_if_requested {
                    let watchdog = SyncJob::catalog(id, RunTrigger::FollowUp).in_lane(lane);
                    self.ports.queue.enqueue_after(&watchdog, self.delay_until(lease_expires_at, started_at)).await?;
                }
                tracing::info!(integration_id = %id, trigger = ?trigger, "sync already running: a follow-up will run after it");
                self.record_run(&run, RunReport::queued()).await;
                return Ok(SyncResult::Queued);
            }
            Start::Acquired { record, force } => (*record, force),
        };
        if !only_if_requested {
            // A webhook-triggered run has no queue message that would be delivered again if
            // this process dies: a watchdog at the lease's expiry finishes its work then (and
            // finds nothing to do when the run committed).
            let watchdog = SyncJob::catalog(id, RunTrigger::FollowUp);
            if let Err(error) = self.ports.queue.enqueue_after(&watchdog, self.config.lease + Duration::from_secs(1)).await {
                tracing::warn!(integration_id = %id, error = %error, "could not queue the watchdog of a webhook sync");
            }
        }

        let result = self.sync_locked(&run, &record, force, deadline).await;
        if result.is_err() {
            // Infrastructure failure mid-run: give the lease back so the retry need not wait,
            // and keep the request for it (the job's redelivery, or the watchdog).
            if let Err(error) = self.release(&run, RunTrigger::FollowUp, Request::Unserved { follow_up: false }, |_| {}).await {
                tracing::warn!(integration_id = %id, error = %error, "could not give the lease back; it expires by itself");
            }
        }
        result
    }

    /// Takes the lease, or records that a sync is wanted while another one runs.
    async fn start(&self, run: &Run, known: Option<IntegrationRecord>, only_if_requested: bool) -> Result<Start, SyncError> {
        let now = run.started_at;
        let lease_for = self.config.lease.as_millis() as i64;
        let updated = update_record(self.ports.integrations.as_ref(), &run.id, known, |record| {
            let control = &mut record.sync_control;
            if only_if_requested && control.requested_at.is_none() {
                return Change::Keep(Start::NotNeeded);
            }
            if let Some(lease) = control.live_lease(now) {
                let lease_expires_at = lease.expires_at;
                if control.pending_request(now).is_none() {
                    control.request(now);
                    return Change::Write(Start::Busy { newly_requested: true, lease_expires_at });
                }
                return Change::Keep(Start::Busy { newly_requested: false, lease_expires_at });
            }
            if !record.integration.is_live() {
                // Unapproved or paused since the request: drop it.
                control.requested_at = None;
                return Change::Write(Start::NotNeeded);
            }
            // The run serves the pending request (a webhook run makes its own), and clears it
            // only when it commits: if it dies, the request is still there to be retried.
            let covers = *control.requested_at.get_or_insert(now);
            control.lease = Some(Lease { run_id: run.run_id, expires_at: now.plus_millis(lease_for), covers: Some(covers) });
            record.integration.sync.status = SyncStatus::Syncing;
            // After DOWN the catalog was deactivated: the next successful sync must be full.
            let force = control.force_full_sync || record.integration.health.status == HealthStatus::Down;
            Change::Write(Start::Acquired { record: Box::new(record.clone()), force })
        })
        .await?;
        Ok(match updated {
            None => Start::NotNeeded,
            Some((record, Start::Acquired { force, .. })) => Start::Acquired { record: Box::new(record), force },
            Some((_, other)) => other,
        })
    }

    async fn sync_locked(
        &self,
        run: &Run,
        record: &IntegrationRecord,
        force: bool,
        deadline: Option<Instant>,
    ) -> Result<SyncResult, SyncError> {
        let id = run.id;
        let out_of_budget = || deadline.is_some_and(|d| Instant::now() >= d);
        let Some(credentials) = self.credentials(&record.integration).await? else {
            return self.fail(run, NO_CREDENTIAL.into(), true).await;
        };
        let mut body = match self.octo.open_products(&record.integration.base_url, &credentials).await {
            Ok(body) => body,
            Err(error) => return self.partner_failed(run, &error).await,
        };
        // The one per-activity state the diff needs (name -> content hash), read once the
        // partner answered (a failing partner, a DOWN one's probe, costs no listing).
        let mut diff = StreamingDiff::new(self.ports.catalog.activity_states(&id).await?);
        let mut parser = CatalogParser::new(self.ports.clock.now(), self.config.max_product_bytes);
        let batch_size = self.config.write_batch.max(1);
        let (mut items, mut batch) = (Vec::new(), Vec::with_capacity(batch_size));
        let (mut rejections, mut rejected, mut written) = (Vec::new(), 0u64, 0u64);
        loop {
            // Checked per piece too: an unchanged catalog writes nothing, yet takes its time.
            if out_of_budget() {
                return self.hand_off(run).await;
            }
            let chunk = match body.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(error) => return self.partner_failed(run, &error).await,
            };
            if let Err(error) = parser.feed(&chunk, &mut items) {
                return self.fail(run, error.to_string(), true).await;
            }
            for item in items.drain(..) {
                match item {
                    CatalogItem::Accepted(activity) => batch.extend(diff.incoming(activity)),
                    CatalogItem::Rejected(rejection) => {
                        rejected += 1;
                        if rejections.len() < MAX_REPORTED_REJECTIONS {
                            rejections.push(rejection);
                        }
                    }
                }
                if batch.len() >= batch_size {
                    if out_of_budget() {
                        return self.hand_off(run).await;
                    }
                    written += self.write_activities(&id, &mut batch).await?;
                }
            }
        }
        drop(body);
        metrics::products_fetched(parser.products() as u64);
        let hash = match parser.finish() {
            Ok(hash) => hash,
            Err(error) => return self.fail(run, error.to_string(), true).await,
        };
        if !batch.is_empty() {
            if out_of_budget() {
                return self.hand_off(run).await;
            }
            written += self.write_activities(&id, &mut batch).await?;
        }
        let (to_deactivate, mut counts) = diff.finish();
        counts.rejected = rejected;

        // Skip by hash: the same catalog as last time, and the per-activity diff agreed.
        if !force && written == 0 && to_deactivate.is_empty() && record.integration.sync.last_sync_hash == Some(hash) {
            self.commit(run, None).await?;
            let counts = SyncCounts { rejected, ..SyncCounts::default() };
            let report = RunReport { outcome: RunOutcome::Skipped, counts, hash: Some(hash), error: None, rejections };
            self.record_run(run, report).await;
            tracing::info!(integration_id = %id, trigger = ?run.trigger, "catalog unchanged: skipped");
            return Ok(SyncResult::Done { counts, skipped: true, rejections: Vec::new() });
        }

        if !to_deactivate.is_empty() {
            self.ports.catalog.set_active(&id, &to_deactivate, false, self.ports.clock.now()).await?;
            metrics::catalog_writes(Record::Activity, Write::Deactivate, to_deactivate.len() as u64);
        }

        let committed = self.commit(run, Some(hash)).await?;
        if !committed {
            // Deleted while syncing: what this run wrote must not stay active.
            let deactivated = self.ports.catalog.deactivate_all(&id, self.ports.clock.now()).await?;
            metrics::catalog_writes(Record::Activity, Write::Deactivate, deactivated);
        }
        tracing::info!(integration_id = %id, trigger = ?run.trigger, ?counts, "catalog synced");
        let report = RunReport { outcome: RunOutcome::Synced, counts, hash: Some(hash), error: None, rejections: rejections.clone() };
        self.record_run(run, report).await;
        Ok(SyncResult::Done { counts, skipped: false, rejections })
    }

    /// Writes a batch of created, changed or returning activities and empties it.
    async fn write_activities(&self, id: &IntegrationId, batch: &mut Vec<Activity>) -> Result<u64, SyncError> {
        self.ports.catalog.put_activities(id, batch).await?;
        let count = batch.len() as u64;
        metrics::catalog_writes(Record::Activity, Write::Upsert, count);
        batch.clear();
        Ok(count)
    }

    /// Reads a partner's whole catalog as a sync would, writing nothing (the connection test):
    /// the number of products, or why it failed and whether that counts against its health.
    /// A catalog still arriving at `deadline` with nothing wrong so far passes: the sync, not
    /// the caller's request, reads the rest.
    pub async fn read_catalog(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        deadline: Instant,
    ) -> Result<CatalogRead, CatalogFailure> {
        let partner =
            |error: OctoError| CatalogFailure { counts_against_health: error.counts_against_health(), message: error.to_string() };
        let not_catalog = |error: super::CatalogError| CatalogFailure { counts_against_health: true, message: error.to_string() };
        let mut body = self.octo.open_products(base_url, credentials).await.map_err(partner)?;
        let mut parser = CatalogParser::new(self.ports.clock.now(), self.config.max_product_bytes);
        let mut items = Vec::new();
        while let Some(chunk) = body.chunk().await.map_err(partner)? {
            parser.feed(&chunk, &mut items).map_err(not_catalog)?;
            items.clear();
            // Checked after a piece was read: what arrived by then was read and found fine.
            if Instant::now() >= deadline {
                return Ok(CatalogRead { products: parser.products() as u64, complete: false });
            }
        }
        let products = parser.products() as u64;
        parser.finish().map_err(not_catalog)?;
        Ok(CatalogRead { products, complete: true })
    }

    /// Success: release the lease, record the hash (when written) and a healthy probe.
    /// Returns false when the integration no longer exists.
    async fn commit(&self, run: &Run, hash: Option<ContentHash>) -> Result<bool, SyncError> {
        let now = self.ports.clock.now();
        // The transition of the attempt that was written (a lost race applies it again).
        let mut transition = HealthTransition::Unchanged;
        let released = self
            .release(run, RunTrigger::FollowUp, Request::Served, |record| {
                let sync = &mut record.integration.sync;
                sync.status = SyncStatus::Idle;
                sync.error_message = None;
                if let Some(hash) = hash {
                    sync.last_sync_hash = Some(hash);
                    sync.last_sync_at = Some(now);
                }
                record.sync_control.force_full_sync = false;
                transition = apply_probe(record, ProbeOutcome::Success, now);
            })
            .await?;
        if released == Some(Released::Written) {
            metrics::health_transition(transition);
        }
        Ok(released.is_some())
    }

    /// A failed partner call, by its class: a 429 or a 503 with `Retry-After` is retried after
    /// the delay the partner asked for; a catalog too large, or still arriving when time ran
    /// out, is an error that does not count against health; anything else is a failed probe.
    async fn partner_failed(&self, run: &Run, error: &OctoError) -> Result<SyncResult, SyncError> {
        match error.retry_after(DEFAULT_RETRY_AFTER) {
            Some(delay) => self.retry_later(run, error.to_string(), delay.clamp(Duration::from_secs(1), MAX_RETRY_AFTER)).await,
            None => self.fail(run, error.to_string(), error.counts_against_health()).await,
        }
    }

    /// The partner asked to be called later: error state with the message, health untouched,
    /// the request kept, and the job queued again after `delay`.
    async fn retry_later(&self, run: &Run, message: String, delay: Duration) -> Result<SyncResult, SyncError> {
        let message = truncate(format!("{message}; the sync is retried in {} s", delay.as_secs()));
        let released = self
            .release(run, RunTrigger::FollowUp, Request::Unserved { follow_up: false }, |record| {
                record.integration.sync.status = SyncStatus::Error;
                record.integration.sync.error_message = Some(message.clone());
            })
            .await?;
        if released == Some(Released::Written) {
            self.ports.queue.enqueue_after(&SyncJob::catalog(run.id, RunTrigger::FollowUp), delay).await?;
        }
        tracing::warn!(integration_id = %run.id, trigger = ?run.trigger, error = %Untrusted(&message), "partner asked to be called later: sync queued again");
        self.record_run(run, RunReport::failed(message)).await;
        Ok(SyncResult::Queued)
    }

    /// Partner failure: error state, hash unchanged, and (when `probe`) a failed probe.
    async fn fail(&self, run: &Run, message: String, probe: bool) -> Result<SyncResult, SyncError> {
        let message = truncate(message);
        let now = self.ports.clock.now();
        // The failed probe first, keeping the lease: if the integration is DOWN after it, its
        // catalog is deactivated while this run still excludes every other catalog writer.
        let probed = update_record(self.ports.integrations.as_ref(), &run.id, None, |record| {
            if !probe {
                return Change::Keep((false, HealthTransition::Unchanged));
            }
            if record.sync_control.lease.as_ref().is_none_or(|lease| lease.run_id != run.run_id) {
                // The lease expired and someone else took over: their run decides the state.
                return Change::Keep((false, HealthTransition::Unchanged));
            }
            let transition = apply_probe(record, ProbeOutcome::Failure, now);
            Change::Write((record.integration.health.status == HealthStatus::Down, transition))
        })
        .await?;
        let (down, transition) = match probed {
            Some((_, (down, transition))) => {
                metrics::health_transition(transition);
                (down, transition)
            }
            None => (false, HealthTransition::Unchanged),
        };
        if down {
            let reason = format!("the integration became DOWN: {DOWN_AFTER_FAILURES} probes failed in a row, the last: {message}");
            self.deactivate(run.id, now, reason, transition == HealthTransition::BecameDown).await?;
        }
        self.release(run, RunTrigger::FollowUp, Request::Served, |record| {
            record.integration.sync.status = SyncStatus::Error;
            record.integration.sync.error_message = Some(message.clone());
        })
        .await?;
        // The message names what the partner sent (a status, a hostname): outside text.
        tracing::warn!(integration_id = %run.id, trigger = ?run.trigger, error = %Untrusted(&message), "sync failed");
        self.record_run(run, RunReport::failed(message.clone())).await;
        Ok(SyncResult::Failed { message })
    }

    /// The request budget ran out: give the lease back without committing the hash and let a
    /// background run finish the job (its diff starts from what was written so far).
    async fn hand_off(&self, run: &Run) -> Result<SyncResult, SyncError> {
        self.release(run, RunTrigger::Handoff, Request::Unserved { follow_up: true }, |record| {
            record.integration.sync.status = SyncStatus::Idle;
        })
        .await?;
        tracing::info!(integration_id = %run.id, trigger = ?run.trigger, "request budget exhausted: handed off to the queue");
        self.record_run(run, RunReport::queued()).await;
        Ok(SyncResult::Queued)
    }

    /// Releases our lease (if still ours) with `finish` applied, then sends the one job a
    /// request made during the run (or by `finish`) asked for, as `next`. `None` when the
    /// integration is gone; `finish` was applied to what was written only when `Written`.
    async fn release(
        &self,
        run: &Run,
        next: RunTrigger,
        request: Request,
        mut finish: impl FnMut(&mut IntegrationRecord),
    ) -> Result<Option<Released>, SyncError> {
        let now = self.ports.clock.now();
        let updated = update_record(self.ports.integrations.as_ref(), &run.id, None, |record| {
            let control = &mut record.sync_control;
            let Some(lease) = control.lease.take_if(|lease| lease.run_id == run.run_id) else {
                // The lease expired and someone else took over: their run decides the state.
                return Change::Keep(None);
            };
            let follow_up = match request {
                Request::Served => {
                    // Served: clear the request this run covered; a newer one gets a follow-up.
                    if control.requested_at == lease.covers {
                        control.requested_at = None;
                    }
                    control.requested_at.is_some()
                }
                Request::Unserved { follow_up } => {
                    control.requested_at.get_or_insert(now);
                    follow_up
                }
            };
            finish(record);
            Change::Write(Some(follow_up))
        })
        .await?;
        let Some((_, written)) = updated else { return Ok(None) };
        let Some(follow_up) = written else { return Ok(Some(Released::NotOurs)) };
        if follow_up {
            self.ports.queue.enqueue(&[SyncJob::catalog(run.id, next).in_lane(run.lane)]).await?;
        }
        Ok(Some(Released::Written))
    }

    pub(super) async fn record_run(&self, run: &Run, report: RunReport) {
        let rejected = if run.trigger == RunTrigger::AvailabilityPull { Rejected::Availability } else { Rejected::Product };
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
            expires_at: run.started_at.plus_millis(RUN_RETENTION_DAYS * 24 * 3600 * 1000),
        };
        // History is best effort: losing a record must not fail the sync it describes.
        if let Err(error) = self.ports.runs.record_run(&record).await {
            tracing::error!(integration_id = %run.id, error = %error, "could not record the sync run");
        }
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
    pub(super) async fn next(&mut self, store: &dyn IntegrationStore) -> Result<Option<Vec<IntegrationRecord>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = store.list_syncable(RESUME_PAGE_SIZE, self.after.take()).await?;
        self.done = page.next.is_none();
        self.after = page.next;
        Ok(Some(page.items))
    }
}

/// What [`SyncEngine::release`] did, when the integration still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Released {
    /// Our lease was given back, with `finish` applied.
    Written,
    /// The lease had expired and another run holds it: nothing was written.
    NotOurs,
}

/// What a finished run did to the request it covered.
#[derive(Clone, Copy)]
enum Request {
    /// Served (synced, skipped, or a partner failure recorded): cleared.
    Served,
    /// Not served (handed off, or an infrastructure failure): kept, and a follow-up job sent
    /// now if asked (otherwise the job's redelivery or the watchdog retries it).
    Unserved { follow_up: bool },
}

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
        Self { id, run_id: RunId::generate(now.unix_seconds()), trigger, lane: Lane::RealTime, started_at: now, clock: Instant::now() }
    }
}

impl RunReport {
    fn queued() -> Self {
        Self { outcome: RunOutcome::Queued, counts: SyncCounts::default(), hash: None, error: None, rejections: Vec::new() }
    }

    /// A partner failure, with its message.
    pub(super) fn failed(message: String) -> Self {
        Self { outcome: RunOutcome::Error, counts: SyncCounts::default(), hash: None, error: Some(message), rejections: Vec::new() }
    }
}

/// Applies a probe to the health state; DOWN also forces the next successful sync to be full.
fn apply_probe(record: &mut IntegrationRecord, outcome: ProbeOutcome, now: Timestamp) -> HealthTransition {
    let transition = match outcome {
        ProbeOutcome::Success => record.integration.health.record_success(now),
        ProbeOutcome::Failure => record.integration.health.record_failure(now),
    };
    if transition == HealthTransition::BecameDown {
        record.sync_control.force_full_sync = true;
    }
    record.integration.updated_at = now;
    transition
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
