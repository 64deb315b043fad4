//! The sync engine: fetch -> validate -> hash -> diff -> write, behind the ports.

mod canonical;
mod catalog;
mod diff;
mod engine;

pub use canonical::canonicalize;
pub use catalog::{CatalogError, ParsedCatalog, parse_catalog};
pub use diff::{CatalogDiff, diff_catalog};
pub use engine::{ProbeOutcome, SyncConfig, SyncEngine, SyncError, SyncResult};
