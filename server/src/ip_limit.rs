//! The per-IP charge on the HTTP requests that verify a bearer token before anything else
//! (`POST /tickets`, `POST /revocations`; docs/protocol.md `HTTP-IP-RATE`).
//!
//! Verifying a signature (RSA, EC) costs the single gateway task far more than answering a
//! refusal, and neither endpoint needs a credential to be tried, so each request is charged
//! to its peer address first and refused with 429 over the rate. The map of addresses is
//! bounded: idle (full) buckets are dropped to make room, and when none is idle a new
//! address is refused (fail closed, like `WS-IP-TRACK-BOUND`), so spraying addresses can
//! neither grow memory nor evict an honest address's bucket.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use gauntlet_core::{Instant, Rate, TokenBucket};

/// How long a new address refused for a full map is told to wait: buckets become idle (and
/// droppable) within their refill time, a second at the rates this is configured with.
const FULL_RETRY: Duration = Duration::from_secs(1);

/// Token buckets per peer address, at most `max` of them.
pub(crate) struct IpLimiter {
    rate: Rate,
    max: usize,
    buckets: BTreeMap<IpAddr, TokenBucket>,
}

impl IpLimiter {
    pub(crate) fn new(rate: Rate, max: usize) -> Self {
        Self {
            rate,
            max,
            buckets: BTreeMap::new(),
        }
    }

    /// Takes one token for `ip`, or says how long to wait.
    pub(crate) fn charge(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= self.max {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= self.max {
                return Err(FULL_RETRY);
            }
        }
        let rate = self.rate;
        self.buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

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
        assert_eq!(l.charge(at(0), ip(3)), Err(FULL_RETRY));
        assert_eq!(l.buckets.len(), 2);
        // A second later ip(1) and ip(2) have refilled: idle buckets make room.
        assert_eq!(l.charge(at(1_000), ip(3)), Ok(()));
        assert_eq!(l.buckets.len(), 1);
    }
}
