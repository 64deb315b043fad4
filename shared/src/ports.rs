//! The small traits the core needs from the outside world, and [`Ports`], the set of them the
//! composition root (`app::build`) wires together. Adapters live under `adapters/`:
//! `embedded` (redb, files, an in-process queue) for seyaha-local, `aws` for Lambda.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::{
    Activity, ActivityState, AuthKey, AvailabilityPull, HealthStatus, IntegrationId,
    IntegrationRecord, PartnerId, ProductActivity, RunId, RunTrigger, Slot, SyncRun, Timestamp,
    VariationRef,
};

/// The underlying cause of an adapter failure, kept for the logs (never shown to callers).
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

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
    /// A listing cursor that this store did not make for this listing.
    #[error("the cursor is not valid for this listing")]
    InvalidCursor,
    #[error("storage is unavailable: {0}")]
    Unavailable(#[source] Cause),
}

impl StoreError {
    pub fn unavailable(cause: impl Into<Cause>) -> Self {
        Self::Unavailable(cause.into())
    }
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
        self.is_approved
            .is_none_or(|approved| integration.is_approved == approved)
            && self
                .health
                .is_none_or(|health| integration.health.status == health)
    }
}

/// A position in a listing, opaque to everyone but the store that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn new(position: impl Into<String>) -> Self {
        Self(position.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The most an activities page holds ([`CatalogStore::activities_page`]): with the envelope
/// the API's answer stays under 5 MB (Lambda answers at most 6 MB), whatever `limit` says.
pub const CATALOG_PAGE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// One page of a listing; `next` is where the following page starts, `None` after the last.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// Inserts a new integration. Atomically fails with `AlreadyExists` when the partner
    /// already owns one, so two racing creates can never both succeed.
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError>;

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError>;

    async fn find_by_partner(
        &self,
        partner_id: &PartnerId,
    ) -> Result<Option<IntegrationRecord>, StoreError>;

    /// Replaces the record if its stored version is still `record.version - 1`
    /// (callers bump the version); otherwise `VersionConflict`, or `NotFound` if it is gone.
    /// `previous` is the record as read at that version: a store may write only what changed
    /// (DynamoDB keeps the sync state on its own small item, so a run never rewrites the document).
    async fn update(
        &self,
        record: &IntegrationRecord,
        previous: &IntegrationRecord,
    ) -> Result<(), StoreError>;

    /// Removes the record and frees the partner for a new integration; returns what was removed.
    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError>;

    /// At most `limit` integrations matching the filter, newest first, starting after `after`.
    async fn list(
        &self,
        filter: &IntegrationFilter,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError>;

    /// How many integrations match the filter.
    async fn count(&self, filter: &IntegrationFilter) -> Result<u64, StoreError>;

    /// At most `limit` approved and active integrations in the store's order, starting after
    /// `after`: the nightly job follows the cursors and never loads them all.
    async fn list_syncable(
        &self,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError>;

    /// How many integrations are approved and active (what `list_syncable` walks), counted
    /// without loading them (DynamoDB: a `Select=COUNT` query of the sparse index).
    async fn count_syncable(&self) -> Result<u64, StoreError>;
}

/// Seyaha's copy of each partner's catalog.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// The content hash and active flag of every stored activity of an integration.
    async fn activity_states(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<ActivityState>, StoreError>;

    /// Creates or replaces activities (keyed by `internal_name`) and keeps the OCTO product id
    /// index that notify uses in step.
    async fn put_activities(
        &self,
        integration: &IntegrationId,
        activities: &[Activity],
    ) -> Result<(), StoreError>;

    /// Removes the named activities and their product index entries (deactivated activities
    /// past their retention). Removing one that is not there is no error.
    async fn delete_activities(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
    ) -> Result<(), StoreError>;

    /// Flips `isActive` on the named activities (deactivation never deletes; the retention of
    /// [`CatalogLimits`](crate::domain::CatalogLimits) removes them later).
    async fn set_active(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
        active: bool,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deactivates every activity of the integration; returns how many changed.
    async fn deactivate_all(
        &self,
        integration: &IntegrationId,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let states = self.activity_states(integration).await?;
        let active: Vec<String> = states
            .into_iter()
            .filter(|a| a.is_active)
            .map(|a| a.internal_name)
            .collect();
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

    /// Creates or replaces one availability slot; the store may forget it after `expires_at`.
    /// The stored activity of one OCTO product (by its id), whatever its internal name.
    async fn activity_of_product(
        &self,
        integration: &IntegrationId,
        product_id: &str,
    ) -> Result<Option<ProductActivity>, StoreError>;

    /// The stored slots of one product option whose local date is in `days` (an availability
    /// pull closes those it no longer gets). Reads those days only where the store can tell
    /// (DynamoDB: the date is in the slot's key).
    async fn option_slots(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
        days: std::ops::RangeInclusive<time::Date>,
    ) -> Result<Vec<Slot>, StoreError>;

    async fn put_slot(
        &self,
        integration: &IntegrationId,
        slot: &Slot,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records a pending availability pull, requested at `requested_at`. One record per
    /// distinct pull: asking for the same pull again only moves its time.
    async fn add_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// At most `limit` pending pulls with their request times, in the store's order (by
    /// product, option and dates).
    async fn pending_pulls(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> Result<Vec<(AvailabilityPull, Timestamp)>, StoreError>;

    /// Removes a pending pull if it is still the request made at `requested_at` (asked for
    /// again since, it stays for the next run).
    async fn remove_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Many slots at once (an availability pull), each with its expiry: batched where the
    /// store can (DynamoDB: `BatchWriteItem`; redb: one group commit for the lot).
    async fn put_slots(
        &self,
        integration: &IntegrationId,
        slots: &[(Slot, Timestamp)],
    ) -> Result<(), StoreError> {
        for (slot, expires_at) in slots {
            self.put_slot(integration, slot, *expires_at).await?;
        }
        Ok(())
    }

    /// Every activity of an integration (the engine's own use; the API pages).
    async fn activities(&self, integration: &IntegrationId) -> Result<Vec<Activity>, StoreError>;

    /// At most `limit` activities of an integration, in the store's order, after `after`, and
    /// at most `max_bytes` of them ([`Activity::stored_bytes`]) unless one alone is larger: the
    /// page then ends early, with the cursor of its last activity.
    async fn activities_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        max_bytes: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Activity>, StoreError>;

    /// At most `limit` slots of an integration that start at or after `starting_from`, in the
    /// store's order, after `after`.
    async fn slots_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        after: Option<Cursor>,
        starting_from: Timestamp,
    ) -> Result<Page<Slot>, StoreError>;
}

/// Sync run history; records expire after 30 days.
#[async_trait]
pub trait RunStore: Send + Sync {
    async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError>;

    /// The newest unexpired runs, newest first.
    async fn recent_runs(
        &self,
        integration: &IntegrationId,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<SyncRun>, StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("secret store is unavailable: {0}")]
pub struct SecretStoreError(#[source] pub Cause);

impl SecretStoreError {
    pub fn new(cause: impl Into<Cause>) -> Self {
        Self(cause.into())
    }
}

/// Where partner credentials live (Secrets Manager on AWS, 0600 files locally).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Creates or replaces the integration's OCTO credential.
    async fn put_auth_key(&self, id: &IntegrationId, key: &AuthKey)
    -> Result<(), SecretStoreError>;
    async fn get_auth_key(&self, id: &IntegrationId) -> Result<Option<AuthKey>, SecretStoreError>;
    /// The credential as of the integration's credential `version` (`IntegrationRecord::
    /// credential_version`) or later. Stores read it fresh every time; a cache in front uses
    /// this to refuse a copy read for an older version.
    async fn get_auth_key_of_version(
        &self,
        id: &IntegrationId,
        version: u64,
    ) -> Result<Option<AuthKey>, SecretStoreError> {
        let _ = version;
        self.get_auth_key(id).await
    }
    /// Removes the credential; removing a missing one is not an error.
    async fn delete_auth_key(&self, id: &IntegrationId) -> Result<(), SecretStoreError>;
}

/// Whether one more webhook call of an integration fits its rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Over the limit; the window ends this long from now.
    Limited {
        retry_after: Duration,
    },
}

/// The fixed window of `length` that contains `now` (windows start at multiples of `length`
/// since the epoch, so every instance agrees on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub start_ms: i64,
    pub length_ms: i64,
}

impl RateWindow {
    pub fn containing(now: Timestamp, length: Duration) -> Self {
        let length_ms = length.as_millis().max(1) as i64;
        Self {
            start_ms: now.unix_millis().div_euclid(length_ms) * length_ms,
            length_ms,
        }
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.length_ms
    }

    /// The answer for a call over the limit: come back when this window ends.
    pub fn limited(&self, now: Timestamp) -> Admission {
        Admission::Limited {
            retry_after: Duration::from_millis((self.end_ms() - now.unix_millis()).max(1) as u64),
        }
    }
}

/// Per-integration webhook rate limiting: a fixed window counter per integration (a DynamoDB
/// item updated conditionally on AWS, so every function instance shares it; in memory locally).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one call of `id` in the window containing `now` if fewer than `limit` were counted.
    async fn admit(
        &self,
        id: &IntegrationId,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<Admission, StoreError>;
}

/// Where the HS256 secret that partner and admin JWTs are signed with comes from (not read when
/// tokens are verified with a public key, `SEYAHA_JWT_PUBLIC_KEY`).
#[async_trait]
pub trait SigningKeySource: Send + Sync {
    async fn jwt_secret(&self) -> Result<SecretString, SecretStoreError>;
}

/// A signing key known at start-up (seyaha-local; a function that serves no JWT route).
pub struct StaticSigningKey(pub SecretString);

#[async_trait]
impl SigningKeySource for StaticSigningKey {
    async fn jwt_secret(&self) -> Result<SecretString, SecretStoreError> {
        Ok(self.0.clone())
    }
}

/// A unit of background work: sync (or, for a DOWN integration, probe) one integration, if a
/// sync is still requested when the job runs. That check makes redelivered and duplicate
/// messages harmless. One kind, a page of the nightly (or sync-all) fan-out, names no
/// integration: it requests the syncs of one page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJob {
    /// The integration the work is about; `None` only for a fan-out page.
    pub integration_id: Option<IntegrationId>,
    pub trigger: RunTrigger,
    pub work: JobWork,
    /// Which queue carries it: bulk work never delays real-time work.
    pub lane: Lane,
    /// Not to run before this: a worker given it earlier puts it back with the rest of the
    /// delay (SQS delays at most 15 minutes; a fan-out window may be longer).
    pub not_before: Option<Timestamp>,
}

/// The two queues. Real-time work (webhook hand-offs, fallbacks, follow-ups, `PRODUCT_UPDATE`,
/// availability pulls, subscriptions, an admin's sync of one integration) has its own queue,
/// workers and dead-letter queue, so it never waits behind the nightly run's tens of thousands
/// of syncs, which go to the bulk lane with a lower concurrency cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    RealTime,
    Bulk,
}

impl SyncJob {
    fn real_time(integration_id: IntegrationId, trigger: RunTrigger, work: JobWork) -> Self {
        Self {
            integration_id: Some(integration_id),
            trigger,
            work,
            lane: Lane::RealTime,
            not_before: None,
        }
    }

    /// A full catalog sync.
    pub fn catalog(integration_id: IntegrationId, trigger: RunTrigger) -> Self {
        Self::real_time(integration_id, trigger, JobWork::Catalog)
    }

    /// A full catalog sync requested by a fan-out (nightly, sync-all): on the bulk lane, due
    /// at `not_before` (its place in the fan-out's window).
    pub fn bulk_catalog(
        integration_id: IntegrationId,
        trigger: RunTrigger,
        not_before: Option<Timestamp>,
    ) -> Self {
        Self {
            lane: Lane::Bulk,
            not_before,
            ..Self::catalog(integration_id, trigger)
        }
    }

    /// One product's sync, after a `PRODUCT_UPDATE`.
    pub fn product(integration_id: IntegrationId, product_id: String) -> Self {
        Self::real_time(
            integration_id,
            RunTrigger::ProductUpdate,
            JobWork::Product { product_id },
        )
    }

    /// Subscribing to the partner's push channel.
    pub fn subscribe(integration_id: IntegrationId) -> Self {
        Self::real_time(integration_id, RunTrigger::Admin, JobWork::Subscribe)
    }

    /// Removing push subscriptions.
    pub fn unsubscribe(integration_id: IntegrationId, what: crate::domain::Unsubscribe) -> Self {
        Self::real_time(
            integration_id,
            RunTrigger::Admin,
            JobWork::Unsubscribe(what),
        )
    }

    /// An availability pull, asked for in the job itself (the form before pulls were
    /// coalesced): the pull is added to the integration's pending pulls, which are then served.
    pub fn availability(
        integration_id: IntegrationId,
        pull: crate::domain::AvailabilityPull,
    ) -> Self {
        Self::real_time(
            integration_id,
            RunTrigger::AvailabilityPull,
            JobWork::Availability(pull),
        )
    }

    /// Serve the integration's pending availability pulls (see `AvailabilityPulls`).
    pub fn pending_pulls(integration_id: IntegrationId) -> Self {
        Self::real_time(
            integration_id,
            RunTrigger::AvailabilityPull,
            JobWork::PendingPulls,
        )
    }

    /// The same job in `lane` (the jobs a bulk run leaves behind stay bulk).
    pub fn in_lane(self, lane: Lane) -> Self {
        Self { lane, ..self }
    }

    /// One page of a fan-out (on the bulk lane).
    pub fn fan_out_page(trigger: RunTrigger, page: FanOutPage) -> Self {
        Self {
            integration_id: None,
            trigger,
            work: JobWork::FanOutPage(page),
            lane: Lane::Bulk,
            not_before: None,
        }
    }
}

/// What a queue job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobWork {
    /// The whole catalog: only while a sync request is pending (`requested_at`), so duplicate
    /// and redelivered messages change nothing.
    Catalog,
    /// One product (`GET /products/{id}`); idempotent by content hash.
    Product { product_id: String },
    /// A product's availability over dates (`POST /availability`): added to the pending
    /// pulls, then served as [`JobWork::PendingPulls`]; idempotent upserts.
    Availability(crate::domain::AvailabilityPull),
    /// The integration's pending availability pulls: only while some are requested
    /// (`pulls_requested_at`), so duplicate and redelivered messages change nothing.
    PendingPulls,
    /// Subscribe to the partner's push channel (after approval); idempotent.
    Subscribe,
    /// Remove these push subscriptions (after unapproval, pause or a `base_url` change).
    Unsubscribe(crate::domain::Unsubscribe),
    /// Request the syncs of one page of live integrations and queue the next page; idempotent
    /// through the fan-out's mark on each integration (see `FanOut::fan_out_page` in sync/fan_out.rs).
    FanOutPage(FanOutPage),
}

impl JobWork {
    /// The kind's name, as in the job's wire form (`"kind"`) and the jobs metric's label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Product { .. } => "product",
            Self::Availability(_) => "availability",
            Self::PendingPulls => "pending_pulls",
            Self::Subscribe => "subscribe",
            Self::Unsubscribe(_) => "unsubscribe",
            Self::FanOutPage(_) => "fan_out_page",
        }
    }
}

/// One page of a fan-out: the live integrations after `after`, whose syncs are spread over
/// `window` from `started_at` (every page of one fan-out carries the same three values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOutPage {
    /// The fan-out's identity, marked on each integration it requested, so a page delivered
    /// again knows which of its integrations it already asked for.
    pub fan_out: RunId,
    pub started_at: Timestamp,
    pub window: Duration,
    /// Where the page starts (a cursor of `list_syncable`); `None`: the first page.
    pub after: Option<Cursor>,
}

impl FanOutPage {
    /// When the sync of `id` is due: a fixed point of the window chosen by a hash of the id, so
    /// one partner platform's suppliers are not all called in the same minute, and a page run
    /// twice computes the same times.
    pub fn due(&self, id: &IntegrationId) -> Timestamp {
        let window_ms = self.window.as_millis() as u64;
        if window_ms == 0 {
            return self.started_at;
        }
        // FNV-1a: stable across builds and Rust versions (std's hasher promises neither).
        let hash = id
            .to_string()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
            });
        self.started_at.plus_millis((hash % window_ms) as i64)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue is unavailable: {0}")]
pub struct QueueError(#[source] pub Cause);

impl QueueError {
    pub fn new(cause: impl Into<Cause>) -> Self {
        Self(cause.into())
    }
}

/// The longest delay a queue takes (SQS's limit); a job due later carries `not_before`.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// The background sync queue (SQS on AWS, in-process locally): two lanes, each job going to
/// the one its `lane` names. Delivery is at least once, and a job may arrive more than once:
/// consumers must be idempotent.
#[async_trait]
pub trait SyncQueue: Send + Sync {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError>;

    /// Delivers the job after `delay` (at most [`MAX_QUEUE_DELAY`]): the watchdog that guarantees a
    /// requested sync runs even if the lease holder dies, and the fallback debounce.
    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError>;

    /// Many jobs, each after its own delay (a fan-out page's syncs): batched where the queue
    /// can (SQS: `SendMessageBatch` with a delay per entry).
    async fn enqueue_each_after(&self, jobs: &[(SyncJob, Duration)]) -> Result<(), QueueError> {
        for (job, delay) in jobs {
            self.enqueue_after(job, *delay).await?;
        }
        Ok(())
    }
}

/// Time. Everything that compares or waits on time asks the clock, so tests can move it.
#[async_trait]
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;

    /// Resolves once `now()` has reached `at`.
    async fn sleep_until(&self, at: Timestamp);
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep_until(&self, at: Timestamp) {
        let wait = at.unix_millis() - Timestamp::now().unix_millis();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}

/// Every port the core uses; adapters build these, `app::build` wires them.
#[derive(Clone)]
pub struct Ports {
    pub integrations: Arc<dyn IntegrationStore>,
    pub catalog: Arc<dyn CatalogStore>,
    pub runs: Arc<dyn RunStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub signing_key: Arc<dyn SigningKeySource>,
    pub queue: Arc<dyn SyncQueue>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub clock: Arc<dyn Clock>,
}
