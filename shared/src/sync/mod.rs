//! The sync engine: keeping Seyaha's copy of each partner's catalog and availability in step
//! with the partner, behind the ports. Two ways: Seyaha pulls (fetch -> validate -> hash ->
//! diff -> write, for the catalog, one product or some days of availability), and the partner
//! pushes, through the push subscriptions this engine makes on its platform (the pushes
//! themselves arrive through the API as notifies and OCTO events).
//!
//! The rest of the crate sees one type, [`SyncEngine`] (`engine.rs`): a facade that builds the
//! units below once from the ports and the [`SyncConfig`], dispatches queue jobs to them and
//! forwards each public call to the unit that owns it. Each unit is a struct holding only its
//! own clones of the ports it uses (they are `Arc`s), its own config values and the other
//! units it calls; none reaches into another's fields.
//!
//! | file | unit | what it owns | calls |
//! |---|---|---|---|
//! | `engine.rs` | [`SyncEngine`] | job dispatch, a deferred job's due time | every unit |
//! | `shared.rs` | - | the types every unit shares: `SyncConfig`, `SyncError`, `SyncResult`, `ProbeOutcome` | - |
//! | `lease.rs` | `Leases` | the lease and the request protocol (`requested_at`, follow-ups, watchdog delays) | - |
//! | `runs.rs` | `RunLog`, `Run` | the sync log: one run's identity, and its record with metrics | - |
//! | `credentials.rs` | `Credentials` | the partner credential from the secret store | - |
//! | `health.rs` | `Health` | probes, DEGRADED/DOWN, DOWN's deactivation of the catalog | `Leases`, `RunLog` |
//! | `catalog_sync.rs` | `CatalogSync` | the full catalog sync (every trigger) and the connection test's read | `Leases`, `Health`, `RunLog`, `Credentials` |
//! | `fan_out.rs` | `FanOut`, `LivePages` | nightly / sync-all page jobs, the start-up resume | `Leases` |
//! | `product.rs` | `ProductSync` | one product after `PRODUCT_UPDATE` | `Leases`, `RunLog`, `Credentials` |
//! | `availability.rs` | `AvailabilityPulls` | availability pulls into slots | `Leases`, `RunLog`, `Credentials` |
//! | `push_subscriptions.rs` | `PushSubscriptions` | subscribing to (and unsubscribing from) partners' push channels | `Credentials`, `LivePages` |
//!
//! Below the units, with no state: `catalog.rs` (the streaming parser: the one definition of a
//! valid catalog), `canonical.rs` (RFC 8785 canonical JSON for the hashes) and `diff.rs` (the
//! per-activity diff).

mod availability;
mod canonical;
mod catalog;
mod catalog_sync;
mod credentials;
mod diff;
mod engine;
mod fan_out;
mod health;
mod lease;
mod product;
mod push_subscriptions;
mod runs;
mod shared;

pub use availability::{
    AvailabilityPull, MAX_CALLS_PER_RUN, MAX_CONCURRENT_CALLS, MAX_DAYS_PER_CALL,
    MAX_PULLS_PER_RUN, format_date, parse_date, split_range,
};
pub use canonical::canonicalize;
pub use catalog::{
    CatalogError, CatalogItem, CatalogParser, MAX_ACTIVITY_BYTES, ParsedCatalog, parse_catalog,
};
pub use catalog_sync::{CatalogFailure, CatalogRead};
pub use diff::{CatalogDiff, Incoming, StreamingDiff, diff_catalog};
pub use engine::SyncEngine;
pub use push_subscriptions::Unsubscribe;
pub use shared::{ProbeOutcome, SyncConfig, SyncError, SyncResult};
