//! A minimal driver for the gateway harnesses: feeds inputs at a manual clock, acknowledges
//! every send (so no connection is a slow consumer unless a harness wants one), keeps the
//! revocation feed fresh on request, and collects what the gateway asked for. It makes no
//! protocol decisions and never judges outputs; the harnesses do.

use std::time::Duration;

use crate::protocol::WireFrame;
use crate::token::Revocation;
use crate::{AuthUpdate, ConnId, Gateway, HandshakeDecision, Input, Instant, LogEntry, Outputs};

/// Most acknowledgement rounds one input may cause (each round is one `Sent` per connection).
const MAX_ACK_ROUNDS: usize = 64;

/// What one driver call made the gateway do, acknowledgements included.
#[derive(Default)]
pub(crate) struct Observed {
    pub(crate) handshake: Option<(ConnId, HandshakeDecision)>,
    pub(crate) sends: Vec<(ConnId, WireFrame)>,
    pub(crate) closes: Vec<(ConnId, u16)>,
    pub(crate) tickets: Vec<(u64, Option<String>)>,
}

#[derive(Clone)]
pub(crate) struct Drive {
    pub(crate) gw: Gateway,
    pub(crate) now: Instant,
    pub(crate) log: Vec<LogEntry>,
}

impl Drive {
    pub(crate) fn new(gw: Gateway, now: Instant) -> Self {
        Self {
            gw,
            now,
            log: Vec::new(),
        }
    }

    /// Handles `input` at the current time, then acknowledges every frame sent.
    pub(crate) fn input(&mut self, input: Input) -> Observed {
        let mut seen = Observed::default();
        let out = self.gw.handle(self.now, input);
        let mut pending = self.absorb(out, &mut seen);
        for _ in 0..MAX_ACK_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let mut next = Vec::new();
            for (conn, frames) in pending {
                let out = self.gw.handle(self.now, Input::Sent { conn, frames });
                next.extend(self.absorb(out, &mut seen));
            }
            pending = next;
        }
        seen
    }

    /// Moves the clock forward by `d`, fires due timers, and (when `feed`) delivers an empty
    /// revocation feed read now, keeping the gateway's revocation view fresh.
    pub(crate) fn advance(&mut self, d: Duration, feed: bool) -> Observed {
        self.now = self.now.saturating_add(d);
        let mut seen = self.input(Input::Tick);
        if feed {
            let more = self.feed(Vec::new());
            seen.merge(more);
        }
        seen
    }

    /// Delivers a revocation feed read at the current time.
    pub(crate) fn feed(&mut self, revocations: Vec<Revocation>) -> Observed {
        let as_of = self.now;
        self.input(Input::Auth(AuthUpdate::Feed { as_of, revocations }))
    }

    /// Records `out` and returns the per-connection frame counts to acknowledge.
    fn absorb(&mut self, out: Outputs, seen: &mut Observed) -> Vec<(ConnId, usize)> {
        self.log.extend(out.events);
        if out.handshake.is_some() {
            seen.handshake = out.handshake;
        }
        let mut acks: Vec<(ConnId, usize)> = Vec::new();
        for (conn, _) in &out.sends {
            match acks.iter_mut().find(|(c, _)| c == conn) {
                Some((_, n)) => *n += 1,
                None => acks.push((*conn, 1)),
            }
        }
        let closed: Vec<ConnId> = out.closes.iter().map(|(c, _, _)| *c).collect();
        acks.retain(|(c, _)| !closed.contains(c));
        seen.sends.extend(out.sends);
        seen.closes
            .extend(out.closes.iter().map(|(c, code, _)| (*c, code.as_u16())));
        seen.tickets.extend(
            out.tickets
                .into_iter()
                .map(|(id, r)| (id, r.ok().map(|t| t.ticket))),
        );
        acks
    }
}

impl Observed {
    pub(crate) fn merge(&mut self, other: Observed) {
        if other.handshake.is_some() {
            self.handshake = other.handshake;
        }
        self.sends.extend(other.sends);
        self.closes.extend(other.closes);
        self.tickets.extend(other.tickets);
    }
}
