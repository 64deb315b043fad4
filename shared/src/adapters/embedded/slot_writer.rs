//! Group commit for slot writes. Every acknowledged notify must be on disk, and a redb commit
//! is an fsync: one transaction per notify caps throughput at the disk's sync rate. Writes go
//! to one writer thread instead, which takes every write waiting at that moment (up to a batch
//! limit) into one transaction, commits it once, and then acknowledges each of them. Nothing is
//! acknowledged before the commit that holds it returned, so durability is unchanged.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Weak};

use redb::{Database, ReadableTable};
use tokio::sync::oneshot;

use super::db::{SLOT_EXPIRY, SLOTS};
use crate::ports::StoreError;

/// Most writes one transaction takes.
const MAX_BATCH: usize = 512;

pub(super) struct SlotWrite {
    pub integration: String,
    pub product: String,
    pub option: String,
    pub availability: String,
    pub bytes: Vec<u8>,
    pub expires_ms: u64,
    /// Slots that expired before this are forgotten in the same transaction.
    pub now_ms: u64,
}

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
        self.sender.send((write, done)).map_err(|_| StoreError::unavailable("the slot writer has stopped"))?;
        match written.await {
            Ok(result) => result.map_err(StoreError::unavailable),
            Err(_) => Err(StoreError::unavailable("the slot writer stopped before committing")),
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
        let mut now = 0;
        for w in batch {
            let key = (w.integration.as_str(), w.product.as_str(), w.option.as_str(), w.availability.as_str());
            slots.insert(key, w.bytes.as_slice()).map_err(|e| e.to_string())?;
            expiry.insert((w.expires_ms, key.0, key.1, key.2, key.3), ()).map_err(|e| e.to_string())?;
            now = now.max(w.now_ms);
        }
        // Forget what has expired by now (any integration's): the work is what expired.
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
            expiry.remove((at, i.as_str(), p.as_str(), o.as_str(), a.as_str())).map_err(|e| e.to_string())?;
            slots.remove((i.as_str(), p.as_str(), o.as_str(), a.as_str())).map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}
