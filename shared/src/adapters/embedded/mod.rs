//! The embedded backend for seyaha-local: a redb database file, credentials in 0600 files,
//! and an in-process queue. Same port semantics as the AWS adapters.

mod catalog;
mod queue;
mod secrets;
mod store;

pub use queue::{InProcessQueue, QueueReceiver};
pub use secrets::FileSecretStore;
pub use store::RedbStore;
