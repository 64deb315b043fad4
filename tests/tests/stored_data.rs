//! Data written by version 1 of the store adapters (`tests/fixtures/store-v1`, written before
//! stored records were separated from the API types) still loads, shows exactly what it showed
//! then, and today's adapters write the same format.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use seyaha::adapters::aws::DynamoStore;
use seyaha::adapters::embedded::RedbStore;
use seyaha::domain::{IntegrationId, PartnerId, Timestamp, WebhookSecretDigest};
use seyaha::ports::{CatalogStore, IntegrationFilter, IntegrationStore, RunStore};
use seyaha_tests::aws::{resources, sdk_config};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v1").join(name)
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
    let record = store.get(&id).await.unwrap().expect("the integration loads");
    let mut shown = serde_json::to_value(&record.integration).unwrap();
    // Added after version 1 (push subscriptions): a record from then shows none.
    let notifications = shown.as_object_mut().unwrap().remove("notifications");
    assert_eq!(notifications, Some(json!({"mode": "none", "subscription_ids": [], "subscribed_at": null, "error_message": null})));
    assert_eq!(shown, expected["integration"]);
    assert!(record.webhook_secret_digest.matches(&WebhookSecretDigest::of(&"5e".repeat(32))), "the webhook secret still authenticates");
    assert_eq!(record.version, 7);
    let control = &record.sync_control;
    assert!(control.force_full_sync && control.requested_at.is_some());
    assert_eq!(control.lease.as_ref().map(|l| l.run_id.to_string()), Some("6a1f00000000000000000fff".into()));
    let by_partner = store.find_by_partner(&PartnerId::parse(PARTNER).unwrap()).await.unwrap().expect("found by partner");
    assert_eq!(by_partner.integration.id, id);

    let mut activities = store.activities(&id).await.unwrap();
    activities.sort_by(|a, b| a.internal_name.cmp(&b.internal_name));
    let mut expected_activities = expected["activities"].as_array().unwrap().clone();
    expected_activities.sort_by_key(|a| a["internalName"].as_str().unwrap().to_owned());
    assert_eq!(serde_json::to_value(&activities).unwrap(), Value::Array(expected_activities));
    let variation = store.find_variation(&id, "product_dhow", "SUNSET").await.unwrap().expect("notify finds the product");
    assert_eq!((variation.internal_name.as_str(), variation.activity_active), ("dhow-cruise", true));

    let all_slots = store.slots_page(&id, 100, None, Timestamp::from_unix_millis(0)).await.unwrap().items;
    let mut slots = serde_json::to_value(all_slots).unwrap().as_array().unwrap().clone();
    let mut expected_slots = expected["slots"].as_array().unwrap().clone();
    for list in [&mut slots, &mut expected_slots] {
        list.sort_by_key(|s| s["availabilityId"].as_str().unwrap().to_owned());
    }
    assert_eq!(slots, expected_slots);

    let runs = store.recent_runs(&id, 20, Timestamp::from_unix_millis(1_790_000_200_000)).await.unwrap();
    let mut expected_runs = expected["runs"].as_array().unwrap().clone();
    expected_runs.reverse(); // newest first
    assert_eq!(serde_json::to_value(&runs).unwrap(), Value::Array(expected_runs));

    // Listings see it too.
    let listed = store.list(&IntegrationFilter::default(), 10, None).await.unwrap();
    assert_eq!(listed.items.iter().map(|r| r.integration.id).collect::<Vec<_>>(), vec![id]);
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
        "M" => AttributeValue::M(inner.as_object().unwrap().iter().map(|(k, v)| (k.clone(), attribute(v))).collect()),
        other => panic!("unexpected attribute type {other}"),
    }
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<serde_json::Map<_, _>>()}),
        other => panic!("unexpected {other:?}"),
    }
}

async fn scan(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<Value> {
    let items = client.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
    let mut items: Vec<Value> =
        items.iter().map(|item| Value::Object(item.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect())).collect();
    items.sort_by_key(|i| format!("{}{}", i["pk"], i["sk"]));
    items
}

#[tokio::test]
async fn dynamodb_items_written_by_version_1_load_and_are_written_the_same_way_today() {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let fixture_items: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(fixture("dynamodb-items.json")).unwrap()).unwrap();

    // Version 1's items, put back as they were.
    let old = resources(&config).await;
    for item in &fixture_items {
        let item: HashMap<String, AttributeValue> = item.as_object().unwrap().iter().map(|(k, v)| (k.clone(), attribute(v))).collect();
        client.put_item().table_name(&old.table).set_item(Some(item)).send().await.unwrap();
    }
    let store = DynamoStore::new(client.clone(), old.table.clone());
    shows_what_version_1_showed(&store).await;

    // What they load as, written by today's adapter into a fresh table, is the same items.
    let id = IntegrationId::parse(ID).unwrap();
    let record = store.get(&id).await.unwrap().unwrap();
    let activities = store.activities(&id).await.unwrap();
    let slots = store.slots_page(&id, 100, None, Timestamp::from_unix_millis(0)).await.unwrap().items;
    let runs = store.recent_runs(&id, 20, Timestamp::from_unix_millis(1_790_000_200_000)).await.unwrap();
    let new = resources(&config).await;
    let rewritten = DynamoStore::new(client.clone(), new.table.clone());
    rewritten.insert(&record).await.unwrap();
    rewritten.put_activities(&id, &activities).await.unwrap();
    for slot in &slots {
        rewritten.put_slot(&id, slot, slot.local_date_time_start.instant().plus_millis(30 * 86_400_000)).await.unwrap();
    }
    for run in &runs {
        rewritten.record_run(run).await.unwrap();
    }
    // Every attribute version 1 wrote, with the same value; the only addition is the slots' TTL.
    let written = scan(&client, &new.table).await;
    assert_eq!(written.len(), fixture_items.len());
    for (new, old) in written.iter().zip(&fixture_items) {
        let (new, old) = (new.as_object().unwrap(), old.as_object().unwrap());
        for (name, value) in old {
            assert_eq!(new.get(name), Some(value), "{name} of {}", old["sk"]);
        }
        let added: Vec<&String> = new.keys().filter(|name| !old.contains_key(*name)).collect();
        let is_slot = old["pk"]["S"].as_str().unwrap().starts_with("SLOT#");
        assert!(added.is_empty() || (is_slot && added == ["ttl"]), "unexpected new attributes {added:?} on {}", old["sk"]);
    }
}
