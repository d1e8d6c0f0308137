//! Virtual time.
//!
//! The gateway never reads a clock: every call to `Gateway::handle` carries `now`. This
//! module owns that `Instant` (nanoseconds since the Unix epoch, so JWT `exp`/`nbf`/`iat`
//! compare directly) and the timer table. It must never call `std::time::*::now`.

use std::collections::BTreeSet;
use std::fmt;
use std::hash::Hash;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id_hash::IdTable;

/// A point in time: nanoseconds since the Unix epoch. Built by the driver, never read from a clock here.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Instant(u64);

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl Instant {
    /// The Unix epoch.
    pub const EPOCH: Instant = Instant(0);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// An instant `secs` seconds after the epoch (saturating).
    pub const fn from_unix_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (JWT NumericDate resolution).
    pub const fn unix_secs(self) -> u64 {
        self.0 / NANOS_PER_SEC
    }

    /// Whole milliseconds since the epoch (the wire `timestamp`).
    pub const fn unix_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// `self + d`, saturating at the far future rather than wrapping.
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Self {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(nanos))
    }

    /// `self - d`, saturating at the epoch.
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Self {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self(self.0.saturating_sub(nanos))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}s",
            self.0 / NANOS_PER_SEC,
            self.0 % NANOS_PER_SEC
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A table of deadlines keyed by timer kind, in the style of quinn's `TimerTable`: timers
/// are data, and the driver only needs the earliest one. Arming is a hash lookup and a
/// logarithmic insert, finding the earliest deadline is logarithmic, so thousands of
/// connections' timers stay cheap. Kinds are found by hash (an [`IdTable`]: kinds are
/// assigned ids, never client input) and fire in `(deadline, kind)` order, never hash order.
#[derive(Clone, Debug)]
pub struct TimerTable<K: Ord + Hash> {
    by_kind: IdTable<K, Instant>,
    by_time: BTreeSet<(Instant, K)>,
}

impl<K: Ord + Hash> Default for TimerTable<K> {
    fn default() -> Self {
        Self {
            by_kind: IdTable::default(),
            by_time: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Hash + Copy> TimerTable<K> {
    /// Arms (or re-arms) `kind` to fire at `at`.
    pub fn set(&mut self, kind: K, at: Instant) {
        if let Some(old) = self.by_kind.insert(kind, at) {
            self.by_time.remove(&(old, kind));
        }
        self.by_time.insert((at, kind));
    }

    /// Disarms `kind`.
    pub fn stop(&mut self, kind: &K) {
        if let Some(old) = self.by_kind.remove(kind) {
            self.by_time.remove(&(old, *kind));
        }
    }

    /// When `kind` fires, if armed.
    pub fn get(&self, kind: &K) -> Option<Instant> {
        self.by_kind.get(kind).copied()
    }

    /// The earliest armed deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns the earliest timer due at or before `now` (ties in key order).
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (at, kind) = *self.by_time.first()?;
        if at > now {
            return None;
        }
        self.by_time.pop_first();
        self.by_kind.remove(&kind);
        Some(kind)
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.by_kind.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.by_kind.is_empty()
    }

    /// Disarms everything.
    pub fn clear(&mut self) {
        self.by_kind.clear();
        self.by_time.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_unix_secs(10);
        assert_eq!(t.saturating_sub(Duration::from_secs(20)), Instant::EPOCH);
        assert_eq!(
            Instant::from_nanos(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .as_nanos(),
            u64::MAX
        );
        assert_eq!(
            t.saturating_add(Duration::from_millis(1500)).unix_millis(),
            11_500
        );
        assert_eq!(
            Instant::from_unix_secs(3).saturating_since(t),
            Duration::ZERO
        );
    }

    #[test]
    fn timer_table_expires_due_timers_in_key_order() {
        let mut t = TimerTable::default();
        t.set(3u8, Instant::from_unix_secs(5));
        t.set(1u8, Instant::from_unix_secs(7));
        t.set(2u8, Instant::from_unix_secs(5));
        assert_eq!(t.next_deadline(), Some(Instant::from_unix_secs(5)));
        let due: Vec<u8> = std::iter::from_fn(|| t.pop_due(Instant::from_unix_secs(6))).collect();
        assert_eq!(due, vec![2, 3]);
        assert_eq!(t.len(), 1);
        t.set(1u8, Instant::from_unix_secs(9));
        t.set(4u8, Instant::from_unix_secs(8));
        assert_eq!(t.next_deadline(), Some(Instant::from_unix_secs(8)));
        t.stop(&4);
        assert_eq!(
            (t.len(), t.next_deadline()),
            (1, Some(Instant::from_unix_secs(9)))
        );
        assert_eq!(t.pop_due(Instant::from_unix_secs(8)), None);
    }
}
