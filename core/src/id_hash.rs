//! Hash maps for lookup-only tables keyed by ids that the gateway or its driver assign
//! (connections, runs), never by anything a client chooses.
//!
//! A B-tree lookup compares the key at every level of a path that a large gateway mostly
//! has out of cache; hashing a counter id costs a multiply and usually one miss. Hash order
//! is not part of any contract, so it must never reach an output (the log, frames, the
//! state hash): [`IdTable`] therefore has no iterator (a walk goes through
//! [`IdTable::sorted`]), and clippy's `HashMap` ban is lifted inside it alone. [`IdHasher`]
//! is fixed and not collision-resistant, so its keys must never be chosen by a client.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::ConnId;

/// A fixed multiply-rotate hash (the `FxHash` scheme) for short ids that the gateway or its
/// driver assign: fast, and the same on every run and machine.
#[derive(Default)]
pub struct IdHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(<[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes));
        }
        for b in words.remainder() {
            self.add(u64::from(*b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A lookup-only map keyed by an assigned id. It has no iterator, so no hash order can
/// reach an output: the module's "never iterate" rule is enforced by the type. Tables whose
/// contents must be walked keep a `BTreeMap` beside or instead of it.
pub struct IdTable<K, V> {
    #[allow(clippy::disallowed_types)] // lookup-only by construction: no method iterates
    map: std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>,
}

impl<K: Clone, V: Clone> Clone for IdTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            map: self.map.clone(),
        }
    }
}

impl<K, V> Default for IdTable<K, V> {
    fn default() -> Self {
        Self {
            map: Default::default(),
        }
    }
}

impl<K: Eq + Hash, V> IdTable<K, V> {
    /// The value of `key`, if any.
    #[inline]
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// The value of `key` for changing, if any.
    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key)
    }

    /// Whether `key` has a value.
    #[inline]
    pub fn contains_key(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// Sets the value of `key`, returning the one it replaces.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }

    /// Removes and returns the value of `key`.
    #[inline]
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }

    /// The value of `key`, inserting `make()` first when there is none.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.map.entry(key).or_insert_with(make)
    }

    /// The entry of `key`, to read or change in place.
    #[inline]
    pub fn entry(&mut self, key: K) -> std::collections::hash_map::Entry<'_, K, V> {
        self.map.entry(key)
    }

    /// Keeps only the entries `keep` accepts. `keep` is `Fn`, not `FnMut`: it decides one
    /// entry at a time and cannot collect what it sees in hash order.
    pub fn retain(&mut self, keep: impl Fn(&K, &mut V) -> bool) {
        self.map.retain(|k, v| keep(k, v));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every entry, keeping the allocation.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl<K: Eq + Hash + Ord, V> IdTable<K, V> {
    /// Every entry in key order: the only way to walk the table, so a walk never shows hash
    /// order (it sorts, so it is for rare walks, not hot paths).
    pub fn sorted(&self) -> Vec<(&K, &V)> {
        let mut entries: Vec<(&K, &V)> = self.map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries
    }

    /// The smallest key, if any.
    pub fn min_key(&self) -> Option<&K> {
        self.map.keys().min()
    }
}

impl<K: fmt::Debug + Eq + Hash + Ord, V: fmt::Debug> fmt::Debug for IdTable<K, V> {
    /// Entries in key order, so even a debug dump never shows hash order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.sorted()).finish()
    }
}

/// A lookup-only map keyed by connection.
pub(crate) type ConnTable<V> = IdTable<ConnId, V>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_table_lookup_finds_each_connections_own_value() {
        let mut m: ConnTable<u64> = ConnTable::default();
        for i in 0..5000u64 {
            m.insert(ConnId::new(i), i * 3);
        }
        m.remove(&ConnId::new(7));
        assert_eq!(m.len(), 4999);
        assert_eq!(m.get(&ConnId::new(0)), Some(&0));
        assert_eq!(m.get(&ConnId::new(4999)), Some(&14_997));
        assert_eq!(m.get(&ConnId::new(7)), None);
        assert_eq!(m.get(&ConnId::new(5000)), None);
    }

    #[test]
    fn id_hasher_differs_for_ids_differing_in_one_byte_past_a_word() {
        let h = |s: &str| {
            let mut x = IdHasher::default();
            x.write(s.as_bytes());
            x.finish()
        };
        assert_ne!(h("abcdefgh1"), h("abcdefgh2"));
        assert_ne!(h("abcdefgh"), h("abcdefgi"));
        assert_eq!(h("u42"), h("u42"));
    }
}
