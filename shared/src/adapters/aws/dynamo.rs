//! The DynamoDB store: integrations, catalog, slots and run history in one table.
//!
//! | Item | pk | sk | Other keys |
//! |---|---|---|---|
//! | integration | `INT#{id}` | `META` | `gsi1pk=INTEGRATION`, `gsi1sk={createdAt}#{id}` (admin list); `gsi2pk=SYNCABLE`, `gsi2sk={id}` only while approved and active (sparse: the nightly listing) |
//! | partner lock | `PARTNER#{partner}` | `META` | written in the same transaction as the integration: one per partner |
//! | activity | `CAT#{id}#{shard}` | `ACT#{internalName}` | `gsi3pk=PROD#{id}#{productId}` (notify finds the activity of an OCTO product) |
//! | slot | `SLOT#{id}#{shard}` | `SLOT#["product","option","availability"]` | |
//! | run | `RUN#{id}` | `{startedMs:013}#{runId}` | `ttl` (epoch seconds) for DynamoDB TTL |
//!
//! Catalog and slot items are spread over [`SHARDS`] partition keys per integration, so a large
//! first sync is not capped by one partition's 1,000 writes per second.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    Put, PutRequest, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, Select, TimeToLiveSpecification, TransactWriteItem,
    WriteRequest,
};
use sha2::{Digest, Sha256};

use super::SdkFailure;
use crate::adapters::stored::{StoredActivity, StoredHealthStatus, StoredIntegration, StoredRun, StoredSlot, fields};
use crate::domain::{
    Activity, ActivityState, IntegrationId, IntegrationRecord, PartnerId, ProductActivity, Slot, SyncRun, Timestamp, VariationRef,
};
use crate::ports::{
    Admission, CatalogStore, Cursor, IntegrationFilter, IntegrationStore, Page, RateLimiter, RateWindow, RunStore, StoreError,
};

/// Partition keys per integration for catalog and slot items.
pub const SHARDS: u8 = 8;
/// DynamoDB's BatchWriteItem limit.
const BATCH_WRITE_LIMIT: usize = 25;
const MAX_BATCH_ATTEMPTS: u32 = 8;
/// Concurrent single-item updates when flipping `isActive`.
const UPDATE_CONCURRENCY: usize = 25;

const ADMIN_INDEX: &str = "gsi1";
const SYNCABLE_INDEX: &str = "gsi2";
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
fn slot_item(integration: &IntegrationId, slot: &Slot, expires_at: Timestamp) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item = to_item(&StoredSlot::from(slot))?;
    // DynamoDB's TTL deletes the slot some time after this (reads filter by start time).
    item.insert("ttl".into(), AttributeValue::N(expires_at.unix_seconds().to_string()));
    let ids = serde_json::to_string(&[&slot.product_id, &slot.option_id, &slot.availability_id]).map_err(StoreError::unavailable)?;
    item.insert("pk".into(), s(format!("SLOT#{integration}#{}", shard(&slot.product_id))));
    item.insert("sk".into(), s(format!("SLOT#{ids}")));
    Ok(item)
}

fn shard(key: &str) -> u8 {
    Sha256::digest(key.as_bytes())[0] % SHARDS
}

fn integration_key(id: &IntegrationId) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(format!("INT#{id}"))), ("sk".into(), s("META"))])
}

fn partner_key(partner: &PartnerId) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(format!("PARTNER#{partner}"))), ("sk".into(), s("META"))])
}

fn activity_key(id: &IntegrationId, name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".into(), s(format!("CAT#{id}#{}", shard(name)))), ("sk".into(), s(format!("ACT#{name}")))])
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::unavailable(format!("cannot encode item: {e}")))
}

fn from_item<T: serde::de::DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::unavailable(format!("corrupt item: {e}")))
}

fn integration_from_item(item: Item) -> Result<IntegrationRecord, StoreError> {
    from_item::<StoredIntegration>(item)?.try_into()
}

/// A cursor is the key of the last item returned (table and index key attributes), as JSON.
fn cursor_of(item: &Item, key_names: &[&str]) -> Cursor {
    let key: BTreeMap<&str, &str> =
        key_names.iter().filter_map(|name| item.get(*name).and_then(|v| v.as_s().ok()).map(|v| (*name, v.as_str()))).collect();
    Cursor::new(serde_json::to_string(&key).expect("a key serializes"))
}

fn start_key(cursor: Option<Cursor>) -> Result<Option<Item>, StoreError> {
    let Some(cursor) = cursor else { return Ok(None) };
    let key: BTreeMap<String, String> = serde_json::from_str(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?;
    Ok(Some(key.into_iter().map(|(name, value)| (name, s(value))).collect()))
}

const ADMIN_KEY: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];
const SYNCABLE_KEY: [&str; 4] = ["pk", "sk", "gsi2pk", "gsi2sk"];

/// A listing of one of the integration indexes.
struct IndexQuery<'a> {
    index: &'static str,
    key_condition: &'static str,
    key_names: &'a [&'static str],
    newest_first: bool,
    filter: Filter,
}

/// The admin list's filter as a FilterExpression (evaluated by DynamoDB, not here).
struct Filter {
    expression: Option<String>,
    names: Option<HashMap<String, String>>,
    values: HashMap<String, AttributeValue>,
}

fn filter_expression(filter: &IntegrationFilter) -> Filter {
    let mut conditions = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::from([(":pk".to_owned(), s("INTEGRATION"))]);
    if let Some(approved) = filter.is_approved {
        conditions.push("#approved = :approved");
        names.insert("#approved".to_owned(), "isApproved".to_owned());
        values.insert(":approved".to_owned(), AttributeValue::Bool(approved));
    }
    if let Some(health) = filter.health {
        conditions.push("#health.#status = :health");
        names.insert("#health".to_owned(), "health".to_owned());
        names.insert("#status".to_owned(), "status".to_owned());
        let spelling = serde_json::to_value(StoredHealthStatus::from(health)).expect("an enum serializes");
        values.insert(":health".to_owned(), s(spelling.as_str().unwrap_or_default()));
    }
    Filter { expression: (!conditions.is_empty()).then(|| conditions.join(" AND ")), names: (!names.is_empty()).then_some(names), values }
}

fn integration_item(record: &IntegrationRecord) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let integration = &record.integration;
    let mut item = to_item(&StoredIntegration::from(record))?;
    item.extend(integration_key(&integration.id));
    item.insert("gsi1pk".into(), s("INTEGRATION"));
    item.insert("gsi1sk".into(), s(format!("{}#{}", integration.created_at, integration.id)));
    if integration.is_live() {
        item.insert("gsi2pk".into(), s("SYNCABLE"));
        item.insert("gsi2sk".into(), s(integration.id.to_string()));
    }
    Ok(item)
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Creates the table as template.yaml declares it (tests and local experiments).
    pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
        let attribute = |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
        let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
        let index = |name: &str, pk: &str, sk: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(pk, KeyType::Hash).expect("valid"))
                .key_schema(key(sk, KeyType::Range).expect("valid"))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
        };
        let mut request = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
        for name in ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"] {
            request = request.attribute_definitions(attribute(name).map_err(build_failed)?);
        }
        request
            .key_schema(key("pk", KeyType::Hash).map_err(build_failed)?)
            .key_schema(key("sk", KeyType::Range).map_err(build_failed)?)
            .global_secondary_indexes(index(ADMIN_INDEX, "gsi1pk", "gsi1sk").map_err(build_failed)?)
            .global_secondary_indexes(index(SYNCABLE_INDEX, "gsi2pk", "gsi2sk").map_err(build_failed)?)
            .global_secondary_indexes(index(PRODUCT_INDEX, "gsi3pk", "gsi3sk").map_err(build_failed)?)
            .send()
            .await
            .map_err(unavailable)?;
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().enabled(true).attribute_name("ttl").build().map_err(build_failed)?,
            )
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Up to `limit` integrations of an index, following `LastEvaluatedKey` until that many
    /// matched: DynamoDB cuts a response at 1 MB, and a filtered response can be short or empty.
    async fn page_of(&self, query: IndexQuery<'_>, limit: usize, after: Option<Cursor>) -> Result<Page<IntegrationRecord>, StoreError> {
        let IndexQuery { index, key_condition, key_names, newest_first, filter: Filter { expression, names, values } } = query;
        let mut start = start_key(after)?;
        let mut items = Vec::new();
        loop {
            let remaining = limit - items.len();
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(key_condition)
                .set_filter_expression(expression.clone())
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!newest_first)
                .limit(i32::try_from(remaining).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(output.items.unwrap_or_default());
            let more = output.last_evaluated_key.filter(|key| !key.is_empty());
            if items.len() >= limit || more.is_none() {
                let next = if more.is_some() { items.last().map(|item| cursor_of(item, key_names)) } else { None };
                let records = items.into_iter().map(integration_from_item).collect::<Result<_, _>>()?;
                return Ok(Page { items: records, next });
            }
            start = more;
        }
    }

    /// A strongly consistent GetItem.
    async fn get_item(&self, key: HashMap<String, AttributeValue>) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let output =
            self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true).send().await.map_err(unavailable)?;
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

    /// One page over an integration's sharded items (`{prefix}#{id}#{shard}`), shard by shard.
    /// The cursor is the last item's key; one whose partition is not this integration's is
    /// refused (cursors come from API callers).
    async fn sharded_page(
        &self,
        prefix: &str,
        id: &IntegrationId,
        limit: usize,
        after: Option<Cursor>,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(Vec<Item>, Option<Cursor>), StoreError> {
        let partition = |shard: u8| format!("{prefix}#{id}#{shard}");
        let (mut shard, mut start) = match start_key(after)? {
            None => (0u8, None),
            Some(key) => {
                let pk = key.get("pk").and_then(|v| v.as_s().ok()).ok_or(StoreError::InvalidCursor)?;
                let shard = (0..SHARDS).find(|shard| *pk == partition(*shard)).ok_or(StoreError::InvalidCursor)?;
                if key.len() != 2 || !key.contains_key("sk") {
                    return Err(StoreError::InvalidCursor);
                }
                (shard, Some(key))
            }
        };
        let mut items = Vec::new();
        while shard < SHARDS && items.len() <= limit {
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
            items.extend(output.items.unwrap_or_default().into_iter().filter(|item| keep(item)));
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) => start = Some(key),
                None => shard += 1,
            }
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(|item| cursor_of(item, &["pk", "sk"])) } else { None };
        Ok((items, next))
    }

    /// The activity of one OCTO product, through the product index.
    async fn product_activity(&self, integration: &IntegrationId, product_id: &str) -> Result<Option<Activity>, StoreError> {
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
        let Some(item) = output.items.unwrap_or_default().into_iter().next() else { return Ok(None) };
        Ok(Some(from_item::<StoredActivity>(item)?.into()))
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
                ])
            });
            items.extend(self.query_all(None, "pk = :pk", values, names, projection).await?);
        }
        Ok(items)
    }

    /// BatchWriteItem in chunks of 25, retrying unprocessed items with exponential backoff and jitter.
    async fn batch_put(&self, items: Vec<HashMap<String, AttributeValue>>) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_WRITE_LIMIT) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item.clone())).build().map_err(build_failed)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<_, StoreError>>()?;
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
                requests = output.unprocessed_items.unwrap_or_default().remove(&self.table).unwrap_or_default();
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
impl IntegrationStore for DynamoStore {
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let integration = &record.integration;
        let mut lock = partner_key(&integration.partner_id);
        lock.insert("integration_id".into(), s(integration.id.to_string()));
        let put = |item: HashMap<String, AttributeValue>| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(build_failed)
        };
        let result =
            self.client.transact_write_items().transact_items(put(integration_item(record)?)?).transact_items(put(lock)?).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Err(StoreError::AlreadyExists),
            Err(error) => Err(unavailable(error)),
        }
    }

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        self.get_item(integration_key(id)).await?.map(integration_from_item).transpose()
    }

    async fn find_by_partner(&self, partner_id: &PartnerId) -> Result<Option<IntegrationRecord>, StoreError> {
        let lock = self.get_item(partner_key(partner_id)).await?;
        let Some(id) = lock.as_ref().and_then(|item| item.get("integration_id")).and_then(|v| v.as_s().ok()) else { return Ok(None) };
        let id = IntegrationId::parse(id).map_err(|e| StoreError::unavailable(format!("corrupt partner lock: {e}")))?;
        self.get(&id).await
    }

    async fn update(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let expected = (record.version - 1).to_string();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(integration_item(record)?))
            .condition_expression("attribute_exists(pk) AND version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => {
                    let existed = match e {
                        aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed) => {
                            failed.item().is_some_and(|item| !item.is_empty())
                        }
                        _ => false,
                    };
                    Err(if existed { StoreError::VersionConflict } else { StoreError::NotFound })
                }
                _ => Err(unavailable(error)),
            },
        }
    }

    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        let Some(record) = self.get(id).await? else { return Ok(None) };
        let delete_integration = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(integration_key(id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_failed)?;
        let delete_lock = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(partner_key(&record.integration.partner_id)))
            .build()
            .map_err(build_failed)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete_integration).build())
            .transact_items(TransactWriteItem::builder().delete(delete_lock).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(record)),
            // Deleted by someone else meanwhile.
            Err(error) if error.as_service_error().is_some_and(|e| e.is_transaction_canceled_exception()) => Ok(None),
            Err(error) => Err(unavailable(error)),
        }
    }

    /// The admin index newest first, the filter applied by DynamoDB.
    async fn list(&self, filter: &IntegrationFilter, limit: usize, after: Option<Cursor>) -> Result<Page<IntegrationRecord>, StoreError> {
        let query = IndexQuery {
            index: ADMIN_INDEX,
            key_condition: "gsi1pk = :pk",
            key_names: &ADMIN_KEY,
            newest_first: true,
            filter: filter_expression(filter),
        };
        self.page_of(query, limit, after).await
    }

    /// Counted by DynamoDB (`Select: COUNT`): no items are transferred.
    async fn count(&self, filter: &IntegrationFilter) -> Result<u64, StoreError> {
        let Filter { expression, names, values } = filter_expression(filter);
        let mut start = None;
        let mut total = 0u64;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ADMIN_INDEX)
                .key_condition_expression("gsi1pk = :pk")
                .set_filter_expression(expression.clone())
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            total += u64::try_from(output.count).unwrap_or_default();
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    /// The sparse index of live integrations, in id order.
    async fn list_syncable(&self, limit: usize, after: Option<Cursor>) -> Result<Page<IntegrationRecord>, StoreError> {
        let filter = Filter { expression: None, names: None, values: HashMap::from([(":pk".to_owned(), s("SYNCABLE"))]) };
        let query =
            IndexQuery { index: SYNCABLE_INDEX, key_condition: "gsi2pk = :pk", key_names: &SYNCABLE_KEY, newest_first: false, filter };
        self.page_of(query, limit, after).await
    }

    /// The sparse index of live integrations, counted by the server (`Select=COUNT`).
    async fn count_syncable(&self) -> Result<u64, StoreError> {
        let mut start = None;
        let mut total = 0u64;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SYNCABLE_INDEX)
                .key_condition_expression("gsi2pk = :pk")
                .expression_attribute_values(":pk", s("SYNCABLE"))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            total += u64::try_from(output.count).unwrap_or_default();
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }
}

#[async_trait]
impl CatalogStore for DynamoStore {
    async fn activity_states(&self, integration: &IntegrationId) -> Result<Vec<ActivityState>, StoreError> {
        let items = self.shard_items("CAT", integration, Some("#name, #hash, #active")).await?;
        items
            .into_iter()
            .map(|mut item| {
                let text = |item: &mut HashMap<String, AttributeValue>, key: &str| match item.remove(key) {
                    Some(AttributeValue::S(value)) => Ok(value),
                    _ => Err(StoreError::unavailable(format!("activity item without {key}"))),
                };
                let hash = text(&mut item, fields::CONTENT_HASH)?;
                Ok(ActivityState {
                    internal_name: text(&mut item, fields::INTERNAL_NAME)?,
                    content_hash: hash.parse().map_err(|e| StoreError::unavailable(format!("corrupt activity content hash: {e}")))?,
                    is_active: matches!(item.get(fields::IS_ACTIVE), Some(AttributeValue::Bool(true))),
                })
            })
            .collect()
    }

    async fn put_activities(&self, integration: &IntegrationId, activities: &[Activity]) -> Result<(), StoreError> {
        let items = activities
            .iter()
            .map(|activity| {
                let mut item = to_item(&StoredActivity::from(activity))?;
                item.extend(activity_key(integration, &activity.internal_name));
                item.insert("gsi3pk".into(), s(format!("PROD#{integration}#{}", activity.external_sync.external_id)));
                item.insert("gsi3sk".into(), s("ACTIVITY"));
                Ok(item)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_put(items).await
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
                    Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
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
        let Some(activity) = self.product_activity(integration, product_id).await? else { return Ok(None) };
        let has_option = activity.variations.iter().any(|v| v.external_sync.external_option_id == option_id);
        Ok(has_option.then_some(VariationRef { internal_name: activity.internal_name, activity_active: activity.is_active }))
    }

    async fn activity_of_product(&self, integration: &IntegrationId, product_id: &str) -> Result<Option<ProductActivity>, StoreError> {
        Ok(self.product_activity(integration, product_id).await?.as_ref().map(ProductActivity::from))
    }

    async fn option_slots(&self, integration: &IntegrationId, product_id: &str, option_id: &str) -> Result<Vec<Slot>, StoreError> {
        // Slot keys: `SLOT#["product","option","availability"]` in the product's shard, so an
        // option's slots share the key prefix up to the availability id.
        let pk = format!("SLOT#{integration}#{}", shard(product_id));
        let ids = serde_json::to_string(&[product_id, option_id]).map_err(StoreError::unavailable)?;
        let prefix = format!("SLOT#{},", ids.trim_end_matches(']'));
        let mut slots = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix.clone()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                slots.push(from_item::<StoredSlot>(item)?.into());
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(slots),
            }
        }
    }

    async fn put_slot(&self, integration: &IntegrationId, slot: &Slot, expires_at: Timestamp) -> Result<(), StoreError> {
        let item = slot_item(integration, slot, expires_at)?;
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn put_slots(&self, integration: &IntegrationId, slots: &[(Slot, Timestamp)]) -> Result<(), StoreError> {
        let items = slots.iter().map(|(slot, expires_at)| slot_item(integration, slot, *expires_at)).collect::<Result<Vec<_>, _>>()?;
        self.batch_put(items).await
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
        after: Option<Cursor>,
    ) -> Result<Page<Activity>, StoreError> {
        let (items, next) = self.sharded_page("CAT", integration, limit, after, |_| true).await?;
        let items = items.into_iter().map(|item| from_item::<StoredActivity>(item).map(Activity::from)).collect::<Result<_, _>>()?;
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
        let (items, next) = self.sharded_page("SLOT", integration, limit, after, current).await?;
        let items = items.into_iter().map(|item| from_item::<StoredSlot>(item).map(Slot::from)).collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }
}

/// Webhook rate limiting: one counter item per integration and window (`RATE#{id}` /
/// `{window start}`), incremented with a conditional UpdateItem so every function instance
/// shares it; `ttl` removes old windows.
#[async_trait]
impl RateLimiter for DynamoStore {
    async fn admit(&self, id: &IntegrationId, limit: u32, window: Duration, now: Timestamp) -> Result<Admission, StoreError> {
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
            Err(error) if error.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(window.limited(now)),
            Err(error) => Err(unavailable(error)),
        }
    }
}

#[async_trait]
impl RunStore for DynamoStore {
    async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let mut item = to_item(&StoredRun::from(run))?;
        item.insert("pk".into(), s(format!("RUN#{}", run.integration_id)));
        item.insert("sk".into(), s(format!("{:013}#{}", run.started_at.unix_millis().max(0), run.run_id)));
        item.insert("ttl".into(), AttributeValue::N(run.expires_at.unix_seconds().to_string()));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    async fn recent_runs(&self, integration: &IntegrationId, limit: usize, now: Timestamp) -> Result<Vec<SyncRun>, StoreError> {
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
        Ok(runs.into_iter().filter(|run| run.expires_at > now).collect())
    }
}
