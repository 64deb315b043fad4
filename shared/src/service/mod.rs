//! The core: every rule about integrations, behind the ports. Every entry point (HTTP handlers,
//! the queue workers, the schedulers) parses its input, calls one of these methods and maps the
//! result; the sync engine is reached only through here.

mod notify;

pub use notify::BatchItemOutcome;

use std::sync::Arc;

use serde::Serialize;

use crate::domain::{
    Activity, AdminPatch, Health, Integration, IntegrationId, IntegrationPatch, IntegrationRecord,
    NewIntegration, PartnerId, Principal, RUNS_SHOWN, Role, RunTrigger, Slot, SyncRun, SyncState,
    Timestamp, WebhookSecret, WebhookSecretDigest,
};
use crate::net::{EndpointPolicy, EndpointRefused};
use crate::optimistic::{Change, update_record};
use crate::ports::{
    Admission, Cursor, IntegrationFilter, Page, Ports, QueueError, SecretStoreError, StoreError,
    SyncJob,
};
use crate::sync::Unsubscribe;
use crate::sync::{ProbeOutcome, SyncEngine, SyncError, SyncResult};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("base_url {0}")]
    EndpointRefused(EndpointRefused),
    #[error("the partner already has an integration")]
    AlreadyExists,
    #[error("the partner has no integration")]
    NoIntegration,
    #[error("integration not found")]
    NotFound,
    #[error("the integration belongs to another partner")]
    NotOwner,
    #[error("webhook secret missing or wrong, or unknown integration")]
    WebhookUnauthorized,
    #[error("integration is not approved")]
    NotApproved,
    #[error("integration is inactive")]
    Inactive,
    #[error("too many concurrent updates")]
    Contention,
    #[error("the webhook secret was rotated by another request meanwhile")]
    RotatedConcurrently,
    #[error("too many webhook calls for this integration; retry after {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: std::time::Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretStoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<EndpointRefused> for ServiceError {
    fn from(reason: EndpointRefused) -> Self {
        Self::EndpointRefused(reason)
    }
}

impl From<SyncError> for ServiceError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Store(error) => Self::Store(error),
            SyncError::Secrets(error) => Self::Secrets(error),
            SyncError::Queue(error) => Self::Queue(error),
        }
    }
}

/// An integration whose webhook secret was checked, approved and active: the only way into
/// the webhook operations ([`IntegrationService::authenticate_webhook`] makes these).
pub struct AuthenticatedWebhook(IntegrationRecord);

/// One page of the admin list with the total the wire contract shows.
#[derive(Debug)]
pub struct AdminPage {
    pub items: Vec<Integration>,
    pub total_count: u64,
}

/// A new integration with the webhook secret that exists only in this response.
pub struct Created {
    pub integration: Integration,
    pub webhook_secret: WebhookSecret,
}

/// A new webhook secret, which exists only in this response, and until when the secret it
/// replaced is still accepted.
pub struct Rotated {
    pub webhook_secret: WebhookSecret,
    pub previous_valid_until: Timestamp,
}

/// The answer of a connection test; a partner-side problem is `ok: false`, never an error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionTest {
    pub ok: bool,
    pub message: String,
}

/// What sync-log shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncLog {
    pub sync: SyncState,
    pub health: Health,
    /// The most recent runs, newest first.
    pub runs: Vec<SyncRun>,
}

/// Which lists of the catalog to read, how many, and where each continues.
#[derive(Debug, Clone, Default)]
pub struct CatalogQuery {
    /// `None`: both lists.
    pub kind: Option<CatalogKind>,
    pub limit: usize,
    pub activities_after: Option<Cursor>,
    pub slots_after: Option<Cursor>,
}

/// One list of the catalog (the catalog view's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CatalogKind {
    Activities,
    Slots,
}

/// One page of Seyaha's copy of an integration's catalog: activities and current slots (a
/// slot is shown until `SEYAHA_SLOT_RETENTION_DAYS` after it starts).
#[derive(Debug, Clone)]
pub struct CatalogView {
    pub activities: Option<Page<Activity>>,
    pub slots: Option<Page<Slot>>,
}

/// The service's configurable limits (from `Settings`).
#[derive(Debug, Clone, Copy)]
pub struct ServiceLimits {
    /// Slots are kept this long after they start.
    pub slot_retention: std::time::Duration,
    /// Webhook calls per integration and minute; 0: unlimited.
    pub webhook_rate_per_minute: u32,
    /// How long a rotated-out webhook secret is still accepted.
    pub secret_overlap: std::time::Duration,
    /// Approved integrations are subscribed to their partner's push channel (the job that
    /// does it needs the public URL; the process that queues it may not have it).
    pub push_subscriptions: bool,
}

pub struct IntegrationService {
    ports: Ports,
    engine: Arc<SyncEngine>,
    policy: EndpointPolicy,
    limits: ServiceLimits,
}

impl IntegrationService {
    pub fn new(
        ports: Ports,
        engine: Arc<SyncEngine>,
        policy: EndpointPolicy,
        limits: ServiceLimits,
    ) -> Self {
        Self {
            ports,
            engine,
            policy,
            limits,
        }
    }

    /// Registers an integration. The credential is stored before the record, so a record
    /// never exists without its credential; a lost race for the partner removes it again.
    pub async fn create(
        &self,
        partner_id: PartnerId,
        new: NewIntegration,
        creator: Role,
    ) -> Result<Created, ServiceError> {
        self.policy.check_registration(&new.base_url).await?;
        if self
            .ports
            .integrations
            .find_by_partner(&partner_id)
            .await?
            .is_some()
        {
            return Err(ServiceError::AlreadyExists);
        }
        let now = self.ports.clock.now();
        let id = IntegrationId::generate(now.unix_seconds());
        let webhook_secret = WebhookSecret::generate();
        let integration = Integration::new(id, partner_id, &new, creator, now);
        let record = IntegrationRecord {
            integration,
            webhook_secret_digest: webhook_secret.digest(),
            previous_webhook_secret: None,
            delivery_secret_digest: None,
            credential_version: 0,
            sync_control: Default::default(),
            version: 1,
        };

        self.ports.secrets.put_auth_key(&id, &new.auth_key).await?;
        if let Err(error) = self.ports.integrations.insert(&record).await {
            if let Err(cleanup) = self.ports.secrets.delete_auth_key(&id).await {
                tracing::warn!(integration_id = %id, error = %cleanup, "could not remove the credential of a failed create");
            }
            return Err(match error {
                StoreError::AlreadyExists => ServiceError::AlreadyExists,
                other => other.into(),
            });
        }
        tracing::info!(integration_id = %id, partner_id = %partner_id, creator = ?creator, "integration created");
        // An admin's create is approved: subscribe to the partner's push channel.
        self.follow_subscriptions(None, &record.integration).await;
        Ok(Created {
            integration: record.integration,
            webhook_secret,
        })
    }

    pub async fn get_mine(&self, partner_id: PartnerId) -> Result<Integration, ServiceError> {
        Ok(self.mine(partner_id).await?.shown(self.ports.clock.now()))
    }

    pub async fn update_mine(
        &self,
        partner_id: PartnerId,
        patch: IntegrationPatch,
    ) -> Result<Integration, ServiceError> {
        if let Some(base_url) = &patch.base_url {
            self.policy.check_registration(base_url).await?;
        }
        let id = self.mine(partner_id).await?.integration.id;
        // The credential first: a retried PATCH then converges on both.
        if let Some(key) = &patch.auth_key {
            self.ports.secrets.put_auth_key(&id, key).await?;
        }
        let now = self.ports.clock.now();
        let (before, updated) = self
            .modify(&id, |record| {
                record.integration.apply_patch(&patch, now);
                if patch.auth_key.is_some() {
                    // Other processes' caches hold the old credential: this makes them read it again.
                    record.credential_version += 1;
                }
            })
            .await
            .map_err(|e| match e {
                ServiceError::NotFound => ServiceError::NoIntegration,
                other => other,
            })?;
        tracing::info!(integration_id = %id, approved = updated.is_approved, "integration updated by partner");
        self.follow_subscriptions(Some(&before), &updated).await;
        Ok(updated)
    }

    pub async fn delete_mine(&self, partner_id: PartnerId) -> Result<(), ServiceError> {
        let id = self.mine(partner_id).await?.integration.id;
        self.remove(&id).await.map_err(|e| match e {
            ServiceError::NotFound => ServiceError::NoIntegration,
            other => other,
        })
    }

    /// `POST /me/webhook-secret`: a new webhook secret for the partner's own integration.
    pub async fn rotate_my_webhook_secret(
        &self,
        partner_id: PartnerId,
    ) -> Result<Rotated, ServiceError> {
        let record = self.mine(partner_id).await?;
        self.rotate_webhook_secret(record)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound => ServiceError::NoIntegration,
                other => other,
            })
    }

    /// Calls the partner's `GET /products` with its credential and reads the answer as a sync
    /// would: a products array passes even if the sync would reject some of its products. The
    /// result counts as a health probe.
    pub async fn test_connection(
        &self,
        partner_id: PartnerId,
    ) -> Result<ConnectionTest, ServiceError> {
        let record = self.mine(partner_id).await?;
        let integration = &record.integration;
        let Some(credentials) = self.engine.credentials(&record).await? else {
            tracing::error!(integration_id = %integration.id, "integration has no stored credential");
            return Ok(ConnectionTest {
                ok: false,
                message: "No credential is stored; send auth_key with PATCH /me".into(),
            });
        };
        // Read as a sync reads it (streamed, the same parser), within the caller's request.
        let deadline = std::time::Instant::now() + self.engine.request_budget();
        let (test, outcome) = match self
            .engine
            .read_catalog(&integration.base_url, &credentials, deadline)
            .await
        {
            Ok(read) if read.complete => (
                ConnectionTest {
                    ok: true,
                    message: "Connection successful".into(),
                },
                Some(ProbeOutcome::Success),
            ),
            Ok(read) => {
                let message = format!(
                    "Connection successful: a large catalog, {} products read without error before this test's time ran out; the sync reads the rest",
                    read.products
                );
                (
                    ConnectionTest { ok: true, message },
                    Some(ProbeOutcome::Success),
                )
            }
            // A catalog too large or still arriving at the timeout, a 429, a 503 with
            // Retry-After: the endpoint works, so it is no failed probe.
            Err(failure) => {
                let outcome = failure
                    .counts_against_health
                    .then_some(ProbeOutcome::Failure);
                (
                    ConnectionTest {
                        ok: false,
                        message: capitalize(&failure.message),
                    },
                    outcome,
                )
            }
        };
        if let Some(outcome) = outcome
            && let Err(error) = self.engine.record_probe(integration.id, outcome).await
        {
            // The partner still gets the diagnostic; a deleted-meanwhile integration is not news.
            tracing::warn!(integration_id = %integration.id, error = %error, "could not record the probe result");
        }
        tracing::info!(integration_id = %integration.id, ok = test.ok, "connection test");
        Ok(test)
    }

    pub async fn sync_log(
        &self,
        reader: Principal,
        id: IntegrationId,
    ) -> Result<SyncLog, ServiceError> {
        let integration = self.readable(reader, id).await?;
        let runs = self
            .ports
            .runs
            .recent_runs(&id, RUNS_SHOWN, self.ports.clock.now())
            .await?;
        Ok(SyncLog {
            sync: integration.sync,
            health: integration.health,
            runs,
        })
    }

    pub async fn catalog(
        &self,
        reader: Principal,
        id: IntegrationId,
        query: CatalogQuery,
    ) -> Result<CatalogView, ServiceError> {
        self.readable(reader, id).await?;
        let limit = query.limit.max(1);
        let activities = match query.kind {
            // Whatever `limit` says, a page of large activities ends before CATALOG_PAGE_MAX_BYTES.
            None | Some(CatalogKind::Activities) => Some(
                self.ports
                    .catalog
                    .activities_page(
                        &id,
                        limit,
                        crate::ports::CATALOG_PAGE_MAX_BYTES,
                        query.activities_after,
                    )
                    .await?,
            ),
            Some(CatalogKind::Slots) => None,
        };
        let slots = match query.kind {
            None | Some(CatalogKind::Slots) => {
                let starting_from = self
                    .ports
                    .clock
                    .now()
                    .plus_millis(-(self.limits.slot_retention.as_millis() as i64));
                Some(
                    self.ports
                        .catalog
                        .slots_page(&id, limit, query.slots_after, starting_from)
                        .await?,
                )
            }
            Some(CatalogKind::Activities) => None,
        };
        Ok(CatalogView { activities, slots })
    }

    pub async fn health(
        &self,
        reader: Principal,
        id: IntegrationId,
    ) -> Result<Health, ServiceError> {
        Ok(self.readable(reader, id).await?.health)
    }

    /// Page `page` (from 1) of `limit` integrations, newest first. The store pages by cursor;
    /// page N follows N cursors from the start, so it reads N pages (never the whole list).
    pub async fn admin_list(
        &self,
        filter: IntegrationFilter,
        page: u32,
        limit: u32,
    ) -> Result<AdminPage, ServiceError> {
        let (page, limit) = (page.max(1), limit.max(1) as usize);
        let mut cursor = None;
        let mut items = Vec::new();
        for number in 1..=page {
            let found = self
                .ports
                .integrations
                .list(&filter, limit, cursor.take())
                .await?;
            if number == page {
                items = found.items;
                break;
            }
            match found.next {
                Some(next) => cursor = Some(next),
                // Past the last page: an empty page, as before.
                None => break,
            }
        }
        let total_count = self.ports.integrations.count(&filter).await?;
        let now = self.ports.clock.now();
        Ok(AdminPage {
            items: items.into_iter().map(|record| record.shown(now)).collect(),
            total_count,
        })
    }

    pub async fn admin_get(&self, id: IntegrationId) -> Result<Integration, ServiceError> {
        let now = self.ports.clock.now();
        self.ports
            .integrations
            .get(&id)
            .await?
            .map(|record| record.shown(now))
            .ok_or(ServiceError::NotFound)
    }

    pub async fn admin_update(
        &self,
        id: IntegrationId,
        patch: AdminPatch,
    ) -> Result<Integration, ServiceError> {
        let now = self.ports.clock.now();
        let (before, updated) = self
            .modify(&id, |record| {
                record.integration.apply_admin_patch(&patch, now)
            })
            .await?;
        tracing::info!(integration_id = %id, approved = updated.is_approved, active = updated.is_active, "integration updated by admin");
        self.follow_subscriptions(Some(&before), &updated).await;
        Ok(updated)
    }

    pub async fn admin_delete(&self, id: IntegrationId) -> Result<(), ServiceError> {
        self.remove(&id).await
    }

    /// `POST /admin/{id}/webhook-secret`: a new webhook secret for any integration.
    pub async fn admin_rotate_webhook_secret(
        &self,
        id: IntegrationId,
    ) -> Result<Rotated, ServiceError> {
        let record = self
            .ports
            .integrations
            .get(&id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        self.rotate_webhook_secret(record).await
    }

    /// Authenticates a webhook call in the documented order: secret and integration (401),
    /// then approval and activity (403). An unknown id and a wrong secret look the same.
    /// Returns the whole record so the handler needs no second read.
    pub async fn authenticate_webhook(
        &self,
        id: IntegrationId,
        presented_secret: Option<&str>,
    ) -> Result<AuthenticatedWebhook, ServiceError> {
        let record = self.ports.integrations.get(&id).await?;
        let now = self.ports.clock.now();
        // An unknown id, a wrong secret and an expired previous secret cost the same
        // comparisons (see `verify`).
        let authenticated = WebhookSecretDigest::verify_any(
            record.as_ref().map(|r| &r.webhook_secret_digest),
            record
                .as_ref()
                .and_then(|r| r.previous_webhook_secret.as_ref()),
            record.as_ref().and_then(|r| r.delivery_secret()),
            presented_secret,
            now,
        );
        let Some(record) = record.filter(|_| authenticated) else {
            tracing::info!(integration_id = %id, "webhook authentication failed");
            crate::metrics::webhook_auth_failure();
            return Err(ServiceError::WebhookUnauthorized);
        };
        ensure_live(&record)?;
        self.check_rate(
            id,
            record
                .integration
                .webhook_rate(self.limits.webhook_rate_per_minute),
        )
        .await?;
        Ok(AuthenticatedWebhook(record))
    }

    /// Per-integration rate limit of the webhooks: one partner's burst costs only that partner.
    /// `per_minute` is the integration's own limit when an admin raised it, else the service's.
    /// A limiter that cannot be reached lets the call through (the stage-level throttling of
    /// API Gateway still guards the whole service).
    async fn check_rate(&self, id: IntegrationId, per_minute: u32) -> Result<(), ServiceError> {
        if per_minute == 0 {
            return Ok(());
        }
        let minute = std::time::Duration::from_secs(60);
        match self
            .ports
            .rate_limiter
            .admit(&id, per_minute, minute, self.ports.clock.now())
            .await
        {
            Ok(Admission::Allowed) => Ok(()),
            Ok(Admission::Limited { retry_after }) => {
                tracing::info!(integration_id = %id, "webhook rate limit reached");
                Err(ServiceError::RateLimited { retry_after })
            }
            Err(error) => {
                tracing::warn!(integration_id = %id, error = %error, "rate limiter unavailable; letting the call through");
                Ok(())
            }
        }
    }

    /// `POST /{id}/sync/trigger`: sync now within the request budget, or hand off.
    pub async fn trigger_sync(
        &self,
        webhook: AuthenticatedWebhook,
    ) -> Result<SyncResult, ServiceError> {
        Ok(self.engine.trigger(webhook.0).await?)
    }

    /// `POST /admin/sync-all`: a sync request for every approved, active integration, by a
    /// fan-out on the bulk queue. Returns how many are live now.
    pub async fn sync_all(&self) -> Result<u64, ServiceError> {
        Ok(self.engine.request_all(RunTrigger::Admin).await?)
    }

    /// `POST /admin/{id}/sync`: a background full sync of one approved, active integration.
    /// Coalesced like every request: `false` when one is already pending (that one serves this).
    pub async fn admin_sync(&self, id: IntegrationId) -> Result<bool, ServiceError> {
        let record = self.live(id).await?;
        Ok(self
            .engine
            .request_sync(id, RunTrigger::Admin, Some(record))
            .await?)
    }

    /// The integration, if it is approved and active (what an admin may sync or pull).
    async fn live(&self, id: IntegrationId) -> Result<IntegrationRecord, ServiceError> {
        let record = self
            .ports
            .integrations
            .get(&id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        ensure_live(&record)?;
        Ok(record)
    }

    /// An admin's availability refresh: one pull per product (the one named, or every active
    /// one), served by the integration's pull jobs. Returns how many were requested.
    pub async fn refresh_availability(
        &self,
        id: IntegrationId,
        product_id: Option<String>,
        from: time::Date,
        to: time::Date,
    ) -> Result<u64, ServiceError> {
        self.live(id).await?;
        let products = match product_id {
            Some(product_id) => vec![product_id],
            None => self
                .ports
                .catalog
                .activities(&id)
                .await?
                .into_iter()
                .filter(|a| a.is_active)
                .map(|a| a.external_sync.external_id)
                .collect(),
        };
        let pulls: Vec<crate::domain::AvailabilityPull> = products
            .into_iter()
            .map(|product_id| crate::domain::AvailabilityPull {
                product_id,
                option_id: None,
                from,
                to,
            })
            .collect();
        self.engine.request_pulls(id, &pulls).await?;
        Ok(pulls.len() as u64)
    }

    /// The nightly schedule (EventBridge on AWS, the in-process scheduler locally): queues the
    /// fan-out's first page job; returns how many integrations are live now.
    pub async fn request_nightly_sync(&self) -> Result<u64, SyncError> {
        self.engine.request_all(RunTrigger::Nightly).await
    }

    /// After a restart of a process whose queue did not survive it (seyaha-local): queue a job
    /// for every live integration with a sync request still pending, so work cut off by a crash
    /// finishes without a new trigger. (SQS keeps messages across Lambda crashes.)
    pub async fn resume_pending_syncs(&self) -> Result<u64, SyncError> {
        self.engine.resume_pending().await
    }

    /// After a restart of seyaha-local: subscribe again where a subscription is on record (the
    /// demo supplier forgets its subscriptions; a partner that kept ours has it reused).
    pub async fn resubscribe_live(&self) -> Result<u64, SyncError> {
        self.engine.resubscribe_live().await
    }

    /// One queue message. Errors are infrastructure failures, worth a redelivery; partner
    /// failures are recorded on the integration and are results.
    pub async fn handle_job(&self, job: &SyncJob) -> Result<SyncResult, SyncError> {
        self.engine.handle_job(job).await
    }

    /// The same, for a worker whose invocation ends at `deadline`: a sync that cannot finish
    /// by then hands off to a new job (what it wrote so far stays; the next run's diff goes on).
    pub async fn handle_job_before(
        &self,
        job: &SyncJob,
        deadline: std::time::Instant,
    ) -> Result<SyncResult, SyncError> {
        self.engine.handle_job_before(job, Some(deadline)).await
    }

    async fn mine(&self, partner_id: PartnerId) -> Result<IntegrationRecord, ServiceError> {
        self.ports
            .integrations
            .find_by_partner(&partner_id)
            .await?
            .ok_or(ServiceError::NoIntegration)
    }

    async fn readable(
        &self,
        reader: Principal,
        id: IntegrationId,
    ) -> Result<Integration, ServiceError> {
        let integration = self
            .ports
            .integrations
            .get(&id)
            .await?
            .ok_or(ServiceError::NotFound)?
            .shown(self.ports.clock.now());
        match reader {
            Principal::Partner(partner_id) if partner_id != integration.partner_id => {
                Err(ServiceError::NotOwner)
            }
            _ => Ok(integration),
        }
    }

    /// Read-modify-write with optimistic concurrency (see [`update_record`]). Returns the
    /// integration as the write that won found it, and as it left it (shown).
    async fn modify(
        &self,
        id: &IntegrationId,
        change: impl Fn(&mut IntegrationRecord),
    ) -> Result<(Integration, Integration), ServiceError> {
        let updated = update_record(self.ports.integrations.as_ref(), id, None, |record| {
            let before = record.integration.clone();
            change(record);
            record.forget_delivery_secret_if_moved_or_left(&before);
            Change::Write(before)
        })
        .await
        .map_err(|error| match error {
            StoreError::VersionConflict => ServiceError::Contention,
            other => other.into(),
        })?;
        updated
            .map(|(record, before)| (before, record.shown(self.ports.clock.now())))
            .ok_or(ServiceError::NotFound)
    }

    /// Replaces the webhook secret of the integration `known` was read from; the replaced one
    /// is accepted for `secret_overlap` more. The write is conditional on the record's version
    /// (through [`update_record`]): a write that lost to an unrelated change (a sync, a probe,
    /// a PATCH) is redone on the fresh record, but one that lost to another rotation is refused
    /// (409). Otherwise both callers would hold a "new" secret and the earlier one would
    /// silently be only the previous one, expiring after the overlap.
    async fn rotate_webhook_secret(
        &self,
        known: IntegrationRecord,
    ) -> Result<Rotated, ServiceError> {
        let id = known.integration.id;
        let replaced = known.webhook_secret_digest;
        let webhook_secret = WebhookSecret::generate();
        let new_digest = webhook_secret.digest();
        let now = self.ports.clock.now();
        let overlap_millis =
            i64::try_from(self.limits.secret_overlap.as_millis()).unwrap_or(i64::MAX);
        let previous_valid_until = now.plus_millis(overlap_millis);
        let updated = update_record(
            self.ports.integrations.as_ref(),
            &id,
            Some(known),
            |record| {
                // Two stored digests compared (no presented secret): timing reveals nothing here.
                if record.webhook_secret_digest != replaced {
                    return Change::Keep(Err(ServiceError::RotatedConcurrently));
                }
                record.rotate_webhook_secret(new_digest, previous_valid_until, now);
                Change::Write(Ok(()))
            },
        )
        .await
        .map_err(|error| match error {
            StoreError::VersionConflict => ServiceError::Contention,
            other => other.into(),
        })?;
        let Some((_, outcome)) = updated else {
            return Err(ServiceError::NotFound);
        };
        if let Err(error) = outcome {
            tracing::info!(integration_id = %id, "webhook secret rotation lost to a concurrent rotation");
            return Err(error);
        }
        tracing::info!(integration_id = %id, previous_valid_until = %previous_valid_until, "webhook secret rotated");
        Ok(Rotated {
            webhook_secret,
            previous_valid_until,
        })
    }

    /// Deletes the record first (the webhook secret stops working at once and the partner may
    /// register again), then deactivates the catalog and removes the credential.
    async fn remove(&self, id: &IntegrationId) -> Result<(), ServiceError> {
        let record = self
            .ports
            .integrations
            .delete(id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let deactivated = self
            .ports
            .catalog
            .deactivate_all(id, self.ports.clock.now())
            .await?;
        // The push subscriptions go now, while the credential still exists (best effort, and
        // bounded: the delete answers within the budget whatever the partner does).
        if let Some(what) = Unsubscribe::of(
            &record.integration.base_url,
            &record.integration.notifications,
        ) && let Ok(Some(credentials)) = self.engine.credentials(&record).await
            && tokio::time::timeout(
                UNSUBSCRIBE_ON_DELETE_BUDGET,
                self.engine.remove_subscriptions(*id, &what, &credentials),
            )
            .await
            .is_err()
        {
            tracing::warn!(integration_id = %id, "push subscriptions not all removed within the delete's budget");
        }
        if let Err(error) = self.ports.secrets.delete_auth_key(id).await {
            // The record is gone, so the orphaned credential is unreachable; on-call removes it.
            tracing::error!(integration_id = %id, error = %error, "integration deleted but its credential could not be removed");
        }
        tracing::info!(integration_id = %id, deactivated, "integration deleted");
        Ok(())
    }
}

/// How long a delete may spend removing the partner-side push subscriptions.
const UNSUBSCRIBE_ON_DELETE_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

impl IntegrationService {
    /// Push subscriptions follow the integration (`before`: `None` for a new one): becoming live (approved and active)
    /// subscribes, leaving it or moving to another `base_url` unsubscribes (from the old one).
    /// Both are queue jobs, so the answer never waits on the partner. A job that cannot be
    /// queued is logged: the change itself is made.
    async fn follow_subscriptions(&self, before: Option<&Integration>, after: &Integration) {
        let id = after.id;
        let was_live = before.is_some_and(Integration::is_live);
        let moved = before.is_some_and(|before| before.base_url != after.base_url);
        let mut jobs = Vec::new();
        if let Some(before) = before.filter(|_| was_live && (!after.is_live() || moved))
            && let Some(what) = Unsubscribe::of(&before.base_url, &before.notifications)
        {
            jobs.push(SyncJob::unsubscribe(id, what));
        }
        if after.is_live() && (!was_live || moved) && self.limits.push_subscriptions {
            jobs.push(SyncJob::subscribe(id));
        }
        if !jobs.is_empty()
            && let Err(error) = self.ports.queue.enqueue(&jobs).await
        {
            tracing::warn!(integration_id = %id, error = %error, "could not queue the push subscription change");
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Approved, then active: what a webhook call and an admin's sync or pull need (403 otherwise,
/// approval reported first).
fn ensure_live(record: &IntegrationRecord) -> Result<(), ServiceError> {
    if !record.integration.is_approved {
        return Err(ServiceError::NotApproved);
    }
    if !record.integration.is_active {
        return Err(ServiceError::Inactive);
    }
    Ok(())
}
