//! The per-address handshake rate (`WS-IP-RATE`, docs/protocol.md section 8): every handshake
//! that gets past the path, size and connection-id checks takes a token from its peer
//! address's bucket (`limits.ip_handshake_rate`, 5/s with a burst of 10); with none left it
//! is refused 429 `ip_rate_limited`, and with one left it is not.
//!
//! The checker keeps its own bucket per address, with the protocol's arithmetic (whole
//! nanotokens, refilled by elapsed time), from the handshake verdicts alone. Two things it
//! cannot know are left unjudged rather than guessed: whether a new address met a full table
//! (`WS-IP-TRACK-BOUND` refuses it then, and which idle buckets the gateway still holds is
//! its own business), which it allows once the run has seen as many addresses as the table
//! holds; and whether a `handshake_too_large` refusal came before the charge (the request's
//! bounds) or after it (an oversized credential), after which that address is not judged
//! until its bucket has refilled.
//!
//! A gateway restart forgets every bucket, and so does this model.

use std::collections::BTreeMap;
use std::net::IpAddr;

use gauntlet_core::{Event, Instant};

use super::auth::handshake_stage;
use super::{Checker, Failure, Obs};

const NAME: &str = "ip_rate";
const NANO: u64 = 1_000_000_000;

/// One address's bucket, in nanotokens.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: u64,
    updated: Instant,
    /// Not judged until the bucket is full again: a charge may have been missed.
    unsure: bool,
}

pub(crate) struct IpRateChecker {
    per_second: u64,
    burst: u64,
    max_tracked: usize,
    buckets: BTreeMap<IpAddr, Bucket>,
}

/// Where a refusal with `code` stands against the per-address charge.
enum Stage {
    /// Refused by a check the handshake's order runs before the charge.
    Before,
    /// Refused before or after it (`handshake_too_large`).
    Either,
    /// The charge itself refused it.
    Limited,
    /// Charged, and accepted or refused by a later check.
    After,
}

fn stage(reject_code: Option<&str>) -> Stage {
    match reject_code {
        // The request's bounds come before the charge, an oversized credential after it.
        Some("handshake_too_large") => Stage::Either,
        Some(LIMITED) => Stage::Limited,
        Some(code) if handshake_stage(code) < handshake_stage(LIMITED) => Stage::Before,
        _ => Stage::After,
    }
}

/// The code of the charge's own refusal.
const LIMITED: &str = "ip_rate_limited";

impl IpRateChecker {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        let rate = config.limits.ip_handshake_rate;
        Self {
            per_second: u64::from(rate.per_second),
            burst: u64::from(rate.burst),
            max_tracked: config.limits.max_tracked_ips,
            buckets: BTreeMap::new(),
        }
    }

    fn full(&self) -> u64 {
        self.burst.saturating_mul(NANO)
    }

    /// `peer`'s bucket refilled to `at`.
    fn refilled(&self, peer: IpAddr, at: Instant) -> Bucket {
        let full = self.full();
        let Some(mut b) = self.buckets.get(&peer).copied() else {
            return Bucket {
                level: full,
                updated: at,
                unsure: false,
            };
        };
        let elapsed = at.saturating_since(b.updated);
        let add = u64::try_from(
            elapsed
                .as_nanos()
                .saturating_mul(u128::from(self.per_second)),
        )
        .unwrap_or(u64::MAX);
        b.level = b.level.saturating_add(add).min(full);
        b.updated = b.updated.max(at);
        if b.level >= full {
            b.unsure = false;
        }
        b
    }

    fn handshake(
        &mut self,
        at: Instant,
        peer: IpAddr,
        reject_code: Option<&str>,
    ) -> Result<(), Failure> {
        let mut b = self.refilled(peer, at);
        // The gateway drops idle (full) buckets: such an address may be new to it.
        let maybe_new = !self.buckets.contains_key(&peer) || b.level >= self.full();
        let has_token = b.level >= NANO;
        match stage(reject_code) {
            Stage::Before => return Ok(()),
            Stage::Either => b.unsure = true,
            Stage::Limited => {
                // A new address may meet a full table, which the model does not see.
                let table_may_be_full = maybe_new && self.buckets.len() >= self.max_tracked;
                if has_token && !b.unsure && !table_may_be_full {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "handshake from {peer} refused ip_rate_limited with {} of {} \
                             tokens left",
                            b.level / NANO,
                            self.burst
                        ),
                    ));
                }
            }
            Stage::After => {
                if !has_token && !b.unsure {
                    let code = reject_code.unwrap_or("accepted");
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "handshake from {peer} with no token left in its bucket got \
                             past the per-address rate ({code})"
                        ),
                    ));
                }
                b.level = b.level.saturating_sub(NANO);
            }
        }
        self.buckets.insert(peer, b);
        Ok(())
    }
}

impl Checker for IpRateChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Handshake {
                at,
                peer,
                reject_code,
                ..
            } => self.handshake(*at, *peer, *reject_code),
            Obs::Log(entries) => {
                if entries.iter().any(|e| matches!(e.event, Event::Restarted)) {
                    self.buckets.clear();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_unix_millis(1_800_000_000_000 + ms)
    }

    fn peer(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn the_burst_then_one_token_every_200_ms() {
        let mut c = IpRateChecker::new(&gauntlet_core::Config::default());
        for _ in 0..10 {
            assert!(c.handshake(t(0), peer(1), None).is_ok());
        }
        // The eleventh at the same instant must be refused, and only as rate limited.
        assert!(c.handshake(t(0), peer(1), Some("expired")).is_err());
        let mut c = IpRateChecker::new(&gauntlet_core::Config::default());
        for _ in 0..10 {
            assert!(c.handshake(t(0), peer(1), None).is_ok());
        }
        assert!(c.handshake(t(0), peer(1), Some("ip_rate_limited")).is_ok());
        // Another address has its own bucket: refusing it is wrong.
        assert!(c.handshake(t(0), peer(2), Some("ip_rate_limited")).is_err());
        // 199 ms later still none; at 200 ms one.
        assert!(
            c.handshake(t(199), peer(1), Some("ip_rate_limited"))
                .is_ok()
        );
        assert!(c.handshake(t(200), peer(1), None).is_ok());
        // Refusals before the charge take nothing.
        let mut c = IpRateChecker::new(&gauntlet_core::Config::default());
        for _ in 0..20 {
            assert!(c.handshake(t(0), peer(1), Some("not_found")).is_ok());
        }
        assert!(c.handshake(t(0), peer(1), Some("ip_rate_limited")).is_err());
    }

    #[test]
    fn an_ambiguous_refusal_suspends_judgement_until_the_bucket_refills() {
        let mut c = IpRateChecker::new(&gauntlet_core::Config::default());
        for _ in 0..9 {
            assert!(c.handshake(t(0), peer(1), None).is_ok());
        }
        assert!(
            c.handshake(t(0), peer(1), Some("handshake_too_large"))
                .is_ok()
        );
        // One token left by the model, none if the gateway charged: either answer passes.
        assert!(c.handshake(t(0), peer(1), Some("ip_rate_limited")).is_ok());
        // Full again two seconds later: judged again.
        let later = t(0).saturating_add(Duration::from_secs(2));
        assert!(
            c.handshake(later, peer(1), Some("ip_rate_limited"))
                .is_err()
        );
    }

    #[test]
    fn a_full_table_may_refuse_a_new_address() {
        let mut config = gauntlet_core::Config::default();
        config.limits.max_tracked_ips = 2;
        let mut c = IpRateChecker::new(&config);
        assert!(c.handshake(t(0), peer(1), None).is_ok());
        assert!(c.handshake(t(0), peer(2), None).is_ok());
        assert!(c.handshake(t(0), peer(3), Some("ip_rate_limited")).is_ok());
        // A tracked address with tokens is never refused for the table.
        assert!(c.handshake(t(0), peer(1), Some("ip_rate_limited")).is_err());
        // Once idle (full again), the gateway may have dropped it: then it may be.
        assert!(
            c.handshake(t(5_000), peer(1), Some("ip_rate_limited"))
                .is_ok()
        );
    }
}
