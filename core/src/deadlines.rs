//! Keys ordered by the instant they die, so a store prunes by taking its dead from the front
//! instead of scanning every entry (the refresh families, the redeemed OAuth codes and the
//! pending OAuth states and codes, whose stores hold 10 000 to 100 000 entries and prune on
//! every sign-in or authorize once full).
//!
//! It holds only the index: the store keeps its entries and must tell the index of every
//! insert, removal and moved deadline. It never reads the clock; the caller says what is dead.

use std::collections::BTreeSet;

use crate::Instant;

/// Keys by deadline (then by key, so two keys may share one).
#[derive(Clone, Debug)]
pub(crate) struct Deadlines<K> {
    by_deadline: BTreeSet<(Instant, K)>,
}

impl<K> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            by_deadline: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone> Deadlines<K> {
    /// Indexes `key` as dying at `at`.
    pub(crate) fn insert(&mut self, at: Instant, key: K) {
        self.by_deadline.insert((at, key));
    }

    /// Forgets `key`, indexed as dying at `at`.
    pub(crate) fn remove(&mut self, at: Instant, key: &K) {
        self.by_deadline.remove(&(at, key.clone()));
    }

    /// `key`'s deadline moved from `from` to `to`.
    pub(crate) fn moved(&mut self, from: Instant, to: Instant, key: &K) {
        if from != to {
            self.remove(from, key);
            self.insert(to, key.clone());
        }
    }

    /// Takes the key with the earliest deadline if `dead` says that deadline has passed. A
    /// store's liveness only grows with the deadline, so its dead keys are a prefix.
    pub(crate) fn pop_dead(&mut self, dead: impl Fn(Instant) -> bool) -> Option<K> {
        let (at, _) = self.by_deadline.first()?;
        if !dead(*at) {
            return None;
        }
        self.by_deadline.pop_first().map(|(_, key)| key)
    }

    /// Number of keys indexed.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_deadline.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_000 + secs)
    }

    #[test]
    fn dead_keys_come_out_earliest_first_and_moved_ones_at_their_new_deadline() {
        let mut d = Deadlines::default();
        d.insert(t(30), "c");
        d.insert(t(10), "a");
        d.insert(t(20), "b");
        d.moved(t(10), t(40), &"a");
        d.remove(t(20), &"b");
        let dead_by = |now: Instant| move |at: Instant| at <= now;
        assert_eq!(d.pop_dead(dead_by(t(29))), None);
        assert_eq!(d.pop_dead(dead_by(t(35))), Some("c"));
        assert_eq!(d.pop_dead(dead_by(t(35))), None, "a moved to 40");
        assert_eq!(d.pop_dead(dead_by(t(40))), Some("a"));
        assert_eq!(d.len(), 0);
    }
}
