//! The integration resource: what a partner registers and what we track about it.

use serde::Serialize;
use serde_with::SerializeDisplay;
use strum::{Display, EnumString, VariantNames};

use super::secrets::AuthKey;
use super::{
    BaseUrl, ContentHash, IntegrationId, PartnerId, PreviousWebhookSecret, Role, RunId, Timestamp,
    WebhookSecretDigest,
};

/// Parses a wire enum by its one spelling (strum's), or explains what is allowed.
pub(crate) fn parse_enum<T: std::str::FromStr + VariantNames>(
    s: &str,
) -> Result<T, UnknownEnumValue> {
    s.parse().map_err(|_| UnknownEnumValue(T::VARIANTS))
}

/// How Seyaha authenticates to the partner's OCTO API.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Display,
    EnumString,
    VariantNames,
    SerializeDisplay,
    utoipa::ToSchema,
)]
#[schema(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AuthType {
    /// `Authorization: Bearer <auth_key>` (the OCTO standard).
    Bearer,
    /// `Authorization: <auth_key>`, the raw key without a scheme.
    ApiKey,
}

impl AuthType {
    pub fn parse(s: &str) -> Result<Self, UnknownEnumValue> {
        parse_enum(s)
    }

    /// The `Authorization` header value for a credential of this type.
    pub fn authorization_value(self, key: &str) -> String {
        match self {
            Self::Bearer => format!("Bearer {key}"),
            Self::ApiKey => key.to_owned(),
        }
    }
}

/// The text completes "field: ...", e.g. "auth_type: must be one of bearer, api_key".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of {}", .0.join(", "))]
pub struct UnknownEnumValue(pub &'static [&'static str]);

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
#[schema(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SyncStatus {
    /// Nothing running; the last sync (if any) succeeded.
    Idle,
    Syncing,
    /// The last sync failed; see `error_message`.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncState {
    pub status: SyncStatus,
    pub last_sync_at: Option<Timestamp>,
    pub last_sync_hash: Option<ContentHash>,
    pub error_message: Option<String>,
}

impl SyncState {
    pub fn new() -> Self {
        Self {
            status: SyncStatus::Idle,
            last_sync_at: None,
            last_sync_hash: None,
            error_message: None,
        }
    }
}

impl Default for SyncState {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Display,
    EnumString,
    VariantNames,
    SerializeDisplay,
    utoipa::ToSchema,
)]
#[schema(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum HealthStatus {
    Healthy,
    Degraded,
    Down,
}

impl HealthStatus {
    pub fn parse(s: &str) -> Result<Self, UnknownEnumValue> {
        parse_enum(s)
    }
}

/// Consecutive failed probes after which an integration is DOWN.
pub const DOWN_AFTER_FAILURES: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: HealthStatus,
    pub last_probe_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub degraded_since: Option<Timestamp>,
    pub down_since: Option<Timestamp>,
}

/// What a probe result did to the health state; callers act on the transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthTransition {
    Unchanged,
    BecameDegraded,
    BecameDown,
    /// Back to HEALTHY from DOWN: the catalog must be re-synced in full and reactivated.
    RecoveredFromDown,
    RecoveredFromDegraded,
}

impl Health {
    pub fn new() -> Self {
        Self {
            status: HealthStatus::Healthy,
            last_probe_at: None,
            last_success_at: None,
            consecutive_failures: 0,
            degraded_since: None,
            down_since: None,
        }
    }

    pub fn record_success(&mut self, now: Timestamp) -> HealthTransition {
        let transition = match self.status {
            HealthStatus::Healthy => HealthTransition::Unchanged,
            HealthStatus::Degraded => HealthTransition::RecoveredFromDegraded,
            HealthStatus::Down => HealthTransition::RecoveredFromDown,
        };
        *self = Self {
            status: HealthStatus::Healthy,
            last_probe_at: Some(now),
            last_success_at: Some(now),
            ..Self::new()
        };
        transition
    }

    pub fn record_failure(&mut self, now: Timestamp) -> HealthTransition {
        self.last_probe_at = Some(now);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match self.status {
            HealthStatus::Down => HealthTransition::Unchanged,
            _ if self.consecutive_failures >= DOWN_AFTER_FAILURES => {
                self.status = HealthStatus::Down;
                self.down_since = Some(now);
                self.degraded_since.get_or_insert(now);
                HealthTransition::BecameDown
            }
            HealthStatus::Healthy => {
                self.status = HealthStatus::Degraded;
                self.degraded_since = Some(now);
                HealthTransition::BecameDegraded
            }
            HealthStatus::Degraded => HealthTransition::Unchanged,
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

/// The integration document. Its serde names are the wire contract (the API serializes it);
/// storage has its own records (`adapters::stored`), so renaming a wire field changes no data.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Integration {
    #[serde(rename = "_id")]
    pub id: IntegrationId,
    pub partner_id: PartnerId,
    pub base_url: BaseUrl,
    pub auth_type: AuthType,
    pub handles_ticket_delivery: bool,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    #[serde(rename = "isApproved")]
    pub is_approved: bool,
    pub sync: SyncState,
    pub health: Health,
    /// The partner's push channel Seyaha subscribed to (an addition to the document).
    pub notifications: Notifications,
    /// Webhook calls per minute this integration may make, when an admin set it (an
    /// addition); `null`: the service's `SEYAHA_WEBHOOK_RATE_PER_MINUTE`. Named like the
    /// other fields only an admin sets (`isApproved`, `isActive`).
    #[serde(rename = "webhookRatePerMinute")]
    #[schema(minimum = 1, maximum = 1000000)]
    pub webhook_rate_per_minute: Option<u32>,
    #[serde(rename = "createdAt")]
    pub created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    pub updated_at: Timestamp,
}

/// A push channel a partner may offer (how each is called: `octo::channels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `POST /notifications/subscriptions` with `notificationTypes`.
    Notifications,
    /// `POST /webhooks` with one `event`.
    Webhooks,
}

/// The channels Seyaha tries, in order, with the mode each gives the integration.
pub const CHANNELS: [(Channel, NotificationMode); 2] = [
    (Channel::Notifications, NotificationMode::OctoNotifications),
    (Channel::Webhooks, NotificationMode::OctoWebhooks),
];

/// What an unsubscribe job removes: the subscriptions as they were, on the `base_url` they
/// were made on (a `base_url` change moves the integration elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub base_url: BaseUrl,
    pub channel: Channel,
    pub subscription_ids: Vec<String>,
}

impl Unsubscribe {
    /// What to remove of `notifications`, if anything was subscribed.
    pub fn of(base_url: &BaseUrl, notifications: &Notifications) -> Option<Self> {
        let (channel, _) = CHANNELS
            .into_iter()
            .find(|(_, mode)| *mode == notifications.mode)?;
        (!notifications.subscription_ids.is_empty()).then(|| Self {
            base_url: base_url.clone(),
            channel,
            subscription_ids: notifications.subscription_ids.clone(),
        })
    }
}

/// Which of the partner's push channels Seyaha is subscribed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationMode {
    /// The OCTO notifications capability (`PRODUCT_UPDATE`, `AVAILABILITY_UPDATE`).
    OctoNotifications,
    /// OCTO Cloud / Ventrata webhooks (`availability_update`).
    OctoWebhooks,
    /// Neither (or not subscribed yet, or no public URL): the partner pushes through the
    /// documented webhooks only.
    #[default]
    None,
    /// Subscribing failed; `error_message` says why.
    Error,
}

/// The push subscription on the partner's platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Notifications {
    pub mode: NotificationMode,
    /// The partner's ids of Seyaha's subscriptions.
    pub subscription_ids: Vec<String>,
    pub subscribed_at: Option<Timestamp>,
    pub error_message: Option<String>,
}

/// What is kept per integration: the document, the webhook secret's digest (never the
/// secret) and, after a rotation, the previous one's until it expires, the sync coordination
/// state, and a version for optimistic concurrency.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRecord {
    pub integration: Integration,
    pub webhook_secret_digest: WebhookSecretDigest,
    /// The secret the last rotation replaced. One at most: rotating again replaces it.
    pub previous_webhook_secret: Option<PreviousWebhookSecret>,
    /// The secret Seyaha's push subscriptions send (never shown; the partner's platform holds
    /// it in the subscription's headers). Stored before the subscription is created, so a
    /// subscribe that dies after the platform made it finds and reuses it; accepted only once
    /// the subscription is on record ([`Self::delivery_secret`]).
    pub delivery_secret_digest: Option<WebhookSecretDigest>,
    /// Moved on by every change of the partner credential (create is 0). A credential cached
    /// by another process for an older version is read again (`CachedSecretStore`).
    pub credential_version: u64,
    pub sync_control: SyncControl,
    pub version: u64,
}

/// Who may run a sync right now. A lease expires, so a crashed sync never blocks forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub run_id: RunId,
    pub expires_at: Timestamp,
    /// The `requested_at` this run serves: the request stays set until the run commits, so a
    /// run that dies leaves it for the redelivered job or the watchdog.
    pub covers: Option<Timestamp>,
}

impl SyncControl {
    /// The lease, if it has not expired.
    pub fn live_lease(&self, now: Timestamp) -> Option<&Lease> {
        self.lease.as_ref().filter(|lease| lease.expires_at > now)
    }

    /// A request no running sync serves yet: one made while the current run was going, or one
    /// left by a run that died.
    pub fn pending_request(&self, now: Timestamp) -> Option<Timestamp> {
        let covered = self.live_lease(now).and_then(|lease| lease.covers);
        self.requested_at.filter(|at| Some(*at) != covered)
    }

    /// Records a new request made at `now`, wanted now. It must differ from the one the
    /// running sync covers (a request in the same millisecond would otherwise look already served).
    pub fn request(&mut self, now: Timestamp) -> Timestamp {
        let covered = self.live_lease(now).and_then(|lease| lease.covers);
        let at = match covered {
            Some(covered) if covered >= now => covered.plus_millis(1),
            _ => now,
        };
        self.requested_at = Some(at);
        self.deferred_until = None;
        at
    }

    /// Whether the pending request's job waits for a point of a fan-out's window after `now`:
    /// a request that wants its sync sooner is not coalesced with it.
    pub fn deferred(&self, now: Timestamp) -> bool {
        self.requested_at.is_some() && self.deferred_until.is_some_and(|until| until > now)
    }
}

impl IntegrationRecord {
    /// The delivery secret a webhook call may present: only while a push subscription made
    /// with it is on record (a push mode with its ids). A failed create, mode `none` or
    /// `error`, and a `base_url` change, pause or unapproval (see
    /// [`Self::forget_delivery_secret_if_moved_or_left`]) all leave none.
    pub fn delivery_secret(&self) -> Option<&WebhookSecretDigest> {
        let notifications = &self.integration.notifications;
        let subscribed = matches!(
            notifications.mode,
            NotificationMode::OctoNotifications | NotificationMode::OctoWebhooks
        ) && !notifications.subscription_ids.is_empty();
        self.delivery_secret_digest.as_ref().filter(|_| subscribed)
    }

    /// Drops the delivery secret, in the same write as the change, when the integration moved
    /// to another `base_url` or stopped being live (paused, unapproved): the subscription it
    /// was made for is on its way out (the unsubscribe job), and must not push meanwhile.
    pub fn forget_delivery_secret_if_moved_or_left(&mut self, before: &Integration) {
        if before.base_url != self.integration.base_url || !self.integration.is_live() {
            self.forget_delivery_secret();
        }
    }

    pub fn forget_delivery_secret(&mut self) {
        self.delivery_secret_digest = None;
    }

    /// Makes `new` the webhook secret. The one it replaces stays accepted until
    /// `previous_valid_until`; an older previous secret, if any, stops working at once (only
    /// one is kept, so a leaked secret is gone after at most two rotations).
    pub fn rotate_webhook_secret(
        &mut self,
        new: WebhookSecretDigest,
        previous_valid_until: Timestamp,
        now: Timestamp,
    ) {
        self.previous_webhook_secret = Some(PreviousWebhookSecret {
            digest: self.webhook_secret_digest,
            valid_until: previous_valid_until,
        });
        self.webhook_secret_digest = new;
        self.integration.updated_at = now;
    }

    /// The document as readers see it: a sync whose lease expired is not running any more,
    /// whatever the record last said (it died; its request is retried automatically).
    pub fn shown(&self, now: Timestamp) -> Integration {
        let mut integration = self.integration.clone();
        if integration.sync.status == SyncStatus::Syncing
            && self.sync_control.live_lease(now).is_none()
        {
            integration.sync.status = SyncStatus::Error;
            integration.sync.error_message = Some(
                "the last sync was interrupted before it finished; it is retried automatically"
                    .into(),
            );
        }
        integration
    }
}

/// Coordination between syncs, never shown on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncControl {
    /// Held by the running sync.
    pub lease: Option<Lease>,
    /// A sync was requested and has not completed yet. The sync that takes the lease covers
    /// it (one run serves every request made before it started) and clears it only when it
    /// commits; a request made meanwhile gets a new value and a follow-up run.
    pub requested_at: Option<Timestamp>,
    /// The next successful sync ignores the catalog hash (after DOWN deactivated the catalog).
    pub force_full_sync: bool,
    /// The last fan-out (nightly run, sync-all) that requested a sync of this integration: a
    /// page of it delivered again skips what it already requested and was served.
    pub fan_out: Option<RunId>,
    /// When the job of the pending request is due, if a fan-out spread it later than it was
    /// made (see [`SyncControl::deferred`]); cleared by every other request.
    pub deferred_until: Option<Timestamp>,
    /// Availability pulls are pending (the pulls themselves are stored apart, one per distinct
    /// pull): the time of the latest request. The pull run that takes the lease notes it and
    /// clears it on release only if no request came since, so none is left without a job.
    pub pulls_requested_at: Option<Timestamp>,
    /// What the catalog stores, as of the last full sync (exact) and the product syncs since
    /// (kept in step): a single-product sync checks the cap against it without a listing.
    /// `None` before the first full sync that recorded it.
    pub catalog_usage: Option<super::CatalogUsage>,
}

/// A validated create request.
#[derive(Debug)]
pub struct NewIntegration {
    pub base_url: BaseUrl,
    pub auth_type: AuthType,
    pub auth_key: AuthKey,
    pub handles_ticket_delivery: bool,
}

impl Integration {
    pub fn new(
        id: IntegrationId,
        partner_id: PartnerId,
        new: &NewIntegration,
        creator: Role,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            partner_id,
            base_url: new.base_url.clone(),
            auth_type: new.auth_type,
            handles_ticket_delivery: new.handles_ticket_delivery,
            is_active: true,
            is_approved: creator == Role::Admin,
            sync: SyncState::new(),
            health: Health::new(),
            notifications: Notifications::default(),
            webhook_rate_per_minute: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies a partner's PATCH. A different `base_url` points at another system, so it needs
    /// approval again and the old catalog hash no longer says anything about it.
    pub fn apply_patch(&mut self, patch: &IntegrationPatch, now: Timestamp) {
        if let Some(base_url) = &patch.base_url
            && *base_url != self.base_url
        {
            self.base_url = base_url.clone();
            self.is_approved = false;
            self.sync.last_sync_hash = None;
        }
        if let Some(auth_type) = patch.auth_type {
            self.auth_type = auth_type;
        }
        if let Some(handles) = patch.handles_ticket_delivery {
            self.handles_ticket_delivery = handles;
        }
        self.updated_at = now;
    }

    pub fn apply_admin_patch(&mut self, patch: &AdminPatch, now: Timestamp) {
        if let Some(approved) = patch.is_approved {
            self.is_approved = approved;
        }
        if let Some(active) = patch.is_active {
            self.is_active = active;
        }
        if let Some(rate) = patch.webhook_rate_per_minute {
            self.webhook_rate_per_minute = rate;
        }
        self.updated_at = now;
    }

    /// Approved by an admin and left active: only then are its webhooks accepted and is it
    /// synced on schedule (the nightly listing selects exactly these).
    pub fn is_live(&self) -> bool {
        self.is_approved && self.is_active
    }
}

/// A validated partner PATCH: at least one field present.
#[derive(Debug, Default)]
pub struct IntegrationPatch {
    pub base_url: Option<BaseUrl>,
    pub auth_type: Option<AuthType>,
    pub auth_key: Option<AuthKey>,
    pub handles_ticket_delivery: Option<bool>,
}

/// A validated admin PATCH: at least one field present.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdminPatch {
    pub is_approved: Option<bool>,
    pub is_active: Option<bool>,
    /// `Some(None)`: back to the service's default limit.
    pub webhook_rate_per_minute: Option<Option<u32>>,
}

/// The largest per-integration webhook limit an admin may set (calls per minute): about
/// 16,700 calls a second, far past what one supplier's platform sends, and what keeps one
/// partner's override from being a typo that disables the limit.
pub const MAX_WEBHOOK_RATE_PER_MINUTE: u32 = 1_000_000;

impl AdminPatch {
    /// Approves, changing nothing else.
    pub fn approval() -> Self {
        Self {
            is_approved: Some(true),
            ..Self::default()
        }
    }
}

impl Integration {
    /// The webhook calls per minute this integration may make: its own limit when an admin
    /// set one, else `service_default` (0 there means no limit).
    pub fn webhook_rate(&self, service_default: u32) -> u32 {
        self.webhook_rate_per_minute.unwrap_or(service_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    #[test]
    fn degraded_after_one_failure_down_after_three_and_back() {
        let mut health = Health::new();
        assert_eq!(
            health.record_failure(at(1)),
            HealthTransition::BecameDegraded
        );
        assert_eq!(health.status, HealthStatus::Degraded);
        assert_eq!(health.degraded_since, Some(at(1)));
        assert_eq!(health.record_failure(at(2)), HealthTransition::Unchanged);
        assert_eq!(health.record_failure(at(3)), HealthTransition::BecameDown);
        assert_eq!(
            (health.status, health.down_since, health.degraded_since),
            (HealthStatus::Down, Some(at(3)), Some(at(1)))
        );
        assert_eq!(health.record_failure(at(4)), HealthTransition::Unchanged);
        assert_eq!(health.consecutive_failures, 4);
        assert_eq!(
            health.record_success(at(5)),
            HealthTransition::RecoveredFromDown
        );
        assert_eq!(
            health,
            Health {
                last_probe_at: Some(at(5)),
                last_success_at: Some(at(5)),
                ..Health::new()
            }
        );
    }

    #[test]
    fn rotating_keeps_only_the_secret_it_replaced() {
        use crate::domain::WebhookSecret;

        let (first, second, third) = (
            WebhookSecret::generate(),
            WebhookSecret::generate(),
            WebhookSecret::generate(),
        );
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
            at(1),
        );
        let mut record = IntegrationRecord {
            integration,
            webhook_secret_digest: first.digest(),
            previous_webhook_secret: None,
            delivery_secret_digest: None,
            credential_version: 0,
            sync_control: SyncControl::default(),
            version: 1,
        };
        record.rotate_webhook_secret(second.digest(), at(100), at(10));
        assert_eq!(record.webhook_secret_digest, second.digest());
        assert_eq!(
            record.previous_webhook_secret,
            Some(PreviousWebhookSecret {
                digest: first.digest(),
                valid_until: at(100)
            })
        );
        assert_eq!(record.integration.updated_at, at(10));
        record.rotate_webhook_secret(third.digest(), at(200), at(20));
        assert_eq!(record.webhook_secret_digest, third.digest());
        assert_eq!(
            record.previous_webhook_secret,
            Some(PreviousWebhookSecret {
                digest: second.digest(),
                valid_until: at(200)
            })
        );
        assert_eq!(
            record.version, 1,
            "the store's update bumps the version, not the rotation"
        );
    }

    #[test]
    fn wire_names_match_the_contract() {
        let json = serde_json::to_value(HealthStatus::Degraded).unwrap();
        assert_eq!(json, "DEGRADED");
        assert_eq!(serde_json::to_value(AuthType::ApiKey).unwrap(), "api_key");
        assert_eq!(
            serde_json::to_value(SyncStatus::Syncing).unwrap(),
            "syncing"
        );
        assert_eq!(AuthType::Bearer.authorization_value("k"), "Bearer k");
        assert_eq!(AuthType::ApiKey.authorization_value("k"), "k");
    }
}
