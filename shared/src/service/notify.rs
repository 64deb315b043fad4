//! Availability notify after authentication: upsert the slot of a known product and option, or
//! fall back to one coalesced background full sync.
//!
//! Cost per call: the integration read (authentication), one variation lookup, then one write:
//! the slot, or the sync request flag (a burst of unknown products coalesces into one sync).

use super::{AuthenticatedWebhook, IntegrationService, ServiceError};
use crate::domain::{AvailabilityUpdate, EventAction, OctoEvent, RunTrigger, Slot};
use crate::logging::Untrusted;
use crate::metrics;
use crate::ports::SyncJob;

impl IntegrationService {
    /// Returns whether the slot was updated (`false`: a fallback sync was requested).
    pub async fn notify(&self, webhook: AuthenticatedWebhook, update: AvailabilityUpdate) -> Result<bool, ServiceError> {
        let record = webhook.0;
        let id = record.integration.id;
        let found = self.ports.catalog.find_variation(&id, &update.product_id, &update.option_id).await?;
        if found.is_some_and(|variation| variation.activity_active) {
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
            let expires_at = slot.local_date_time_start.instant().plus_millis(self.limits.slot_retention.as_millis() as i64);
            self.ports.catalog.put_slot(&id, &slot, expires_at).await?;
            metrics::catalog_writes(metrics::Record::Slot, metrics::Write::Upsert, 1);
            metrics::notify(true);
            return Ok(true);
        }
        let queued = self.engine.request_sync(id, RunTrigger::Fallback, Some(record)).await?;
        metrics::notify(false);
        tracing::info!(integration_id = %id, product_id = %Untrusted(&update.product_id), option_id = %Untrusted(&update.option_id), queued, "notify for an unknown product: fallback sync");
        Ok(false)
    }
}

impl IntegrationService {
    /// `POST /{id}/octo/events` after authentication. The slot of an `availability_update` is
    /// one write, done now; a product's sync is a partner call, so it goes to the queue (the
    /// answer stays fast, and the queue retries it).
    pub async fn octo_event(&self, webhook: AuthenticatedWebhook, event: OctoEvent) -> Result<EventAction, ServiceError> {
        let id = webhook.0.integration.id;
        match event {
            OctoEvent::AvailabilityUpdate(update) => {
                Ok(if self.notify(webhook, update).await? { EventAction::SlotUpdated } else { EventAction::SyncRequested })
            }
            OctoEvent::ProductUpdate { product_id } => {
                tracing::info!(integration_id = %id, product_id = %Untrusted(&product_id), "PRODUCT_UPDATE: product sync queued");
                self.ports.queue.enqueue(&[SyncJob::product(id, product_id)]).await?;
                Ok(EventAction::ProductSyncQueued)
            }
            OctoEvent::AvailabilityChanged(pull) => {
                tracing::info!(integration_id = %id, product_id = %Untrusted(&pull.product_id), "availability change: pull queued");
                self.ports.queue.enqueue(&[SyncJob::availability(id, pull)]).await?;
                Ok(EventAction::AvailabilityRefreshQueued)
            }
            OctoEvent::Ignored { what } => {
                tracing::info!(integration_id = %id, event = %Untrusted(&what), "OCTO event ignored");
                Ok(EventAction::Ignored)
            }
        }
    }
}
