//! One product's sync, after the partner's `PRODUCT_UPDATE` notification: `GET
//! /products/{id}`, then the full sync's validation, mapping and per-activity diff for that one
//! product, under the same lease. At most one activity is written (two when the product was
//! renamed: the old name is deactivated), and on 404 its activity is deactivated.
//!
//! The catalog hash (`last_sync_hash`) is left alone: it is the hash of the whole catalog, so
//! the next full sync still compares everything. Health is left alone too: a product call says
//! little about the catalog endpoint, and the full sync owns both.
//!
//! A new activity (or a renamed one) counts against the integration's cap like a full sync's,
//! checked against the usage the last full sync recorded and kept in step here: no listing.
//!
//! It takes the lease, or requests a full sync when it cannot, through [`Leases`], and records
//! its runs in the [`RunLog`].

use std::sync::Arc;

use super::catalog::parse_catalog;
use super::credentials::{Credentials, NO_CREDENTIAL};
use super::lease::{Leases, Request};
use super::runs::{Run, RunLog, RunReport, truncate};
use super::shared::{SyncError, SyncResult};
use crate::domain::{
    CatalogLimits, CatalogUsage, HealthStatus, IntegrationId, IntegrationRecord, ProductActivity,
    Rejection, RunOutcome, RunTrigger, SyncCounts,
};
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
    limits: CatalogLimits,
}

/// The failure of a `GET /products/{id}` answer that is not one OCTO product.
const NOT_A_PRODUCT: &str = "GET /products/{id} did not return an OCTO product";

/// What a product sync did: its result, and what the catalog stores after it when it wrote.
type ProductOutcome = (SyncResult, Option<CatalogUsage>);

impl ProductSync {
    pub(super) fn new(
        ports: &Ports,
        octo: OctoClient,
        credentials: Credentials,
        leases: Leases,
        runs: RunLog,
        limits: CatalogLimits,
    ) -> Self {
        Self {
            catalog: ports.catalog.clone(),
            clock: ports.clock.clone(),
            octo,
            credentials,
            leases,
            runs,
            limits,
        }
    }

    /// Syncs one product under the lease. When another sync holds the lease, or the
    /// integration is DOWN (its catalog deactivated), a full sync is requested instead: it
    /// sees the product's change too.
    pub(super) async fn sync_product(
        &self,
        id: IntegrationId,
        product_id: &str,
    ) -> Result<SyncResult, SyncError> {
        let now = self.clock.now();
        let run = Run::start(id, RunTrigger::ProductUpdate, now);
        let may_take = |record: &IntegrationRecord| {
            record.integration.is_live() && record.integration.health.status != HealthStatus::Down
        };
        let Some((record, taken)) = self.leases.take_lease(&run, may_take).await? else {
            return Ok(SyncResult::NotNeeded);
        };
        if !record.integration.is_live() {
            return Ok(SyncResult::NotNeeded);
        }
        if !taken {
            tracing::info!(integration_id = %id, "product update while a sync runs (or DOWN): a full sync will cover it");
            self.leases
                .request_sync(id, RunTrigger::FollowUp, Some(record))
                .await?;
            return Ok(SyncResult::Queued);
        }
        let outcome = self.product_locked(&run, &record, product_id).await;
        let usage = outcome.as_ref().ok().and_then(|(_, usage)| *usage);
        let released = self
            .leases
            .release(&run, RunTrigger::FollowUp, Request::Served, |record| {
                if usage.is_some() {
                    record.sync_control.catalog_usage = usage;
                }
            })
            .await;
        let (result, _) = outcome?;
        released?;
        Ok(result)
    }

    async fn product_locked(
        &self,
        run: &Run,
        record: &IntegrationRecord,
        product_id: &str,
    ) -> Result<ProductOutcome, SyncError> {
        let id = run.id;
        let Some(credentials) = self.credentials.of(record).await? else {
            return Ok((
                self.product_failed(run, product_id, NO_CREDENTIAL.into())
                    .await,
                None,
            ));
        };
        let body = match self
            .octo
            .fetch_product_body(&record.integration.base_url, &credentials, product_id)
            .await
        {
            Ok(body) => body,
            Err(error) => {
                return Ok((
                    self.product_failed(run, product_id, error.to_string())
                        .await,
                    None,
                ));
            }
        };
        metrics::products_fetched(u64::from(body.is_some()));
        let stored = self.catalog.activity_of_product(&id, product_id).await?;
        let now = self.clock.now();
        let mut counts = SyncCounts::default();

        let Some(body) = body else {
            // The partner no longer has it: deactivate (never delete), as a full sync would.
            if let Some(ProductActivity {
                internal_name,
                is_active: true,
                ..
            }) = stored
            {
                self.catalog
                    .set_active(&id, &[internal_name], false, now)
                    .await?;
                metrics::catalog_writes(Record::Activity, Write::Deactivate, 1);
                counts.deactivated = 1;
            }
            return Ok((
                self.product_done(run, product_id, counts, Vec::new()).await,
                None,
            ));
        };

        // The same parser as a full sync, over a one-product array: the same validation,
        // mapping and per-product content hash.
        let mut array = Vec::with_capacity(body.len() + 2);
        array.push(b'[');
        array.extend_from_slice(&body);
        array.push(b']');
        drop(body);
        let not_a_product = || self.product_failed(run, product_id, NOT_A_PRODUCT.into());
        let parsed = match parse_catalog(&array, now) {
            Ok(parsed) => parsed,
            Err(_) => return Ok((not_a_product().await, None)),
        };
        if let Some(rejection) = parsed.rejections.into_iter().next() {
            counts.rejected = 1;
            return Ok((
                self.product_done(run, product_id, counts, vec![rejection])
                    .await,
                None,
            ));
        }
        let Some(activity) = parsed.activities.into_iter().next() else {
            return Ok((not_a_product().await, None));
        };
        if activity.external_sync.external_id != product_id {
            let message = format!(
                "GET /products/{{id}} answered with another product ({:?})",
                activity.external_sync.external_id
            );
            return Ok((self.product_failed(run, product_id, message).await, None));
        }

        // What storing it adds: a new activity (or a renamed one: the old name stays stored,
        // deactivated) and its bytes, or a changed one's growth.
        let bytes = activity.stored_bytes();
        let usage = record.sync_control.catalog_usage.unwrap_or_default();
        let (added, grown, after) = match &stored {
            Some(state) if state.internal_name == activity.internal_name => {
                let after = CatalogUsage {
                    bytes: usage
                        .bytes
                        .saturating_sub(state.stored_bytes)
                        .saturating_add(bytes),
                    ..usage
                };
                (0, bytes.saturating_sub(state.stored_bytes), after)
            }
            _ => (
                1,
                bytes,
                CatalogUsage {
                    activities: usage.activities + 1,
                    bytes: usage.bytes.saturating_add(bytes),
                },
            ),
        };
        let unchanged = stored.as_ref().is_some_and(|state| {
            state.internal_name == activity.internal_name
                && state.content_hash == activity.content_hash
                && state.is_active
        });
        if !unchanged && let Some(reason) = self.limits.refusal(usage, added, grown) {
            counts.rejected = 1;
            let rejection = Rejection {
                index: 0,
                product_id: Some(product_id.to_owned()),
                internal_name: Some(activity.internal_name),
                reason,
            };
            return Ok((
                self.product_done(run, product_id, counts, vec![rejection])
                    .await,
                None,
            ));
        }

        counts.synced = 1;
        match stored {
            Some(_) if unchanged => {
                counts.unchanged = 1;
                return Ok((
                    self.product_done(run, product_id, counts, Vec::new()).await,
                    None,
                ));
            }
            Some(state) => {
                if state.internal_name != activity.internal_name && state.is_active {
                    // Renamed: the activity is keyed by internalName, so the old one goes.
                    self.catalog
                        .set_active(&id, &[state.internal_name], false, now)
                        .await?;
                    metrics::catalog_writes(Record::Activity, Write::Deactivate, 1);
                    counts.deactivated = 1;
                }
                self.catalog
                    .put_activities(&id, std::slice::from_ref(&activity))
                    .await?;
                metrics::catalog_writes(Record::Activity, Write::Upsert, 1);
                counts.updated = 1;
            }
            None => {
                self.catalog
                    .put_activities(&id, std::slice::from_ref(&activity))
                    .await?;
                metrics::catalog_writes(Record::Activity, Write::Upsert, 1);
                counts.created = 1;
            }
        }
        Ok((
            self.product_done(run, product_id, counts, Vec::new()).await,
            Some(after),
        ))
    }

    async fn product_done(
        &self,
        run: &Run,
        product_id: &str,
        counts: SyncCounts,
        rejections: Vec<crate::domain::Rejection>,
    ) -> SyncResult {
        tracing::info!(integration_id = %run.id, product_id = %Untrusted(product_id), ?counts, "product synced");
        let report = RunReport {
            outcome: RunOutcome::Synced,
            counts,
            hash: None,
            error: None,
            rejections: rejections.clone(),
        };
        self.runs.record(run, report).await;
        SyncResult::Done {
            counts,
            skipped: false,
            rejections,
        }
    }

    /// The partner failed: recorded on the run (the sync log), not on the integration's state.
    async fn product_failed(&self, run: &Run, product_id: &str, message: String) -> SyncResult {
        let message = truncate(message);
        tracing::warn!(integration_id = %run.id, product_id = %Untrusted(product_id), error = %Untrusted(&message), "product sync failed");
        self.runs
            .record(run, RunReport::failed(message.clone()))
            .await;
        SyncResult::Failed { message }
    }
}
