//! The sync engine driven directly (real redb store, real queue, the fake OCTO supplier), for
//! what HTTP cannot stage: a message delivered twice, a crash in the middle of the writes, a
//! lease left behind by a dead holder, and the nightly fan-out with DOWN integrations. Time is
//! a fake clock the tests move; jobs are read from the queue without waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use seyaha::adapters::embedded::{FileSecretStore, InProcessQueue, QueueReceiver, RedbStore};
use seyaha::app::{self, Host};
use seyaha::domain::{
    AdminPatch, HealthStatus, IntegrationId, Lease, PartnerId, Role, RunId, RunOutcome, RunTrigger,
    SyncStatus,
};
use seyaha::net::EndpointPolicy;
use seyaha::octo::OctoClient;
use seyaha::ports::{
    CatalogStore, Clock, IntegrationStore, JobWork, Lane, Ports, QueueError, RunStore,
    StaticSigningKey, StoreError, SyncJob, SyncQueue,
};
use seyaha::service::IntegrationService;
use seyaha::sync::{ProbeOutcome, SyncConfig, SyncEngine, SyncResult};
use seyaha_tests::fake_octo::{Behaviour, FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::hooked::{CatalogCall, HookedCatalog};
use seyaha_tests::{FakeClock, test_settings};

/// The queue, failing the next `failures` sends like an SQS outage would, or never answering
/// the send numbered `hang_at` (counting from 1) so a test can kill the worker there; it
/// remembers the delay of each delayed send.
struct FlakyQueue {
    inner: InProcessQueue,
    failures: AtomicUsize,
    sends: AtomicUsize,
    hang_at: AtomicUsize,
    hung: tokio::sync::Notify,
    delayed: std::sync::Mutex<Vec<(SyncJob, Duration)>>,
}

impl FlakyQueue {
    async fn fail(&self) -> Result<(), QueueError> {
        if self.sends.fetch_add(1, Ordering::SeqCst) + 1 == self.hang_at.load(Ordering::SeqCst) {
            self.hung.notify_one();
            std::future::pending::<()>().await;
        }
        match self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err(QueueError::new("simulated SQS outage")),
            Err(_) => Ok(()),
        }
    }

    /// The next send (of any kind) from now on will never return.
    fn hang_next_send(&self, skip: usize) {
        self.hang_at.store(
            self.sends.load(Ordering::SeqCst) + skip + 1,
            Ordering::SeqCst,
        );
    }
}

#[async_trait]
impl SyncQueue for FlakyQueue {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), QueueError> {
        self.fail().await?;
        self.inner.enqueue(jobs).await
    }
    async fn enqueue_after(&self, job: &SyncJob, delay: Duration) -> Result<(), QueueError> {
        self.fail().await?;
        self.delayed.lock().unwrap().push((job.clone(), delay));
        self.inner.enqueue_after(job, delay).await
    }
}

struct Harness {
    queue: Arc<FlakyQueue>,
    _dir: tempfile::TempDir,
    store: RedbStore,
    clock: Arc<FakeClock>,
    engine: Arc<SyncEngine>,
    service: Arc<IntegrationService>,
    receiver: QueueReceiver,
}

fn harness_with(
    catalog: Arc<dyn CatalogStore>,
    store: RedbStore,
    dir: tempfile::TempDir,
    config: SyncConfig,
) -> Harness {
    let clock = FakeClock::new();
    let (queue, receiver) = InProcessQueue::new(clock.clone());
    let queue = Arc::new(FlakyQueue {
        inner: queue,
        failures: AtomicUsize::new(0),
        sends: AtomicUsize::new(0),
        hang_at: AtomicUsize::new(0),
        hung: tokio::sync::Notify::new(),
        delayed: std::sync::Mutex::default(),
    });
    let ports = Ports {
        integrations: Arc::new(store.clone()),
        catalog,
        runs: Arc::new(store.clone()),
        secrets: Arc::new(FileSecretStore::open(&dir.path().join("secrets")).unwrap()),
        signing_key: Arc::new(StaticSigningKey(seyaha_tests::JWT_SECRET.into())),
        rate_limiter: Arc::new(seyaha::adapters::embedded::InMemoryRateLimiter::default()),
        queue: queue.clone(),
        clock: clock.clone(),
    };
    let settings = test_settings();
    // The engine under test, with its own config; the service for set-up, wired as every entry point wires it.
    let octo = OctoClient::new(
        EndpointPolicy {
            allow_private_and_http: true,
        },
        settings.octo(),
    );
    let engine = Arc::new(SyncEngine::new(ports.clone(), octo, config));
    let service = Arc::clone(app::build(ports, &settings, Host::Local).service());
    Harness {
        queue,
        _dir: dir,
        store,
        clock,
        engine,
        service,
        receiver,
    }
}

fn harness(config: SyncConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    harness_with(Arc::new(store.clone()), store, dir, config)
}

impl Harness {
    async fn approved(&self, octo: &FakeOcto) -> IntegrationId {
        let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
        let created = self
            .service
            .create(PartnerId::generate(1_800_000_000), new, Role::Partner)
            .await
            .unwrap();
        let id = created.integration.id;
        self.service
            .admin_update(id, AdminPatch::approval())
            .await
            .unwrap();
        id
    }

    async fn record(&self, id: IntegrationId) -> seyaha::domain::IntegrationRecord {
        self.store.get(&id).await.unwrap().unwrap()
    }

    async fn runs(&self, id: IntegrationId) -> Vec<seyaha::domain::SyncRun> {
        self.store
            .recent_runs(&id, 50, self.clock.now())
            .await
            .unwrap()
    }

    async fn active(&self, id: IntegrationId) -> usize {
        self.store
            .activities(&id)
            .await
            .unwrap()
            .iter()
            .filter(|a| a.is_active)
            .count()
    }

    /// The next job that is ready now. Immediate jobs are in the queue by the time the call
    /// that sent them returns, and delayed ones only become ready when the clock moves, so
    /// this never needs to wait.
    fn next_job(&mut self) -> Option<SyncJob> {
        self.receiver.try_recv()
    }

    /// Runs the fan-out page jobs that are ready (and the pages they queue) and returns the
    /// other jobs that are ready, in order.
    async fn fan_out(&mut self) -> Vec<SyncJob> {
        let mut others = Vec::new();
        while let Some(job) = self.next_job() {
            if matches!(job.work, JobWork::FanOutPage(_)) {
                self.engine.handle_job(&job).await.unwrap();
            } else {
                others.push(job);
            }
        }
        others
    }

    /// The next job, after the clock moved past a delayed one's due time (its timer task
    /// wakes asynchronously): polls with a deadline.
    async fn next_job_after_moving_the_clock(&mut self) -> SyncJob {
        tokio::time::timeout(Duration::from_secs(10), self.receiver.recv())
            .await
            .ok()
            .flatten()
            .expect("the delayed job arrives")
    }
}

#[tokio::test]
async fn a_message_handled_twice_changes_nothing_the_second_time() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap()
    );
    let job = h.next_job().expect("a job is queued");

    let first = h.engine.handle_job(&job).await.unwrap();
    assert!(
        matches!(first, SyncResult::Done { skipped: false, .. }),
        "{first:?}"
    );
    let record = h.record(id).await;
    let catalog = h.store.activities(&id).await.unwrap();

    let second = h.engine.handle_job(&job).await.unwrap();
    assert_eq!(
        second,
        SyncResult::NotNeeded,
        "the request was already served"
    );
    assert_eq!(h.record(id).await, record, "the integration is untouched");
    assert_eq!(
        h.store.activities(&id).await.unwrap(),
        catalog,
        "the catalog is untouched"
    );
    assert_eq!(h.runs(id).await.len(), 1, "no second run");
    assert_eq!(octo.product_calls(), 1, "the partner is not called again");
    assert!(h.next_job().is_none(), "nothing else was queued");
}

#[tokio::test]
async fn a_sync_dying_in_the_middle_of_its_writes_is_completed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    // Every put_activities after the first two fails, like a process dying mid-sync.
    let allowed = Arc::new(AtomicUsize::new(2));
    let budget = Arc::clone(&allowed);
    let crashing = Arc::new(HookedCatalog::new(
        store.clone(),
        move |call, _| match call {
            CatalogCall::PutActivities(_)
                if budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err() =>
            {
                Err(StoreError::unavailable("simulated crash"))
            }
            _ => Ok(()),
        },
    ));
    let config = SyncConfig {
        write_batch: 3,
        ..SyncConfig::default()
    };
    let h = harness_with(crashing.clone(), store, dir, config);
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(10));
    let id = h.approved(&octo).await;

    // Two batches of three are written, then the "process" dies.
    let record = h.record(id).await;
    let crashed = h.engine.trigger(record).await;
    assert!(crashed.is_err(), "{crashed:?}");
    assert_eq!(
        h.store.activities(&id).await.unwrap().len(),
        6,
        "a partial catalog"
    );
    let after_crash = h.record(id).await;
    assert!(
        after_crash.sync_control.lease.is_none(),
        "the lease was given back"
    );
    assert!(
        after_crash.integration.sync.last_sync_hash.is_none(),
        "the hash was not committed"
    );

    // The next run diffs against what was written and completes it.
    allowed.store(usize::MAX, Ordering::SeqCst);
    let done = h.engine.trigger(h.record(id).await).await.unwrap();
    let SyncResult::Done {
        counts,
        skipped: false,
        ..
    } = done
    else {
        panic!("{done:?}")
    };
    assert_eq!(
        (counts.synced, counts.created, counts.unchanged),
        (10, 4, 6)
    );
    assert_eq!(h.active(id).await, 10);
    assert!(h.record(id).await.integration.sync.last_sync_hash.is_some());
}

#[tokio::test]
async fn a_lease_left_by_a_dead_sync_expires_and_the_watchdog_runs_the_follow_up() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;

    // A sync took the lease and died: its record says "syncing" with a lease nobody will release.
    let mut record = h.record(id).await;
    let previous = record.clone();
    let lease = SyncConfig::default().lease;
    record.sync_control.lease = Some(Lease {
        run_id: RunId::generate(0),
        expires_at: h.clock.now().plus_millis(lease.as_millis() as i64),
        covers: None,
    });
    record.integration.sync.status = SyncStatus::Syncing;
    record.version += 1;
    h.store.update(&record, &previous).await.unwrap();

    let busy = h.engine.trigger(h.record(id).await).await.unwrap();
    assert_eq!(busy, SyncResult::Queued);
    assert!(h.record(id).await.sync_control.requested_at.is_some());

    // Nobody finishes the dead run. The watchdog is not due while the lease holds...
    h.clock.advance(lease - Duration::from_secs(1));
    assert!(h.next_job().is_none(), "no job before the lease expires");
    assert_eq!(
        h.engine.trigger(h.record(id).await).await.unwrap(),
        SyncResult::Queued,
        "the lease still holds"
    );
    // ...and arrives once it expired, and syncs.
    h.clock.advance(Duration::from_secs(3));
    let watchdog = h.next_job_after_moving_the_clock().await;
    assert_eq!(watchdog.trigger, RunTrigger::FollowUp);
    let result = h.engine.handle_job(&watchdog).await.unwrap();
    assert!(
        matches!(result, SyncResult::Done { skipped: false, .. }),
        "{result:?}"
    );
    let record = h.record(id).await;
    assert_eq!(record.integration.sync.status, SyncStatus::Idle);
    assert!(record.sync_control.lease.is_none() && record.sync_control.requested_at.is_none());
    assert_eq!(h.active(id).await, 3);
}

#[tokio::test]
async fn nightly_probes_down_integrations_and_recovers_them_with_a_full_sync() {
    let mut h = harness(SyncConfig::default());
    let healthy_octo = FakeOcto::start().await;
    let failing_octo = FakeOcto::start().await;
    let healthy = h.approved(&healthy_octo).await;
    let down = h.approved(&failing_octo).await;
    for id in [healthy, down] {
        h.clock.advance(Duration::from_secs(1)); // runs are ordered by when they started
        let record = h.record(id).await;
        assert!(matches!(
            h.engine.trigger(record).await.unwrap(),
            SyncResult::Done { .. }
        ));
    }
    failing_octo.set_behaviour(Behaviour::Status(500));
    for _ in 0..3 {
        h.clock.advance(Duration::from_secs(1));
        let record = h.record(down).await;
        assert!(matches!(
            h.engine.trigger(record).await.unwrap(),
            SyncResult::Failed { .. }
        ));
    }
    assert_eq!(
        h.record(down).await.integration.health.status,
        HealthStatus::Down
    );
    assert_eq!(h.active(down).await, 0);

    let run_nightly = |h: &mut Harness| {
        let engine = Arc::clone(&h.engine);
        async move { engine.request_all(RunTrigger::Nightly).await.unwrap() }
    };
    assert_eq!(
        run_nightly(&mut h).await,
        2,
        "both count: one is synced, one only probed"
    );
    let jobs = h.fan_out().await;
    assert_eq!(jobs.len(), 2);
    for job in jobs {
        assert_eq!(job.trigger, RunTrigger::Nightly);
        h.clock.advance(Duration::from_secs(1));
        h.engine.handle_job(&job).await.unwrap();
    }
    let probe = &h.runs(down).await[0];
    assert_eq!(
        (probe.trigger, probe.outcome),
        (RunTrigger::Nightly, RunOutcome::Error),
        "still down: a probe, no writes"
    );
    assert_eq!(h.active(down).await, 0);
    assert_eq!(
        h.record(down).await.integration.health.consecutive_failures,
        4
    );
    assert_eq!(h.runs(healthy).await[0].outcome, RunOutcome::Skipped);

    failing_octo.set_behaviour(Behaviour::Normal);
    run_nightly(&mut h).await;
    for job in h.fan_out().await {
        h.clock.advance(Duration::from_secs(1));
        h.engine.handle_job(&job).await.unwrap();
    }
    let recovered = &h.runs(down).await[0];
    assert_eq!(
        (recovered.outcome, recovered.counts.updated),
        (RunOutcome::Synced, 3),
        "forced full sync despite the same hash"
    );
    assert_eq!(
        h.record(down).await.integration.health.status,
        HealthStatus::Healthy
    );
    assert_eq!(h.active(down).await, 3);
}

#[tokio::test]
async fn the_nightly_listing_pages_through_many_integrations() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    for _ in 0..230 {
        h.approved(&octo).await;
    }
    assert_eq!(
        h.engine.request_all(RunTrigger::Nightly).await.unwrap(),
        230
    );
    let mut pages = 0;
    let mut jobs = 0;
    while let Some(job) = h.next_job() {
        if matches!(job.work, JobWork::FanOutPage(_)) {
            pages += 1;
            h.engine.handle_job(&job).await.unwrap();
        } else {
            jobs += 1;
        }
    }
    assert_eq!(
        (pages, jobs),
        (3, 230),
        "one job per integration across three page jobs"
    );
    // A second fan-out before any job ran is coalesced away.
    assert_eq!(
        h.engine.request_all(RunTrigger::Nightly).await.unwrap(),
        230
    );
    assert!(h.fan_out().await.is_empty());
}

/// Kills the worker running `job` at the send numbered `skip + 1` from now (that send never
/// happens), as a Lambda timeout or a SIGKILL would: its future is dropped mid-way.
async fn kill_during_send(h: &Harness, job: &SyncJob, skip: usize) {
    h.queue.hang_next_send(skip);
    let worker = tokio::spawn({
        let (engine, job) = (Arc::clone(&h.engine), job.clone());
        async move { engine.handle_job(&job).await }
    });
    tokio::time::timeout(Duration::from_secs(10), h.queue.hung.notified())
        .await
        .expect("the worker reaches the send");
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
}

impl Harness {
    /// The jobs ready now, split into fan-out pages and the rest.
    fn ready_jobs(&mut self) -> (Vec<SyncJob>, Vec<SyncJob>) {
        std::iter::from_fn(|| self.next_job())
            .partition(|job| matches!(job.work, JobWork::FanOutPage(_)))
    }

    async fn run_all(&self, jobs: &[SyncJob]) {
        for job in jobs {
            self.engine.handle_job(job).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_fan_out_page_killed_mid_way_is_delivered_again_and_every_integration_syncs_exactly_once()
{
    let mut h = harness(SyncConfig {
        fan_out_page: 3,
        ..SyncConfig::default()
    });
    let octo = FakeOcto::start().await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(h.approved(&octo).await);
    }
    assert_eq!(h.engine.request_all(RunTrigger::Nightly).await.unwrap(), 10);
    let (mut pages, syncs) = h.ready_jobs();
    assert!(
        syncs.is_empty(),
        "the request only queues the first page: {syncs:?}"
    );
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].lane, Lane::Bulk);

    // Page 1 runs whole: three syncs on the bulk lane, then the next page.
    h.engine.handle_job(&pages.remove(0)).await.unwrap();
    let (mut pages, mut syncs) = h.ready_jobs();
    assert_eq!((pages.len(), syncs.len()), (1, 3));
    assert!(
        syncs
            .iter()
            .all(|job| job.lane == Lane::Bulk && job.trigger == RunTrigger::Nightly),
        "{syncs:?}"
    );

    // Page 2 dies after queuing its syncs, before queuing page 3; its syncs run, then SQS
    // delivers it again: it sends page 3 and none of its syncs again.
    let second = pages.remove(0);
    kill_during_send(&h, &second, 1).await;
    let (none, more) = h.ready_jobs();
    assert!(none.is_empty());
    syncs.extend(more);
    assert_eq!(syncs.len(), 6);
    h.run_all(&syncs).await;
    h.engine.handle_job(&second).await.unwrap();
    let (mut pages, again) = h.ready_jobs();
    assert!(
        again.is_empty(),
        "served syncs are not requested again: {again:?}"
    );
    assert_eq!(pages.len(), 1);

    // Page 3 dies before sending anything (its requests are written); it is delivered again,
    // twice (SQS may duplicate): its syncs are sent again (harmless: one of each runs).
    let third = pages.remove(0);
    kill_during_send(&h, &third, 0).await;
    assert_eq!(h.ready_jobs().0.len() + h.ready_jobs().1.len(), 0);
    h.run_all(&[third.clone(), third]).await;
    let (pages, third_syncs) = h.ready_jobs();
    assert_eq!(
        (pages.len(), third_syncs.len()),
        (2, 6),
        "each delivery sends the page's three syncs and the next page"
    );

    // The last page (one integration), delivered twice: no page after it.
    h.run_all(&pages).await;
    let (after_last, last_syncs) = h.ready_jobs();
    assert!(after_last.is_empty());
    h.run_all(&third_syncs).await;
    h.run_all(&last_syncs).await;

    assert_eq!(octo.product_calls(), 10, "one fetch per integration");
    for id in ids {
        let runs = h.runs(id).await;
        assert_eq!(runs.len(), 1, "{id}: {runs:?}");
        assert_eq!(
            (runs[0].trigger, runs[0].outcome),
            (RunTrigger::Nightly, RunOutcome::Synced)
        );
        assert!(h.record(id).await.sync_control.requested_at.is_none());
    }
}

#[tokio::test]
async fn a_fan_out_spreads_its_syncs_over_the_window_at_times_fixed_by_id() {
    let window = Duration::from_secs(600);
    let mut h = harness(SyncConfig {
        fan_out_page: 4,
        fan_out_window: window,
        ..SyncConfig::default()
    });
    let octo = FakeOcto::start().await;
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(h.approved(&octo).await);
    }
    let start = h.clock.now();
    assert_eq!(h.engine.request_all(RunTrigger::Nightly).await.unwrap(), 10);
    let ready = h.fan_out().await;
    let due_of = |jobs: &[(SyncJob, Duration)],
                  from: seyaha::domain::Timestamp|
     -> std::collections::BTreeMap<IntegrationId, i64> {
        jobs.iter()
            .map(|(job, _)| {
                (
                    job.integration_id.unwrap(),
                    job.not_before.unwrap().unix_millis() - from.unix_millis(),
                )
            })
            .collect()
    };
    let delayed = std::mem::take(&mut *h.queue.delayed.lock().unwrap());
    // A sync due at the very start of the window is queued at once.
    assert_eq!(delayed.len() + ready.len(), 10);
    for (job, delay) in &delayed {
        let offset = job.not_before.unwrap().unix_millis() - start.unix_millis();
        assert_eq!(
            delay.as_millis() as i64,
            offset,
            "queued with the delay to its due time"
        );
        assert!(
            (0..600_000).contains(&offset),
            "inside the window: {offset} ms"
        );
    }
    let offsets = due_of(&delayed, start);
    let minutes: std::collections::BTreeSet<i64> = offsets.values().map(|ms| ms / 60_000).collect();
    assert!(
        minutes.len() >= 3,
        "spread, not all in the same minutes: {offsets:?}"
    );

    // Each sync runs when its due time comes, in due order.
    let mut by_due: Vec<(i64, IntegrationId)> = offsets.iter().map(|(id, ms)| (*ms, *id)).collect();
    by_due.sort();
    h.run_all(&ready).await;
    for (offset, id) in &by_due {
        h.clock.advance(Duration::from_millis(
            (start.unix_millis() + offset - h.clock.now().unix_millis()) as u64,
        ));
        let job = h.next_job_after_moving_the_clock().await;
        assert_eq!(job.integration_id, Some(*id), "the next due sync arrives");
        h.engine.handle_job(&job).await.unwrap();
        assert_eq!(
            h.runs(*id).await[0].started_at.unix_millis(),
            start.unix_millis() + offset
        );
    }
    assert_eq!(octo.product_calls(), 10);

    // The next fan-out, a day later, puts each integration at the same point of its window.
    h.clock.advance(Duration::from_secs(24 * 3600));
    let next_start = h.clock.now();
    h.engine.request_all(RunTrigger::Nightly).await.unwrap();
    let ready_again = h.fan_out().await;
    assert_eq!(ready_again.len(), ready.len());
    let delayed_again = std::mem::take(&mut *h.queue.delayed.lock().unwrap());
    assert_eq!(
        due_of(&delayed_again, next_start),
        offsets,
        "the same offsets by id"
    );
}

#[tokio::test]
async fn a_real_time_request_is_not_held_back_by_a_fan_out_request_due_later() {
    let mut h = harness(SyncConfig {
        fan_out_window: Duration::from_secs(3600),
        ..SyncConfig::default()
    });
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    h.engine.request_all(RunTrigger::Nightly).await.unwrap();
    let ready = h.fan_out().await;
    let deferred = h.queue.delayed.lock().unwrap().pop();
    let Some((nightly, _)) = deferred else {
        // Due at the very start of its window (a 1 in 3.6 million hash): nothing to defer.
        assert_eq!(ready.len(), 1);
        return;
    };

    // Before the nightly sync is due (half way there: its hash may put it in the window's
    // first minute), an admin asks for a sync: sent now, not coalesced into the nightly
    // request that waits for its point of the window.
    let wait = (nightly.not_before.unwrap().unix_millis() - h.clock.now().unix_millis()) / 2;
    if wait < 1 {
        return;
    }
    h.clock.advance(Duration::from_millis(wait as u64));
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap(),
        "requested now"
    );
    let admin = h.next_job().expect("a real-time job now");
    assert_eq!(
        (admin.lane, admin.trigger),
        (Lane::RealTime, RunTrigger::Admin)
    );
    assert!(matches!(
        h.engine.handle_job(&admin).await.unwrap(),
        SyncResult::Done { .. }
    ));

    // The nightly job, when due, finds the request served.
    let due = nightly.not_before.unwrap();
    h.clock.advance(Duration::from_millis(
        (due.unix_millis() - h.clock.now().unix_millis()).max(0) as u64,
    ));
    let nightly = h.next_job_after_moving_the_clock().await;
    assert_eq!(
        h.engine.handle_job(&nightly).await.unwrap(),
        SyncResult::NotNeeded
    );
    assert_eq!(octo.product_calls(), 1);
}

#[tokio::test]
async fn a_sync_due_after_the_queues_longest_delay_is_put_back_until_it_is_due() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap()
    );
    h.next_job().expect("the admin job");
    let due = h.clock.now().plus_millis(40 * 60 * 1000);
    let job = SyncJob::bulk_catalog(id, RunTrigger::Nightly, Some(due));

    // Delivered 15 minutes after it was sent (SQS's longest delay): back for the rest.
    h.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(h.engine.handle_job(&job).await.unwrap(), SyncResult::Queued);
    let (put_back, delay) = h
        .queue
        .delayed
        .lock()
        .unwrap()
        .pop()
        .expect("put back on the queue");
    assert_eq!(
        (put_back, delay),
        (job.clone(), Duration::from_secs(15 * 60)),
        "at most 15 minutes again, same job"
    );
    h.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(h.next_job_after_moving_the_clock().await, job);
    assert_eq!(h.engine.handle_job(&job).await.unwrap(), SyncResult::Queued);
    assert_eq!(
        h.queue.delayed.lock().unwrap().pop().unwrap().1,
        Duration::from_secs(10 * 60),
        "the rest"
    );
    assert_eq!(octo.product_calls(), 0, "nothing ran early");

    h.clock.advance(Duration::from_secs(10 * 60));
    let job = h.next_job_after_moving_the_clock().await;
    assert!(matches!(
        h.engine.handle_job(&job).await.unwrap(),
        SyncResult::Done { .. }
    ));
    assert_eq!(octo.product_calls(), 1);
}

#[tokio::test]
async fn a_request_whose_message_was_never_sent_is_not_coalesced_away() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;

    // The flag is written, then SQS refuses the message: the caller gets an error...
    h.queue.failures.store(1, Ordering::SeqCst);
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Fallback, None)
            .await
            .is_err()
    );
    assert!(
        h.record(id).await.sync_control.requested_at.is_none(),
        "the unsent request was withdrawn"
    );
    // ...and its retry sends a job instead of finding the request already made.
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap(),
        "not coalesced with the lost request"
    );
    assert_eq!(h.next_job().map(|job| job.trigger), Some(RunTrigger::Admin));

    // The nightly fan-out: an unsent first page leaves nothing requested, so the retried run
    // sends it; a page whose sync job was not sent sends it when the page is delivered again.
    h.engine
        .handle_job(&SyncJob::catalog(id, RunTrigger::Admin))
        .await
        .unwrap();
    h.queue.failures.store(1, Ordering::SeqCst);
    assert!(h.engine.request_all(RunTrigger::Nightly).await.is_err());
    assert!(h.next_job().is_none());
    assert!(h.record(id).await.sync_control.requested_at.is_none());
    assert_eq!(h.engine.request_all(RunTrigger::Nightly).await.unwrap(), 1);
    let page = h.next_job().expect("the first page job");
    h.queue.failures.store(1, Ordering::SeqCst);
    assert!(h.engine.handle_job(&page).await.is_err());
    assert!(h.next_job().is_none());
    h.engine.handle_job(&page).await.unwrap();
    assert_eq!(
        h.next_job().map(|job| job.trigger),
        Some(RunTrigger::Nightly),
        "the page delivered again sends the job"
    );
}

/// Waits (polling, with a deadline) until the held supplier has received `calls` requests.
async fn until_supplier_called(octo: &FakeOcto, calls: usize) {
    seyaha_tests::wait_until(
        "the sync to reach the supplier",
        Duration::from_secs(10),
        || octo.product_calls() >= calls,
    )
    .await;
}

#[tokio::test]
async fn a_job_whose_worker_dies_mid_sync_is_finished_by_its_redelivery() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(4));
    let id = h.approved(&octo).await;
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap()
    );
    let job = h.next_job().expect("the job");

    // The worker takes the lease, reaches the supplier, and dies (Lambda timeout, OOM, SIGKILL).
    octo.set_behaviour(Behaviour::Held);
    let worker = tokio::spawn({
        let (engine, job) = (Arc::clone(&h.engine), job.clone());
        async move { engine.handle_job(&job).await }
    });
    until_supplier_called(&octo, 1).await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let dead = h.record(id).await;
    assert!(
        dead.sync_control.live_lease(h.clock.now()).is_some()
            && dead.sync_control.requested_at.is_some(),
        "{dead:?}"
    );
    assert_eq!(
        h.service.admin_get(id).await.unwrap().sync.status,
        SyncStatus::Syncing,
        "the lease still holds"
    );

    // SQS redelivers the message while the dead run's lease still holds: it must not be consumed
    // as done; it leaves a watchdog for the lease's expiry.
    assert_eq!(h.engine.handle_job(&job).await.unwrap(), SyncResult::Queued);
    assert!(h.next_job().is_none());

    // Past the lease nobody reads "syncing", and the watchdog finishes the work: no new trigger.
    h.clock
        .advance(SyncConfig::default().lease + Duration::from_secs(2));
    let shown = h.service.admin_get(id).await.unwrap().sync;
    assert_eq!(
        shown.status,
        SyncStatus::Error,
        "an expired lease is not a running sync"
    );
    assert!(shown.error_message.unwrap().contains("interrupted"));
    octo.release();
    let watchdog = h.next_job_after_moving_the_clock().await;
    let done = h.engine.handle_job(&watchdog).await.unwrap();
    assert!(
        matches!(done, SyncResult::Done { skipped: false, .. }),
        "{done:?}"
    );
    let record = h.record(id).await;
    assert_eq!(record.integration.sync.status, SyncStatus::Idle);
    assert!(record.sync_control.lease.is_none() && record.sync_control.requested_at.is_none());
    assert_eq!(h.active(id).await, 4, "the catalog is complete");
}

#[tokio::test]
async fn a_webhook_sync_whose_process_dies_is_finished_by_its_watchdog() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    octo.set_behaviour(Behaviour::Held);
    let trigger = tokio::spawn({
        let (engine, record) = (Arc::clone(&h.engine), h.record(id).await);
        async move { engine.trigger(record).await }
    });
    until_supplier_called(&octo, 1).await;
    trigger.abort();
    assert!(trigger.await.unwrap_err().is_cancelled());
    assert!(h.next_job().is_none(), "the watchdog waits for the lease");

    h.clock
        .advance(SyncConfig::default().lease + Duration::from_secs(2));
    octo.release();
    let watchdog = h.next_job_after_moving_the_clock().await;
    assert_eq!(watchdog.trigger, RunTrigger::FollowUp);
    assert!(matches!(
        h.engine.handle_job(&watchdog).await.unwrap(),
        SyncResult::Done { .. }
    ));
    assert_eq!(h.record(id).await.integration.sync.status, SyncStatus::Idle);
    assert_eq!(h.active(id).await, 3);

    // A webhook sync that commits leaves its watchdog nothing to do.
    h.clock.advance(Duration::from_secs(1));
    assert!(matches!(
        h.engine.trigger(h.record(id).await).await.unwrap(),
        SyncResult::Done { skipped: true, .. }
    ));
    h.clock
        .advance(SyncConfig::default().lease + Duration::from_secs(2));
    let watchdog = h.next_job_after_moving_the_clock().await;
    assert_eq!(
        h.engine.handle_job(&watchdog).await.unwrap(),
        SyncResult::NotNeeded
    );
}

#[tokio::test]
async fn a_job_past_its_deadline_hands_off_instead_of_running_over() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap()
    );
    let job = h.next_job().unwrap();

    // The invocation ends now: after the fetch the run hands off rather than writing on.
    let result = h
        .engine
        .handle_job_before(&job, Some(std::time::Instant::now()))
        .await
        .unwrap();
    assert_eq!(result, SyncResult::Queued);
    let record = h.record(id).await;
    assert!(
        record.sync_control.lease.is_none() && record.sync_control.requested_at.is_some(),
        "released, still requested"
    );
    let handoff = h.next_job().expect("a hand-off job");
    assert_eq!(handoff.trigger, RunTrigger::Handoff);
    assert!(matches!(
        h.engine.handle_job(&handoff).await.unwrap(),
        SyncResult::Done { skipped: false, .. }
    ));
    assert_eq!(h.active(id).await, 3);
}

#[tokio::test]
async fn the_jobs_a_bulk_sync_leaves_behind_stay_in_the_bulk_lane() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    h.engine.request_all(RunTrigger::Nightly).await.unwrap();
    let jobs = h.fan_out().await;
    assert_eq!(jobs.len(), 1);
    let nightly = &jobs[0];

    // Out of time after the fetch: the hand-off goes to the bulk lane, not the real-time one.
    assert_eq!(
        h.engine
            .handle_job_before(nightly, Some(std::time::Instant::now()))
            .await
            .unwrap(),
        SyncResult::Queued
    );
    let handoff = h.next_job().expect("a hand-off job");
    assert_eq!(
        (handoff.trigger, handoff.lane),
        (RunTrigger::Handoff, Lane::Bulk)
    );

    // The same job delivered while a sync holds the lease: its watchdog stays bulk too.
    octo.set_behaviour(Behaviour::Held);
    let running = tokio::spawn({
        let (engine, job) = (Arc::clone(&h.engine), handoff.clone());
        async move { engine.handle_job(&job).await }
    });
    until_supplier_called(&octo, 2).await;
    assert_eq!(
        h.engine.handle_job(nightly).await.unwrap(),
        SyncResult::Queued
    );
    let (watchdog, _) = h.queue.delayed.lock().unwrap().pop().expect("a watchdog");
    assert_eq!(
        (watchdog.trigger, watchdog.lane),
        (RunTrigger::FollowUp, Lane::Bulk)
    );
    octo.release();
    assert!(matches!(
        running.await.unwrap().unwrap(),
        SyncResult::Done { .. }
    ));
    assert_eq!(h.record(id).await.sync_control.lease, None);
}

/// DOWN deactivates the catalog, and a sync rewrites it: both are catalog writes, so they must
/// not interleave. Here the probe that tips the integration into DOWN is held in the middle of
/// its deactivation while a sync arrives; whatever the order, the catalog must end active and
/// agree with the committed hash (before the fix, the deactivation landed after the sync had
/// committed, and every later sync skipped the unchanged catalog: inactive for good).
#[tokio::test]
async fn a_down_deactivation_and_a_sync_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    let catalog = Arc::new(HookedCatalog::new(store.clone(), |_, _| Ok(())));
    let mut h = harness_with(catalog.clone(), store, dir, SyncConfig::default());
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(3));
    let id = h.approved(&octo).await;
    h.engine.trigger(h.record(id).await).await.unwrap();
    assert_eq!(h.active(id).await, 3);

    // Two failed connection tests; the third makes the integration DOWN and is held while it
    // deactivates the catalog.
    for _ in 0..2 {
        h.engine
            .record_probe(id, ProbeOutcome::Failure)
            .await
            .unwrap();
    }
    let mut held = catalog.hold_next(|call| matches!(call, CatalogCall::SetActive(_)));
    let engine = Arc::clone(&h.engine);
    let probe = tokio::spawn(async move { engine.record_probe(id, ProbeOutcome::Failure).await });
    held.arrived().await;
    assert_eq!(
        h.record(id).await.integration.health.status,
        HealthStatus::Down
    );

    // The partner is back and triggers a sync meanwhile.
    h.engine.trigger(h.record(id).await).await.unwrap();
    held.release();
    probe.await.unwrap().unwrap();

    // Let every job that is due run, then the partner's next trigger.
    while let Some(job) = h.next_job() {
        h.engine.handle_job(&job).await.unwrap();
    }
    h.engine.trigger(h.record(id).await).await.unwrap();
    assert_eq!(
        h.active(id).await,
        3,
        "the catalog ends active, as the supplier's is"
    );
    let record = h.record(id).await;
    assert_eq!(record.integration.health.status, HealthStatus::Healthy);
    assert!(!record.sync_control.force_full_sync);
}

/// The day-15 pull of `product`, one option or all.
fn pull_of(product: &str, option: Option<&str>, day: u8) -> seyaha::domain::AvailabilityPull {
    let date = time::Date::from_calendar_date(2030, time::Month::July, day).unwrap();
    seyaha::domain::AvailabilityPull {
        product_id: product.into(),
        option_id: option.map(str::to_owned),
        from: date,
        to: date,
    }
}

/// Every job that is ready now.
fn ready_jobs(h: &mut Harness) -> Vec<SyncJob> {
    std::iter::from_fn(|| h.next_job()).collect()
}

/// A partner's pull flood (docs/security.md), automated: 60 pull requests for one partner (3 distinct pulls
/// among them) leave one job in the queue, and that job makes each distinct pull's calls once
/// (at most 4 at a time). While a sync holds the lease, a request sends no job that could run
/// (only a watchdog at the lease's expiry), a pull job arriving meanwhile sends nothing (no
/// re-queue loop), and the sync's release sends the one job that serves the pulls.
#[tokio::test]
async fn a_flood_of_pull_requests_leaves_one_job_and_pulls_each_distinct_pull_once() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    let synced = h.engine.trigger(h.record(id).await).await.unwrap();
    assert!(matches!(synced, SyncResult::Done { .. }), "{synced:?}");
    ready_jobs(&mut h);
    h.queue.delayed.lock().unwrap().clear(); // the webhook sync's watchdog
    let distinct = [
        pull_of("product_0", None, 15),
        pull_of("product_1", Some("DEFAULT"), 15),
        pull_of("product_0", None, 16),
    ];
    for n in 0..60 {
        h.engine
            .request_pulls(id, std::slice::from_ref(&distinct[n % 3]))
            .await
            .unwrap();
    }
    let jobs = ready_jobs(&mut h);
    assert_eq!(
        jobs.len(),
        1,
        "one job for the integration, not one per request: {jobs:?}"
    );
    assert!(
        h.queue.delayed.lock().unwrap().is_empty(),
        "and none delayed"
    );

    let served = h.engine.handle_job(&jobs[0]).await.unwrap();
    assert!(matches!(served, SyncResult::Done { .. }), "{served:?}");
    // product_0 has two options (DEFAULT, option-1): 2 + 1 + 2 calls, one per option and day.
    assert_eq!(
        octo.availability_calls().len(),
        5,
        "{:?}",
        octo.availability_calls()
    );
    assert!(octo.most_availability_calls_at_once() <= seyaha::sync::MAX_CONCURRENT_CALLS);
    assert!(
        ready_jobs(&mut h).is_empty(),
        "everything was served: no follow-up"
    );
    let record = h.record(id).await;
    assert!(
        record.sync_control.pulls_requested_at.is_none() && record.sync_control.lease.is_none(),
        "{record:?}"
    );
    assert!(h.store.pending_pulls(&id, 10).await.unwrap().is_empty());
    let pulls = h
        .runs(id)
        .await
        .into_iter()
        .filter(|run| run.trigger == RunTrigger::AvailabilityPull)
        .count();
    assert_eq!(pulls, 3, "one run record per distinct pull");

    // A sync holds the lease (its supplier answers slowly) while pulls are asked for.
    octo.set_behaviour(Behaviour::Held);
    assert!(
        h.engine
            .request_sync(id, RunTrigger::Admin, None)
            .await
            .unwrap()
    );
    let sync_job = h.next_job().expect("the sync's job");
    let sync = tokio::spawn({
        let (engine, job) = (Arc::clone(&h.engine), sync_job.clone());
        async move { engine.handle_job(&job).await }
    });
    until_supplier_called(&octo, 2).await;
    for _ in 0..20 {
        h.engine
            .request_pulls(id, &[pull_of("product_1", None, 20)])
            .await
            .unwrap();
    }
    assert!(
        ready_jobs(&mut h).is_empty(),
        "no job that could run while the lease is held"
    );
    assert_eq!(
        h.queue.delayed.lock().unwrap().len(),
        1,
        "one watchdog for a holder that dies"
    );
    let sends = h.queue.sends.load(Ordering::SeqCst);
    assert_eq!(
        h.engine
            .handle_job(&SyncJob::pending_pulls(id))
            .await
            .unwrap(),
        SyncResult::Queued
    );
    assert_eq!(
        h.queue.sends.load(Ordering::SeqCst),
        sends,
        "a pull job meeting the lease sends nothing"
    );

    octo.release();
    assert!(matches!(
        sync.await.unwrap().unwrap(),
        SyncResult::Done { .. }
    ));
    let jobs = ready_jobs(&mut h);
    assert_eq!(
        jobs.iter().map(|job| job.work.clone()).collect::<Vec<_>>(),
        [JobWork::PendingPulls],
        "the release sends the pulls' job"
    );
    h.engine.handle_job(&jobs[0]).await.unwrap();
    assert_eq!(
        octo.availability_calls().len(),
        7,
        "product_1's two options for day 20, once"
    );
    assert!(h.record(id).await.sync_control.pulls_requested_at.is_none());
}

/// A run serves at most 16 pending pulls; what is left (and what is asked for while it runs)
/// is served by the job its release sends, and a pull asked for again while it was being
/// served is kept for that next run.
#[tokio::test]
async fn pending_pulls_beyond_one_run_are_served_by_the_next_run() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    h.engine.trigger(h.record(id).await).await.unwrap();
    ready_jobs(&mut h);
    let pulls: Vec<_> = (1..=20)
        .map(|day| pull_of("product_1", Some("DEFAULT"), day))
        .collect();
    h.engine.request_pulls(id, &pulls).await.unwrap();
    let first = ready_jobs(&mut h);
    assert_eq!(first.len(), 1);
    h.engine.handle_job(&first[0]).await.unwrap();
    assert_eq!(
        octo.availability_calls().len(),
        seyaha::sync::MAX_PULLS_PER_RUN
    );
    assert_eq!(
        h.store.pending_pulls(&id, 50).await.unwrap().len(),
        20 - seyaha::sync::MAX_PULLS_PER_RUN
    );
    let next = ready_jobs(&mut h);
    assert_eq!(
        next.iter().map(|job| job.work.clone()).collect::<Vec<_>>(),
        [JobWork::PendingPulls],
        "the release sent the next run"
    );
    h.engine.handle_job(&next[0]).await.unwrap();
    assert_eq!(octo.availability_calls().len(), 20);
    assert!(ready_jobs(&mut h).is_empty());
    assert!(h.record(id).await.sync_control.pulls_requested_at.is_none());
}

/// A pull job honours the worker's deadline: past it, the run serves its first pull (every run
/// makes progress), starts no other, and its release sends the job for the rest.
#[tokio::test]
async fn a_pull_run_past_its_deadline_serves_one_pull_and_leaves_the_rest_to_the_next_job() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let id = h.approved(&octo).await;
    h.engine.trigger(h.record(id).await).await.unwrap();
    ready_jobs(&mut h);
    let pulls: Vec<_> = (1..=3)
        .map(|day| pull_of("product_1", Some("DEFAULT"), day))
        .collect();
    h.engine.request_pulls(id, &pulls).await.unwrap();
    let job = ready_jobs(&mut h).pop().expect("the pull job");
    h.engine
        .handle_job_before(&job, Some(std::time::Instant::now()))
        .await
        .unwrap();
    assert_eq!(
        octo.availability_calls().len(),
        1,
        "one pull, then the deadline"
    );
    assert_eq!(h.store.pending_pulls(&id, 10).await.unwrap().len(), 2);
    let next = ready_jobs(&mut h);
    assert_eq!(
        next.iter().map(|job| job.work.clone()).collect::<Vec<_>>(),
        [JobWork::PendingPulls]
    );
    h.engine.handle_job(&next[0]).await.unwrap();
    assert_eq!(octo.availability_calls().len(), 3);
    assert!(h.record(id).await.sync_control.pulls_requested_at.is_none());
}

/// A pull larger than a run may call (a product of 6 options over a year: 72 calls) is cut at
/// the run's call budget: what it did not call goes back as a pending pull (per option, from
/// the first piece not called), the release sends the job that finishes it, and no call is made
/// twice. A run past its deadline starts no further call of the pull it is in either.
#[tokio::test]
async fn a_pull_larger_than_a_run_is_cut_at_its_limits_and_finished_by_the_next_run() {
    let mut h = harness(SyncConfig::default());
    let octo = FakeOcto::start().await;
    let mut catalog = sample_catalog(3);
    let option = catalog[0]["options"][0].clone();
    let options: Vec<serde_json::Value> = (0..6)
        .map(|n| {
            let mut option = option.clone();
            option["id"] = serde_json::json!(format!("opt-{n}"));
            option
        })
        .collect();
    catalog[0]["options"] = serde_json::json!(options);
    octo.set_catalog(catalog);
    let id = h.approved(&octo).await;
    assert!(matches!(
        h.engine.trigger(h.record(id).await).await.unwrap(),
        SyncResult::Done { .. }
    ));
    ready_jobs(&mut h);
    let from = time::Date::from_calendar_date(2030, time::Month::January, 1).unwrap();
    let to = from + time::Duration::days(365);
    let year = seyaha::domain::AvailabilityPull {
        product_id: "product_0".into(),
        option_id: None,
        from,
        to,
    };
    h.engine
        .request_pulls(id, std::slice::from_ref(&year))
        .await
        .unwrap();
    let job = ready_jobs(&mut h).pop().expect("the pull job");
    h.engine.handle_job(&job).await.unwrap();
    assert_eq!(
        octo.availability_calls().len(),
        seyaha::sync::MAX_CALLS_PER_RUN,
        "cut at the run's call budget"
    );
    // 64 calls: options 0 to 4 whole (12 pieces each), and the sixth's first 4 pieces.
    let rest = seyaha::domain::AvailabilityPull {
        product_id: "product_0".into(),
        option_id: Some("opt-5".into()),
        from: from + time::Duration::days(4 * 31),
        to,
    };
    let pending: Vec<_> = h
        .store
        .pending_pulls(&id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(pull, _)| pull)
        .collect();
    assert_eq!(pending, [rest]);
    let next = ready_jobs(&mut h);
    assert_eq!(
        next.iter().map(|job| job.work.clone()).collect::<Vec<_>>(),
        [JobWork::PendingPulls],
        "the release sent the rest's job"
    );
    h.engine.handle_job(&next[0]).await.unwrap();
    let calls = octo.availability_calls();
    let distinct: std::collections::HashSet<String> = calls
        .iter()
        .map(|body| format!("{}/{}", body["optionId"], body["localDateStart"]))
        .collect();
    assert_eq!(
        (calls.len(), distinct.len()),
        (72, 72),
        "every piece called once"
    );
    assert!(h.store.pending_pulls(&id, 10).await.unwrap().is_empty());
    assert!(h.record(id).await.sync_control.pulls_requested_at.is_none());

    // Past its deadline, the pull makes its first call only; the rest is pending per option.
    h.engine
        .request_pulls(id, std::slice::from_ref(&year))
        .await
        .unwrap();
    let job = ready_jobs(&mut h).pop().expect("the pull job");
    h.engine
        .handle_job_before(&job, Some(std::time::Instant::now()))
        .await
        .unwrap();
    assert_eq!(octo.availability_calls().len(), 73);
    let pending = h.store.pending_pulls(&id, 10).await.unwrap();
    assert_eq!(pending.len(), 6, "{pending:?}");
    assert_eq!(
        (pending[0].0.option_id.as_deref(), pending[0].0.from),
        (Some("opt-0"), from + time::Duration::days(31))
    );
}
