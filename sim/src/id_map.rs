//! Per-user and per-connection tables for the simulation's hot paths: an entry is found by
//! hashing its id once instead of comparing it against the ids along a B-tree path (one
//! compare and one pointer chase per level, the largest flat cost of a 10k-user run).
//!
//! An [`IdMap`] ([`UserMap`], [`ConnMap`]) is core's [`IdTable`], for lookups only: hash
//! order must never reach any output. Code that must visit every entry sorts the keys first
//! or reduces them with an order-free `min`. The simulation's user ids are generated, so the
//! fixed hash is safe here.

use gauntlet_core::{ConnId, IdTable, UserId};

/// A lookup-only map keyed by a small id (never iterate it in hash order: sort first, or
/// reduce with an order-free operation such as `min`).
pub(crate) type IdMap<K, V> = IdTable<K, V>;

/// A lookup-only map keyed by user (never iterate it: its order is the hash order).
pub(crate) type UserMap<V> = IdMap<UserId, V>;

/// A lookup-only map keyed by connection (never iterate it in hash order: sort first).
pub(crate) type ConnMap<V> = IdMap<ConnId, V>;

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
}
