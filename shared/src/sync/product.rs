//! One product's sync, after the partner's `PRODUCT_UPDATE` notification: `GET
//! /products/{id}`, then the full sync's validation, mapping and per-activity diff for that one
//! product, under the same lease. At most one activity is written (two when the product was
//! renamed: the old name is deactivated), and on 404 its activity is deactivated.
//!
//! The catalog hash (`last_sync_hash`) is left alone: it is the hash of the whole catalog, so
//! the next full sync still compares everything. Health is left alone too: a product call says
//! little about the catalog endpoint, and the full sync owns both.
//!
//! It takes the lease, or requests a full sync when it cannot, through [`Leases`], and records
//! its runs in the [`RunLog`].

use std::sync::Arc;

use super::catalog::parse_catalog;
use super::credentials::{Credentials, NO_CREDENTIAL};
use super::engine::{SyncError, SyncResult};
use super::lease::Leases;
use super::runs::{Run, RunLog, RunReport, truncate};
use crate::domain::{HealthStatus, IntegrationId, IntegrationRecord, ProductActivity, RunOutcome, RunTrigger, SyncCounts};
use crate::logging::Untrusted;
use crate::metrics::{self, Record, Write};
use crate::octo::OctoClient;
use crate::ports::{CatalogStore, Clock, Ports};

pub(super) struct ProductSync {
    catalog: Arc<dyn CatalogStore>,
    clock: Arc<dyn Clock>,
    octo: OctoClient,
    credentials: Credentials,
    leases: Leases,
    runs: RunLog,
}

impl ProductSync {
    pub(super) fn new(ports: &Ports, octo: OctoClient, credentials: Credentials, leases: Leases, runs: RunLog) -> Self {
        Self { catalog: ports.catalog.clone(), clock: ports.clock.clone(), octo, credentials, leases, runs }
    }

    /// Syncs one product under the lease. When another sync holds the lease, or the
    /// integration is DOWN (its catalog deactivated), a full sync is requested instead: it
    /// sees the product's change too.
    pub(super) async fn sync_product(&self, id: IntegrationId, product_id: &str) -> Result<SyncResult, SyncError> {
        let now = self.clock.now();
        let run = Run::start(id, RunTrigger::ProductUpdate, now);
        let may_take = |record: &IntegrationRecord| record.integration.is_live() && record.integration.health.status != HealthStatus::Down;
        let Some((record, taken)) = self.leases.take_lease(&run, may_take).await? else { return Ok(SyncResult::NotNeeded) };
        if !record.integration.is_live() {
            return Ok(SyncResult::NotNeeded);
        }
        if !taken {
            tracing::info!(integration_id = %id, "product update while a sync runs (or DOWN): a full sync will cover it");
            self.leases.request_sync(id, RunTrigger::FollowUp, Some(record)).await?;
            return Ok(SyncResult::Queued);
        }
        self.leases.release_after(&run, self.product_locked(&run, &record, product_id)).await
    }

    async fn product_locked(&self, run: &Run, record: &IntegrationRecord, product_id: &str) -> Result<SyncResult, SyncError> {
        let id = run.id;
        let Some(credentials) = self.credentials.of(record).await? else {
            return Ok(self.product_failed(run, product_id, NO_CREDENTIAL.into()).await);
        };
        let body = match self.octo.fetch_product_body(&record.integration.base_url, &credentials, product_id).await {
            Ok(body) => body,
            Err(error) => return Ok(self.product_failed(run, product_id, error.to_string()).await),
        };
        metrics::products_fetched(u64::from(body.is_some()));
        let stored = self.catalog.activity_of_product(&id, product_id).await?;
        let now = self.clock.now();
        let mut counts = SyncCounts::default();

        let Some(body) = body else {
            // The partner no longer has it: deactivate (never delete), as a full sync would.
            if let Some(ProductActivity { internal_name, is_active: true, .. }) = stored {
                self.catalog.set_active(&id, &[internal_name], false, now).await?;
                metrics::catalog_writes(Record::Activity, Write::Deactivate, 1);
                counts.deactivated = 1;
            }
            return Ok(self.product_done(run, product_id, counts, Vec::new()).await);
        };

        // The same parser as a full sync, over a one-product array: the same validation,
        // mapping and per-product content hash.
        let mut array = Vec::with_capacity(body.len() + 2);
        array.push(b'[');
        array.extend_from_slice(&body);
        array.push(b']');
        drop(body);
        let parsed = match parse_catalog(&array, now) {
            Ok(parsed) => parsed,
            Err(_) => return Ok(self.product_failed(run, product_id, "GET /products/{id} did not return an OCTO product".into()).await),
        };
        if let Some(rejection) = parsed.rejections.into_iter().next() {
            counts.rejected = 1;
            return Ok(self.product_done(run, product_id, counts, vec![rejection]).await);
        }
        let Some(activity) = parsed.activities.into_iter().next() else {
            return Ok(self.product_failed(run, product_id, "GET /products/{id} did not return an OCTO product".into()).await);
        };
        if activity.external_sync.external_id != product_id {
            let message = format!("GET /products/{{id}} answered with another product ({:?})", activity.external_sync.external_id);
            return Ok(self.product_failed(run, product_id, message).await);
        }

        counts.synced = 1;
        match stored {
            Some(state)
                if state.internal_name == activity.internal_name && state.content_hash == activity.content_hash && state.is_active =>
            {
                counts.unchanged = 1;
            }
            Some(state) => {
                if state.internal_name != activity.internal_name && state.is_active {
                    // Renamed: the activity is keyed by internalName, so the old one goes.
                    self.catalog.set_active(&id, &[state.internal_name], false, now).await?;
                    metrics::catalog_writes(Record::Activity, Write::Deactivate, 1);
                    counts.deactivated = 1;
                }
                self.catalog.put_activities(&id, std::slice::from_ref(&activity)).await?;
                metrics::catalog_writes(Record::Activity, Write::Upsert, 1);
                counts.updated = 1;
            }
            None => {
                self.catalog.put_activities(&id, std::slice::from_ref(&activity)).await?;
                metrics::catalog_writes(Record::Activity, Write::Upsert, 1);
                counts.created = 1;
            }
        }
        Ok(self.product_done(run, product_id, counts, Vec::new()).await)
    }

    async fn product_done(&self, run: &Run, product_id: &str, counts: SyncCounts, rejections: Vec<crate::domain::Rejection>) -> SyncResult {
        tracing::info!(integration_id = %run.id, product_id = %Untrusted(product_id), ?counts, "product synced");
        let report = RunReport { outcome: RunOutcome::Synced, counts, hash: None, error: None, rejections: rejections.clone() };
        self.runs.record(run, report).await;
        SyncResult::Done { counts, skipped: false, rejections }
    }

    /// The partner failed: recorded on the run (the sync log), not on the integration's state.
    async fn product_failed(&self, run: &Run, product_id: &str, message: String) -> SyncResult {
        let message = truncate(message);
        tracing::warn!(integration_id = %run.id, product_id = %Untrusted(product_id), error = %Untrusted(&message), "product sync failed");
        self.runs.record(run, RunReport::failed(message.clone())).await;
        SyncResult::Failed { message }
    }
}
