//! Coverage marks: per protocol rule id, how often a run was seen to take that rule's path.
//!
//! An oracle that never sees its path run checks nothing, so every observation the checkers
//! get also reaches [`Marks`], which counts the rule ids (exactly as `docs/protocol.md` spells
//! them) whose path the observation shows ran: a `RESUME_GAP` error frame marks `RESUME-GAP`,
//! a 1013 close (`SessionClosed { SlowConsumer }`) marks `DELIVERY-QUEUE-BOUND`, a handshake
//! refused `too_many_connections` marks `WS-CAP-PER-USER`. A mark says the path ran, not that
//! it ran correctly: that is the checkers' job. The one exception is [`Obs::AuthFlow`]: the
//! world sends it only once it has judged an auth-service answer (or a key ring's build from
//! a JWK Set) on the rule's path right, since a refused call reaches no checker otherwise.
//!
//! Marks are observations only. This module must never fail a run, feed anything back into
//! the world, or depend on anything but the observations in order, so the same seed gives the
//! same marks on any thread and for any `--jobs`, and journals and state hashes never change.

use std::collections::{BTreeMap, BTreeSet};

use gauntlet_core::token::{Revocation, TokenError};
use gauntlet_core::{CloseReason, CredentialKind, Event, Jti, StreamKind, UserId};

use super::auth::{CredTruth, PARTNER_KID_PREFIX};
use super::{IMPERSONATION_TASK, Obs};
use crate::frame_view::FrameView;
use crate::id_map::{ConnMap, UserMap};

/// The rules whose mark a CI sweep must fire (`gauntlet sim --require-marks`). The rules of
/// `docs/protocol.md` that are not here are listed, each with its reason, in
/// `docs/oracles.md` under "Rules without a coverage mark in the sweep".
pub const MARKED_RULES: &[&str] = &[
    "AGENT-EVENT-FIELDS",
    "AGENT-LIVENESS",
    "AGENT-ORDER",
    "AGENT-TOOL-PAIRING",
    "AUTH-ALG-FROM-KEY",
    "AUTH-ALG-NONE",
    "AUTH-ALGORITHMS",
    "AUTH-CACHE-BOUND",
    "AUTH-CACHE-KEY",
    "AUTH-CACHE-NO-NEGATIVE",
    "AUTH-CACHE-RECHECK",
    "AUTH-CACHE-RING-CHANGE",
    "AUTH-CLAIM-AUD",
    "AUTH-CLAIM-EMAIL",
    "AUTH-CLAIM-FAM",
    "AUTH-CLAIM-ISS",
    "AUTH-CLAIM-JTI",
    "AUTH-CLAIM-PERMISSIONS",
    "AUTH-CLAIM-SUB",
    "AUTH-CLAIM-SVC-ID",
    "AUTH-CLAIM-TYPE",
    "AUTH-ERRORS-TYPED",
    "AUTH-EXP-LEEWAY",
    "AUTH-FAMILY-REVOKE-LEEWAY",
    "AUTH-HEADER-CRIT",
    "AUTH-HEADER-FORBIDDEN",
    "AUTH-IAT-FUTURE",
    "AUTH-IAT-MAX-AGE",
    "AUTH-JWS-BASE64URL",
    "AUTH-JWS-STRICT-JSON",
    "AUTH-JWS-THREE-PARTS",
    "AUTH-KEY-RETIRED",
    "AUTH-KEY-RING",
    "AUTH-KEY-ROTATION",
    "AUTH-KEY-SELECT",
    "AUTH-KEY-STRENGTH",
    "AUTH-LIFETIMES",
    "AUTH-MINT",
    "AUTH-NBF-LEEWAY",
    "AUTH-NUMERIC-DATE",
    "AUTH-REFRESH-BOUNDS",
    "AUTH-REFRESH-CONCURRENT",
    "AUTH-REFRESH-ROTATE",
    "AUTH-REFRESH-SINGLE-USE",
    "AUTH-REFRESH-THEFT",
    "AUTH-REVOKE-CLOSE-OPEN",
    "AUTH-REVOKE-GUARANTEE",
    "AUTH-REVOKE-JTI",
    "AUTH-REVOKE-NOT-BEFORE",
    "AUTH-REVOKE-STALE-FAIL-CLOSED",
    "AUTH-REVOKE-USER",
    "AUTH-SIGNATURE",
    "AUTH-TOKEN-MAX-LEN",
    "CLOSE-CODE-MAP",
    "CLOSE-GOING-AWAY",
    "DELIVERY-BROADCAST",
    "DELIVERY-EXACTLY-ONCE",
    "DELIVERY-ISOLATION",
    "DELIVERY-QUEUE-BOUND",
    "DELIVERY-SLOW-CONSUMER-RESUME",
    "DELIVERY-THREAD",
    "DELIVERY-TO-USER",
    "LOG-DETERMINISM",
    "LOG-FOLD",
    "LOG-RESTART",
    "MSG-BAD-MESSAGE",
    "MSG-BINARY",
    "MSG-BROADCAST-PERM",
    "MSG-ENVELOPE",
    "MSG-ERROR-CODES",
    "MSG-FRAME-TOO-BIG",
    "MSG-HEARTBEAT",
    "MSG-LIMITS",
    "MSG-PING",
    "MSG-PROTOCOL-ERROR-BUDGET",
    "MSG-REAUTH",
    "MSG-REAUTH-FAIL-CLOSED",
    "MSG-REAUTH-SAME-USER",
    "MSG-STOP-AGENT",
    "MSG-SUBSCRIBE",
    "MSG-THREAD-OWNER",
    "MSG-UNKNOWN-TYPE",
    "MSG-USER-ID-IGNORED",
    "MSG-USER-MESSAGE",
    "MSG-UTF8",
    "OAUTH-CODE-BINDINGS",
    "OAUTH-CODE-BURN",
    "OAUTH-CODE-SINGLE-USE",
    "OAUTH-CODE-TTL",
    "OAUTH-PKCE-S256",
    "OAUTH-REPLAY-REVOKES",
    "OAUTH-STATE",
    "OAUTH-STORES-BOUNDED",
    "OAUTH-TOKENS-IN-BODY",
    "OUT-DIRECT-NO-SEQ",
    "OUT-ENVELOPE",
    "OUT-SEQ-PER-USER",
    "OUTBOX-RETENTION",
    "PERM-ADMIN",
    "PERM-BROADCAST",
    "PERM-FORMAT",
    "PERM-MATCH",
    "RATE-ABUSE-CLOSE",
    "RATE-CONTROL-FRAMES",
    "RATE-LIMITED-REPLY",
    "RATE-USER",
    "RESUME-ERRORS",
    "RESUME-GAP",
    "RESUME-REPLAY",
    "SESSION-EXPIRY",
    "SESSION-REAUTH-EXTENDS",
    "WS-AUTH-BEFORE-UPGRADE",
    "WS-CAP-GLOBAL",
    "WS-CAP-PER-USER",
    "WS-CAP-RELEASE",
    "WS-CONNECTION-ESTABLISHED",
    "WS-CRED-ORDER",
    "WS-HANDSHAKE-BOUNDS",
    "WS-HTTP-STATUS",
    "WS-IP-RATE",
    "WS-IP-TRACK-BOUND",
    "WS-ORIGIN",
    "WS-PATH",
    "WS-QUERY-TOKEN",
    "WS-SUBPROTO-JWT-REQUIRED",
    "WS-SUBPROTO-SELECT",
    "WS-SUBPROTO-TOKEN",
    "WS-TICKET-IDENTITY",
    "WS-TICKET-ISSUE",
    "WS-TICKET-PER-USER",
    "WS-TICKET-SINGLE-USE",
    "WS-TICKET-TTL",
];

/// How often each rule's path was seen to run, by rule id.
#[derive(Debug, Clone, Default)]
pub(crate) struct Marks {
    /// Slot `i` counts [`MARKED_RULES`]`[i]` (empty until the first mark): a run marks
    /// millions of times, and a search of a map keyed by rule name was a few percent of it.
    counts: Vec<u64>,
    /// Where each call site's rule was last found in [`MARKED_RULES`], by the address of its
    /// name: most marks skip even the binary search. Only a shortcut; a miss searches.
    found: [(usize, usize, usize); 32],
    /// Rules outside [`MARKED_RULES`] (none today), counted all the same.
    other: BTreeMap<&'static str, u64>,
    /// `limits.outbox_max_events`: an outbox this long has started trimming.
    outbox_bound: usize,
    /// `limits.max_cached_tokens`: a cache this full evicts to take a new entry.
    cache_bound: usize,
    /// The user of each open session (from the log), to know whose session a 1013 closed.
    sessions: ConnMap<UserId>,
    /// Users with a session closed as a slow consumer, whose next `resumed` shows the
    /// slow-consumer resume path ran. Lookups only: its order never reaches the counts.
    slow_closed: UserMap<()>,
    /// Users with a frame refused by the rate limit since their last budget close, so a
    /// budget close of theirs shows the rate limit spent it.
    rate_limited: UserMap<()>,
    /// Real tokens a handshake refused with a token error, so a later acceptance of one shows
    /// the rejection was not cached. Lookups only; at most [`MAX_REFUSED_TRACKED`].
    token_refused: BTreeSet<Jti>,
}

/// Refused tokens remembered for `AUTH-CACHE-NO-NEGATIVE`; past it the oldest-sorting are
/// forgotten (a mark missed, never a wrong one).
const MAX_REFUSED_TRACKED: usize = 4096;

impl Marks {
    /// Marks for a gateway with this configuration.
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        Self {
            outbox_bound: config.limits.outbox_max_events,
            cache_bound: config.limits.max_cached_tokens,
            ..Self::default()
        }
    }

    /// The counts, by rule id (only rules marked at least once).
    pub(crate) fn counts(&self) -> BTreeMap<&'static str, u64> {
        let marked = MARKED_RULES
            .iter()
            .zip(&self.counts)
            .filter(|(_, n)| **n > 0)
            .map(|(rule, n)| (*rule, *n));
        let mut counts: BTreeMap<&'static str, u64> = marked.collect();
        counts.extend(self.other.iter().map(|(rule, n)| (*rule, *n)));
        counts
    }

    fn remember_refused(&mut self, jti: &Jti) {
        if self.token_refused.len() >= MAX_REFUSED_TRACKED {
            self.token_refused.pop_first();
        }
        self.token_refused.insert(jti.clone());
    }

    fn mark(&mut self, rule: &'static str) {
        // The same address and length are the same bytes.
        let (addr, len) = (rule.as_ptr() as usize, rule.len());
        let slot = (addr >> 3) % self.found.len();
        let index = match self.found[slot] {
            (a, l, i) if (a, l) == (addr, len) => Some(i),
            _ => {
                let found = MARKED_RULES.binary_search(&rule).ok();
                if let Some(i) = found {
                    self.found[slot] = (addr, len, i);
                }
                found
            }
        };
        let n = match index {
            Some(i) => {
                if self.counts.is_empty() {
                    self.counts = vec![0; MARKED_RULES.len()];
                }
                &mut self.counts[i]
            }
            None => self.other.entry(rule).or_default(),
        };
        *n = n.saturating_add(1);
    }

    /// Counts the rules whose path `obs` shows ran.
    pub(crate) fn observe(&mut self, obs: &Obs<'_>) {
        match obs {
            Obs::Log(entries) => {
                for e in *entries {
                    self.event(&e.event);
                }
            }
            Obs::Handshake {
                reject_code,
                truth,
                selected,
                ..
            } => match reject_code {
                None => {
                    // The upgrade selected the `jwt` the client offered beside its token.
                    if selected.is_some() {
                        self.mark("WS-SUBPROTO-SELECT");
                    }
                    // A token refused before is judged afresh, not by a remembered verdict.
                    if let CredTruth::Access { jti, .. } = truth
                        && self.token_refused.remove(jti)
                    {
                        self.mark("AUTH-CACHE-NO-NEGATIVE");
                    }
                    // A partner's key of the published JWK Set verified a token of its
                    // algorithm (ES256, ES384, EdDSA or PS256).
                    if let CredTruth::Access { kid: Some(kid), .. } = truth
                        && kid.as_str().starts_with(PARTNER_KID_PREFIX)
                    {
                        self.mark("AUTH-ALGORITHMS");
                    }
                }
                Some(code) => {
                    if let CredTruth::Access { jti, .. } = truth
                        && TokenError::CODES.contains(code)
                    {
                        self.remember_refused(jti);
                    }
                    // Every refusal picks its HTTP status in the same place.
                    self.mark("WS-HTTP-STATUS");
                    if let Some(rule) = reject_rule(code) {
                        self.mark(rule);
                    }
                    // The code names the check; an attack-table case refused with the code it
                    // expects also shows which rule of that check refused it.
                    if let CredTruth::Table { case, expected, .. } = truth
                        && expected == code
                        && let Some(rule) = table_case_rule(case, code)
                    {
                        self.mark(rule);
                    }
                }
            },
            Obs::Frame {
                frame,
                json,
                session_user,
                ..
            } => {
                if json.kind() == "resumed" && self.slow_closed.remove(*session_user).is_some() {
                    self.mark("DELIVERY-SLOW-CONSUMER-RESUME");
                }
                self.frame(frame, session_user, json);
            }
            Obs::Inbound {
                accepted,
                user,
                control,
                ..
            } => {
                self.mark("RATE-USER");
                if *control {
                    self.mark("RATE-CONTROL-FRAMES");
                }
                if !accepted {
                    self.mark("RATE-LIMITED-REPLY");
                    if !self.rate_limited.contains_key(*user) {
                        self.rate_limited.insert((*user).clone(), ());
                    }
                }
            }
            Obs::Reauthed { .. } => self.mark("SESSION-REAUTH-EXTENDS"),
            Obs::Stats(stats) => {
                // A hit found an entry by its full token and re-checked it.
                if stats.cache_hits > 0 {
                    self.mark("AUTH-CACHE-KEY");
                    self.mark("AUTH-CACHE-RECHECK");
                }
                // The trimming path runs only once an outbox has reached its bound.
                if stats.peak_outbox_len > 0 && stats.peak_outbox_len >= self.outbox_bound {
                    self.mark("OUTBOX-RETENTION");
                }
                // A full cache: the next miss evicts the entry that expires first.
                if stats.cache_len > 0 && stats.cache_len >= self.cache_bound {
                    self.mark("AUTH-CACHE-BOUND");
                }
                // A new address met a full table: it was admitted only in an idle bucket's
                // place, or refused.
                if stats.ip_table_full > 0 {
                    self.mark("WS-IP-TRACK-BOUND");
                }
            }
            // A rotation removed a key: the ring changed, so every cached result was dropped.
            Obs::KeyRemoved { .. } => {
                self.mark("AUTH-KEY-ROTATION");
                self.mark("AUTH-CACHE-RING-CHANGE");
            }
            // A reuse was detected and the whole family revoked.
            Obs::FamilyRevoked { .. } => self.mark("AUTH-REFRESH-THEFT"),
            Obs::LoggedOutEverywhere { .. } => self.mark("AUTH-REVOKE-NOT-BEFORE"),
            Obs::TicketAnswer { refused, .. } => match refused {
                None => self.mark("WS-TICKET-ISSUE"),
                Some("too_many_tickets_per_user") => self.mark("WS-TICKET-PER-USER"),
                Some(_) => {}
            },
            // The world checked the auth service's answer on this rule's path before telling.
            Obs::AuthFlow { rule } => self.mark(rule),
            Obs::RequestCorrupted { .. }
            | Obs::ResumeSent { .. }
            | Obs::Revocation { .. }
            | Obs::AuthServiceMisbehaved { .. }
            | Obs::TimersStopped
            | Obs::ClientClosed { .. }
            | Obs::BinaryFrame { .. }
            | Obs::Shutdown
            | Obs::Keepalive { .. } => {}
        }
    }

    fn event(&mut self, event: &Event) {
        // Every durable change is one typed event folded into the state.
        self.mark("LOG-FOLD");
        match event {
            Event::FeedSynced { revocations, .. } => {
                for r in revocations {
                    match r {
                        Revocation::Jti { .. } => self.mark("AUTH-REVOKE-JTI"),
                        Revocation::User { .. } => self.mark("AUTH-REVOKE-USER"),
                    }
                }
            }
            Event::SessionOpened {
                conn,
                identity,
                via,
                ..
            } => {
                self.sessions.insert(*conn, identity.user.clone());
                self.mark("WS-AUTH-BEFORE-UPGRADE");
                self.mark(match via {
                    CredentialKind::Bearer => "WS-CRED-ORDER",
                    CredentialKind::Subprotocol => "WS-SUBPROTO-TOKEN",
                    CredentialKind::Ticket => "WS-TICKET-IDENTITY",
                    CredentialKind::QueryToken => "WS-QUERY-TOKEN",
                });
            }
            Event::SessionReauthed { .. } => self.mark("MSG-REAUTH"),
            Event::SessionClosed { conn, reason } => {
                match (reason, self.sessions.remove(conn)) {
                    (CloseReason::SlowConsumer, Some(user)) => {
                        self.slow_closed.insert(user, ());
                    }
                    (CloseReason::ProtocolErrorBudget, Some(user))
                        if self.rate_limited.remove(&user).is_some() =>
                    {
                        self.mark("RATE-ABUSE-CLOSE");
                    }
                    _ => {}
                }
                // Every close releases the connection's slot under the per-user cap.
                self.mark("WS-CAP-RELEASE");
                if let Some(rule) = close_rule(*reason) {
                    self.mark(rule);
                    self.mark("CLOSE-CODE-MAP");
                }
            }
            Event::Subscribed { .. } => self.mark("MSG-SUBSCRIBE"),
            Event::ThreadCreated { .. } => self.mark("MSG-USER-MESSAGE"),
            Event::RunStarted { task, .. } => {
                self.mark("MSG-USER-MESSAGE");
                // A message whose envelope named another user started a run all the same
                // (the envelope checker judges whose).
                if task.starts_with(IMPERSONATION_TASK) {
                    self.mark("MSG-USER-ID-IGNORED");
                }
            }
            // A broadcast is one event however many users get a copy, so it marks its rules
            // once, like any other append.
            Event::StreamAppended { entry, .. } | Event::StreamBroadcast { entry } => {
                self.mark("OUT-SEQ-PER-USER");
                if entry.run().is_some() {
                    self.mark("AGENT-EVENT-FIELDS");
                }
                if entry.thread().is_some() {
                    self.mark("DELIVERY-THREAD");
                }
                match entry.kind() {
                    StreamKind::AgentStarted => self.mark("AGENT-ORDER"),
                    StreamKind::ToolCompleted => self.mark("AGENT-TOOL-PAIRING"),
                    StreamKind::AgentCompleted | StreamKind::AgentFailed => {
                        self.mark("AGENT-LIVENESS");
                    }
                    StreamKind::AgentCancelled => {
                        self.mark("AGENT-LIVENESS");
                        self.mark("MSG-STOP-AGENT");
                    }
                    StreamKind::SystemNotice => {
                        // Only a broadcast that passed the permission check appends a notice.
                        self.mark("DELIVERY-BROADCAST");
                        self.mark("PERM-BROADCAST");
                    }
                    StreamKind::AgentThinking | StreamKind::ToolExecuting => {}
                }
            }
            Event::TicketIssued { .. } => self.mark("WS-TICKET-ISSUE"),
            Event::TicketConsumed { .. } => self.mark("WS-TICKET-SINGLE-USE"),
            Event::Restarted => {
                // Every session is gone with the crash, without a close of its own.
                self.sessions.clear();
                self.mark("LOG-RESTART");
            }
        }
    }

    fn frame(&mut self, frame: &str, user: &UserId, json: &FrameView<'_>) {
        if json.seq().is_some() {
            // Fanned out to a connection of the user it names, as isolation requires.
            if json.user_id() == Some(user.as_str()) {
                self.mark("DELIVERY-ISOLATION");
            }
            // A stream event reached a connection of its user, in its envelope.
            self.mark("OUT-ENVELOPE");
            self.mark("DELIVERY-TO-USER");
            self.mark("DELIVERY-EXACTLY-ONCE");
            return;
        }
        self.mark("OUT-DIRECT-NO-SEQ");
        if json.message_id().is_some() {
            self.mark("MSG-ENVELOPE");
        }
        match json.kind() {
            "connection_established" => self.mark("WS-CONNECTION-ESTABLISHED"),
            "pong" => self.mark("MSG-PING"),
            "heartbeat_ack" => self.mark("MSG-HEARTBEAT"),
            "resumed" => self.mark("RESUME-REPLAY"),
            "subscribed" => self.mark("MSG-SUBSCRIBE"),
            "reauthenticated" => self.mark("MSG-REAUTH"),
            "message_accepted" => self.mark("MSG-USER-MESSAGE"),
            "error" => {
                self.mark("MSG-ERROR-CODES");
                if let Some(rule) = json.code().and_then(|c| error_rule(c, frame)) {
                    self.mark(rule);
                }
                if json.code() == Some("RESUME_GAP") {
                    // A gap exists only because retention dropped the events.
                    self.mark("OUTBOX-RETENTION");
                }
                if json.code() == Some("RATE_LIMITED") {
                    self.mark("RATE-LIMITED-REPLY");
                }
            }
            _ => {}
        }
    }
}

/// The rule whose path closed a session for `reason` (none for a peer's own close).
fn close_rule(reason: CloseReason) -> Option<&'static str> {
    Some(match reason {
        CloseReason::PeerClosed => return None,
        CloseReason::TokenExpired => "SESSION-EXPIRY",
        CloseReason::TokenRevoked => "AUTH-REVOKE-CLOSE-OPEN",
        CloseReason::FrameTooBig => "MSG-FRAME-TOO-BIG",
        CloseReason::BinaryFrame => "MSG-BINARY",
        CloseReason::InvalidUtf8 => "MSG-UTF8",
        CloseReason::ProtocolErrorBudget => "MSG-PROTOCOL-ERROR-BUDGET",
        CloseReason::SlowConsumer => "DELIVERY-QUEUE-BOUND",
        CloseReason::Shutdown => "CLOSE-GOING-AWAY",
    })
}

/// The rule whose path sent error `code`; where one code serves several rules, the error's
/// message (fixed text in the router) says which path sent it.
fn error_rule(code: &str, frame: &str) -> Option<&'static str> {
    Some(match code {
        "BAD_MESSAGE" if frame.contains("ahead of the stream") => "RESUME-ERRORS",
        "BAD_MESSAGE" if frame.contains("resume is already in progress") => "RESUME-ERRORS",
        "BAD_MESSAGE" if frame.contains("message_id too long") => "MSG-ENVELOPE",
        "BAD_MESSAGE" if frame.contains(" over ") => "MSG-LIMITS",
        "BAD_MESSAGE" => "MSG-BAD-MESSAGE",
        "UNKNOWN_TYPE" => "MSG-UNKNOWN-TYPE",
        "FORBIDDEN" if frame.contains("thread belongs to another user") => "MSG-THREAD-OWNER",
        "FORBIDDEN" if frame.contains("run belongs to another user") => "MSG-STOP-AGENT",
        "FORBIDDEN" if frame.contains("system:broadcast") => "MSG-BROADCAST-PERM",
        "NOT_FOUND" if frame.contains("no such thread") => "MSG-SUBSCRIBE",
        "NOT_FOUND" => "MSG-STOP-AGENT",
        "RATE_LIMITED" => "RATE-USER",
        "RESUME_GAP" => "RESUME-GAP",
        "AUTH_UNAVAILABLE" => "MSG-REAUTH-FAIL-CLOSED",
        "AUTH_FAILED" if frame.contains("another user") => "MSG-REAUTH-SAME-USER",
        "AUTH_FAILED" => "MSG-REAUTH",
        "LIMIT_EXCEEDED" => "MSG-LIMITS",
        _ => return None,
    })
}

/// The finer rule an attack-table case breaks, by the case's name, where its refusal code is
/// shared by several rules (`malformed`, `invalid_claim`, `missing_claim`, `bad_permissions`).
fn table_case_rule(case: &str, code: &str) -> Option<&'static str> {
    Some(match case {
        "two_parts" | "four_parts" => "AUTH-JWS-THREE-PARTS",
        "padded_signature"
        | "padded_header_or_payload"
        | "noncanonical_signature"
        | "standard_alphabet_payload" => "AUTH-JWS-BASE64URL",
        "non_json_header"
        | "non_json_payload"
        | "header_not_object"
        | "duplicate_key_header"
        | "duplicate_key_payload" => "AUTH-JWS-STRICT-JSON",
        "missing_sub" | "sub_too_long" => "AUTH-CLAIM-SUB",
        "email_too_long" | "email_multibyte_too_long" => "AUTH-CLAIM-EMAIL",
        "fam_control_char" => "AUTH-CLAIM-FAM",
        "missing_jti" => "AUTH-CLAIM-JTI",
        "permission_forbidden_char" => "PERM-FORMAT",
        // A decoy key of the published JWK Set, which the ring skipped.
        "jwks_use_enc" | "jwks_key_ops_without_verify" => "AUTH-KEY-RING",
        c if code == "invalid_claim"
            && ["exp_", "nbf_", "iat_"].iter().any(|p| c.starts_with(p)) =>
        {
            "AUTH-NUMERIC-DATE"
        }
        _ => return None,
    })
}

/// The rule whose path refused a handshake with `code`: the token error codes of
/// `TokenError::code` and the gateway's own refusals.
fn reject_rule(code: &str) -> Option<&'static str> {
    Some(match code {
        "too_long" => "AUTH-TOKEN-MAX-LEN",
        "malformed" => "AUTH-JWS-THREE-PARTS",
        "algorithm_none" => "AUTH-ALG-NONE",
        "algorithm_mismatch" => "AUTH-ALG-FROM-KEY",
        "unknown_key" => "AUTH-KEY-SELECT",
        "key_retired" => "AUTH-KEY-RETIRED",
        "forbidden_header" => "AUTH-HEADER-FORBIDDEN",
        "critical_header" => "AUTH-HEADER-CRIT",
        "bad_signature" => "AUTH-SIGNATURE",
        "missing_claim" | "invalid_claim" => "AUTH-ERRORS-TYPED",
        "wrong_issuer" => "AUTH-CLAIM-ISS",
        "wrong_audience" => "AUTH-CLAIM-AUD",
        "wrong_token_type" => "AUTH-CLAIM-TYPE",
        "expired" => "AUTH-EXP-LEEWAY",
        "not_yet_valid" => "AUTH-NBF-LEEWAY",
        "issued_in_future" => "AUTH-IAT-FUTURE",
        "too_old" => "AUTH-IAT-MAX-AGE",
        "bad_permissions" => "AUTH-CLAIM-PERMISSIONS",
        "revoked" => "AUTH-REVOKE-GUARANTEE",
        "not_found" => "WS-PATH",
        "handshake_too_large" => "WS-HANDSHAKE-BOUNDS",
        "ip_rate_limited" => "WS-IP-RATE",
        "origin_not_allowed" => "WS-ORIGIN",
        "missing_credential" | "bad_authorization" | "bad_subprotocol" => "WS-CRED-ORDER",
        "query_token_disabled" => "WS-QUERY-TOKEN",
        "jwt_subprotocol_required" => "WS-SUBPROTO-JWT-REQUIRED",
        "auth_unavailable" => "AUTH-REVOKE-STALE-FAIL-CLOSED",
        "too_many_connections" => "WS-CAP-PER-USER",
        "server_full" => "WS-CAP-GLOBAL",
        "unknown_ticket" => "WS-TICKET-SINGLE-USE",
        "ticket_expired" => "WS-TICKET-TTL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gauntlet_core::{ConnId, Instant, LogEntry, LogSeq};

    use super::*;
    use crate::checker::test_fixtures::handshake;

    fn frame(marks: &mut Marks, text: &str) {
        let user = UserId::parse("u1").unwrap();
        let frame: Arc<str> = Arc::from(text);
        marks.observe(&Obs::Frame {
            conn: ConnId::new(1),
            session_user: &user,
            frame: &frame,
            json: &FrameView::parse(&frame),
        });
    }

    fn closed(reason: CloseReason) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(1),
            at: Instant::from_unix_secs(1),
            event: Event::SessionClosed {
                conn: ConnId::new(1),
                reason,
            },
        }
    }

    #[test]
    fn error_frames_mark_the_rule_whose_path_sent_them() {
        let mut m = Marks::default();
        frame(
            &mut m,
            r#"{"type":"error","code":"RESUME_GAP","message":"gap","oldest_seq":9}"#,
        );
        frame(
            &mut m,
            r#"{"type":"error","code":"FORBIDDEN","message":"thread belongs to another user"}"#,
        );
        frame(&mut m, r#"{"type":"pong"}"#);
        let marked: Vec<&str> = m.counts().keys().copied().collect();
        assert_eq!(
            marked,
            [
                "MSG-ERROR-CODES",
                "MSG-PING",
                "MSG-THREAD-OWNER",
                "OUT-DIRECT-NO-SEQ",
                "OUTBOX-RETENTION",
                "RESUME-GAP"
            ]
        );
        assert_eq!(m.counts().get("OUT-DIRECT-NO-SEQ"), Some(&3));
    }

    #[test]
    fn closes_mark_their_reason_and_a_peer_close_only_the_cap_release() {
        let mut m = Marks::default();
        m.observe(&Obs::Log(&[
            closed(CloseReason::SlowConsumer),
            closed(CloseReason::PeerClosed),
        ]));
        assert_eq!(m.counts().get("DELIVERY-QUEUE-BOUND"), Some(&1));
        assert_eq!(m.counts().get("CLOSE-CODE-MAP"), Some(&1));
        assert_eq!(m.counts().get("WS-CAP-RELEASE"), Some(&2));
    }

    fn table_refusal(m: &mut Marks, case: &str, expected: &str, code: &'static str) {
        let truth = CredTruth::Table {
            case: case.into(),
            expected: expected.into(),
            kid: gauntlet_core::Kid::parse("hs-0").unwrap(),
        };
        m.observe(&handshake(
            ConnId::new(1),
            Instant::from_unix_secs(1),
            &truth,
            None,
            Some(code),
        ));
    }

    #[test]
    fn a_table_case_refused_with_its_code_marks_the_finer_rule_it_breaks() {
        let mut m = Marks::default();
        table_refusal(&mut m, "padded_signature", "malformed", "malformed");
        table_refusal(&mut m, "iat_string", "invalid_claim", "invalid_claim");
        table_refusal(&mut m, "missing_jti", "missing_claim", "missing_claim");
        let marked: Vec<&str> = m.counts().keys().copied().collect();
        assert_eq!(
            marked,
            [
                "AUTH-CLAIM-JTI",
                "AUTH-ERRORS-TYPED",
                "AUTH-JWS-BASE64URL",
                "AUTH-JWS-THREE-PARTS",
                "AUTH-NUMERIC-DATE",
                "WS-HTTP-STATUS",
            ]
        );
        // Refused by another check (the key left the ring meanwhile): only that check's rule.
        let mut m = Marks::default();
        table_refusal(&mut m, "padded_signature", "malformed", "unknown_key");
        table_refusal(&mut m, "iat_too_old", "too_old", "too_old");
        let marked: Vec<&str> = m.counts().keys().copied().collect();
        assert_eq!(
            marked,
            ["AUTH-IAT-MAX-AGE", "AUTH-KEY-SELECT", "WS-HTTP-STATUS"]
        );
    }

    #[test]
    fn an_accepted_partner_token_and_a_refused_decoy_mark_the_key_set_rules() {
        let at = Instant::from_unix_secs(1);
        let user = UserId::parse("u1").unwrap();
        let accepted = |m: &mut Marks, kid: &str| {
            let truth = CredTruth::Access {
                user: user.clone(),
                jti: gauntlet_core::Jti::parse("p1").unwrap(),
                minted: at,
                exp: at,
                kid: gauntlet_core::Kid::parse(kid),
                family: None,
                foreign_iat: Some(at),
                nbf: None,
                iat: None,
            };
            m.observe(&handshake(ConnId::new(1), at, &truth, Some(&user), None));
        };
        let mut m = Marks::default();
        // The auth service's own key marks nothing of the key set.
        accepted(&mut m, "hs-0");
        assert!(m.counts().is_empty());
        accepted(&mut m, "partner-eddsa");
        table_refusal(&mut m, "jwks_use_enc", "unknown_key", "unknown_key");
        // Refused by another rule: not the skipped key's path.
        table_refusal(
            &mut m,
            "jwks_key_ops_without_verify",
            "unknown_key",
            "bad_signature",
        );
        let marked: Vec<(&str, u64)> = m.counts().iter().map(|(r, n)| (*r, *n)).collect();
        assert_eq!(
            marked,
            [
                ("AUTH-ALGORITHMS", 1),
                ("AUTH-KEY-RING", 1),
                ("AUTH-KEY-SELECT", 1),
                ("AUTH-SIGNATURE", 1),
                ("WS-HTTP-STATUS", 2),
            ]
        );
    }

    #[test]
    fn a_judged_auth_flow_marks_its_rule_and_a_misbehaviour_marks_nothing() {
        let mut m = Marks::default();
        m.observe(&Obs::AuthFlow {
            rule: "OAUTH-CODE-BURN",
        });
        m.observe(&Obs::AuthFlow {
            rule: "OAUTH-CODE-BURN",
        });
        m.observe(&Obs::AuthServiceMisbehaved {
            what: "oauth callback with a forged state issued tokens".into(),
        });
        let marked: Vec<(&str, u64)> = m.counts().iter().map(|(r, n)| (*r, *n)).collect();
        assert_eq!(marked, [("OAUTH-CODE-BURN", 2)]);
    }

    #[test]
    fn a_rule_counts_once_per_mark_whatever_address_its_name_has() {
        let mut m = Marks::default();
        // The same name at another address, and a name that shares its first bytes.
        let copy: &'static str = String::from("WS-TICKET-TTL").leak();
        let prefix: &'static str = &"WS-TICKET-TTL"[..9];
        for rule in ["WS-TICKET-TTL", copy, "WS-TICKET-TTL", prefix, "NOT-A-RULE"] {
            m.mark(rule);
        }
        let marked: Vec<(&str, u64)> = m.counts().iter().map(|(r, n)| (*r, *n)).collect();
        assert_eq!(
            marked,
            [("NOT-A-RULE", 1), ("WS-TICKET", 1), ("WS-TICKET-TTL", 3)]
        );
    }

    #[test]
    fn every_marked_rule_is_distinct_and_sorted() {
        assert!(MARKED_RULES.windows(2).all(|w| w[0] < w[1]));
    }
}
