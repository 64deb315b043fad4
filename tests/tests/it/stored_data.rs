//! Data written by version 1 of the store adapters (`tests/fixtures/store-v1`, written before
//! stored records were separated from the API types) still loads, shows exactly what it showed
//! then, and today's adapters write the same format.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use seyaha::adapters::aws::DynamoStore;
use seyaha::adapters::embedded::RedbStore;
use seyaha::domain::{
    AuthType, BaseUrl, ContentHash, Health, HealthStatus, Integration, IntegrationId,
    IntegrationRecord, Lease, NotificationMode, Notifications, PartnerId, PreviousWebhookSecret,
    RunId, SyncControl, SyncState, SyncStatus, Timestamp, WebhookSecretDigest,
};
use seyaha::ports::{CatalogStore, IntegrationFilter, IntegrationStore, RunStore, StoreError};
use seyaha_tests::aws::{resources, sdk_config};
use seyaha_tests::capacity::item_json;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/store-v1")
        .join(name)
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("expected-api.json")).unwrap()).unwrap()
}

const ID: &str = "6a1f00000000000000000001";
const PARTNER: &str = "6a1f000000000000000000aa";

/// Reads everything through the ports and compares it, as the API shows it, with what
/// version 1 showed.
async fn shows_what_version_1_showed<S: IntegrationStore + CatalogStore + RunStore>(store: &S) {
    let expected = expected();
    let id = IntegrationId::parse(ID).unwrap();
    let record = store
        .get(&id)
        .await
        .unwrap()
        .expect("the integration loads");
    let mut shown = serde_json::to_value(&record.integration).unwrap();
    // Added after version 1 (push subscriptions): a record from then shows none.
    let notifications = shown.as_object_mut().unwrap().remove("notifications");
    assert_eq!(
        notifications,
        Some(
            json!({"mode": "none", "subscription_ids": [], "subscribed_at": null, "error_message": null})
        )
    );
    // Added with per-integration webhook limits: a record from before has the default.
    assert_eq!(
        shown
            .as_object_mut()
            .unwrap()
            .remove("webhookRatePerMinute"),
        Some(Value::Null)
    );
    assert_eq!(shown, expected["integration"]);
    assert!(
        record
            .webhook_secret_digest
            .matches(&WebhookSecretDigest::of(&"5e".repeat(32))),
        "the webhook secret still authenticates"
    );
    assert_eq!(record.version, 7);
    let control = &record.sync_control;
    assert!(control.force_full_sync && control.requested_at.is_some());
    assert_eq!(
        control.lease.as_ref().map(|l| l.run_id.to_string()),
        Some("6a1f00000000000000000fff".into())
    );
    let by_partner = store
        .find_by_partner(&PartnerId::parse(PARTNER).unwrap())
        .await
        .unwrap()
        .expect("found by partner");
    assert_eq!(by_partner.integration.id, id);

    let mut activities = store.activities(&id).await.unwrap();
    activities.sort_by(|a, b| a.internal_name.cmp(&b.internal_name));
    let mut expected_activities = expected["activities"].as_array().unwrap().clone();
    expected_activities.sort_by_key(|a| a["internalName"].as_str().unwrap().to_owned());
    assert_eq!(
        serde_json::to_value(&activities).unwrap(),
        Value::Array(expected_activities)
    );
    let variation = store
        .find_variation(&id, "product_dhow", "SUNSET")
        .await
        .unwrap()
        .expect("notify finds the product");
    assert_eq!(
        (variation.internal_name.as_str(), variation.activity_active),
        ("dhow-cruise", true)
    );

    let all_slots = store
        .slots_page(&id, 100, None, Timestamp::from_unix_millis(0))
        .await
        .unwrap()
        .items;
    let mut slots = serde_json::to_value(all_slots)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let mut expected_slots = expected["slots"].as_array().unwrap().clone();
    for list in [&mut slots, &mut expected_slots] {
        list.sort_by_key(|s| s["availabilityId"].as_str().unwrap().to_owned());
    }
    assert_eq!(slots, expected_slots);

    let runs = store
        .recent_runs(&id, 20, Timestamp::from_unix_millis(1_790_000_200_000))
        .await
        .unwrap();
    let mut expected_runs = expected["runs"].as_array().unwrap().clone();
    expected_runs.reverse(); // newest first
    assert_eq!(
        serde_json::to_value(&runs).unwrap(),
        Value::Array(expected_runs)
    );

    // Listings see it too.
    let listed = store
        .list(&IntegrationFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(
        listed
            .items
            .iter()
            .map(|r| r.integration.id)
            .collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(store.list_syncable(10, None).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn a_redb_file_written_by_version_1_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seyaha.redb");
    std::fs::copy(fixture("seyaha.redb"), &path).unwrap();
    let store = RedbStore::open(&path).unwrap();
    shows_what_version_1_showed(&store).await;
}

fn attribute(value: &Value) -> AttributeValue {
    let (kind, inner) = value.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(inner.as_str().unwrap().to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "L" => AttributeValue::L(inner.as_array().unwrap().iter().map(attribute).collect()),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        ),
        other => panic!("unexpected attribute type {other}"),
    }
}

/// The scan with each integration's `META` and `CTRL` items joined into one (the index copy
/// of the health status dropped) and the counters left out, as version 1 wrote it.
fn join_integration_items(items: Vec<Value>) -> Vec<Value> {
    let mut joined: Vec<Value> = Vec::new();
    for mut item in items {
        let pk = item["pk"]["S"].as_str().unwrap().to_owned();
        if pk.starts_with("COUNT#") {
            continue;
        }
        if pk.starts_with("INT#") {
            let object = item.as_object_mut().unwrap();
            object.remove("health_status");
            if object["sk"]["S"] == "CTRL" {
                object.remove("sk");
            }
            if let Some(existing) = joined
                .iter_mut()
                .find(|other| other["pk"]["S"] == pk.as_str())
            {
                existing.as_object_mut().unwrap().extend(object.clone());
                continue;
            }
        }
        joined.push(item);
    }
    joined
}

async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Value> {
    let items = client
        .scan()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    let mut items: Vec<Value> = items.iter().map(item_json).collect();
    items.sort_by_key(|i| format!("{}{}", i["pk"], i["sk"]));
    items
}

#[tokio::test]
async fn dynamodb_items_written_by_version_1_load_and_are_written_the_same_way_today() {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let fixture_items: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("dynamodb-items.json")).unwrap())
            .unwrap();

    // Version 1's items, put back as they were.
    let old = resources(&config).await;
    for item in &fixture_items {
        let item: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        client
            .put_item()
            .table_name(&old.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let store = DynamoStore::new(client.clone(), old.table.clone());
    shows_what_version_1_showed(&store).await;

    // What they load as, written by today's adapter into a fresh table, is the same items.
    let id = IntegrationId::parse(ID).unwrap();
    let record = store.get(&id).await.unwrap().unwrap();
    let activities = store.activities(&id).await.unwrap();
    let slots = store
        .slots_page(&id, 100, None, Timestamp::from_unix_millis(0))
        .await
        .unwrap()
        .items;
    let runs = store
        .recent_runs(&id, 20, Timestamp::from_unix_millis(1_790_000_200_000))
        .await
        .unwrap();
    let new = resources(&config).await;
    let rewritten = DynamoStore::new(client.clone(), new.table.clone());
    rewritten.insert(&record).await.unwrap();
    rewritten.put_activities(&id, &activities).await.unwrap();
    for slot in &slots {
        rewritten
            .put_slot(
                &id,
                slot,
                slot.local_date_time_start
                    .instant()
                    .plus_millis(30 * 86_400_000),
            )
            .await
            .unwrap();
    }
    for run in &runs {
        rewritten.record_run(run).await.unwrap();
    }
    // Every attribute version 1 wrote, with the same value; the only addition is the slots' TTL.
    // The integration is the exception: today it is two items (the document and its sync
    // control) with sharded index keys, whose attributes together are version 1's. A slot's
    // sort key has its local date before its id today (a pull reads only its days).
    let written = join_integration_items(scan(&client, &new.table).await);
    let mut expected_items = fixture_items.clone();
    for item in &mut expected_items {
        if item["pk"]["S"].as_str().unwrap().starts_with("SLOT#") {
            item["sk"] = json!({"S": dated_slot_key(item)});
        }
    }
    expected_items.sort_by_key(|i| format!("{}{}", i["pk"], i["sk"]));
    assert_eq!(written.len(), expected_items.len());
    for (new, old) in written.iter().zip(&expected_items) {
        let (new, old) = (new.as_object().unwrap(), old.as_object().unwrap());
        for (name, value) in old {
            if name == "gsi1pk" || name == "gsi2pk" {
                let prefix = format!("{}#", value["S"].as_str().unwrap());
                assert!(
                    new[name]["S"].as_str().unwrap().starts_with(&prefix),
                    "{name} is sharded: {}",
                    new[name]
                );
                continue;
            }
            assert_eq!(new.get(name), Some(value), "{name} of {}", old["sk"]);
        }
        let added: Vec<&String> = new.keys().filter(|name| !old.contains_key(*name)).collect();
        let is_slot = old["pk"]["S"].as_str().unwrap().starts_with("SLOT#");
        // Activities carry their size since the per-integration catalog cap (items without it
        // load, and count 0 bytes until written again).
        let is_activity = old["sk"]["S"].as_str().unwrap().starts_with("ACT#");
        let expected_additions: &[&str] = match (is_slot, is_activity) {
            (true, _) => &["ttl"],
            (_, true) => &["stored_bytes"],
            _ => &[],
        };
        assert!(
            added.is_empty() || added == expected_additions,
            "unexpected new attributes {added:?} on {}",
            old["sk"]
        );
    }
}

/// The sort key today's adapter gives a slot item: `DAY#["product","option","day","availability"]`.
fn dated_slot_key(item: &Value) -> String {
    let text = |name: &str| item[name]["S"].as_str().unwrap().to_owned();
    let day = text("localDateTimeStart")[..10].to_owned();
    format!(
        "DAY#{}",
        serde_json::to_string(&[
            text("productId"),
            text("optionId"),
            day,
            text("availabilityId")
        ])
        .unwrap()
    )
}

/// Slots version 1 wrote (their sort key has no date) list as before, and the first pull over
/// their days reads them and moves them to the dated key: each is then one item, found by the
/// days it falls on only.
#[tokio::test]
async fn dynamodb_slots_of_version_1_are_read_by_a_pull_and_move_to_the_dated_key() {
    use time::macros::date;
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let fixture_items: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("dynamodb-items.json")).unwrap())
            .unwrap();
    let table = resources(&config).await.table;
    for item in &fixture_items {
        let item: HashMap<String, AttributeValue> = item
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect();
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let store = DynamoStore::new(client.clone(), table.clone());
    let id = IntegrationId::parse(ID).unwrap();
    let listed = store
        .slots_page(&id, 100, None, Timestamp::from_unix_millis(0))
        .await
        .unwrap()
        .items;
    let sunset = listed
        .iter()
        .find(|slot| slot.option_id == "SUNSET")
        .expect("the fixture has a SUNSET slot")
        .clone();
    assert_eq!(sunset.local_date_time_start.local_date(), "2026-07-15");

    assert!(
        store
            .option_slots(
                &id,
                "product_dhow",
                "SUNSET",
                date!(2026 - 07 - 16)..=date!(2026 - 07 - 31)
            )
            .await
            .unwrap()
            .is_empty()
    );
    let read = store
        .option_slots(
            &id,
            "product_dhow",
            "SUNSET",
            date!(2026 - 07 - 15)..=date!(2026 - 07 - 15),
        )
        .await
        .unwrap();
    assert_eq!(read, std::slice::from_ref(&sunset));

    let slot_keys: Vec<String> = scan(&client, &table)
        .await
        .into_iter()
        .filter(|item| item["optionId"]["S"] == "SUNSET")
        .map(|item| item["sk"]["S"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        slot_keys,
        [r#"DAY#["product_dhow","SUNSET","2026-07-15","2026-07-15T19:30:00+04:00"]"#],
        "moved, not copied"
    );
    let again = store
        .slots_page(&id, 100, None, Timestamp::from_unix_millis(0))
        .await
        .unwrap()
        .items;
    assert_eq!(again.len(), listed.len(), "every slot listed once");
    assert_eq!(
        store
            .option_slots(
                &id,
                "product_dhow",
                "SUNSET",
                date!(2026 - 07 - 15)..=date!(2026 - 07 - 15)
            )
            .await
            .unwrap(),
        [sunset]
    );
}

const V2_LIVE: &str = "6a2f00000000000000000001";
const V2_PAUSED: &str = "6a2f00000000000000000002";

/// The two integrations behind `tests/fixtures/store-v2/dynamodb-items.json`: that file holds
/// the items the single-item DynamoDB format (every attribute on `INT#{id}`/`META`, constant
/// index keys `INTEGRATION` and `SYNCABLE`) wrote for exactly these records.
fn version_2_records() -> Vec<IntegrationRecord> {
    let at = |ms: i64| Timestamp::from_unix_millis(1_795_000_000_000 + ms);
    let live = IntegrationRecord {
        integration: Integration {
            id: IntegrationId::parse(V2_LIVE).unwrap(),
            partner_id: PartnerId::parse("6a2f000000000000000000aa").unwrap(),
            base_url: BaseUrl::parse("https://octo.example.com/v1").unwrap(),
            auth_type: AuthType::Bearer,
            handles_ticket_delivery: true,
            is_active: true,
            is_approved: true,
            sync: SyncState {
                status: SyncStatus::Error,
                last_sync_at: Some(at(5_000)),
                last_sync_hash: Some(ContentHash::of(b"catalog")),
                error_message: Some("GET /products returned HTTP 500".into()),
            },
            health: Health {
                status: HealthStatus::Degraded,
                last_probe_at: Some(at(6_000)),
                last_success_at: Some(at(5_000)),
                consecutive_failures: 1,
                degraded_since: Some(at(6_000)),
                down_since: None,
            },
            notifications: Notifications {
                mode: NotificationMode::OctoNotifications,
                subscription_ids: vec!["sub-1".into(), "sub-2".into()],
                subscribed_at: Some(at(2_000)),
                error_message: None,
            },
            webhook_rate_per_minute: None,
            created_at: at(0),
            updated_at: at(6_000),
        },
        webhook_secret_digest: WebhookSecretDigest::of(&"5e".repeat(32)),
        previous_webhook_secret: Some(PreviousWebhookSecret {
            digest: WebhookSecretDigest::of(&"4d".repeat(32)),
            valid_until: at(86_400_000),
        }),
        delivery_secret_digest: Some(WebhookSecretDigest::of(&"3c".repeat(32))),
        credential_version: 0,
        sync_control: SyncControl {
            lease: Some(Lease {
                run_id: RunId::parse("6a2f00000000000000000fff").unwrap(),
                expires_at: at(300_000),
                covers: Some(at(7_000)),
            }),
            requested_at: Some(at(7_000)),
            force_full_sync: true,
            ..SyncControl::default()
        },
        version: 12,
    };
    let paused = IntegrationRecord {
        integration: Integration {
            id: IntegrationId::parse(V2_PAUSED).unwrap(),
            partner_id: PartnerId::parse("6a2f000000000000000000bb").unwrap(),
            base_url: BaseUrl::parse("https://api.partner.example").unwrap(),
            auth_type: AuthType::ApiKey,
            handles_ticket_delivery: false,
            is_active: false,
            is_approved: true,
            sync: SyncState {
                status: SyncStatus::Idle,
                last_sync_at: None,
                last_sync_hash: None,
                error_message: None,
            },
            health: Health {
                status: HealthStatus::Healthy,
                last_probe_at: None,
                last_success_at: None,
                consecutive_failures: 0,
                degraded_since: None,
                down_since: None,
            },
            notifications: Notifications::default(),
            webhook_rate_per_minute: None,
            created_at: at(1_000),
            updated_at: at(1_000),
        },
        webhook_secret_digest: WebhookSecretDigest::of(&"2b".repeat(32)),
        previous_webhook_secret: None,
        delivery_secret_digest: None,
        credential_version: 0,
        sync_control: SyncControl::default(),
        version: 3,
    };
    vec![live, paused]
}

fn put_fixture_items(path: &str) -> Vec<HashMap<String, AttributeValue>> {
    let items: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap(),
    )
    .unwrap();
    items
        .iter()
        .map(|item| {
            item.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect()
        })
        .collect()
}

/// Items of the single-item format (every attribute on `META`, constant index keys; written by
/// the adapter before the sync state moved to its own item) load as the records they were
/// written from, listings and counts see them, and the first write of each moves it to the
/// two-item layout without losing a field, a version check or its place in the counts.
#[tokio::test]
async fn dynamodb_items_of_the_single_item_format_load_and_move_on_their_first_write() {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = resources(&config).await.table;
    for item in put_fixture_items("fixtures/store-v2/dynamodb-items.json") {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let store = DynamoStore::new(client.clone(), table.clone());
    let records = version_2_records();
    let (live, paused) = (&records[0], &records[1]);
    for record in &records {
        assert_eq!(
            store.get(&record.integration.id).await.unwrap().as_ref(),
            Some(record)
        );
        assert_eq!(
            store
                .find_by_partner(&record.integration.partner_id)
                .await
                .unwrap()
                .as_ref(),
            Some(record)
        );
    }
    let listed = store
        .list(&IntegrationFilter::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(
        listed.items,
        vec![paused.clone(), live.clone()],
        "newest first"
    );
    assert_eq!(
        store.list_syncable(10, None).await.unwrap().items,
        vec![live.clone()]
    );
    let degraded = IntegrationFilter {
        is_approved: Some(true),
        health: Some(HealthStatus::Degraded),
    };
    assert_eq!(
        store.list(&degraded, 10, None).await.unwrap().items,
        vec![live.clone()]
    );
    assert_eq!(
        (
            store.count(&IntegrationFilter::default()).await.unwrap(),
            store.count(&degraded).await.unwrap()
        ),
        (2, 1)
    );

    // A stale first write loses on the version the single item carries.
    let mut stale = live.clone();
    stale.version -= 1;
    let mut stale_change = stale.clone();
    stale_change.version += 1;
    stale_change.sync_control.lease = None;
    assert!(matches!(
        store.update(&stale_change, &stale).await,
        Err(StoreError::VersionConflict)
    ));

    // The first write of the live one changes sync state only; of the paused one, the document.
    let mut released = live.clone();
    released.sync_control.lease = None;
    released.version += 1;
    store.update(&released, live).await.unwrap();
    let mut unapproved = paused.clone();
    unapproved.integration.is_approved = false;
    unapproved.version += 1;
    store.update(&unapproved, paused).await.unwrap();
    for record in [&released, &unapproved] {
        assert_eq!(
            store.get(&record.integration.id).await.unwrap().as_ref(),
            Some(record)
        );
        let items = client
            .query()
            .table_name(&table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("INT#{}", record.integration.id)),
            )
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let kinds: Vec<&str> = items
            .iter()
            .map(|item| item["sk"].as_s().unwrap().as_str())
            .collect();
        assert_eq!(kinds, ["CTRL", "META"], "moved to the two-item layout");
    }
    // Moved records are counted once, in their new cells, and listed as before.
    let unapproved_only = IntegrationFilter {
        is_approved: Some(false),
        health: None,
    };
    assert_eq!(
        (
            store.count(&IntegrationFilter::default()).await.unwrap(),
            store.count(&degraded).await.unwrap(),
            store.count(&unapproved_only).await.unwrap()
        ),
        (2, 1, 1)
    );
    assert_eq!(
        store
            .list(&IntegrationFilter::default(), 10, None)
            .await
            .unwrap()
            .items,
        vec![unapproved.clone(), released.clone()]
    );
    assert_eq!(
        store.list_syncable(10, None).await.unwrap().items,
        vec![released.clone()]
    );
    // A second write takes the two-item path and still checks the version.
    assert!(matches!(
        store.update(&released, live).await,
        Err(StoreError::VersionConflict)
    ));
    store.delete(&released.integration.id).await.unwrap();
    assert_eq!(store.count(&IntegrationFilter::default()).await.unwrap(), 1);
    assert!(
        store
            .find_by_partner(&live.integration.partner_id)
            .await
            .unwrap()
            .is_none()
    );
}
