//! Read-modify-write of integration records with optimistic concurrency, shared by the API
//! core and the sync engine. Every writer goes through here, so concurrent PATCHes, probes and
//! syncs never overwrite each other's changes.

use crate::domain::{IntegrationId, IntegrationRecord};
use crate::ports::{IntegrationStore, StoreError};

/// How often a write is retried after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// What a change decided: write the record, or leave it as it is.
pub enum Change<T> {
    Write(T),
    Keep(T),
}

/// Applies `change` to the current record and stores it if it asks to, retrying from a fresh
/// read when another writer won. `known` is a record the caller already read (saves a read).
/// Returns `None` if the integration does not exist.
pub async fn update_record<T>(
    store: &dyn IntegrationStore,
    id: &IntegrationId,
    mut known: Option<IntegrationRecord>,
    mut change: impl FnMut(&mut IntegrationRecord) -> Change<T>,
) -> Result<Option<(IntegrationRecord, T)>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        let mut record = match known.take() {
            Some(record) => record,
            None => match store.get(id).await? {
                Some(record) => record,
                None => return Ok(None),
            },
        };
        let previous = record.clone();
        match change(&mut record) {
            Change::Keep(value) => return Ok(Some((record, value))),
            Change::Write(value) => {
                record.version += 1;
                match store.update(&record, &previous).await {
                    Ok(()) => return Ok(Some((record, value))),
                    Err(StoreError::VersionConflict) => continue,
                    Err(StoreError::NotFound) => return Ok(None),
                    Err(other) => return Err(other),
                }
            }
        }
    }
    Err(StoreError::VersionConflict)
}
