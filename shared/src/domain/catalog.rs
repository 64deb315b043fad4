//! Seyaha's copy of a partner catalog: activities (OCTO products), variations (options) with
//! unit pricing, and availability slots; plus the sync run history.

use serde::Serialize;
use serde_with::SerializeDisplay;
use strum::{Display, EnumString, IntoStaticStr, VariantNames};

use super::{ContentHash, IntegrationId, LocalDateTime, RunId, Timestamp};

/// The OCTO ids an activity came from; notify matches on them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ExternalSync {
    pub external_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VariationSync {
    pub external_option_id: String,
}

/// A price in minor units (`retail / 10^currency_precision`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Price {
    pub retail: i64,
    pub currency: Option<String>,
    pub currency_precision: Option<u32>,
}

/// One guest type of a variation (`ADULT`, `CHILD`, ...) with its "from" price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnitPrice {
    #[serde(rename = "type")]
    pub unit_type: String,
    pub label: Option<String>,
    pub price: Option<Price>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VariationPricing {
    pub units: Vec<UnitPrice>,
    /// The option's own "from" price when the product is priced per booking.
    pub per_booking: Option<Price>,
}

/// An OCTO option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Variation {
    pub title: String,
    pub external_sync: VariationSync,
    pub pricing: VariationPricing,
}

/// An OCTO product, keyed by its `internalName` (the dedup key across syncs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    #[serde(rename = "internalName")]
    pub internal_name: String,
    pub activity_title: String,
    pub external_sync: ExternalSync,
    pub variations: Vec<Variation>,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    /// SHA-256 of the product's canonical JSON: the diff compares these.
    pub content_hash: ContentHash,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

/// What the diff needs to know about a stored activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityState {
    pub internal_name: String,
    pub content_hash: ContentHash,
    pub is_active: bool,
    /// Its size as JSON ([`Activity::stored_bytes`]); 0 for an activity stored before sizes
    /// were recorded (DynamoDB) until it is written again.
    pub stored_bytes: u64,
    /// When it last changed: for an inactive activity, when it was deactivated.
    pub updated_at: Timestamp,
}

impl Activity {
    /// Its size as JSON, the measure of the per-integration byte cap and of a catalog page
    /// (the API answers activities in this form).
    pub fn stored_bytes(&self) -> u64 {
        serde_json::to_vec(self).map_or(u64::MAX, |json| json.len() as u64)
    }
}

/// What one integration stores of its catalog, active and inactive activities alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatalogUsage {
    pub activities: u64,
    pub bytes: u64,
}

/// The most one integration may store, and how long a deactivated activity is kept. The cap
/// counts inactive activities too (they are stored): a partner renaming its whole catalog on
/// every call fills it, and the activities past it are rejected with [`CatalogLimits::refusal`]
/// until the retention has removed the deactivated ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogLimits {
    pub max_activities: u64,
    pub max_bytes: u64,
    pub inactive_retention: std::time::Duration,
}

impl Default for CatalogLimits {
    fn default() -> Self {
        Self {
            max_activities: 200_000,
            max_bytes: 1 << 30,
            inactive_retention: std::time::Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl CatalogLimits {
    /// No cap (the one-shot diff of tests and benches).
    pub fn unlimited() -> Self {
        Self {
            max_activities: u64::MAX,
            max_bytes: u64::MAX,
            ..Self::default()
        }
    }

    /// Why an activity of `bytes` that adds `new_activities` (0 or 1) to `usage` may not be
    /// stored, if it may not.
    pub fn refusal(
        &self,
        usage: CatalogUsage,
        new_activities: u64,
        added_bytes: u64,
    ) -> Option<String> {
        let retention_days = self.inactive_retention.as_secs() / (24 * 3600);
        if new_activities > 0 && usage.activities + new_activities > self.max_activities {
            return Some(format!(
                "catalog limit: this integration already stores {} activities, the most it may (deactivated ones count until they are removed, {retention_days} days after deactivation)",
                usage.activities
            ));
        }
        if added_bytes > 0 && usage.bytes.saturating_add(added_bytes) > self.max_bytes {
            return Some(format!(
                "catalog limit: storing it would take this integration's catalog past {} bytes (it stores {}; deactivated activities count until they are removed, {retention_days} days after deactivation)",
                self.max_bytes, usage.bytes
            ));
        }
        None
    }

    /// Whether an activity deactivated at `updated_at` is due for removal at `now`.
    pub fn expired(&self, state: &ActivityState, now: Timestamp) -> bool {
        !state.is_active
            && state
                .updated_at
                .plus_millis(self.inactive_retention.as_millis() as i64)
                <= now
    }
}

/// What a single-product sync and an availability pull need of one product's stored activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductActivity {
    pub internal_name: String,
    pub content_hash: ContentHash,
    pub is_active: bool,
    /// The OCTO option ids of its variations.
    pub option_ids: Vec<String>,
    /// Its size as the store measures it (`ActivityState::stored_bytes`), read with it rather
    /// than computed again.
    pub stored_bytes: u64,
}

impl ProductActivity {
    /// What a store read of `activity`, `stored_bytes` long, gives the core.
    pub fn of(activity: &Activity, stored_bytes: u64) -> Self {
        Self {
            internal_name: activity.internal_name.clone(),
            content_hash: activity.content_hash,
            is_active: activity.is_active,
            option_ids: activity
                .variations
                .iter()
                .map(|variation| variation.external_sync.external_option_id.clone())
                .collect(),
            stored_bytes,
        }
    }
}

/// OCTO availability status.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Display,
    EnumString,
    VariantNames,
    SerializeDisplay,
    utoipa::ToSchema,
)]
#[schema(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum SlotStatus {
    Available,
    Freesale,
    Limited,
    SoldOut,
    Closed,
}

impl SlotStatus {
    pub fn parse(s: &str) -> Result<Self, super::UnknownEnumValue> {
        super::integration::parse_enum(s)
    }
}

/// One bookable time slot of a variation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Slot {
    #[serde(rename = "productId")]
    pub product_id: String,
    #[serde(rename = "optionId")]
    pub option_id: String,
    #[serde(rename = "availabilityId")]
    pub availability_id: String,
    /// As the partner sent it (RFC 3339 with the product's offset).
    #[serde(rename = "localDateTimeStart")]
    pub local_date_time_start: LocalDateTime,
    pub status: Option<SlotStatus>,
    pub vacancies: Option<u64>,
    pub capacity: Option<u64>,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

/// Where a variation lives, as found by its OCTO ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariationRef {
    pub internal_name: String,
    pub activity_active: bool,
}

/// What started a sync run.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Display,
    EnumString,
    IntoStaticStr,
    VariantNames,
    SerializeDisplay,
    utoipa::ToSchema,
)]
#[schema(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunTrigger {
    Webhook,
    Nightly,
    Fallback,
    Admin,
    FollowUp,
    Recovery,
    Handoff,
    /// One product, after the partner's `PRODUCT_UPDATE` notification.
    ProductUpdate,
    /// A product's availability over some dates (`POST /availability`).
    AvailabilityPull,
    /// Not a sync: the integration became DOWN and its catalog was deactivated.
    HealthDown,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Display,
    EnumString,
    IntoStaticStr,
    VariantNames,
    SerializeDisplay,
    utoipa::ToSchema,
)]
#[schema(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunOutcome {
    Synced,
    Skipped,
    Error,
    Queued,
    /// DOWN deactivated the catalog (`deactivated` says how many activities, `error` why).
    Deactivated,
}

/// Counts reported by a sync: `synced` = products accepted from the payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncCounts {
    pub synced: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub rejected: u64,
}

impl std::ops::AddAssign for SyncCounts {
    /// The counts of several runs together (a pull job serving several pulls).
    fn add_assign(&mut self, other: Self) {
        self.synced += other.synced;
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.deactivated += other.deactivated;
        self.rejected += other.rejected;
    }
}

/// A product the sync refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    /// Position in the `GET /products` array.
    pub index: usize,
    #[serde(rename = "productId")]
    pub product_id: Option<String>,
    #[serde(rename = "internalName")]
    pub internal_name: Option<String>,
    pub reason: String,
}

/// One entry of the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub run_id: RunId,
    pub integration_id: IntegrationId,
    pub trigger: RunTrigger,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub outcome: RunOutcome,
    #[serde(flatten)]
    pub counts: SyncCounts,
    pub hash: Option<ContentHash>,
    pub error: Option<String>,
    /// At most [`MAX_REPORTED_REJECTIONS`] entries.
    pub rejections: Vec<Rejection>,
    /// When the record may be forgotten (TTL).
    pub expires_at: Timestamp,
}

/// Run records are kept this long.
pub const RUN_RETENTION_DAYS: i64 = 30;
/// sync-log shows this many runs.
pub const RUNS_SHOWN: usize = 20;
/// Rejections listed per run (the count is always complete).
pub const MAX_REPORTED_REJECTIONS: usize = 50;

/// What an inbound OCTO event (`POST /{id}/octo/events`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OctoEvent {
    /// `availability_update` delivery: one slot, applied like a notify.
    AvailabilityUpdate(AvailabilityUpdate),
    /// `PRODUCT_UPDATE`: sync that one product.
    ProductUpdate { product_id: String },
    /// `AVAILABILITY_UPDATE` (a product over dates) and `booking_update` (one option on one
    /// day): pull that availability.
    AvailabilityChanged(super::AvailabilityPull),
    /// Nothing Seyaha acts on (an unknown type, a `BOOKING_UPDATE` with only a booking id).
    Ignored { what: String },
}

/// What an inbound OCTO event led to: the `action` of its 202.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    /// An `availability_update` stored its slot.
    SlotUpdated,
    /// An `availability_update` for a product Seyaha does not hold: a full sync was requested.
    SyncRequested,
    /// A `PRODUCT_UPDATE`: that product's sync is queued.
    ProductSyncQueued,
    /// An `AVAILABILITY_UPDATE` or `booking_update`: an availability pull is queued.
    AvailabilityRefreshQueued,
    /// Nothing to do: an unknown type or event, or one not acted on yet.
    Ignored,
}

/// A validated single-slot availability update (from notify, in any accepted shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailabilityUpdate {
    pub product_id: String,
    pub option_id: String,
    pub availability_id: String,
    pub local_date_time_start: LocalDateTime,
    pub status: Option<SlotStatus>,
    pub vacancies: Option<u64>,
    pub capacity: Option<u64>,
}
