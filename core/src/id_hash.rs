//! Hash maps for lookup-only tables keyed by ids that the gateway or its driver assign
//! (connections, runs), never by anything a client chooses.
//!
//! A B-tree lookup compares the key at every level of a path that a large gateway mostly
//! has out of cache; hashing a counter id costs a multiply and usually one miss. These maps
//! must never be iterated where the order could reach an output (the log, frames, the state
//! hash): hash order is not part of any contract, which is why clippy's `HashMap` ban is
//! lifted for [`IdTable`] alone. [`IdHasher`] is fixed and not collision-resistant, so its
//! keys must never be chosen by a client.

use std::hash::{BuildHasherDefault, Hasher};

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

/// A lookup-only map keyed by an assigned id (never iterate it where order reaches output).
#[allow(clippy::disallowed_types)] // lookup-only by contract (module doc): no order reaches output
pub type IdTable<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IdHasher>>;

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
