//! A map whose entries each die at a deadline, indexed by that deadline so the dead come off
//! the front instead of a scan of every entry. The refresh families, the redeemed OAuth codes
//! and the pending OAuth states and codes live in one: their stores hold 10 000 to 100 000
//! entries and prune on every sign-in or authorize once full, which made each of those a walk
//! of the whole store before.
//!
//! The map and its index change together in every method, so they cannot disagree: there is
//! no `get_mut` through which a deadline could move unseen ([`ExpiringMap::update`] re-indexes).
//! It never reads the clock; the caller says what is dead.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use crate::Instant;

/// An entry that dies at a deadline it carries.
pub(crate) trait Expiring {
    /// When the entry dies (the caller's `dead` decides what "at" means, e.g. plus a leeway).
    fn deadline(&self) -> Instant;
}

/// A boxed entry dies when its contents do.
impl<T: Expiring> Expiring for Box<T> {
    fn deadline(&self) -> Instant {
        (**self).deadline()
    }
}

/// Entries by key, and their keys by deadline (then by key, so two may share one).
#[derive(Clone, Debug)]
pub(crate) struct ExpiringMap<K, V> {
    entries: BTreeMap<K, V>,
    by_deadline: BTreeSet<(Instant, K)>,
}

impl<K, V> Default for ExpiringMap<K, V> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            by_deadline: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V: Expiring> ExpiringMap<K, V> {
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(key)
    }

    /// Stores `value` under `key`, returning the entry it replaced.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let at = value.deadline();
        let old = self.entries.insert(key.clone(), value);
        if let Some(old) = old.as_ref().filter(|old| old.deadline() != at) {
            self.by_deadline.remove(&(old.deadline(), key.clone()));
        }
        self.by_deadline.insert((at, key));
        old
    }

    /// Removes `key`'s entry. The index is updated with the map's own copy of the key, so a
    /// borrowed key (`&str` for a `String`) costs no allocation.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (key, value) = self.entries.remove_entry(key)?;
        self.by_deadline.remove(&(value.deadline(), key));
        Some(value)
    }

    /// Applies `change` to `key`'s entry and re-indexes it if its deadline moved; `None` if
    /// there is no such entry.
    pub(crate) fn update<Q, R>(&mut self, key: &Q, change: impl FnOnce(&mut V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let entry = self.entries.get_mut(key)?;
        let before = entry.deadline();
        let out = change(entry);
        let after = entry.deadline();
        if after != before
            && let Some((key, _)) = self.entries.get_key_value(key)
            && let Some((_, key)) = self.by_deadline.take(&(before, key.clone()))
        {
            self.by_deadline.insert((after, key));
        }
        Some(out)
    }

    /// Removes every entry whose deadline `dead` says has passed, earliest first: the front
    /// of the index, never a scan of the rest.
    pub(crate) fn remove_dead(&mut self, dead: impl Fn(Instant) -> bool) {
        while self.pop_dead(&dead).is_some() {}
    }

    /// Removes and returns the entry with the earliest deadline if `dead` says that deadline
    /// has passed. Liveness only grows with the deadline, so the dead entries are a prefix of
    /// the index.
    fn pop_dead(&mut self, dead: impl Fn(Instant) -> bool) -> Option<(K, V)> {
        let (at, _) = self.by_deadline.first()?;
        if !dead(*at) {
            return None;
        }
        let (_, key) = self.by_deadline.pop_first()?;
        let value = self.entries.remove(&key)?;
        Some((key, value))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.contains_key(key)
    }

    /// The keys in key order (tests compare the kept entries with a scan's).
    #[cfg(test)]
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    /// The entries in key order.
    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }

    /// Whether the index holds exactly one entry per stored entry, at its deadline.
    #[cfg(test)]
    pub(crate) fn index_matches(&self) -> bool {
        self.by_deadline.len() == self.entries.len()
            && self
                .entries
                .iter()
                .all(|(k, v)| self.by_deadline.contains(&(v.deadline(), k.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_000 + secs)
    }

    #[derive(Debug, PartialEq)]
    struct Dies(Instant);

    impl Expiring for Dies {
        fn deadline(&self) -> Instant {
            self.0
        }
    }

    fn dead_by(now: Instant) -> impl Fn(Instant) -> bool {
        move |at| at <= now
    }

    #[test]
    fn dead_entries_come_out_earliest_first_and_moved_ones_at_their_new_deadline() {
        let mut m = ExpiringMap::default();
        m.insert("c".to_string(), Dies(t(30)));
        m.insert("a".to_string(), Dies(t(10)));
        m.insert("b".to_string(), Dies(t(20)));
        assert_eq!(m.update("a", |d| d.0 = t(40)), Some(()));
        assert_eq!(m.remove("b"), Some(Dies(t(20))));
        assert!(m.index_matches());
        assert_eq!(m.pop_dead(dead_by(t(29))), None);
        assert_eq!(
            m.pop_dead(dead_by(t(35))),
            Some(("c".to_string(), Dies(t(30))))
        );
        assert_eq!(m.pop_dead(dead_by(t(35))), None, "a moved to 40");
        assert_eq!(
            m.pop_dead(dead_by(t(40))),
            Some(("a".to_string(), Dies(t(40))))
        );
        assert!(m.is_empty() && m.index_matches());
    }

    #[test]
    fn replacing_an_entry_reindexes_it_and_returns_the_old_one() {
        let mut m = ExpiringMap::default();
        assert_eq!(m.insert("k".to_string(), Dies(t(10))), None);
        assert_eq!(m.insert("k".to_string(), Dies(t(50))), Some(Dies(t(10))));
        assert_eq!(m.insert("k".to_string(), Dies(t(50))), Some(Dies(t(50))));
        assert_eq!(m.len(), 1);
        assert!(m.index_matches());
        assert_eq!(m.pop_dead(dead_by(t(20))), None, "the old deadline is gone");
        assert_eq!(
            m.pop_dead(dead_by(t(50))),
            Some(("k".to_string(), Dies(t(50))))
        );
    }

    #[test]
    fn remove_dead_takes_exactly_the_dead_whatever_their_insertion_order() {
        let mut m = ExpiringMap::default();
        for (k, at) in [(1u32, 30), (2, 10), (3, 40), (4, 20)] {
            m.insert(k, Dies(t(at)));
        }
        m.remove_dead(dead_by(t(25)));
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert!(m.index_matches());
        m.remove_dead(dead_by(t(40)));
        assert!(m.is_empty() && m.index_matches());
    }

    #[test]
    fn missing_keys_change_nothing() {
        let mut m: ExpiringMap<String, Dies> = ExpiringMap::default();
        m.insert("k".to_string(), Dies(t(10)));
        assert_eq!(m.remove("x"), None);
        assert_eq!(m.update("x", |d| d.0 = t(99)), None);
        assert!(!m.contains_key("x") && m.contains_key("k"));
        assert_eq!(m.get("k"), Some(&Dies(t(10))));
        assert!(m.index_matches());
    }

    #[test]
    fn an_update_that_keeps_the_deadline_keeps_the_entry_where_it_was() {
        let mut m = ExpiringMap::default();
        m.insert(1u32, Dies(t(10)));
        m.insert(2u32, Dies(t(10)));
        assert_eq!(m.update(&2, |d| d.0), Some(t(10)));
        assert!(m.index_matches());
        assert_eq!(m.pop_dead(dead_by(t(10))).map(|(k, _)| k), Some(1));
        assert_eq!(m.pop_dead(dead_by(t(10))).map(|(k, _)| k), Some(2));
    }
}
