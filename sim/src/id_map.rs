//! Per-user and per-connection tables for the simulation's hot paths: an entry is found by
//! hashing its id once instead of comparing it against the ids along a B-tree path (one
//! compare and one pointer chase per level, the largest flat cost of a 10k-user run).
//!
//! An [`IdMap`] ([`UserMap`], [`ConnMap`]) is for lookups only: hash order must never reach
//! any output (that is why clippy's `HashMap` ban is lifted for this one alias). Code that must
//! visit every entry sorts the keys first or reduces them with an order-free `min`.

use std::hash::{BuildHasherDefault, Hasher};

use gauntlet_core::{ConnId, UserId};

/// A lookup-only map keyed by a small id (never iterate it in hash order: sort first, or
/// reduce with an order-free operation such as `min`).
#[allow(clippy::disallowed_types)] // lookup-only by contract (module doc): no order reaches output
pub(crate) type IdMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A lookup-only map keyed by user (never iterate it: its order is the hash order).
pub(crate) type UserMap<V> = IdMap<UserId, V>;

/// A lookup-only map keyed by connection (never iterate it in hash order: sort first).
pub(crate) type ConnMap<V> = IdMap<ConnId, V>;

/// A fixed multiply-rotate hash (the `FxHash` scheme) for short, trusted ids: fast, and the
/// same on every run. Not collision-resistant against chosen keys; sim ids are generated.
#[derive(Default)]
pub(crate) struct IdHasher {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn user_map_lookup_finds_each_users_own_value() {
        let mut m: UserMap<u32> = UserMap::default();
        for i in 0..1000u32 {
            m.insert(user(&format!("u{i}")), i);
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&user("u0")), Some(&0));
        assert_eq!(m.get(&user("u999")), Some(&999));
        assert_eq!(m.get(&user("u1000")), None);
    }

    #[test]
    fn conn_map_lookup_finds_each_connections_own_value() {
        let mut m: ConnMap<u64> = ConnMap::default();
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
