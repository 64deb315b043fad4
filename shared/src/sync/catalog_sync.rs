//! The catalog sync, one for every trigger (webhook, nightly, fallback, admin, follow-up,
//! recovery, hand-off): lease -> stream the catalog, parsing, hashing, diffing and writing it in
//! batches as it arrives -> deactivate what it lacked -> commit.
//!
//! Catalog writes are per activity and idempotent, and the catalog hash is committed last, so a
//! run cut short (crash, request budget, a worker's deadline) leaves a catalog that the next
//! run's diff completes: it writes only what is still missing.
//!
//! Memory does not grow with the catalog: one product at a time (at most
//! `SyncConfig::max_product_bytes`), a batch of writes, and per activity its name and content
//! hash (the stored states, and the names the parser has seen).
//!
//! It takes and gives back the lease through [`Leases`], reports failed probes to [`Health`]
//! (which deactivates a DOWN catalog under this run's lease) and records its runs in the
//! [`RunLog`]. [`CatalogSync::read_catalog`] reads a catalog the same way, writing nothing
//! (the connection test).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::{
    Activity, ActivityState, BaseUrl, CatalogLimits, CatalogUsage, ContentHash, HealthTransition,
    IntegrationId, IntegrationRecord, MAX_REPORTED_REJECTIONS, Rejection, RunOutcome, RunTrigger,
    SyncCounts, SyncStatus,
};
use crate::logging::Untrusted;
use crate::metrics::{self, Record, Write};
use crate::octo::{OctoClient, OctoCredentials, OctoError};
use crate::ports::{CatalogStore, Clock, Lane, Ports, SyncJob, SyncQueue};

use super::catalog::{CatalogItem, CatalogParser};
use super::credentials::{Credentials, NO_CREDENTIAL};
use super::diff::{Incoming, StreamingDiff};
use super::health::{Health, apply_probe};
use super::lease::{Leases, Released, Request, Start};
use super::runs::{Run, RunLog, RunReport, truncate};
use super::shared::{ProbeOutcome, SyncConfig, SyncError, SyncResult};

/// A 429 on `GET /products` without `Retry-After` is retried after this long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest a retry after `Retry-After` waits (SQS delays a message 15 minutes at most).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// A catalog read by [`SyncEngine::read_catalog`](super::SyncEngine::read_catalog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogRead {
    pub products: u64,
    /// False when the deadline came first (everything read until then was fine).
    pub complete: bool,
}

/// Why [`SyncEngine::read_catalog`](super::SyncEngine::read_catalog) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogFailure {
    pub message: String,
    /// False for a catalog too large or still arriving at the timeout, a 429 and a 503 with
    /// `Retry-After`: the endpoint works, so they never lead to DOWN.
    pub counts_against_health: bool,
}

pub(super) struct CatalogSync {
    catalog: Arc<dyn CatalogStore>,
    queue: Arc<dyn SyncQueue>,
    clock: Arc<dyn Clock>,
    octo: OctoClient,
    credentials: Credentials,
    leases: Leases,
    health: Health,
    runs: RunLog,
    /// `SyncConfig::lease`: a webhook run's watchdog waits a little longer.
    lease: Duration,
    /// Activities written per store call; the budget is checked between batches.
    write_batch: usize,
    /// Largest single product of `GET /products` read, as sent.
    max_product_bytes: usize,
    /// What one integration may store, and when deactivated activities go.
    limits: CatalogLimits,
}

impl CatalogSync {
    pub(super) fn new(
        ports: &Ports,
        octo: OctoClient,
        config: &SyncConfig,
        credentials: Credentials,
        leases: Leases,
        health: Health,
        runs: RunLog,
    ) -> Self {
        Self {
            catalog: ports.catalog.clone(),
            queue: ports.queue.clone(),
            clock: ports.clock.clone(),
            octo,
            credentials,
            leases,
            health,
            runs,
            lease: config.lease,
            write_batch: config.write_batch,
            max_product_bytes: config.max_product_bytes,
            limits: config.catalog_limits,
        }
    }

    /// A full sync. `lane` is the lane of the job that asked for it: the jobs it leaves (a
    /// watchdog, a follow-up, a hand-off) stay in it, so a bulk run's never crowd real-time work.
    pub(super) async fn run(
        &self,
        id: IntegrationId,
        trigger: RunTrigger,
        lane: Lane,
        known: Option<IntegrationRecord>,
        only_if_requested: bool,
        deadline: Option<Instant>,
    ) -> Result<SyncResult, SyncError> {
        let started_at = self.clock.now();
        let run = Run {
            lane,
            ..Run::start(id, trigger, started_at)
        };

        let (record, force) = match self.leases.start(&run, known, only_if_requested).await? {
            Start::NotNeeded => return Ok(SyncResult::NotNeeded),
            Start::Busy {
                newly_requested,
                lease_expires_at,
            } => {
                // The holder sends a follow-up when it finishes; the watchdog covers a holder
                // that died. A job meeting a held lease (a redelivery, perhaps of the holder's
                // own job) also leaves one, so its work is not consumed while the lease holds.
                if newly_requested || only_if_requested {
                    let watchdog = SyncJob::catalog(id, RunTrigger::FollowUp).in_lane(lane);
                    self.queue
                        .enqueue_after(
                            &watchdog,
                            self.leases.delay_until(lease_expires_at, started_at),
                        )
                        .await?;
                }
                tracing::info!(integration_id = %id, trigger = ?trigger, "sync already running: a follow-up will run after it");
                self.runs.record(&run, RunReport::queued()).await;
                return Ok(SyncResult::Queued);
            }
            Start::Acquired { record, force } => (*record, force),
        };
        if !only_if_requested {
            // A webhook-triggered run has no queue message that would be delivered again if
            // this process dies: a watchdog at the lease's expiry finishes its work then (and
            // finds nothing to do when the run committed).
            let watchdog = SyncJob::catalog(id, RunTrigger::FollowUp);
            if let Err(error) = self
                .queue
                .enqueue_after(&watchdog, self.lease + Duration::from_secs(1))
                .await
            {
                tracing::warn!(integration_id = %id, error = %error, "could not queue the watchdog of a webhook sync");
            }
        }

        let result = self.sync_locked(&run, &record, force, deadline).await;
        if result.is_err() {
            // Infrastructure failure mid-run: give the lease back so the retry need not wait,
            // and keep the request for it (the job's redelivery, or the watchdog).
            if let Err(error) = self
                .leases
                .release(
                    &run,
                    RunTrigger::FollowUp,
                    Request::Unserved { follow_up: false },
                    |_| {},
                )
                .await
            {
                tracing::warn!(integration_id = %id, error = %error, "could not give the lease back; it expires by itself");
            }
        }
        result
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
        let Some(credentials) = self.credentials.of(record).await? else {
            return self.fail(run, NO_CREDENTIAL.into(), true).await;
        };
        let mut body = match self
            .octo
            .open_products(&record.integration.base_url, &credentials)
            .await
        {
            Ok(body) => body,
            Err(error) => return self.partner_failed(run, &error).await,
        };
        // The one per-activity state the diff needs (name -> content hash, size), read once
        // the partner answered (a failing partner, a DOWN one's probe, costs no listing).
        let states = self
            .remove_expired(&id, self.catalog.activity_states(&id).await?)
            .await?;
        let mut diff = StreamingDiff::new(states, self.limits);
        let mut parser = CatalogParser::new(self.clock.now(), self.max_product_bytes);
        let batch_size = self.write_batch.max(1);
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
                    CatalogItem::Accepted {
                        activity,
                        index,
                        bytes,
                    } => match diff.incoming(activity, bytes) {
                        Incoming::Write(activity) => batch.push(activity),
                        Incoming::Unchanged => {}
                        Incoming::Refused { activity, reason } => {
                            rejected += 1;
                            if rejections.len() < MAX_REPORTED_REJECTIONS {
                                rejections.push(Rejection {
                                    index,
                                    product_id: Some(activity.external_sync.external_id),
                                    internal_name: Some(activity.internal_name),
                                    reason,
                                });
                            }
                        }
                    },
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
        let (to_deactivate, mut counts, usage) = diff.finish();
        counts.rejected = rejected;

        // Skip by hash: the same catalog as last time, and the per-activity diff agreed.
        if !force
            && written == 0
            && to_deactivate.is_empty()
            && record.integration.sync.last_sync_hash == Some(hash)
        {
            self.commit(run, None, usage).await?;
            let counts = SyncCounts {
                rejected,
                ..SyncCounts::default()
            };
            let report = RunReport {
                outcome: RunOutcome::Skipped,
                counts,
                hash: Some(hash),
                error: None,
                rejections,
            };
            self.runs.record(run, report).await;
            tracing::info!(integration_id = %id, trigger = ?run.trigger, "catalog unchanged: skipped");
            return Ok(SyncResult::Done {
                counts,
                skipped: true,
                rejections: Vec::new(),
            });
        }

        if !to_deactivate.is_empty() {
            self.catalog
                .set_active(&id, &to_deactivate, false, self.clock.now())
                .await?;
            metrics::catalog_writes(
                Record::Activity,
                Write::Deactivate,
                to_deactivate.len() as u64,
            );
        }

        let committed = self.commit(run, Some(hash), usage).await?;
        if !committed {
            // Deleted while syncing: what this run wrote must not stay active.
            let deactivated = self.catalog.deactivate_all(&id, self.clock.now()).await?;
            metrics::catalog_writes(Record::Activity, Write::Deactivate, deactivated);
        }
        tracing::info!(integration_id = %id, trigger = ?run.trigger, ?counts, "catalog synced");
        let report = RunReport {
            outcome: RunOutcome::Synced,
            counts,
            hash: Some(hash),
            error: None,
            rejections: rejections.clone(),
        };
        self.runs.record(run, report).await;
        Ok(SyncResult::Done {
            counts,
            skipped: false,
            rejections,
        })
    }

    /// Writes a batch of created, changed or returning activities and empties it.
    async fn write_activities(
        &self,
        id: &IntegrationId,
        batch: &mut Vec<Activity>,
    ) -> Result<u64, SyncError> {
        self.catalog.put_activities(id, batch).await?;
        let count = batch.len() as u64;
        metrics::catalog_writes(Record::Activity, Write::Upsert, count);
        batch.clear();
        Ok(count)
    }

    /// Reads a partner's whole catalog as a sync would, writing nothing (the connection test):
    /// the number of products, or why it failed and whether that counts against its health.
    /// A catalog still arriving at `deadline` with nothing wrong so far passes: the sync, not
    /// the caller's request, reads the rest.
    pub(super) async fn read_catalog(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        deadline: Instant,
    ) -> Result<CatalogRead, CatalogFailure> {
        let partner = |error: OctoError| CatalogFailure {
            counts_against_health: error.counts_against_health(),
            message: error.to_string(),
        };
        let not_catalog = |error: super::CatalogError| CatalogFailure {
            counts_against_health: true,
            message: error.to_string(),
        };
        let mut body = self
            .octo
            .open_products(base_url, credentials)
            .await
            .map_err(partner)?;
        let mut parser = CatalogParser::new(self.clock.now(), self.max_product_bytes);
        let mut items = Vec::new();
        while let Some(chunk) = body.chunk().await.map_err(partner)? {
            parser.feed(&chunk, &mut items).map_err(not_catalog)?;
            items.clear();
            // Checked after a piece was read: what arrived by then was read and found fine.
            if Instant::now() >= deadline {
                return Ok(CatalogRead {
                    products: parser.products() as u64,
                    complete: false,
                });
            }
        }
        let products = parser.products() as u64;
        parser.finish().map_err(not_catalog)?;
        Ok(CatalogRead {
            products,
            complete: true,
        })
    }

    /// Removes the deactivated activities past their retention (under the lease, before the
    /// diff, so the cap counts what is left) and returns the states of the others.
    async fn remove_expired(
        &self,
        id: &IntegrationId,
        states: Vec<ActivityState>,
    ) -> Result<Vec<ActivityState>, SyncError> {
        let now = self.clock.now();
        let (expired, kept): (Vec<_>, Vec<_>) = states
            .into_iter()
            .partition(|state| self.limits.expired(state, now));
        if !expired.is_empty() {
            let names: Vec<String> = expired
                .into_iter()
                .map(|state| state.internal_name)
                .collect();
            for chunk in names.chunks(self.write_batch.max(1)) {
                self.catalog.delete_activities(id, chunk).await?;
            }
            metrics::catalog_writes(Record::Activity, Write::Remove, names.len() as u64);
            tracing::info!(integration_id = %id, removed = names.len(), "deactivated activities past their retention removed");
        }
        Ok(kept)
    }

    /// Success: release the lease, record the hash (when written), what the catalog stores
    /// and a healthy probe. Returns false when the integration no longer exists.
    async fn commit(
        &self,
        run: &Run,
        hash: Option<ContentHash>,
        usage: CatalogUsage,
    ) -> Result<bool, SyncError> {
        let now = self.clock.now();
        // The transition of the attempt that was written (a lost race applies it again).
        let mut transition = HealthTransition::Unchanged;
        let released = self
            .leases
            .release(run, RunTrigger::FollowUp, Request::Served, |record| {
                let sync = &mut record.integration.sync;
                sync.status = SyncStatus::Idle;
                sync.error_message = None;
                if let Some(hash) = hash {
                    sync.last_sync_hash = Some(hash);
                    sync.last_sync_at = Some(now);
                }
                record.sync_control.force_full_sync = false;
                record.sync_control.catalog_usage = Some(usage);
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
            Some(delay) => {
                self.retry_later(
                    run,
                    error.to_string(),
                    delay.clamp(Duration::from_secs(1), MAX_RETRY_AFTER),
                )
                .await
            }
            None => {
                self.fail(run, error.to_string(), error.counts_against_health())
                    .await
            }
        }
    }

    /// The partner asked to be called later: error state with the message, health untouched,
    /// the request kept, and the job queued again after `delay`.
    async fn retry_later(
        &self,
        run: &Run,
        message: String,
        delay: Duration,
    ) -> Result<SyncResult, SyncError> {
        let message = truncate(format!(
            "{message}; the sync is retried in {} s",
            delay.as_secs()
        ));
        let released = self
            .leases
            .release(
                run,
                RunTrigger::FollowUp,
                Request::Unserved { follow_up: false },
                |record| {
                    record.integration.sync.status = SyncStatus::Error;
                    record.integration.sync.error_message = Some(message.clone());
                },
            )
            .await?;
        if released == Some(Released::Written) {
            self.queue
                .enqueue_after(&SyncJob::catalog(run.id, RunTrigger::FollowUp), delay)
                .await?;
        }
        tracing::warn!(integration_id = %run.id, trigger = ?run.trigger, error = %Untrusted(&message), "partner asked to be called later: sync queued again");
        self.runs.record(run, RunReport::failed(message)).await;
        Ok(SyncResult::Queued)
    }

    /// Partner failure: error state, hash unchanged, and (when `probe`) a failed probe, which
    /// [`Health`] records while this run still holds the lease (and deactivates a DOWN catalog
    /// under it) before the lease is given back.
    async fn fail(&self, run: &Run, message: String, probe: bool) -> Result<SyncResult, SyncError> {
        let message = truncate(message);
        let now = self.clock.now();
        self.health.failed_probe(run, probe, &message, now).await?;
        self.leases
            .release(run, RunTrigger::FollowUp, Request::Served, |record| {
                record.integration.sync.status = SyncStatus::Error;
                record.integration.sync.error_message = Some(message.clone());
            })
            .await?;
        // The message names what the partner sent (a status, a hostname): outside text.
        tracing::warn!(integration_id = %run.id, trigger = ?run.trigger, error = %Untrusted(&message), "sync failed");
        self.runs
            .record(run, RunReport::failed(message.clone()))
            .await;
        Ok(SyncResult::Failed { message })
    }

    /// The request budget ran out: give the lease back without committing the hash and let a
    /// background run finish the job (its diff starts from what was written so far).
    async fn hand_off(&self, run: &Run) -> Result<SyncResult, SyncError> {
        self.leases
            .release(
                run,
                RunTrigger::Handoff,
                Request::Unserved { follow_up: true },
                |record| {
                    record.integration.sync.status = SyncStatus::Idle;
                },
            )
            .await?;
        tracing::info!(integration_id = %run.id, trigger = ?run.trigger, "request budget exhausted: handed off to the queue");
        self.runs.record(run, RunReport::queued()).await;
        Ok(SyncResult::Queued)
    }
}
