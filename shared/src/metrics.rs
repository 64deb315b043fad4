//! Every metric the service records, stated once: name, type, unit, labels and meaning
//! ([`ALL`]). The core records through the `metrics` facade with the typed functions below;
//! each runtime installs its own recorder and then calls [`describe`]: seyaha-local renders
//! Prometheus text at `GET /metrics`, the Lambda functions print CloudWatch Embedded Metric
//! Format documents (`seyaha::lambda`). The template's dashboard and the Metrics table of
//! docs/operations.md are checked against [`ALL`] by tests, so they cannot drift from the code.
//!
//! Labels (CloudWatch dimensions) only ever take values from fixed sets written here or in
//! the domain's enums: never an integration, partner or product id, nor any text a partner
//! sent. CloudWatch bills each combination of dimension values as one metric, and a partner's
//! string must never become a metric or dimension.
//!
//! Without an installed recorder (unit tests, the benches) every call is a no-op.

use std::time::Duration;

pub use metrics::Unit;

use crate::domain::{HealthTransition, RunOutcome, RunTrigger};

/// Whether a metric is a counter or a histogram (of which Prometheus shows buckets, `_sum`
/// and `_count`, and CloudWatch the statistics of the values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Histogram => "histogram",
        }
    }
}

/// One metric: what the manual's table (docs/operations.md) and the dashboard show of it.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// Label names (CloudWatch dimensions), in the order the manual lists them.
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub const SYNCS: &str = "seyaha_syncs_total";
pub const SYNC_DURATION: &str = "seyaha_sync_duration_seconds";
pub const PRODUCTS_FETCHED: &str = "seyaha_products_fetched_total";
pub const CATALOG_WRITES: &str = "seyaha_catalog_writes_total";
pub const REJECTIONS: &str = "seyaha_rejections_total";
pub const NOTIFIES: &str = "seyaha_notifies_total";
pub const WEBHOOK_AUTH_FAILURES: &str = "seyaha_webhook_auth_failures_total";
pub const PARTNER_CALL_DURATION: &str = "seyaha_partner_call_duration_seconds";
pub const JOBS: &str = "seyaha_jobs_total";
pub const HEALTH_TRANSITIONS: &str = "seyaha_health_transitions_total";
pub const DOWN_DEACTIVATIONS: &str = "seyaha_down_deactivations_total";

/// Every metric the service records.
pub const ALL: &[Metric] = &[
    Metric {
        name: SYNCS,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["trigger", "outcome"],
        help: "Sync runs recorded in the sync log (full syncs, product syncs, availability pulls), by what started them and how they ended",
    },
    Metric {
        name: SYNC_DURATION,
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        // Not by trigger: a CloudWatch alarm cannot sum over a dimension, and the sync error
        // rate alarm reads its run counts from this metric's sample count per outcome.
        labels: &["outcome"],
        help: "How long a sync run took, from taking the lease to recording the run",
    },
    Metric {
        name: PRODUCTS_FETCHED,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &[],
        help: "Products received from partners (GET /products and GET /products/{id}), accepted or rejected",
    },
    Metric {
        name: CATALOG_WRITES,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["record", "change"],
        help: "Catalog records written to the store: activities and availability slots, upserted or deactivated (closed)",
    },
    Metric {
        name: REJECTIONS,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["record"],
        help: "Products and availabilities a partner sent that failed validation and were not stored",
    },
    Metric {
        name: NOTIFIES,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["outcome"],
        help: "Availability notifies (and OCTO availability_update events): slot updated, or a fallback full sync requested",
    },
    Metric {
        name: WEBHOOK_AUTH_FAILURES,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &[],
        help: "Webhook calls refused for a missing or wrong secret, or an unknown integration",
    },
    Metric {
        name: PARTNER_CALL_DURATION,
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        labels: &["operation", "status_class"],
        help: "Latency of calls to partners' OCTO APIs, body included, by OCTO operation and status class",
    },
    Metric {
        name: JOBS,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["job_kind", "outcome"],
        help: "Queue jobs run by a worker (the sync-worker function, seyaha-local's worker), by kind and outcome",
    },
    Metric {
        name: HEALTH_TRANSITIONS,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &["transition"],
        help: "Changes of an integration's health state, as probes (syncs, connection tests) found them",
    },
    Metric {
        name: DOWN_DEACTIVATIONS,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels: &[],
        help: "Catalogs deactivated because their integration became DOWN (each also a health_down run in its sync log)",
    },
];

/// Names, units and help text for the installed recorder (Prometheus HELP lines, EMF units).
/// Call it once after installing a recorder.
pub fn describe() {
    for metric in ALL {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.unit, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.unit, metric.help),
        }
    }
}

/// The label values of the counters whose values are fixed sets, as the recording functions
/// below write them.
const RECORDS: [&str; 2] = ["activity", "slot"];
const CHANGES: [&str; 3] = ["upsert", "deactivate", "remove"];
const REJECTED: [&str; 2] = ["product", "availability"];
const NOTIFY_OUTCOMES: [&str; 2] = ["updated", "fallback"];
const TRANSITIONS: [&str; 4] = [
    "became_degraded",
    "became_down",
    "recovered_from_degraded",
    "recovered_from_down",
];
/// The `job_kind` values (`JobWork::kind`) and the `outcome` values of a job (`app::jobs`).
pub const JOB_KINDS: [&str; 7] = [
    "catalog",
    "product",
    "availability",
    "pending_pulls",
    "subscribe",
    "unsubscribe",
    "fan_out_page",
];
pub const JOB_OUTCOMES: [&str; 7] = [
    "done",
    "queued",
    "partner_error",
    "not_needed",
    "failed",
    "panicked",
    "not_started",
];

/// Every counter series whose label values are known in advance, at zero: a scrape right after
/// start-up shows them all, so rates and alerts work from the first scrape (Prometheus'
/// "avoid missing metrics"). Histograms appear with their first value. seyaha-local calls it
/// after [`describe`]; the Lambda functions do not (an EMF document of zeros per invocation
/// would be billed as metrics for nothing).
pub fn initialize_at_zero() {
    use strum::VariantNames;
    for trigger in RunTrigger::VARIANTS {
        for outcome in RunOutcome::VARIANTS {
            metrics::counter!(SYNCS, "trigger" => *trigger, "outcome" => *outcome).increment(0);
        }
    }
    for name in [PRODUCTS_FETCHED, WEBHOOK_AUTH_FAILURES, DOWN_DEACTIVATIONS] {
        metrics::counter!(name).increment(0);
    }
    for record in RECORDS {
        for change in CHANGES {
            metrics::counter!(CATALOG_WRITES, "record" => record, "change" => change).increment(0);
        }
    }
    for record in REJECTED {
        metrics::counter!(REJECTIONS, "record" => record).increment(0);
    }
    for outcome in NOTIFY_OUTCOMES {
        metrics::counter!(NOTIFIES, "outcome" => outcome).increment(0);
    }
    for kind in JOB_KINDS {
        for outcome in JOB_OUTCOMES {
            metrics::counter!(JOBS, "job_kind" => kind, "outcome" => outcome).increment(0);
        }
    }
    for transition in TRANSITIONS {
        metrics::counter!(HEALTH_TRANSITIONS, "transition" => transition).increment(0);
    }
}

/// The Prometheus histogram buckets of the `_seconds` metrics: from a fast partner call to a
/// sync that holds its lease for minutes.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0, 300.0,
];

/// A sync run recorded in the sync log.
pub(crate) fn sync_run(trigger: RunTrigger, outcome: RunOutcome, duration: Duration) {
    let outcome: &'static str = outcome.into();
    metrics::counter!(SYNCS, "trigger" => <&'static str>::from(trigger), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(SYNC_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
}

pub(crate) fn products_fetched(count: u64) {
    if count > 0 {
        metrics::counter!(PRODUCTS_FETCHED).increment(count);
    }
}

/// What kind of catalog record was written or rejected.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Record {
    Activity,
    Slot,
}

impl Record {
    fn as_str(self) -> &'static str {
        match self {
            Self::Activity => RECORDS[0],
            Self::Slot => RECORDS[1],
        }
    }
}

/// How a catalog record changed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Write {
    /// Created or updated (a reactivated activity, a slot as the partner sent it).
    Upsert,
    /// An activity deactivated, or a slot closed.
    Deactivate,
    /// A deactivated activity removed after its retention.
    Remove,
}

pub(crate) fn catalog_writes(record: Record, change: Write, count: u64) {
    if count == 0 {
        return;
    }
    let change = match change {
        Write::Upsert => CHANGES[0],
        Write::Deactivate => CHANGES[1],
        Write::Remove => CHANGES[2],
    };
    metrics::counter!(CATALOG_WRITES, "record" => record.as_str(), "change" => change)
        .increment(count);
}

/// Entries a partner sent that were refused: products (`record="product"`) or availabilities
/// (`record="availability"`).
pub(crate) fn rejections(record: Rejected, count: u64) {
    if count > 0 {
        let record = match record {
            Rejected::Product => REJECTED[0],
            Rejected::Availability => REJECTED[1],
        };
        metrics::counter!(REJECTIONS, "record" => record).increment(count);
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Rejected {
    Product,
    Availability,
}

/// A notify: `true` when the slot was updated, `false` when a fallback sync was requested.
pub(crate) fn notify(updated: bool) {
    metrics::counter!(NOTIFIES, "outcome" => if updated { NOTIFY_OUTCOMES[0] } else { NOTIFY_OUTCOMES[1] }).increment(1);
}

pub(crate) fn webhook_auth_failure() {
    metrics::counter!(WEBHOOK_AUTH_FAILURES).increment(1);
}

/// One call to a partner: `operation` is the client's fixed name of the call (e.g.
/// `GET /products/{id}`, never the URL), `status` the HTTP status when one came back.
pub(crate) fn partner_call(operation: &'static str, status: Option<u16>, elapsed: Duration) {
    let status_class = match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        // No answer (connect, timeout, too many redirects, a body that could not be read), or a
        // status outside the classes.
        _ => "error",
    };
    metrics::histogram!(PARTNER_CALL_DURATION, "operation" => operation, "status_class" => status_class).record(elapsed.as_secs_f64());
}

/// A queue job a worker ran (or had no time to start); both values are from [`JOB_KINDS`] and
/// [`JOB_OUTCOMES`] (a test keeps `JobWork::kind` and the worker's outcomes in them).
pub(crate) fn job(job_kind: &'static str, outcome: &'static str) {
    debug_assert!(
        JOB_KINDS.contains(&job_kind) && JOB_OUTCOMES.contains(&outcome),
        "{job_kind}/{outcome}"
    );
    metrics::counter!(JOBS, "job_kind" => job_kind, "outcome" => outcome).increment(1);
}

/// A health state change that was written (`Unchanged` is not one).
pub(crate) fn health_transition(transition: HealthTransition) {
    let transition = match transition {
        HealthTransition::Unchanged => return,
        HealthTransition::BecameDegraded => TRANSITIONS[0],
        HealthTransition::BecameDown => TRANSITIONS[1],
        HealthTransition::RecoveredFromDegraded => TRANSITIONS[2],
        HealthTransition::RecoveredFromDown => TRANSITIONS[3],
    };
    metrics::counter!(HEALTH_TRANSITIONS, "transition" => transition).increment(1);
}

/// DOWN deactivated an integration's catalog.
pub(crate) fn down_deactivation() {
    metrics::counter!(DOWN_DEACTIVATIONS).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_snake_case_and_say_their_unit() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a metric is listed twice");
        for metric in ALL {
            assert!(metric.name.starts_with("seyaha_"), "{}", metric.name);
            assert!(
                metric
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                metric.name
            );
            let suffix = match (metric.kind, metric.unit) {
                (Kind::Counter, Unit::Count) => "_total",
                (Kind::Histogram, Unit::Seconds) => "_seconds",
                other => panic!("{}: no naming rule for {other:?}", metric.name),
            };
            assert!(
                metric.name.ends_with(suffix),
                "{} ends with {suffix}",
                metric.name
            );
        }
    }
}
