//! The real catalog store with a hook in front of every call: tests use it to fail a write
//! (a process dying mid-sync), to panic (a bug), to count writes (the benchmark), or to hold
//! a call until the test lets it go (to stage an interleaving of two writers).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use seyaha::adapters::embedded::RedbStore;
use seyaha::domain::{
    Activity, ActivityState, AvailabilityPull, IntegrationId, ProductActivity, Slot, Timestamp,
    VariationRef,
};
use seyaha::ports::{CatalogStore, Cursor, Page, StoreError};

/// Which call the hook is asked about; writes say how many items they write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogCall {
    ActivityStates,
    PutActivities(usize),
    SetActive(usize),
    FindVariation,
    ActivityOfProduct,
    OptionSlots,
    PutSlot,
    Activities,
    ActivitiesPage,
    SlotsPage,
}

type Hook = dyn Fn(CatalogCall, &IntegrationId) -> Result<(), StoreError> + Send + Sync;

/// A call held until the test releases it: which call, who to tell that it arrived, and what
/// it waits for.
type Hold = (
    fn(CatalogCall) -> bool,
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

pub struct HookedCatalog {
    pub inner: RedbStore,
    hook: Arc<Hook>,
    hold: Mutex<Option<Hold>>,
}

/// The test's side of a held call: wait until it arrives, then let it go.
pub struct HeldCall {
    arrived: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

impl HeldCall {
    pub async fn arrived(&mut self) {
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.arrived)
            .await
            .expect("the held call arrives within 10 s")
            .expect("the catalog is alive");
    }

    pub fn release(self) {
        self.release.send(()).ok();
    }
}

impl HookedCatalog {
    /// `hook` runs before each call; an error it returns is the call's answer.
    pub fn new(
        inner: RedbStore,
        hook: impl Fn(CatalogCall, &IntegrationId) -> Result<(), StoreError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner,
            hook: Arc::new(hook),
            hold: Mutex::new(None),
        }
    }

    /// Holds the next call that `matches` until the returned handle releases it.
    pub fn hold_next(&self, matches: fn(CatalogCall) -> bool) -> HeldCall {
        let (arrived_tx, arrived) = tokio::sync::oneshot::channel();
        let (release, release_rx) = tokio::sync::oneshot::channel();
        *self.hold.lock().unwrap() = Some((matches, arrived_tx, release_rx));
        HeldCall { arrived, release }
    }

    async fn before(&self, call: CatalogCall, id: &IntegrationId) -> Result<(), StoreError> {
        (self.hook)(call, id)?;
        let held = {
            let mut hold = self.hold.lock().unwrap();
            match hold.take() {
                Some((matches, arrived, release)) if matches(call) => Some((arrived, release)),
                other => {
                    *hold = other;
                    None
                }
            }
        };
        if let Some((arrived, release)) = held {
            arrived.send(()).ok();
            release.await.ok();
        }
        Ok(())
    }
}

#[async_trait]
impl CatalogStore for HookedCatalog {
    async fn activity_states(&self, id: &IntegrationId) -> Result<Vec<ActivityState>, StoreError> {
        self.before(CatalogCall::ActivityStates, id).await?;
        self.inner.activity_states(id).await
    }
    async fn put_activities(
        &self,
        id: &IntegrationId,
        activities: &[Activity],
    ) -> Result<(), StoreError> {
        self.before(CatalogCall::PutActivities(activities.len()), id)
            .await?;
        self.inner.put_activities(id, activities).await
    }
    async fn delete_activities(
        &self,
        id: &IntegrationId,
        names: &[String],
    ) -> Result<(), StoreError> {
        self.inner.delete_activities(id, names).await
    }
    async fn set_active(
        &self,
        id: &IntegrationId,
        names: &[String],
        active: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.before(CatalogCall::SetActive(names.len()), id).await?;
        self.inner.set_active(id, names, active, now).await
    }
    async fn find_variation(
        &self,
        id: &IntegrationId,
        product: &str,
        option: &str,
    ) -> Result<Option<VariationRef>, StoreError> {
        self.before(CatalogCall::FindVariation, id).await?;
        self.inner.find_variation(id, product, option).await
    }
    async fn activity_of_product(
        &self,
        id: &IntegrationId,
        product: &str,
    ) -> Result<Option<ProductActivity>, StoreError> {
        self.before(CatalogCall::ActivityOfProduct, id).await?;
        self.inner.activity_of_product(id, product).await
    }
    async fn option_slots(
        &self,
        id: &IntegrationId,
        product: &str,
        option: &str,
        days: std::ops::RangeInclusive<time::Date>,
    ) -> Result<Vec<Slot>, StoreError> {
        self.before(CatalogCall::OptionSlots, id).await?;
        self.inner.option_slots(id, product, option, days).await
    }
    async fn add_pull(
        &self,
        id: &IntegrationId,
        pull: &AvailabilityPull,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.add_pull(id, pull, at).await
    }
    async fn pending_pulls(
        &self,
        id: &IntegrationId,
        limit: usize,
    ) -> Result<Vec<(AvailabilityPull, Timestamp)>, StoreError> {
        self.inner.pending_pulls(id, limit).await
    }
    async fn remove_pull(
        &self,
        id: &IntegrationId,
        pull: &AvailabilityPull,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.inner.remove_pull(id, pull, at).await
    }
    async fn put_slot(
        &self,
        id: &IntegrationId,
        slot: &Slot,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.before(CatalogCall::PutSlot, id).await?;
        self.inner.put_slot(id, slot, expires_at).await
    }
    async fn activities(&self, id: &IntegrationId) -> Result<Vec<Activity>, StoreError> {
        self.before(CatalogCall::Activities, id).await?;
        self.inner.activities(id).await
    }
    async fn activities_page(
        &self,
        id: &IntegrationId,
        limit: usize,
        max_bytes: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Activity>, StoreError> {
        self.before(CatalogCall::ActivitiesPage, id).await?;
        self.inner
            .activities_page(id, limit, max_bytes, after)
            .await
    }
    async fn slots_page(
        &self,
        id: &IntegrationId,
        limit: usize,
        after: Option<Cursor>,
        from: Timestamp,
    ) -> Result<Page<Slot>, StoreError> {
        self.before(CatalogCall::SlotsPage, id).await?;
        self.inner.slots_page(id, limit, after, from).await
    }
}
