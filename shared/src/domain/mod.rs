//! Pure types and rules. Everything here is parsed once at the edge and trusted afterwards.

mod base_url;
mod ids;
mod integration;
mod secrets;
mod timestamp;

pub use base_url::{BaseUrl, InvalidBaseUrl};
pub use ids::{IntegrationId, InvalidObjectId, ObjectId, PartnerId};
pub use integration::{
    AdminPatch, AuthType, Creator, DOWN_AFTER_FAILURES, Health, HealthStatus, HealthTransition, Integration, IntegrationPatch,
    IntegrationRecord, NewIntegration, SyncState, SyncStatus, UnknownEnumValue,
};
pub use secrets::{AuthKey, InvalidAuthKey, WebhookSecret, WebhookSecretDigest};
pub use timestamp::{InvalidTimestamp, Timestamp};
