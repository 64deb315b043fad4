//! The real catalog store with a hook in front of every call: tests use it to fail a write
//! (a process dying mid-sync), to panic (a bug), or to count writes (the benchmark).

use std::sync::Arc;

use async_trait::async_trait;
use seyaha::adapters::embedded::RedbStore;
use seyaha::domain::{Activity, ActivityState, IntegrationId, Slot, Timestamp, VariationRef};
use seyaha::ports::{CatalogStore, Cursor, Page, StoreError};

/// Which call the hook is asked about; writes say how many items they write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogCall {
    ActivityStates,
    PutActivities(usize),
    SetActive(usize),
    FindVariation,
    PutSlot,
    Activities,
    ActivitiesPage,
    SlotsPage,
}

type Hook = dyn Fn(CatalogCall, &IntegrationId) -> Result<(), StoreError> + Send + Sync;

pub struct HookedCatalog {
    pub inner: RedbStore,
    hook: Arc<Hook>,
}

impl HookedCatalog {
    /// `hook` runs before each call; an error it returns is the call's answer.
    pub fn new(inner: RedbStore, hook: impl Fn(CatalogCall, &IntegrationId) -> Result<(), StoreError> + Send + Sync + 'static) -> Self {
        Self { inner, hook: Arc::new(hook) }
    }
}

#[async_trait]
impl CatalogStore for HookedCatalog {
    async fn activity_states(&self, id: &IntegrationId) -> Result<Vec<ActivityState>, StoreError> {
        (self.hook)(CatalogCall::ActivityStates, id)?;
        self.inner.activity_states(id).await
    }
    async fn put_activities(&self, id: &IntegrationId, activities: &[Activity]) -> Result<(), StoreError> {
        (self.hook)(CatalogCall::PutActivities(activities.len()), id)?;
        self.inner.put_activities(id, activities).await
    }
    async fn set_active(&self, id: &IntegrationId, names: &[String], active: bool, now: Timestamp) -> Result<(), StoreError> {
        (self.hook)(CatalogCall::SetActive(names.len()), id)?;
        self.inner.set_active(id, names, active, now).await
    }
    async fn find_variation(&self, id: &IntegrationId, product: &str, option: &str) -> Result<Option<VariationRef>, StoreError> {
        (self.hook)(CatalogCall::FindVariation, id)?;
        self.inner.find_variation(id, product, option).await
    }
    async fn put_slot(&self, id: &IntegrationId, slot: &Slot, expires_at: Timestamp) -> Result<(), StoreError> {
        (self.hook)(CatalogCall::PutSlot, id)?;
        self.inner.put_slot(id, slot, expires_at).await
    }
    async fn activities(&self, id: &IntegrationId) -> Result<Vec<Activity>, StoreError> {
        (self.hook)(CatalogCall::Activities, id)?;
        self.inner.activities(id).await
    }
    async fn activities_page(&self, id: &IntegrationId, limit: usize, after: Option<Cursor>) -> Result<Page<Activity>, StoreError> {
        (self.hook)(CatalogCall::ActivitiesPage, id)?;
        self.inner.activities_page(id, limit, after).await
    }
    async fn slots_page(&self, id: &IntegrationId, limit: usize, after: Option<Cursor>, from: Timestamp) -> Result<Page<Slot>, StoreError> {
        (self.hook)(CatalogCall::SlotsPage, id)?;
        self.inner.slots_page(id, limit, after, from).await
    }
}
