//! A minimal driver for the gateway harnesses: feeds inputs at a manual clock, acknowledges
//! every send (so no connection is a slow consumer unless a harness wants one), keeps the
//! revocation feed fresh on request, and collects what the gateway asked for. It makes no
//! protocol decisions and never judges outputs; the harnesses do.

use std::convert::Infallible;
use std::time::Duration;

use crate::protocol::WireFrame;
use crate::token::Revocation;
use crate::{
    AuthUpdate, CloseCode, ConnId, Effects, Gateway, HandshakeDecision, Input, Instant,
    IssuedTicket, LogEntry, Outputs, TicketRefusal,
};

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
    fn absorb(&mut self, mut out: Outputs, seen: &mut Observed) -> Vec<(ConnId, usize)> {
        let mut record = Record {
            log: &mut self.log,
            seen,
            acks: Vec::new(),
            closed: Vec::new(),
        };
        let Ok(()) = out.carry_out(&mut record);
        let Record {
            mut acks, closed, ..
        } = record;
        acks.retain(|(c, _)| !closed.contains(c));
        acks
    }
}

/// Carrying out, for the harnesses: everything is recorded, and each connection's frames
/// are counted to acknowledge unless it was closed.
struct Record<'a> {
    log: &'a mut Vec<LogEntry>,
    seen: &'a mut Observed,
    acks: Vec<(ConnId, usize)>,
    closed: Vec<ConnId>,
}

impl Effects for Record<'_> {
    type Error = Infallible;
    fn log(&mut self, events: &mut Vec<LogEntry>) -> Result<(), Infallible> {
        self.log.append(events);
        Ok(())
    }
    fn handshake(&mut self, conn: ConnId, decision: HandshakeDecision) {
        self.seen.handshake = Some((conn, decision));
    }
    fn send(&mut self, conn: ConnId, frame: WireFrame) {
        match self.acks.iter_mut().find(|(c, _)| *c == conn) {
            Some((_, n)) => *n += 1,
            None => self.acks.push((conn, 1)),
        }
        self.seen.sends.push((conn, frame));
    }
    fn close(&mut self, conn: ConnId, code: CloseCode, _reason: &'static str) {
        self.closed.push(conn);
        self.seen.closes.push((conn, code.as_u16()));
    }
    fn ticket(&mut self, request: u64, answer: Result<IssuedTicket, TicketRefusal>) {
        self.seen
            .tickets
            .push((request, answer.ok().map(|t| t.ticket)));
    }
    /// The harnesses move the clock themselves ([`Drive::advance`]) and tick then.
    fn deadline(&mut self, _at: Option<Instant>) {}
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
