//! [`SyncEngine`]: the one face of the sync units to the rest of the crate (the service, the
//! entry points, the tests). It builds each unit once from the ports and the [`SyncConfig`],
//! dispatches queue jobs to them ([`SyncEngine::handle_job`]) and forwards every other call to
//! the unit that owns it; it holds no sync logic of its own beyond a deferred job's due time.
//! The map of the units is in the module docs (`sync/mod.rs`).
//!
//! The types every unit shares live in `shared.rs`: [`SyncConfig`], [`SyncError`],
//! [`SyncResult`], [`ProbeOutcome`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::{BaseUrl, IntegrationId, IntegrationRecord, RunTrigger};
use crate::octo::{OctoClient, OctoCredentials};
use crate::ports::{
    Clock, JobWork, Lane, MAX_QUEUE_DELAY, Ports, SecretStoreError, SyncJob, SyncQueue,
};

use super::availability::{AvailabilityPull, AvailabilityPulls};
use super::catalog_sync::{CatalogFailure, CatalogRead, CatalogSync};
use super::credentials::Credentials;
use super::fan_out::FanOut;
use super::health::Health;
use super::lease::Leases;
use super::product::ProductSync;
use super::push_subscriptions::{PushSubscriptions, Unsubscribe};
use super::runs::RunLog;
pub use super::shared::{ProbeOutcome, SyncConfig, SyncError, SyncResult};

/// A deferred job given to a worker at most this early runs (the queue's delay is rounded to
/// seconds, and clocks differ a little); earlier, it goes back to the queue.
const DUE_TOLERANCE_MS: i64 = 1_000;

pub struct SyncEngine {
    clock: Arc<dyn Clock>,
    queue: Arc<dyn SyncQueue>,
    /// `SyncConfig::request_budget`.
    request_budget: Duration,
    credentials: Credentials,
    leases: Leases,
    health: Health,
    catalog: CatalogSync,
    fan_out: FanOut,
    products: ProductSync,
    availability: AvailabilityPulls,
    subscriptions: PushSubscriptions,
}

impl SyncEngine {
    pub fn new(ports: Ports, octo: OctoClient, config: SyncConfig) -> Self {
        let credentials = Credentials::new(ports.secrets.clone());
        let runs = RunLog::new(ports.runs.clone());
        let leases = Leases::new(&ports, &config);
        let health = Health::new(&ports, leases.clone(), runs.clone());
        Self {
            clock: ports.clock.clone(),
            queue: ports.queue.clone(),
            request_budget: config.request_budget,
            catalog: CatalogSync::new(
                &ports,
                octo.clone(),
                &config,
                credentials.clone(),
                leases.clone(),
                health.clone(),
                runs.clone(),
            ),
            fan_out: FanOut::new(&ports, &config, leases.clone()),
            products: ProductSync::new(
                &ports,
                octo.clone(),
                credentials.clone(),
                leases.clone(),
                runs.clone(),
                config.catalog_limits,
            ),
            availability: AvailabilityPulls::new(
                &ports,
                octo.clone(),
                &config,
                credentials.clone(),
                leases.clone(),
                runs,
            ),
            subscriptions: PushSubscriptions::new(&ports, octo, credentials.clone()),
            credentials,
            leases,
            health,
        }
    }

    /// How long a sync may run inside a caller's request (the connection test reads a catalog
    /// within it too).
    pub fn request_budget(&self) -> Duration {
        self.request_budget
    }

    /// With a public URL, approved integrations are subscribed to their partner's push channel.
    pub fn with_public_url(mut self, public_url: Option<String>) -> Self {
        self.subscriptions = self.subscriptions.with_public_url(public_url);
        self
    }

    /// `POST /{id}/sync/trigger`, after authentication: sync now within the request budget.
    pub async fn trigger(&self, record: IntegrationRecord) -> Result<SyncResult, SyncError> {
        let deadline = Instant::now() + self.request_budget;
        let id = record.integration.id;
        self.catalog
            .run(
                id,
                RunTrigger::Webhook,
                Lane::RealTime,
                Some(record),
                false,
                Some(deadline),
            )
            .await
    }

    /// A queue message. Errors are infrastructure failures (worth a redelivery); partner
    /// failures are recorded on the integration and are not errors here. With a deadline (the
    /// worker's invocation ends then), a run that cannot finish by it hands off to a new job.
    pub async fn handle_job(&self, job: &SyncJob) -> Result<SyncResult, SyncError> {
        self.handle_job_before(job, None).await
    }

    pub async fn handle_job_before(
        &self,
        job: &SyncJob,
        deadline: Option<Instant>,
    ) -> Result<SyncResult, SyncError> {
        if let Some(due) = job.not_before {
            let now = self.clock.now();
            if due.unix_millis() - now.unix_millis() > DUE_TOLERANCE_MS {
                // Early (SQS delays 15 minutes at most): back to the queue for the rest.
                let rest = Duration::from_millis((due.unix_millis() - now.unix_millis()) as u64);
                self.queue
                    .enqueue_after(job, rest.min(MAX_QUEUE_DELAY))
                    .await?;
                return Ok(SyncResult::Queued);
            }
        }
        let id = match (&job.work, job.integration_id) {
            (JobWork::FanOutPage(page), _) => {
                return self.fan_out.fan_out_page(job.trigger, page).await;
            }
            (_, Some(id)) => id,
            (_, None) => {
                // `JobMessage::decode` refuses these, and the constructors never build one.
                tracing::error!(
                    job_kind = job.work.kind(),
                    "a job without its integration; dropped"
                );
                return Ok(SyncResult::NotNeeded);
            }
        };
        match &job.work {
            JobWork::Catalog => {
                self.catalog
                    .run(id, job.trigger, job.lane, None, true, deadline)
                    .await
            }
            JobWork::Product { product_id } => self.sync_product(id, product_id).await,
            JobWork::Availability(pull) => {
                // The form before pulls were coalesced (and a caller's own pull): ask, then serve.
                self.availability
                    .request(id, std::slice::from_ref(pull))
                    .await?;
                self.availability.serve(id, deadline).await
            }
            JobWork::PendingPulls => self.availability.serve(id, deadline).await,
            JobWork::Subscribe => self.subscribe(id).await,
            JobWork::Unsubscribe(what) => self.unsubscribe(id, what).await,
            JobWork::FanOutPage(_) => unreachable!("handled above"),
        }
    }

    /// Asks for a background sync. Coalesced: if one is already requested (and not stale),
    /// nothing is written or sent. Returns whether a job was sent.
    pub async fn request_sync(
        &self,
        id: IntegrationId,
        trigger: RunTrigger,
        known: Option<IntegrationRecord>,
    ) -> Result<bool, SyncError> {
        self.leases.request_sync(id, trigger, known).await
    }

    /// The nightly job and `POST /admin/sync-all`: queues the first page job of a fan-out over
    /// every approved, active integration; returns how many are live now (see
    /// `FanOut::request_all`).
    pub async fn request_all(&self, trigger: RunTrigger) -> Result<u64, SyncError> {
        self.fan_out.request_all(trigger).await
    }

    /// Queues a job for every live integration whose request is still pending: now, or when
    /// the lease of the run that took it expires. Pages through the store.
    pub async fn resume_pending(&self) -> Result<u64, SyncError> {
        self.fan_out.resume_pending().await
    }

    /// Records a probe on the health state and acts on the transition: DOWN deactivates the
    /// catalog (and forces the next sync to be full); recovery from DOWN requests that sync.
    pub async fn record_probe(
        &self,
        id: IntegrationId,
        outcome: ProbeOutcome,
    ) -> Result<(), SyncError> {
        self.health.record_probe(id, outcome).await
    }

    /// The partner credential of `record` (`None`: none is stored), never older than the
    /// record's last credential change.
    pub async fn credentials(
        &self,
        record: &IntegrationRecord,
    ) -> Result<Option<OctoCredentials>, SecretStoreError> {
        self.credentials.of(record).await
    }

    /// Reads a partner's whole catalog as a sync would, writing nothing (the connection test):
    /// the number of products, or why it failed and whether that counts against its health.
    /// A catalog still arriving at `deadline` with nothing wrong so far passes: the sync, not
    /// the caller's request, reads the rest.
    pub async fn read_catalog(
        &self,
        base_url: &BaseUrl,
        credentials: &OctoCredentials,
        deadline: Instant,
    ) -> Result<CatalogRead, CatalogFailure> {
        self.catalog
            .read_catalog(base_url, credentials, deadline)
            .await
    }

    /// Syncs one product under the lease (a `PRODUCT_UPDATE` job); see `ProductSync`.
    pub async fn sync_product(
        &self,
        id: IntegrationId,
        product_id: &str,
    ) -> Result<SyncResult, SyncError> {
        self.products.sync_product(id, product_id).await
    }

    /// Asks for an availability pull (an OCTO event, a `booking_update`, an admin's refresh):
    /// stored, and served by the integration's pull job, which only the request finding none
    /// pending sends; see `AvailabilityPulls`. Returns whether a job was sent.
    pub async fn request_pulls(
        &self,
        id: IntegrationId,
        pulls: &[AvailabilityPull],
    ) -> Result<bool, SyncError> {
        self.availability.request(id, pulls).await
    }

    /// The events URL Seyaha subscribes with, when it has a public URL.
    pub fn events_url(&self, id: &IntegrationId) -> Option<String> {
        self.subscriptions.events_url(id)
    }

    /// The subscribe job.
    pub async fn subscribe(&self, id: IntegrationId) -> Result<SyncResult, SyncError> {
        self.subscriptions.subscribe(id).await
    }

    /// Queues a subscribe job for every live integration with a subscription on record (after
    /// a restart of seyaha-local).
    pub async fn resubscribe_live(&self) -> Result<u64, SyncError> {
        self.subscriptions.resubscribe_live().await
    }

    /// The unsubscribe job: removes the subscriptions, then clears them (and the delivery
    /// secret) from the integration unless it subscribed anew meanwhile.
    pub async fn unsubscribe(
        &self,
        id: IntegrationId,
        what: &Unsubscribe,
    ) -> Result<SyncResult, SyncError> {
        self.subscriptions.unsubscribe(id, what).await
    }

    /// Deletes the subscriptions on the partner's platform; failures are logged (best effort).
    pub async fn remove_subscriptions(
        &self,
        id: IntegrationId,
        what: &Unsubscribe,
        credentials: &OctoCredentials,
    ) {
        self.subscriptions
            .remove_subscriptions(id, what, credentials)
            .await
    }
}
