//! The gateway: one sans-IO state machine behind one entry point, [`Gateway::handle`].
//!
//! Drivers (the simulator, the tokio server, the fuzzers) feed it [`Input`]s with the
//! current time and carry out its [`Outputs`]. It owns authentication before the upgrade,
//! the per-connection rules of PROTOCOL.md sections 4 to 8, fan-out, and the event log.
//! It never performs I/O and never reads a clock; all durable changes go through
//! `State::apply`, so the log it emits replays to the same state.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError, Limits};
use crate::error::{CloseCode, ErrorCode, HttpStatus};
use crate::id_hash::ConnTable;
use crate::ids::{ConnId, LogSeq, RunId, Seq, UserId};
use crate::log::{CloseReason, CredentialKind, Event, Identity, LogEntry};
use crate::outbox::StreamEntry;
use crate::payload::Payload;
use crate::plant::{Plants, planted};
use crate::protocol::{
    Credential, CredentialError, HandshakeRequest, JWT_SUBPROTOCOL, ServerFrame, StreamKind,
    WireFrame,
};
use crate::ratelimit::TokenBucket;
use crate::session::LiveConn;
use crate::state::{ReplayError, State, hex};
use crate::time::{Instant, TimerTable};
use crate::token::{Claims, KeyRing, Revocation, TokenError, TokenType, Validator};

/// How often housekeeping (ticket expiry, idle buckets, revocation pruning) runs while
/// there is anything to sweep.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One thing that happened to the gateway. A text frame's bytes are borrowed: the gateway
/// keeps nothing of them but what it parses out, so a driver hands over its read buffer
/// without a copy.
pub enum Input<'a> {
    /// An upgrade request for a connection id the driver chose (unique per gateway run).
    Handshake {
        /// The connection.
        conn: ConnId,
        /// The request.
        request: HandshakeRequest,
    },
    /// A text frame's payload (not yet checked for size or UTF-8).
    Text {
        /// The connection.
        conn: ConnId,
        /// The payload bytes.
        data: &'a [u8],
    },
    /// A binary frame (its content is never read).
    Binary {
        /// The connection.
        conn: ConnId,
        /// Its length.
        len: usize,
    },
    /// The driver finished writing `frames` frames to the connection (flow control).
    Sent {
        /// The connection.
        conn: ConnId,
        /// How many frames left the send queue.
        frames: usize,
    },
    /// The peer closed or the transport failed. No close frame is sent back.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// News from the auth service.
    Auth(AuthUpdate),
    /// `POST /tickets`: a bearer token in, a single-use ticket out.
    IssueTicket {
        /// The driver's id for this request, echoed in the output.
        request: u64,
        /// The `Authorization` header, if any.
        authorization: Option<String>,
    },
    /// Time passed: fire every timer due at `now`.
    Tick,
    /// Graceful shutdown: close every connection with 1001.
    Shutdown,
}

impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Handshake { conn, request } => write!(f, "Handshake({conn}, {request:?})"),
            Input::Text { conn, data } => write!(f, "Text({conn}, {} bytes)", data.len()),
            Input::Binary { conn, len } => write!(f, "Binary({conn}, {len} bytes)"),
            Input::Sent { conn, frames } => write!(f, "Sent({conn}, {frames})"),
            Input::Closed { conn } => write!(f, "Closed({conn})"),
            Input::Auth(AuthUpdate::Feed { as_of, revocations }) => {
                write!(f, "Feed(as_of {as_of}, {} revocations)", revocations.len())
            }
            Input::Auth(AuthUpdate::Keys(_)) => f.write_str("Keys(..)"),
            Input::IssueTicket { request, .. } => write!(f, "IssueTicket({request})"),
            Input::Tick => f.write_str("Tick"),
            Input::Shutdown => f.write_str("Shutdown"),
        }
    }
}

/// What the auth service tells the gateway.
pub enum AuthUpdate {
    /// The revocation feed, read at the auth service's time `as_of`: revocations issued since
    /// the last read. Drivers deliver it at least every `max_revocation_staleness`.
    Feed {
        /// The auth service's clock when the feed was read.
        as_of: Instant,
        /// New revocations.
        revocations: Vec<Revocation>,
    },
    /// The key ring changed (rotation): the new ring replaces the old.
    Keys(Box<KeyRing>),
}

/// The verdict on a handshake. Authentication happens before the upgrade, so a refusal is an
/// HTTP response and no socket is ever accepted and then authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeDecision {
    /// Upgrade; answer with this subprotocol if any.
    Accept {
        /// The authenticated user.
        user: UserId,
        /// The subprotocol to select (`jwt` when the token came that way).
        subprotocol: Option<&'static str>,
    },
    /// Refuse with an HTTP status.
    Reject {
        /// The status.
        status: HttpStatus,
        /// A stable machine-readable reason (a token error code or a gateway reason).
        code: &'static str,
        /// When to retry, for 429 and 503.
        retry_after_ms: Option<u64>,
    },
}

/// A ticket handed out by `POST /tickets`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTicket {
    /// The single-use ticket, for `?ticket=`.
    pub ticket: String,
    /// When it stops working.
    pub expires: Instant,
}

/// Why `POST /tickets` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRefusal {
    /// The HTTP status.
    pub status: HttpStatus,
    /// A stable machine-readable reason.
    pub code: &'static str,
}

/// Everything `handle` asks of the driver, to be carried out in this order: answer the
/// handshake, write `sends` in order per connection, then send `closes` (close frame with
/// the code and reason, then drop the socket), answer `tickets`, and append `events` to the
/// durable log before acknowledging anything further to clients.
#[must_use]
#[derive(Debug, Default)]
pub struct Outputs {
    /// The handshake verdict, for `Input::Handshake`.
    pub handshake: Option<(ConnId, HandshakeDecision)>,
    /// Text frames to write, in order. Report each with `Input::Sent` once written.
    pub sends: Vec<(ConnId, WireFrame)>,
    /// Connections to close with a code and reason, after their sends.
    pub closes: Vec<(ConnId, CloseCode, &'static str)>,
    /// Answers to `Input::IssueTicket`.
    pub tickets: Vec<(u64, Result<IssuedTicket, TicketRefusal>)>,
    /// Events appended to the log by this call.
    pub events: Vec<LogEntry>,
    /// When to call `handle(.., Input::Tick)` next, if anything is pending.
    pub next_deadline: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum TimerKind {
    Expiry(ConnId),
    Run(RunId),
    Sweep,
}

impl Outputs {
    /// Empties every list (keeping its capacity) and the handshake verdict and deadline.
    pub fn clear(&mut self) {
        self.handshake = None;
        self.sends.clear();
        self.closes.clear();
        self.tickets.clear();
        self.events.clear();
        self.next_deadline = None;
    }
}

/// Counters and sizes for metrics and the simulator's bounds checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Open sessions.
    pub connections: usize,
    /// The deepest any send queue has been since this gateway started (a high-water mark:
    /// a bounds check reading it sees every transient overflow, not just one sample).
    pub peak_queue_depth: usize,
    /// Events held across all outboxes.
    pub outbox_events: usize,
    /// The longest any outbox has been after an append, over the folded log.
    pub peak_outbox_len: usize,
    /// Unredeemed tickets.
    pub tickets: usize,
    /// Tracked per-IP buckets.
    pub ip_buckets: usize,
    /// Runs in progress.
    pub active_runs: usize,
    /// Threads.
    pub threads: usize,
    /// Revocations held by the validator.
    pub revocations: usize,
    /// Validation-cache entries.
    pub cache_len: usize,
    /// Validation-cache hits so far.
    pub cache_hits: u64,
    /// Validation-cache misses so far.
    pub cache_misses: u64,
}

/// The gateway. See the crate docs for the contract of [`Gateway::handle`].
pub struct Gateway {
    config: Config,
    plants: Plants,
    validator: Validator,
    state: State,
    /// Lookup-only (see [`ConnTable`]): restarts rebuild it from `state.sessions`.
    live: ConnTable<LiveConn>,
    user_buckets: BTreeMap<UserId, TokenBucket>,
    ip_buckets: BTreeMap<IpAddr, TokenBucket>,
    timers: TimerTable<TimerKind>,
    ticket_key: [u8; 32],
    /// Reused by frame rendering; holds nothing between calls.
    scratch: Vec<u8>,
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
        let validator = Validator::new(ring, config.tokens.clone()).with_plants(plants);
        let mut ticket_key = [0u8; 32];
        ticket_key.copy_from_slice(&Sha256::digest(
            [
                b"gauntlet-ticket-key".as_slice(),
                &config.seed.to_le_bytes(),
            ]
            .concat(),
        ));
        Ok(Self {
            config,
            plants,
            validator,
            state: State::default(),
            live: ConnTable::default(),
            user_buckets: BTreeMap::new(),
            ip_buckets: BTreeMap::new(),
            timers: TimerTable::default(),
            ticket_key,
            scratch: Vec::new(),
            targets: Vec::new(),
            broadcast_users: Vec::new(),
            peak_queue_depth: 0,
            rate_limited: 0,
        })
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
            Input::Binary { conn, .. } => {
                if self.state.sessions.contains_key(&conn) {
                    self.close(&mut ctx, conn, CloseReason::BinaryFrame);
                }
            }
            Input::Sent { conn, frames } => {
                if let Some(l) = self.live.get_mut(&conn) {
                    l.queued = l.queued.saturating_sub(frames);
                }
                self.pump_backfill(&mut ctx, conn);
            }
            Input::Closed { conn } => {
                if self.state.sessions.contains_key(&conn) {
                    self.end_session(&mut ctx, conn, CloseReason::PeerClosed, false);
                }
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
            active_runs: self.state.runs.len(),
            threads: self.state.threads.len(),
            revocations: self.validator.revocation_count(),
            cache_len: cache.len,
            cache_hits: cache.hits,
            cache_misses: cache.misses,
        }
    }

    // ---- event plumbing -------------------------------------------------------------

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

    fn rebuild_timers(&mut self) {
        self.timers.clear();
        let leeway = self.leeway();
        for (conn, s) in &self.state.sessions {
            self.timers.set(
                TimerKind::Expiry(*conn),
                s.identity.exp.saturating_add(leeway),
            );
        }
        for (run, r) in &self.state.runs {
            self.timers.set(TimerKind::Run(*run), r.next_at);
        }
        if !self.state.tickets.is_empty() {
            self.timers.set(
                TimerKind::Sweep,
                self.state.last_at.saturating_add(SWEEP_INTERVAL),
            );
        }
    }

    fn leeway(&self) -> Duration {
        self.config.tokens.leeway()
    }

    fn arm_sweep(&mut self, now: Instant) {
        if self.timers.get(&TimerKind::Sweep).is_none() {
            self.timers
                .set(TimerKind::Sweep, now.saturating_add(SWEEP_INTERVAL));
        }
    }

    // ---- handshake ------------------------------------------------------------------

    fn feed_is_fresh(&self, now: Instant) -> bool {
        let max = Limits::ms(self.config.limits.max_revocation_staleness_ms);
        let fresh = self
            .state
            .feed_as_of
            .is_some_and(|as_of| now.saturating_since(as_of) <= max);
        fresh || planted!(self.plants, RevocationFailOpen)
    }

    fn handshake(
        &mut self,
        ctx: &mut Ctx,
        conn: ConnId,
        req: &HandshakeRequest,
    ) -> HandshakeDecision {
        let reject = |status, code| HandshakeDecision::Reject {
            status,
            code,
            retry_after_ms: None,
        };
        if req.path != "/ws" {
            return reject(HttpStatus::NotFound, "not_found");
        }
        if !req.within_bounds() {
            return reject(HttpStatus::BadRequest, "handshake_too_large");
        }
        if self.state.sessions.contains_key(&conn) {
            return reject(HttpStatus::BadRequest, "duplicate_connection_id");
        }
        if let Err(wait) = self.take_ip_token(ctx.now, req.peer) {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "ip_rate_limited",
                retry_after_ms: Some(millis(wait)),
            };
        }
        let allow = &self.config.limits.origin_allow_list;
        if !allow.is_empty()
            && !req
                .header_value("origin")
                .is_some_and(|o| allow.iter().any(|a| a == o))
        {
            return reject(HttpStatus::Forbidden, "origin_not_allowed");
        }
        let credential = match req.credential(self.config.limits.allow_query_token) {
            Ok(c) => c,
            Err(CredentialError::TooLarge) => {
                return reject(HttpStatus::BadRequest, "handshake_too_large");
            }
            Err(CredentialError::Missing) => {
                return reject(HttpStatus::Unauthorized, "missing_credential");
            }
            Err(CredentialError::BadAuthorization) => {
                return reject(HttpStatus::Unauthorized, "bad_authorization");
            }
            Err(CredentialError::BadSubprotocol) => {
                return reject(HttpStatus::Unauthorized, "bad_subprotocol");
            }
            Err(CredentialError::QueryTokenDisabled) => {
                return reject(HttpStatus::Unauthorized, "query_token_disabled");
            }
        };
        if !self.feed_is_fresh(ctx.now) {
            return HandshakeDecision::Reject {
                status: HttpStatus::ServiceUnavailable,
                code: "auth_unavailable",
                retry_after_ms: Some(1000),
            };
        }
        let (identity, via) = match self.authenticate(ctx, &credential) {
            Ok(found) => found,
            Err(code) => return reject(HttpStatus::Unauthorized, code),
        };
        let held = self
            .state
            .cap_slots
            .get(&identity.user)
            .copied()
            .unwrap_or(0);
        if held >= self.config.limits.max_connections_per_user {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "too_many_connections",
                retry_after_ms: Some(1000),
            };
        }
        if self.state.sessions.len() >= self.config.limits.max_connections {
            return HandshakeDecision::Reject {
                status: HttpStatus::TooManyRequests,
                code: "server_full",
                retry_after_ms: Some(1000),
            };
        }
        let user = identity.user.clone();
        let expiry = identity.exp.saturating_add(self.leeway());
        self.emit(
            ctx,
            Event::SessionOpened {
                conn,
                identity,
                via,
                peer: req.peer,
            },
        );
        let live_from = self
            .state
            .sessions
            .get(&conn)
            .map_or(Seq::new(1), |s| s.live_from);
        self.live.insert(conn, LiveConn::new(live_from));
        self.timers.set(TimerKind::Expiry(conn), expiry);
        self.user_buckets
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::new(self.config.limits.user_rate, ctx.now));
        self.send_direct(
            ctx,
            conn,
            &ServerFrame::ConnectionEstablished {
                user_id: user.clone(),
                connection_id: conn,
                latest_seq: self.state.latest_seq(&user),
                critical_events: crate::protocol::CRITICAL_EVENTS,
            },
        );
        let subprotocol = (via == CredentialKind::Subprotocol).then_some(JWT_SUBPROTOCOL);
        HandshakeDecision::Accept { user, subprotocol }
    }

    fn take_ip_token(&mut self, now: Instant, ip: IpAddr) -> Result<(), Duration> {
        if !self.ip_buckets.contains_key(&ip)
            && self.ip_buckets.len() >= self.config.limits.max_tracked_ips
        {
            self.ip_buckets.retain(|_, b| !b.is_full(now));
            if self.ip_buckets.len() >= self.config.limits.max_tracked_ips {
                // Fail closed: an attacker spraying addresses must not evict honest buckets.
                return Err(SWEEP_INTERVAL);
            }
        }
        let rate = self.config.limits.ip_handshake_rate;
        let r = self
            .ip_buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(rate, now))
            .try_take(now);
        self.arm_sweep(now);
        r
    }

    fn authenticate(
        &mut self,
        ctx: &mut Ctx,
        credential: &Credential,
    ) -> Result<(Identity, CredentialKind), &'static str> {
        let (token, via) = match credential {
            Credential::Bearer(t) => (t, CredentialKind::Bearer),
            Credential::Subprotocol(t) => (t, CredentialKind::Subprotocol),
            Credential::QueryToken(t) => (t, CredentialKind::QueryToken),
            Credential::Ticket(ticket) => {
                return self
                    .redeem_ticket(ctx, ticket)
                    .map(|i| (i, CredentialKind::Ticket));
            }
        };
        let claims = self
            .validator
            .validate(token.as_bytes(), ctx.now, TokenType::Access)
            .map_err(|e| e.code())?;
        Ok((identity_of(&claims), via))
    }

    fn redeem_ticket(&mut self, ctx: &mut Ctx, ticket: &str) -> Result<Identity, &'static str> {
        let digest = hex(&Sha256::digest(ticket.as_bytes()));
        let record = self
            .state
            .tickets
            .get(&digest)
            .cloned()
            .ok_or("unknown_ticket")?;
        self.emit(ctx, Event::TicketConsumed { digest });
        if ctx.now >= record.expires {
            return Err("ticket_expired");
        }
        if ctx.now >= record.identity.exp.saturating_add(self.leeway()) {
            return Err(TokenError::Expired.code());
        }
        if self.identity_revoked(&record.identity) {
            return Err("revoked");
        }
        Ok(record.identity)
    }

    /// The user's tickets that are unredeemed and not yet expired at `now`.
    fn live_tickets_of(&self, user: &UserId, now: Instant) -> usize {
        self.state.tickets_by_user.get(user).map_or(0, |held| {
            held.iter()
                .filter(|d| self.state.tickets.get(*d).is_some_and(|t| now < t.expires))
                .count()
        })
    }

    fn identity_revoked(&self, id: &Identity) -> bool {
        self.validator
            .is_revoked_identity(&id.jti, &id.user, id.iat)
    }

    fn issue_ticket(
        &mut self,
        ctx: &mut Ctx,
        authorization: Option<&str>,
    ) -> Result<IssuedTicket, TicketRefusal> {
        let refuse = |status, code| TicketRefusal { status, code };
        let token = authorization
            .and_then(|a| a.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or(refuse(HttpStatus::Unauthorized, "missing_credential"))?;
        if !self.feed_is_fresh(ctx.now) {
            return Err(refuse(HttpStatus::ServiceUnavailable, "auth_unavailable"));
        }
        let claims = self
            .validator
            .validate(token.as_bytes(), ctx.now, TokenType::Access)
            .map_err(|e| refuse(HttpStatus::Unauthorized, e.code()))?;
        if self.state.tickets.len() >= self.config.limits.max_tickets {
            return Err(refuse(HttpStatus::TooManyRequests, "too_many_tickets"));
        }
        // Per user, only tickets that could still be redeemed count: expired ones wait for
        // the sweep but no longer hold a place. Without this bound one user could take the
        // whole store and every other user would get 429 (the `TicketsUnboundedPerUser`
        // planted bug).
        if !planted!(self.plants, TicketsUnboundedPerUser)
            && self.live_tickets_of(claims.sub(), ctx.now)
                >= self.config.limits.max_tickets_per_user
        {
            return Err(refuse(
                HttpStatus::TooManyRequests,
                "too_many_tickets_per_user",
            ));
        }
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.ticket_key)
            .map_err(|_| refuse(HttpStatus::ServiceUnavailable, "ticket_key"))?;
        mac.update(&self.state.tickets_issued.to_le_bytes());
        let tag = mac.finalize().into_bytes();
        let ticket = hex(tag.get(..16).unwrap_or(&tag));
        let digest = hex(&Sha256::digest(ticket.as_bytes()));
        let expires = ctx
            .now
            .saturating_add(Limits::ms(self.config.limits.ticket_ttl_ms));
        self.emit(
            ctx,
            Event::TicketIssued {
                digest,
                identity: identity_of(&claims),
                expires,
            },
        );
        self.arm_sweep(ctx.now);
        Ok(IssuedTicket { ticket, expires })
    }

    // ---- frames ---------------------------------------------------------------------

    fn on_text(&mut self, ctx: &mut Ctx, conn: ConnId, data: &[u8]) {
        let Some(session) = self.state.sessions.get(&conn) else {
            return;
        };
        if data.len() > self.config.limits.max_frame_bytes {
            return self.close(ctx, conn, CloseReason::FrameTooBig);
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return self.close(ctx, conn, CloseReason::InvalidUtf8);
        };
        // Borrowed: the keep-alives, the most frequent frames, never need an owned copy.
        let user = &session.identity.user;
        let taken = match self.user_buckets.get_mut(user) {
            Some(bucket) => bucket.try_take(ctx.now),
            None => {
                let mut bucket = TokenBucket::new(self.config.limits.user_rate, ctx.now);
                let taken = bucket.try_take(ctx.now);
                self.user_buckets.insert(user.clone(), bucket);
                taken
            }
        };
        if let Err(wait) = taken {
            self.rate_limited += 1;
            let frame = ServerFrame::Error {
                code: ErrorCode::RateLimited,
                message: "rate limit exceeded".into(),
                retryable: true,
                retry_after_ms: Some(millis(wait)),
                oldest_seq: None,
            };
            return self.reply_error(ctx, conn, frame);
        }
        match crate::protocol::decode_inbound(text) {
            Ok(inbound) if self.answer_keepalive(ctx, conn, &inbound) => {}
            Ok(inbound) => self.route(ctx, conn, inbound),
            Err(e) => self.reply_error(ctx, conn, ServerFrame::error(e.code(), e.to_string())),
        }
    }

    /// Sends an error frame and charges the protocol-error budget when the code counts.
    pub(crate) fn reply_error(&mut self, ctx: &mut Ctx, conn: ConnId, frame: ServerFrame) {
        let counts =
            matches!(&frame, ServerFrame::Error { code, .. } if code.counts_as_protocol_error());
        self.send_direct(ctx, conn, &frame);
        if !counts {
            return;
        }
        let limits = &self.config.limits;
        let (budget, window) = (
            limits.protocol_error_budget,
            Limits::ms(limits.protocol_error_window_ms),
        );
        let exceeded = self
            .live
            .get_mut(&conn)
            .is_some_and(|l| l.protocol_error(ctx.now, budget, window));
        if exceeded {
            self.close(ctx, conn, CloseReason::ProtocolErrorBudget);
        }
    }

    /// Queues a frame for one connection, closing it as a slow consumer when its queue is full.
    pub(crate) fn push_frame(&mut self, ctx: &mut Ctx, conn: ConnId, frame: WireFrame) -> bool {
        let admitted = self.admit_send(ctx, conn);
        if admitted {
            ctx.out.sends.push((conn, frame));
        }
        admitted
    }

    /// Counts one more frame into `conn`'s send queue, or closes it as a slow consumer when
    /// the queue is full; the caller pushes the frame only when this says yes.
    pub(crate) fn admit_send(&mut self, ctx: &mut Ctx, conn: ConnId) -> bool {
        let cap = self.config.limits.send_queue_capacity;
        let Some(l) = self.live.get_mut(&conn) else {
            return false;
        };
        if l.queued >= cap && !planted!(self.plants, UnboundedQueue) {
            self.close(ctx, conn, CloseReason::SlowConsumer);
            return false;
        }
        l.queued += 1;
        self.peak_queue_depth = self.peak_queue_depth.max(l.queued);
        true
    }

    pub(crate) fn send_direct(&mut self, ctx: &mut Ctx, conn: ConnId, frame: &ServerFrame) {
        self.push_frame(ctx, conn, frame.render());
    }

    // ---- the stream -----------------------------------------------------------------

    /// Appends a stream event to `user`'s outbox and fans it out to their connections.
    pub(crate) fn append_stream(
        &mut self,
        ctx: &mut Ctx,
        user: UserId,
        kind: StreamKind,
        thread: Option<crate::ids::ThreadId>,
        run: Option<RunId>,
        payload: Payload,
    ) {
        let entry = Arc::new(StreamEntry {
            at: ctx.now,
            kind,
            thread,
            run,
            payload,
        });
        self.append_entry(ctx, user, entry);
    }

    /// Appends `entry` (made at `ctx.now`) at the next seq of `user`'s stream and fans it out
    /// to their connections.
    pub(crate) fn append_entry(&mut self, ctx: &mut Ctx, user: UserId, entry: Arc<StreamEntry>) {
        // The targets are read before the event takes `user` (so it is never cloned); an
        // append changes no session, so they are the same after it.
        let mut targets = std::mem::take(&mut self.targets);
        if planted!(self.plants, BroadcastLeak) {
            targets.extend(self.state.sessions.keys().copied());
        } else {
            let set = match &entry.thread {
                Some(t) if planted!(self.plants, ThreadIdAsUserId) => {
                    UserId::parse(t.as_str()).and_then(|u| self.state.by_user.get(&u))
                }
                _ => self.state.by_user.get(&user),
            };
            if let Some(set) = set {
                targets.extend(set.iter().copied());
            }
        }
        let seq = self.state.latest_seq(&user).next();
        self.deliver(ctx, user, seq, entry, &targets);
        targets.clear();
        self.targets = targets;
    }

    /// Appends `entry` to the stream of every connected user, each copy at that user's own
    /// next seq (PROTOCOL.md section 7), in user order. Connections and outboxes are both
    /// ordered by user, so one walk of the two finds every copy's targets and seq: two
    /// B-tree searches per user were half of a broadcast's time.
    pub(crate) fn append_to_every_user(&mut self, ctx: &mut Ctx, entry: &Arc<StreamEntry>) {
        if planted!(self.plants, BroadcastLeak) {
            let users: Vec<UserId> = self.state.by_user.keys().cloned().collect();
            for user in users {
                self.append_entry(ctx, user, Arc::clone(entry));
            }
            return;
        }
        let mut targets = std::mem::take(&mut self.targets);
        let mut users = std::mem::take(&mut self.broadcast_users);
        let mut outboxes = self.state.outboxes.iter().peekable();
        for (user, set) in &self.state.by_user {
            let mut latest = Seq::default();
            while let Some((u, outbox)) = outboxes.peek() {
                match (*u).cmp(user) {
                    std::cmp::Ordering::Less => drop(outboxes.next()),
                    std::cmp::Ordering::Equal => {
                        latest = outbox.latest();
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            targets.extend(set.iter().copied());
            users.push((user.clone(), latest.next(), targets.len()));
        }
        // Delivering one copy changes no other user's stream or connections (a slow
        // consumer's close touches only its own user's), so what the walk read still holds.
        let mut start = 0;
        for (user, seq, end) in users.drain(..) {
            self.deliver(ctx, user, seq, Arc::clone(entry), &targets[start..end]);
            start = end;
        }
        targets.clear();
        self.targets = targets;
        self.broadcast_users = users;
    }

    /// Stores `entry` at `seq` (the user's next) and sends its frame to `conns`, rendered
    /// once for all of them and not at all when there are none.
    fn deliver(
        &mut self,
        ctx: &mut Ctx,
        user: UserId,
        seq: Seq,
        entry: Arc<StreamEntry>,
        conns: &[ConnId],
    ) {
        let frame = (!conns.is_empty()).then(|| entry.render(seq, &user, &mut self.scratch));
        self.emit(ctx, Event::StreamAppended { user, seq, entry });
        if planted!(self.plants, AckWithoutForward) {
            return;
        }
        if let Some(frame) = frame {
            for conn in conns {
                self.push_frame(ctx, *conn, WireFrame::from(Arc::clone(&frame)));
            }
        }
    }

    /// Sends as much of a pending `resume` backlog as the connection's queue allows.
    pub(crate) fn pump_backfill(&mut self, ctx: &mut Ctx, conn: ConnId) {
        loop {
            let cap = self.config.limits.send_queue_capacity;
            let Some(l) = self.live.get(&conn) else {
                return;
            };
            let Some(b) = l.backfill.clone() else { return };
            let Some(user) = self
                .state
                .sessions
                .get(&conn)
                .map(|s| s.identity.user.clone())
            else {
                return;
            };
            let next = b.cursor.next();
            if next >= b.before {
                if let Some(l) = self.live.get_mut(&conn) {
                    l.backfill = None;
                }
                let done = ServerFrame::Resumed {
                    from_seq: b.from,
                    count: b.sent,
                };
                return self.send_direct(ctx, conn, &done);
            }
            if l.queued >= cap {
                return;
            }
            let outbox = self.state.outboxes.get(&user);
            let scratch = &mut self.scratch;
            match outbox
                .and_then(|o| o.get(next))
                .map(|e| e.render(next, &user, scratch))
            {
                Some(frame) => {
                    if let Some(l) = self.live.get_mut(&conn)
                        && let Some(b) = l.backfill.as_mut()
                    {
                        b.cursor = next;
                        b.sent += 1;
                    }
                    if !self.push_frame(ctx, conn, WireFrame::from(frame)) {
                        return;
                    }
                }
                None => {
                    // Trimmed while paging: say so, then continue from the oldest kept.
                    let oldest = outbox.map_or(b.before, |o| o.oldest());
                    let jump = Seq::new(oldest.get().saturating_sub(1)).max(next);
                    if let Some(l) = self.live.get_mut(&conn)
                        && let Some(b) = l.backfill.as_mut()
                    {
                        b.cursor = jump;
                    }
                    let gap = resume_gap(oldest);
                    self.send_direct(ctx, conn, &gap);
                }
            }
        }
    }

    // ---- timers, feed, closing ------------------------------------------------------

    fn on_tick(&mut self, ctx: &mut Ctx) {
        while let Some(kind) = self.timers.pop_due(ctx.now) {
            match kind {
                TimerKind::Expiry(conn) => {
                    if self.state.sessions.contains_key(&conn) {
                        self.close(ctx, conn, CloseReason::TokenExpired);
                    }
                }
                TimerKind::Run(run) => self.step_run(ctx, run),
                TimerKind::Sweep => self.sweep(ctx),
            }
        }
    }

    fn step_run(&mut self, ctx: &mut Ctx, run: RunId) {
        let Some(r) = self.state.runs.get(&run) else {
            return;
        };
        let Some(step) = r.plan.get(r.next_step) else {
            return;
        };
        let (kind, payload) = (step.kind, step.payload(run));
        let (owner, thread) = (r.owner.clone(), r.thread.clone());
        self.append_stream(ctx, owner, kind, Some(thread), Some(run), payload);
        if let Some(r) = self.state.runs.get(&run) {
            self.timers.set(TimerKind::Run(run), r.next_at);
        }
    }

    /// Starts the run timer after `RunStarted` + its first step.
    pub(crate) fn arm_run(&mut self, run: RunId) {
        if let Some(r) = self.state.runs.get(&run) {
            self.timers.set(TimerKind::Run(run), r.next_at);
        }
    }

    pub(crate) fn stop_run_timer(&mut self, run: RunId) {
        self.timers.stop(&TimerKind::Run(run));
    }

    fn sweep(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let expired: Vec<String> = self
            .state
            .tickets
            .iter()
            .filter(|(_, t)| t.expires <= now)
            .map(|(d, _)| d.clone())
            .collect();
        for digest in expired {
            self.emit(ctx, Event::TicketConsumed { digest });
        }
        self.ip_buckets.retain(|_, b| !b.is_full(now));
        let by_user = &self.state.by_user;
        self.user_buckets
            .retain(|u, b| by_user.contains_key(u) || !b.is_full(now));
        self.validator.prune(now);
        if !self.state.tickets.is_empty()
            || !self.ip_buckets.is_empty()
            || self.user_buckets.len() > by_user.len()
        {
            self.timers
                .set(TimerKind::Sweep, now.saturating_add(SWEEP_INTERVAL));
        }
    }

    fn on_feed(&mut self, ctx: &mut Ctx, as_of: Instant, revocations: Vec<Revocation>) {
        let newer = self.state.feed_as_of.is_none_or(|old| as_of > old);
        if !newer && revocations.is_empty() {
            return;
        }
        // Only a new revocation can end a session (each was checked when it opened or
        // reauthenticated), and only the sessions of the revoked token or user.
        let mut candidates: Vec<ConnId> = revocations
            .iter()
            .filter_map(|r| match r {
                Revocation::Jti { jti, .. } => self.state.by_jti.get(jti),
                Revocation::User { user, .. } => self.state.by_user.get(user),
            })
            .flatten()
            .copied()
            .collect();
        self.emit(ctx, Event::FeedSynced { as_of, revocations });
        candidates.sort_unstable();
        candidates.dedup();
        let revoked: Vec<ConnId> = candidates
            .into_iter()
            .filter(|c| {
                self.state
                    .sessions
                    .get(c)
                    .is_some_and(|s| self.identity_revoked(&s.identity))
            })
            .collect();
        for conn in revoked {
            self.close(ctx, conn, CloseReason::TokenRevoked);
        }
    }

    /// Closes a session from the gateway side: a close frame goes out.
    pub(crate) fn close(&mut self, ctx: &mut Ctx, conn: ConnId, reason: CloseReason) {
        self.end_session(ctx, conn, reason, true);
    }

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

    // ---- accessors for the router -----------------------------------------------------

    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    pub(crate) fn plants(&self) -> Plants {
        self.plants
    }

    pub(crate) fn live_mut(&mut self, conn: ConnId) -> Option<&mut LiveConn> {
        self.live.get_mut(&conn)
    }

    pub(crate) fn validate_access(
        &mut self,
        token: &str,
        now: Instant,
    ) -> Result<Identity, TokenError> {
        self.validator
            .validate(token.as_bytes(), now, TokenType::Access)
            .map(|c| identity_of(&c))
    }

    pub(crate) fn revocation_view_fresh(&self, now: Instant) -> bool {
        self.feed_is_fresh(now)
    }

    pub(crate) fn rearm_expiry(&mut self, conn: ConnId, exp: Instant) {
        let at = exp.saturating_add(self.leeway());
        self.timers.set(TimerKind::Expiry(conn), at);
    }
}

/// The fields of validated claims a session keeps.
fn identity_of(claims: &Claims) -> Identity {
    Identity {
        user: claims.sub().clone(),
        jti: claims.jti().clone(),
        iat: claims.iat(),
        exp: claims.exp(),
        can_broadcast: claims.permissions().allows("system:broadcast"),
    }
}

pub(crate) fn resume_gap(oldest: Seq) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::ResumeGap,
        message: format!("events before seq {} are no longer retained", oldest.get()),
        retryable: false,
        retry_after_ms: None,
        oldest_seq: Some(oldest),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
