//! The sync engine on the DynamoDB store (moto), wired by the composition root exactly as the
//! Lambda functions wire it: what only DynamoDB's limits can break.

use std::sync::Arc;

use serde_json::json;
use seyaha::app::{self, Host};
use seyaha::domain::{AdminPatch, HealthStatus, PartnerId, Role};
use seyaha::ports::{Clock, IntegrationFilter, SystemClock};
use seyaha::service::ServiceError;
use seyaha::settings::Settings;
use seyaha::sync::SyncResult;
use seyaha_tests::aws::{resources, sdk_config};
use seyaha_tests::capacity::{Ledger, Recorder, recorded_ports, seyaha_table};
use seyaha_tests::fake_octo::{FAKE_KEY, FakeOcto, sample_catalog};
use seyaha_tests::{FakeClock, test_settings};

/// A product DynamoDB cannot store (an id too long for an index key, a 350 KB title) is
/// rejected and reported like any invalid product; the rest of the catalog syncs.
#[tokio::test]
async fn products_beyond_dynamodb_limits_are_rejected_and_the_rest_syncs() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let settings = resources.settings(test_settings());
    let ports = seyaha::lambda::ports(&config, &settings, Arc::new(SystemClock)).unwrap();
    let catalog_store = Arc::clone(&ports.catalog);
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();

    let octo = FakeOcto::start().await;
    let mut catalog = sample_catalog(3);
    let mut long_id = catalog[0].clone();
    long_id["id"] = json!("p".repeat(2100));
    long_id["internalName"] = json!("long-id");
    let mut huge = catalog[1].clone();
    huge["id"] = json!("huge");
    huge["internalName"] = json!("huge");
    huge["title"] = json!("t".repeat(350 * 1024));
    catalog.as_array_mut().unwrap().extend([long_id, huge]);
    octo.set_catalog(catalog);

    let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
    let created = service
        .create(PartnerId::generate(1_800_000_000), new, Role::Admin)
        .await
        .unwrap();
    let id = created.integration.id;
    service
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    let webhook = service
        .authenticate_webhook(id, Some(created.webhook_secret.expose()))
        .await
        .unwrap();

    let result = service.trigger_sync(webhook).await.unwrap();
    let SyncResult::Done {
        counts, rejections, ..
    } = result
    else {
        panic!("the sync failed as a whole: {result:?}")
    };
    assert_eq!(
        (counts.synced, counts.created, counts.rejected),
        (3, 3, 2),
        "{counts:?}"
    );
    let reasons: Vec<&str> = rejections.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("id: must be at most 1024 bytes")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("product: too large to store")),
        "{reasons:?}"
    );
    assert_eq!(catalog_store.activities(&id).await.unwrap().len(), 3);
}

/// Webhook secret rotation on DynamoDB: the previous secret's digest and expiry go through the
/// DynamoDB item and back, so the old secret authenticates until the overlap ends (the fake
/// clock is moved past it) and the new one after; a second rotation drops the first secret.
#[tokio::test]
async fn a_rotated_secret_works_for_the_overlap_on_dynamodb() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let settings = resources.settings(Settings {
        secret_overlap_hours: 2,
        ..test_settings()
    });
    let clock = FakeClock::new();
    let ports = seyaha::lambda::ports(&config, &settings, clock.clone()).unwrap();
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();
    let new = seyaha_tests::bearer_integration("https://octo.example.com", "k");
    let partner = PartnerId::generate(1_800_000_000);
    let created = service.create(partner, new, Role::Partner).await.unwrap();
    let id = created.integration.id;
    service
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    let accepts = |secret: &seyaha::domain::WebhookSecret| {
        let secret = secret.expose().to_owned();
        async move {
            match service.authenticate_webhook(id, Some(&secret)).await {
                Ok(_) => true,
                Err(ServiceError::WebhookUnauthorized) => false,
                Err(other) => panic!("unexpected {other}"),
            }
        }
    };

    let rotated = service.rotate_my_webhook_secret(partner).await.unwrap();
    assert_eq!(
        rotated.previous_valid_until,
        clock.now().plus_millis(2 * 3_600_000)
    );
    assert!(
        accepts(&created.webhook_secret).await,
        "the old secret inside the overlap"
    );
    assert!(accepts(&rotated.webhook_secret).await);
    clock.advance(std::time::Duration::from_secs(2 * 3600));
    assert!(
        !accepts(&created.webhook_secret).await,
        "the old secret once the overlap ended"
    );
    assert!(accepts(&rotated.webhook_secret).await);

    let again = service.admin_rotate_webhook_secret(id).await.unwrap();
    assert!(accepts(&again.webhook_secret).await && accepts(&rotated.webhook_secret).await);
    assert!(!accepts(&created.webhook_secret).await);
    service.admin_delete(id).await.unwrap();
    assert!(
        !accepts(&again.webhook_secret).await && !accepts(&rotated.webhook_secret).await,
        "delete revokes both"
    );
}

/// Marketplace scale: integration writes are spread over the index shards (no partition key
/// of the table or of an index takes a share of writes that grows with the number of
/// integrations: the single-item layout put every one of them on `INTEGRATION` and
/// `SYNCABLE`), the admin list and its total work over the shards, and a sync that takes the
/// lease costs at most 5 write units beyond its catalog work (the single-item layout: about 14).
#[tokio::test]
async fn integration_writes_spread_over_index_shards_and_a_sync_costs_at_most_five_write_units() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let settings = resources.settings(test_settings());
    let recorder = Recorder::default();
    let (ports, _) = recorded_ports(&config, &settings, Arc::new(SystemClock), &recorder);
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(3));

    const INTEGRATIONS: usize = 48;
    let mut webhooks = Vec::new();
    for n in 0..INTEGRATIONS {
        let new = seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY);
        let created = service
            .create(
                PartnerId::generate(1_800_000_000 + n as i64),
                new,
                Role::Partner,
            )
            .await
            .unwrap();
        let id = created.integration.id;
        service
            .admin_update(id, AdminPatch::approval())
            .await
            .unwrap();
        let webhook = service
            .authenticate_webhook(id, Some(created.webhook_secret.expose()))
            .await
            .unwrap();
        let SyncResult::Done { skipped: false, .. } = service.trigger_sync(webhook).await.unwrap()
        else {
            panic!("the first sync writes")
        };
        webhooks.push((id, created.webhook_secret));
    }
    let mut ledger = Ledger::new(seyaha_table());
    ledger.book(&recorder.take());
    for target in ["gsi1", "gsi2"] {
        let (key, share) = ledger.hottest_write_key(target).expect("index writes");
        assert!(
            share <= 1.0 / 6.0,
            "{target}: {key} takes {:.0}% of the index's writes",
            share * 100.0
        );
    }
    let (key, share) = ledger.hottest_write_key("table").unwrap();
    assert!(
        share <= 1.0 / 6.0,
        "table: {key} takes {:.0}% of the writes",
        share * 100.0
    );

    // The admin list pages newest first over every shard, with its total from the counters.
    let mut listed = Vec::new();
    for page in 1..=5 {
        let found = service
            .admin_list(IntegrationFilter::default(), page, 10)
            .await
            .unwrap();
        assert_eq!(found.total_count, INTEGRATIONS as u64);
        listed.extend(found.items.into_iter().map(|i| (i.created_at, i.id)));
    }
    let mut expected: Vec<_> = listed.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, expected, "newest first across the shards");
    assert_eq!(listed.len(), INTEGRATIONS);
    let approved = IntegrationFilter {
        is_approved: Some(true),
        health: Some(HealthStatus::Healthy),
    };
    assert_eq!(
        service
            .admin_list(approved, 1, 100)
            .await
            .unwrap()
            .total_count,
        INTEGRATIONS as u64
    );
    let unapproved = IntegrationFilter {
        is_approved: Some(false),
        health: None,
    };
    assert_eq!(
        service
            .admin_list(unapproved, 1, 100)
            .await
            .unwrap()
            .total_count,
        0
    );

    // A trigger of an unchanged catalog: take the lease, fetch, skip by hash, commit, record.
    recorder.take();
    let (id, secret) = &webhooks[0];
    let webhook = service
        .authenticate_webhook(*id, Some(secret.expose()))
        .await
        .unwrap();
    recorder.take();
    let SyncResult::Done { skipped: true, .. } = service.trigger_sync(webhook).await.unwrap()
    else {
        panic!("unchanged")
    };
    let mut ledger = Ledger::new(seyaha_table());
    ledger.book(&recorder.take());
    let total = ledger.total();
    assert!(
        total.write_units <= 5.0,
        "an unchanged sync wrote {} units: {:?}",
        total.write_units,
        ledger.usage
    );
    assert_eq!(
        ledger.target("gsi1").writes + ledger.target("gsi2").writes,
        0,
        "sync state is copied into no index"
    );
}

/// An availability pull reads the days it asked for, not the option's whole stored calendar:
/// with 30 days of slots stored, a pull of one day gets that day's slots back from DynamoDB
/// (reading every slot of the option, as before, returned all 120).
#[tokio::test]
async fn a_pull_of_one_day_reads_that_days_slots_only() {
    use seyaha::domain::{LocalDateTime, Slot, SlotStatus};
    use seyaha::ports::SyncJob;
    use seyaha::sync::{AvailabilityPull, parse_date};

    let config = sdk_config().await;
    let resources = resources(&config).await;
    let settings = resources.settings(test_settings());
    let recorder = Recorder::default();
    let (ports, _) = recorded_ports(&config, &settings, Arc::new(SystemClock), &recorder);
    let catalog = ports.catalog.clone();
    let app = app::build(ports, &settings, Host::Lambda);
    let service = app.service();
    let octo = FakeOcto::start().await;
    octo.set_catalog(sample_catalog(2));
    let created = service
        .create(
            PartnerId::generate(1_800_000_000),
            seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY),
            Role::Partner,
        )
        .await
        .unwrap();
    let id = created.integration.id;
    service
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    let webhook = service
        .authenticate_webhook(id, Some(created.webhook_secret.expose()))
        .await
        .unwrap();
    service.trigger_sync(webhook).await.unwrap();

    let start = |day: u32, hour: u32| format!("2099-07-{day:02}T{hour:02}:00:00+03:00");
    let stored: Vec<(Slot, seyaha::domain::Timestamp)> = (1..=30)
        .flat_map(|day| (0..4).map(move |hour| (day, 9 + hour)))
        .map(|(day, hour)| {
            let slot = Slot {
                product_id: "product_0".into(),
                option_id: "DEFAULT".into(),
                availability_id: start(day, hour),
                local_date_time_start: LocalDateTime::parse(&start(day, hour)).unwrap(),
                status: Some(SlotStatus::Available),
                vacancies: Some(10),
                capacity: Some(10),
                updated_at: seyaha::domain::Timestamp::from_unix_millis(0),
            };
            let expires = slot.local_date_time_start.instant();
            (slot, expires)
        })
        .collect();
    catalog.put_slots(&id, &stored).await.unwrap();
    let answer = (0..4)
        .map(|hour| json!({"id": start(5, 9 + hour), "localDateTimeStart": start(5, 9 + hour), "status": "AVAILABLE", "vacancies": 10 - hour, "capacity": 10}))
        .collect();
    octo.set_availability("product_0", "DEFAULT", answer);
    recorder.take();

    let day = parse_date("2099-07-05").unwrap();
    let pull = AvailabilityPull {
        product_id: "product_0".into(),
        option_id: Some("DEFAULT".into()),
        from: day,
        to: day,
    };
    let SyncResult::Done { counts, .. } = service
        .handle_job(&SyncJob::availability(id, pull))
        .await
        .unwrap()
    else {
        panic!("the pull runs")
    };
    assert_eq!((counts.updated, counts.unchanged), (3, 1), "{counts:?}");
    let slots_read: usize = recorder
        .take()
        .iter()
        .filter(|call| call.operation == "Query" && call.request.to_string().contains("SLOT#"))
        .map(|call| call.returned.len())
        .sum();
    assert_eq!(
        slots_read, 4,
        "the pull read {slots_read} slots for a day that has 4"
    );
}

/// A partner credential changed through one process is used at once by another (on AWS:
/// register writes the new `auth_key`, sync-trigger and the worker keep a cache): the
/// integration's credential version moves with the change, and a cache entry read for an
/// older version is read again. Before, the second process kept the revoked key for
/// `SEYAHA_SECRET_CACHE_SECS` and the partner refused it.
#[tokio::test]
async fn a_credential_changed_in_one_process_is_used_at_once_by_another() {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    let settings = resources.settings(Settings {
        secret_cache_secs: 300,
        ..test_settings()
    });
    let clock = FakeClock::new();
    let build = || {
        app::build(
            seyaha::lambda::ports(&config, &settings, clock.clone()).unwrap(),
            &settings,
            Host::Lambda,
        )
    };
    let (register, worker) = (build(), build());
    let octo = FakeOcto::start().await;
    let partner = PartnerId::generate(1_800_000_000);
    let created = register
        .service()
        .create(
            partner,
            seyaha_tests::bearer_integration(&octo.base_url(), FAKE_KEY),
            Role::Partner,
        )
        .await
        .unwrap();
    let id = created.integration.id;
    register
        .service()
        .admin_update(id, AdminPatch::approval())
        .await
        .unwrap();
    let secret = created.webhook_secret;
    let sync = |service: Arc<seyaha::service::IntegrationService>, secret: String| async move {
        let webhook = service
            .authenticate_webhook(id, Some(&secret))
            .await
            .unwrap();
        service.trigger_sync(webhook).await.unwrap()
    };
    let first = sync(Arc::clone(worker.service()), secret.expose().to_owned()).await;
    assert!(matches!(first, SyncResult::Done { .. }), "{first:?}");

    // The partner rotates its key at the platform (the old one stops working) and tells Seyaha.
    octo.set_key("the-new-key");
    let patch = seyaha::domain::IntegrationPatch {
        auth_key: Some(seyaha::domain::AuthKey::parse("the-new-key").unwrap()),
        ..Default::default()
    };
    register
        .service()
        .update_mine(partner, patch)
        .await
        .unwrap();
    octo.set_catalog(sample_catalog(4));
    let second = sync(Arc::clone(worker.service()), secret.expose().to_owned()).await;
    assert!(
        matches!(second, SyncResult::Done { skipped: false, .. }),
        "the worker used the new key at once: {second:?}"
    );
}
