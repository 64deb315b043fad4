//! Pure types and rules. Everything here is parsed once at the edge and trusted afterwards.

mod base_url;
mod catalog;
mod ids;
mod integration;
mod secrets;
mod timestamp;

pub use base_url::{BaseUrl, InvalidBaseUrl};
pub use catalog::{
    Activity, ActivityState, ExternalSync, MAX_REPORTED_REJECTIONS, Price, RUN_RETENTION_DAYS, RUNS_SHOWN, Rejection, RunOutcome,
    RunTrigger, Slot, SlotStatus, SyncCounts, SyncRun, UnitPrice, Variation, VariationPricing, VariationRef, VariationSync,
};
pub use ids::{IntegrationId, InvalidObjectId, ObjectId, PartnerId};
pub use integration::{
    AdminPatch, AuthType, Creator, DOWN_AFTER_FAILURES, Health, HealthStatus, HealthTransition, Integration, IntegrationPatch,
    IntegrationRecord, Lease, NewIntegration, SyncControl, SyncState, SyncStatus, UnknownEnumValue,
};
pub use secrets::{AuthKey, InvalidAuthKey, WebhookSecret, WebhookSecretDigest};
pub use timestamp::{InvalidTimestamp, Timestamp};
