//! The sync engine: fetch -> validate -> hash -> diff -> write, behind the ports.

mod catalog;
mod engine;

pub use catalog::{CatalogError, ParsedCatalog, parse_catalog};
pub use engine::{ProbeOutcome, SyncConfig, SyncEngine, SyncPorts, SyncResult};
