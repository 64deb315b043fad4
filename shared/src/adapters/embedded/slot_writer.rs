//! Group commit for slot writes. Every acknowledged notify must be on disk, and a redb commit
//! is an fsync: one transaction per notify caps throughput at the disk's sync rate. Writes go
//! to one writer thread instead, which takes every write waiting at that moment (up to a batch
//! limit) into one transaction, commits it once, and then acknowledges each of them. Nothing is
//! acknowledged before the commit that holds it returned, so durability is unchanged.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Weak};

use redb::{Database, ReadableTable, Table};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::tables::{SLOT_EXPIRY, SLOTS};
use crate::domain::LocalDateTime;
use crate::ports::StoreError;

/// Most writes one transaction takes.
const MAX_BATCH: usize = 512;

pub(super) struct SlotWrite {
    pub integration: String,
    pub product: String,
    pub option: String,
    pub availability: String,
    pub bytes: Vec<u8>,
    /// When the slot expires: its start plus the retention.
    pub expires_ms: u64,
    pub retention_ms: u64,
    /// Slots that expired before this are forgotten in the same transaction.
    pub now_ms: u64,
}

/// The one field of a stored slot that its expiry depends on.
#[derive(Deserialize)]
struct StoredStart {
    #[serde(rename = "localDateTimeStart")]
    local_date_time_start: LocalDateTime,
}

/// When a stored slot expires under `retention_ms`.
fn expiry_of(stored: &[u8], retention_ms: u64) -> Result<u64, String> {
    let start: StoredStart =
        serde_json::from_slice(stored).map_err(|e| format!("corrupt slot record: {e}"))?;
    Ok(
        (start.local_date_time_start.instant().unix_millis().max(0) as u64)
            .saturating_add(retention_ms),
    )
}

type SlotKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A write and where to say that it was committed.
type Pending = (SlotWrite, oneshot::Sender<Result<(), String>>);

pub(super) struct SlotWriter {
    sender: Sender<Pending>,
}

impl SlotWriter {
    /// Starts the writer thread. It holds the database weakly: when the store is dropped the
    /// file closes at once, and the thread ends with the last sender.
    pub(super) fn start(db: &Arc<Database>) -> Self {
        let (sender, receiver) = std::sync::mpsc::channel();
        let db = Arc::downgrade(db);
        std::thread::Builder::new()
            .name("seyaha-slot-writer".into())
            .spawn(move || run(&db, &receiver))
            .expect("the slot writer thread starts");
        Self { sender }
    }

    pub(super) async fn write(&self, write: SlotWrite) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        self.sender
            .send((write, done))
            .map_err(|_| StoreError::unavailable("the slot writer has stopped"))?;
        match written.await {
            Ok(result) => result.map_err(StoreError::unavailable),
            Err(_) => Err(StoreError::unavailable(
                "the slot writer stopped before committing",
            )),
        }
    }
}

fn run(db: &Weak<Database>, receiver: &Receiver<Pending>) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(write) => batch.push(write),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let (writes, waiting): (Vec<SlotWrite>, Vec<_>) = batch.into_iter().unzip();
        let result = match db.upgrade() {
            Some(db) => commit(&db, &writes),
            None => Err("the store is closed".to_owned()),
        };
        for done in waiting {
            if done.send(result.clone()).is_err() {
                // The caller stopped waiting (its request was cancelled); the write stands.
                tracing::debug!("a slot write was committed after its caller gave up");
            }
        }
    }
}

fn commit(db: &Database, batch: &[SlotWrite]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut slots = txn.open_table(SLOTS).map_err(|e| e.to_string())?;
        let mut expiry = txn.open_table(SLOT_EXPIRY).map_err(|e| e.to_string())?;
        let (mut now, mut retention) = (0, 0);
        for w in batch {
            let key = (
                w.integration.as_str(),
                w.product.as_str(),
                w.option.as_str(),
                w.availability.as_str(),
            );
            let previous = slots
                .insert(key, w.bytes.as_slice())
                .map_err(|e| e.to_string())?;
            let previous = previous
                .map(|p| expiry_of(p.value(), w.retention_ms))
                .transpose()?;
            // The same start keeps its expiry entry (most updates: vacancies change, the start
            // does not); a moved start must not leave the old entry behind, or it would drop
            // the slot at the old time.
            if previous != Some(w.expires_ms) {
                if let Some(previous) = previous {
                    expiry
                        .remove((previous, key.0, key.1, key.2, key.3))
                        .map_err(|e| e.to_string())?;
                }
                expiry
                    .insert((w.expires_ms, key.0, key.1, key.2, key.3), ())
                    .map_err(|e| e.to_string())?;
            }
            now = now.max(w.now_ms);
            retention = retention.max(w.retention_ms);
        }
        forget_expired(&mut slots, &mut expiry, now, retention)?;
    }
    txn.commit().map_err(|e| e.to_string())
}

/// Forgets the slots that have expired by `now` (any integration's): the work is what expired.
/// An entry written under another retention (the setting changed since) is checked against
/// the slot itself, so a slot is only ever dropped once it is past today's retention.
fn forget_expired(
    slots: &mut Table<SlotKey<'static>, &'static [u8]>,
    expiry: &mut Table<(u64, &'static str, &'static str, &'static str, &'static str), ()>,
    now: u64,
    retention: u64,
) -> Result<(), String> {
    let expired: Vec<(u64, String, String, String, String)> = expiry
        .range((0u64, "", "", "", "")..(now, "", "", "", ""))
        .map_err(|e| e.to_string())?
        .map(|entry| {
            entry.map(|(k, _)| {
                let (at, i, p, o, a) = k.value();
                (at, i.to_owned(), p.to_owned(), o.to_owned(), a.to_owned())
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    for (at, i, p, o, a) in expired {
        let key = (i.as_str(), p.as_str(), o.as_str(), a.as_str());
        expiry
            .remove((at, key.0, key.1, key.2, key.3))
            .map_err(|e| e.to_string())?;
        let current = slots
            .get(key)
            .map_err(|e| e.to_string())?
            .map(|v| expiry_of(v.value(), retention))
            .transpose()?;
        match current {
            Some(expires) if expires > now => {
                expiry
                    .insert((expires, key.0, key.1, key.2, key.3), ())
                    .map_err(|e| e.to_string())?;
            }
            Some(_) => {
                slots.remove(key).map_err(|e| e.to_string())?;
            }
            None => {}
        }
    }
    Ok(())
}
