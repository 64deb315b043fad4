//! Pure types and rules. Everything here is parsed once at the edge and trusted afterwards.

mod actors;
mod base_url;
mod catalog;
mod ids;
mod integration;
mod secrets;
mod timestamp;
mod tokens;
mod values;

pub use actors::{Principal, Role};
pub use base_url::{BaseUrl, InvalidBaseUrl};
pub use catalog::{
    Activity, ActivityState, AvailabilityUpdate, CatalogLimits, CatalogUsage, EventAction,
    ExternalSync, MAX_REPORTED_REJECTIONS, OctoEvent, Price, ProductActivity, RUN_RETENTION_DAYS,
    RUNS_SHOWN, Rejection, RunOutcome, RunTrigger, Slot, SlotStatus, SyncCounts, SyncRun,
    UnitPrice, Variation, VariationPricing, VariationRef, VariationSync,
};
pub use ids::{IntegrationId, InvalidObjectId, ObjectId, PartnerId, RunId};
pub use integration::{
    AdminPatch, AuthType, CHANNELS, Channel, DOWN_AFTER_FAILURES, Health, HealthStatus,
    HealthTransition, Integration, IntegrationPatch, IntegrationRecord, Lease,
    MAX_WEBHOOK_RATE_PER_MINUTE, NewIntegration, NotificationMode, Notifications, SyncControl,
    SyncState, SyncStatus, UnknownEnumValue, Unsubscribe,
};
pub use secrets::{
    AUTH_KEY_MAX_LEN, AuthKey, InvalidAuthKey, PreviousWebhookSecret, WebhookSecret,
    WebhookSecretDigest,
};
pub use timestamp::{InvalidTimestamp, Timestamp};
pub use tokens::{PublicKey, TokenRules, TokenScope};
pub use values::{
    API_PREFIX, AvailabilityPull, ContentHash, InvalidContentHash, InvalidLocalDateTime,
    LocalDateTime, MAX_COUNT, format_local_date, parse_local_date,
};

#[cfg(test)]
mod parser_properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn parsers_never_panic(input in "\\PC{0,80}") {
            let _ = BaseUrl::parse(&input);
            let _ = ObjectId::parse(&input);
            let _ = Timestamp::parse(&input);
            let _ = AuthKey::parse(&input);
        }

        #[test]
        fn base_urls_round_trip(host in "[a-z]{1,10}(\\.[a-z]{2,5}){1,2}", path in "(/[a-z0-9_-]{1,8}){0,3}", slashes in "/{0,3}") {
            let url = BaseUrl::parse(&format!("https://{host}{path}{slashes}")).unwrap();
            prop_assert!(!url.as_str().ends_with('/'));
            prop_assert_eq!(BaseUrl::parse(url.as_str()).unwrap(), url.clone());
            prop_assert_eq!(url.endpoint("products"), format!("{}/products", url.as_str()));
        }

        #[test]
        fn object_ids_round_trip(bytes in prop::array::uniform12(any::<u8>())) {
            let text = hex::encode(bytes);
            prop_assert_eq!(ObjectId::parse(&text).unwrap().to_string(), text);
        }
    }
}
