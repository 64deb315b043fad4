//! The per-activity diff: what a sync must write, given what is stored.

use std::collections::HashMap;

use crate::domain::{
    Activity, ActivityState, CatalogLimits, CatalogUsage, ContentHash, SyncCounts,
};

/// What to write: created, changed and returning activities, and names to deactivate.
#[derive(Debug, Default)]
pub struct CatalogDiff {
    pub to_write: Vec<Activity>,
    pub to_deactivate: Vec<String>,
    pub counts: SyncCounts,
}

/// Compares the payload's activities with the stored states by content hash, with no cap. A
/// stored but inactive activity that is back in the payload counts as updated (it is
/// reactivated); active activities missing from the payload are deactivated, never deleted.
pub fn diff_catalog(
    incoming: Vec<Activity>,
    stored: Vec<ActivityState>,
    rejected: u64,
) -> CatalogDiff {
    let mut diff = StreamingDiff::new(stored, CatalogLimits::unlimited());
    let to_write = incoming
        .into_iter()
        .filter_map(|activity| {
            let bytes = activity.stored_bytes();
            match diff.incoming(activity, bytes) {
                Incoming::Write(activity) => Some(activity),
                Incoming::Unchanged | Incoming::Refused { .. } => None,
            }
        })
        .collect();
    let (to_deactivate, mut counts, _) = diff.finish();
    counts.rejected = rejected;
    CatalogDiff {
        to_write,
        to_deactivate,
        counts,
    }
}

/// What the diff says of one incoming activity.
#[derive(Debug)]
pub enum Incoming {
    /// New, changed or returning: write it.
    Write(Activity),
    Unchanged,
    /// Storing it would pass the integration's cap: it is rejected with `reason` (and, if an
    /// earlier version is stored, that one is deactivated like any rejected product's).
    Refused {
        activity: Activity,
        reason: String,
    },
}

/// The same diff one activity at a time, as a catalog streams in: it keeps only the stored
/// states it has not met yet (name -> content hash, active flag, size), never the incoming
/// activities, and the integration's usage against its [`CatalogLimits`]. Names must be
/// unique among the incoming (the parser rejects a duplicate).
#[derive(Debug)]
pub struct StreamingDiff {
    /// Stored states not (yet) in the payload.
    unseen: HashMap<String, (ContentHash, bool, u64)>,
    counts: SyncCounts,
    limits: CatalogLimits,
    /// Everything stored, active or not, as it will be once the accepted writes are done.
    usage: CatalogUsage,
}

impl StreamingDiff {
    pub fn new(stored: Vec<ActivityState>, limits: CatalogLimits) -> Self {
        let usage = CatalogUsage {
            activities: stored.len() as u64,
            bytes: stored
                .iter()
                .fold(0u64, |sum, state| sum.saturating_add(state.stored_bytes)),
        };
        let unseen = stored
            .into_iter()
            .map(|s| {
                (
                    s.internal_name,
                    (s.content_hash, s.is_active, s.stored_bytes),
                )
            })
            .collect();
        Self {
            unseen,
            counts: SyncCounts::default(),
            limits,
            usage,
        }
    }

    /// One incoming activity of `bytes` ([`Activity::stored_bytes`]).
    pub fn incoming(&mut self, activity: Activity, bytes: u64) -> Incoming {
        match self.unseen.remove(&activity.internal_name) {
            None => {
                if let Some(reason) = self.limits.refusal(self.usage, 1, bytes) {
                    return Incoming::Refused { activity, reason };
                }
                self.usage.activities += 1;
                self.usage.bytes = self.usage.bytes.saturating_add(bytes);
                self.counts.created += 1;
            }
            Some((hash, active, stored)) if hash != activity.content_hash || !active => {
                if let Some(reason) =
                    self.limits
                        .refusal(self.usage, 0, bytes.saturating_sub(stored))
                {
                    self.unseen
                        .insert(activity.internal_name.clone(), (hash, active, stored));
                    return Incoming::Refused { activity, reason };
                }
                self.usage.bytes = self
                    .usage
                    .bytes
                    .saturating_sub(stored)
                    .saturating_add(bytes);
                self.counts.updated += 1;
            }
            Some(_) => {
                self.counts.synced += 1;
                self.counts.unchanged += 1;
                return Incoming::Unchanged;
            }
        }
        self.counts.synced += 1;
        Incoming::Write(activity)
    }

    /// Counts so far (created, updated and unchanged; nothing deactivated yet).
    pub fn counts(&self) -> SyncCounts {
        self.counts
    }

    /// The payload ended: the stored active activities it did not contain, sorted, to be
    /// deactivated, the counts with them, and what the integration stores once the writes
    /// are done (deactivated activities stay stored).
    pub fn finish(self) -> (Vec<String>, SyncCounts, CatalogUsage) {
        let mut to_deactivate: Vec<String> = self
            .unseen
            .into_iter()
            .filter(|(_, (_, active, _))| *active)
            .map(|(name, _)| name)
            .collect();
        to_deactivate.sort();
        let counts = SyncCounts {
            deactivated: to_deactivate.len() as u64,
            ..self.counts
        };
        (to_deactivate, counts, self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExternalSync, Timestamp};

    pub(super) fn activity(name: &str, hash: &str) -> Activity {
        Activity {
            internal_name: name.into(),
            activity_title: name.into(),
            external_sync: ExternalSync {
                external_id: name.into(),
            },
            variations: Vec::new(),
            is_active: true,
            content_hash: ContentHash::of(hash.as_bytes()),
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    fn state(name: &str, hash: &str, active: bool) -> ActivityState {
        ActivityState {
            internal_name: name.into(),
            content_hash: ContentHash::of(hash.as_bytes()),
            is_active: active,
            stored_bytes: 100,
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    #[test]
    fn classifies_every_case() {
        let incoming = vec![
            activity("new", "1"),
            activity("same", "2"),
            activity("changed", "3b"),
            activity("back", "4"),
        ];
        let stored = vec![
            state("same", "2", true),
            state("changed", "3a", true),
            state("back", "4", false),
            state("gone", "5", true),
            state("long-gone", "6", false),
        ];
        let diff = diff_catalog(incoming, stored, 2);
        let written: Vec<_> = diff
            .to_write
            .iter()
            .map(|a| a.internal_name.as_str())
            .collect();
        assert_eq!(written, vec!["new", "changed", "back"]);
        assert_eq!(diff.to_deactivate, vec!["gone"]);
        let c = diff.counts;
        assert_eq!(
            (
                c.synced,
                c.created,
                c.updated,
                c.unchanged,
                c.deactivated,
                c.rejected
            ),
            (4, 1, 2, 1, 1, 2)
        );
    }

    fn limited(max_activities: u64, max_bytes: u64) -> CatalogLimits {
        CatalogLimits {
            max_activities,
            max_bytes,
            ..CatalogLimits::default()
        }
    }

    fn written(outcome: Incoming) -> Option<String> {
        match outcome {
            Incoming::Write(activity) => Some(activity.internal_name),
            Incoming::Unchanged | Incoming::Refused { .. } => None,
        }
    }

    #[test]
    fn new_activities_past_the_count_cap_are_refused_and_inactive_ones_count() {
        // Two stored (one inactive) and a cap of three: one new activity fits, the next not.
        let mut diff = StreamingDiff::new(
            vec![state("a", "1", true), state("old", "2", false)],
            limited(3, u64::MAX),
        );
        assert_eq!(
            written(diff.incoming(activity("b", "3"), 100)),
            Some("b".into())
        );
        match diff.incoming(activity("c", "4"), 100) {
            Incoming::Refused { reason, .. } => {
                assert!(
                    reason
                        .starts_with("catalog limit: this integration already stores 3 activities"),
                    "{reason}"
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // A changed or returning activity adds nothing to the count: still written.
        assert_eq!(
            written(diff.incoming(activity("old", "2b"), 100)),
            Some("old".into())
        );
        let (deactivated, counts, usage) = diff.finish();
        assert_eq!(deactivated, vec!["a"]);
        assert_eq!((counts.created, counts.updated, counts.synced), (1, 1, 2));
        assert_eq!(
            usage,
            CatalogUsage {
                activities: 3,
                bytes: 300
            }
        );
    }

    #[test]
    fn an_activity_that_would_pass_the_byte_cap_is_refused_and_its_stored_version_deactivated() {
        let mut diff = StreamingDiff::new(vec![state("a", "1", true)], limited(10, 1_000));
        assert_eq!(
            written(diff.incoming(activity("b", "2"), 800)),
            Some("b".into())
        );
        // `a` grows from 100 to 200 bytes: 1,000 in all, still within the cap.
        assert_eq!(
            written(diff.incoming(activity("a", "1b"), 200)),
            Some("a".into())
        );
        match diff.incoming(activity("c", "3"), 1) {
            Incoming::Refused { reason, .. } => {
                assert!(reason.contains("past 1000 bytes"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let mut diff = StreamingDiff::new(vec![state("a", "1", true)], limited(10, 150));
        assert!(matches!(
            diff.incoming(activity("a", "1b"), 151),
            Incoming::Refused { .. }
        ));
        let (deactivated, _, usage) = diff.finish();
        assert_eq!(
            deactivated,
            vec!["a"],
            "a refused change leaves the stored version to be deactivated"
        );
        assert_eq!(
            usage,
            CatalogUsage {
                activities: 1,
                bytes: 100
            }
        );
    }

    #[test]
    fn an_identical_catalog_writes_nothing() {
        let incoming: Vec<_> = (0..50)
            .map(|i| activity(&format!("p{i}"), &format!("h{i}")))
            .collect();
        let stored: Vec<_> = (0..50)
            .map(|i| state(&format!("p{i}"), &format!("h{i}"), true))
            .collect();
        let diff = diff_catalog(incoming, stored, 0);
        assert!(diff.to_write.is_empty() && diff.to_deactivate.is_empty());
        assert_eq!(diff.counts.unchanged, 50);
    }
}

#[cfg(test)]
mod properties {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::tests::activity;
    use super::*;

    proptest! {
        /// Applying the diff to the stored catalog gives exactly the incoming catalog as the
        /// active set, and every write was necessary.
        #[test]
        fn applying_the_diff_converges(
            stored in prop::collection::btree_map("[a-h]", (0u8..3, any::<bool>()), 0..8),
            incoming in prop::collection::btree_map("[a-h]", 0u8..3, 0..8),
        ) {
            let states = stored.iter().map(|(n, (h, a))| ActivityState { internal_name: n.clone(), content_hash: ContentHash::of(h.to_string().as_bytes()), is_active: *a, stored_bytes: 1, updated_at: crate::domain::Timestamp::from_unix_millis(0) }).collect();
            let diff = diff_catalog(incoming.iter().map(|(n, h)| activity(n, &h.to_string())).collect(), states, 0);

            let mut result: BTreeMap<String, (ContentHash, bool)> = stored.iter().map(|(n, (h, a))| (n.clone(), (ContentHash::of(h.to_string().as_bytes()), *a))).collect();
            for written in &diff.to_write {
                result.insert(written.internal_name.clone(), (written.content_hash, true));
            }
            for name in &diff.to_deactivate {
                result.get_mut(name).unwrap().1 = false;
            }
            let active: BTreeMap<String, ContentHash> = result.iter().filter(|(_, (_, a))| *a).map(|(n, (h, _))| (n.clone(), *h)).collect();
            let expected: BTreeMap<String, ContentHash> = incoming.iter().map(|(n, h)| (n.clone(), ContentHash::of(h.to_string().as_bytes()))).collect();
            prop_assert_eq!(active, expected);

            // Nothing written that was already right; nothing deleted.
            for written in &diff.to_write {
                let before = stored.get(&written.internal_name).map(|(h, a)| (ContentHash::of(h.to_string().as_bytes()), *a));
                prop_assert_ne!(before, Some((written.content_hash, true)));
            }
            let names: BTreeSet<_> = result.keys().cloned().collect();
            prop_assert!(stored.keys().all(|n| names.contains(n)));
            let c = diff.counts;
            prop_assert_eq!(c.created + c.updated + c.unchanged, c.synced);
            prop_assert_eq!(c.created + c.updated, diff.to_write.len() as u64);
        }
    }
}
