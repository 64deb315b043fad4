//! The sync engine: fetch -> validate -> hash -> diff -> write, behind the ports.

mod availability;
mod canonical;
mod catalog;
mod diff;
mod engine;
mod product;
mod subscriptions;

pub use availability::{AvailabilityPull, MAX_CONCURRENT_CALLS, MAX_DAYS_PER_CALL, format_date, parse_date, split_range};
pub use canonical::canonicalize;
pub use catalog::{CatalogError, CatalogItem, CatalogParser, MAX_ACTIVITY_BYTES, ParsedCatalog, parse_catalog};
pub use diff::{CatalogDiff, StreamingDiff, diff_catalog};
pub use engine::{CatalogFailure, CatalogRead, ProbeOutcome, SyncConfig, SyncEngine, SyncError, SyncResult};
pub use subscriptions::Unsubscribe;
