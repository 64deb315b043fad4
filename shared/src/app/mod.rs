//! The one composition root. Every entry point (the five Lambda functions through
//! `seyaha::lambda`, seyaha-local, the tests) builds its adapters' [`Ports`], reads
//! [`Settings`], and calls [`build`]; nothing else constructs the service or the routers.

pub mod jobs;
mod secret_cache;

use std::sync::Arc;

use axum::Router;

pub use secret_cache::CachedSecretStore;

use crate::api::auth::JwtSource;
use crate::api::{self, AppState};
use crate::net::EndpointPolicy;
use crate::octo::OctoClient;
use crate::ports::Ports;
use crate::service::{IntegrationService, ServiceLimits};
use crate::settings::Settings;
use crate::sync::SyncEngine;

/// Where the app runs; it decides the defaults that differ on purpose (private endpoints
/// are allowed locally, never by default on AWS: docs/design.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Lambda,
    Local,
}

/// The wired application: the HTTP state its routers share (which holds the service).
#[derive(Clone)]
pub struct App {
    state: AppState,
    job_start_reserve: std::time::Duration,
}

/// Wires the ports and settings into the service, the sync engine and the HTTP state.
pub fn build(ports: Ports, settings: &Settings, host: Host) -> App {
    let policy = EndpointPolicy {
        allow_private_and_http: settings.allow_private_endpoints_or(host == Host::Local),
    };
    let ports = Ports {
        secrets: Arc::new(CachedSecretStore::new(
            ports.secrets,
            Arc::clone(&ports.clock),
            settings.secret_cache(),
        )),
        ..ports
    };
    let octo = OctoClient::new(policy, settings.octo());
    let engine = Arc::new(
        SyncEngine::new(ports.clone(), octo, settings.sync())
            .with_public_url(settings.public_url.clone()),
    );
    // Every entry point validated the settings (the key among them) before building.
    let jwt = Arc::new(
        match settings
            .jwt_public_key()
            .expect("settings are validated before the app is built")
        {
            Some(key) => JwtSource::public(key, settings.token_rules()),
            None => JwtSource::new(Arc::clone(&ports.signing_key), settings.token_rules()),
        },
    );
    let limits = ServiceLimits {
        slot_retention: settings.slot_retention(),
        webhook_rate_per_minute: settings.webhook_rate_per_minute,
        secret_overlap: settings.secret_overlap(),
        push_subscriptions: settings.public_url.is_some() || settings.push_subscriptions,
    };
    let service = Arc::new(IntegrationService::new(ports, engine, policy, limits));
    // A queued job starts only while a partner call at its timeout, and some writing, still fit.
    let job_start_reserve = settings.octo().request_timeout + std::time::Duration::from_secs(10);
    App {
        state: AppState { service, jwt },
        job_start_reserve,
    }
}

impl App {
    pub fn service(&self) -> &Arc<IntegrationService> {
        &self.state.service
    }

    /// Runs a worker's batch of jobs before the invocation ends (see [`jobs::run_batch`]).
    pub async fn run_batch(
        &self,
        jobs: &[crate::ports::SyncJob],
        ends_at: std::time::Instant,
    ) -> Vec<jobs::BatchOutcome> {
        jobs::run_batch(&self.state.service, jobs, ends_at, self.job_start_reserve).await
    }

    /// The `register` function: the partner and admin API.
    pub fn registration_router(&self) -> Router {
        api::finish(api::registration_plain_routes().router, self.state.clone())
    }

    /// The `sync-trigger` function.
    pub fn sync_trigger_router(&self) -> Router {
        api::finish(api::sync_trigger_plain_routes().router, self.state.clone())
    }

    /// The `availability-notify` function.
    pub fn availability_notify_router(&self) -> Router {
        api::finish(
            api::availability_notify_plain_routes().router,
            self.state.clone(),
        )
    }

    /// Every route in one router (seyaha-local).
    pub fn router(&self) -> Router {
        api::router(self.state.clone())
    }
}
