//! [`ConnSet`]: the open connections of one user or one token, for the state's indexes of
//! them, in ascending order as a `BTreeSet` would give them.
//!
//! A user or a token holds a few connections, and fan-out reads all of a user's on every
//! stream event. Walking a `BTreeSet` of them cost some 30 instructions a connection, about
//! 400 of the 6 000 that sending one event to a user's ten connections took; a sorted `Vec` is
//! read as one slice, and holds a lone connection (the common case) in 8 bytes rather than a
//! B-tree leaf.

use crate::ids::ConnId;

/// A set of connection ids, kept sorted and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnSet(Vec<ConnId>);

impl ConnSet {
    /// Adds `conn`; false when it was already there.
    pub(crate) fn insert(&mut self, conn: ConnId) -> bool {
        // A user's or token's first connection (most have only one) is allocated exactly,
        // not through the growth path, which reserves room for four.
        if self.0.is_empty() {
            self.0 = vec![conn];
            return true;
        }
        match self.0.binary_search(&conn) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, conn);
                true
            }
        }
    }

    /// Removes `conn`; false when it was not there.
    pub(crate) fn remove(&mut self, conn: ConnId) -> bool {
        match self.0.binary_search(&conn) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether no connection is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The connections in ascending order.
    pub(crate) fn as_slice(&self) -> &[ConnId] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a ConnSet {
    type Item = &'a ConnId;
    type IntoIter = std::slice::Iter<'a, ConnId>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn conn_set_holds_what_a_btree_set_would_in_its_order() {
        let mut set = ConnSet::default();
        let mut reference = BTreeSet::new();
        // Inserts and removes in a scrambled order, repeats and misses included.
        for step in 0..200u64 {
            let conn = ConnId::new(step * 7919 % 23);
            let (ours, theirs) = if step % 3 == 2 {
                (set.remove(conn), reference.remove(&conn))
            } else {
                (set.insert(conn), reference.insert(conn))
            };
            assert_eq!(ours, theirs, "step {step}");
            let held: Vec<ConnId> = set.into_iter().copied().collect();
            assert_eq!(held, reference.iter().copied().collect::<Vec<_>>());
            assert_eq!(set.as_slice(), held.as_slice());
            assert_eq!(set.is_empty(), reference.is_empty());
        }
    }
}
