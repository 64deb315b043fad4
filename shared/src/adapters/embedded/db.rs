//! The redb database file behind the embedded stores: its tables, opening it, and running
//! blocking redb work off the async executor (point reads excepted: see `point_read`). Every write is one ACID transaction committed
//! with immediate durability (fsync), so a crash never loses or half-writes a record.

use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use redb::Database;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{Cursor, Page, StoreError};

pub(super) use super::tables::{
    ACTIVITIES, INTEGRATIONS, PARTNERS, PRODUCTS, PULLS, RUNS, SLOT_EXPIRY, SLOTS,
};

/// The embedded store: integrations, catalog, slots and run history in one redb file.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    /// Slot writes share transactions (group commit): see `slot_writer`.
    pub(super) slot_writer: Arc<super::slot_writer::SlotWriter>,
}

pub(super) fn unavailable(error: impl Into<crate::ports::Cause>) -> StoreError {
    StoreError::Unavailable(error.into())
}

/// Cuts `items` (up to `limit + 1` read) to a page; the extra one only says a next page
/// exists, and the last item kept gives the cursor.
pub(super) fn page_of<T>(
    mut items: Vec<T>,
    limit: usize,
    position: impl Fn(&T) -> String,
) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(|last| Cursor::new(position(last)))
    } else {
        None
    };
    Page { items, next }
}

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::unavailable(format!("corrupt {what} record: {e}")))
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(unavailable)
}

impl RedbStore {
    /// Opens (or creates) the database file. Fails if another process holds it open.
    /// The file holds secret digests, so it is created owner-only (0600), and an existing file
    /// readable by others is tightened to 0600 (with a warning) before it is opened.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        owner_only_file(path).map_err(|e| {
            StoreError::unavailable(format!("cannot create {}: {e}", path.display()))
        })?;
        let db = Database::create(path)
            .map_err(|e| StoreError::unavailable(format!("cannot open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(unavailable)?;
        txn.open_table(INTEGRATIONS).map_err(unavailable)?;
        txn.open_table(PARTNERS).map_err(unavailable)?;
        txn.open_table(ACTIVITIES).map_err(unavailable)?;
        txn.open_table(PRODUCTS).map_err(unavailable)?;
        txn.open_table(SLOTS).map_err(unavailable)?;
        txn.open_table(SLOT_EXPIRY).map_err(unavailable)?;
        txn.open_table(RUNS).map_err(unavailable)?;
        txn.open_table(PULLS).map_err(unavailable)?;
        txn.commit().map_err(unavailable)?;
        let db = Arc::new(db);
        let slot_writer = Arc::new(super::slot_writer::SlotWriter::start(&db));
        Ok(Self { db, slot_writer })
    }

    /// Runs a point read (one or two keys) on the calling thread. Such a read is served from
    /// redb's page cache in microseconds, less than handing it to the blocking pool costs (two
    /// thread wake-ups), and it is what every webhook call does first. Scans and writes, which
    /// take longer or wait for the disk, go through [`Self::blocking`].
    pub(super) fn point_read<T>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        read(&self.db)
    }

    /// Runs blocking redb work off the async executor.
    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(unavailable)?
    }
}

/// Creates `path` empty with mode 0600 if it does not exist (redb initialises an empty file),
/// and tightens an existing file whose mode lets group or others in to 0600.
fn owner_only_file(path: &Path) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        tracing::warn!(path = %path.display(), was = format_args!("{mode:o}"), "the store file was readable by others; its mode is now 600");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_store_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seyaha.redb");
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        drop(store);
    }

    #[tokio::test]
    async fn an_existing_store_file_readable_by_others_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seyaha.redb");
        drop(RedbStore::open(&path).unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        drop(store);
    }
}
