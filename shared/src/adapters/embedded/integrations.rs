//! The integration store on redb.

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::db::{INTEGRATIONS, PARTNERS, RedbStore, decode, encode, page_of, unavailable};
use crate::adapters::stored::StoredIntegration;
use crate::domain::{IntegrationId, IntegrationRecord, PartnerId};
use crate::ports::{Cursor, IntegrationFilter, IntegrationStore, Page, StoreError};

fn decode_record(bytes: &[u8]) -> Result<IntegrationRecord, StoreError> {
    decode::<StoredIntegration>("integration", bytes)?.try_into()
}

fn encode_record(record: &IntegrationRecord) -> Result<Vec<u8>, StoreError> {
    encode(&StoredIntegration::from(record))
}

/// The admin list's order, newest first: `{createdAt ms:013}#{id}`, compared in reverse.
fn list_position(record: &IntegrationRecord) -> String {
    format!(
        "{:013}#{}",
        record.integration.created_at.unix_millis().max(0),
        record.integration.id
    )
}

/// Every integration matching the filter, newest first. The embedded store serves one
/// machine's worth of integrations, so reading them all per call is cheap enough here.
fn matching(
    db: &Database,
    filter: &IntegrationFilter,
) -> Result<Vec<IntegrationRecord>, StoreError> {
    let txn = db.begin_read().map_err(unavailable)?;
    let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
    let mut matching = Vec::new();
    for entry in table.iter().map_err(unavailable)? {
        let (_, value) = entry.map_err(unavailable)?;
        let record = decode_record(value.value())?;
        if filter.matches(&record) {
            matching.push(record);
        }
    }
    matching.sort_by_key(|record| std::cmp::Reverse(list_position(record)));
    Ok(matching)
}

#[async_trait]
impl IntegrationStore for RedbStore {
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let id = record.integration.id.to_string();
        let partner = record.integration.partner_id.to_string();
        let bytes = encode_record(record)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut partners = txn.open_table(PARTNERS).map_err(unavailable)?;
                let mut integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
                if partners
                    .get(partner.as_str())
                    .map_err(unavailable)?
                    .is_some()
                    || integrations
                        .get(id.as_str())
                        .map_err(unavailable)?
                        .is_some()
                {
                    return Err(StoreError::AlreadyExists);
                }
                partners
                    .insert(partner.as_str(), id.as_str())
                    .map_err(unavailable)?;
                integrations
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        let id = id.to_string();
        self.point_read(|db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            table
                .get(id.as_str())
                .map_err(unavailable)?
                .map(|v| decode_record(v.value()))
                .transpose()
        })
    }

    async fn find_by_partner(
        &self,
        partner_id: &PartnerId,
    ) -> Result<Option<IntegrationRecord>, StoreError> {
        let partner = partner_id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let partners = txn.open_table(PARTNERS).map_err(unavailable)?;
            let Some(id) = partners.get(partner.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            integrations
                .get(id.value())
                .map_err(unavailable)?
                .map(|v| decode_record(v.value()))
                .transpose()
        })
        .await
    }

    async fn update(
        &self,
        record: &IntegrationRecord,
        _previous: &IntegrationRecord,
    ) -> Result<(), StoreError> {
        let id = record.integration.id.to_string();
        let expected_version = record.version - 1;
        let bytes = encode_record(record)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
                let current = match integrations.get(id.as_str()).map_err(unavailable)? {
                    None => return Err(StoreError::NotFound),
                    Some(v) => decode::<StoredIntegration>("integration", v.value())?,
                };
                if current.version != expected_version {
                    return Err(StoreError::VersionConflict);
                }
                integrations
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn delete(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            let removed = {
                let mut integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
                let removed = integrations
                    .remove(id.as_str())
                    .map_err(unavailable)?
                    .map(|v| decode_record(v.value()))
                    .transpose()?;
                if let Some(record) = &removed {
                    let mut partners = txn.open_table(PARTNERS).map_err(unavailable)?;
                    partners
                        .remove(record.integration.partner_id.to_string().as_str())
                        .map_err(unavailable)?;
                }
                removed
            };
            txn.commit().map_err(unavailable)?;
            Ok(removed)
        })
        .await
    }

    async fn list(
        &self,
        filter: &IntegrationFilter,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        let filter = *filter;
        self.blocking(move |db| {
            let all = matching(db, &filter)?;
            let start = match &after {
                Some(cursor) => all
                    .iter()
                    .position(|record| list_position(record).as_str() < cursor.as_str())
                    .unwrap_or(all.len()),
                None => 0,
            };
            let items: Vec<IntegrationRecord> =
                all.into_iter().skip(start).take(limit + 1).collect();
            Ok(page_of(items, limit, list_position))
        })
        .await
    }

    async fn count(&self, filter: &IntegrationFilter) -> Result<u64, StoreError> {
        let filter = *filter;
        self.blocking(move |db| Ok(matching(db, &filter)?.len() as u64))
            .await
    }

    async fn list_syncable(
        &self,
        limit: usize,
        after: Option<Cursor>,
    ) -> Result<Page<IntegrationRecord>, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            let range = match &after {
                Some(after) => table.range::<&str>((
                    std::ops::Bound::Excluded(after.as_str()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&str>(..),
            };
            let mut items = Vec::with_capacity(limit + 1);
            for entry in range.map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                let record = decode_record(value.value())?;
                if record.integration.is_live() {
                    items.push(record);
                    if items.len() > limit {
                        break;
                    }
                }
            }
            Ok(page_of(items, limit, |record| {
                record.integration.id.to_string()
            }))
        })
        .await
    }

    async fn count_syncable(&self) -> Result<u64, StoreError> {
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            let mut live = 0;
            for entry in table.iter().map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                if decode_record(value.value())?.integration.is_live() {
                    live += 1;
                }
            }
            Ok(live)
        })
        .await
    }
}
