//! The lease and request protocol: who may sync an integration now, and whether a sync is
//! wanted. Every other unit that writes the catalog or calls the partner goes through it.
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
//! messages change nothing.
//!
//! [`Leases::start`] takes the lease for a catalog sync (it serves a request);
//! [`Leases::take_lease`] for work that serves none (a product sync, an availability pull,
//! DOWN's deactivation); [`Leases::release`] gives either back and sends the follow-up a
//! request made meanwhile asked for. It calls no other unit.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{
    HealthStatus, IntegrationId, IntegrationRecord, Lease, RunTrigger, SyncStatus, Timestamp,
};
use crate::optimistic::{Change, update_record};
use crate::ports::{Clock, IntegrationStore, Ports, SyncJob, SyncQueue};

use super::runs::Run;
use super::shared::{SyncConfig, SyncError};

/// The lease and request protocol, over the integration store and the queue.
#[derive(Clone)]
pub(super) struct Leases {
    integrations: Arc<dyn IntegrationStore>,
    queue: Arc<dyn SyncQueue>,
    clock: Arc<dyn Clock>,
    /// How long a sync may hold the lease before another may take over (`SyncConfig::lease`).
    lease: Duration,
    /// How long a fallback request waits before its sync starts (`SyncConfig::fallback_delay`).
    fallback_delay: Duration,
}

/// What [`Leases::start`] found.
pub(super) enum Start {
    NotNeeded,
    Busy {
        newly_requested: bool,
        lease_expires_at: Timestamp,
    },
    Acquired {
        record: Box<IntegrationRecord>,
        force: bool,
    },
}

/// What [`Leases::release`] did, when the integration still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Released {
    /// Our lease was given back, with `finish` applied.
    Written,
    /// The lease had expired and another run holds it: nothing was written.
    NotOurs,
}

/// When a pull request's job is sent (see [`Leases::mark_pulls_requested`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PullJob {
    /// A job is pending already: this request rides on it.
    Pending,
    Now,
    /// A run holds the lease: its release sends the job; this one, delayed to just after the
    /// lease's expiry, covers a holder that dies.
    After(Duration),
}

/// What a finished run did to the request it covered.
#[derive(Clone, Copy)]
pub(super) enum Request {
    /// Served (synced, skipped, or a partner failure recorded): cleared.
    Served,
    /// Not served (handed off, or an infrastructure failure): kept, and a follow-up job sent
    /// now if asked (otherwise the job's redelivery or the watchdog retries it).
    Unserved { follow_up: bool },
}

impl Leases {
    pub(super) fn new(ports: &Ports, config: &SyncConfig) -> Self {
        Self {
            integrations: ports.integrations.clone(),
            queue: ports.queue.clone(),
            clock: ports.clock.clone(),
            lease: config.lease,
            fallback_delay: config.fallback_delay,
        }
    }

    /// Asks for a background sync. Coalesced: if one is already requested (and not stale),
    /// nothing is written or sent. Returns whether a job was sent.
    pub(super) async fn request_sync(
        &self,
        id: IntegrationId,
        trigger: RunTrigger,
        known: Option<IntegrationRecord>,
    ) -> Result<bool, SyncError> {
        let now = self.clock.now();
        let Some((requested_at, lease_expires_at)) = self.mark_requested(id, known, now).await?
        else {
            return Ok(false);
        };
        let job = SyncJob::catalog(id, trigger);
        let sent = match lease_expires_at {
            // The holder enqueues a follow-up when it finishes; this covers a holder that dies.
            Some(expires_at) => {
                self.queue
                    .enqueue_after(&job, self.delay_until(expires_at, now))
                    .await
            }
            None if trigger == RunTrigger::Fallback => {
                self.queue.enqueue_after(&job, self.fallback_delay).await
            }
            None => self.queue.enqueue(&[job]).await,
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
            let withdrawn = update_record(self.integrations.as_ref(), id, None, |record| {
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

    /// Sets `requested_at` unless a fresh request no running sync serves exists. `None` when
    /// coalesced; otherwise the request's time and, if a sync is running, when its lease expires.
    async fn mark_requested(
        &self,
        id: IntegrationId,
        known: Option<IntegrationRecord>,
        now: Timestamp,
    ) -> Result<Option<(Timestamp, Option<Timestamp>)>, SyncError> {
        let stale_after = self.lease.as_millis() as i64;
        let updated = update_record(self.integrations.as_ref(), &id, known, |record| {
            let control = &mut record.sync_control;
            // A request the running sync already serves does not cover this one, nor does one
            // a fan-out spread to later in its window.
            if control
                .pending_request(now)
                .is_some_and(|at| at.plus_millis(stale_after) > now)
                && !control.deferred(now)
            {
                return Change::Keep(None);
            }
            let at = control.request(now);
            Change::Write(Some((at, control.live_lease(now).map(|l| l.expires_at))))
        })
        .await?;
        Ok(updated.and_then(|(_, newly)| newly))
    }

    /// Takes the lease for a catalog sync, or records that a sync is wanted while another one
    /// runs.
    pub(super) async fn start(
        &self,
        run: &Run,
        known: Option<IntegrationRecord>,
        only_if_requested: bool,
    ) -> Result<Start, SyncError> {
        let now = run.started_at;
        let lease_for = self.lease.as_millis() as i64;
        let updated = update_record(self.integrations.as_ref(), &run.id, known, |record| {
            let control = &mut record.sync_control;
            if only_if_requested && control.requested_at.is_none() {
                return Change::Keep(Start::NotNeeded);
            }
            if let Some(lease) = control.live_lease(now) {
                let lease_expires_at = lease.expires_at;
                if control.pending_request(now).is_none() {
                    control.request(now);
                    return Change::Write(Start::Busy {
                        newly_requested: true,
                        lease_expires_at,
                    });
                }
                return Change::Keep(Start::Busy {
                    newly_requested: false,
                    lease_expires_at,
                });
            }
            if !record.integration.is_live() {
                // Unapproved or paused since the request: drop it.
                control.requested_at = None;
                return Change::Write(Start::NotNeeded);
            }
            // The run serves the pending request (a webhook run makes its own), and clears it
            // only when it commits: if it dies, the request is still there to be retried.
            let covers = *control.requested_at.get_or_insert(now);
            control.lease = Some(Lease {
                run_id: run.run_id,
                expires_at: now.plus_millis(lease_for),
                covers: Some(covers),
            });
            record.integration.sync.status = SyncStatus::Syncing;
            // After DOWN the catalog was deactivated: the next successful sync must be full.
            let force =
                control.force_full_sync || record.integration.health.status == HealthStatus::Down;
            Change::Write(Start::Acquired {
                record: Box::new(record.clone()),
                force,
            })
        })
        .await?;
        Ok(match updated {
            None => Start::NotNeeded,
            Some((record, Start::Acquired { force, .. })) => Start::Acquired {
                record: Box::new(record),
                force,
            },
            Some((_, other)) => other,
        })
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
        let lease_for = self.lease.as_millis() as i64;
        Ok(
            update_record(self.integrations.as_ref(), &run.id, None, |record| {
                if !may_take(record) || record.sync_control.live_lease(now).is_some() {
                    return Change::Keep(false);
                }
                record.sync_control.lease = Some(Lease {
                    run_id: run.run_id,
                    expires_at: now.plus_millis(lease_for),
                    covers: None,
                });
                Change::Write(true)
            })
            .await?,
        )
    }

    /// Releases our lease (if still ours) with `finish` applied, then sends the one job a
    /// request made during the run (or by `finish`) asked for, as `next`. `None` when the
    /// integration is gone; `finish` was applied to what was written only when `Written`.
    pub(super) async fn release(
        &self,
        run: &Run,
        next: RunTrigger,
        request: Request,
        mut finish: impl FnMut(&mut IntegrationRecord),
    ) -> Result<Option<Released>, SyncError> {
        let now = self.clock.now();
        let updated = update_record(self.integrations.as_ref(), &run.id, None, |record| {
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
            // Pulls asked for while the lease was held (or left by a pull run that could not
            // serve them all) get their job now: their requests sent none while it was held.
            let pulls_waiting =
                record.sync_control.pulls_requested_at.is_some() && record.integration.is_live();
            Change::Write(Some((follow_up, pulls_waiting)))
        })
        .await?;
        let Some((_, written)) = updated else {
            return Ok(None);
        };
        let Some((follow_up, pulls_waiting)) = written else {
            return Ok(Some(Released::NotOurs));
        };
        let mut jobs = Vec::new();
        if follow_up {
            jobs.push(SyncJob::catalog(run.id, next).in_lane(run.lane));
        }
        if pulls_waiting {
            jobs.push(SyncJob::pending_pulls(run.id));
        }
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs).await?;
        }
        Ok(Some(Released::Written))
    }

    /// Notes that availability pulls are wanted (the pulls themselves are already stored):
    /// moves `pulls_requested_at` forward, so a pull run under way sees the request when it
    /// releases. Says when to send a job: now when none is pending; at the lease's expiry when
    /// a run holds it (its release sends the job; this one covers a holder that dies); never
    /// when a job is already pending and fresh, so however many requests arrive, one
    /// integration has at most a job or two in the queue. `None` when the integration is gone.
    pub(super) async fn mark_pulls_requested(
        &self,
        id: IntegrationId,
        now: Timestamp,
    ) -> Result<Option<(Timestamp, PullJob)>, SyncError> {
        // A request older than a lease and a minute that no run served lost its job.
        let stale_after = self.lease.as_millis() as i64 + 60_000;
        let updated = update_record(self.integrations.as_ref(), &id, None, |record| {
            let control = &mut record.sync_control;
            let pending = control.pulls_requested_at;
            // Strictly later than the last request, so a run that noted it sees this one.
            let at = pending.map_or(now, |pending| now.max(pending.plus_millis(1)));
            control.pulls_requested_at = Some(at);
            let fresh = pending.is_some_and(|pending| pending.plus_millis(stale_after) > now);
            let job = match control.live_lease(now) {
                _ if fresh => PullJob::Pending,
                Some(lease) => PullJob::After(self.delay_until(lease.expires_at, now)),
                None => PullJob::Now,
            };
            Change::Write((at, job))
        })
        .await?;
        Ok(updated.map(|(_, marked)| marked))
    }

    /// Clears `pulls_requested_at` where it is still the request made at `at`: its job was
    /// not sent, so it must not coalesce the caller's retry away. Best effort, as
    /// [`withdraw_requests`](Self::withdraw_requests).
    pub(super) async fn withdraw_pulls(&self, id: IntegrationId, at: Timestamp) {
        let withdrawn = update_record(self.integrations.as_ref(), &id, None, |record| {
            if record.sync_control.pulls_requested_at != Some(at) {
                return Change::Keep(());
            }
            record.sync_control.pulls_requested_at = None;
            Change::Write(())
        })
        .await;
        if let Err(error) = withdrawn {
            tracing::error!(integration_id = %id, error = %error, "could not withdraw a pull request whose job was not sent; it goes stale after one lease");
        }
    }

    /// How long a job waits to run just after a lease expiring at `at` (a watchdog).
    pub(super) fn delay_until(&self, at: Timestamp, now: Timestamp) -> Duration {
        let millis = (at.unix_millis() - now.unix_millis()).max(0) as u64;
        Duration::from_millis(millis) + Duration::from_secs(1)
    }
}
