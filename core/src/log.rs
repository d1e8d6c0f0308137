//! The event log: every durable state change of the gateway as a typed, sequenced event.
//!
//! The gateway's durable state is a fold of these events (`state.rs`), so a log written as
//! JSON Lines can be replayed into a fresh gateway and must reproduce the same state hash.
//! This module only defines the events and their encoding; it never decides anything.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::CloseCode;
use crate::ids::{ConnId, Jti, LogSeq, RunId, Seq, ThreadId, UserId};
use crate::outbox::StreamEntry;
use crate::time::Instant;
use crate::token::Revocation;

/// Who a session (or ticket) is: the fields of the validated token the gateway keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The token's `sub`.
    pub user: UserId,
    /// The token's `jti`.
    pub jti: Jti,
    /// The token's `iat` (checked against per-user `not_before` revocations).
    pub iat: Instant,
    /// The token's `exp`.
    pub exp: Instant,
    /// Whether the token grants `system:broadcast`.
    pub can_broadcast: bool,
}

/// Where a handshake's credential came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `Authorization: Bearer`.
    Bearer,
    /// `jwt.<base64url>` subprotocol.
    Subprotocol,
    /// A single-use ticket.
    Ticket,
    /// `?token=` (when enabled).
    QueryToken,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The peer closed or the transport died.
    PeerClosed,
    /// The access token expired without `reauth`.
    TokenExpired,
    /// The access token (or its user) was revoked.
    TokenRevoked,
    /// A frame over the size limit.
    FrameTooBig,
    /// A binary frame.
    BinaryFrame,
    /// A text frame that was not UTF-8.
    InvalidUtf8,
    /// More protocol errors (including rate-limit hits) than the budget allows.
    ProtocolErrorBudget,
    /// The send queue overflowed: a slow consumer.
    SlowConsumer,
    /// The gateway is shutting down.
    Shutdown,
}

impl CloseReason {
    /// The close code sent for this reason (the single error-to-code mapping).
    pub const fn close_code(self) -> CloseCode {
        match self {
            CloseReason::PeerClosed => CloseCode::Normal,
            CloseReason::TokenExpired
            | CloseReason::TokenRevoked
            | CloseReason::ProtocolErrorBudget => CloseCode::Policy,
            CloseReason::FrameTooBig => CloseCode::TooBig,
            CloseReason::BinaryFrame => CloseCode::Unsupported,
            CloseReason::InvalidUtf8 => CloseCode::InvalidPayload,
            CloseReason::SlowConsumer => CloseCode::TryAgainLater,
            CloseReason::Shutdown => CloseCode::GoingAway,
        }
    }

    /// The close frame's reason text.
    pub const fn text(self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "closed",
            CloseReason::TokenExpired => "token expired",
            CloseReason::TokenRevoked => "token revoked",
            CloseReason::FrameTooBig => "frame too big",
            CloseReason::BinaryFrame => "binary frames are not supported",
            CloseReason::InvalidUtf8 => "invalid utf-8",
            CloseReason::ProtocolErrorBudget => "too many protocol errors",
            CloseReason::SlowConsumer => "consumer too slow",
            CloseReason::Shutdown => "server going away",
        }
    }
}

/// One durable state change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The revocation feed was read up to `as_of`, bringing these revocations.
    FeedSynced {
        /// How fresh the auth service's view was.
        as_of: Instant,
        /// Revocations new in this sync.
        revocations: Vec<Revocation>,
    },
    /// A handshake authenticated and the upgrade was accepted.
    SessionOpened {
        /// The connection.
        conn: ConnId,
        /// Who it is.
        identity: Identity,
        /// Where the credential came from.
        via: CredentialKind,
        /// The peer address.
        peer: IpAddr,
    },
    /// `reauth` replaced the connection's token.
    SessionReauthed {
        /// The connection.
        conn: ConnId,
        /// The new token's identity (same user).
        identity: Identity,
    },
    /// The session ended.
    SessionClosed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// A connection subscribed to a thread.
    Subscribed {
        /// The connection.
        conn: ConnId,
        /// The thread.
        thread: ThreadId,
    },
    /// A thread was created by its first message.
    ThreadCreated {
        /// The thread.
        thread: ThreadId,
        /// Its owner, for good.
        owner: UserId,
    },
    /// An agent run was started; its plan follows from (seed, run, task).
    RunStarted {
        /// The run.
        run: RunId,
        /// Its owner.
        owner: UserId,
        /// Its thread.
        thread: ThreadId,
        /// The user's message, the run's task.
        task: String,
    },
    /// An event was appended to a user's outbox (and so acknowledged).
    StreamAppended {
        /// The outbox's user.
        user: UserId,
        /// The event's position in that user's stream.
        seq: Seq,
        /// The stored event, shared with the outbox that keeps it (and with any fold of the
        /// same log), so folding an append copies a pointer, not the entry.
        entry: Arc<StreamEntry>,
    },
    /// A broadcast was appended to the stream of every user connected at that moment
    /// (docs/protocol.md section 14). One event stands for all the copies, so a broadcast to
    /// n users is one log line, not n: the fold derives each copy, in user order, at that
    /// user's own next seq, from the sessions open just before it. Every copy shares `entry`.
    StreamBroadcast {
        /// The stored event (a `system_notice`; it never belongs to a run).
        entry: Arc<StreamEntry>,
    },
    /// A single-use ticket was issued.
    TicketIssued {
        /// SHA-256 of the ticket, hex (the ticket itself is never logged).
        digest: String,
        /// Who it authenticates.
        identity: Identity,
        /// When it stops working.
        expires: Instant,
    },
    /// A ticket was used or expired.
    TicketConsumed {
        /// SHA-256 of the ticket, hex.
        digest: String,
    },
    /// The gateway restarted from its log: every session is gone.
    Restarted,
}

/// An event with its position and time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Position in the log, from 1, gap-free.
    pub seq: LogSeq,
    /// The gateway time when it happened.
    pub at: Instant,
    /// What happened.
    pub event: Event,
}

impl LogEntry {
    /// The entry as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one JSON line.
    pub fn from_json_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_map_to_protocol_codes() {
        assert_eq!(CloseReason::TokenExpired.close_code().as_u16(), 1008);
        assert_eq!(CloseReason::TokenRevoked.close_code().as_u16(), 1008);
        assert_eq!(CloseReason::ProtocolErrorBudget.close_code().as_u16(), 1008);
        assert_eq!(CloseReason::FrameTooBig.close_code().as_u16(), 1009);
        assert_eq!(CloseReason::BinaryFrame.close_code().as_u16(), 1003);
        assert_eq!(CloseReason::InvalidUtf8.close_code().as_u16(), 1007);
        assert_eq!(CloseReason::SlowConsumer.close_code().as_u16(), 1013);
        assert_eq!(CloseReason::Shutdown.close_code().as_u16(), 1001);
        assert_eq!(CloseReason::PeerClosed.close_code().as_u16(), 1000);
    }

    #[test]
    fn log_entry_round_trips_as_json_line() {
        let e = LogEntry {
            seq: LogSeq::new(3),
            at: Instant::from_unix_secs(5),
            event: Event::ThreadCreated {
                thread: ThreadId::parse("t").unwrap_or_else(|| unreachable!()),
                owner: UserId::parse("u").unwrap_or_else(|| unreachable!()),
            },
        };
        let line = e.to_json_line();
        assert!(line.contains(r#""type":"thread_created""#), "{line}");
        assert_eq!(LogEntry::from_json_line(&line).ok(), Some(e));
    }
}
