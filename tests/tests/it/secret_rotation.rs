//! Webhook secret rotation over real HTTP: `POST /me/webhook-secret` (partner) and
//! `POST /admin/{id}/webhook-secret` (admin) answer a new secret; the replaced one keeps working
//! on both webhooks until `previous_valid_until` (the server's fake clock is moved past it, no
//! sleeping), only one previous secret is kept, and delete revokes everything at once. The
//! last test stages a lost race exactly, on the service behind a store that slips a competing
//! write in.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use seyaha::adapters::embedded::{FileSecretStore, InMemoryRateLimiter, InProcessQueue, RedbStore};
use seyaha::app::{self, Host};
use seyaha::domain::{IntegrationId, IntegrationRecord, PartnerId, Role, Timestamp, WebhookSecret};
use seyaha::ports::{
    Clock, Cursor, IntegrationFilter, IntegrationStore, Page, Ports, StaticSigningKey, StoreError,
};
use seyaha::service::ServiceError;
use seyaha::settings::Settings;
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto};
use seyaha_tests::{FakeClock, Registered, Reply, TestApp, new_partner, test_settings};

const OVERLAP_HOURS: u64 = 6;

/// A server on a fake clock with a 6-hour overlap (not the default, so the answer must follow
/// the setting), a fake supplier, and an approved integration that synced once (so the notify
/// below updates a known slot).
async fn setup() -> (TestApp, FakeOcto, Registered) {
    let app = TestApp::spawn_with_fake_clock(Settings {
        secret_overlap_hours: OVERLAP_HOURS,
        ..test_settings()
    })
    .await;
    let octo = FakeOcto::start().await;
    let integration = app.approved(&octo.base_url(), FAKE_KEY).await;
    app.trigger(&integration).await.expect_success(200);
    (app, octo, integration)
}

fn slot_update() -> Value {
    json!({"productId": "product_1", "optionId": "DEFAULT", "availabilityId": "slot-1",
           "localDateTimeStart": "2030-07-15T10:00:00+04:00", "status": "AVAILABLE", "vacancies": 4, "capacity": 10})
}

/// Whether the trigger took this secret: it synced or skipped an unchanged catalog (200), or
/// queued behind a sync already running (202; moving the clock hours on may start the nightly).
async fn trigger_accepts(app: &TestApp, id: &str, secret: &str) -> Result<(), Reply> {
    let trigger = app.webhook(id, "sync/trigger", Some(secret), None).await;
    match trigger.status.as_u16() {
        200 | 202 => Ok(()),
        _ => Err(trigger),
    }
}

/// Both webhooks with this secret: the trigger runs, the notify stores the slot.
async fn webhooks_accept(app: &TestApp, id: &str, secret: &str, what: &str) {
    if let Err(trigger) = trigger_accepts(app, id, secret).await {
        panic!(
            "{what}: sync/trigger answered {}: {}",
            trigger.status, trigger.text
        );
    }
    let notify = app
        .webhook(id, "availability/notify", Some(secret), Some(slot_update()))
        .await;
    assert_eq!(
        notify.expect_success(200),
        &json!({"updated": true}),
        "{what}: availability/notify"
    );
}

/// Both webhooks refuse this secret with the answer any wrong secret gets; returns it.
async fn webhooks_refuse(app: &TestApp, id: &str, secret: &str, what: &str) -> Vec<String> {
    let mut answers = Vec::new();
    for (route, body) in [
        ("sync/trigger", None),
        ("availability/notify", Some(slot_update())),
    ] {
        let reply = app.webhook(id, route, Some(secret), body).await;
        assert_eq!(reply.status, 401, "{what}: {route}: {}", reply.text);
        reply.expect_error(401);
        answers.push(reply.text);
    }
    answers
}

/// The 201 answer's secret and `previous_valid_until`, checked for shape.
fn rotated(reply: &Reply) -> (String, Timestamp) {
    let data = reply.expect_success(201);
    assert_eq!(
        data.as_object().unwrap().len(),
        2,
        "exactly the new secret and the expiry: {data}"
    );
    let secret = data["webhook_secret"]
        .as_str()
        .expect("webhook_secret")
        .to_owned();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(
        secret
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
        "64 lowercase hex: {secret}"
    );
    let until = data["previous_valid_until"]
        .as_str()
        .expect("previous_valid_until");
    let parsed = Timestamp::parse(until).expect("an RFC 3339 timestamp");
    assert_eq!(
        parsed.to_string(),
        until,
        "UTC with milliseconds, like every timestamp: {until}"
    );
    (secret, parsed)
}

async fn rotate_mine(app: &TestApp, partner: &str) -> Reply {
    app.call(
        "POST",
        "/me/webhook-secret",
        Some(&app.partner_token(partner)),
        None,
    )
    .await
}

async fn rotate_as_admin(app: &TestApp, id: &str) -> Reply {
    app.call(
        "POST",
        &format!("/admin/{id}/webhook-secret"),
        Some(&app.admin_token()),
        None,
    )
    .await
}

#[tokio::test]
async fn the_old_secret_works_beside_the_new_one_until_the_overlap_ends() {
    let (app, _octo, integration) = setup().await;
    let before = app.clock().now();
    let (new_secret, valid_until) = rotated(&rotate_mine(&app, &integration.partner).await);
    assert_ne!(new_secret, integration.secret);
    assert_eq!(
        valid_until,
        before.plus_millis(OVERLAP_HOURS as i64 * 3_600_000),
        "now + SEYAHA_SECRET_OVERLAP_HOURS"
    );

    // Inside the overlap both work, on both webhooks; a wrong one still does not.
    webhooks_accept(
        &app,
        &integration.id,
        &integration.secret,
        "old secret inside the overlap",
    )
    .await;
    webhooks_accept(&app, &integration.id, &new_secret, "new secret").await;
    let wrong = webhooks_refuse(&app, &integration.id, &"0".repeat(64), "a wrong secret").await;

    // One millisecond before the end the old one still works; at the end it stops.
    app.clock().advance(Duration::from_millis(
        valid_until.unix_millis() as u64 - before.unix_millis() as u64 - 1,
    ));
    webhooks_accept(
        &app,
        &integration.id,
        &integration.secret,
        "old secret 1 ms before the end",
    )
    .await;
    app.clock().advance(Duration::from_millis(1));
    let expired = webhooks_refuse(
        &app,
        &integration.id,
        &integration.secret,
        "old secret after the overlap",
    )
    .await;
    assert_eq!(
        expired, wrong,
        "an expired secret gets exactly the answer of any wrong secret"
    );
    webhooks_accept(
        &app,
        &integration.id,
        &new_secret,
        "new secret after the overlap",
    )
    .await;

    // The secret is shown in the rotation's answer only.
    let me = app
        .call(
            "GET",
            "/me",
            Some(&app.partner_token(&integration.partner)),
            None,
        )
        .await;
    assert!(
        !me.text.contains(&new_secret) && !me.text.contains("previous"),
        "{}",
        me.text
    );
    let admin = app
        .call(
            "GET",
            &format!("/admin/{}", integration.id),
            Some(&app.admin_token()),
            None,
        )
        .await;
    assert!(
        !admin.text.contains(&new_secret) && !admin.text.contains("previous"),
        "{}",
        admin.text
    );
}

#[tokio::test]
async fn rotating_twice_keeps_only_the_last_replaced_secret() {
    let (app, _octo, integration) = setup().await;
    let (second, _) = rotated(&rotate_mine(&app, &integration.partner).await);
    app.clock().advance(Duration::from_secs(60));
    let before = app.clock().now();
    let (third, valid_until) = rotated(&rotate_mine(&app, &integration.partner).await);
    assert_eq!(
        valid_until,
        before.plus_millis(OVERLAP_HOURS as i64 * 3_600_000),
        "the overlap starts again"
    );

    webhooks_refuse(
        &app,
        &integration.id,
        &integration.secret,
        "the first secret, two rotations ago",
    )
    .await;
    webhooks_accept(
        &app,
        &integration.id,
        &second,
        "the second, now the previous one",
    )
    .await;
    webhooks_accept(&app, &integration.id, &third, "the current one").await;
}

#[tokio::test]
async fn an_admin_rotates_any_integration_and_only_an_admin_may() {
    let (app, _octo, integration) = setup().await;
    let before = app.clock().now();
    let (new_secret, valid_until) = rotated(&rotate_as_admin(&app, &integration.id).await);
    assert_eq!(
        valid_until,
        before.plus_millis(OVERLAP_HOURS as i64 * 3_600_000)
    );
    webhooks_accept(
        &app,
        &integration.id,
        &integration.secret,
        "old secret after an admin rotation",
    )
    .await;
    webhooks_accept(&app, &integration.id, &new_secret, "the admin's new secret").await;

    // An unapproved integration of another partner too (rotation does not need approval).
    let other = new_partner();
    let created = app
        .register(&other, "https://octo.example.com", "bearer", "k")
        .await;
    rotated(&rotate_as_admin(&app, created["_id"].as_str().unwrap()).await);

    rotate_as_admin(&app, "64a1b2c3d4e5f6a7b8c9d0e1")
        .await
        .expect_error(404);
    rotate_as_admin(&app, "not-an-id").await.expect_error(400);
    let path = format!("/admin/{}/webhook-secret", integration.id);
    let as_partner = app
        .call(
            "POST",
            &path,
            Some(&app.partner_token(&integration.partner)),
            None,
        )
        .await;
    assert!(
        as_partner
            .expect_error(403)
            .contains("requires an admin token")
    );
    app.call("POST", &path, None, None).await.expect_error(401);
    app.call("POST", &path, Some("not-a-jwt"), None)
        .await
        .expect_error(401);
    // None of the refused calls rotated anything.
    webhooks_accept(
        &app,
        &integration.id,
        &new_secret,
        "still the admin's secret",
    )
    .await;
}

#[tokio::test]
async fn the_partner_route_needs_a_partner_with_an_integration() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let stranger = rotate_mine(&app, &new_partner()).await;
    stranger.expect_error(404);
    assert!(
        stranger.text.contains("No integration"),
        "{}",
        stranger.text
    );
    app.call("POST", "/me/webhook-secret", None, None)
        .await
        .expect_error(401);
    let as_admin = app
        .call("POST", "/me/webhook-secret", Some(&app.admin_token()), None)
        .await;
    assert!(
        as_admin
            .expect_error(403)
            .contains("requires a partner token")
    );
    // Other methods on the route are 405, in the envelope.
    app.call(
        "GET",
        "/me/webhook-secret",
        Some(&app.partner_token(&new_partner())),
        None,
    )
    .await
    .expect_error(405);
}

#[tokio::test]
async fn the_default_overlap_is_24_hours() {
    let app = TestApp::spawn_with_fake_clock(test_settings()).await;
    let partner = new_partner();
    app.register(&partner, "https://octo.example.com", "bearer", "k")
        .await;
    let before = app.clock().now();
    let (_, valid_until) = rotated(&rotate_mine(&app, &partner).await);
    assert_eq!(valid_until, before.plus_millis(24 * 3_600_000));
}

#[tokio::test]
async fn deleting_revokes_the_new_and_the_previous_secret_at_once() {
    let (app, _octo, integration) = setup().await;
    let (new_secret, _) = rotated(&rotate_mine(&app, &integration.partner).await);
    webhooks_accept(
        &app,
        &integration.id,
        &integration.secret,
        "old secret before the delete",
    )
    .await;
    app.call(
        "DELETE",
        "/me",
        Some(&app.partner_token(&integration.partner)),
        None,
    )
    .await
    .expect_success(200);
    webhooks_refuse(
        &app,
        &integration.id,
        &integration.secret,
        "old secret after the delete",
    )
    .await;
    webhooks_refuse(
        &app,
        &integration.id,
        &new_secret,
        "new secret after the delete",
    )
    .await;
    rotate_mine(&app, &integration.partner)
        .await
        .expect_error(404);
    rotate_as_admin(&app, &integration.id)
        .await
        .expect_error(404);
}

/// Rotations racing on one integration: each either wins (201) or is told it lost (409), and
/// the winners form one chain, as if they had run one after another: each replaced the
/// previous winner's secret. So exactly two secrets work afterwards: with one winner, its
/// secret and the original; with more, the last two winners' and not the original. (Writes
/// that ignored the version would let two winners replace the same secret, leaving a 201'd
/// secret that never works and the original alive.)
#[tokio::test]
async fn racing_rotations_never_both_win_silently() {
    let (app, _octo, integration) = setup().await;
    let (partner, admin) = (app.partner_token(&integration.partner), app.admin_token());
    let rotations = (0..12).map(|n| {
        let (app, partner, admin, id) = (&app, &partner, &admin, &integration.id);
        async move {
            if n % 2 == 0 {
                app.call("POST", "/me/webhook-secret", Some(partner), None)
                    .await
            } else {
                app.call(
                    "POST",
                    &format!("/admin/{id}/webhook-secret"),
                    Some(admin),
                    None,
                )
                .await
            }
        }
    });
    let replies = futures_util::future::join_all(rotations).await;
    let mut winners = Vec::new();
    for reply in &replies {
        match reply.status.as_u16() {
            201 => winners.push(rotated(reply).0),
            409 => assert!(
                reply.expect_error(409).contains("another rotation"),
                "{}",
                reply.text
            ),
            other => panic!("a rotation answered {other}: {}", reply.text),
        }
    }
    println!(
        "{} of {} racing rotations won",
        winners.len(),
        replies.len()
    );
    assert!(!winners.is_empty(), "at least one rotation wins");
    let mut working = Vec::new();
    for secret in winners.iter().chain([&integration.secret]) {
        match trigger_accepts(&app, &integration.id, secret).await {
            Ok(()) => working.push(secret.clone()),
            Err(refused) => assert_eq!(refused.status, 401, "{}", refused.text),
        }
    }
    assert_eq!(
        working.len(),
        2,
        "the current and the previous secret work, nothing else: {working:?} of {winners:?}"
    );
    assert_eq!(
        working.contains(&integration.secret),
        winners.len() == 1,
        "the original works only if one rotation won"
    );
}

/// The store in front of the service with one competing write slipped in just before the
/// service's next update, as a concurrent request would: the update then loses on the version.
struct Interleaved {
    inner: RedbStore,
    competitor: Mutex<Option<IntegrationRecord>>,
}

#[async_trait]
impl IntegrationStore for Interleaved {
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn find_by_partner(
        &self,
        partner_id: &PartnerId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        self.inner.find_by_partner(partner_id).await
    }
    async fn update(
        &self,
        record: &IntegrationRecord,
        previous: &IntegrationRecord,
    ) -> Result<(), StoreError> {
        let competitor = self.competitor.lock().unwrap().take();
        if let Some(competitor) = competitor {
            self.inner
                .update(&competitor, previous)
                .await
                .expect("the competing write goes first");
        }
        self.inner.update(record, previous).await
    }
    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        self.inner.delete(id).await
    }
    async fn list(
        &self,
        filter: &IntegrationFilter,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        self.inner.list(filter, limit, after).await
    }
    async fn count(&self, filter: &IntegrationFilter) -> Result<u64, StoreError> {
        self.inner.count(filter).await
    }
    async fn list_syncable(
        &self,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        self.inner.list_syncable(limit, after).await
    }
    async fn count_syncable(&self) -> Result<u64, StoreError> {
        self.inner.count_syncable().await
    }
}

/// The race staged exactly, on the service wired as every entry point wires it: a rotation
/// whose write loses to another rotation is refused (409) and the winner's secret stays; one
/// whose write loses to an unrelated change (here a probe's health update) is redone on the
/// fresh record and keeps that change.
#[tokio::test]
async fn a_rotation_that_loses_to_another_is_refused_and_one_that_loses_to_anything_else_retries() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbStore::open(&dir.path().join("seyaha.redb")).unwrap();
    let store = Arc::new(Interleaved {
        inner: redb.clone(),
        competitor: Mutex::new(None),
    });
    let clock = FakeClock::new();
    let (queue, _jobs) = InProcessQueue::new(clock.clone());
    let ports = Ports {
        integrations: store.clone(),
        catalog: Arc::new(redb.clone()),
        runs: Arc::new(redb.clone()),
        secrets: Arc::new(FileSecretStore::open(&dir.path().join("secrets")).unwrap()),
        signing_key: Arc::new(StaticSigningKey(seyaha_tests::JWT_SECRET.into())),
        rate_limiter: Arc::new(InMemoryRateLimiter::default()),
        queue: Arc::new(queue),
        clock: clock.clone(),
    };
    let app = app::build(ports, &test_settings(), Host::Local);
    let service = app.service();
    let new = seyaha_tests::bearer_integration("https://octo.example.com", "k");
    let partner = PartnerId::generate(1_800_000_000);
    let created = service.create(partner, new, Role::Admin).await.unwrap();
    let id = created.integration.id;
    let accepts = |secret: &WebhookSecret| {
        let (service, secret) = (Arc::clone(service), secret.expose().to_owned());
        async move {
            service
                .authenticate_webhook(id, Some(&secret))
                .await
                .is_ok()
        }
    };

    // Another rotation commits between this one's read and its write.
    let winner = WebhookSecret::generate();
    let mut competitor = redb.get(&id).await.unwrap().unwrap();
    competitor.rotate_webhook_secret(winner.digest(), clock.now().plus_millis(1_000), clock.now());
    competitor.version += 1;
    *store.competitor.lock().unwrap() = Some(competitor);
    let lost = service.rotate_my_webhook_secret(partner).await;
    assert!(
        matches!(lost, Err(ServiceError::RotatedConcurrently)),
        "{:?}",
        lost.map(|r| r.previous_valid_until)
    );
    assert_eq!(
        redb.get(&id).await.unwrap().unwrap().webhook_secret_digest,
        winner.digest(),
        "the winner's secret stays"
    );
    assert!(accepts(&winner).await);

    // A probe's write commits between this one's read and its write.
    let mut probe = redb.get(&id).await.unwrap().unwrap();
    probe.integration.health.record_failure(clock.now());
    probe.version += 1;
    *store.competitor.lock().unwrap() = Some(probe.clone());
    let rotated = service.admin_rotate_webhook_secret(id).await.unwrap();
    let stored = redb.get(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.webhook_secret_digest,
        rotated.webhook_secret.digest()
    );
    assert_eq!(
        stored.previous_webhook_secret.map(|p| p.digest),
        Some(winner.digest())
    );
    assert_eq!(
        stored.integration.health.consecutive_failures, 1,
        "the probe's write is kept"
    );
    assert_eq!(stored.version, probe.version + 1);
    assert!(accepts(&rotated.webhook_secret).await && accepts(&winner).await);
    assert!(!accepts(&created.webhook_secret).await, "two rotations ago");
}
