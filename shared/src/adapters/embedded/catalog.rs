//! The catalog, slots and run history on redb, in the same database file as the integrations.
//! Keys are tuples starting with the integration id, so an integration's rows are one range.

use async_trait::async_trait;
use redb::{ReadableDatabase, ReadableTable};
use serde::Deserialize;

use super::db::{
    ACTIVITIES, PRODUCTS, PULLS, RUNS, RedbStore, SLOTS, decode, encode, page_of, unavailable,
};
use super::slot_writer::SlotWrite;
use crate::adapters::stored::{StoredActivity, StoredPull, StoredRun, StoredSlot};
use crate::domain::{
    Activity, ActivityState, AvailabilityPull, ContentHash, IntegrationId, ProductActivity, Slot,
    SyncRun, Timestamp, VariationRef,
};
use crate::ports::{CatalogStore, Cursor, Page, RunStore, StoreError};

/// What notify reads of a stored activity (a `StoredActivity` without its content): reading
/// only these fields skips building the titles and prices it does not need.
#[derive(Deserialize)]
struct ActivityOptions<'a> {
    #[serde(rename = "internalName", borrow)]
    internal_name: std::borrow::Cow<'a, str>,
    #[serde(rename = "isActive")]
    is_active: bool,
    #[serde(borrow)]
    variations: Vec<OptionRef<'a>>,
}

#[derive(Deserialize)]
struct OptionRef<'a> {
    #[serde(borrow)]
    external_sync: OptionSync<'a>,
}

#[derive(Deserialize)]
struct OptionSync<'a> {
    #[serde(borrow)]
    external_option_id: std::borrow::Cow<'a, str>,
}

/// A slot's key after the integration id: product, option and availability id.
type SlotKey = (String, String, String);

fn millis(at: Timestamp) -> u64 {
    at.unix_millis().max(0) as u64
}

/// A slot's position in a listing: its key after the integration id, as JSON.
fn slot_position(slot: &Slot) -> String {
    serde_json::to_string(&(&slot.product_id, &slot.option_id, &slot.availability_id))
        .expect("strings serialize")
}

fn decode_activity(bytes: &[u8]) -> Result<Activity, StoreError> {
    decode::<StoredActivity>("activity", bytes).map(Activity::from)
}

/// What the sync's diff needs of a stored activity (`StoredActivity`'s names); the rest of the
/// record is skipped, not built.
#[derive(Deserialize)]
struct StoredActivityState {
    #[serde(rename = "internalName")]
    internal_name: String,
    #[serde(rename = "isActive")]
    is_active: bool,
    content_hash: ContentHash,
    #[serde(rename = "updatedAt")]
    updated_at: Timestamp,
}

fn encode_activity(activity: &Activity) -> Result<Vec<u8>, StoreError> {
    encode(&StoredActivity::from(activity))
}

/// Keys of one integration: every tuple whose first element is `id`.
fn prefix_range(id: &str) -> std::ops::RangeFrom<(&str, &str)> {
    (id, "")..
}

fn all_activities(db: &redb::Database, id: &str) -> Result<Vec<Activity>, StoreError> {
    let txn = db.begin_read().map_err(unavailable)?;
    let table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
    let mut activities = Vec::new();
    for entry in table.range(prefix_range(id)).map_err(unavailable)? {
        let (key, value) = entry.map_err(unavailable)?;
        if key.value().0 != id {
            break;
        }
        activities.push(decode_activity(value.value())?);
    }
    Ok(activities)
}

#[async_trait]
impl CatalogStore for RedbStore {
    async fn activity_states(
        &self,
        integration: &IntegrationId,
    ) -> Result<Vec<ActivityState>, StoreError> {
        // Row by row, reading only these fields: the sync's memory follows the number of
        // activities, never the size of the stored catalog. The stored JSON is the activity's
        // own form, so its length is the activity's size.
        let id = integration.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
            let mut states = Vec::new();
            for entry in table.range(prefix_range(&id)).map_err(unavailable)? {
                let (key, value) = entry.map_err(unavailable)?;
                if key.value().0 != id {
                    break;
                }
                let state: StoredActivityState = decode("activity", value.value())?;
                states.push(ActivityState {
                    internal_name: state.internal_name,
                    content_hash: state.content_hash,
                    is_active: state.is_active,
                    stored_bytes: value.value().len() as u64,
                    updated_at: state.updated_at,
                });
            }
            Ok(states)
        })
        .await
    }

    async fn put_activities(
        &self,
        integration: &IntegrationId,
        activities: &[Activity],
    ) -> Result<(), StoreError> {
        let id = integration.to_string();
        let rows = activities
            .iter()
            .map(|a| {
                Ok((
                    a.internal_name.clone(),
                    a.external_sync.external_id.clone(),
                    encode_activity(a)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
                let mut products = txn.open_table(PRODUCTS).map_err(unavailable)?;
                for (name, product_id, bytes) in &rows {
                    let previous = table
                        .insert((id.as_str(), name.as_str()), bytes.as_slice())
                        .map_err(unavailable)?;
                    // A product whose OCTO id changed under the same internalName: drop the old index entry.
                    if let Some(previous) = previous {
                        let previous = decode_activity(previous.value())?;
                        if previous.external_sync.external_id != *product_id {
                            products
                                .remove((id.as_str(), previous.external_sync.external_id.as_str()))
                                .map_err(unavailable)?;
                        }
                    }
                    products
                        .insert((id.as_str(), product_id.as_str()), name.as_str())
                        .map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn delete_activities(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
    ) -> Result<(), StoreError> {
        let id = integration.to_string();
        let names = internal_names.to_vec();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
                let mut products = txn.open_table(PRODUCTS).map_err(unavailable)?;
                for name in &names {
                    let Some(removed) = table
                        .remove((id.as_str(), name.as_str()))
                        .map_err(unavailable)?
                    else {
                        continue;
                    };
                    let product_id = decode_activity(removed.value())?.external_sync.external_id;
                    drop(removed);
                    // The product index entry goes only if it still points at this activity
                    // (the product may have moved to another internalName since).
                    let points_here = products
                        .get((id.as_str(), product_id.as_str()))
                        .map_err(unavailable)?
                        .is_some_and(|entry| entry.value() == name.as_str());
                    if points_here {
                        products
                            .remove((id.as_str(), product_id.as_str()))
                            .map_err(unavailable)?;
                    }
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn set_active(
        &self,
        integration: &IntegrationId,
        internal_names: &[String],
        active: bool,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let id = integration.to_string();
        let names = internal_names.to_vec();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
                for name in &names {
                    let current = table
                        .get((id.as_str(), name.as_str()))
                        .map_err(unavailable)?
                        .map(|v| decode_activity(v.value()))
                        .transpose()?;
                    if let Some(mut activity) = current
                        && activity.is_active != active
                    {
                        activity.is_active = active;
                        activity.updated_at = now;
                        table
                            .insert(
                                (id.as_str(), name.as_str()),
                                encode_activity(&activity)?.as_slice(),
                            )
                            .map_err(unavailable)?;
                    }
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn find_variation(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
    ) -> Result<Option<VariationRef>, StoreError> {
        let id = integration.to_string();
        self.point_read(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let products = txn.open_table(PRODUCTS).map_err(unavailable)?;
            let Some(name) = products
                .get((id.as_str(), product_id))
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            let activities = txn.open_table(ACTIVITIES).map_err(unavailable)?;
            let Some(activity) = activities
                .get((id.as_str(), name.value()))
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            let activity: ActivityOptions = serde_json::from_slice(activity.value())
                .map_err(|e| StoreError::unavailable(format!("corrupt activity record: {e}")))?;
            let has_option = activity
                .variations
                .iter()
                .any(|v| v.external_sync.external_option_id == option_id);
            Ok(has_option.then(|| VariationRef {
                internal_name: activity.internal_name.into_owned(),
                activity_active: activity.is_active,
            }))
        })
    }

    async fn put_slots(
        &self,
        integration: &IntegrationId,
        slots: &[(Slot, Timestamp)],
    ) -> Result<(), StoreError> {
        // All at once: the slot writer commits what is waiting in one transaction.
        let writes = slots
            .iter()
            .map(|(slot, expires_at)| self.put_slot(integration, slot, *expires_at));
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn activity_of_product(
        &self,
        integration: &IntegrationId,
        product_id: &str,
    ) -> Result<Option<ProductActivity>, StoreError> {
        let id = integration.to_string();
        let product_id = product_id.to_owned();
        self.point_read(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let products = txn.open_table(PRODUCTS).map_err(unavailable)?;
            let Some(name) = products
                .get((id.as_str(), product_id.as_str()))
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            let activities = txn.open_table(ACTIVITIES).map_err(unavailable)?;
            let Some(activity) = activities
                .get((id.as_str(), name.value()))
                .map_err(unavailable)?
            else {
                return Ok(None);
            };
            // The stored JSON is the activity's own form: its length is the activity's size.
            let size = activity.value().len() as u64;
            Ok(Some(ProductActivity::of(
                &decode_activity(activity.value())?,
                size,
            )))
        })
    }

    async fn option_slots(
        &self,
        integration: &IntegrationId,
        product_id: &str,
        option_id: &str,
        days: std::ops::RangeInclusive<time::Date>,
    ) -> Result<Vec<Slot>, StoreError> {
        let (id, product, option) = (
            integration.to_string(),
            product_id.to_owned(),
            option_id.to_owned(),
        );
        // The option's keys are read and the days picked here: a local read costs no units.
        let (first, last) = (
            crate::domain::format_local_date(*days.start()),
            crate::domain::format_local_date(*days.end()),
        );
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(SLOTS).map_err(unavailable)?;
            let mut slots = Vec::new();
            // The keys of one option are (integration, product, option, *): contiguous.
            let range = table
                .range::<(&str, &str, &str, &str)>(
                    (id.as_str(), product.as_str(), option.as_str(), "")..,
                )
                .map_err(unavailable)?;
            for entry in range {
                let (key, value) = entry.map_err(unavailable)?;
                let (key_id, key_product, key_option, _) = key.value();
                if (key_id, key_product, key_option)
                    != (id.as_str(), product.as_str(), option.as_str())
                {
                    break;
                }
                let slot: Slot = decode::<StoredSlot>("slot", value.value())?.into();
                let day = slot.local_date_time_start.local_date();
                if day >= first.as_str() && day <= last.as_str() {
                    slots.push(slot);
                }
            }
            Ok(slots)
        })
        .await
    }

    async fn put_slot(
        &self,
        integration: &IntegrationId,
        slot: &Slot,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let expires_ms = millis(expires_at);
        let write = SlotWrite {
            integration: integration.to_string(),
            product: slot.product_id.clone(),
            option: slot.option_id.clone(),
            availability: slot.availability_id.clone(),
            bytes: encode(&StoredSlot::from(slot))?,
            expires_ms,
            retention_ms: expires_ms.saturating_sub(millis(slot.local_date_time_start.instant())),
            now_ms: millis(slot.updated_at),
        };
        self.slot_writer.write(write).await
    }

    async fn add_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, key, bytes) = (
            integration.to_string(),
            StoredPull::key(pull),
            encode(&StoredPull::new(pull, requested_at))?,
        );
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            txn.open_table(PULLS)
                .map_err(unavailable)?
                .insert((id.as_str(), key.as_str()), bytes.as_slice())
                .map_err(unavailable)?;
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn pending_pulls(
        &self,
        integration: &IntegrationId,
        limit: usize,
    ) -> Result<Vec<(AvailabilityPull, Timestamp)>, StoreError> {
        let id = integration.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(PULLS).map_err(unavailable)?;
            let mut pulls = Vec::new();
            for entry in table
                .range::<(&str, &str)>((id.as_str(), "")..)
                .map_err(unavailable)?
            {
                let (key, value) = entry.map_err(unavailable)?;
                if key.value().0 != id || pulls.len() >= limit {
                    break;
                }
                pulls.push(decode::<StoredPull>("pending pull", value.value())?.into_pull());
            }
            Ok(pulls)
        })
        .await
    }

    async fn remove_pull(
        &self,
        integration: &IntegrationId,
        pull: &AvailabilityPull,
        requested_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (id, key) = (integration.to_string(), StoredPull::key(pull));
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(PULLS).map_err(unavailable)?;
                let current = match table
                    .get((id.as_str(), key.as_str()))
                    .map_err(unavailable)?
                {
                    Some(value) => {
                        Some(decode::<StoredPull>("pending pull", value.value())?.requested_at)
                    }
                    None => None,
                };
                // Asked for again since it was read: it stays for the next run.
                if current == Some(requested_at) {
                    table
                        .remove((id.as_str(), key.as_str()))
                        .map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn activities_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        max_bytes: usize,
        after: Option<Cursor>,
    ) -> Result<Page<Activity>, StoreError> {
        let id = integration.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(ACTIVITIES).map_err(unavailable)?;
            let after = after.map(|cursor| cursor.as_str().to_owned());
            let range = match &after {
                Some(name) => table.range::<(&str, &str)>((
                    std::ops::Bound::Excluded((id.as_str(), name.as_str())),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<(&str, &str)>((id.as_str(), "")..),
            };
            let mut items = Vec::with_capacity(limit.min(1024) + 1);
            let mut bytes = 0usize;
            for entry in range.map_err(unavailable)? {
                let (key, value) = entry.map_err(unavailable)?;
                if key.value().0 != id || items.len() > limit {
                    break;
                }
                bytes = bytes.saturating_add(value.value().len());
                if bytes > max_bytes && !items.is_empty() {
                    // Full by size: the page ends early, and the next one starts here.
                    let next = items
                        .last()
                        .map(|last: &Activity| Cursor::new(last.internal_name.clone()));
                    return Ok(Page { items, next });
                }
                items.push(decode_activity(value.value())?);
            }
            Ok(page_of(items, limit, |activity| {
                activity.internal_name.clone()
            }))
        })
        .await
    }

    async fn slots_page(
        &self,
        integration: &IntegrationId,
        limit: usize,
        after: Option<Cursor>,
        starting_from: Timestamp,
    ) -> Result<Page<Slot>, StoreError> {
        let id = integration.to_string();
        let after: Option<SlotKey> = after
            .map(|cursor| {
                serde_json::from_str(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)
            })
            .transpose()?;
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(SLOTS).map_err(unavailable)?;
            let range = match &after {
                Some((p, o, a)) => table.range::<(&str, &str, &str, &str)>((
                    std::ops::Bound::Excluded((id.as_str(), p.as_str(), o.as_str(), a.as_str())),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<(&str, &str, &str, &str)>((id.as_str(), "", "", "")..),
            };
            let mut items = Vec::with_capacity(limit + 1);
            for entry in range.map_err(unavailable)? {
                let (key, value) = entry.map_err(unavailable)?;
                if key.value().0 != id || items.len() > limit {
                    break;
                }
                let slot: Slot = decode::<StoredSlot>("slot", value.value())?.into();
                if slot.local_date_time_start.instant() >= starting_from {
                    items.push(slot);
                }
            }
            Ok(page_of(items, limit, slot_position))
        })
        .await
    }

    async fn activities(&self, integration: &IntegrationId) -> Result<Vec<Activity>, StoreError> {
        let id = integration.to_string();
        self.blocking(move |db| all_activities(db, &id)).await
    }
}

#[async_trait]
impl RunStore for RedbStore {
    async fn record_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let id = run.integration_id.to_string();
        let started = run.started_at.unix_millis().max(0) as u64;
        let run_id = run.run_id.to_string();
        let expired_before =
            run.started_at.unix_millis() - crate::domain::RUN_RETENTION_DAYS * 24 * 3600 * 1000;
        let bytes = encode(&StoredRun::from(run))?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut table = txn.open_table(RUNS).map_err(unavailable)?;
                table
                    .insert((id.as_str(), started, run_id.as_str()), bytes.as_slice())
                    .map_err(unavailable)?;
                // Expire old records here, as DynamoDB's TTL does there.
                let cutoff = expired_before.max(0) as u64;
                let stale: Vec<(u64, String)> = table
                    .range((id.as_str(), 0u64, "")..(id.as_str(), cutoff, ""))
                    .map_err(unavailable)?
                    .map(|entry| entry.map(|(key, _)| (key.value().1, key.value().2.to_owned())))
                    .collect::<Result<_, _>>()
                    .map_err(unavailable)?;
                for (at, run_id) in stale {
                    table
                        .remove((id.as_str(), at, run_id.as_str()))
                        .map_err(unavailable)?;
                }
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn recent_runs(
        &self,
        integration: &IntegrationId,
        limit: usize,
        now: Timestamp,
    ) -> Result<Vec<SyncRun>, StoreError> {
        let id = integration.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(RUNS).map_err(unavailable)?;
            let mut runs = Vec::with_capacity(limit);
            for entry in table
                .range((id.as_str(), 0u64, "")..(id.as_str(), u64::MAX, ""))
                .map_err(unavailable)?
                .rev()
            {
                let (_, value) = entry.map_err(unavailable)?;
                let run: SyncRun = decode::<StoredRun>("run", value.value())?.into();
                if run.expires_at > now {
                    runs.push(run);
                    if runs.len() == limit {
                        break;
                    }
                }
            }
            Ok(runs)
        })
        .await
    }
}
