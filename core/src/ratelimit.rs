//! Token buckets on the injected clock (docs/protocol.md section 9, "Rate limits"), and the
//! bounded table of them per peer address.
//!
//! A bucket refills continuously at `rate` tokens per second up to `burst`. Arithmetic is in
//! integer nano-tokens so results are exact and identical on every machine; the bucket
//! never reads a clock: the caller passes `now`. The address table must never grow past its
//! bound nor evict a bucket in use, and never walk itself more than once a second for a
//! new address.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Instant;

const NANO: u64 = 1_000_000_000;

/// A rate: `per_second` sustained, `burst` at most at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Bucket capacity.
    pub burst: u32,
}

/// One token bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    rate: Rate,
    /// Current level in nano-tokens (1 token = 1e9).
    level: u64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Self {
            rate,
            level: u64::from(rate.burst) * NANO,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_since(self.updated);
        self.updated = self.updated.max(now);
        let add = u64::try_from(
            elapsed
                .as_nanos()
                .saturating_mul(u128::from(self.rate.per_second)),
        )
        .unwrap_or(u64::MAX);
        self.level = self
            .level
            .saturating_add(add)
            .min(u64::from(self.rate.burst) * NANO);
    }

    /// Takes one token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.level >= NANO {
            self.level -= NANO;
            return Ok(());
        }
        if self.rate.per_second == 0 {
            return Err(Duration::MAX);
        }
        let missing = NANO - self.level;
        Err(Duration::from_nanos(
            missing.div_ceil(u64::from(self.rate.per_second)),
        ))
    }

    /// Whether the bucket is full at `now` (an idle bucket can be dropped).
    pub fn is_full(&self, now: Instant) -> bool {
        let mut b = self.clone();
        b.refill(now);
        b.level >= u64::from(b.rate.burst) * NANO
    }
}

/// How often a new address meeting a full [`IpLimiter`] may walk it for idle buckets, and so
/// the longest wait it is told: buckets become idle within their refill time, a second at
/// the rates the protocol configures.
pub const IDLE_SCAN_INTERVAL: Duration = Duration::from_secs(1);

/// Token buckets per peer address, at most `max` of them (`WS-IP-TRACK-BOUND`,
/// `HTTP-IP-RATE`). Idle (full) buckets are dropped to make room; when none is idle a new
/// address is refused (fail closed), so spraying addresses can neither grow memory nor evict
/// an honest address's bucket. A walk that frees nothing is not repeated for
/// [`IDLE_SCAN_INTERVAL`]: a spray then costs one walk of the table per interval, not one
/// per request.
#[derive(Clone, Debug)]
pub struct IpLimiter {
    rate: Rate,
    max: usize,
    buckets: BTreeMap<IpAddr, TokenBucket>,
    /// When the last walk for idle buckets freed nothing.
    fruitless_scan: Option<Instant>,
    /// Charges of an unseen address that found the table full.
    full_table_charges: u64,
}

impl IpLimiter {
    /// An empty table of buckets at `rate`, at most `max` addresses.
    pub fn new(rate: Rate, max: usize) -> Self {
        Self {
            rate,
            max,
            buckets: BTreeMap::new(),
            fruitless_scan: None,
            full_table_charges: 0,
        }
    }

    /// Takes one token for `ip`, or says how long to wait.
    pub fn charge(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.max {
            self.full_table_charges = self.full_table_charges.saturating_add(1);
            // A clock that went back (a wall clock) walks again rather than wait longer.
            let since = self
                .fruitless_scan
                .filter(|at| *at <= now)
                .map(|at| now.saturating_since(at));
            if let Some(since) = since.filter(|s| *s < IDLE_SCAN_INTERVAL) {
                return Err(IDLE_SCAN_INTERVAL.saturating_sub(since));
            }
            self.drop_idle(now);
            if self.buckets.len() >= self.max {
                self.fruitless_scan = Some(now);
                return Err(IDLE_SCAN_INTERVAL);
            }
        }
        let rate = self.rate;
        self.buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now)
    }

    /// Drops every idle (full) bucket: its address is back where an unseen one starts.
    pub fn drop_idle(&mut self, now: Instant) {
        self.buckets.retain(|_, b| !b.is_full(now));
    }

    /// How many charges of an unseen address found the table full (each had to wait, or to
    /// take the place of an idle bucket).
    pub fn full_table_charges(&self) -> u64 {
        self.full_table_charges
    }

    /// Addresses tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::from_unix_secs(100);
        let mut b = TokenBucket::new(
            Rate {
                per_second: 10,
                burst: 20,
            },
            t0,
        );
        for _ in 0..20 {
            assert_eq!(b.try_take(t0), Ok(()));
        }
        assert_eq!(b.try_take(t0), Err(Duration::from_millis(100)));
        let t1 = t0.saturating_add(Duration::from_millis(100));
        assert_eq!(b.try_take(t1), Ok(()));
        assert_eq!(b.try_take(t1), Err(Duration::from_millis(100)));
        // A partly refilled bucket waits only for the part that is missing.
        let partial = t1.saturating_add(Duration::from_millis(40));
        assert_eq!(b.try_take(partial), Err(Duration::from_millis(60)));
        // One second later: exactly ten more.
        let t2 = t1.saturating_add(Duration::from_secs(1));
        let granted = (0..50).filter(|_| b.try_take(t2).is_ok()).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn bucket_refills_to_burst_only() {
        let t0 = Instant::from_unix_secs(1);
        let mut b = TokenBucket::new(
            Rate {
                per_second: 5,
                burst: 10,
            },
            t0,
        );
        assert!(b.is_full(t0));
        assert_eq!(b.try_take(t0), Ok(()));
        assert!(!b.is_full(t0));
        let later = t0.saturating_add(Duration::from_secs(3600));
        assert!(b.is_full(later));
        let granted = (0..100).filter(|_| b.try_take(later).is_ok()).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn zero_rate_never_refills() {
        let t0 = Instant::from_unix_secs(1);
        let mut b = TokenBucket::new(
            Rate {
                per_second: 0,
                burst: 1,
            },
            t0,
        );
        assert_eq!(b.try_take(t0), Ok(()));
        assert_eq!(
            b.try_take(t0.saturating_add(Duration::from_secs(9))),
            Err(Duration::MAX)
        );
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    /// The protocol's per-address rate: a used bucket is idle again within 200 ms.
    const FIVE_A_SECOND: Rate = Rate {
        per_second: 5,
        burst: 10,
    };

    fn at(ms: u64) -> Instant {
        Instant::from_unix_secs(1_000).saturating_add(Duration::from_millis(ms))
    }

    #[test]
    fn charge_allows_the_burst_then_names_the_wait() {
        let mut l = IpLimiter::new(
            Rate {
                per_second: 5,
                burst: 2,
            },
            8,
        );
        assert_eq!(l.charge(at(0), ip(1)), Ok(()));
        assert_eq!(l.charge(at(0), ip(1)), Ok(()));
        assert_eq!(l.charge(at(0), ip(1)), Err(Duration::from_millis(200)));
        assert_eq!(
            l.charge(at(0), ip(2)),
            Ok(()),
            "another address has its own"
        );
        assert_eq!(l.charge(at(200), ip(1)), Ok(()), "refilled one token");
    }

    #[test]
    fn charge_never_tracks_more_than_max_and_fails_closed_when_none_is_idle() {
        let rate = Rate {
            per_second: 1,
            burst: 2,
        };
        let mut l = IpLimiter::new(rate, 2);
        assert_eq!(l.charge(at(0), ip(1)), Ok(()));
        assert_eq!(l.charge(at(0), ip(2)), Ok(()));
        assert_eq!(l.charge(at(0), ip(3)), Err(IDLE_SCAN_INTERVAL));
        assert_eq!(l.len(), 2);
        // A second later ip(1) and ip(2) have refilled: idle buckets make room.
        assert_eq!(l.charge(at(1_000), ip(3)), Ok(()));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn charge_after_a_fruitless_walk_waits_out_the_interval_without_walking_again() {
        let mut l = IpLimiter::new(FIVE_A_SECOND, 1);
        assert_eq!(l.charge(at(0), ip(1)), Ok(()));
        assert_eq!(l.charge(at(0), ip(2)), Err(IDLE_SCAN_INTERVAL));
        // ip(1) is idle again after 200 ms, but no walk before the interval is over.
        assert_eq!(l.charge(at(600), ip(2)), Err(Duration::from_millis(400)));
        assert_eq!(l.charge(at(999), ip(3)), Err(Duration::from_millis(1)));
        assert_eq!(l.len(), 1);
        // The tracked address is served all along.
        assert_eq!(l.charge(at(999), ip(1)), Ok(()));
        // The interval is over: ip(1) (used at 999 ms) is busy, so the walk frees nothing.
        assert_eq!(l.charge(at(1_000), ip(2)), Err(IDLE_SCAN_INTERVAL));
        assert_eq!(l.charge(at(2_000), ip(2)), Ok(()));
        assert_eq!(l.len(), 1, "ip(1)'s idle bucket made room");
        // Every unseen address met a full table; the tracked one's charges did not.
        assert_eq!(l.full_table_charges(), 5);
    }

    #[test]
    fn charge_after_the_clock_went_back_walks_again() {
        let mut l = IpLimiter::new(FIVE_A_SECOND, 1);
        assert_eq!(l.charge(at(5_000), ip(1)), Ok(()));
        assert_eq!(l.charge(at(5_000), ip(2)), Err(IDLE_SCAN_INTERVAL));
        // A wall clock stepped back past the walk: it walks again, and the wait it names is
        // an interval from the new reading, not stretched by the four-second step.
        assert_eq!(l.charge(at(1_000), ip(2)), Err(IDLE_SCAN_INTERVAL));
        assert_eq!(l.charge(at(1_500), ip(2)), Err(Duration::from_millis(500)));
    }

    #[test]
    fn drop_idle_keeps_only_buckets_in_use() {
        let mut l = IpLimiter::new(FIVE_A_SECOND, 8);
        assert!(l.is_empty());
        assert_eq!(l.charge(at(0), ip(1)), Ok(()));
        assert_eq!(l.charge(at(150), ip(2)), Ok(()));
        l.drop_idle(at(200));
        assert_eq!(l.len(), 1, "ip(1) refilled at 200 ms, ip(2) has not");
        l.drop_idle(at(350));
        assert!(l.is_empty());
    }
}
