//! The DynamoDB store: integrations, catalog, slots and run history in one table.
//!
//! | Item | pk | sk | Other keys |
//! |---|---|---|---|
//! | integration document | `INT#{id}` | `META` | `gsi1pk=INTEGRATION#{shard}`, `gsi1sk={createdAt}#{id}` (admin list); `gsi2pk=SYNCABLE#{shard}`, `gsi2sk={id}` only while approved and active (sparse: the live listing) |
//! | integration sync control | `INT#{id}` | `CTRL` | none: lease, request, sync state, health, version |
//! | partner lock | `PARTNER#{partner}` | `META` | written in the same transaction as the integration: one per partner |
//! | integration counter | `COUNT#{shard}` | `COUNT` | one number per approval × health cell (the admin list's `totalCount`) |
//! | activity | `CAT#{id}#{shard}` | `ACT#{internalName}` | `gsi3pk=PROD#{id}#{productId}` (notify finds the activity of an OCTO product) |
//! | slot | `SLOT#{id}#{shard}` | `DAY#["product","option","{local date}","availability"]` | `ttl` |
//! | pending availability pull | `PULL#{id}` | `["product","option","from","to"]` | `ttl`: a day after its request |
//! | run | `RUN#{id}` | `{startedMs:013}#{runId}` | `ttl` (epoch seconds) for DynamoDB TTL |
//!
//! Catalog and slot items are spread over [`SHARDS`] partition keys per integration, so a large
//! first sync is not capped by one partition's 1,000 writes per second; the integration index
//! keys over [`INDEX_SHARDS`] (see `integrations`), so no partition key is shared by every
//! integration.
//!
//! A slot's sort key puts its local date before its id, so an availability pull reads the
//! days it asked for and no others (a Query between two keys). Slots written before the date
//! was in the key (`SLOT#["product","option","availability"]`) still list and load; a pull
//! over their days moves them to the dated key (see `option_slots`).

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, PutRequest, ScalarAttributeType,
    TimeToLiveSpecification, WriteRequest,
};
use sha2::{Digest, Sha256};
use time::Date;

use super::SdkFailure;

mod integrations;

use crate::adapters::stored::{StoredActivity, StoredPull, StoredRun, StoredSlot, fields};
use crate::domain::{
    Activity, ActivityState, AvailabilityPull, IntegrationId, ProductActivity, Slot, SyncRun,
    Timestamp, VariationRef, format_local_date,
};
use crate::ports::{
    Admission, CatalogStore, Cursor, Page, RateLimiter, RateWindow, RunStore, StoreError,
};
pub use integrations::{INDEX_SHARDS, index_shard};

/// How long a pending pull item lives (DynamoDB TTL) after its request.
const PULL_TTL_SECS: i64 = 24 * 3600;
/// Partition keys per integration for catalog and slot items.
pub const SHARDS: u8 = 8;
/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_LIMIT: usize = 25;
const MAX_BATCH_ATTEMPTS: u32 = 8;
/// Concurrent single-item updates when flipping `isActive`.
const UPDATE_CONCURRENCY: usize = 25;

const PRODUCT_INDEX: &str = "gsi3";

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn unavailable<E: std::error::Error + Send + Sync + 'static>(error: E) -> StoreError {
    StoreError::Unavailable(Box::new(SdkFailure::new(error)))
}

/// A request the SDK's builder refused (a bug in how we build it, never user input).
fn build_failed(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::unavailable(error)
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A slot's item: its key (in its product's shard), its fields and its TTL.
fn slot_item(
    integration: &IntegrationId,
    slot: &Slot,
    expires_at: Timestamp,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item = to_item(&StoredSlot::from(slot))?;
    // DynamoDB's TTL deletes the slot some time after this (reads filter by start time).
    item.insert(
        "ttl".into(),
        AttributeValue::N(expires_at.unix_seconds().to_string()),
    );
    item.extend(slot_key(integration, slot)?);
    Ok(item)
}

/// A slot's key: `DAY#["product","option","2026-07-15","availability"]` in its product's shard.
fn slot_key(integration: &IntegrationId, slot: &Slot) -> Result<Item, StoreError> {
    let ids = serde_json::to_string(&[
        &slot.product_id,
        &slot.option_id,
        slot_day(slot),
        &slot.availability_id,
    ])
    .map_err(StoreError::unavailable)?;
    Ok(HashMap::from([
        (
            "pk".into(),
            s(format!("SLOT#{integration}#{}", shard(&slot.product_id))),
        ),
        ("sk".into(), s(format!("{DATED_SLOT}{ids}"))),
    ]))
}

/// The sort key prefix of slots with their date in the key, and of the earlier ones without.
const DATED_SLOT: &str = "DAY#";
const UNDATED_SLOT: &str = "SLOT#";

/// A slot's local date (`YYYY-MM-DD`): the start as the partner wrote it, cut at the day.
fn slot_day(slot: &Slot) -> &str {
    slot.local_date_time_start.local_date()
}

/// `DAY#["product","option","2026-07-01"` (every key of that day and later) and the bound just
/// past every key of `last` (`"...","2026-07-31",` is followed by `,`; `-` sorts after it).
fn dated_slot_bounds(
    product_id: &str,
    option_id: &str,
    first: &str,
    last: &str,
) -> Result<(String, String), StoreError> {
    let open = |day: &str| -> Result<String, StoreError> {
        let ids = serde_json::to_string(&[product_id, option_id, day])
            .map_err(StoreError::unavailable)?;
        Ok(format!("{DATED_SLOT}{}", ids.trim_end_matches(']')))
    };
    Ok((open(first)?, format!("{}-", open(last)?)))
}

/// Expression values, all strings.
fn values<const N: usize>(pairs: [(&str, String); N]) -> Item {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), s(value)))
        .collect()
}

fn shard(key: &str) -> u8 {
    Sha256::digest(key.as_bytes())[0] % SHARDS
}

fn activity_key(id: &IntegrationId, name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".into(), s(format!("CAT#{id}#{}", shard(name)))),
        ("sk".into(), s(format!("ACT#{name}"))),
    ])
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value)
        .map_err(|e| StoreError::unavailable(format!("cannot encode item: {e}")))
}

fn from_item<T: serde::de::DeserializeOwned>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::unavailable(format!("corrupt item: {e}")))
}

/// A cursor is the key of the last item returned (table and index key attributes), as JSON.
fn cursor_of(item: &Item, key_names: &[&str]) -> Cursor {
    let key: BTreeMap<&str, &str> = key_names
        .iter()
        .filter_map(|name| {
            item.get(*name)
                .and_then(|v| v.as_s().ok())
                .map(|v| (*name, v.as_str()))
        })
        .collect();
    Cursor::new(serde_json::to_string(&key).expect("a key serializes"))
}

/// An item's size as its JSON would be: the attribute names and values (DynamoDB's own size
/// rule, near enough), so a page is cut by what it will weigh in the answer.
fn item_bytes(item: &Item) -> usize {
    fn value_bytes(value: &AttributeValue) -> usize {
        match value {
            AttributeValue::S(text) | AttributeValue::N(text) => text.len() + 2,
            AttributeValue::B(blob) => blob.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 5,
            AttributeValue::L(list) => list.iter().map(value_bytes).sum::<usize>() + list.len() + 2,
            AttributeValue::M(map) => item_bytes(map),
            AttributeValue::Ss(set) | AttributeValue::Ns(set) => {
                set.iter().map(|text| text.len() + 3).sum::<usize>() + 2
            }
            _ => 8,
        }
    }
    item.iter()
        .map(|(name, value)| name.len() + 4 + value_bytes(value))
        .sum::<usize>()
        + 2
}

/// An activity item's size (`Activity::stored_bytes`, written with it); an item written before
/// sizes were recorded counts as 0 until it is written again.
fn stored_bytes_of(item: &Item) -> u64 {
    item.get(fields::STORED_BYTES)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn start_key(cursor: Option<Cursor>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let key: BTreeMap<String, String> =
        serde_json::from_str(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?;
    Ok(Some(
        key.into_iter()
            .map(|(name, value)| (name, s(value)))
            .collect(),
    ))
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table as template.yaml declares it (tests and local experiments).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let index = |name: &str, pk: &str, sk: &str, projection: Projection| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash).expect("valid"))
                .key_schema(key(sk, KeyType::Range).expect("valid"))
                .projection(projection)
                .build()
        };
        let projection = |kind: ProjectionType, attributes: &[&str]| {
            Projection::builder()
                .projection_type(kind)
                .set_non_key_attributes(
                    (!attributes.is_empty())
                        .then(|| attributes.iter().map(|a| a.to_string()).collect()),
                )
                .build()
        };
        let mut request = client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest);
        for name in [
            "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk",
        ] {
            request = request.attribute_definitions(attribute(name).map_err(build_failed)?);
        }
        request
            .key_schema(key("pk", KeyType::Hash).map_err(build_failed)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_failed)?)
            .global_secondary_indexes(
                index(
                    "gsi1",
                    "gsi1pk",
                    "gsi1sk",
                    projection(
                        ProjectionType::Include,
                        &integrations::ADMIN_INDEX_ATTRIBUTES,
                    ),
                )
                .map_err(build_failed)?,
            )
            .global_secondary_indexes(
                index(
                    "gsi2",
                    "gsi2pk",
                    "gsi2sk",
                    projection(ProjectionType::KeysOnly, &[]),
                )
                .map_err(build_failed)?,
            )
            .global_secondary_indexes(
                index(
                    PRODUCT_INDEX,
                    "gsi3pk",
                    "gsi3sk",
                    projection(ProjectionType::All, &[]),
                )
                .map_err(build_failed)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(build_failed)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// A strongly consistent GetItem.
    async fn get_item(
        &self,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Every item of a (sharded) query, following pagination.
    async fn query_all(
        &self,
        index: Option<&str>,
        key_condition: &str,
        values: HashMap<String, AttributeValue>,
        names: Option<HashMap<String, String>>,
        projection: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression(key_condition)
                .set_expression_attribute_values(Some(values.clone()))
                .set_expression_attribute_names(names.clone())
                .set_projection_expression(projection.map(str::to_owned))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// One page over an integration's sharded items (`{prefix}#{id}#{shard}`), shard by shard,
    /// ending early once its items pass `max_bytes` ([`item_bytes`]; at least one item).
    /// The cursor is the last item's key; one whose partition is not this integration's is
    /// refused (cursors come from API callers).
    #[allow(clippy::too_many_arguments)]
    async fn sharded_page(
        &self,
        prefix: &str,
        id: &IntegrationId,
        limit: usize,
        max_bytes: usize,
        after: Option<Cursor>,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        let partition = |shard: u8| format!("{prefix}#{id}#{shard}");
        let (mut shard, mut start) = match start_key(after)? {
            None => (0u8, None),
            Some(key) => {
                let pk = key
                    .get("pk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or(StoreError::InvalidCursor)?;
                let shard = (0..SHARDS)
                    .find(|shard| *pk == partition(*shard))
                    .ok_or(StoreError::InvalidCursor)?;
                if key.len() != 2 || !key.contains_key("sk") {
                    return Err(StoreError::InvalidCursor);
                }
                (shard, Some(key))
            }
        };
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut full = false;
        while shard < SHARDS && items.len() <= limit && !full {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(partition(shard)))
                .limit(i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(|item| keep(item))
            {
                bytes = bytes.saturating_add(item_bytes(&item));
                if bytes > max_bytes && !items.is_empty() {
                    // Full by size: the page ends at the item before, and the next starts there.
                    full = true;
                    break;
                }
                items.push(item);
            }
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) => start = Some(key),
                None => shard += 1,
            }
        }
        if full {
            let next = items.last().map(|item| cursor_of(item, &["pk", "sk"]));
            return Ok((items, next));
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(|item| cursor_of(item, &["pk", "sk"]))
        } else {
            None
        };
        Ok((items, next))
    }

    /// The activity of one OCTO product, through the product index.
    async fn product_activity(
        &self,
        integration: &IntegrationId,
        product_id: &str,
    ) -> Result<Option<(Activity, u64)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PRODUCT_INDEX)
            .key_condition_expression("gsi3pk = :pk")
            .expression_attribute_values(":pk", s(format!("PROD#{integration}#{product_id}")))
            .limit(1)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(item) = output.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let size = stored_bytes_of(&item);
        Ok(Some((from_item::<StoredActivity>(item)?.into(), size)))
    }

    async fn shard_items(
        &self,
        prefix: &str,
        id: &IntegrationId,
        projection: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        for shard in 0..SHARDS {
            let values = HashMap::from([(":pk".to_owned(), s(format!("{prefix}#{id}#{shard}")))]);
            let names = projection.map(|_| {
                HashMap::from([
                    ("#name".to_owned(), fields::INTERNAL_NAME.to_owned()),
                    ("#hash".to_owned(), fields::CONTENT_HASH.to_owned()),
                    ("#active".to_owned(), fields::IS_ACTIVE.to_owned()),
                    ("#bytes".to_owned(), fields::STORED_BYTES.to_owned()),
                    ("#updated".to_owned(), fields::UPDATED_AT.to_owned()),
                ])
            });
            items.extend(
                self.query_all(None, "pk = :pk", values, names, projection)
                    .await?,
            );
        }
        Ok(items)
    }

    /// BatchWriteItem in chunks of 25, retrying unprocessed items with exponential backoff and jitter.
    async fn batch_put(
        &self,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_failed)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }

    /// BatchWriteItem of puts and deletes, as [`batch_put`](Self::batch_put).
    async fn batch_write(&self, writes: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in writes.chunks(BATCH_WRITE_LIMIT) {
            let mut requests = chunk.to_vec();
            let mut attempt = 0;
            while !requests.is_empty() {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                attempt += 1;
                if attempt > MAX_BATCH_ATTEMPTS {
                    return Err(StoreError::unavailable(format!(
                        "{} items still unprocessed after {MAX_BATCH_ATTEMPTS} attempts",
                        requests.len()
                    )));
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(unavailable)?;
                requests = output
                    .unprocessed_items
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

/// 50 ms doubling per attempt, capped at 2 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 50u64.saturating_mul(1 << attempt.min(6)).min(2_000);
    let mut random = [0u8; 8];
    if getrandom::fill(&mut random).is_err() {
        // No randomness: back off the full ceiling rather than not at all.
        return Duration::from_millis(ceiling);
    }
    Duration::from_millis(u64::from_le_bytes(random) % (ceiling + 1))
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn activity_states(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<ActivityState>, StoreError> {
        let items = self
            .shard_items(
                "CAT",
                integration,
                Some("#name, #hash, #active, #bytes, #updated"),
            )
            .await?;
        items
            .into_iter()
            .map(|mut item| {
                let text = |item: &mut HashMap<String, AttributeValue>, key: &str| match item
                    .remove(key)
                {
                    Some(AttributeValue::S(value)) => Ok(value),
                    _ => Err(StoreError::unavailable(format!(
                        "activity item without {key}"
                    ))),
                };
                let hash = text(&mut item, fields::CONTENT_HASH)?;
                let updated_at = text(&mut item, fields::UPDATED_AT)?;
                Ok(ActivityState {
                    internal_name: text(&mut item, fields::INTERNAL_NAME)?,
                    content_hash: hash.parse().map_err(|e| {
                        StoreError::unavailable(format!("corrupt activity content hash: {e}"))
                    })?,
                    is_active: matches!(
                        item.get(fields::IS_ACTIVE),
                        Some(AttributeValue::Bool(true))
                    ),
                    stored_bytes: stored_bytes_of(&item),
                    updated_at: Timestamp::parse(&updated_at).map_err(|e| {
                        StoreError::unavailable(format!("corrupt activity updatedAt: {e}"))
                    })?,
                })
            })
            .collect()
    }

    async fn put_activities(
        &self,
        integration: &IntegrationId,
        activities: &[Activity],
    ) -> Result<(), StoreError> {
        let items = activities
            .iter()
            .map(|activity| {
                let mut item = to_item(&StoredActivity::from(activity))?;
                item.extend(activity_key(integration, &activity.internal_name));
                item.insert(
                    "gsi3pk".into(),
                    s(format!(
                        "PROD#{integration}#{}",
                        activity.external_sync.external_id
                    )),
                );
                item.insert("gsi3sk".into(), s("ACTIVITY"));
                item.insert(
                    fields::STORED_BYTES.into(),
                    AttributeValue::N(activity.stored_bytes().to_string()),
                );
                Ok(item)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_put(items).await
    }

    async fn delete_activities(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
    ) -> Result<(), StoreError> {
        // The product index (gsi3) is kept by DynamoDB: its entry goes with the item.
        let deletes = internal_names
            .iter()
            .map(|name| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(activity_key(integration, name)))
                    .build()
                    .map_err(build_failed)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(deletes).await
    }

    async fn set_active(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
        active: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        for chunk in internal_names.chunks(UPDATE_CONCURRENCY) {
            let updates = chunk.iter().map(|name| {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(activity_key(integration, name)))
                    .update_expression("SET #active = :active, #updated = :now")
                    .expression_attribute_names("#active", fields::IS_ACTIVE)
                    .expression_attribute_names("#updated", fields::UPDATED_AT)
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":active", AttributeValue::Bool(active))
                    .expression_attribute_values(":now", s(now.to_string()))
                    .send()
            });
            for result in futures_util::future::join_all(updates).await {
                match result {
                    Ok(_) => {}
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(error) => return Err(unavailable(error)),
                }
            }
        }
        Ok(())
    }

    async fn find_variation(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
    ) -> Result<Option<VariationRef>, StoreError> {
        let Some((activity, _)) = self.product_activity(integration, product_id).await? else {
            return Ok(None);
        };
        let has_option = activity
            .variations
            .iter()
            .any(|v| v.external_sync.external_option_id == option_id);
        Ok(has_option.then_some(VariationRef {
            internal_name: activity.internal_name,
            activity_active: activity.is_active,
        }))
    }

    async fn activity_of_product(
        &self,
        integration: &IntegrationId,
        product_id: &str,
    ) -> Result<Option<ProductActivity>, StoreError> {
        Ok(self
            .product_activity(integration, product_id)
            .await?
            .map(|(activity, size)| ProductActivity::of(&activity, size)))
    }

    async fn option_slots(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
        days: RangeInclusive<Date>,
    ) -> Result<Vec<Slot>, StoreError> {
        let (first, last) = (
            format_local_date(*days.start()),
            format_local_date(*days.end()),
        );
        let pk = format!("SLOT#{integration}#{}", shard(product_id));
        let (low, high) = dated_slot_bounds(product_id, option_id, &first, &last)?;
        let mut slots: Vec<Slot> = self
            .query_all(
                None,
                "pk = :pk AND sk BETWEEN :low AND :high",
                values([(":pk", pk.clone()), (":low", low), (":high", high)]),
                None,
                None,
            )
            .await?
            .into_iter()
            .map(|item| from_item::<StoredSlot>(item).map(Slot::from))
            .collect::<Result<_, _>>()?;

        // Slots stored before the date was in the key: read the option's (none once they are
        // moved or expired: a Query that finds nothing costs half a read unit), and move those
        // of the asked days to their dated key. A dated slot of the same id is newer (a notify
        // wrote it since): the undated one is only deleted.
        let ids =
            serde_json::to_string(&[product_id, option_id]).map_err(StoreError::unavailable)?;
        let undated_prefix = format!("{UNDATED_SLOT}{},", ids.trim_end_matches(']'));
        let undated = self
            .query_all(
                None,
                "pk = :pk AND begins_with(sk, :prefix)",
                values([(":pk", pk), (":prefix", undated_prefix)]),
                None,
                None,
            )
            .await?;
        if undated.is_empty() {
            return Ok(slots);
        }
        let dated: std::collections::HashSet<String> = slots
            .iter()
            .map(|slot| slot.availability_id.clone())
            .collect();
        let mut moves = Vec::new();
        for item in undated {
            let key: Item = item
                .iter()
                .filter(|(name, _)| *name == "pk" || *name == "sk")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ttl = item.get("ttl").cloned();
            let slot = Slot::from(from_item::<StoredSlot>(item)?);
            let day = slot_day(&slot);
            if day < first.as_str() || day > last.as_str() {
                continue;
            }
            if !dated.contains(&slot.availability_id) {
                let mut moved = to_item(&StoredSlot::from(&slot))?;
                moved.extend(slot_key(integration, &slot)?);
                if let Some(ttl) = ttl {
                    moved.insert("ttl".into(), ttl);
                }
                moves.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(moved))
                                .build()
                                .map_err(build_failed)?,
                        )
                        .build(),
                );
                slots.push(slot);
            }
            moves.push(
                WriteRequest::builder()
                    .delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key))
                            .build()
                            .map_err(build_failed)?,
                    )
                    .build(),
            );
        }
        self.batch_write(moves).await?;
        Ok(slots)
    }

    async fn put_slot(
        &self,
        integration: &IntegrationId,
        slot: &Slot,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let item = slot_item(integration, slot, expires_at)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn put_slots(
        &self,
        integration: &IntegrationId,
        slots: &[(Slot, Timestamp)],
    ) -> Result<(), StoreError> {
        let items = slots
            .iter()
            .map(|(slot, expires_at)| slot_item(integration, slot, *expires_at))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
    }

    async fn add_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut item = to_item(&StoredPull::new(pull, requested_at))?;
        item.insert("pk".into(), s(format!("PULL#{integration}")));
        item.insert("sk".into(), s(StoredPull::key(pull)));
        // A pull still pending a day later belongs to an integration deleted meanwhile.
        item.insert(
            "ttl".into(),
            AttributeValue::N((requested_at.unix_seconds() + PULL_TTL_SECS).to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn pending_pulls(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> Result<Vec<(AvailabilityPull, Timestamp)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("PULL#{integration}")))
            .limit(limit.clamp(1, 1_000) as i32)
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<StoredPull>(item).map(StoredPull::into_pull))
            .collect()
    }

    async fn remove_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError> {
        let removed = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("PULL#{integration}")))
            .key("sk", s(StoredPull::key(pull)))
            .condition_expression("requested_at = :seen")
            .expression_attribute_values(":seen", s(requested_at.to_string()))
            .send()
            .await;
        match removed {
            Ok(_) => Ok(()),
            // Asked for again since it was read (or already gone): it stays for the next run.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn activities(&self, integration: &IntegrationId) -> Result<Vec<Activity>, StoreError> {
        let mut activities: Vec<Activity> = self
            .shard_items("CAT", integration, None)
            .await?
            .into_iter()
            .map(|item| from_item::<StoredActivity>(item).map(Activity::from))
            .collect::<Result<_, _>>()?;
        activities.sort_by(|a, b| a.internal_name.cmp(&b.internal_name));
        Ok(activities)
    }

    async fn activities_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        max_bytes: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Activity>, StoreError> {
        let (items, next) = self
            .sharded_page("CAT", integration, limit, max_bytes, after, |_| true)
            .await?;
        let items = items
            .into_iter()
            .map(|item| from_item::<StoredActivity>(item).map(Activity::from))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn slots_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        after: Option<Cursor>,
        starting_from: Timestamp,
    ) -> Result<Page<Slot>, StoreError> {
        // The start is compared here, not in a FilterExpression: it is stored with the partner's offset.
        let current = |item: &Item| {
            item.get("localDateTimeStart")
                .and_then(|v| v.as_s().ok())
                .and_then(|start| Timestamp::parse(start).ok())
                .is_some_and(|at| at >= starting_from)
        };
        // Slots are small and bounded (ids, times, a status): `limit` bounds their page.
        let (items, next) = self
            .sharded_page("SLOT", integration, limit, usize::MAX, after, current)
            .await?;
        let items = items
            .into_iter()
            .map(|item| from_item::<StoredSlot>(item).map(Slot::from))
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }
}

/// Webhook rate limiting: one counter item per integration and window (`RATE#{id}` /
/// `{window start}`), incremented with a conditional UpdateItem so every function instance
/// shares it; `ttl` removes old windows.
#[async_trait]
impl RateLimiter for DynamoStore {
    async fn admit(
        &self,
        id: &IntegrationId,
        limit: u32,
        window: Duration,
        now: Timestamp,
    ) -> Result<Admission, StoreError> {
        let window = RateWindow::containing(now, window);
        let expires = window.end_ms() / 1000 + 60;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("RATE#{id}")))
            .key("sk", s(window.start_ms.to_string()))
            .update_expression("ADD calls :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(calls) OR calls < :limit")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N(expires.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Admission::Allowed),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(window.limited(now))
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let mut item = to_item(&StoredRun::from(run))?;
        item.insert("pk".into(), s(format!("RUN#{}", run.integration_id)));
        item.insert(
            "sk".into(),
            s(format!(
                "{:013}#{}",
                run.started_at.unix_millis().max(0),
                run.run_id
            )),
        );
        item.insert(
            "ttl".into(),
            AttributeValue::N(run.expires_at.unix_seconds().to_string()),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn recent_runs(
        &self,
        integration: &IntegrationId,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<SyncRun>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("RUN#{integration}")))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(unavailable)?;
        // TTL deletion lags: expired records are filtered here too.
        let runs: Vec<SyncRun> = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<StoredRun>(item).map(SyncRun::from))
            .collect::<Result<_, _>>()?;
        Ok(runs
            .into_iter()
            .filter(|run| run.expires_at > now)
            .collect())
    }
}
