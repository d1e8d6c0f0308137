//! The gateway: one sans-IO state machine behind one entry point, [`Gateway::handle`].
//!
//! Drivers (the simulator, the tokio server, the fuzzers) feed it [`Input`]s with the
//! current time and carry out its [`Outputs`]. It owns authentication before the upgrade,
//! the per-connection rules of docs/protocol.md sections 8 to 16, fan-out, and the event log.
//! It never performs I/O and never reads a clock; all durable changes go through
//! `State::apply`, so the log it emits replays to the same state.
//!
//! This file holds the gateway itself and its one entry point; the work is split by concern
//! among child modules, which see the gateway's fields directly:
//! * `contract`: what goes in and out of [`Gateway::handle`] ([`Input`], [`Outputs`], ...);
//! * `admission`: the handshake, tickets and the revocation feed (who may connect);
//! * `router`: an inbound text frame, from its size check to the handler of its type;
//! * `fanout`: the user's stream, sends, flow control and `resume` backfill;
//! * `timers`: expiry, agent-run steps and housekeeping sweeps.

mod admission;
mod contract;
mod fanout;
mod router;
mod timers;

pub use contract::{
    AuthUpdate, ControlFrame, Effects, GatewayStats, HandshakeDecision, Input, IssuedTicket,
    Outputs, TicketRefusal,
};
use timers::TimerKind;

use std::collections::BTreeMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};
use crate::id_hash::ConnTable;
use crate::ids::{ConnId, LogSeq, Seq, UserId};
use crate::log::{CloseReason, Event, LogEntry};
use crate::plant::Plants;
use crate::ratelimit::{IpLimiter, TokenBucket};
use crate::session::LiveConn;
use crate::state::{ReplayError, State};
use crate::time::{Instant, TimerTable};
use crate::token::{Claims, KeyRing, TokenError, TokenType, Validator};

/// The gateway. See the crate docs for the contract of [`Gateway::handle`].
///
/// A clone is an independent gateway in the same state: a fuzz harness builds its set-up
/// world once and starts every input from a copy instead of repeating the setup.
#[derive(Clone)]
pub struct Gateway {
    config: Config,
    plants: Plants,
    validator: Validator,
    state: State,
    /// Lookup-only (see [`ConnTable`]): restarts rebuild it from `state.sessions`.
    live: ConnTable<LiveConn>,
    user_buckets: BTreeMap<UserId, TokenBucket>,
    ip_buckets: IpLimiter,
    timers: TimerTable<TimerKind>,
    ticket_key: [u8; 32],
    /// Reused by frame and payload rendering; holds nothing between calls.
    scratch: String,
    /// Reused by fan-out for the target connections; holds nothing between calls.
    targets: Vec<ConnId>,
    /// A broadcast's users, each with its copy's seq and the end of its connections in
    /// `targets` (reused).
    broadcast_users: Vec<(UserId, Seq, usize)>,
    /// High-water mark of `LiveConn::queued`, kept so [`Gateway::stats`] never scans.
    peak_queue_depth: usize,
    /// Frames refused by their user's rate bucket since this gateway started.
    rate_limited: u64,
}

/// What a handler produced, before events are stamped and applied.
pub(crate) struct Ctx<'o> {
    pub(crate) now: Instant,
    pub(crate) out: &'o mut Outputs,
}

impl Gateway {
    /// A gateway with no sessions, validating tokens against `ring`.
    pub fn new(config: Config, ring: KeyRing) -> Result<Self, ConfigError> {
        Self::with_plants(config, ring, Plants::NONE)
    }

    /// A gateway with planted bugs switched on (empty without the `planted-bugs` feature).
    pub fn with_plants(config: Config, ring: KeyRing, plants: Plants) -> Result<Self, ConfigError> {
        config.validate()?;
        let validator = Validator::new(ring, config.tokens.clone())
            .with_cache_capacity(config.limits.max_cached_tokens)
            .with_plants(plants);
        // The default key derives from the seed, so a simulated run's tickets replay; the
        // seed is in every journal header, so a live server replaces it (`set_ticket_secret`).
        let mut ticket_key = [0u8; 32];
        ticket_key.copy_from_slice(&Sha256::digest(
            [
                b"gauntlet-ticket-key".as_slice(),
                &config.seed.to_le_bytes(),
            ]
            .concat(),
        ));
        let limits = &config.limits;
        let ip_buckets = IpLimiter::new(limits.ip_handshake_rate, limits.max_tracked_ips);
        Ok(Self {
            config,
            plants,
            validator,
            state: State::default(),
            live: ConnTable::default(),
            user_buckets: BTreeMap::new(),
            ip_buckets,
            timers: TimerTable::default(),
            ticket_key,
            scratch: String::new(),
            targets: Vec::new(),
            broadcast_users: Vec::new(),
            peak_queue_depth: 0,
            rate_limited: 0,
        })
    }

    /// Replaces the key tickets are derived from. By default it derives from `config.seed`,
    /// which every journal header records: fine for a simulation, whose tickets must replay,
    /// but anyone who can read a live server's journal could then compute its tickets. A
    /// driver that issues tickets to real clients sets a secret that is never journaled (the
    /// tokio server draws one from the OS RNG at every start, so tickets issued before a
    /// restart stop working, which their 30 s lifetime makes harmless).
    pub fn set_ticket_secret(&mut self, secret: &[u8; 32]) {
        self.ticket_key.copy_from_slice(&Sha256::digest(
            [b"gauntlet-ticket-secret".as_slice(), secret.as_slice()].concat(),
        ));
    }

    /// Rebuilds a gateway by folding `entries` (a log this gateway's config produced).
    /// Sessions in the log are restored as records; call [`Gateway::restart`] when the
    /// connections themselves are gone (crash recovery).
    pub fn replay(
        config: Config,
        ring: KeyRing,
        plants: Plants,
        entries: impl IntoIterator<Item = LogEntry>,
    ) -> Result<Self, ReplayError> {
        let mut g = Self::with_plants(config, ring, plants).map_err(|e| ReplayError::Parse {
            line: 0,
            reason: e.to_string(),
        })?;
        for entry in entries {
            g.apply(&entry)?;
        }
        g.finish_replay();
        Ok(g)
    }

    /// Folds one more log entry into a gateway being replayed (see [`Gateway::replay`]).
    pub(crate) fn fold(&mut self, entry: &LogEntry) -> Result<(), ReplayError> {
        self.apply(entry)
    }

    /// A fresh gateway validating with `ring`, holding this (replayed) gateway's folded
    /// state and revocations, with its soft state rebuilt as after a replay.
    pub(crate) fn restored(&self, ring: KeyRing) -> Result<Self, ConfigError> {
        let mut g = Self::with_plants(self.config.clone(), ring, self.plants)?;
        g.state = self.state.clone();
        g.validator.copy_revocations_from(&self.validator);
        g.finish_replay();
        Ok(g)
    }

    /// Rebuilds soft state for the sessions and runs a replay restored.
    pub(crate) fn finish_replay(&mut self) {
        self.live.clear();
        for (conn, s) in &self.state.sessions {
            self.live.insert(*conn, LiveConn::new(s.live_from));
        }
        self.rebuild_timers();
    }

    /// Crash recovery: every connection is gone. Appends `Restarted` and re-arms the runs.
    pub fn restart(&mut self, now: Instant) -> Outputs {
        let mut out = Outputs::default();
        let mut ctx = Ctx { now, out: &mut out };
        self.emit(&mut ctx, Event::Restarted);
        self.live.clear();
        self.rebuild_timers();
        self.finish(&mut ctx);
        out
    }

    /// The only mutator. `now` must never decrease between calls (a smaller `now` is
    /// treated as equal to the last one). Every output must be carried out as documented
    /// on [`Outputs`]. Never panics on any input.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Outputs {
        let mut out = Outputs::default();
        self.handle_into(now, input, &mut out);
        out
    }

    /// [`Gateway::handle`] into a caller-owned [`Outputs`], which is cleared first and whose
    /// buffers are reused: a driver that keeps one `Outputs` allocates nothing per call for
    /// the output lists themselves.
    pub fn handle_into(&mut self, now: Instant, input: Input<'_>, out: &mut Outputs) {
        out.clear();
        let now = now.max(self.state.last_at);
        let mut ctx = Ctx { now, out };
        match input {
            Input::Handshake { conn, request } => {
                let decision = self.handshake(&mut ctx, conn, &request);
                ctx.out.handshake = Some((conn, decision));
            }
            Input::Text { conn, data } => self.on_text(&mut ctx, conn, data),
            Input::Control { conn, .. } => self.on_control(&mut ctx, conn),
            // `end_session` ignores a connection that is not open.
            Input::Binary { conn, .. } => self.close(&mut ctx, conn, CloseReason::BinaryFrame),
            Input::Sent { conn, frames } => {
                if let Some(l) = self.live.get_mut(&conn) {
                    l.queued = l.queued.saturating_sub(frames);
                }
                self.pump_backfill(&mut ctx, conn);
            }
            Input::Closed { conn } => {
                self.end_session(&mut ctx, conn, CloseReason::PeerClosed, false);
            }
            Input::Auth(AuthUpdate::Feed { as_of, revocations }) => {
                self.on_feed(&mut ctx, as_of, revocations)
            }
            Input::Auth(AuthUpdate::Keys(ring)) => *self.validator.ring_mut() = *ring,
            Input::IssueTicket {
                request,
                authorization,
            } => {
                let answer = self.issue_ticket(&mut ctx, authorization.as_deref());
                ctx.out.tickets.push((request, answer));
            }
            Input::Tick => self.on_tick(&mut ctx),
            Input::Shutdown => {
                let conns: Vec<ConnId> = self.state.sessions.keys().copied().collect();
                for conn in conns {
                    self.close(&mut ctx, conn, CloseReason::Shutdown);
                }
            }
        }
        self.finish(&mut ctx);
    }

    /// Checks a caller's *service* token (`POST /revocations`, docs/protocol.md
    /// `HTTP-REVOCATIONS-CALLER`) against the key ring and the revocations this gateway holds
    /// now, so a revoked service token, or one of a key that left the ring, is refused.
    /// Read-only: nothing is cached or logged.
    pub fn check_service_token(&self, now: Instant, token: &str) -> Result<Claims, TokenError> {
        let now = now.max(self.state.last_at);
        self.validator
            .validate_uncached(token.as_bytes(), now, TokenType::Service)
    }

    /// When the next timer is due, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// SHA-256 (hex) of the durable state: equal for a live gateway and its replayed log.
    pub fn state_hash(&self) -> String {
        self.state.hash()
    }

    /// Whether `other` holds the same durable state (so the same state hash).
    pub(crate) fn same_state(&self, other: &Gateway) -> bool {
        self.state == other.state
    }

    /// The last log seq appended.
    pub fn last_log_seq(&self) -> LogSeq {
        self.state.last_seq
    }

    /// The user's latest stream seq.
    pub fn latest_seq(&self, user: &UserId) -> Seq {
        self.state.latest_seq(user)
    }

    /// The config in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Frames refused by their user's rate bucket since this gateway started: the refusal
    /// itself, which a driver cannot always see on the wire (the `RATE_LIMITED` reply is not
    /// sent when the connection's send queue is full and it is closed as too slow instead).
    pub fn rate_limited_frames(&self) -> u64 {
        self.rate_limited
    }

    /// Whether `conn` is an open session (a driver's view of what the gateway holds, e.g. to
    /// know whether a control frame it forwards can be charged to anyone).
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.state.sessions.contains_key(&conn)
    }

    /// Sizes and counters.
    pub fn stats(&self) -> GatewayStats {
        let cache = self.validator.cache_stats();
        GatewayStats {
            connections: self.state.sessions.len(),
            peak_queue_depth: self.peak_queue_depth,
            outbox_events: self.state.outbox_events,
            peak_outbox_len: self.state.peak_outbox_len,
            tickets: self.state.tickets.len(),
            ip_buckets: self.ip_buckets.len(),
            ip_table_full: self.ip_buckets.full_table_charges(),
            user_buckets: self.user_buckets.len(),
            active_runs: self.state.runs.len(),
            threads: self.state.threads.len(),
            revocations: self.validator.revocation_count(),
            cache_len: cache.len,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
        }
    }

    fn apply(&mut self, entry: &LogEntry) -> Result<(), ReplayError> {
        self.state.apply(entry, &self.config, self.plants)?;
        if let Event::FeedSynced { revocations, .. } = &entry.event {
            for r in revocations {
                self.validator.apply(r);
            }
        }
        Ok(())
    }

    /// Stamps, applies and records an event. Events built by the gateway always apply; a
    /// failure here is a bug in the gateway, so it is asserted in debug builds and the
    /// event is dropped (never half-applied) in release builds.
    pub(crate) fn emit(&mut self, ctx: &mut Ctx, event: Event) {
        let entry = LogEntry {
            seq: self.state.last_seq.next(),
            at: ctx.now,
            event,
        };
        match self.apply(&entry) {
            Ok(()) => ctx.out.events.push(entry),
            Err(e) => debug_assert!(false, "gateway emitted an event its own fold rejects: {e}"),
        }
    }

    fn finish(&self, ctx: &mut Ctx<'_>) {
        ctx.out.next_deadline = self.timers.next_deadline();
    }

    fn leeway(&self) -> Duration {
        self.config.tokens.leeway()
    }

    /// Closes a session from the gateway side: a close frame goes out.
    pub(crate) fn close(&mut self, ctx: &mut Ctx, conn: ConnId, reason: CloseReason) {
        self.end_session(ctx, conn, reason, true);
    }

    /// Ends `conn`'s session; does nothing when `conn` is not open (never opened, or
    /// already closed), so callers need not check.
    fn end_session(&mut self, ctx: &mut Ctx, conn: ConnId, reason: CloseReason, send_close: bool) {
        if !self.state.sessions.contains_key(&conn) {
            return;
        }
        self.emit(ctx, Event::SessionClosed { conn, reason });
        self.live.remove(&conn);
        self.timers.stop(&TimerKind::Expiry(conn));
        if send_close {
            ctx.out
                .closes
                .push((conn, reason.close_code(), reason.text()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::protocol::HandshakeRequest;
    use crate::ratelimit::Rate;
    use crate::token::testkit::{base_claims, hs, now, ring};

    #[test]
    fn rate_limited_frames_counts_every_frame_over_the_user_rate() {
        let mut config = Config::default();
        config.limits.user_rate = Rate {
            per_second: 1,
            burst: 2,
        };
        let mut gw = Gateway::new(config, ring()).expect("valid config");
        let now = now();
        let fed = gw.handle(
            now,
            Input::Auth(AuthUpdate::Feed {
                as_of: now,
                revocations: Vec::new(),
            }),
        );
        assert_eq!(fed.events.len(), 1);
        let conn = ConnId::new(1);
        let request = HandshakeRequest::new(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .header("Authorization", &format!("Bearer {}", hs(&base_claims())));
        let opened = gw.handle(now, Input::Handshake { conn, request });
        let user = UserId::parse("user-1").expect("id");
        assert_eq!(
            opened.handshake,
            Some((
                conn,
                HandshakeDecision::Accept {
                    user,
                    subprotocol: None
                }
            ))
        );
        let mut replies = Vec::new();
        for _ in 0..5 {
            let out = gw.handle(
                now,
                Input::Text {
                    conn,
                    data: br#"{"type":"ping"}"#,
                },
            );
            replies.extend(out.sends.iter().map(|(_, f)| f.to_string()));
        }
        assert_eq!(gw.rate_limited_frames(), 3);
        assert_eq!(
            replies
                .iter()
                .filter(|f| f.contains("RATE_LIMITED"))
                .count(),
            3
        );
        assert!(gw.is_open(conn));
    }
}
