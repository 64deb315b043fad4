//! One conformance suite for every store backend: the embedded redb store and the DynamoDB
//! store (against moto). Both must give the same answers to the same calls.

use std::sync::Arc;

use seyaha::adapters::aws::DynamoStore;
use seyaha::adapters::embedded::RedbStore;
use seyaha::domain::{
    Activity, BaseUrl, ContentHash, ExternalSync, HealthStatus, IntegrationId, IntegrationRecord,
    LocalDateTime, PartnerId, PreviousWebhookSecret, Role, RunId, RunOutcome, RunTrigger, Slot,
    SlotStatus, SyncCounts, SyncRun, Timestamp, Variation, VariationPricing, VariationRef,
    VariationSync, WebhookSecret, WebhookSecretDigest,
};
use seyaha::ports::{CatalogStore, IntegrationFilter, IntegrationStore, RunStore, StoreError};
use seyaha_tests::aws::{resources, sdk_config};

trait Store: IntegrationStore + CatalogStore + RunStore {}
impl<T: IntegrationStore + CatalogStore + RunStore> Store for T {}

async fn redb() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (
        Arc::new(RedbStore::open(&dir.path().join("seyaha.redb")).unwrap()),
        dir,
    )
}

async fn dynamo() -> Arc<dyn Store> {
    let config = sdk_config().await;
    let resources = resources(&config).await;
    Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        resources.table,
    ))
}

fn record(created_ms: i64) -> IntegrationRecord {
    seyaha_tests::stored_record(created_ms, Role::Partner, &WebhookSecret::generate())
}

fn activity(name: &str, product: &str, options: &[&str], hash: &str) -> Activity {
    Activity {
        internal_name: name.into(),
        activity_title: name.to_uppercase(),
        external_sync: ExternalSync {
            external_id: product.into(),
        },
        variations: options
            .iter()
            .map(|o| Variation {
                title: o.to_string(),
                external_sync: VariationSync {
                    external_option_id: o.to_string(),
                },
                pricing: VariationPricing {
                    units: vec![],
                    per_booking: None,
                },
            })
            .collect(),
        is_active: true,
        content_hash: ContentHash::of(hash.as_bytes()),
        updated_at: Timestamp::from_unix_millis(1_000),
    }
}

async fn integrations(store: Arc<dyn Store>) {
    let first = record(1_800_000_000_000);
    store.insert(&first).await.unwrap();
    let id = first.integration.id;
    assert_eq!(store.get(&id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(
        store
            .find_by_partner(&first.integration.partner_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&first)
    );
    assert!(
        store
            .get(&IntegrationId::generate(0))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_by_partner(&PartnerId::generate(0))
            .await
            .unwrap()
            .is_none()
    );

    // One per partner, even when racing.
    let mut same_partner = record(1_800_000_000_001);
    same_partner.integration.partner_id = first.integration.partner_id;
    assert!(matches!(
        store.insert(&same_partner).await,
        Err(StoreError::AlreadyExists)
    ));
    let racer = record(1_800_000_000_002);
    let attempts = (0..6).map(|_| {
        let mut attempt = racer.clone();
        attempt.integration.id = IntegrationId::generate(1);
        let store = Arc::clone(&store);
        async move { store.insert(&attempt).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::AlreadyExists)))
    );

    // Optimistic concurrency; the fan-out's mark and an admin's webhook limit are kept.
    let mut updated = first.clone();
    updated.integration.is_approved = true;
    updated.integration.webhook_rate_per_minute = Some(6_000);
    updated.credential_version = 3;
    updated.sync_control.fan_out = Some(seyaha::domain::RunId::generate(1_800_000_000));
    updated.version = 2;
    store.update(&updated, &first).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().as_ref(), Some(&updated));
    let mut stale = first.clone();
    stale.version = 2;
    assert!(matches!(
        store.update(&stale, &first).await,
        Err(StoreError::VersionConflict)
    ));
    let mut missing = record(1_800_000_000_003);
    missing.version = 2;
    assert!(matches!(
        store.update(&missing, &missing).await,
        Err(StoreError::NotFound)
    ));

    // Delete frees the partner.
    assert_eq!(
        store.delete(&id).await.unwrap().map(|r| r.integration.id),
        Some(id)
    );
    assert!(store.get(&id).await.unwrap().is_none());
    assert!(
        store
            .find_by_partner(&first.integration.partner_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete(&id).await.unwrap().is_none());
    store.insert(&same_partner).await.unwrap();
}

/// A rotated webhook secret: the previous secret's digest and expiry are stored with the
/// record, read back exactly, replaced by the next rotation, and the write is still
/// conditional on the version (a stale rotation cannot overwrite a newer one).
async fn webhook_secret_rotation(store: Arc<dyn Store>) {
    let (first, second, third) = (
        WebhookSecret::generate(),
        WebhookSecret::generate(),
        WebhookSecret::generate(),
    );
    let mut original = record(1_800_000_000_000);
    original.webhook_secret_digest = first.digest();
    store.insert(&original).await.unwrap();
    let id = original.integration.id;
    assert_eq!(
        store
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .previous_webhook_secret,
        None,
        "never rotated"
    );

    let (at, until) = (
        Timestamp::from_unix_millis(1_800_000_100_000),
        Timestamp::from_unix_millis(1_800_086_500_123),
    );
    let mut rotated = original.clone();
    rotated.rotate_webhook_secret(second.digest(), until, at);
    rotated.version += 1;
    store.update(&rotated, &original).await.unwrap();
    let read = store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        read, rotated,
        "every field, the previous secret's included, survives the store"
    );
    assert_eq!(
        read.previous_webhook_secret,
        Some(PreviousWebhookSecret {
            digest: first.digest(),
            valid_until: until
        })
    );
    assert!(
        read.previous_webhook_secret
            .unwrap()
            .digest
            .matches(&WebhookSecretDigest::of(first.expose()))
    );
    assert_eq!(
        store
            .find_by_partner(&original.integration.partner_id)
            .await
            .unwrap()
            .as_ref(),
        Some(&rotated)
    );
    assert_eq!(
        store
            .list(&IntegrationFilter::default(), 10, None)
            .await
            .unwrap()
            .items,
        vec![rotated.clone()]
    );

    // A rotation computed from the record before the first one loses on the version.
    let mut stale = original.clone();
    stale.rotate_webhook_secret(third.digest(), until, at);
    stale.version += 1;
    assert!(matches!(
        store.update(&stale, &original).await,
        Err(StoreError::VersionConflict)
    ));
    assert_eq!(store.get(&id).await.unwrap().unwrap(), rotated);

    // Rotating again keeps only the secret it replaced.
    let mut again = rotated.clone();
    let later = until.plus_millis(1);
    again.rotate_webhook_secret(third.digest(), later, at.plus_millis(1));
    again.version += 1;
    store.update(&again, &rotated).await.unwrap();
    let read = store.get(&id).await.unwrap().unwrap();
    assert_eq!(read.webhook_secret_digest, third.digest());
    assert_eq!(
        read.previous_webhook_secret,
        Some(PreviousWebhookSecret {
            digest: second.digest(),
            valid_until: later
        })
    );

    // Delete takes both with it.
    store.delete(&id).await.unwrap();
    assert!(store.get(&id).await.unwrap().is_none());
}

async fn listing(store: Arc<dyn Store>) {
    let mut records = Vec::new();
    for i in 0..7 {
        let mut record = record(1_800_000_000_000 + i * 1000);
        record.integration.is_approved = i % 2 == 0;
        record.integration.is_active = i != 4;
        if i == 2 {
            record.integration.health.status = HealthStatus::Down;
        }
        store.insert(&record).await.unwrap();
        records.push(record);
    }
    let ids = |page: &seyaha::ports::Page<IntegrationRecord>| {
        page.items
            .iter()
            .map(|r| r.integration.id)
            .collect::<Vec<_>>()
    };
    let id_of = |i: usize| records[i].integration.id;

    // Admin list: newest first, page by page through cursors.
    let any = IntegrationFilter::default();
    let first = store.list(&any, 3, None).await.unwrap();
    assert_eq!(ids(&first), vec![id_of(6), id_of(5), id_of(4)]);
    let second = store.list(&any, 3, first.next.clone()).await.unwrap();
    assert_eq!(ids(&second), vec![id_of(3), id_of(2), id_of(1)]);
    let last = store.list(&any, 3, second.next.clone()).await.unwrap();
    assert_eq!((ids(&last), last.next.is_none()), (vec![id_of(0)], true));
    assert_eq!(store.count(&any).await.unwrap(), 7);

    let approved = IntegrationFilter {
        is_approved: Some(true),
        health: None,
    };
    assert_eq!(store.count(&approved).await.unwrap(), 4);
    let page = store.list(&approved, 3, None).await.unwrap();
    assert_eq!(ids(&page), vec![id_of(6), id_of(4), id_of(2)]);
    let rest = store.list(&approved, 3, page.next).await.unwrap();
    assert_eq!(ids(&rest), vec![id_of(0)]);
    let down = IntegrationFilter {
        is_approved: None,
        health: Some(HealthStatus::Down),
    };
    assert_eq!(
        ids(&store.list(&down, 50, None).await.unwrap()),
        vec![id_of(2)]
    );
    assert_eq!(store.count(&down).await.unwrap(), 1);

    // Nightly listing: approved and active only (0, 2, 6), in the store's order (DynamoDB:
    // shard by shard), paged by cursor, each once.
    let mut syncable: Vec<IntegrationId> = [0, 2, 6].iter().map(|i| id_of(*i)).collect();
    syncable.sort();
    let page1 = store.list_syncable(2, None).await.unwrap();
    assert_eq!(page1.items.len(), 2);
    let page2 = store.list_syncable(2, page1.next.clone()).await.unwrap();
    let mut both = [ids(&page1), ids(&page2)].concat();
    both.sort();
    assert_eq!(both, syncable);
    assert!(
        page2.next.is_none()
            || store
                .list_syncable(2, page2.next)
                .await
                .unwrap()
                .items
                .is_empty()
    );
    assert_eq!(
        store.count_syncable().await.unwrap(),
        3,
        "the fan-out's count of the same set"
    );

    // Leaving the syncable set by update.
    let live = store
        .get(&records[0].integration.id)
        .await
        .unwrap()
        .unwrap();
    let mut paused = live.clone();
    paused.integration.is_active = false;
    paused.version += 1;
    store.update(&paused, &live).await.unwrap();
    assert_eq!(store.list_syncable(10, None).await.unwrap().items.len(), 2);
    assert_eq!(store.count_syncable().await.unwrap(), 2);
}

async fn catalog(store: Arc<dyn Store>) {
    let id = IntegrationId::generate(1_800_000_000);
    let other = IntegrationId::generate(1_800_000_001);
    let activities: Vec<Activity> = (0..30)
        .map(|i| {
            activity(
                &format!("name-{i}"),
                &format!("p{i}"),
                &["DEFAULT", "private"],
                "h1",
            )
        })
        .collect();
    store.put_activities(&id, &activities).await.unwrap();
    store
        .put_activities(&other, &activities[..2])
        .await
        .unwrap();

    let mut states = store.activity_states(&id).await.unwrap();
    states.sort_by(|a, b| a.internal_name.cmp(&b.internal_name));
    assert_eq!(states.len(), 30);
    assert!(
        states
            .iter()
            .all(|s| s.is_active && s.content_hash == ContentHash::of(b"h1"))
    );
    let listed = store.activities(&id).await.unwrap();
    assert_eq!(listed.len(), 30);
    assert!(listed.contains(&activities[7]));

    assert_eq!(
        store.find_variation(&id, "p3", "private").await.unwrap(),
        Some(VariationRef {
            internal_name: "name-3".into(),
            activity_active: true
        })
    );
    assert_eq!(
        store.find_variation(&id, "p3", "sunset").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_variation(&id, "nope", "DEFAULT").await.unwrap(),
        None
    );

    // A product whose OCTO id changes under the same internalName moves in the index.
    let moved = activity("name-3", "p3-new", &["DEFAULT"], "h2");
    store
        .put_activities(&id, std::slice::from_ref(&moved))
        .await
        .unwrap();
    assert_eq!(
        store.find_variation(&id, "p3", "DEFAULT").await.unwrap(),
        None
    );
    assert!(
        store
            .find_variation(&id, "p3-new", "DEFAULT")
            .await
            .unwrap()
            .is_some()
    );

    let later = Timestamp::from_unix_millis(5_000);
    store
        .set_active(
            &id,
            &["name-1".into(), "name-2".into(), "missing".into()],
            false,
            later,
        )
        .await
        .unwrap();
    let inactive: Vec<_> = store
        .activities(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| !a.is_active)
        .collect();
    assert_eq!(
        inactive
            .iter()
            .map(|a| a.internal_name.as_str())
            .collect::<Vec<_>>(),
        vec!["name-1", "name-2"]
    );
    assert!(inactive.iter().all(|a| a.updated_at == later));
    assert_eq!(
        store
            .find_variation(&id, "p1", "DEFAULT")
            .await
            .unwrap()
            .map(|v| v.activity_active),
        Some(false)
    );

    assert_eq!(store.deactivate_all(&id, later).await.unwrap(), 28);
    assert_eq!(store.deactivate_all(&id, later).await.unwrap(), 0);
    assert!(
        store
            .activities(&other)
            .await
            .unwrap()
            .iter()
            .all(|a| a.is_active),
        "other integrations are untouched"
    );

    let slot = |availability: &str, vacancies: u64| Slot {
        product_id: "p/1#x".into(),
        option_id: "DEFAULT".into(),
        availability_id: availability.into(),
        local_date_time_start: LocalDateTime::parse("2026-07-15T10:00:00+04:00").unwrap(),
        status: Some(SlotStatus::Limited),
        vacancies: Some(vacancies),
        capacity: Some(10),
        updated_at: later,
    };
    let expires = Timestamp::parse("2026-08-14T10:00:00Z").unwrap();
    store.put_slot(&id, &slot("a", 5), expires).await.unwrap();
    store.put_slot(&id, &slot("a", 3), expires).await.unwrap();
    store.put_slot(&id, &slot("b", 9), expires).await.unwrap();
    let any_start = Timestamp::from_unix_millis(0);
    let slots = store.slots_page(&id, 10, None, any_start).await.unwrap();
    assert_eq!(
        (slots.items, slots.next),
        (vec![slot("a", 3), slot("b", 9)], None)
    );
    assert!(
        store
            .slots_page(&other, 10, None, any_start)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let later_start = Timestamp::parse("2026-07-16T00:00:00Z").unwrap();
    assert!(
        store
            .slots_page(&id, 10, None, later_start)
            .await
            .unwrap()
            .items
            .is_empty(),
        "slots that started before are not shown"
    );
}

/// Activities and slots page by cursor: every item once, pages no larger than asked, and
/// slots that started before the cut-off left out (across DynamoDB's shards too).
async fn catalog_paging(store: Arc<dyn Store>) {
    let id = IntegrationId::generate(1_800_000_000);
    let activities: Vec<Activity> = (0..25)
        .map(|i| activity(&format!("n-{i:02}"), &format!("p{i}"), &["DEFAULT"], "h"))
        .collect();
    store.put_activities(&id, &activities).await.unwrap();
    let (mut names, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = store
            .activities_page(&id, 10, usize::MAX, cursor)
            .await
            .unwrap();
        assert!(page.items.len() <= 10);
        names.extend(page.items.into_iter().map(|a| a.internal_name));
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    names.sort();
    assert_eq!(
        names,
        activities
            .iter()
            .map(|a| a.internal_name.clone())
            .collect::<Vec<_>>()
    );
    assert!(pages >= 3);

    let slot = |product: usize, n: usize, start: &str| Slot {
        product_id: format!("p{product}"),
        option_id: "DEFAULT".into(),
        availability_id: format!("{start}/{n}"),
        local_date_time_start: LocalDateTime::parse(start).unwrap(),
        status: None,
        vacancies: None,
        capacity: None,
        updated_at: Timestamp::from_unix_millis(1_000),
    };
    let far = Timestamp::parse("2030-01-01T00:00:00Z").unwrap();
    for product in 0..5 {
        for n in 0..5 {
            store
                .put_slot(&id, &slot(product, n, "2026-07-15T10:00:00+04:00"), far)
                .await
                .unwrap();
        }
        store
            .put_slot(&id, &slot(product, 9, "2026-01-01T10:00:00+04:00"), far)
            .await
            .unwrap();
    }
    let cut_off = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
    let (mut seen, mut cursor) = (Vec::new(), None);
    loop {
        let page = store.slots_page(&id, 7, cursor, cut_off).await.unwrap();
        assert!(page.items.len() <= 7);
        seen.extend(
            page.items
                .into_iter()
                .map(|s| (s.product_id, s.availability_id)),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    let listed = seen.len();
    seen.dedup();
    assert_eq!(
        (listed, seen.len()),
        (25, 25),
        "every current slot exactly once, none of the old ones: {seen:?}"
    );
}

async fn runs(store: Arc<dyn Store>) {
    let id = IntegrationId::generate(1_800_000_000);
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let run_ids: std::collections::HashMap<i64, RunId> = [5, 1, 3, 30 * 24 * 60 + 10]
        .into_iter()
        .map(|minutes| (minutes, RunId::generate(minutes)))
        .collect();
    let run = |minutes_ago: i64, outcome: RunOutcome| SyncRun {
        run_id: run_ids[&minutes_ago],
        integration_id: id,
        trigger: RunTrigger::Webhook,
        started_at: now.plus_millis(-minutes_ago * 60_000),
        duration_ms: 12,
        outcome,
        counts: SyncCounts {
            synced: 3,
            created: 3,
            ..SyncCounts::default()
        },
        hash: Some(ContentHash::of(b"abc")),
        error: None,
        rejections: vec![],
        expires_at: now.plus_millis(-minutes_ago * 60_000 + 30 * 24 * 3600 * 1000),
    };
    for minutes_ago in [5, 1, 3, 30 * 24 * 60 + 10] {
        store
            .record_run(&run(minutes_ago, RunOutcome::Synced))
            .await
            .unwrap();
    }
    let recent = store.recent_runs(&id, 20, now).await.unwrap();
    assert_eq!(
        recent.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        vec![run_ids[&1], run_ids[&3], run_ids[&5]],
        "newest first, expired left out"
    );
    assert_eq!(recent[0], run(1, RunOutcome::Synced));
    assert_eq!(store.recent_runs(&id, 2, now).await.unwrap().len(), 2);
    assert!(
        store
            .recent_runs(&IntegrationId::generate(0), 20, now)
            .await
            .unwrap()
            .is_empty()
    );
}

macro_rules! conformance {
    ($($name:ident),*) => {
        mod on_redb {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _dir) = super::redb().await;
                    super::$name(store).await;
                }
            )*
        }
        mod on_dynamodb {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(super::dynamo().await).await;
                }
            )*
        }
    };
}

/// More integrations than fit in one DynamoDB response (1 MB; moto enforces it too): 450 live
/// integrations with 2,000-character base URLs (about 2.5 KB each). Both listings must follow
/// the store's cursors (and DynamoDB's `LastEvaluatedKey` inside them) to see every one once.
async fn paging_beyond_one_response(store: Arc<dyn Store>) {
    let long_path = "p".repeat(1950);
    let mut inserted = Vec::new();
    for chunk in 0..18 {
        let batch: Vec<IntegrationRecord> = (0..25)
            .map(|i| {
                let mut record = record(1_800_000_000_000 + (chunk * 25 + i) * 1000);
                record.integration.base_url =
                    BaseUrl::parse(&format!("https://octo.example.com/{long_path}")).unwrap();
                record.integration.is_approved = true;
                record
            })
            .collect();
        // One at a time: moto's transactions are not safe to run concurrently.
        for record in &batch {
            store.insert(record).await.unwrap();
        }
        inserted.extend(batch.into_iter().map(|r| r.integration.id));
    }
    inserted.sort();

    assert_eq!(
        store.count_syncable().await.unwrap(),
        450,
        "a count over more than one DynamoDB response"
    );
    let everything = store.list_syncable(500, None).await.unwrap();
    let mut listed: Vec<IntegrationId> =
        everything.items.iter().map(|r| r.integration.id).collect();
    listed.sort();
    assert_eq!(
        listed, inserted,
        "one port page larger than one DynamoDB response"
    );
    assert!(everything.next.is_none());

    listed.clear();
    let mut cursor = None;
    loop {
        let page = store.list_syncable(200, cursor).await.unwrap();
        assert!(page.items.len() <= 200);
        listed.extend(page.items.iter().map(|r| r.integration.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    listed.sort();
    assert_eq!(
        listed, inserted,
        "followed by cursor, every integration exactly once"
    );

    let any = IntegrationFilter::default();
    assert_eq!(store.count(&any).await.unwrap(), 450);
    let admin = store
        .list(
            &IntegrationFilter {
                is_approved: Some(true),
                health: None,
            },
            450,
            None,
        )
        .await
        .unwrap();
    let mut admin_ids: Vec<IntegrationId> = admin.items.iter().map(|r| r.integration.id).collect();
    admin_ids.sort();
    assert_eq!(
        admin_ids, inserted,
        "the filtered admin list across response pages"
    );
}

/// An availability pull's writes: more slots than one DynamoDB batch (25) at once, read back
/// per option and days (the prefix of one option does not take another's, nor another
/// product's; a day range returns the slots of those local days, both ends included).
async fn slot_batches_and_option_slots(store: Arc<dyn Store>) {
    use time::macros::date;
    let july = || date!(2030 - 07 - 01)..=date!(2030 - 07 - 31);
    let id = IntegrationId::generate(1_800_000_000);
    let slot = |product: &str, option: &str, n: u64| Slot {
        product_id: product.into(),
        option_id: option.into(),
        availability_id: format!("a{n:02}"),
        local_date_time_start: LocalDateTime::parse(&format!(
            "2030-07-{:02}T10:00:00+04:00",
            n % 28 + 1
        ))
        .unwrap(),
        status: Some(SlotStatus::Available),
        vacancies: Some(n),
        capacity: Some(100),
        updated_at: Timestamp::from_unix_millis(1_800_000_000_000),
    };
    let expires = Timestamp::parse("2030-09-01T00:00:00Z").unwrap();
    let mut writes: Vec<(Slot, Timestamp)> = (0..40)
        .map(|n| (slot("p1", "DEFAULT", n), expires))
        .collect();
    writes.extend((0..3).map(|n| (slot("p1", "DEFAULT-2", n), expires)));
    writes.extend((0..2).map(|n| (slot("p10", "DEFAULT", n), expires)));
    store.put_slots(&id, &writes).await.unwrap();
    let mut default = store
        .option_slots(&id, "p1", "DEFAULT", july())
        .await
        .unwrap();
    default.sort_by(|a, b| a.availability_id.cmp(&b.availability_id));
    assert_eq!(default.len(), 40);
    assert_eq!(default[39], slot("p1", "DEFAULT", 39));
    assert_eq!(
        store
            .option_slots(&id, "p1", "DEFAULT-2", july())
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store
            .option_slots(&id, "p10", "DEFAULT", july())
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .option_slots(&id, "p1", "nope", july())
            .await
            .unwrap()
            .is_empty()
    );
    // Days 3 and 4 of July: n % 28 + 1 in {3, 4}.
    let mut two_days: Vec<String> = store
        .option_slots(
            &id,
            "p1",
            "DEFAULT",
            date!(2030 - 07 - 03)..=date!(2030 - 07 - 04),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|slot| slot.availability_id)
        .collect();
    two_days.sort();
    assert_eq!(two_days, ["a02", "a03", "a30", "a31"]);
    assert!(
        store
            .option_slots(
                &id,
                "p1",
                "DEFAULT",
                date!(2030 - 08 - 01)..=date!(2030 - 08 - 31)
            )
            .await
            .unwrap()
            .is_empty()
    );
    // A second batch replaces, as single writes do.
    store
        .put_slots(
            &id,
            &[(
                Slot {
                    vacancies: Some(0),
                    status: Some(SlotStatus::Closed),
                    ..slot("p1", "DEFAULT", 5)
                },
                expires,
            )],
        )
        .await
        .unwrap();
    let closed = store
        .option_slots(&id, "p1", "DEFAULT", july())
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.availability_id == "a05")
        .unwrap();
    assert_eq!(
        (closed.status, closed.vacancies),
        (Some(SlotStatus::Closed), Some(0))
    );
}

/// Pending availability pulls: one record per distinct pull (asked again, only its time
/// moves), listed up to a limit, removed only while it is the request that was read, and kept
/// apart per integration.
async fn pending_pulls(store: Arc<dyn Store>) {
    use seyaha::domain::AvailabilityPull;
    use time::macros::date;
    let (id, other) = (
        IntegrationId::generate(1_800_000_000),
        IntegrationId::generate(1_800_000_001),
    );
    let at = |ms: i64| Timestamp::from_unix_millis(1_800_000_000_000 + ms);
    let pull = |product: &str, option: Option<&str>| AvailabilityPull {
        product_id: product.into(),
        option_id: option.map(str::to_owned),
        from: date!(2030 - 07 - 01),
        to: date!(2030 - 07 - 31),
    };
    let (all_options, one_option, other_product) = (
        pull("p1", None),
        pull("p1", Some("DEFAULT")),
        pull("p2", None),
    );
    assert!(store.pending_pulls(&id, 10).await.unwrap().is_empty());
    store.add_pull(&id, &all_options, at(1)).await.unwrap();
    store.add_pull(&id, &one_option, at(2)).await.unwrap();
    store.add_pull(&id, &other_product, at(3)).await.unwrap();
    store.add_pull(&id, &all_options, at(4)).await.unwrap();
    store.add_pull(&other, &all_options, at(5)).await.unwrap();
    let mut pending = store.pending_pulls(&id, 10).await.unwrap();
    pending.sort_by_key(|(_, requested_at)| *requested_at);
    assert_eq!(
        pending,
        [
            (one_option.clone(), at(2)),
            (other_product.clone(), at(3)),
            (all_options.clone(), at(4))
        ]
    );
    assert_eq!(store.pending_pulls(&id, 2).await.unwrap().len(), 2);

    // Read at 4 and asked again at 6: removing the request of 4 leaves the one of 6.
    store.add_pull(&id, &all_options, at(6)).await.unwrap();
    store.remove_pull(&id, &all_options, at(4)).await.unwrap();
    store.remove_pull(&id, &one_option, at(2)).await.unwrap();
    let mut pending = store.pending_pulls(&id, 10).await.unwrap();
    pending.sort_by_key(|(_, requested_at)| *requested_at);
    assert_eq!(
        pending,
        [(other_product.clone(), at(3)), (all_options.clone(), at(6))]
    );
    store.remove_pull(&id, &all_options, at(6)).await.unwrap();
    store.remove_pull(&id, &other_product, at(3)).await.unwrap();
    store.remove_pull(&id, &other_product, at(3)).await.unwrap();
    assert!(store.pending_pulls(&id, 10).await.unwrap().is_empty());
    assert_eq!(
        store.pending_pulls(&other, 10).await.unwrap(),
        [(all_options, at(5))]
    );
}

/// The per-integration cap's inputs and the retention's removal: every state carries the
/// activity's size and its last change; removed activities leave the listing and the product
/// index (the notify path), other integrations untouched.
async fn catalog_sizes_and_removal(store: Arc<dyn Store>) {
    let id = IntegrationId::generate(1_800_000_000);
    let other = IntegrationId::generate(1_800_000_001);
    let mut big = activity("big", "p-big", &["DEFAULT"], "h1");
    big.activity_title = "x".repeat(20_000);
    let small = activity("small", "p-small", &["DEFAULT"], "h1");
    store
        .put_activities(&id, &[big.clone(), small.clone()])
        .await
        .unwrap();
    store
        .put_activities(&other, std::slice::from_ref(&small))
        .await
        .unwrap();
    let later = Timestamp::from_unix_millis(9_000);
    store
        .set_active(&id, &["small".into()], false, later)
        .await
        .unwrap();

    let mut states = store.activity_states(&id).await.unwrap();
    states.sort_by(|a, b| a.internal_name.cmp(&b.internal_name));
    let sizes: Vec<_> = states
        .iter()
        .map(|s| (s.internal_name.as_str(), s.stored_bytes, s.updated_at))
        .collect();
    // Each store's own measure of the activity as JSON: within a few bytes of the domain's.
    for ((name, stored, _), expected) in
        sizes.iter().zip([big.stored_bytes(), small.stored_bytes()])
    {
        assert!(
            stored.abs_diff(expected) * 20 <= expected,
            "{name}: stored {stored}, as JSON {expected}"
        );
    }
    assert_eq!(
        sizes.iter().map(|s| s.2).collect::<Vec<_>>(),
        vec![Timestamp::from_unix_millis(1_000), later]
    );

    store
        .delete_activities(&id, &["small".into(), "never-stored".into()])
        .await
        .unwrap();
    let names: Vec<_> = store
        .activity_states(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.internal_name)
        .collect();
    assert_eq!(names, vec!["big"]);
    assert_eq!(
        store
            .find_variation(&id, "p-small", "DEFAULT")
            .await
            .unwrap(),
        None,
        "its product index entry went with it"
    );
    assert!(
        store
            .activity_of_product(&id, "p-small")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.activities(&other).await.unwrap(),
        vec![small.clone()],
        "another integration's activity stays"
    );

    // An activity that took over the product id keeps its index entry when the old one goes.
    store
        .put_activities(&id, &[activity("old-name", "p-moved", &["DEFAULT"], "h1")])
        .await
        .unwrap();
    store
        .put_activities(&id, &[activity("new-name", "p-moved", &["DEFAULT"], "h2")])
        .await
        .unwrap();
    store
        .delete_activities(&id, &["old-name".into()])
        .await
        .unwrap();
    assert_eq!(
        store
            .activity_of_product(&id, "p-moved")
            .await
            .unwrap()
            .map(|a| a.internal_name),
        Some("new-name".into())
    );
}

/// A page ends early once its activities pass the byte budget (at least one activity), with
/// a cursor that goes on from there: every activity exactly once, whatever `limit` says.
async fn catalog_pages_end_at_the_byte_budget(store: Arc<dyn Store>) {
    let id = IntegrationId::generate(1_800_000_000);
    let activities: Vec<Activity> = (0..12)
        .map(|i| {
            let mut activity = activity(&format!("n-{i:02}"), &format!("p{i}"), &["DEFAULT"], "h");
            activity.activity_title = "t".repeat(10_000);
            activity
        })
        .collect();
    store.put_activities(&id, &activities).await.unwrap();
    let budget = 35_000;
    let (mut names, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = store
            .activities_page(&id, 500, budget, cursor)
            .await
            .unwrap();
        let bytes: u64 = page.items.iter().map(Activity::stored_bytes).sum();
        assert!(
            !page.items.is_empty() && bytes <= budget as u64,
            "a page of {} activities, {bytes} bytes",
            page.items.len()
        );
        names.extend(page.items.into_iter().map(|a| a.internal_name));
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let listed = names.len();
    names.sort();
    names.dedup();
    assert_eq!(
        (listed, names.len()),
        (12, 12),
        "every activity exactly once"
    );
    assert!(
        pages >= 4,
        "three activities of ~10 KB fit in 35,000 bytes: {pages} pages"
    );
    // One activity larger than the budget still makes a page.
    let page = store.activities_page(&id, 500, 100, None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(page.next.is_some());
}

conformance!(
    catalog_sizes_and_removal,
    catalog_pages_end_at_the_byte_budget,
    pending_pulls,
    integrations,
    webhook_secret_rotation,
    listing,
    paging_beyond_one_response,
    catalog,
    catalog_paging,
    runs,
    slot_batches_and_option_slots
);
