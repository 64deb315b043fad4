//! The per-activity diff: what a sync must write, given what is stored.

use std::collections::HashMap;

use crate::domain::{Activity, ActivityState, ContentHash, SyncCounts};

/// What to write: created, changed and returning activities, and names to deactivate.
#[derive(Debug, Default)]
pub struct CatalogDiff {
    pub to_write: Vec<Activity>,
    pub to_deactivate: Vec<String>,
    pub counts: SyncCounts,
}

/// Compares the payload's activities with the stored states by content hash. A stored but
/// inactive activity that is back in the payload counts as updated (it is reactivated);
/// active activities missing from the payload are deactivated, never deleted.
pub fn diff_catalog(incoming: Vec<Activity>, stored: Vec<ActivityState>, rejected: u64) -> CatalogDiff {
    let mut diff = StreamingDiff::new(stored);
    let to_write = incoming.into_iter().filter_map(|activity| diff.incoming(activity)).collect();
    let (to_deactivate, mut counts) = diff.finish();
    counts.rejected = rejected;
    CatalogDiff { to_write, to_deactivate, counts }
}

/// The same diff one activity at a time, as a catalog streams in: it keeps only the stored
/// states it has not met yet (name -> content hash), never the incoming activities. Names
/// must be unique among the incoming (the parser rejects a duplicate).
#[derive(Debug)]
pub struct StreamingDiff {
    /// Stored states not (yet) in the payload.
    unseen: HashMap<String, (ContentHash, bool)>,
    counts: SyncCounts,
}

impl StreamingDiff {
    pub fn new(stored: Vec<ActivityState>) -> Self {
        let unseen = stored.into_iter().map(|s| (s.internal_name, (s.content_hash, s.is_active))).collect();
        Self { unseen, counts: SyncCounts::default() }
    }

    /// One incoming activity: itself when it must be written (new, changed or returning).
    pub fn incoming(&mut self, activity: Activity) -> Option<Activity> {
        self.counts.synced += 1;
        match self.unseen.remove(&activity.internal_name) {
            None => self.counts.created += 1,
            Some((hash, active)) if hash != activity.content_hash || !active => self.counts.updated += 1,
            Some(_) => {
                self.counts.unchanged += 1;
                return None;
            }
        }
        Some(activity)
    }

    /// Counts so far (created, updated and unchanged; nothing deactivated yet).
    pub fn counts(&self) -> SyncCounts {
        self.counts
    }

    /// The payload ended: the stored active activities it did not contain, sorted, to be
    /// deactivated, and the counts with them.
    pub fn finish(self) -> (Vec<String>, SyncCounts) {
        let mut to_deactivate: Vec<String> = self.unseen.into_iter().filter(|(_, (_, active))| *active).map(|(name, _)| name).collect();
        to_deactivate.sort();
        let counts = SyncCounts { deactivated: to_deactivate.len() as u64, ..self.counts };
        (to_deactivate, counts)
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
            external_sync: ExternalSync { external_id: name.into() },
            variations: Vec::new(),
            is_active: true,
            content_hash: ContentHash::of(hash.as_bytes()),
            updated_at: Timestamp::from_unix_millis(0),
        }
    }

    fn state(name: &str, hash: &str, active: bool) -> ActivityState {
        ActivityState { internal_name: name.into(), content_hash: ContentHash::of(hash.as_bytes()), is_active: active }
    }

    #[test]
    fn classifies_every_case() {
        let incoming = vec![activity("new", "1"), activity("same", "2"), activity("changed", "3b"), activity("back", "4")];
        let stored = vec![
            state("same", "2", true),
            state("changed", "3a", true),
            state("back", "4", false),
            state("gone", "5", true),
            state("long-gone", "6", false),
        ];
        let diff = diff_catalog(incoming, stored, 2);
        let written: Vec<_> = diff.to_write.iter().map(|a| a.internal_name.as_str()).collect();
        assert_eq!(written, vec!["new", "changed", "back"]);
        assert_eq!(diff.to_deactivate, vec!["gone"]);
        let c = diff.counts;
        assert_eq!((c.synced, c.created, c.updated, c.unchanged, c.deactivated, c.rejected), (4, 1, 2, 1, 1, 2));
    }

    #[test]
    fn an_identical_catalog_writes_nothing() {
        let incoming: Vec<_> = (0..50).map(|i| activity(&format!("p{i}"), &format!("h{i}"))).collect();
        let stored: Vec<_> = (0..50).map(|i| state(&format!("p{i}"), &format!("h{i}"), true)).collect();
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
            let states = stored.iter().map(|(n, (h, a))| ActivityState { internal_name: n.clone(), content_hash: ContentHash::of(h.to_string().as_bytes()), is_active: *a }).collect();
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
