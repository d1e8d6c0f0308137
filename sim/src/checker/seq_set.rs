//! A set of stream seqs stored as sorted, disjoint, non-adjacent inclusive ranges.
//!
//! A connection receives its user's stream almost entirely in increasing runs (live events,
//! then a backfill), so the set of seqs it has seen is a handful of ranges however long the
//! run: one range per gap instead of one tree node slot per frame.

/// Seqs seen, as ranges `(first, last)` sorted by `first`, never overlapping or touching.
#[derive(Default, Debug)]
pub(crate) struct SeqSet {
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds `seq`; false when it was already there (as `BTreeSet::insert`).
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        // The first range that starts after `seq`; the one before it may hold `seq`.
        let i = self.ranges.partition_point(|r| r.0 <= seq);
        let before = i.checked_sub(1).and_then(|j| self.ranges.get(j).copied());
        if before.is_some_and(|(_, last)| seq <= last) {
            return false;
        }
        let joins_before = before.is_some_and(|(_, last)| last.checked_add(1) == Some(seq));
        let joins_after = self
            .ranges
            .get(i)
            .is_some_and(|(first, _)| seq.checked_add(1) == Some(*first));
        match (joins_before, joins_after) {
            (true, true) => {
                let after = self.ranges.remove(i);
                if let Some(r) = self.ranges.get_mut(i - 1) {
                    r.1 = after.1;
                }
            }
            (true, false) => {
                if let Some(r) = self.ranges.get_mut(i - 1) {
                    r.1 = seq;
                }
            }
            (false, true) => {
                if let Some(r) = self.ranges.get_mut(i) {
                    r.0 = seq;
                }
            }
            (false, false) => self.ranges.insert(i, (seq, seq)),
        }
        true
    }

    /// Whether `seq` was added.
    pub(crate) fn contains(&self, seq: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.0 <= seq);
        i.checked_sub(1)
            .and_then(|j| self.ranges.get(j))
            .is_some_and(|(_, last)| seq <= *last)
    }

    /// The smallest seq in `from..=to` that was not added, if any.
    pub(crate) fn first_missing(&self, from: u64, to: u64) -> Option<u64> {
        let mut s = from;
        while s <= to {
            let i = self.ranges.partition_point(|r| r.0 <= s);
            match i.checked_sub(1).and_then(|j| self.ranges.get(j)) {
                Some((_, last)) if s <= *last => s = last.checked_add(1)?,
                _ => return Some(s),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::rng::SimRng;

    #[test]
    fn seq_set_matches_a_btree_set_on_random_inserts() {
        let mut rng = SimRng::new(7);
        let mut set = SeqSet::default();
        let mut model = BTreeSet::new();
        for _ in 0..5_000 {
            let s = 1 + rng.range(0..300);
            assert_eq!(set.insert(s), model.insert(s), "insert {s}");
        }
        for s in 0..310 {
            assert_eq!(set.first_missing(s, s).is_none(), model.contains(&s), "{s}");
            assert_eq!(set.contains(s), model.contains(&s), "{s}");
        }
        for (from, to) in [(1, 300), (5, 50), (250, 320), (0, 0)] {
            let expected = (from..=to).find(|s| !model.contains(s));
            assert_eq!(set.first_missing(from, to), expected, "{from}..={to}");
        }
    }

    #[test]
    fn seq_set_in_order_inserts_stay_one_range() {
        let mut set = SeqSet::default();
        for s in 1..=10_000 {
            assert!(set.insert(s));
        }
        assert!(!set.insert(5_000));
        assert_eq!(set.ranges, vec![(1, 10_000)]);
        assert_eq!(set.first_missing(1, 10_000), None);
        assert_eq!(set.first_missing(1, 10_001), Some(10_001));
    }

    #[test]
    fn seq_set_gap_filled_later_merges_both_sides() {
        let mut set = SeqSet::default();
        for s in [1, 2, 4, 5] {
            set.insert(s);
        }
        assert_eq!(set.first_missing(1, 5), Some(3));
        assert!(set.insert(3));
        assert_eq!(set.ranges, vec![(1, 5)]);
    }
}
