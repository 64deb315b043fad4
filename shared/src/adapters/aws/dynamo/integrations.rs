//! Integrations in DynamoDB, laid out so that no partition key takes writes in proportion to
//! the number of integrations or to the service's traffic.
//!
//! Each integration is two items under `INT#{id}`:
//! - `META`: the document a sync never changes (ids, `base_url`, approval, activation,
//!   secret digests, push subscriptions) and the index keys. It is written by partner and
//!   admin changes and by health *transitions* only.
//! - `CTRL`: everything a sync run writes (`sync`, `health`, `updatedAt`, the lease, the
//!   request and force flags) and the record's `version`. It carries no index attribute, so
//!   taking a lease or committing a run is one conditional PutItem of one small item
//!   (1 write unit under 1 KB), copied into no index.
//!
//! The `version` on `CTRL` guards both items: a change of `META` is a transaction that puts
//! `CTRL` on the condition that its version is the one read, so two writers can never
//! interleave, whichever items they change.
//!
//! Index keys are sharded by a hash of the id over [`INDEX_SHARDS`] partitions
//! (`INTEGRATION#{0..N}` for the admin list, `SYNCABLE#{0..N}` for the live listing), merged on
//! read. Both indexes project only what their queries read (keys, and the admin filter's
//! attributes); the records themselves come from one consistent BatchGetItem per page.
//!
//! `totalCount` comes from counters kept beside the shards (`COUNT#{shard}`, one number per
//! approval × health cell), updated in the same transaction as the change that moves an
//! integration between cells: a count is one BatchGetItem of [`INDEX_SHARDS`] small items,
//! whatever the number of integrations.
//!
//! Items written by the single-item format before this layout (everything on `META`, the
//! constant index keys `INTEGRATION` and `SYNCABLE`, no counter) still load: reads treat the
//! constant keys as one more shard and a `META` without `CTRL` as a whole record; the first
//! write of such a record moves it to this layout (and into the counters) in one transaction.

use std::collections::{BTreeMap, HashMap, VecDeque};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, Select,
    TransactWriteItem, Update,
};
use sha2::{Digest, Sha256};

use super::{DynamoStore, Item, backoff, build_failed, from_item, s, to_item, unavailable};
use crate::adapters::stored::{StoredHealthStatus, StoredIntegration};
use crate::domain::{HealthStatus, IntegrationId, IntegrationRecord, PartnerId};
use crate::ports::{Cursor, IntegrationFilter, IntegrationStore, Page, StoreError};

/// Index partitions per constant key. Writes to an index partition come from `META` changes
/// of 1/N of the integrations; with N = 32 the hottest of them takes about 1/32 of the
/// index's writes (a hash over many ids: under 1/16 with margin, the target), so the indexes
/// carry 32 times one partition's 1,000 writes per second. Reads pay for it: a page of the
/// admin list queries every shard once (small, keys-only items), a count reads 32 counters.
pub const INDEX_SHARDS: u8 = 32;

const ADMIN_INDEX: &str = "gsi1";
const SYNCABLE_INDEX: &str = "gsi2";
const ADMIN_PREFIX: &str = "INTEGRATION";
const SYNCABLE_PREFIX: &str = "SYNCABLE";
const META: &str = "META";
const CONTROL: &str = "CTRL";
/// The attributes of a stored integration that live on `CTRL`: what a sync run writes.
const CONTROL_FIELDS: [&str; 5] = ["sync", "health", "updatedAt", "sync_control", "version"];
/// The health status, copied onto `META` for the admin list's filter (changes only on a
/// health transition).
const HEALTH_STATUS: &str = "health_status";
const INDEX_FIELDS: [&str; 5] = ["gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", HEALTH_STATUS];
/// What the admin index projects besides its keys: the filter's attributes (`health` for the
/// records the single-item format left under the constant key). The live index projects keys only.
pub(super) const ADMIN_INDEX_ATTRIBUTES: [&str; 3] = ["isApproved", HEALTH_STATUS, "health"];
/// DynamoDB's BatchGetItem limit.
const BATCH_GET_LIMIT: usize = 100;
const MAX_ATTEMPTS: u32 = 8;
const APPROVAL: [(bool, &str); 2] = [(true, "approved"), (false, "unapproved")];
const HEALTH: [HealthStatus; 3] = [
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Down,
];

/// Which index shard an integration's index keys and counter use.
pub fn index_shard(id: &IntegrationId) -> u8 {
    Sha256::digest(id.to_string().as_bytes())[0] % INDEX_SHARDS
}

fn key(id: &IntegrationId, sk: &str) -> Item {
    HashMap::from([("pk".into(), s(format!("INT#{id}"))), ("sk".into(), s(sk))])
}

fn partner_key(partner: &PartnerId) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("PARTNER#{partner}"))),
        ("sk".into(), s("META")),
    ])
}

fn counter_key(shard: u8) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("COUNT#{shard}"))),
        ("sk".into(), s("COUNT")),
    ])
}

fn health_spelling(health: HealthStatus) -> String {
    serde_json::to_value(StoredHealthStatus::from(health))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The counter cell an integration is counted in: approval × health.
fn cell_name(approved: bool, health: HealthStatus) -> String {
    let approval = if approved { "approved" } else { "unapproved" };
    format!("{approval}_{}", health_spelling(health))
}

/// The counter cell of live integrations (approved and active): what the live listing walks.
const LIVE_CELL: &str = "live";

/// The counter cells an integration is counted in.
fn cells(record: &IntegrationRecord) -> Vec<String> {
    let integration = &record.integration;
    let mut cells = vec![cell_name(
        integration.is_approved,
        integration.health.status,
    )];
    if integration.is_live() {
        cells.push(LIVE_CELL.to_owned());
    }
    cells
}

/// The counter changes that move an integration from `before`'s cells to `after`'s.
fn moves(before: &[String], after: &[String]) -> Vec<(String, i64)> {
    let left = before
        .iter()
        .filter(|cell| !after.contains(cell))
        .map(|cell| (cell.clone(), -1));
    let entered = after
        .iter()
        .filter(|cell| !before.contains(cell))
        .map(|cell| (cell.clone(), 1));
    left.chain(entered).collect()
}

/// The two items of a record.
struct Items {
    meta: Item,
    control: Item,
}

fn items_of(record: &IntegrationRecord) -> Result<Items, StoreError> {
    let integration = &record.integration;
    let id = &integration.id;
    let shard = index_shard(id);
    let mut meta = to_item(&StoredIntegration::from(record))?;
    let mut control: Item = CONTROL_FIELDS
        .iter()
        .filter_map(|field| meta.remove_entry(*field))
        .collect();
    meta.extend(key(id, META));
    control.extend(key(id, CONTROL));
    meta.insert("gsi1pk".into(), s(format!("{ADMIN_PREFIX}#{shard}")));
    meta.insert(
        "gsi1sk".into(),
        s(format!("{}#{id}", integration.created_at)),
    );
    meta.insert(
        HEALTH_STATUS.into(),
        s(health_spelling(integration.health.status)),
    );
    if integration.is_live() {
        meta.insert("gsi2pk".into(), s(format!("{SYNCABLE_PREFIX}#{shard}")));
        meta.insert("gsi2sk".into(), s(id.to_string()));
    }
    Ok(Items { meta, control })
}

/// The record from its `META` and `CTRL` items; a `META` of the single-item format (no `CTRL`)
/// holds the whole record.
fn record_of(mut meta: Item, control: Option<Item>) -> Result<IntegrationRecord, StoreError> {
    for field in INDEX_FIELDS {
        meta.remove(field);
    }
    if let Some(mut control) = control {
        for field in CONTROL_FIELDS {
            if let Some(value) = control.remove(field) {
                meta.insert(field.to_owned(), value);
            }
        }
    }
    from_item::<StoredIntegration>(meta)?.try_into()
}

/// A `META` item of the single-item format: it carries the version itself.
fn is_single_item(meta: &Item) -> bool {
    meta.contains_key("version")
}

fn sk_of(item: &Item) -> Option<&str> {
    item.get("sk")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn id_of(item: &Item) -> Result<IntegrationId, StoreError> {
    let pk = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::unavailable("index item without pk"))?;
    IntegrationId::parse(pk.trim_start_matches("INT#"))
        .map_err(|e| StoreError::unavailable(format!("corrupt integration key: {e}")))
}

/// Why a conditional write or transaction failed, as far as the version check is concerned.
enum Refusal {
    /// `CTRL` exists with another version.
    Stale,
    /// `CTRL` does not exist: the record is gone, or still in the single-item format.
    NoControl,
    /// Another condition of the transaction failed (the record is being deleted).
    Other,
}

fn put(
    table: &str,
    item: Item,
    condition: Option<&str>,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned));
    for (name, value) in values {
        put = put.expression_attribute_values(*name, value.clone());
    }
    let put = put
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(build_failed)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete(
    table: &str,
    key: Item,
    condition: Option<&str>,
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, StoreError> {
    let mut delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(condition.map(str::to_owned));
    for (name, value) in values {
        delete = delete.expression_attribute_values(*name, value.clone());
    }
    Ok(TransactWriteItem::builder()
        .delete(delete.build().map_err(build_failed)?)
        .build())
}

/// The `ADD` of `delta` to each named cell of one shard's counter (the item is created on first
/// use): its expression, names and values.
struct CounterAdd {
    expression: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn counter_add(deltas: &[(String, i64)]) -> CounterAdd {
    let mut add = CounterAdd {
        expression: String::new(),
        names: HashMap::new(),
        values: HashMap::new(),
    };
    let mut clauses = Vec::new();
    for (n, (cell, delta)) in deltas.iter().enumerate() {
        clauses.push(format!("#c{n} :d{n}"));
        add.names.insert(format!("#c{n}"), cell.clone());
        add.values.insert(format!(":d{n}"), n_value(*delta));
    }
    add.expression = format!("ADD {}", clauses.join(", "));
    add
}

/// The counter's `ADD` as a write of a transaction.
fn count(
    table: &str,
    shard: u8,
    deltas: &[(String, i64)],
) -> Result<TransactWriteItem, StoreError> {
    let CounterAdd {
        expression,
        names,
        values,
    } = counter_add(deltas);
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(counter_key(shard)))
        .update_expression(expression)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(build_failed)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn n_value(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The first write of a transaction (always the `CTRL` put or the `META` put that carries the
/// version check) decides what a cancelled transaction means.
fn refusal_of(error: &TransactWriteItemsError) -> Option<Refusal> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
        return None;
    };
    let reasons = cancelled.cancellation_reasons();
    match reasons.first() {
        Some(first) if first.code() == Some("ConditionalCheckFailed") => {
            Some(if first.item().is_some_and(|item| !item.is_empty()) {
                Refusal::Stale
            } else {
                Refusal::NoControl
            })
        }
        _ => Some(Refusal::Other),
    }
}

/// A listing position per index partition: the sort key of the last item taken from it, and
/// the partitions already read to the end.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct MergeCursor {
    after: BTreeMap<String, String>,
    done: Vec<String>,
}

/// One partition's part of a merged listing.
struct Lane {
    partition: String,
    /// The items of the single-item format live under the constant key with their old filter.
    single_item: bool,
    /// Where the next query starts.
    start: Option<Item>,
    /// The sort key of the last item taken (the cursor's position).
    taken_after: Option<String>,
    buffer: VecDeque<Item>,
    exhausted: bool,
}

impl Lane {
    fn remaining(&self) -> bool {
        !self.buffer.is_empty() || !self.exhausted
    }
}

/// What the admin list asks the index: partition `:pk`, and the filter for each format.
struct AdminFilter {
    expression: Option<String>,
    single_item_expression: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn admin_filter(filter: &IntegrationFilter) -> AdminFilter {
    let mut conditions = Vec::new();
    let mut single_item = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    if let Some(approved) = filter.is_approved {
        conditions.push("#approved = :approved");
        single_item.push("#approved = :approved");
        names.insert("#approved".to_owned(), "isApproved".to_owned());
        values.insert(":approved".to_owned(), AttributeValue::Bool(approved));
    }
    if let Some(health) = filter.health {
        conditions.push("#health_status = :health");
        single_item.push("#health.#status = :health");
        names.insert("#health_status".to_owned(), HEALTH_STATUS.to_owned());
        names.insert("#health".to_owned(), "health".to_owned());
        names.insert("#status".to_owned(), "status".to_owned());
        values.insert(":health".to_owned(), s(health_spelling(health)));
    }
    let join = |parts: Vec<&str>| (!parts.is_empty()).then(|| parts.join(" AND "));
    AdminFilter {
        expression: join(conditions),
        single_item_expression: join(single_item),
        names,
        values,
    }
}

/// The `#name` and `:value` placeholders of an expression.
fn placeholders(expression: &str) -> Vec<&str> {
    expression
        .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '#' | ':' | '_')))
        .filter(|t| !t.is_empty())
        .collect()
}

/// Expression attribute names used by `expression` only (DynamoDB refuses unused ones).
fn names_for(
    expression: &Option<String>,
    names: &HashMap<String, String>,
) -> Option<HashMap<String, String>> {
    let used = placeholders(expression.as_deref()?);
    let used: HashMap<String, String> = names
        .iter()
        .filter(|(name, _)| used.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (!used.is_empty()).then_some(used)
}

fn values_for(
    expression: &Option<String>,
    values: &HashMap<String, AttributeValue>,
    pk: &str,
) -> HashMap<String, AttributeValue> {
    let used = expression.as_deref().map(placeholders).unwrap_or_default();
    let mut used: HashMap<String, AttributeValue> = values
        .iter()
        .filter(|(name, _)| used.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    used.insert(":pk".to_owned(), s(pk));
    used
}

fn admin_partitions() -> Vec<(String, bool)> {
    (0..INDEX_SHARDS)
        .map(|shard| (format!("{ADMIN_PREFIX}#{shard}"), false))
        .chain([(ADMIN_PREFIX.to_owned(), true)])
        .collect()
}

fn syncable_partitions() -> Vec<String> {
    (0..INDEX_SHARDS)
        .map(|shard| format!("{SYNCABLE_PREFIX}#{shard}"))
        .chain([SYNCABLE_PREFIX.to_owned()])
        .collect()
}

/// The exclusive start key of an index query that resumes after `sort_key` (which ends with
/// the integration's id) in `partition`.
fn index_start(
    index_pk: &str,
    index_sk: &str,
    partition: &str,
    sort_key: &str,
) -> Result<Item, StoreError> {
    let id = sort_key.rsplit('#').next().unwrap_or_default();
    let id = IntegrationId::parse(id).map_err(|_| StoreError::InvalidCursor)?;
    let mut start = key(&id, META);
    start.insert(index_pk.to_owned(), s(partition));
    start.insert(index_sk.to_owned(), s(sort_key));
    Ok(start)
}

/// Where the live listing stands: a partition and the last id taken in it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SyncableCursor {
    partition: String,
    after: Option<String>,
}

impl DynamoStore {
    /// Loads many integrations into a table that has none of them yet, in the layout
    /// `insert` writes (both items, the partner lock, the counters) but with BatchWriteItem
    /// instead of one transaction each: for restoring a backup or seeding a benchmark. It checks
    /// nothing: a partner or id already in the table is overwritten.
    pub async fn import(&self, records: &[IntegrationRecord]) -> Result<(), StoreError> {
        let mut items = Vec::with_capacity(records.len() * 3);
        let mut counters: BTreeMap<u8, BTreeMap<String, i64>> = BTreeMap::new();
        for record in records {
            let integration = &record.integration;
            let Items { meta, control } = items_of(record)?;
            let mut lock = partner_key(&integration.partner_id);
            lock.insert("integration_id".into(), s(integration.id.to_string()));
            items.extend([meta, control, lock]);
            let shard = counters.entry(index_shard(&integration.id)).or_default();
            for cell in cells(record) {
                *shard.entry(cell).or_default() += 1;
            }
        }
        self.batch_put(items).await?;
        for (shard, cells) in counters {
            let CounterAdd {
                expression,
                names,
                values,
            } = counter_add(&cells.into_iter().collect::<Vec<_>>());
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(counter_key(shard)))
                .update_expression(expression)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Both items of an integration, strongly consistent, in one Query; `None` when it does
    /// not exist. The flag says the record is still in the single-item format.
    async fn read(
        &self,
        id: &IntegrationId,
    ) -> Result<Option<(IntegrationRecord, bool)>, StoreError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(format!("INT#{id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let (mut meta, mut control) = (None, None);
        for item in output.items.unwrap_or_default() {
            match sk_of(&item) {
                Some(META) => meta = Some(item),
                Some(CONTROL) => control = Some(item),
                _ => {}
            }
        }
        let Some(meta) = meta else { return Ok(None) };
        let single_item = control.is_none() && is_single_item(&meta);
        if control.is_none() && !single_item {
            // A `META` whose `CTRL` is gone: a delete is under way.
            return Ok(None);
        }
        Ok(Some((record_of(meta, control)?, single_item)))
    }

    /// The records of these integrations (both items each, strongly consistent), in the
    /// given order; one deleted meanwhile is left out.
    async fn load(&self, ids: &[IntegrationId]) -> Result<Vec<IntegrationRecord>, StoreError> {
        let keys: Vec<Item> = ids
            .iter()
            .flat_map(|id| [key(id, META), key(id, CONTROL)])
            .collect();
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        for item in self.batch_get(keys, true).await? {
            let pk = item
                .get("pk")
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let sk = sk_of(&item).unwrap_or_default().to_owned();
            found.insert((pk, sk), item);
        }
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            let pk = format!("INT#{id}");
            let Some(meta) = found.remove(&(pk.clone(), META.to_owned())) else {
                continue;
            };
            let control = found.remove(&(pk, CONTROL.to_owned()));
            if control.is_some() || is_single_item(&meta) {
                records.push(record_of(meta, control)?);
            }
        }
        Ok(records)
    }

    /// Fills a lane of the admin list until it holds an item or its partition is read to the
    /// end (a filtered query can come back empty with more to read).
    async fn fill(
        &self,
        lane: &mut Lane,
        filter: &AdminFilter,
        chunk: usize,
    ) -> Result<(), StoreError> {
        while lane.buffer.is_empty() && !lane.exhausted {
            let expression = if lane.single_item {
                &filter.single_item_expression
            } else {
                &filter.expression
            };
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ADMIN_INDEX)
                .key_condition_expression("gsi1pk = :pk")
                .set_filter_expression(expression.clone())
                .set_expression_attribute_names(names_for(expression, &filter.names))
                .set_expression_attribute_values(Some(values_for(
                    expression,
                    &filter.values,
                    &lane.partition,
                )))
                .scan_index_forward(false)
                .limit(i32::try_from(chunk).unwrap_or(i32::MAX))
                .set_exclusive_start_key(lane.start.take())
                .send()
                .await
                .map_err(unavailable)?;
            lane.buffer.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) => lane.start = Some(key),
                None => lane.exhausted = true,
            }
        }
        Ok(())
    }

    /// The items of these keys (those that exist), 100 keys a request, unprocessed keys retried
    /// with backoff.
    async fn batch_get(&self, keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(consistent)
                .build();
            let mut pending = Some(request.map_err(build_failed)?);
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                if attempt > 0 {
                    tokio::time::sleep(backoff(attempt)).await;
                }
                attempt += 1;
                if attempt > MAX_ATTEMPTS {
                    return Err(StoreError::unavailable(format!(
                        "keys still unprocessed after {MAX_ATTEMPTS} attempts"
                    )));
                }
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(unavailable)?;
                items.extend(
                    output
                        .responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                pending = output
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .filter(|k| !k.keys().is_empty());
            }
        }
        Ok(items)
    }

    /// The sum of these cells over every shard's counter: one BatchGetItem of 32 small items.
    async fn counted(&self, cells: &[String]) -> Result<u64, StoreError> {
        let keys = (0..INDEX_SHARDS).map(counter_key).collect::<Vec<_>>();
        let mut total = 0i64;
        for counter in self.batch_get(keys, false).await? {
            for cell in cells {
                total += counter
                    .get(cell)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(0);
            }
        }
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// Items under one index partition `:pk` (`Select: COUNT`, following the pages): the records
    /// the single-item format left under a constant key, which empties as they are written.
    async fn count_partition(
        &self,
        index: &str,
        key: &str,
        filter: &Option<String>,
        names: Option<HashMap<String, String>>,
        values: HashMap<String, AttributeValue>,
    ) -> Result<u64, StoreError> {
        let mut start = None;
        let mut total = 0u64;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(format!("{key} = :pk"))
                .set_filter_expression(filter.clone())
                .set_expression_attribute_names(names.clone())
                .set_expression_attribute_values(Some(values.clone()))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            total += u64::try_from(output.count).unwrap_or_default();
            match output.last_evaluated_key {
                Some(next) if !next.is_empty() => start = Some(next),
                _ => return Ok(total),
            }
        }
    }

    async fn send_transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Refusal>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(error) => match error.as_service_error().and_then(refusal_of) {
                Some(refusal) => Ok(Some(refusal)),
                None => Err(unavailable(error)),
            },
        }
    }

    /// A record the single-item format wrote, written for the first time since: it moves to
    /// the two-item layout and into the counters in one transaction, if it is still the
    /// version the caller read.
    async fn update_single_item(
        &self,
        record: &IntegrationRecord,
        expected: u64,
    ) -> Result<(), StoreError> {
        let id = &record.integration.id;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(id, META)))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let Some(meta) = output.item.filter(is_single_item) else {
            return Err(StoreError::NotFound);
        };
        if meta.get("version").and_then(|v| v.as_n().ok()) != Some(&expected.to_string()) {
            return Err(StoreError::VersionConflict);
        }
        let Items { meta, control } = items_of(record)?;
        let writes = vec![
            put(
                &self.table,
                meta,
                Some("version = :expected"),
                &[(":expected", n_value(expected))],
            )?,
            put(&self.table, control, Some("attribute_not_exists(pk)"), &[])?,
            count(&self.table, index_shard(id), &moves(&[], &cells(record)))?,
        ];
        match self.send_transaction(writes).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::VersionConflict),
        }
    }
}

#[async_trait]
impl IntegrationStore for DynamoStore {
    /// `META`, `CTRL`, the partner lock and the counter in one transaction: two racing creates
    /// for one partner cannot both succeed.
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let integration = &record.integration;
        let mut lock = partner_key(&integration.partner_id);
        lock.insert("integration_id".into(), s(integration.id.to_string()));
        let Items { meta, control } = items_of(record)?;
        let absent = Some("attribute_not_exists(pk)");
        let writes = vec![
            put(&self.table, meta, absent, &[])?,
            put(&self.table, control, absent, &[])?,
            put(&self.table, lock, absent, &[])?,
            count(
                &self.table,
                index_shard(&integration.id),
                &moves(&[], &cells(record)),
            )?,
        ];
        match self.send_transaction(writes).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::AlreadyExists),
        }
    }

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        Ok(self.read(id).await?.map(|(record, _)| record))
    }

    async fn find_by_partner(
        &self,
        partner_id: &PartnerId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        let lock = self.get_item(partner_key(partner_id)).await?;
        let Some(id) = lock
            .as_ref()
            .and_then(|item| item.get("integration_id"))
            .and_then(|v| v.as_s().ok())
        else {
            return Ok(None);
        };
        let id = IntegrationId::parse(id)
            .map_err(|e| StoreError::unavailable(format!("corrupt partner lock: {e}")))?;
        self.get(&id).await
    }

    /// A change of sync state only (every lease, commit and release) is one conditional
    /// PutItem of `CTRL`; a change of the document also puts `META` (and moves the counter
    /// when approval or health changed) in the same transaction.
    async fn update(
        &self,
        record: &IntegrationRecord,
        previous: &IntegrationRecord,
    ) -> Result<(), StoreError> {
        let expected = record.version - 1;
        let Items { meta, control } = items_of(record)?;
        let version_check = "attribute_exists(pk) AND version = :expected";
        let refusal = if items_of(previous)?.meta == meta {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(control))
                .condition_expression(version_check)
                .expression_attribute_values(":expected", n_value(expected))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => None,
                Err(error) => match error.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) => {
                        Some(if failed.item().is_some_and(|item| !item.is_empty()) { Refusal::Stale } else { Refusal::NoControl })
                    }
                    _ => return Err(unavailable(error)),
                },
            }
        } else {
            let shard = index_shard(&record.integration.id);
            let mut writes = vec![
                put(
                    &self.table,
                    control,
                    Some(version_check),
                    &[(":expected", n_value(expected))],
                )?,
                put(&self.table, meta, Some("attribute_exists(pk)"), &[])?,
            ];
            let moved = moves(&cells(previous), &cells(record));
            if !moved.is_empty() {
                writes.push(count(&self.table, shard, &moved)?);
            }
            self.send_transaction(writes).await?
        };
        match refusal {
            None => Ok(()),
            Some(Refusal::Stale) => Err(StoreError::VersionConflict),
            Some(Refusal::NoControl) => self.update_single_item(record, expected).await,
            Some(Refusal::Other) => Err(StoreError::NotFound),
        }
    }

    /// Both items, the partner lock and the count, in one transaction on the version read (a
    /// sync that commits meanwhile makes it read again, so the count stays exact).
    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let Some((record, single_item)) = self.read(id).await? else {
                return Ok(None);
            };
            let version = [(":version", n_value(record.version))];
            let lock = delete(
                &self.table,
                partner_key(&record.integration.partner_id),
                None,
                &[],
            )?;
            let writes = if single_item {
                vec![
                    delete(
                        &self.table,
                        key(id, META),
                        Some("version = :version"),
                        &version,
                    )?,
                    lock,
                ]
            } else {
                vec![
                    delete(
                        &self.table,
                        key(id, CONTROL),
                        Some("version = :version"),
                        &version,
                    )?,
                    delete(&self.table, key(id, META), None, &[])?,
                    lock,
                    count(&self.table, index_shard(id), &moves(&cells(&record), &[]))?,
                ]
            };
            if self.send_transaction(writes).await?.is_none() {
                return Ok(Some(record));
            }
        }
        Err(StoreError::VersionConflict)
    }

    /// Newest first over every shard of the admin index: each shard is read in small chunks
    /// and merged by its sort key (`{createdAt}#{id}`), so a page reads about
    /// `limit + shards × chunk` index items, then its records in one BatchGetItem.
    async fn list(
        &self,
        filter: &IntegrationFilter,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        let cursor: MergeCursor = match &after {
            Some(cursor) => {
                serde_json::from_str(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?
            }
            None => MergeCursor::default(),
        };
        let partitions = admin_partitions();
        if cursor
            .after
            .keys()
            .chain(&cursor.done)
            .any(|partition| !partitions.iter().any(|(known, _)| known == partition))
        {
            return Err(StoreError::InvalidCursor);
        }
        let mut lanes = Vec::new();
        for (partition, single_item) in partitions {
            if cursor.done.contains(&partition) {
                continue;
            }
            let taken_after = cursor.after.get(&partition).cloned();
            let start = taken_after
                .as_deref()
                .map(|sk| index_start("gsi1pk", "gsi1sk", &partition, sk))
                .transpose()?;
            lanes.push(Lane {
                partition,
                single_item,
                start,
                taken_after,
                buffer: VecDeque::new(),
                exhausted: false,
            });
        }
        let filter = admin_filter(filter);
        let chunk = limit.div_ceil(usize::from(INDEX_SHARDS)).max(1) + 1;
        let mut taken = Vec::new();
        while taken.len() < limit {
            let fills = lanes
                .iter_mut()
                .filter(|lane| lane.buffer.is_empty() && !lane.exhausted)
                .map(|lane| self.fill(lane, &filter, chunk));
            futures_util::future::try_join_all(fills).await?;
            let newest = lanes
                .iter_mut()
                .filter_map(|lane| {
                    let sort_key = lane
                        .buffer
                        .front()?
                        .get("gsi1sk")
                        .and_then(|v| v.as_s().ok())?
                        .clone();
                    Some((sort_key, lane))
                })
                .max_by(|(a, _), (b, _)| a.cmp(b));
            let Some((sort_key, lane)) = newest else {
                break;
            };
            let item = lane.buffer.pop_front().expect("the lane has a front item");
            lane.taken_after = Some(sort_key);
            taken.push(id_of(&item)?);
        }
        let next = lanes.iter().any(Lane::remaining).then(|| {
            let mut next = MergeCursor {
                after: BTreeMap::new(),
                done: cursor.done.clone(),
            };
            for lane in &lanes {
                if !lane.remaining() {
                    next.done.push(lane.partition.clone());
                } else if let Some(after) = &lane.taken_after {
                    next.after.insert(lane.partition.clone(), after.clone());
                }
            }
            Cursor::new(serde_json::to_string(&next).expect("a cursor serializes"))
        });
        Ok(Page {
            items: self.load(&taken).await?,
            next,
        })
    }

    /// The sum of the shards' counters (one BatchGetItem), plus a count of the records the
    /// single-item format left under the constant key (none once they have all been written).
    async fn count(&self, filter: &IntegrationFilter) -> Result<u64, StoreError> {
        let cells: Vec<String> = APPROVAL
            .iter()
            .filter(|(approved, _)| filter.is_approved.is_none_or(|wanted| wanted == *approved))
            .flat_map(|(approved, _)| {
                HEALTH
                    .iter()
                    .filter(|health| filter.health.is_none_or(|wanted| wanted == **health))
                    .map(|health| cell_name(*approved, *health))
            })
            .collect();
        let counted = self.counted(&cells).await?;
        let filter = admin_filter(filter);
        let expression = &filter.single_item_expression;
        let single_item = self
            .count_partition(
                ADMIN_INDEX,
                "gsi1pk",
                expression,
                names_for(expression, &filter.names),
                values_for(expression, &filter.values, ADMIN_PREFIX),
            )
            .await?;
        Ok(counted + single_item)
    }

    /// The live index shard by shard (and then the constant key of the single-item format),
    /// each in id order; the cursor names the shard and the last id taken.
    async fn list_syncable(
        &self,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        let partitions = syncable_partitions();
        let (mut index, mut start) = match &after {
            None => (0, None),
            Some(cursor) => {
                let cursor: SyncableCursor =
                    serde_json::from_str(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?;
                let index = partitions
                    .iter()
                    .position(|p| *p == cursor.partition)
                    .ok_or(StoreError::InvalidCursor)?;
                let start = cursor
                    .after
                    .as_deref()
                    .map(|id| index_start("gsi2pk", "gsi2sk", &cursor.partition, id))
                    .transpose()?;
                (index, start)
            }
        };
        let mut ids = Vec::new();
        let mut last: Option<(usize, String)> = None;
        while index < partitions.len() && ids.len() < limit {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(SYNCABLE_INDEX)
                .key_condition_expression("gsi2pk = :pk")
                .expression_attribute_values(":pk", s(partitions[index].clone()))
                .limit(i32::try_from(limit - ids.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in output.items.unwrap_or_default() {
                let id = id_of(&item)?;
                last = Some((index, id.to_string()));
                ids.push(id);
            }
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) => start = Some(key),
                None => index += 1,
            }
        }
        // More may follow unless the last partition was read to its end.
        let next = (index < partitions.len()).then(|| {
            let cursor = match &last {
                Some((at, id)) if *at == index => SyncableCursor {
                    partition: partitions[index].clone(),
                    after: Some(id.clone()),
                },
                _ => SyncableCursor {
                    partition: partitions[index].clone(),
                    after: None,
                },
            };
            Cursor::new(serde_json::to_string(&cursor).expect("a cursor serializes"))
        });
        Ok(Page {
            items: self.load(&ids).await?,
            next,
        })
    }

    /// The shards' `live` counters, plus the live records the single-item format left.
    async fn count_syncable(&self) -> Result<u64, StoreError> {
        let counted = self.counted(&[LIVE_CELL.to_owned()]).await?;
        let values = HashMap::from([(":pk".to_owned(), s(SYNCABLE_PREFIX))]);
        let single_item = self
            .count_partition(SYNCABLE_INDEX, "gsi2pk", &None, None, values)
            .await?;
        Ok(counted + single_item)
    }
}
