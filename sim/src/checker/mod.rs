//! Invariants as code: one checker per invariant, each fed the same stream of
//! observations and asked again at the end of the run.
//!
//! Checkers see only what the world observes: the gateway's event log, what each client
//! connection received, handshake verdicts with the ground truth about the credential used,
//! and the gateway's size counters. They never reach into core internals, so a checker
//! cannot be fooled by the code it checks (TigerBeetle routes replica events the same way).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use gauntlet_core::{ConnId, FamilyId, GatewayStats, Instant, Kid, LogEntry, UserId};

use crate::frame_view::FrameView;

mod auth;
mod bounds;
mod close_codes;
mod delivery;
mod envelope;
mod five_events;
mod ip_rate;
mod isolation;
mod keepalive;
mod limits;
mod marks;
mod open_sessions;
mod rate_limit;
mod seen;
mod seq_set;
mod session;
#[cfg(test)]
mod test_fixtures;
mod thread_owner;
mod wire_shape;

pub(crate) use auth::{AuthChecker, CredTruth, PARTNER_KID_PREFIX};
pub(crate) use bounds::BoundsChecker;
pub(crate) use close_codes::CloseCodesChecker;
pub(crate) use delivery::DeliveryChecker;
pub(crate) use envelope::{
    EnvelopeChecker, IMPERSONATION_TASK, Tagged, UNPRIVILEGED_NOTICE, message_id,
};
pub(crate) use five_events::FiveEventsChecker;
pub(crate) use ip_rate::IpRateChecker;
pub(crate) use isolation::IsolationChecker;
pub(crate) use keepalive::{KeepaliveChecker, keepalive_reply};
pub(crate) use limits::LimitsChecker;
pub use marks::MARKED_RULES;
pub(crate) use marks::Marks;
pub(crate) use rate_limit::RateLimitChecker;
pub(crate) use seen::Seen;
pub(crate) use session::SessionChecker;
pub(crate) use thread_owner::ThreadOwnerChecker;

/// One thing the world saw.
#[derive(Debug)]
pub(crate) enum Obs<'a> {
    /// The gateway appended these log entries.
    Log(&'a [LogEntry]),
    /// A handshake got its verdict.
    Handshake {
        at: Instant,
        /// The connection it opens when accepted.
        conn: ConnId,
        /// The request's peer address.
        peer: IpAddr,
        truth: &'a CredTruth,
        accepted_as: Option<&'a UserId>,
        reject_code: Option<&'static str>,
        /// A refusal's HTTP status and `retry_after_ms`.
        status: Option<(u16, Option<u64>)>,
        /// The subprotocol an accepted upgrade selected.
        selected: Option<&'static str>,
        /// Whether the request's credential was a `jwt.<token>` subprotocol offered beside
        /// `jwt` (no `Authorization` header before it).
        token_in_subprotocol: bool,
    },
    /// A client connection received a text frame (already parsed once).
    Frame {
        conn: ConnId,
        session_user: &'a UserId,
        frame: &'a Arc<str>,
        json: &'a FrameView<'a>,
    },
    /// The network corrupted a frame a client sent on `conn`: its intent is unknown.
    RequestCorrupted { conn: ConnId },
    /// A client connection asked to resume from `last_seq`.
    ResumeSent { conn: ConnId, last_seq: u64 },
    /// A text frame (or, when `control`, a ping control frame) reached an open session of
    /// the gateway; `accepted` means it was charged to the user's bucket, not refused.
    Inbound {
        at: Instant,
        user: &'a UserId,
        accepted: bool,
        control: bool,
    },
    /// A `reauth` on a session of `session_user` (the user its handshake accepted) was
    /// answered `reauthenticated`; `truth` is the token it presented.
    Reauthed {
        at: Instant,
        conn: ConnId,
        session_user: &'a UserId,
        truth: &'a CredTruth,
    },
    /// The auth service issued a revocation (at true time `at`).
    Revocation {
        at: Instant,
        revocation: &'a gauntlet_core::token::Revocation,
    },
    /// The auth service answered a flow it must have refused (or a key ring was built from
    /// a JWK Set it must have refused).
    AuthServiceMisbehaved { what: String },
    /// The world drove the auth service down `rule`'s path (a refresh, a reuse, an OAuth
    /// attack, a key ring built from a JWK Set with a weak key) and checked that it answered
    /// as the protocol says: sent only after that check passed, so it is a coverage mark's
    /// evidence, never a verdict of its own.
    AuthFlow { rule: &'static str },
    /// A key rotation removed `kid` from the ring the gateway trusts (at true time `at`).
    KeyRemoved { at: Instant, kid: &'a Kid },
    /// The auth service revoked refresh family `family` (a reuse was detected) at true
    /// time `at`, which was `auth_at` on its own clock.
    FamilyRevoked {
        at: Instant,
        auth_at: Instant,
        family: &'a FamilyId,
    },
    /// `user` logged out everywhere at true time `at`, `auth_at` on the auth service's
    /// clock (the clock its tokens' mint times are in).
    LoggedOutEverywhere {
        at: Instant,
        auth_at: Instant,
        user: &'a UserId,
    },
    /// `POST /tickets` answered `user`: a ticket, or a refusal with its code.
    TicketAnswer {
        at: Instant,
        user: &'a UserId,
        refused: Option<&'static str>,
    },
    /// Size counters, sampled.
    Stats(&'a GatewayStats),
    /// The run drains from here on: the world no longer fires the gateway's timers, so no
    /// deadline of the gateway's is due after it.
    TimersStopped,
    /// A client still holding `conn` learned it closed: by a close frame with `code`, or
    /// (`None`) because its transport broke.
    ClientClosed { conn: ConnId, code: Option<u16> },
    /// A binary frame on `conn` reaches the running gateway (shown before the gateway
    /// handles it).
    BinaryFrame { conn: ConnId },
    /// The running gateway is told to shut down gracefully (shown before it handles it).
    Shutdown,
    /// A `ping` or `heartbeat` on `conn` reached the running gateway, which has handled it
    /// (its log entries are shown first); `reply` is the kind that answers it, `limited`
    /// says the user's rate bucket refused it.
    Keepalive {
        conn: ConnId,
        reply: &'static str,
        limited: bool,
    },
}

/// A failed invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) invariant: &'static str,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(invariant: &'static str, message: impl Into<String>) -> Self {
        Self {
            invariant,
            message: message.into(),
        }
    }
}

/// What the end-of-run checks need.
pub(crate) struct EndState<'a> {
    /// Connections still open at the end, with their user.
    pub(crate) open: &'a BTreeMap<ConnId, UserId>,
    /// Whether the run reached quiescence (liveness phase finished with no fault).
    pub(crate) quiescent: bool,
}

/// A checker of one invariant.
pub(crate) trait Checker {
    /// The invariant's name (its module).
    fn name(&self) -> &'static str;
    /// Checks one observation.
    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure>;
    /// Checks what must hold once the run is over. Nothing, unless the invariant says what
    /// an ended run must look like: most are judged observation by observation.
    fn finish(&mut self, _end: &EndState<'_>) -> Result<(), Failure> {
        Ok(())
    }
}

/// Every checker, in a fixed order, and the coverage marks of what they were shown.
pub(crate) struct Checkers {
    list: Vec<Box<dyn Checker + Send>>,
    marks: Marks,
}

impl Checkers {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        let list: Vec<Box<dyn Checker + Send>> = vec![
            Box::new(IsolationChecker),
            Box::new(FiveEventsChecker::default()),
            Box::new(DeliveryChecker::default()),
            Box::new(AuthChecker::new(config)),
            Box::new(RateLimitChecker::new(config.limits.user_rate)),
            Box::new(BoundsChecker::new(config)),
            Box::new(ThreadOwnerChecker::default()),
            Box::new(EnvelopeChecker::default()),
            Box::new(SessionChecker::new(config)),
            Box::new(IpRateChecker::new(config)),
            Box::new(LimitsChecker::new(config)),
            Box::new(CloseCodesChecker::default()),
            Box::new(KeepaliveChecker::default()),
        ];
        Self {
            list,
            marks: Marks::new(config),
        }
    }

    pub(crate) fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        self.marks.observe(obs);
        self.list.iter_mut().try_for_each(|c| c.observe(obs))
    }

    pub(crate) fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        self.list.iter_mut().try_for_each(|c| c.finish(end))
    }

    /// The coverage marks so far.
    pub(crate) fn marks(&self) -> &Marks {
        &self.marks
    }
}
