//! What the DynamoDB adapter asks of DynamoDB, priced as DynamoDB bills it.
//!
//! An SDK interceptor on the adapter's client records every call: the operation, its request
//! (as sent), whether it succeeded, and the items it read. A [`Ledger`] replays the calls
//! against a model of the table (its keys, and each index's keys and projection) and a shadow
//! copy of every item the calls wrote, and books the capacity each call consumed:
//!
//! - writes: `ceil(max(old, new item size) / 1 KB)` per item on the table, doubled inside a
//!   transaction; per index, one write of the projected item when an item enters, leaves or
//!   changes a projected attribute (two when its index key changes), none otherwise;
//! - reads: `ceil(bytes / 4 KB)` per GetItem item or per Query response, halved when
//!   eventually consistent (BatchGetItem: per item). A filtered Query is billed for what it
//!   scanned; its scanned items are taken at the size of those it returned.
//!
//! Every booking names the partition key it lands on, so a test can ask which key of the
//! table or of an index takes which share of the writes. Item sizes follow DynamoDB's rules
//! (attribute names plus values; numbers approximated by their digits). moto itself reports
//! no real consumed capacity, which is why this exists.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde_json::{Value, json};

/// One call to DynamoDB, as the interceptor saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// `PutItem`, `Query`, `TransactWriteItems`, …
    pub operation: String,
    /// The request body as sent (DynamoDB JSON).
    pub request: Value,
    pub succeeded: bool,
    /// Items the call returned (GetItem, Query, BatchGetItem), in DynamoDB JSON.
    pub returned: Vec<Value>,
    /// Items a Query evaluated (before its filter).
    pub scanned: usize,
    pub request_bytes: usize,
}

/// The AWS ports with a DynamoDB client whose every call `recorder` sees (the store as well,
/// for calls the ports do not offer).
pub fn recorded_ports(
    config: &aws_config::SdkConfig,
    settings: &seyaha::settings::Settings,
    clock: Arc<dyn seyaha::ports::Clock>,
    recorder: &Recorder,
) -> (
    seyaha::ports::Ports,
    Arc<seyaha::adapters::aws::DynamoStore>,
) {
    let mut ports = seyaha::lambda::ports(config, settings, clock).unwrap();
    let table = settings
        .table_name
        .clone()
        .expect("the AWS settings name a table");
    let store = Arc::new(seyaha::adapters::aws::DynamoStore::new(
        recorder.client(config),
        table,
    ));
    ports.integrations = store.clone();
    ports.catalog = store.clone();
    ports.runs = store.clone();
    ports.rate_limiter = store.clone();
    (ports, store)
}

/// The index of the call in flight, kept in the operation's config bag between hooks.
#[derive(Debug, Clone, Copy)]
struct InFlight(usize);

impl Storable for InFlight {
    type Storer = StoreReplace<Self>;
}

/// The interceptor: clone it into the client's config and read the calls back.
#[derive(Clone, Default)]
pub struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recorder({} calls)", self.calls.lock().unwrap().len())
    }
}

impl Recorder {
    /// A DynamoDB client on `config` whose calls this recorder sees.
    pub fn client(&self, config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// The calls recorded so far, and forgets them.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "CapacityRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        let body = request.body().bytes().unwrap_or_default();
        let call = Call {
            operation,
            request: serde_json::from_slice(body).unwrap_or(Value::Null),
            succeeded: false,
            returned: Vec::new(),
            scanned: 0,
            request_bytes: body.len(),
        };
        let mut calls = self.calls.lock().unwrap();
        calls.push(call);
        cfg.interceptor_state().store_put(InFlight(calls.len() - 1));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let Some(InFlight(index)) = cfg.load::<InFlight>().copied() else {
            return Ok(());
        };
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        let mut calls = self.calls.lock().unwrap();
        let Some(call) = calls.get_mut(index) else {
            return Ok(());
        };
        call.succeeded = true;
        use aws_sdk_dynamodb::operation::{
            batch_get_item::BatchGetItemOutput, get_item::GetItemOutput, query::QueryOutput,
        };
        if let Some(output) = output.downcast_ref::<GetItemOutput>() {
            call.returned = output.item.iter().map(item_json).collect();
        } else if let Some(output) = output.downcast_ref::<QueryOutput>() {
            call.returned = output.items().iter().map(item_json).collect();
            call.scanned = usize::try_from(output.scanned_count).unwrap_or_default();
        } else if let Some(output) = output.downcast_ref::<BatchGetItemOutput>() {
            call.returned = output
                .responses
                .iter()
                .flat_map(|tables| tables.values().flatten())
                .map(item_json)
                .collect();
        }
        Ok(())
    }
}

/// An item as DynamoDB JSON.
pub fn item_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect(),
    )
}

fn attribute_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::B(b) => json!({"B": "x".repeat(b.as_ref().len())}),
        AttributeValue::L(l) => json!({"L": l.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": item_json(m)}),
        AttributeValue::Ss(values) => json!({"SS": values}),
        AttributeValue::Ns(values) => json!({"NS": values}),
        other => json!({"S": format!("{other:?}")}),
    }
}

/// An item's size as DynamoDB counts it: every attribute name plus its value.
pub fn item_size(item: &Value) -> usize {
    item.as_object()
        .map(|attributes| {
            attributes
                .iter()
                .map(|(name, value)| name.len() + value_size(value))
                .sum()
        })
        .unwrap_or(0)
}

fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|object| object.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" | "B" => inner.as_str().map_or(0, str::len),
        // Numbers: about one byte per two significant digits, plus one.
        "N" => inner
            .as_str()
            .map_or(1, |n| n.trim_start_matches('-').len().div_ceil(2) + 1),
        "BOOL" | "NULL" => 1,
        "L" => {
            3 + inner.as_array().map_or(0, |items| {
                items.iter().map(|item| 1 + value_size(item)).sum()
            })
        }
        "M" => {
            3 + inner.as_object().map_or(0, |items| {
                items
                    .iter()
                    .map(|(name, item)| 1 + name.len() + value_size(item))
                    .sum()
            })
        }
        "SS" | "NS" => inner.as_array().map_or(0, |items| {
            items
                .iter()
                .map(|item| item.as_str().map_or(0, str::len))
                .sum()
        }),
        _ => 0,
    }
}

/// What an index keeps of an item besides its keys.
#[derive(Debug, Clone)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<&'static str>),
}

#[derive(Debug, Clone)]
pub struct Index {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub projection: Projection,
}

/// The table as template.yaml declares it: `pk`/`sk`, and the three indexes.
pub fn seyaha_table() -> Vec<Index> {
    vec![
        Index {
            name: "gsi1",
            partition_key: "gsi1pk",
            sort_key: "gsi1sk",
            projection: Projection::Include(vec!["isApproved", "health_status", "health"]),
        },
        Index {
            name: "gsi2",
            partition_key: "gsi2pk",
            sort_key: "gsi2sk",
            projection: Projection::KeysOnly,
        },
        Index {
            name: "gsi3",
            partition_key: "gsi3pk",
            sort_key: "gsi3sk",
            projection: Projection::All,
        },
    ]
}

/// Capacity booked on one partition key of the table or of an index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub read_units: f64,
    pub write_units: f64,
    pub writes: u64,
}

/// The calls of a run, priced: capacity per target (`table` or an index name) and partition
/// key, and requests per operation.
#[derive(Debug, Default)]
pub struct Ledger {
    indexes: Vec<Index>,
    shadow: HashMap<(String, String), Value>,
    /// target -> partition key -> usage
    pub usage: BTreeMap<String, BTreeMap<String, Usage>>,
    /// operation -> number of requests
    pub requests: BTreeMap<String, u64>,
    pub request_bytes: u64,
    pub response_items_bytes: u64,
}

fn text<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

fn units(bytes: usize, unit: usize) -> f64 {
    bytes.div_ceil(unit).max(1) as f64
}

impl Ledger {
    pub fn new(indexes: Vec<Index>) -> Self {
        Self {
            indexes,
            ..Self::default()
        }
    }

    /// Books every call (in order: the shadow copy follows the writes that succeeded).
    pub fn book(&mut self, calls: &[Call]) {
        for call in calls {
            self.book_call(call);
        }
    }

    /// The sum over every target and key.
    pub fn total(&self) -> Usage {
        let mut total = Usage::default();
        for usage in self.usage.values().flat_map(BTreeMap::values) {
            total.read_units += usage.read_units;
            total.write_units += usage.write_units;
            total.writes += usage.writes;
        }
        total
    }

    /// The sum for one target (`table` or an index).
    pub fn target(&self, target: &str) -> Usage {
        let mut total = Usage::default();
        for usage in self
            .usage
            .get(target)
            .into_iter()
            .flat_map(BTreeMap::values)
        {
            total.read_units += usage.read_units;
            total.write_units += usage.write_units;
            total.writes += usage.writes;
        }
        total
    }

    /// The partition key of `target` with the most write units, and its share of them.
    pub fn hottest_write_key(&self, target: &str) -> Option<(String, f64)> {
        let keys = self.usage.get(target)?;
        let total: f64 = keys.values().map(|u| u.write_units).sum();
        let (key, usage) = keys
            .iter()
            .max_by(|a, b| a.1.write_units.total_cmp(&b.1.write_units))?;
        (total > 0.0).then(|| (key.clone(), usage.write_units / total))
    }

    fn charge(&mut self, target: &str, key: &str, read_units: f64, write_units: f64) {
        let usage = self
            .usage
            .entry(target.to_owned())
            .or_default()
            .entry(key.to_owned())
            .or_default();
        usage.read_units += read_units;
        usage.write_units += write_units;
        if write_units > 0.0 {
            usage.writes += 1;
        }
    }

    fn book_call(&mut self, call: &Call) {
        *self.requests.entry(call.operation.clone()).or_default() += 1;
        self.request_bytes += call.request_bytes as u64;
        self.response_items_bytes += call.returned.iter().map(item_size).sum::<usize>() as u64;
        let request = &call.request;
        let consistent = request
            .get("ConsistentRead")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let factor = if consistent { 1.0 } else { 0.5 };
        match call.operation.as_str() {
            "GetItem" => {
                let bytes = call.returned.iter().map(item_size).sum::<usize>();
                let key = text(&request["Key"], "pk").unwrap_or_default().to_owned();
                self.charge("table", &key, units(bytes, 4096) * factor, 0.0);
            }
            "Query" => {
                let target = request
                    .get("IndexName")
                    .and_then(Value::as_str)
                    .unwrap_or("table")
                    .to_owned();
                let returned = call.returned.len().max(1);
                let bytes: usize = call.returned.iter().map(item_size).sum();
                let scanned_bytes = if call.scanned > call.returned.len() {
                    bytes / returned * call.scanned
                } else {
                    bytes
                };
                let key = request["ExpressionAttributeValues"][":pk"]["S"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                self.charge(&target, &key, units(scanned_bytes, 4096) * factor, 0.0);
            }
            "BatchGetItem" => {
                for item in &call.returned {
                    let key = text(item, "pk").unwrap_or_default().to_owned();
                    let consistent = request["RequestItems"]
                        .as_object()
                        .into_iter()
                        .flat_map(|t| t.values())
                        .any(|t| t["ConsistentRead"] == true);
                    self.charge(
                        "table",
                        &key,
                        units(item_size(item), 4096) * if consistent { 1.0 } else { 0.5 },
                        0.0,
                    );
                }
            }
            "PutItem" => self.write(WriteKind::Put(request["Item"].clone()), call.succeeded, 1.0),
            "DeleteItem" => self.write(
                WriteKind::Delete(request["Key"].clone()),
                call.succeeded,
                1.0,
            ),
            "UpdateItem" => self.write(WriteKind::Update(request.clone()), call.succeeded, 1.0),
            "BatchWriteItem" => {
                for requests in request["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flat_map(|tables| tables.values())
                {
                    for write in requests.as_array().into_iter().flatten() {
                        if let Some(put) = write.get("PutRequest") {
                            self.write(WriteKind::Put(put["Item"].clone()), call.succeeded, 1.0);
                        } else if let Some(delete) = write.get("DeleteRequest") {
                            self.write(
                                WriteKind::Delete(delete["Key"].clone()),
                                call.succeeded,
                                1.0,
                            );
                        }
                    }
                }
            }
            "TransactWriteItems" => {
                for action in request["TransactItems"].as_array().into_iter().flatten() {
                    if let Some(put) = action.get("Put") {
                        self.write(WriteKind::Put(put["Item"].clone()), call.succeeded, 2.0);
                    } else if let Some(delete) = action.get("Delete") {
                        self.write(
                            WriteKind::Delete(delete["Key"].clone()),
                            call.succeeded,
                            2.0,
                        );
                    } else if let Some(update) = action.get("Update") {
                        self.write(WriteKind::Update(update.clone()), call.succeeded, 2.0);
                    }
                }
            }
            _ => {}
        }
    }

    fn write(&mut self, kind: WriteKind, applied: bool, multiplier: f64) {
        let key_of = |item: &Value| {
            (
                text(item, "pk").unwrap_or_default().to_owned(),
                text(item, "sk").unwrap_or_default().to_owned(),
            )
        };
        let (key, new) = match &kind {
            WriteKind::Put(item) => (key_of(item), Some(item.clone())),
            WriteKind::Delete(key) => (key_of(key), None),
            WriteKind::Update(request) => {
                let key = key_of(&request["Key"]);
                let base = self
                    .shadow
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| request["Key"].clone());
                (key, Some(apply_update(base, request)))
            }
        };
        let old = self.shadow.get(&key).cloned();
        let table_bytes = old
            .as_ref()
            .map_or(0, item_size)
            .max(new.as_ref().map_or(0, item_size));
        self.charge("table", &key.0, 0.0, units(table_bytes, 1024) * multiplier);
        if !applied {
            return;
        }
        for index in self.indexes.clone() {
            let index_key = |item: &Option<Value>| {
                let item = item.as_ref()?;
                Some((
                    text(item, index.partition_key)?.to_owned(),
                    text(item, index.sort_key)?.to_owned(),
                ))
            };
            let project = |item: &Option<Value>| -> Option<Value> {
                let item = item.as_ref()?.as_object()?;
                let keep = |name: &str| match &index.projection {
                    Projection::All => true,
                    Projection::KeysOnly => false,
                    Projection::Include(names) => names.contains(&name),
                } || ["pk", "sk", index.partition_key, index.sort_key].contains(&name);
                Some(Value::Object(
                    item.iter()
                        .filter(|(name, _)| keep(name))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ))
            };
            let (old_key, new_key) = (index_key(&old), index_key(&new));
            let (old_projected, new_projected) = (project(&old), project(&new));
            match (&old_key, &new_key) {
                (None, None) => {}
                (Some(before), Some(after)) if before == after => {
                    if old_projected != new_projected {
                        self.charge(
                            index.name,
                            &after.0,
                            0.0,
                            units(new_projected.as_ref().map_or(0, item_size), 1024),
                        );
                    }
                }
                _ => {
                    if let Some(before) = &old_key {
                        self.charge(
                            index.name,
                            &before.0,
                            0.0,
                            units(old_projected.as_ref().map_or(0, item_size), 1024),
                        );
                    }
                    if let Some(after) = &new_key {
                        self.charge(
                            index.name,
                            &after.0,
                            0.0,
                            units(new_projected.as_ref().map_or(0, item_size), 1024),
                        );
                    }
                }
            }
        }
        match new {
            Some(item) => self.shadow.insert(key, item),
            None => self.shadow.remove(&key),
        };
    }
}

enum WriteKind {
    Put(Value),
    Delete(Value),
    Update(Value),
}

/// Applies the `SET a = :v, …`, `ADD a :v, …` and `REMOVE a` clauses the adapter uses to a
/// shadow item.
fn apply_update(mut item: Value, request: &Value) -> Value {
    let expression = request["UpdateExpression"].as_str().unwrap_or_default();
    let names = &request["ExpressionAttributeNames"];
    let values = &request["ExpressionAttributeValues"];
    let name = |token: &str| {
        names
            .get(token)
            .and_then(Value::as_str)
            .unwrap_or(token)
            .to_owned()
    };
    // Sections by keyword, then clauses by comma.
    let mut sections: Vec<(String, String)> = Vec::new();
    for word in expression.split_whitespace() {
        match word {
            "SET" | "ADD" | "REMOVE" | "DELETE" => sections.push((word.to_owned(), String::new())),
            _ => {
                if let Some((_, text)) = sections.last_mut() {
                    text.push(' ');
                    text.push_str(word);
                }
            }
        }
    }
    let object = item.as_object_mut().expect("an item is an object");
    for (kind, text) in sections {
        for clause in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match kind.as_str() {
                "SET" => {
                    if let Some((target, value)) = clause.split_once('=') {
                        object.insert(name(target.trim()), values[value.trim()].clone());
                    }
                }
                "ADD" => {
                    if let Some((target, value)) = clause.split_once(' ') {
                        let target = name(target.trim());
                        let delta: f64 = values[value.trim()]["N"]
                            .as_str()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0.0);
                        let current: f64 = object
                            .get(&target)
                            .and_then(|v| v["N"].as_str())
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0.0);
                        object.insert(target, json!({"N": (current + delta).to_string()}));
                    }
                }
                "REMOVE" => {
                    object.remove(&name(clause));
                }
                _ => {}
            }
        }
    }
    item
}
