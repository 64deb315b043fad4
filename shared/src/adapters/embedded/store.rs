//! The integration store on redb. Every write is one ACID transaction committed with
//! immediate durability (fsync), so a crash or restart never loses or half-writes a record.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::domain::{IntegrationId, IntegrationRecord, PartnerId};
use crate::ports::{IntegrationFilter, IntegrationStore, Page, PageRequest, StoreError};

/// integration id -> JSON of the IntegrationRecord.
const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("integrations");
/// partner id -> integration id; the uniqueness index for "one integration per partner".
const PARTNERS: TableDefinition<&str, &str> = TableDefinition::new("integrations_by_partner");

#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

pub(super) fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn decode(bytes: &[u8]) -> Result<IntegrationRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Unavailable(format!("corrupt integration record: {e}")))
}

fn encode(record: &IntegrationRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(unavailable)
}

impl RedbStore {
    /// Opens (or creates) the database file. Fails if another process holds it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(INTEGRATIONS).map_err(unavailable)?;
        txn.open_table(PARTNERS).map_err(unavailable)?;
        super::catalog::create_tables(&txn)?;
        txn.commit().map_err(unavailable)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs blocking redb work off the async executor.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db)).await.map_err(unavailable)?
    }
}

#[async_trait]
impl IntegrationStore for RedbStore {
    async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let id = record.integration.id.to_string();
        let partner = record.integration.partner_id.to_string();
        let bytes = encode(record)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut partners = txn.open_table(PARTNERS).map_err(unavailable)?;
                let mut integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
                if partners.get(partner.as_str()).map_err(unavailable)?.is_some()
                    || integrations.get(id.as_str()).map_err(unavailable)?.is_some()
                {
                    return Err(StoreError::AlreadyExists);
                }
                partners.insert(partner.as_str(), id.as_str()).map_err(unavailable)?;
                integrations.insert(id.as_str(), bytes.as_slice()).map_err(unavailable)?;
            }
            txn.commit().map_err(unavailable)
        })
        .await
    }

    async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        let id = id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            table.get(id.as_str()).map_err(unavailable)?.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn find_by_partner(&self, partner_id: &PartnerId) -> Result<Option<IntegrationRecord>, StoreError> {
        let partner = partner_id.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let partners = txn.open_table(PARTNERS).map_err(unavailable)?;
            let Some(id) = partners.get(partner.as_str()).map_err(unavailable)? else {
                return Ok(None);
            };
            let integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            integrations.get(id.value()).map_err(unavailable)?.map(|v| decode(v.value())).transpose()
        })
        .await
    }

    async fn update(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        let id = record.integration.id.to_string();
        let expected_version = record.version - 1;
        let bytes = encode(record)?;
        self.blocking(move |db| {
            let txn = db.begin_write().map_err(unavailable)?;
            {
                let mut integrations = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
                let current = match integrations.get(id.as_str()).map_err(unavailable)? {
                    None => return Err(StoreError::NotFound),
                    Some(v) => decode(v.value())?,
                };
                if current.version != expected_version {
                    return Err(StoreError::VersionConflict);
                }
                integrations.insert(id.as_str(), bytes.as_slice()).map_err(unavailable)?;
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
                let removed = integrations.remove(id.as_str()).map_err(unavailable)?.map(|v| decode(v.value())).transpose()?;
                if let Some(record) = &removed {
                    let mut partners = txn.open_table(PARTNERS).map_err(unavailable)?;
                    partners.remove(record.integration.partner_id.to_string().as_str()).map_err(unavailable)?;
                }
                removed
            };
            txn.commit().map_err(unavailable)?;
            Ok(removed)
        })
        .await
    }

    async fn list(&self, filter: &IntegrationFilter, page: PageRequest) -> Result<Page<IntegrationRecord>, StoreError> {
        let filter = *filter;
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            let mut matching = Vec::new();
            for entry in table.iter().map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                let record = decode(value.value())?;
                if filter.matches(&record) {
                    matching.push(record);
                }
            }
            // Newest first; the id breaks ties so pages are stable.
            matching.sort_by_key(|record| std::cmp::Reverse((record.integration.created_at, record.integration.id)));
            let total_count = matching.len() as u64;
            let items = matching.into_iter().skip(page.offset()).take(page.limit as usize).collect();
            Ok(Page { items, total_count })
        })
        .await
    }

    async fn list_syncable(&self, after: Option<IntegrationId>, limit: usize) -> Result<Vec<IntegrationRecord>, StoreError> {
        let after = after.map(|id| id.to_string());
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(unavailable)?;
            let table = txn.open_table(INTEGRATIONS).map_err(unavailable)?;
            let mut page = Vec::with_capacity(limit);
            let range = match &after {
                Some(after) => table.range::<&str>((std::ops::Bound::Excluded(after.as_str()), std::ops::Bound::Unbounded)),
                None => table.range::<&str>(..),
            };
            for entry in range.map_err(unavailable)? {
                let (_, value) = entry.map_err(unavailable)?;
                let record = decode(value.value())?;
                if record.integration.accepts_webhooks() {
                    page.push(record);
                    if page.len() == limit {
                        break;
                    }
                }
            }
            Ok(page)
        })
        .await
    }
}
