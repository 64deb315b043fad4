//! The redb tables of the embedded store: their keys and what they hold. Apart from `db` so the
//! slot writer (which `db` starts) reads them without depending on `db`.

use redb::TableDefinition;

/// integration id -> JSON of a `StoredIntegration`.
pub(super) const INTEGRATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("integrations");
/// partner id -> integration id; the uniqueness index for "one integration per partner".
pub(super) const PARTNERS: TableDefinition<&str, &str> =
    TableDefinition::new("integrations_by_partner");
/// (integration, internalName) -> JSON of a `StoredActivity`.
pub(super) const ACTIVITIES: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("activities");
/// (integration, OCTO product id) -> internalName: how notify finds an activity.
pub(super) const PRODUCTS: TableDefinition<(&str, &str), &str> =
    TableDefinition::new("activities_by_product");
/// (integration, product id, option id, availability id) -> JSON of a `StoredSlot`.
pub(super) const SLOTS: TableDefinition<(&str, &str, &str, &str), &[u8]> =
    TableDefinition::new("slots");
/// (expires at in ms, integration, product id, option id, availability id) -> (): which slots
/// to forget when (DynamoDB's TTL does this there).
pub(super) const SLOT_EXPIRY: TableDefinition<(u64, &str, &str, &str, &str), ()> =
    TableDefinition::new("slots_by_expiry");
/// (integration, pull key) -> JSON of a `StoredPull`: the pending availability pulls.
pub(super) const PULLS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("pending_pulls");
/// (integration, started at in ms, run id) -> JSON of a `StoredRun`.
pub(super) const RUNS: TableDefinition<(&str, u64, &str), &[u8]> = TableDefinition::new("runs");
