//! The embedded backend for seyaha-local: a redb database file, credentials in 0600 files,
//! and an in-process queue. The same port semantics as the AWS adapters, down to the queue
//! delivering a job more than once (as SQS may), so tests see what production sees.

mod catalog;
mod db;
mod integrations;
mod queue;
mod rate_limit;
mod secrets;
mod slot_writer;
mod tables;

pub use db::RedbStore;
pub use queue::{InProcessQueue, LaneReceiver, QueueReceiver};
pub use rate_limit::InMemoryRateLimiter;
pub use secrets::FileSecretStore;
