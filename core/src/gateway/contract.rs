//! The contract of [`super::Gateway::handle`]: the [`Input`]s a driver feeds it, the
//! [`Outputs`] it must carry out, the handshake and ticket verdicts, and the read-only
//! [`GatewayStats`]. The order outputs are carried out in is written down once, in
//! [`Outputs::carry_out`], which every driver calls with its own [`Effects`].
//!
//! Plain data and that one ordering: nothing here decides anything.
//!
//! Control frames: a driver hands the gateway every WebSocket ping and pong it reads as
//! [`Input::Control`] (a close frame is [`Input::Closed`]). The transport still answers a
//! ping with its pong itself; the gateway only charges the frame to the user's rate bucket,
//! since every inbound frame counts (docs/protocol.md `RATE-CONTROL-FRAMES`).

use std::fmt;

use crate::error::{CloseCode, HttpStatus};
use crate::ids::{ConnId, UserId};
use crate::log::LogEntry;
use crate::protocol::{HandshakeRequest, WireFrame};
use crate::time::Instant;
use crate::token::{KeyRing, Revocation};

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
    /// A WebSocket control frame (ping or pong) read on the connection. The gateway charges
    /// it to the user's rate bucket and answers only when it is over the limit
    /// (`RATE_LIMITED`); answering a ping with a pong stays the transport's job.
    Control {
        /// The connection.
        conn: ConnId,
        /// Which control frame.
        kind: ControlFrame,
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
            Input::Control { conn, kind } => write!(f, "Control({conn}, {kind:?})"),
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

/// A WebSocket control frame a driver forwards as [`Input::Control`] (RFC 6455 section
/// 5.5; close frames are [`Input::Closed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlFrame {
    /// A ping (opcode 0x9).
    Ping,
    /// A pong (opcode 0xA), solicited or not.
    Pong,
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

/// Everything `handle` asks of the driver, to be carried out in this order (what
/// [`Outputs::carry_out`] does): append `events` to the durable log first, so nothing reaches
/// a client that the log does not hold; then answer the handshake, write `sends` in order per
/// connection, send `closes` (close frame with the code and reason, then drop the socket),
/// answer `tickets`, and arm the timer for `next_deadline`.
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

/// What a driver does with each kind of output. [`Outputs::carry_out`] calls these in the
/// contract's order; an implementation only says how, never when.
pub trait Effects {
    /// Why carrying out stopped: only the durable log can fail (use
    /// [`std::convert::Infallible`] when nothing can).
    type Error;
    /// Appends a call's events (never empty) to the durable log. Called first; on an error
    /// nothing else of the call is carried out. The entries may be taken out of `events`.
    fn log(&mut self, events: &mut Vec<LogEntry>) -> Result<(), Self::Error>;
    /// The handshake verdict for `conn`.
    fn handshake(&mut self, conn: ConnId, decision: HandshakeDecision);
    /// A text frame to write to `conn`, after every earlier one to it.
    fn send(&mut self, conn: ConnId, frame: WireFrame);
    /// A close frame with `code` and `reason` for `conn`, after its sends; then the socket goes.
    fn close(&mut self, conn: ConnId, code: CloseCode, reason: &'static str);
    /// The answer to ticket request `request`.
    fn ticket(&mut self, request: u64, answer: Result<IssuedTicket, TicketRefusal>);
    /// When to call `handle(.., Input::Tick)` next, if anything is pending.
    fn deadline(&mut self, at: Option<Instant>);
}

impl Outputs {
    /// Carries out every output in the contract's order (see [`Outputs`]), leaving the lists
    /// empty with their capacity kept, so a driver can hand these buffers to the next call.
    pub fn carry_out<E: Effects>(&mut self, effects: &mut E) -> Result<(), E::Error> {
        if !self.events.is_empty() {
            effects.log(&mut self.events)?;
            self.events.clear();
        }
        if let Some((conn, decision)) = self.handshake.take() {
            effects.handshake(conn, decision);
        }
        for (conn, frame) in self.sends.drain(..) {
            effects.send(conn, frame);
        }
        for (conn, code, reason) in self.closes.drain(..) {
            effects.close(conn, code, reason);
        }
        for (request, answer) in self.tickets.drain(..) {
            effects.ticket(request, answer);
        }
        effects.deadline(self.next_deadline.take());
        Ok(())
    }

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
    /// Handshakes from an unseen address that found the address table full
    /// (`limits.max_tracked_ips`), so far: each took an idle bucket's place or was refused.
    pub ip_table_full: u64,
    /// Per-user message buckets: every connected user's that has sent a frame, and a departed
    /// user's until it has refilled (the sweep drops it then).
    pub user_buckets: usize,
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    #[test]
    fn input_debug_names_each_variant_without_payload_bytes() {
        let conn = ConnId::new(7);
        let request = HandshakeRequest {
            path: "/ws".to_owned(),
            query: None,
            headers: Vec::new(),
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let cases: Vec<(Input<'_>, String)> = vec![
            (
                Input::Handshake {
                    conn,
                    request: request.clone(),
                },
                format!("Handshake(conn-7, {request:?})"),
            ),
            (
                Input::Text {
                    conn,
                    data: b"{\"type\":\"secret\"}",
                },
                "Text(conn-7, 17 bytes)".to_owned(),
            ),
            (
                Input::Binary { conn, len: 3 },
                "Binary(conn-7, 3 bytes)".to_owned(),
            ),
            (
                Input::Sent { conn, frames: 2 },
                "Sent(conn-7, 2)".to_owned(),
            ),
            (Input::Closed { conn }, "Closed(conn-7)".to_owned()),
            (
                Input::Control {
                    conn,
                    kind: ControlFrame::Ping,
                },
                "Control(conn-7, Ping)".to_owned(),
            ),
            (
                Input::Auth(AuthUpdate::Feed {
                    as_of: Instant::from_unix_secs(5),
                    revocations: Vec::new(),
                }),
                format!("Feed(as_of {}, 0 revocations)", Instant::from_unix_secs(5)),
            ),
            (
                Input::Auth(AuthUpdate::Keys(Box::new(KeyRing::new()))),
                "Keys(..)".to_owned(),
            ),
            (
                Input::IssueTicket {
                    request: 42,
                    authorization: Some("Bearer secret".to_owned()),
                },
                "IssueTicket(42)".to_owned(),
            ),
            (Input::Tick, "Tick".to_owned()),
            (Input::Shutdown, "Shutdown".to_owned()),
        ];
        for (input, text) in &cases {
            assert_eq!(format!("{input:?}"), *text);
        }
    }
}
