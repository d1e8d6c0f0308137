//! Per-user tables for the simulation's hot paths: a user's entry is found by hashing its
//! id once instead of comparing it against the ids along a B-tree path (one string compare
//! and one pointer chase per level, the largest flat cost of a 10k-user run).
//!
//! A [`UserMap`] is for lookups only: it must never be iterated, so that hash order cannot
//! reach any output (that is why clippy's `HashMap` ban is lifted for this one alias).

use std::hash::{BuildHasherDefault, Hasher};

use gauntlet_core::UserId;

/// A lookup-only map keyed by user (never iterate it: its order is the hash order).
#[allow(clippy::disallowed_types)] // lookup-only by contract (module doc): no order reaches output
pub(crate) type UserMap<V> = std::collections::HashMap<UserId, V, BuildHasherDefault<IdHasher>>;

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
