//! The seeded driver loop behind `sim/events_1000_users`, standing in for the simulator until
//! it exists (issue 6 names the bench; the simulator is a later session). It connects N users
//! through real handshakes, then on a 1 ms virtual tick picks a random user (ChaCha8 from one
//! seed) who sends a `user_message` on their own thread (70 %) or a `ping` (30 %), fires due
//! timers with `Input::Tick` (agent runs emit their events there), refreshes the revocation
//! feed every virtual second, and acknowledges every frame sent. It has no network model, no
//! faults and no invariant checks: it measures the gateway alone.

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::{Config, ConnId, Outputs};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{FixtureError, GatewayFixture};

/// Virtual time per round.
const ROUND: Duration = Duration::from_millis(1);
/// Rounds between revocation-feed deliveries (one virtual second).
const FEED_EVERY: u64 = 1000;

/// What a run processed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventsRun {
    /// Inputs handled: client frames, timer ticks and feed deliveries (acknowledgements of
    /// sends are handled too, but not counted).
    pub inputs: u64,
    /// Frames the gateway sent.
    pub sends: u64,
    /// Connections the gateway closed (a healthy run closes none).
    pub closes: u64,
    /// Log events the gateway appended.
    pub log_events: u64,
}

impl EventsRun {
    /// The element count for criterion's `Throughput::Elements`: inputs plus frames sent.
    pub fn elements(&self) -> u64 {
        self.inputs + self.sends
    }
}

/// A gateway with N connected users and a seeded workload.
pub struct EventsDriver {
    fx: GatewayFixture,
    rng: ChaCha8Rng,
    conns: Vec<ConnId>,
    messages: Vec<Vec<u8>>,
    round: u64,
    acks: BTreeMap<ConnId, usize>,
}

const PING: &[u8] = br#"{"type":"ping","message_id":"p"}"#;

impl EventsDriver {
    /// Connects `users` users (one connection each, default protocol config seeded with
    /// `seed`) and seeds the workload RNG with `seed`.
    pub fn new(seed: u64, users: usize) -> Result<Self, FixtureError> {
        let config = Config {
            seed,
            ..Config::default()
        };
        let mut fx = GatewayFixture::new(config)?;
        let mut conns = Vec::with_capacity(users);
        let mut messages = Vec::with_capacity(users);
        for i in 0..users {
            let user = format!("user-{i:04}");
            conns.push(fx.connect(&user, &["threads:read", "runs:*"])?);
            messages.push(
                format!(
                    r#"{{"type":"user_message","payload":{{"content":"summarise the report","thread_id":"t-{user}"}}}}"#
                )
                .into_bytes(),
            );
        }
        Ok(Self {
            fx,
            rng: ChaCha8Rng::seed_from_u64(seed),
            conns,
            messages,
            round: 0,
            acks: BTreeMap::new(),
        })
    }

    /// The gateway fixture (for checks after a run).
    pub fn fixture(&self) -> &GatewayFixture {
        &self.fx
    }

    /// Runs `rounds` rounds of 1 ms virtual time.
    pub fn run(&mut self, rounds: u64) -> EventsRun {
        let mut tally = EventsRun::default();
        for _ in 0..rounds {
            self.round += 1;
            self.fx.advance(ROUND);
            if self.round.is_multiple_of(FEED_EVERY) {
                let out = self.fx.feed();
                self.absorb(out, &mut tally);
            }
            if self
                .fx
                .gateway()
                .next_deadline()
                .is_some_and(|d| d <= self.fx.now())
            {
                let out = self.fx.handle(gauntlet_core::Input::Tick);
                self.absorb(out, &mut tally);
            }
            let n = self.conns.len();
            if n == 0 {
                continue;
            }
            let who = self.rng.random_range(0..n);
            let chat = self.rng.random_range(0..10u32) < 7;
            let (Some(conn), Some(message)) = (self.conns.get(who), self.messages.get(who)) else {
                continue;
            };
            let data = if chat { message.clone() } else { PING.to_vec() };
            let out = self.fx.text(*conn, data);
            self.absorb(out, &mut tally);
        }
        tally
    }

    fn absorb(&mut self, out: Outputs, tally: &mut EventsRun) {
        tally.inputs += 1;
        tally.sends += out.sends.len() as u64;
        tally.closes += out.closes.len() as u64;
        tally.log_events += out.events.len() as u64;
        for (conn, _) in &out.sends {
            *self.acks.entry(*conn).or_default() += 1;
        }
        drop(out);
        while let Some((conn, frames)) = self.acks.pop_first() {
            drop(self.fx.ack(conn, frames));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_driver_same_seed_same_tally_and_state() {
        let mut a = EventsDriver::new(7, 50).unwrap();
        let mut b = EventsDriver::new(7, 50).unwrap();
        let mut c = EventsDriver::new(8, 50).unwrap();
        let (ta, tb) = (a.run(3000), b.run(3000));
        c.run(3000);
        assert_eq!(ta, tb);
        let hash = |d: &EventsDriver| d.fixture().gateway().state_hash();
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(hash(&a), hash(&c));
    }

    #[test]
    fn events_driver_runs_agents_without_closing_anyone() {
        let mut d = EventsDriver::new(1, 100).unwrap();
        let run = d.run(5000);
        assert_eq!(run.closes, 0);
        // 5000 client frames, 5 feeds, and at least one tick for the runs that started.
        assert!(run.inputs > 5005, "{run:?}");
        // Each chat message answers message_accepted plus at least agent_started, each ping
        // a pong: more frames out than client frames in means agent events flowed.
        assert!(run.sends > 5000 + 2 * 3000, "{run:?}");
        assert_eq!(d.fixture().gateway().stats().max_queue_depth, 0);
    }
}
