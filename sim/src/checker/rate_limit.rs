//! Rate limits hold: in any window of length T a user gets at most `burst + rate * T`
//! frames through (a token bucket's bound), checked for T = 1 s and 5 s. Text frames and
//! ping control frames count alike (`RATE-USER`, `RATE-CONTROL-FRAMES`).

use std::collections::VecDeque;
use std::time::Duration;

use gauntlet_core::{Instant, Rate};

use super::{Checker, Failure, Obs};
use crate::id_map::UserMap;

pub(crate) struct RateLimitChecker {
    rate: Rate,
    accepted: UserMap<VecDeque<Instant>>,
}

const WINDOWS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

impl RateLimitChecker {
    pub(crate) fn new(rate: Rate) -> Self {
        Self {
            rate,
            accepted: UserMap::default(),
        }
    }
}

impl Checker for RateLimitChecker {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        let Obs::Inbound {
            at,
            user,
            accepted: true,
            ..
        } = obs
        else {
            return Ok(());
        };
        let q = self.accepted.entry((*user).clone()).or_default();
        q.push_back(*at);
        let longest = WINDOWS[WINDOWS.len() - 1];
        while q
            .front()
            .is_some_and(|t| at.saturating_since(*t) >= longest)
        {
            q.pop_front();
        }
        for w in WINDOWS {
            let n = q.iter().filter(|t| at.saturating_since(**t) < w).count() as u64;
            let bound = u64::from(self.rate.burst) + u64::from(self.rate.per_second) * w.as_secs();
            if n > bound {
                return Err(Failure::new(
                    self.name(),
                    format!("{user} got {n} frames through in {w:?} (bound {bound})"),
                ));
            }
        }
        Ok(())
    }
}
