//! A panic in one request or one job fails that request or job alone: the HTTP layer answers
//! it with the enveloped 500 and keeps serving; a worker reports that job as failed (to be
//! delivered again) and runs the next one.

use std::sync::Arc;

use seyaha::adapters::embedded::{FileSecretStore, InProcessQueue, QueueReceiver, RedbStore};
use seyaha::app::jobs::{JobFailure, run_job};
use seyaha::app::{self, App, Host};
use seyaha::domain::{AdminPatch, IntegrationId, PartnerId, Role, RunTrigger};
use seyaha::ports::{Ports, StaticSigningKey, SyncJob, SystemClock};
use seyaha::sync::SyncResult;
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::hooked::{CatalogCall, HookedCatalog};
use seyaha_tests::{JWT_SECRET, TestApp, send, test_settings};

struct Setup {
    _dir: tempfile::TempDir,
    receiver: QueueReceiver,
    app: App,
    cursed: Arc<std::sync::Mutex<Option<IntegrationId>>>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    // Reading one integration's catalog panics (a bug).
    let cursed: Arc<std::sync::Mutex<Option<IntegrationId>>> = Arc::default();
    let curse = Arc::clone(&cursed);
    let catalog = Arc::new(HookedCatalog::new(store.clone(), move |call, id| {
        let reads = matches!(
            call,
            CatalogCall::ActivityStates | CatalogCall::Activities | CatalogCall::ActivitiesPage
        );
        if reads && *curse.lock().unwrap() == Some(*id) {
            panic!("a bug reading the catalog of {id}");
        }
        Ok(())
    }));
    let (queue, receiver) = InProcessQueue::new(Arc::new(SystemClock));
    let ports = Ports {
        integrations: Arc::new(store.clone()),
        catalog: catalog.clone(),
        runs: Arc::new(store),
        secrets: Arc::new(FileSecretStore::open(&dir.path().join("secrets")).unwrap()),
        signing_key: Arc::new(StaticSigningKey(JWT_SECRET.into())),
        rate_limiter: Arc::new(seyaha::adapters::embedded::InMemoryRateLimiter::default()),
        queue: Arc::new(queue),
        clock: Arc::new(SystemClock),
    };
    Setup {
        app: app::build(ports, &test_settings(), Host::Local),
        cursed,
        _dir: dir,
        receiver,
    }
}

async fn approved(app: &App, octo: &FakeOcto) -> IntegrationId {
    let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
    let id = app
        .service()
        .create(PartnerId::generate(1_800_000_000), new, Role::Admin)
        .await
        .unwrap()
        .integration
        .id;
    app.service()
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_panicking_request_gets_the_enveloped_500_and_the_server_keeps_serving() {
    let setup = setup();
    let octo = FakeOcto::start().await;
    let (cursed, fine) = (
        approved(&setup.app, &octo).await,
        approved(&setup.app, &octo).await,
    );
    *setup.cursed.lock().unwrap() = Some(cursed);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        seyaha::api::PREFIX
    );
    let router = setup.app.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    // Any TestApp gives us tokens signed with the shared test secret.
    let tokens = TestApp::spawn().await;
    let http = reqwest::Client::new();

    let reply = send(
        http.get(format!("{base}/{cursed}/catalog"))
            .bearer_auth(tokens.admin_token()),
    )
    .await;
    reply.expect_error(500);
    assert_eq!(
        reply.body["message"], "Internal server error",
        "no panic text reaches the caller: {}",
        reply.text
    );
    let other = send(
        http.get(format!("{base}/{fine}/catalog"))
            .bearer_auth(tokens.admin_token()),
    )
    .await;
    other.expect_success(200);
}

#[tokio::test]
async fn a_panicking_job_fails_alone_and_the_next_one_runs() {
    let mut setup = setup();
    let octo = FakeOcto::start().await;
    let (cursed, fine) = (
        approved(&setup.app, &octo).await,
        approved(&setup.app, &octo).await,
    );
    *setup.cursed.lock().unwrap() = Some(cursed);
    let service = setup.app.service();
    assert_eq!(service.sync_all().await.unwrap(), 2);
    // The fan-out's page job requests both syncs.
    let page = setup.receiver.try_recv().expect("the fan-out's page job");
    run_job(service, &page).await.unwrap();

    let failed = run_job(service, &SyncJob::catalog(cursed, RunTrigger::Admin)).await;
    assert!(
        matches!(&failed, Err(JobFailure::Panicked(message)) if message.contains("a bug reading the catalog")),
        "{failed:?}"
    );
    let next = run_job(service, &SyncJob::catalog(fine, RunTrigger::Admin))
        .await
        .unwrap();
    assert!(
        matches!(next, SyncResult::Done { skipped: false, .. }),
        "{next:?}"
    );
}
