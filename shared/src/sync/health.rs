//! Health: probes (a sync's fetch, a connection test) move an integration between HEALTHY,
//! DEGRADED and DOWN ([`apply_probe`]); DOWN deactivates its catalog and forces the next
//! successful sync to be full; recovery from DOWN requests that sync.
//!
//! DOWN's deactivation is a catalog write, so it runs under the lease ([`Leases`]); it is
//! recorded in the run log ([`RunLog`]) as a run of its own. The catalog sync reports its failed
//! probes here ([`Health::failed_probe`]) while it still holds its lease, and applies a
//! success with [`apply_probe`] inside its commit.

use std::sync::Arc;

use crate::domain::{
    DOWN_AFTER_FAILURES, HealthStatus, HealthTransition, IntegrationId, IntegrationRecord,
    RunOutcome, RunTrigger, SyncCounts, Timestamp,
};
use crate::logging::Untrusted;
use crate::metrics::{self, Record, Write};
use crate::optimistic::{Change, update_record};
use crate::ports::{CatalogStore, Clock, IntegrationStore, Ports};

use super::lease::{Leases, Request};
use super::runs::{Run, RunLog, RunReport, truncate};
use super::shared::{ProbeOutcome, SyncError};

#[derive(Clone)]
pub(super) struct Health {
    integrations: Arc<dyn IntegrationStore>,
    catalog: Arc<dyn CatalogStore>,
    clock: Arc<dyn Clock>,
    leases: Leases,
    runs: RunLog,
}

impl Health {
    pub(super) fn new(ports: &Ports, leases: Leases, runs: RunLog) -> Self {
        Self {
            integrations: ports.integrations.clone(),
            catalog: ports.catalog.clone(),
            clock: ports.clock.clone(),
            leases,
            runs,
        }
    }

    /// Records a probe on the health state and acts on the transition: DOWN deactivates the
    /// catalog (and forces the next sync to be full); recovery from DOWN requests that sync.
    pub(super) async fn record_probe(
        &self,
        id: IntegrationId,
        outcome: ProbeOutcome,
    ) -> Result<(), SyncError> {
        let now = self.clock.now();
        let updated = update_record(self.integrations.as_ref(), &id, None, |record| {
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
                self.leases
                    .request_sync(id, RunTrigger::Recovery, Some(record))
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A catalog sync's failed partner call, while `run` still holds the lease: when `probe`,
    /// a failed probe (unless the lease was lost), and if the integration is DOWN after it,
    /// its catalog deactivated. The caller releases the lease afterwards.
    pub(super) async fn failed_probe(
        &self,
        run: &Run,
        probe: bool,
        message: &str,
        now: Timestamp,
    ) -> Result<(), SyncError> {
        // The failed probe first, keeping the lease: if the integration is DOWN after it, its
        // catalog is deactivated while this run still excludes every other catalog writer.
        let probed = update_record(self.integrations.as_ref(), &run.id, None, |record| {
            if !probe {
                return Change::Keep((false, HealthTransition::Unchanged));
            }
            if record
                .sync_control
                .lease
                .as_ref()
                .is_none_or(|lease| lease.run_id != run.run_id)
            {
                // The lease expired and someone else took over: their run decides the state.
                return Change::Keep((false, HealthTransition::Unchanged));
            }
            let transition = apply_probe(record, ProbeOutcome::Failure, now);
            Change::Write((
                record.integration.health.status == HealthStatus::Down,
                transition,
            ))
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
            let reason = format!(
                "the integration became DOWN: {DOWN_AFTER_FAILURES} probes failed in a row, the last: {message}"
            );
            self.deactivate(
                run.id,
                now,
                reason,
                transition == HealthTransition::BecameDown,
            )
            .await?;
        }
        Ok(())
    }

    /// DOWN deactivates the catalog. That is a catalog write like a sync's, so it takes the
    /// lease: a sync committing meanwhile would otherwise be undone after its hash was
    /// recorded, and every later sync would skip the unchanged catalog and leave it inactive.
    /// If a sync holds the lease, that sync decides: success brings the integration back, a
    /// failure deactivates under its own lease (see `CatalogSync::fail`).
    async fn deactivate_when_down(&self, id: IntegrationId) -> Result<(), SyncError> {
        let now = self.clock.now();
        let run = Run::start(id, RunTrigger::FollowUp, now);
        let taken = self
            .leases
            .take_lease(&run, |record| {
                record.integration.health.status == HealthStatus::Down
            })
            .await?;
        if !matches!(taken, Some((_, true))) {
            return Ok(());
        }
        let reason = format!(
            "the integration became DOWN: {DOWN_AFTER_FAILURES} probes (syncs or connection tests) failed in a row"
        );
        let deactivated = self.deactivate(id, now, reason, true).await;
        // Give the lease back either way; a request made meanwhile gets its follow-up now.
        self.leases
            .release(&run, RunTrigger::FollowUp, Request::Served, |_| {})
            .await?;
        deactivated
    }

    /// Deactivates the catalog of a DOWN integration; the caller holds the lease. When it just
    /// became DOWN (`became_down`), or anything was still active, this is recorded as a run of
    /// its own (trigger `health_down`, outcome `deactivated`) with `reason` and the count, so
    /// the sync log says when and why the catalog went inactive; a failed probe of an
    /// integration long DOWN, finding nothing active, adds none.
    async fn deactivate(
        &self,
        id: IntegrationId,
        now: Timestamp,
        reason: String,
        became_down: bool,
    ) -> Result<(), SyncError> {
        let run = Run::start(id, RunTrigger::HealthDown, now);
        let deactivated = self.catalog.deactivate_all(&id, now).await?;
        metrics::catalog_writes(Record::Activity, Write::Deactivate, deactivated);
        if !became_down && deactivated == 0 {
            return Ok(());
        }
        metrics::down_deactivation();
        // The reason can name what a partner sent (a status, a hostname): outside text.
        tracing::warn!(integration_id = %id, deactivated, reason = %Untrusted(&reason), "integration is DOWN: activities deactivated, scheduled syncs only probe");
        let counts = SyncCounts {
            deactivated,
            ..SyncCounts::default()
        };
        let report = RunReport {
            outcome: RunOutcome::Deactivated,
            counts,
            hash: None,
            error: Some(truncate(reason)),
            rejections: Vec::new(),
        };
        self.runs.record(&run, report).await;
        Ok(())
    }
}

/// Applies a probe to the health state; DOWN also forces the next successful sync to be full.
pub(super) fn apply_probe(
    record: &mut IntegrationRecord,
    outcome: ProbeOutcome,
    now: Timestamp,
) -> HealthTransition {
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
