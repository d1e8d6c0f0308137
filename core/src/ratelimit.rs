//! Token buckets on the injected clock (docs/protocol.md section 9, "Rate limits").
//!
//! A bucket refills continuously at `rate` tokens per second up to `burst`. Arithmetic is in
//! integer nano-tokens so results are exact and identical on every machine; the bucket
//! never reads a clock: the caller passes `now`.

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
}
