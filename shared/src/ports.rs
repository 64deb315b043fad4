//! The small traits the core needs from the outside world. Adapters live under `adapters/`:
//! `embedded` (redb, files, an in-process queue) for seyaha-local, `aws` for Lambda.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{
    Activity, ActivityState, AuthKey, HealthStatus, IntegrationId, IntegrationRecord, PartnerId, RunTrigger, Slot, SyncRun, Timestamp,
    VariationRef,
};

/// Storage failures the core distinguishes; everything else is `Unavailable` (a 500 upstream).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The partner already has an integration (or the id is taken).
    #[error("the partner already has an integration")]
    AlreadyExists,
    /// The record changed since it was read; re-read and retry.
    #[error("the record was modified concurrently")]
    VersionConflict,
    #[error("the record does not exist")]
    NotFound,
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// Admin list filters; `None` means "any".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegrationFilter {
    pub is_approved: Option<bool>,
    pub health: Option<HealthStatus>,
}

impl IntegrationFilter {
    pub fn matches(&self, record: &IntegrationRecord) -> bool {
        let integration = &record.integration;
        self.is_approved.is_none_or(|approved| integration.is_approved == approved)
            && self.health.is_none_or(|health| integration.health.status == health)
    }
}

/// 1-based page number and page size, both already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub limit: u32,
}

impl PageRequest {
    pub fn offset(&self) -> usize {
        (self.page as usize - 1) * self.limit as usize
    }
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total_count: u64,
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Inserts a new integration. Atomically fails with `AlreadyExists` when the partner
    /// already owns one, so two racing creates can never both succeed.
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError>;

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError>;

    async fn find_by_partner(&self, partner_id: &PartnerId) -> Result<Option<IntegrationRecord>, StoreError>;

    /// Replaces the record if its stored version is still `record.version - 1`
    /// (callers bump the version); otherwise `VersionConflict`, or `NotFound` if it is gone.
    async fn update(&self, record: &IntegrationRecord) -> Result<(), StoreError>;

    /// Removes the record and frees the partner for a new integration; returns what was removed.
    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError>;

    /// One page of integrations, newest first, with the total number matching the filter.
    async fn list(&self, filter: &IntegrationFilter, page: PageRequest) -> Result<Page<IntegrationRecord>, StoreError>;

    /// Approved and active integrations in id order, after `after`, at most `limit`: the
    /// nightly job pages through these and never loads them all.
    async fn list_syncable(&self, after: Option<IntegrationId>, limit: usize) -> Result<Vec<IntegrationRecord>, StoreError>;
}

/// Seyaha's copy of each partner's catalog.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The content hash and active flag of every stored activity of an integration.
    async fn activity_states(&self, integration: &IntegrationId) -> Result<Vec<ActivityState>, StoreError>;

    /// Creates or replaces activities (keyed by `internal_name`) and keeps the OCTO product id
    /// index that notify uses in step.
    async fn put_activities(&self, integration: &IntegrationId, activities: &[Activity]) -> Result<(), StoreError>;

    /// Flips `isActive` on the named activities (deactivation never deletes).
    async fn set_active(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
        active: bool,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deactivates every activity of the integration; returns how many changed.
    async fn deactivate_all(&self, integration: &IntegrationId, now: Timestamp) -> Result<u64, StoreError> {
        let states = self.activity_states(integration).await?;
        let active: Vec<String> = states.into_iter().filter(|a| a.is_active).map(|a| a.internal_name).collect();
        self.set_active(integration, &active, false, now).await?;
        Ok(active.len() as u64)
    }

    /// The activity holding this OCTO product and option, if any.
    async fn find_variation(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
    ) -> Result<Option<VariationRef>, StoreError>;

    /// Creates or replaces one availability slot.
    async fn put_slot(&self, integration: &IntegrationId, slot: &Slot) -> Result<(), StoreError>;

    /// Every activity of an integration (admin view).
    async fn activities(&self, integration: &IntegrationId) -> Result<Vec<Activity>, StoreError>;

    /// Every slot of an integration (admin view).
    async fn slots(&self, integration: &IntegrationId) -> Result<Vec<Slot>, StoreError>;
}

/// Sync run history; records expire after 30 days.
#[async_trait]
pub trait RunStore: Send + Sync {
    async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError>;

    /// The newest unexpired runs, newest first.
    async fn recent_runs(&self, integration: &IntegrationId, limit: usize, now: Timestamp) -> Result<Vec<SyncRun>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("secret store is unavailable: {0}")]
pub struct SecretStoreError(pub String);

/// Where partner credentials live (Secrets Manager on AWS, 0600 files locally).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates or replaces the integration's OCTO credential.
    async fn put_auth_key(&self, id: &IntegrationId, key: &AuthKey) -> Result<(), SecretStoreError>;
    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError>;
    /// Removes the credential; removing a missing one is not an error.
    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError>;
}

/// A unit of background work: sync (or, for a DOWN integration, probe) one integration, if a
/// sync is still requested when the job runs. That check makes redelivered and duplicate
/// messages harmless.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncJob {
    pub integration_id: IntegrationId,
    pub trigger: RunTrigger,
}

#[derive(Debug, thiserror::Error)]
#[error("queue is unavailable: {0}")]
pub struct QueueError(pub String);

/// The background sync queue (SQS on AWS, in-process locally). Delivery is at least once;
/// consumers must be idempotent.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError>;

    /// Delivers the job after `delay` (at most 15 minutes): the watchdog that guarantees a
    /// requested sync runs even if the lease holder dies.
    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError>;
}

/// Time, injectable so tests can move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
