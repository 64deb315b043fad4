//! The records both stores persist, apart from the API's types: their field names and enum
//! spellings are the storage format, frozen here, so renaming anything on the wire changes no
//! stored data. Version 1 data (written when stores saved the API structs themselves) has
//! exactly this shape; `tests/fixtures/store-v1` keeps a copy that every test run loads.
//!
//! The redb store saves these as JSON; the DynamoDB store as items (with its keys added).

use serde::{Deserialize, Serialize};

use crate::domain::{
    Activity, AuthType, AvailabilityPull, BaseUrl, CatalogUsage, Channel, ContentHash,
    ExternalSync, Health, HealthStatus, Integration, IntegrationId, IntegrationRecord, Lease,
    LocalDateTime, NotificationMode, Notifications, PartnerId, PreviousWebhookSecret, Price,
    Rejection, RunId, RunOutcome, RunTrigger, Slot, SlotStatus, SyncControl, SyncCounts, SyncRun,
    SyncState, SyncStatus, Timestamp, UnitPrice, Variation, VariationPricing, VariationSync,
    WebhookSecretDigest,
};
use crate::ports::{Cursor, FanOutPage, JobWork, Lane, StoreError, SyncJob};

/// Stored attribute names the DynamoDB adapter names in expressions.
pub mod fields {
    pub const INTERNAL_NAME: &str = "internalName";
    pub const CONTENT_HASH: &str = "content_hash";
    pub const IS_ACTIVE: &str = "isActive";
    pub const UPDATED_AT: &str = "updatedAt";
    /// DynamoDB only: the activity's size as JSON (`Activity::stored_bytes`), for the cap.
    pub const STORED_BYTES: &str = "stored_bytes";
}

/// Defines a stored enum with its frozen spellings and the conversions to the domain's.
macro_rules! stored_enum {
    ($stored:ident <=> $domain:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, Serialize, Deserialize)]
        pub enum $stored {
            $(#[serde(rename = $text)] $variant,)*
        }

        impl From<$domain> for $stored {
            fn from(value: $domain) -> Self {
                match value { $($domain::$variant => Self::$variant,)* }
            }
        }

        impl From<$stored> for $domain {
            fn from(value: $stored) -> Self {
                match value { $($stored::$variant => Self::$variant,)* }
            }
        }
    };
}

stored_enum!(StoredAuthType <=> AuthType { Bearer = "bearer", ApiKey = "api_key" });
stored_enum!(StoredSyncStatus <=> SyncStatus { Idle = "idle", Syncing = "syncing", Error = "error" });
stored_enum!(StoredHealthStatus <=> HealthStatus { Healthy = "HEALTHY", Degraded = "DEGRADED", Down = "DOWN" });
stored_enum!(StoredSlotStatus <=> SlotStatus {
    Available = "AVAILABLE", Freesale = "FREESALE", Limited = "LIMITED", SoldOut = "SOLD_OUT", Closed = "CLOSED",
});
stored_enum!(StoredTrigger <=> RunTrigger {
    Webhook = "webhook", Nightly = "nightly", Fallback = "fallback", Admin = "admin", FollowUp = "follow_up", Recovery = "recovery",
    Handoff = "handoff", ProductUpdate = "product_update", AvailabilityPull = "availability_pull", HealthDown = "health_down",
});
stored_enum!(StoredNotificationMode <=> NotificationMode {
    OctoNotifications = "octo_notifications", OctoWebhooks = "octo_webhooks", None = "none", Error = "error",
});

// `stored_enum!` takes no attributes, so the default is spelled out.
#[allow(clippy::derivable_impls)]
impl Default for StoredNotificationMode {
    fn default() -> Self {
        Self::None
    }
}

stored_enum!(StoredOutcome <=> RunOutcome {
    Synced = "synced", Skipped = "skipped", Error = "error", Queued = "queued", Deactivated = "deactivated",
});

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredIntegration {
    #[serde(rename = "_id")]
    pub id: IntegrationId,
    pub partner_id: PartnerId,
    pub base_url: BaseUrl,
    pub auth_type: StoredAuthType,
    pub handles_ticket_delivery: bool,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    #[serde(rename = "isApproved")]
    pub is_approved: bool,
    pub sync: StoredSyncState,
    pub health: StoredHealth,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
    /// 64 hex characters: SHA-256 of the webhook secret (the secret itself is never stored).
    pub webhook_secret_digest: String,
    /// The secret the last rotation replaced, while it may still be accepted. Added after
    /// version 1: absent there (and in every record never rotated), and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_webhook_secret: Option<StoredPreviousSecret>,
    /// Added with push subscriptions: absent in older records, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_secret_digest: Option<String>,
    /// Added with credential versions: absent before (version 0), and left out while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub credential_version: u64,
    #[serde(default, skip_serializing_if = "StoredNotifications::is_unset")]
    pub notifications: StoredNotifications,
    /// Added with per-integration webhook limits: absent in older records, left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_rate_per_minute: Option<u32>,
    #[serde(default)]
    pub sync_control: StoredSyncControl,
    pub version: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StoredNotifications {
    pub mode: StoredNotificationMode,
    #[serde(default)]
    pub subscription_ids: Vec<String>,
    #[serde(default)]
    pub subscribed_at: Option<Timestamp>,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl StoredNotifications {
    fn is_unset(&self) -> bool {
        matches!(self.mode, StoredNotificationMode::None)
            && self.subscription_ids.is_empty()
            && self.subscribed_at.is_none()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredPreviousSecret {
    /// 64 hex characters: SHA-256 of the replaced secret.
    pub digest: String,
    pub valid_until: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredSyncState {
    pub status: StoredSyncStatus,
    pub last_sync_at: Option<Timestamp>,
    pub last_sync_hash: Option<ContentHash>,
    pub error_message: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredHealth {
    pub status: StoredHealthStatus,
    pub last_probe_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub degraded_since: Option<Timestamp>,
    pub down_since: Option<Timestamp>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct StoredSyncControl {
    pub lease: Option<StoredLease>,
    pub requested_at: Option<Timestamp>,
    #[serde(default)]
    pub force_full_sync: bool,
    /// Added after version 1: absent there, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_out: Option<RunId>,
    /// Added after version 1: absent there, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_until: Option<Timestamp>,
    /// Added with coalesced availability pulls: absent before, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulls_requested_at: Option<Timestamp>,
    /// Added with the per-integration catalog cap: absent before, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_usage: Option<StoredCatalogUsage>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StoredCatalogUsage {
    pub activities: u64,
    pub bytes: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredLease {
    pub run_id: RunId,
    pub expires_at: Timestamp,
    /// Added after version 1: absent there, and left out when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<Timestamp>,
}

impl From<&IntegrationRecord> for StoredIntegration {
    fn from(record: &IntegrationRecord) -> Self {
        let i = &record.integration;
        let control = &record.sync_control;
        Self {
            id: i.id,
            partner_id: i.partner_id,
            base_url: i.base_url.clone(),
            auth_type: i.auth_type.into(),
            handles_ticket_delivery: i.handles_ticket_delivery,
            is_active: i.is_active,
            is_approved: i.is_approved,
            sync: StoredSyncState {
                status: i.sync.status.into(),
                last_sync_at: i.sync.last_sync_at,
                last_sync_hash: i.sync.last_sync_hash,
                error_message: i.sync.error_message.clone(),
            },
            health: StoredHealth {
                status: i.health.status.into(),
                last_probe_at: i.health.last_probe_at,
                last_success_at: i.health.last_success_at,
                consecutive_failures: i.health.consecutive_failures,
                degraded_since: i.health.degraded_since,
                down_since: i.health.down_since,
            },
            created_at: i.created_at,
            updated_at: i.updated_at,
            webhook_secret_digest: record.webhook_secret_digest.to_hex(),
            previous_webhook_secret: record.previous_webhook_secret.map(|previous| {
                StoredPreviousSecret {
                    digest: previous.digest.to_hex(),
                    valid_until: previous.valid_until,
                }
            }),
            delivery_secret_digest: record.delivery_secret_digest.map(|digest| digest.to_hex()),
            credential_version: record.credential_version,
            notifications: StoredNotifications {
                mode: i.notifications.mode.into(),
                subscription_ids: i.notifications.subscription_ids.clone(),
                subscribed_at: i.notifications.subscribed_at,
                error_message: i.notifications.error_message.clone(),
            },
            webhook_rate_per_minute: i.webhook_rate_per_minute,
            sync_control: StoredSyncControl {
                lease: control.lease.as_ref().map(|lease| StoredLease {
                    run_id: lease.run_id,
                    expires_at: lease.expires_at,
                    covers: lease.covers,
                }),
                requested_at: control.requested_at,
                force_full_sync: control.force_full_sync,
                fan_out: control.fan_out,
                deferred_until: control.deferred_until,
                pulls_requested_at: control.pulls_requested_at,
                catalog_usage: control.catalog_usage.map(|usage| StoredCatalogUsage {
                    activities: usage.activities,
                    bytes: usage.bytes,
                }),
            },
            version: record.version,
        }
    }
}

impl TryFrom<StoredIntegration> for IntegrationRecord {
    type Error = StoreError;

    fn try_from(stored: StoredIntegration) -> Result<Self, StoreError> {
        let corrupt = |what: &str, e: hex::FromHexError| {
            StoreError::unavailable(format!("corrupt {what} of integration {}: {e}", stored.id))
        };
        let digest = WebhookSecretDigest::from_hex(&stored.webhook_secret_digest)
            .map_err(|e| corrupt("webhook secret digest", e))?;
        let previous_webhook_secret = match &stored.previous_webhook_secret {
            Some(previous) => Some(PreviousWebhookSecret {
                digest: WebhookSecretDigest::from_hex(&previous.digest)
                    .map_err(|e| corrupt("previous webhook secret digest", e))?,
                valid_until: previous.valid_until,
            }),
            None => None,
        };
        let integration = Integration {
            id: stored.id,
            partner_id: stored.partner_id,
            base_url: stored.base_url,
            auth_type: stored.auth_type.into(),
            handles_ticket_delivery: stored.handles_ticket_delivery,
            is_active: stored.is_active,
            is_approved: stored.is_approved,
            sync: SyncState {
                status: stored.sync.status.into(),
                last_sync_at: stored.sync.last_sync_at,
                last_sync_hash: stored.sync.last_sync_hash,
                error_message: stored.sync.error_message,
            },
            health: Health {
                status: stored.health.status.into(),
                last_probe_at: stored.health.last_probe_at,
                last_success_at: stored.health.last_success_at,
                consecutive_failures: stored.health.consecutive_failures,
                degraded_since: stored.health.degraded_since,
                down_since: stored.health.down_since,
            },
            notifications: Notifications {
                mode: stored.notifications.mode.into(),
                subscription_ids: stored.notifications.subscription_ids,
                subscribed_at: stored.notifications.subscribed_at,
                error_message: stored.notifications.error_message,
            },
            webhook_rate_per_minute: stored.webhook_rate_per_minute,
            created_at: stored.created_at,
            updated_at: stored.updated_at,
        };
        let delivery_secret_digest = match &stored.delivery_secret_digest {
            Some(hex) => Some(
                WebhookSecretDigest::from_hex(hex)
                    .map_err(|e| corrupt("delivery secret digest", e))?,
            ),
            None => None,
        };
        let control = stored.sync_control;
        Ok(Self {
            integration,
            webhook_secret_digest: digest,
            previous_webhook_secret,
            delivery_secret_digest,
            credential_version: stored.credential_version,
            sync_control: SyncControl {
                lease: control.lease.map(|lease| Lease {
                    run_id: lease.run_id,
                    expires_at: lease.expires_at,
                    covers: lease.covers,
                }),
                requested_at: control.requested_at,
                force_full_sync: control.force_full_sync,
                fan_out: control.fan_out,
                deferred_until: control.deferred_until,
                pulls_requested_at: control.pulls_requested_at,
                catalog_usage: control.catalog_usage.map(|usage| CatalogUsage {
                    activities: usage.activities,
                    bytes: usage.bytes,
                }),
            },
            version: stored.version,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredActivity {
    #[serde(rename = "internalName")]
    pub internal_name: String,
    pub activity_title: String,
    pub external_sync: StoredExternalSync,
    pub variations: Vec<StoredVariation>,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    pub content_hash: ContentHash,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredExternalSync {
    pub external_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredVariation {
    pub title: String,
    pub external_sync: StoredVariationSync,
    pub pricing: StoredPricing,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredVariationSync {
    pub external_option_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredPricing {
    pub units: Vec<StoredUnitPrice>,
    pub per_booking: Option<StoredPrice>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredUnitPrice {
    #[serde(rename = "type")]
    pub unit_type: String,
    pub label: Option<String>,
    pub price: Option<StoredPrice>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredPrice {
    pub retail: i64,
    pub currency: Option<String>,
    pub currency_precision: Option<u32>,
}

impl From<&Price> for StoredPrice {
    fn from(price: &Price) -> Self {
        Self {
            retail: price.retail,
            currency: price.currency.clone(),
            currency_precision: price.currency_precision,
        }
    }
}

impl From<StoredPrice> for Price {
    fn from(price: StoredPrice) -> Self {
        Self {
            retail: price.retail,
            currency: price.currency,
            currency_precision: price.currency_precision,
        }
    }
}

impl From<&Activity> for StoredActivity {
    fn from(activity: &Activity) -> Self {
        Self {
            internal_name: activity.internal_name.clone(),
            activity_title: activity.activity_title.clone(),
            external_sync: StoredExternalSync {
                external_id: activity.external_sync.external_id.clone(),
            },
            variations: activity
                .variations
                .iter()
                .map(|variation| StoredVariation {
                    title: variation.title.clone(),
                    external_sync: StoredVariationSync {
                        external_option_id: variation.external_sync.external_option_id.clone(),
                    },
                    pricing: StoredPricing {
                        units: variation
                            .pricing
                            .units
                            .iter()
                            .map(|unit| StoredUnitPrice {
                                unit_type: unit.unit_type.clone(),
                                label: unit.label.clone(),
                                price: unit.price.as_ref().map(StoredPrice::from),
                            })
                            .collect(),
                        per_booking: variation
                            .pricing
                            .per_booking
                            .as_ref()
                            .map(StoredPrice::from),
                    },
                })
                .collect(),
            is_active: activity.is_active,
            content_hash: activity.content_hash,
            updated_at: activity.updated_at,
        }
    }
}

impl From<StoredActivity> for Activity {
    fn from(stored: StoredActivity) -> Self {
        Self {
            internal_name: stored.internal_name,
            activity_title: stored.activity_title,
            external_sync: ExternalSync {
                external_id: stored.external_sync.external_id,
            },
            variations: stored
                .variations
                .into_iter()
                .map(|variation| Variation {
                    title: variation.title,
                    external_sync: VariationSync {
                        external_option_id: variation.external_sync.external_option_id,
                    },
                    pricing: VariationPricing {
                        units: variation
                            .pricing
                            .units
                            .into_iter()
                            .map(|unit| UnitPrice {
                                unit_type: unit.unit_type,
                                label: unit.label,
                                price: unit.price.map(Price::from),
                            })
                            .collect(),
                        per_booking: variation.pricing.per_booking.map(Price::from),
                    },
                })
                .collect(),
            is_active: stored.is_active,
            content_hash: stored.content_hash,
            updated_at: stored.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredSlot {
    #[serde(rename = "productId")]
    pub product_id: String,
    #[serde(rename = "optionId")]
    pub option_id: String,
    #[serde(rename = "availabilityId")]
    pub availability_id: String,
    #[serde(rename = "localDateTimeStart")]
    pub local_date_time_start: LocalDateTime,
    pub status: Option<StoredSlotStatus>,
    pub vacancies: Option<u64>,
    pub capacity: Option<u64>,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

impl From<&Slot> for StoredSlot {
    fn from(slot: &Slot) -> Self {
        Self {
            product_id: slot.product_id.clone(),
            option_id: slot.option_id.clone(),
            availability_id: slot.availability_id.clone(),
            local_date_time_start: slot.local_date_time_start.clone(),
            status: slot.status.map(Into::into),
            vacancies: slot.vacancies,
            capacity: slot.capacity,
            updated_at: slot.updated_at,
        }
    }
}

impl From<StoredSlot> for Slot {
    fn from(stored: StoredSlot) -> Self {
        Self {
            product_id: stored.product_id,
            option_id: stored.option_id,
            availability_id: stored.availability_id,
            local_date_time_start: stored.local_date_time_start,
            status: stored.status.map(Into::into),
            vacancies: stored.vacancies,
            capacity: stored.capacity,
            updated_at: stored.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredRun {
    pub run_id: RunId,
    pub integration_id: IntegrationId,
    pub trigger: StoredTrigger,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    pub outcome: StoredOutcome,
    #[serde(flatten)]
    pub counts: StoredCounts,
    pub hash: Option<ContentHash>,
    pub error: Option<String>,
    pub rejections: Vec<StoredRejection>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredCounts {
    pub synced: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deactivated: u64,
    pub rejected: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StoredRejection {
    pub index: usize,
    #[serde(rename = "productId")]
    pub product_id: Option<String>,
    #[serde(rename = "internalName")]
    pub internal_name: Option<String>,
    pub reason: String,
}

impl From<&SyncRun> for StoredRun {
    fn from(run: &SyncRun) -> Self {
        let c = run.counts;
        Self {
            run_id: run.run_id,
            integration_id: run.integration_id,
            trigger: run.trigger.into(),
            started_at: run.started_at,
            duration_ms: run.duration_ms,
            outcome: run.outcome.into(),
            counts: StoredCounts {
                synced: c.synced,
                created: c.created,
                updated: c.updated,
                unchanged: c.unchanged,
                deactivated: c.deactivated,
                rejected: c.rejected,
            },
            hash: run.hash,
            error: run.error.clone(),
            rejections: run
                .rejections
                .iter()
                .map(|r| StoredRejection {
                    index: r.index,
                    product_id: r.product_id.clone(),
                    internal_name: r.internal_name.clone(),
                    reason: r.reason.clone(),
                })
                .collect(),
            expires_at: run.expires_at,
        }
    }
}

impl From<StoredRun> for SyncRun {
    fn from(stored: StoredRun) -> Self {
        let c = stored.counts;
        Self {
            run_id: stored.run_id,
            integration_id: stored.integration_id,
            trigger: stored.trigger.into(),
            started_at: stored.started_at,
            duration_ms: stored.duration_ms,
            outcome: stored.outcome.into(),
            counts: SyncCounts {
                synced: c.synced,
                created: c.created,
                updated: c.updated,
                unchanged: c.unchanged,
                deactivated: c.deactivated,
                rejected: c.rejected,
            },
            hash: stored.hash,
            error: stored.error,
            rejections: stored
                .rejections
                .into_iter()
                .map(|r| Rejection {
                    index: r.index,
                    product_id: r.product_id,
                    internal_name: r.internal_name,
                    reason: r.reason,
                })
                .collect(),
            expires_at: stored.expires_at,
        }
    }
}

/// A queue message body: `{"integration_id": "...", "trigger": "fallback"}`, and for work
/// other than a full sync `"work": {"kind": "product", "product_id": "..."}`. Messages
/// without `work` (all of them before it existed) are full syncs. Added with the fan-out:
/// `"lane": "bulk"` (absent: real-time), `"not_before"` (absent: now), and the
/// `fan_out_page` kind, the one message without `integration_id`.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<IntegrationId>,
    pub trigger: StoredTrigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<StoredWork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lane: Option<StoredLane>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
}

stored_enum!(StoredLane <=> Lane { RealTime = "real_time", Bulk = "bulk" });

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StoredWork {
    Product {
        product_id: String,
    },
    Availability {
        product_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        option_id: Option<String>,
        #[serde(with = "local_date")]
        local_date_start: time::Date,
        #[serde(with = "local_date")]
        local_date_end: time::Date,
    },
    Subscribe,
    Unsubscribe {
        base_url: BaseUrl,
        channel: StoredChannel,
        subscription_ids: Vec<String>,
    },
    /// Added with coalesced pulls: serve the integration's pending pulls.
    PendingPulls,
    FanOutPage {
        fan_out: RunId,
        started_at: Timestamp,
        window_secs: u64,
        /// The store's cursor, opaque; absent on the first page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
}

/// A pending availability pull (DynamoDB item, redb value): what to pull and when it was
/// last asked for. Its key is the pull itself, so asking again replaces it.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredPull {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_id: Option<String>,
    #[serde(with = "local_date")]
    pub local_date_start: time::Date,
    #[serde(with = "local_date")]
    pub local_date_end: time::Date,
    pub requested_at: Timestamp,
}

impl StoredPull {
    pub fn new(pull: &AvailabilityPull, requested_at: Timestamp) -> Self {
        Self {
            product_id: pull.product_id.clone(),
            option_id: pull.option_id.clone(),
            local_date_start: pull.from,
            local_date_end: pull.to,
            requested_at,
        }
    }

    /// The pull's key: `["product","option or empty","from","to"]` (JSON, so no id can be
    /// mistaken for a separator).
    pub fn key(pull: &AvailabilityPull) -> String {
        let option = pull.option_id.as_deref().unwrap_or_default();
        serde_json::to_string(&[
            pull.product_id.as_str(),
            option,
            &crate::domain::format_local_date(pull.from),
            &crate::domain::format_local_date(pull.to),
        ])
        .expect("strings serialize")
    }

    pub fn into_pull(self) -> (AvailabilityPull, Timestamp) {
        let pull = AvailabilityPull {
            product_id: self.product_id,
            option_id: self.option_id,
            from: self.local_date_start,
            to: self.local_date_end,
        };
        (pull, self.requested_at)
    }
}

stored_enum!(StoredChannel <=> Channel { Notifications = "octo_notifications", Webhooks = "octo_webhooks" });

/// Dates in job messages: `YYYY-MM-DD`, as OCTO writes them.
mod local_date {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(date: &time::Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::domain::format_local_date(*date))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<time::Date, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::domain::parse_local_date(&text)
            .ok_or_else(|| serde::de::Error::custom("a date like 2026-07-15"))
    }
}

impl From<&SyncJob> for JobMessage {
    fn from(job: &SyncJob) -> Self {
        let work = match &job.work {
            JobWork::Catalog => None,
            JobWork::Product { product_id } => Some(StoredWork::Product {
                product_id: product_id.clone(),
            }),
            JobWork::Availability(pull) => Some(StoredWork::Availability {
                product_id: pull.product_id.clone(),
                option_id: pull.option_id.clone(),
                local_date_start: pull.from,
                local_date_end: pull.to,
            }),
            JobWork::PendingPulls => Some(StoredWork::PendingPulls),
            JobWork::Subscribe => Some(StoredWork::Subscribe),
            JobWork::Unsubscribe(what) => Some(StoredWork::Unsubscribe {
                base_url: what.base_url.clone(),
                channel: what.channel.into(),
                subscription_ids: what.subscription_ids.clone(),
            }),
            JobWork::FanOutPage(page) => Some(StoredWork::FanOutPage {
                fan_out: page.fan_out,
                started_at: page.started_at,
                window_secs: page.window.as_secs(),
                after: page.after.as_ref().map(|cursor| cursor.as_str().to_owned()),
            }),
        };
        let lane = (job.lane != Lane::RealTime).then_some(job.lane.into());
        Self {
            integration_id: job.integration_id,
            trigger: job.trigger.into(),
            work,
            lane,
            not_before: job.not_before,
        }
    }
}

impl TryFrom<JobMessage> for SyncJob {
    type Error = &'static str;

    fn try_from(message: JobMessage) -> Result<Self, Self::Error> {
        let work = match message.work {
            None => JobWork::Catalog,
            Some(StoredWork::Product { product_id }) => JobWork::Product { product_id },
            Some(StoredWork::Availability {
                product_id,
                option_id,
                local_date_start,
                local_date_end,
            }) => JobWork::Availability(crate::domain::AvailabilityPull {
                product_id,
                option_id,
                from: local_date_start,
                to: local_date_end,
            }),
            Some(StoredWork::PendingPulls) => JobWork::PendingPulls,
            Some(StoredWork::Subscribe) => JobWork::Subscribe,
            Some(StoredWork::Unsubscribe {
                base_url,
                channel,
                subscription_ids,
            }) => JobWork::Unsubscribe(crate::domain::Unsubscribe {
                base_url,
                channel: channel.into(),
                subscription_ids,
            }),
            Some(StoredWork::FanOutPage {
                fan_out,
                started_at,
                window_secs,
                after,
            }) => JobWork::FanOutPage(FanOutPage {
                fan_out,
                started_at,
                window: std::time::Duration::from_secs(window_secs),
                after: after.map(Cursor::new),
            }),
        };
        // Every kind but a fan-out page is about one integration.
        if message.integration_id.is_none() != matches!(work, JobWork::FanOutPage(_)) {
            return Err("integration_id is required for this kind of job, and only for it");
        }
        Ok(Self {
            integration_id: message.integration_id,
            trigger: message.trigger.into(),
            work,
            lane: message.lane.map_or(Lane::RealTime, Lane::from),
            not_before: message.not_before,
        })
    }
}

impl JobMessage {
    pub fn encode(job: &SyncJob) -> String {
        serde_json::to_string(&Self::from(job)).expect("a job message serializes")
    }

    pub fn decode(body: &str) -> Result<SyncJob, serde_json::Error> {
        let message = serde_json::from_str::<Self>(body)?;
        SyncJob::try_from(message).map_err(<serde_json::Error as serde::de::Error>::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuthKey, NewIntegration, Role, WebhookSecret};

    #[test]
    fn job_messages_of_every_kind_round_trip_in_their_wire_form() {
        let id = IntegrationId::generate(1);
        let base_url = BaseUrl::parse("https://octo.example.com").unwrap();
        let day = crate::domain::parse_local_date("2030-07-01").unwrap();
        let pull = crate::domain::AvailabilityPull {
            product_id: "p".into(),
            option_id: None,
            from: day,
            to: day,
        };
        let unsubscribe = crate::domain::Unsubscribe {
            base_url,
            channel: Channel::Webhooks,
            subscription_ids: vec!["w1".into()],
        };
        let (fan_out, started_at) = (
            RunId::generate(1),
            Timestamp::from_unix_millis(1_800_000_000_000),
        );
        let cases = [
            (
                SyncJob::catalog(id, RunTrigger::Fallback),
                serde_json::json!(null),
            ),
            (
                SyncJob::product(id, "p".into()),
                serde_json::json!({"kind": "product", "product_id": "p"}),
            ),
            (
                SyncJob::availability(id, pull),
                serde_json::json!({"kind": "availability", "product_id": "p", "local_date_start": "2030-07-01", "local_date_end": "2030-07-01"}),
            ),
            (
                SyncJob::pending_pulls(id),
                serde_json::json!({"kind": "pending_pulls"}),
            ),
            (
                SyncJob::subscribe(id),
                serde_json::json!({"kind": "subscribe"}),
            ),
            (
                SyncJob::unsubscribe(id, unsubscribe),
                serde_json::json!({"kind": "unsubscribe", "base_url": "https://octo.example.com", "channel": "octo_webhooks", "subscription_ids": ["w1"]}),
            ),
            (
                SyncJob::bulk_catalog(id, RunTrigger::Nightly, None),
                serde_json::json!(null),
            ),
            (
                SyncJob::fan_out_page(
                    RunTrigger::Nightly,
                    FanOutPage {
                        fan_out,
                        started_at,
                        window: std::time::Duration::from_secs(3600),
                        after: Some(Cursor::new("c")),
                    },
                ),
                serde_json::json!({"kind": "fan_out_page", "fan_out": fan_out.to_string(), "started_at": "2027-01-15T08:00:00.000Z", "window_secs": 3600, "after": "c"}),
            ),
        ];
        for (job, work) in cases {
            let text = JobMessage::encode(&job);
            let wire: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(
                wire.get("work").cloned().unwrap_or_default(),
                work,
                "{text}"
            );
            assert_eq!(
                work.get("kind")
                    .and_then(|k| k.as_str())
                    .unwrap_or("catalog"),
                job.work.kind(),
                "the metric's job_kind"
            );
            assert_eq!(JobMessage::decode(&text).unwrap(), job);
            // Only bulk jobs say their lane; real-time ones keep the wire form they had.
            assert_eq!(wire.get("lane").is_some(), job.lane == Lane::Bulk, "{text}");
        }
    }

    #[test]
    fn a_deferred_bulk_job_keeps_its_due_time_and_lane_and_a_job_without_its_integration_is_refused()
     {
        let due = Timestamp::from_unix_millis(1_800_000_000_000);
        let job = SyncJob::bulk_catalog(IntegrationId::generate(1), RunTrigger::Admin, Some(due));
        let wire: serde_json::Value = serde_json::from_str(&JobMessage::encode(&job)).unwrap();
        assert_eq!(
            (&wire["lane"], &wire["not_before"]),
            (
                &serde_json::json!("bulk"),
                &serde_json::json!("2027-01-15T08:00:00.000Z")
            )
        );
        assert_eq!(JobMessage::decode(&wire.to_string()).unwrap(), job);
        let error = JobMessage::decode(r#"{"trigger": "nightly"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("integration_id is required"), "{error}");
    }

    fn record() -> IntegrationRecord {
        let now = Timestamp::from_unix_millis(1_800_000_000_000);
        let new = NewIntegration {
            base_url: BaseUrl::parse("https://octo.example.com").unwrap(),
            auth_type: AuthType::Bearer,
            auth_key: AuthKey::parse("k").unwrap(),
            handles_ticket_delivery: false,
        };
        let integration = Integration::new(
            IntegrationId::generate(1),
            PartnerId::generate(1),
            &new,
            Role::Partner,
            now,
        );
        IntegrationRecord {
            integration,
            webhook_secret_digest: WebhookSecret::generate().digest(),
            previous_webhook_secret: None,
            delivery_secret_digest: None,
            credential_version: 0,
            sync_control: SyncControl::default(),
            version: 3,
        }
    }

    fn round_trip(record: &IntegrationRecord) -> (serde_json::Value, IntegrationRecord) {
        let json = serde_json::to_value(StoredIntegration::from(record)).unwrap();
        let back = serde_json::from_value::<StoredIntegration>(json.clone())
            .unwrap()
            .try_into()
            .unwrap();
        (json, back)
    }

    #[test]
    fn the_previous_webhook_secret_is_stored_as_digest_and_expiry_only_when_there_is_one() {
        let never_rotated = record();
        let (json, back) = round_trip(&never_rotated);
        assert!(
            json.get("previous_webhook_secret").is_none(),
            "records never rotated keep the version 1 shape: {json}"
        );
        assert_eq!(back, never_rotated);

        let old = WebhookSecret::generate();
        let mut rotated = record();
        rotated.webhook_secret_digest = old.digest();
        let valid_until = Timestamp::from_unix_millis(1_800_086_400_000);
        rotated.rotate_webhook_secret(
            WebhookSecret::generate().digest(),
            valid_until,
            Timestamp::from_unix_millis(1_800_000_000_001),
        );
        let (json, back) = round_trip(&rotated);
        assert_eq!(
            json["previous_webhook_secret"],
            serde_json::json!({"digest": old.digest().to_hex(), "valid_until": "2027-01-16T08:00:00.000Z"})
        );
        assert!(
            !json.to_string().contains(old.expose()),
            "only the digest is stored"
        );
        assert_eq!(back, rotated);
    }

    #[test]
    fn a_corrupt_previous_digest_is_a_store_error_not_a_panic() {
        let mut rotated = record();
        rotated.rotate_webhook_secret(
            WebhookSecret::generate().digest(),
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(0),
        );
        let mut json = serde_json::to_value(StoredIntegration::from(&rotated)).unwrap();
        json["previous_webhook_secret"]["digest"] = serde_json::json!("not hex");
        let stored = serde_json::from_value::<StoredIntegration>(json).unwrap();
        let error = IntegrationRecord::try_from(stored).unwrap_err().to_string();
        assert!(
            error.contains("corrupt previous webhook secret digest"),
            "{error}"
        );
    }
}
