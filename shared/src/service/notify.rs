//! Availability notify after authentication: upsert the slot of a known product and option, or
//! fall back to one coalesced background full sync.
//!
//! Cost per call: the integration read (authentication), one variation lookup, then one write:
//! the slot, or the sync request flag (a burst of unknown products coalesces into one sync).

use std::collections::HashMap;

use super::{AuthenticatedWebhook, IntegrationService, ServiceError};
use crate::domain::{AvailabilityUpdate, EventAction, OctoEvent, RunTrigger, Slot, Timestamp};
use crate::logging::Untrusted;
use crate::metrics;
use crate::ports::SyncJob;

/// What became of one item of a batch notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchItemOutcome {
    /// The slot was stored.
    Updated,
    /// The product or option is unknown (or inactive): the batch's one fallback sync covers it.
    SyncRequested,
    /// The item is not a valid notify body; each problem as `"field: reason"`.
    Invalid(Vec<String>),
}

impl IntegrationService {
    /// Returns whether the slot was updated (`false`: a fallback sync was requested).
    pub async fn notify(
        &self,
        webhook: AuthenticatedWebhook,
        update: AvailabilityUpdate,
    ) -> Result<bool, ServiceError> {
        let record = webhook.0;
        let id = record.integration.id;
        let found = self
            .ports
            .catalog
            .find_variation(&id, &update.product_id, &update.option_id)
            .await?;
        if found.is_some_and(|variation| variation.activity_active) {
            let (slot, expires_at) = self.slot_of(update);
            self.ports.catalog.put_slot(&id, &slot, expires_at).await?;
            metrics::catalog_writes(metrics::Record::Slot, metrics::Write::Upsert, 1);
            metrics::notify(true);
            return Ok(true);
        }
        let queued = self
            .engine
            .request_sync(id, RunTrigger::Fallback, Some(record))
            .await?;
        metrics::notify(false);
        tracing::info!(integration_id = %id, product_id = %Untrusted(&update.product_id), option_id = %Untrusted(&update.option_id), queued, "notify for an unknown product: fallback sync");
        Ok(false)
    }

    /// `POST /{id}/availability/notify-batch`: many slots in one call, each item on its own.
    /// One variation lookup per distinct product and option, the stored slots in one batched
    /// write (the last of duplicates wins), and at most one fallback sync for every unknown
    /// product of the batch. Nothing is written when the lookups fail (the partner retries the
    /// whole batch; every write is an idempotent upsert).
    pub async fn notify_batch(
        &self,
        webhook: AuthenticatedWebhook,
        items: Vec<Result<AvailabilityUpdate, Vec<String>>>,
    ) -> Result<Vec<BatchItemOutcome>, ServiceError> {
        let record = webhook.0;
        let id = record.integration.id;
        let mut active: HashMap<(String, String), bool> = HashMap::new();
        let mut slots: Vec<(Slot, Timestamp)> = Vec::new();
        let mut slot_index: HashMap<(String, String, String), usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(items.len());
        let mut unknown = None;
        for item in items {
            let update = match item {
                Ok(update) => update,
                Err(errors) => {
                    outcomes.push(BatchItemOutcome::Invalid(errors));
                    continue;
                }
            };
            let variation = (update.product_id.clone(), update.option_id.clone());
            let is_active = match active.get(&variation) {
                Some(is_active) => *is_active,
                None => {
                    let found = self
                        .ports
                        .catalog
                        .find_variation(&id, &update.product_id, &update.option_id)
                        .await?;
                    let is_active = found.is_some_and(|variation| variation.activity_active);
                    active.insert(variation, is_active);
                    is_active
                }
            };
            if !is_active {
                unknown.get_or_insert(update.product_id);
                outcomes.push(BatchItemOutcome::SyncRequested);
                continue;
            }
            let key = (
                update.product_id.clone(),
                update.option_id.clone(),
                update.availability_id.clone(),
            );
            let slot = self.slot_of(update);
            match slot_index.get(&key) {
                Some(at) => slots[*at] = slot,
                None => {
                    slot_index.insert(key, slots.len());
                    slots.push(slot);
                }
            }
            outcomes.push(BatchItemOutcome::Updated);
        }
        if !slots.is_empty() {
            self.ports.catalog.put_slots(&id, &slots).await?;
            metrics::catalog_writes(
                metrics::Record::Slot,
                metrics::Write::Upsert,
                slots.len() as u64,
            );
        }
        for outcome in &outcomes {
            match outcome {
                BatchItemOutcome::Updated => metrics::notify(true),
                BatchItemOutcome::SyncRequested => metrics::notify(false),
                BatchItemOutcome::Invalid(_) => {}
            }
        }
        if let Some(product_id) = unknown {
            let queued = self
                .engine
                .request_sync(id, RunTrigger::Fallback, Some(record))
                .await?;
            tracing::info!(integration_id = %id, product_id = %Untrusted(&product_id), queued, "batch notify with an unknown product: fallback sync");
        }
        Ok(outcomes)
    }

    /// The slot a notify describes, stamped now, and when the store may forget it.
    fn slot_of(&self, update: AvailabilityUpdate) -> (Slot, Timestamp) {
        let slot = Slot {
            product_id: update.product_id,
            option_id: update.option_id,
            availability_id: update.availability_id,
            local_date_time_start: update.local_date_time_start,
            status: update.status,
            vacancies: update.vacancies,
            capacity: update.capacity,
            updated_at: self.ports.clock.now(),
        };
        let expires_at = slot
            .local_date_time_start
            .instant()
            .plus_millis(self.limits.slot_retention.as_millis() as i64);
        (slot, expires_at)
    }
}

impl IntegrationService {
    /// `POST /{id}/octo/events` after authentication. The slot of an `availability_update` is
    /// one write, done now; a product's sync is a partner call, so it goes to the queue (the
    /// answer stays fast, and the queue retries it).
    pub async fn octo_event(
        &self,
        webhook: AuthenticatedWebhook,
        event: OctoEvent,
    ) -> Result<EventAction, ServiceError> {
        let id = webhook.0.integration.id;
        match event {
            OctoEvent::AvailabilityUpdate(update) => Ok(if self.notify(webhook, update).await? {
                EventAction::SlotUpdated
            } else {
                EventAction::SyncRequested
            }),
            OctoEvent::ProductUpdate { product_id } => {
                tracing::info!(integration_id = %id, product_id = %Untrusted(&product_id), "PRODUCT_UPDATE: product sync queued");
                self.ports
                    .queue
                    .enqueue(&[SyncJob::product(id, product_id)])
                    .await?;
                Ok(EventAction::ProductSyncQueued)
            }
            OctoEvent::AvailabilityChanged(pull) => {
                tracing::info!(integration_id = %id, product_id = %Untrusted(&pull.product_id), "availability change: pull requested");
                self.engine.request_pulls(id, &[pull]).await?;
                Ok(EventAction::AvailabilityRefreshQueued)
            }
            OctoEvent::Ignored { what } => {
                tracing::info!(integration_id = %id, event = %Untrusted(&what), "OCTO event ignored");
                Ok(EventAction::Ignored)
            }
        }
    }
}
