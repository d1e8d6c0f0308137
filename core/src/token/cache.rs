//! The validation cache: positive validation results keyed by the full token bytes.
//!
//! A lookup compares the whole token, so no collision of a short hash can make a forged
//! token hit a cached positive. Bounded: when full, the entry that expires first is evicted
//! (deterministic: ties broken by insertion order). It must never hold a negative result,
//! never serve an entry without the caller re-checking time and revocation, and never keep
//! an entry across a key-ring change.

use std::collections::BTreeMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use crate::Instant;

use super::claims::Claims;

/// Hash state for the token map. A fixed key keeps the core deterministic (no OS
/// randomness); that is safe against collision flooding because only tokens whose
/// signature verified are ever inserted, and those only the issuer can mint.
type FixedState = BuildHasherDefault<TailHasher>;

/// Bytes of each written slice that are hashed: the tail of a compact JWS is its signature
/// (43 to 86+ base64url chars), which already differs between any two tokens an issuer mints,
/// so hashing the whole ~400-byte token buys nothing. Equality is still decided by comparing
/// the full token bytes on a hit, so a hash collision costs one compare, never a false hit.
const HASHED_TAIL: usize = 32;

/// SipHash-1-3 (std's `DefaultHasher`, fixed key) over the length and last [`HASHED_TAIL`]
/// bytes of each slice. `[u8]` and `Arc<[u8]>` hash through the same calls, so lookups by
/// `&[u8]` stay consistent with the stored keys.
#[derive(Default)]
struct TailHasher(DefaultHasher);

impl std::hash::Hasher for TailHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        let start = bytes.len().saturating_sub(HASHED_TAIL);
        self.0.write(bytes.get(start..).unwrap_or(bytes));
    }

    fn write_usize(&mut self, n: usize) {
        self.0.write_usize(n);
    }
}

// The map is only ever looked up by key and never iterated, so its order cannot leak into
// any output; the BTreeMap index below gives deterministic eviction.
#[allow(clippy::disallowed_types)]
type TokenMap = std::collections::HashMap<Arc<[u8]>, Entry, FixedState>;

/// Counters for tests, benches and bounded-memory checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found an entry.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Entries currently held.
    pub len: usize,
}

/// One cached positive result.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) claims: Claims,
    /// The revocation-list generation this entry was last checked against.
    pub(crate) revocation_generation: u64,
    /// Index key in `ValidationCache::by_deadline`.
    deadline: (Instant, u64),
}

#[derive(Clone, Debug)]
pub(crate) struct ValidationCache {
    map: TokenMap,
    /// Entries by (end of validity, insertion number): eviction and pruning order.
    by_deadline: BTreeMap<(Instant, u64), Arc<[u8]>>,
    capacity: usize,
    next_seq: u64,
    ring_generation: u64,
    hits: u64,
    misses: u64,
}

impl ValidationCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: TokenMap::default(),
            by_deadline: BTreeMap::new(),
            capacity,
            next_seq: 0,
            ring_generation: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// Drops everything if the key ring changed since the entries were validated.
    // `#[inline]` here and on `get`: they are most of a cache hit, and whether LLVM inlined
    // them on its own moved with unrelated code (a serde_json feature cost 7 % of a hit).
    #[inline]
    pub(crate) fn sync_ring(&mut self, ring_generation: u64) {
        if ring_generation != self.ring_generation {
            self.map.clear();
            self.by_deadline.clear();
            self.ring_generation = ring_generation;
        }
    }

    /// The cached entry for `token`, counting the hit or miss.
    #[inline]
    pub(crate) fn get(&mut self, token: &[u8]) -> Option<&mut Entry> {
        match self.map.get_mut(token) {
            Some(e) => {
                self.hits += 1;
                Some(e)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Caches a positive result valid until `deadline` (the token's `exp` plus leeway).
    pub(crate) fn insert(
        &mut self,
        token: &[u8],
        claims: Claims,
        deadline: Instant,
        revocation_generation: u64,
    ) {
        if self.capacity == 0 || self.map.contains_key(token) {
            return;
        }
        while self.map.len() >= self.capacity {
            let Some((_, key)) = self.by_deadline.pop_first() else {
                break;
            };
            self.map.remove(&key);
        }
        let key: Arc<[u8]> = Arc::from(token);
        let index = (deadline, self.next_seq);
        self.next_seq += 1;
        self.by_deadline.insert(index, Arc::clone(&key));
        self.map.insert(
            key,
            Entry {
                claims,
                revocation_generation,
                deadline: index,
            },
        );
    }

    pub(crate) fn remove(&mut self, token: &[u8]) {
        if let Some(e) = self.map.remove(token) {
            self.by_deadline.remove(&e.deadline);
        }
    }

    /// Drops every entry whose deadline is at or before `now`.
    pub(crate) fn prune(&mut self, now: Instant) {
        while let Some(entry) = self.by_deadline.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.map.remove(&key);
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits,
            misses: self.misses,
            len: self.map.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;

    fn hash(bytes: &[u8]) -> u64 {
        FixedState::default().hash_one(bytes)
    }

    /// A hasher that ignored its input would still give a correct map, one whose every
    /// lookup walks a single bucket: the cache's cost would grow with its size.
    #[test]
    fn tail_hasher_hashes_the_length_and_the_tail() {
        let token = [b'a'; 100];
        let mut other_tail = token;
        other_tail[99] = b'b';
        assert_ne!(
            hash(&token),
            hash(&other_tail),
            "the signature tail is hashed"
        );
        let mut other_head = token;
        other_head[0] = b'b';
        assert_eq!(
            hash(&token),
            hash(&other_head),
            "bytes before the last HASHED_TAIL are not"
        );
        assert_ne!(
            hash(&token),
            hash(&token[1..]),
            "the length is hashed: same tail, one byte shorter"
        );
        assert_eq!(
            hash(&token),
            hash(&token),
            "a fixed key: the same bytes, the same hash"
        );
    }
}
