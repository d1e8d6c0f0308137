//! The world's plumbing: calling the gateway and carrying out its outputs, moving messages
//! over the simulated network with WebSocket (TCP) semantics per connection, and faults.

use std::convert::Infallible;
use std::time::Duration;

use gauntlet_core::Event;
use gauntlet_core::protocol::WireFrame;
use gauntlet_core::{
    AuthUpdate, CloseCode, ConnId, ControlFrame, Effects, HandshakeDecision, Input, IssuedTicket,
    LogEntry, Outputs, StreamKind, TicketRefusal,
};

use super::auth_node::Rotation;
use super::phase::Phase;
use super::population::{ASK_MASK, ClientId};
use super::{Down, Ev, HANDSHAKE_TIMEOUT, Sized, Up, World};
use crate::checker::{Failure, Obs, keepalive_reply};
use crate::faults::Fault;
use crate::network::{NodeId, Payload};

impl World<'_> {
    /// Calls the gateway (if it is up) and carries out what it asks.
    pub(super) fn gw(&mut self, input: Input) {
        if let Some(out) = self.call_gateway(input) {
            self.after_call(out);
        }
    }

    /// One gateway call, counted; `None` while the gateway is down.
    fn call_gateway(&mut self, input: Input) -> Option<Outputs> {
        self.gateway.call(self.now, input)
    }

    /// Carries out a call's outputs and samples the gateway's sizes when they are due.
    fn after_call(&mut self, out: Outputs) {
        self.carry_out(out);
        if let Some(g) = self.gateway.stats_due() {
            let stats = g.stats();
            self.observe(&Obs::Stats(&stats));
            self.sink.stats(&stats, self.now);
        }
    }

    /// Carries out a call's outputs, then keeps their (emptied) buffers for the next call.
    pub(super) fn carry_out(&mut self, mut out: Outputs) {
        let Ok(()) = out.carry_out(&mut Carry(self));
        self.gateway.recycle(out);
    }

    fn track_log(&mut self, e: &gauntlet_core::LogEntry) {
        match &e.event {
            Event::StreamAppended { user, entry, .. } => {
                if entry.kind() == StreamKind::AgentCancelled
                    && let Some(run) = entry.run()
                {
                    // A corrupted frame of the owner's arriving now may have been a stop of
                    // its own run: the gateway lets the owner stop it.
                    let asked = self
                        .clients
                        .stop_requests
                        .remove(&run)
                        .is_some_and(|by| by.contains(user))
                        || self
                            .corrupted_senders
                            .get(user)
                            .is_some_and(|at| at.contains(&self.now));
                    if !asked {
                        self.fail(Failure::new(
                            "isolation",
                            format!("{run} of {user} was cancelled by another user"),
                        ));
                    }
                }
                if entry.kind().is_terminal()
                    && let Some(run) = entry.run()
                {
                    self.clients.stop_requests.remove(&run);
                    self.spans
                        .run_ended(run, entry.kind().as_str(), self.now, &mut *self.sink);
                } else if entry.kind() == StreamKind::AgentStarted
                    && let Some(run) = entry.run()
                {
                    self.spans.run_started(run, user, self.now);
                }
            }
            Event::SessionOpened { conn, identity, .. } => {
                self.spans.session_opened(*conn, &identity.user, self.now);
            }
            Event::SessionClosed { conn, reason } => {
                self.spans
                    .session_closed(*conn, reason.text(), self.now, &mut *self.sink);
            }
            Event::Restarted => {
                self.note(format_args!("gateway restarted from its log"));
                self.spans.crashed(self.now, &mut *self.sink);
            }
            _ => {}
        }
    }

    fn arm_gateway_timer(&mut self, deadline: Option<gauntlet_core::Instant>) {
        let Some(at) = deadline else { return };
        if self.phase == Phase::Draining {
            return;
        }
        if let Some(generation) = self.gateway.arm_timer(at) {
            self.at(at, Ev::GatewayTimer(generation));
        }
    }

    /// A handshake verdict travels back to the client.
    fn verdict(&mut self, conn: ConnId, decision: HandshakeDecision) {
        let Some(c) = self.clients.conns.get(&conn) else {
            return;
        };
        let client = c.client;
        let (accepted_as, reject_code, status, selected) = match &decision {
            HandshakeDecision::Accept { user, subprotocol } => {
                (Some(user.clone()), None, None, *subprotocol)
            }
            HandshakeDecision::Reject {
                code,
                status,
                retry_after_ms,
            } => (
                None,
                Some(*code),
                Some((status.as_u16(), *retry_after_ms)),
                None,
            ),
        };
        let truth = c.truth.clone();
        let token_in_subprotocol = c.token_in_subprotocol;
        // Only a ticket the gateway accepted is certainly consumed.
        self.clients
            .ticket_answered(conn, accepted_as.is_some(), self.now);
        self.observe(&Obs::Handshake {
            at: self.now,
            conn,
            peer: super::clients::peer_of(client),
            truth: &truth,
            accepted_as: accepted_as.as_ref(),
            reject_code,
            status,
            selected,
            token_in_subprotocol,
        });
        if let Some(c) = self.clients.conns.get_mut(&conn) {
            c.verdict(accepted_as);
        }
        self.send_down(client, Down::Verdict(conn, decision));
    }

    /// A frame or close for a connection: FIFO per connection, and a lost message kills the
    /// connection (a WebSocket rides on TCP: it does not lose frames, it breaks).
    fn down(&mut self, conn: ConnId, msg: Down) {
        let Some(c) = self.clients.conns.get(&conn).filter(|c| !c.broken) else {
            return;
        };
        let (client, last) = (c.client, c.last_down);
        let len = match &msg {
            Down::Frame(_, f) => f.len(),
            _ => 8,
        };
        let tx = self.net.send(
            self.now,
            NodeId::GATEWAY,
            NodeId::client(client.get()),
            Sized(len),
        );
        let mut deliveries = tx.into_iter();
        match deliveries.next() {
            Some((at, _)) => {
                let at = at.max(last.saturating_add(Duration::from_nanos(1)));
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.last_down = at;
                }
                self.at(at, Ev::ToClient(client, msg));
            }
            None => self.reset(conn),
        }
    }

    /// Non-connection traffic back to a client (tickets, verdicts): may be lost.
    pub(super) fn send_down(&mut self, client: ClientId, msg: Down) {
        let tx = self.net.send(
            self.now,
            NodeId::GATEWAY,
            NodeId::client(client.get()),
            Sized(64),
        );
        let mut deliveries = tx.into_iter();
        match (deliveries.next(), msg) {
            (Some((at, _)), msg) => self.at(at, Ev::ToClient(client, msg)),
            (None, Down::Verdict(conn, HandshakeDecision::Accept { .. })) => {
                // The 101 was lost: the server thinks the socket is open; the client gives up.
                self.after(
                    HANDSHAKE_TIMEOUT,
                    Ev::ToClient(client, Down::HandshakeTimeout(conn)),
                );
                self.after(HANDSHAKE_TIMEOUT, Ev::ToGateway(Up::Closed(conn)));
            }
            (None, Down::Verdict(conn, _)) => self.after(
                HANDSHAKE_TIMEOUT,
                Ev::ToClient(client, Down::HandshakeTimeout(conn)),
            ),
            (None, Down::Ticket(ask, _)) => self.after(
                HANDSHAKE_TIMEOUT,
                Ev::ToClient(client, Down::Ticket(ask, None)),
            ),
            (None, _) => {}
        }
    }

    /// Client-to-gateway traffic on a connection: FIFO, corruption possible, loss resets.
    pub(super) fn up(&mut self, conn: ConnId, msg: Up) {
        let Some(c) = self.clients.conns.get(&conn).filter(|c| !c.broken) else {
            return;
        };
        let (client, last) = (c.client, c.last_up);
        // The bytes travel in the wire message (which may corrupt them) and are put back after.
        let (msg, len, bytes) = match msg {
            Up::Text(c, b) => (Up::Text(c, Vec::new()), b.len(), Some(b)),
            m => (m, 16, None),
        };
        let tx = self.net.send(
            self.now,
            NodeId::client(client.get()),
            NodeId::GATEWAY,
            Wire(len, bytes),
        );
        let corrupted_sender = if tx.fate.corrupted {
            // The bytes the gateway gets are not what the client meant: a corrupted resume or
            // stop_agent may name other seqs or runs, so checkers must not hold the client's
            // intent against what the gateway does with them.
            self.observe(&Obs::RequestCorrupted { conn });
            self.clients
                .conns
                .get(&conn)
                .and_then(|c| c.user().cloned())
        } else {
            None
        };
        let mut deliveries = tx.into_iter();
        match deliveries.next() {
            Some((at, wire)) => {
                let at = at.max(last.saturating_add(Duration::from_nanos(1)));
                if let Some(user) = corrupted_sender {
                    self.corrupted_arrival(user, at);
                }
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.last_up = at;
                }
                let msg = match (msg, wire.1) {
                    (Up::Text(c, _), Some(b)) => Up::Text(c, b),
                    (m, _) => m,
                };
                self.at(at, Ev::ToGateway(msg));
            }
            None if matches!(msg, Up::Handshake(..)) => {
                self.after(
                    HANDSHAKE_TIMEOUT,
                    Ev::ToClient(client, Down::HandshakeTimeout(conn)),
                );
            }
            None => self.reset(conn),
        }
    }

    /// Stops the gateway for `downtime`, then restarts it from its log. A graceful stop closes
    /// every session with 1001 first (`CLOSE-GOING-AWAY`); a crash closes nothing, so every
    /// client socket just breaks. Either way a handshake still waiting for its verdict dies
    /// with the process.
    fn stop_gateway(&mut self, downtime: Duration, graceful: bool) {
        if graceful && self.gateway.running.is_some() {
            self.observe(&Obs::Shutdown);
            self.gw(Input::Shutdown);
        }
        if !self.gateway.crash() {
            return;
        }
        let mut broken: Vec<(ConnId, ClientId)> = self
            .clients
            .conns
            .sorted()
            .into_iter()
            .filter(|(_, c)| !graceful || c.user().is_none())
            .map(|(id, c)| (*id, c.client))
            .collect();
        // Closes are scheduled in connection order, never in hash order.
        broken.sort_unstable_by_key(|(id, _)| *id);
        for (conn, client) in broken {
            self.after(
                Duration::from_millis(1),
                Ev::ToClient(client, Down::Close(conn, None)),
            );
        }
        self.after(downtime, Ev::GatewayRestart);
    }

    /// A corrupted frame of `user` reaches the gateway at `at`.
    fn corrupted_arrival(&mut self, user: gauntlet_core::UserId, at: gauntlet_core::Instant) {
        let times = match self.corrupted_senders.get_mut(&user) {
            Some(times) => times,
            None => self.corrupted_senders.entry(user).or_default(),
        };
        if times.len() >= super::MAX_CORRUPTED_ARRIVALS {
            times.pop_front();
        }
        times.push_back(at);
    }

    /// The transport under a connection died: both ends learn it (the gateway as a peer close).
    pub(super) fn reset(&mut self, conn: ConnId) {
        let Some(c) = self.clients.conns.get_mut(&conn).filter(|c| !c.broken) else {
            return;
        };
        c.broken = true;
        let client = c.client;
        self.after(Duration::from_millis(1), Ev::ToGateway(Up::Closed(conn)));
        self.after(
            Duration::from_millis(1),
            Ev::ToClient(client, Down::Close(conn, None)),
        );
    }

    pub(super) fn deliver_to_gateway(&mut self, up: Up) {
        if self.gateway.running.is_none() {
            return;
        }
        match up {
            Up::Handshake(conn, request) => self.gw(Input::Handshake {
                conn,
                request: *request,
            }),
            Up::Text(conn, data) => {
                let user = self
                    .clients
                    .conns
                    .get(&conn)
                    .and_then(|c| c.user().cloned());
                let max = self.config.limits.max_frame_bytes;
                let text = (data.len() <= max)
                    .then(|| std::str::from_utf8(&data).ok())
                    .flatten();
                let chargeable = text.is_some();
                let keepalive = text.and_then(keepalive_reply);
                let refused_before = self
                    .gateway
                    .running
                    .as_ref()
                    .map(gauntlet_core::Gateway::rate_limited_frames);
                let Some(out) = self.call_gateway(Input::Text { conn, data: &data }) else {
                    return;
                };
                // The gateway's own count, not its `RATE_LIMITED` reply: that reply is lost when
                // the send queue is full and the connection is closed as too slow instead, and
                // the refused frame would then count as let through.
                let limited = self
                    .gateway
                    .running
                    .as_ref()
                    .map(gauntlet_core::Gateway::rate_limited_frames)
                    != refused_before;
                if limited && let Some(fault) = rate_limited_reply_fault(conn, &out) {
                    self.fail(Failure::new("rate_limit", fault));
                }
                let had_session = out.closes.iter().any(|(c, ..)| *c == conn)
                    || out.sends.iter().any(|(c, _)| *c == conn)
                    || !out.events.is_empty();
                if let Some(user) = user
                    && chargeable
                    && had_session
                {
                    self.observe(&Obs::Inbound {
                        at: self.now,
                        user: &user,
                        accepted: !limited,
                        control: false,
                    });
                }
                self.after_call(out);
                // After the call's log entries: the keepalive checker reads from them
                // whether the session was still open once the gateway had answered.
                if let Some(reply) = keepalive {
                    self.observe(&Obs::Keepalive {
                        conn,
                        reply,
                        limited,
                    });
                }
            }
            Up::Binary(conn) => {
                self.observe(&Obs::BinaryFrame { conn });
                self.gw(Input::Binary { conn, len: 4 });
            }
            Up::Ping(conn) => {
                let open = self
                    .gateway
                    .running
                    .as_ref()
                    .is_some_and(|g| g.is_open(conn));
                let user = self
                    .clients
                    .conns
                    .get(&conn)
                    .and_then(|c| c.user().cloned());
                let refused_before = self
                    .gateway
                    .running
                    .as_ref()
                    .map(gauntlet_core::Gateway::rate_limited_frames);
                let input = Input::Control {
                    conn,
                    kind: ControlFrame::Ping,
                };
                let Some(out) = self.call_gateway(input) else {
                    return;
                };
                // As for text frames, the gateway's own count says whether it was refused.
                let limited = self
                    .gateway
                    .running
                    .as_ref()
                    .map(gauntlet_core::Gateway::rate_limited_frames)
                    != refused_before;
                if let Some(user) = user
                    && open
                {
                    self.observe(&Obs::Inbound {
                        at: self.now,
                        user: &user,
                        accepted: !limited,
                        control: true,
                    });
                }
                self.after_call(out);
            }
            Up::Closed(conn) => self.gw(Input::Closed { conn }),
            Up::Ticket(client, token, hoard, ask) => {
                self.gw(Input::IssueTicket {
                    request: u64::from(client.get())
                        | (u64::from(hoard) << 32)
                        | (u64::from(ask & ASK_MASK) << 33),
                    authorization: Some(format!("Bearer {token}")),
                });
            }
        }
    }

    pub(super) fn fault(&mut self, f: Fault) {
        self.sink.fault(&f, self.now);
        self.note(format_args!("fault: {}", f.name()));
        match f {
            Fault::Partition(p) => {
                if self.net.partition(self.now, p).is_err() {
                    self.fail(Failure::new("bounds", "partition table full"));
                }
                // Connections across the cut die when they next carry a frame (see `down`/`up`).
            }
            Fault::ClientCrash { client } => {
                let Some(client) = self.clients.id(client) else {
                    return;
                };
                let conns: Vec<ConnId> = self.clients[client].conns.iter().copied().collect();
                for conn in conns {
                    // The client vanishes: the gateway learns it only from the transport.
                    self.after(Duration::from_secs(2), Ev::ToGateway(Up::Closed(conn)));
                    self.clients.drop_conn(client, conn);
                }
            }
            Fault::GatewayCrash { downtime } => self.stop_gateway(downtime, false),
            Fault::GatewayShutdown { downtime } => self.stop_gateway(downtime, true),
            Fault::AuthOutage { duration } => {
                self.auth.down = true;
                self.after(duration, Ev::AuthBack);
            }
            Fault::KeyRotation => self.rotate_key(),
        }
    }

    /// Rotates the auth service's signing key and hands the gateway the ring it now
    /// publishes (current + previous, built afresh as a JWKS reload would). A refused
    /// rotation is a violation: the spec's ring holds current + previous, so rotation never
    /// runs out of room.
    pub(super) fn rotate_key(&mut self) {
        match self.auth.rotate_key() {
            Rotation::Skipped => {}
            Rotation::Refused(why) => self.fail(Failure::new("auth", why)),
            Rotation::Rotated {
                retired,
                ring,
                strength,
            } => {
                if let Some(removed) = retired {
                    self.observe(&Obs::KeyRemoved {
                        at: self.now,
                        kid: &removed,
                    });
                }
                // The document first published with a weak key never reaches the gateway:
                // its loader refuses it and keeps the ring it has.
                match strength {
                    Some(Ok(())) => self.observe(&Obs::AuthFlow {
                        rule: "AUTH-KEY-STRENGTH",
                    }),
                    Some(Err(what)) => self.observe(&Obs::AuthServiceMisbehaved { what }),
                    None => {}
                }
                match ring {
                    Ok(ring) => self.gw(Input::Auth(AuthUpdate::Keys(Box::new(ring)))),
                    Err(e) => self.fail(Failure::new("config", e)),
                }
            }
        }
    }

    /// Retires the previous key early and hands the gateway the ring with it flagged. For the
    /// checkers the key is gone: no token of it may be accepted from now on.
    pub(super) fn retire_key(&mut self) {
        let Some((kid, ring)) = self.auth.retire_previous() else {
            return;
        };
        self.observe(&Obs::KeyRemoved {
            at: self.now,
            kid: &kid,
        });
        match ring {
            Ok(ring) => self.gw(Input::Auth(AuthUpdate::Keys(Box::new(ring)))),
            Err(e) => self.fail(Failure::new("config", e)),
        }
    }

    pub(super) fn restart_gateway(&mut self) {
        match self.witness.restore(self.auth.ring()) {
            Ok(mut g) => {
                let out = g.restart(self.now);
                self.gateway.running = Some(g);
                self.carry_out(out);
                // The restarted gateway has no fresh feed yet; the next poll brings one.
            }
            Err(e) => self.fail(Failure::new(
                "replay",
                format!("restart from the log failed: {e}"),
            )),
        }
    }
}

/// `RATE-LIMITED-REPLY`: what is wrong with the gateway's answer `out` to a text frame on
/// `conn` that its rate limit refused. It must say so with a retryable `RATE_LIMITED` error
/// naming a wait of at least 1 ms, unless the same call closes the connection (a full send
/// queue, or the protocol-error budget spent). `None` when nothing is.
fn rate_limited_reply_fault(conn: ConnId, out: &gauntlet_core::Outputs) -> Option<String> {
    if out.closes.iter().any(|(c, ..)| *c == conn) {
        return None;
    }
    let reply = out
        .sends
        .iter()
        .filter(|(c, _)| *c == conn)
        .map(|(_, f)| serde_json::from_str::<serde_json::Value>(f.as_str()).unwrap_or_default())
        .find(|v| v["type"] == "error" && v["code"] == "RATE_LIMITED");
    let Some(reply) = reply else {
        return Some(format!(
            "{conn}: a frame over the rate limit got no RATE_LIMITED reply"
        ));
    };
    let wait = reply["retry_after_ms"].as_u64();
    if reply["retryable"] != true || wait.is_none_or(|ms| ms < 1) {
        return Some(format!(
            "{conn}: a RATE_LIMITED reply {reply} is not retryable with a wait of at least 1 ms"
        ));
    }
    None
}

/// The world as the gateway's effects: the log goes to the sink, the trace spans and the
/// checkers; everything else travels over the simulated network.
struct Carry<'w, 's>(&'w mut World<'s>);

impl Effects for Carry<'_, '_> {
    /// The simulated log cannot fail to append.
    type Error = Infallible;

    fn log(&mut self, events: &mut Vec<LogEntry>) -> Result<(), Infallible> {
        let w = &mut *self.0;
        for e in events.iter() {
            w.sink.entry(e);
            w.track_log(e);
        }
        w.gateway.log_len += events.len();
        let check = w.failure.is_none();
        if let Err(f) = w.witness.log(events, check) {
            w.fail(f);
        }
        Ok(())
    }

    fn handshake(&mut self, conn: ConnId, decision: HandshakeDecision) {
        self.0.verdict(conn, decision);
    }

    fn send(&mut self, conn: ConnId, frame: WireFrame) {
        self.0.down(conn, Down::Frame(conn, frame.into_shared()));
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, _reason: &'static str) {
        self.0.down(conn, Down::Close(conn, Some(code.as_u16())));
    }

    fn ticket(&mut self, request: u64, answer: Result<IssuedTicket, TicketRefusal>) {
        let w = &mut *self.0;
        // The request id is the asking client's index, with bit 32 set by a hoarder and the
        // client's ask number above it.
        let Some(client) = u32::try_from(request & u64::from(u32::MAX))
            .ok()
            .and_then(|n| w.clients.id(n))
        else {
            return;
        };
        let hoard = (request >> 32) & 1 != 0;
        let ask = u32::try_from(request >> 33).unwrap_or(0) & ASK_MASK;
        let user = w.clients[client].user.clone();
        w.observe(&Obs::TicketAnswer {
            at: w.now,
            user: &user,
            refused: answer.as_ref().err().map(|r| r.code),
        });
        if !hoard {
            let ticket = answer.ok().map(|t| t.ticket);
            w.send_down(client, Down::Ticket(ask, ticket));
        }
    }

    fn deadline(&mut self, at: Option<gauntlet_core::Instant>) {
        self.0.arm_gateway_timer(at);
    }
}

/// A client frame on the wire: its length and, for text frames, its bytes (corruptible).
#[derive(Clone)]
pub(super) struct Wire(usize, Option<Vec<u8>>);

impl Payload for Wire {
    fn wire_len(&self) -> usize {
        self.0
    }
    fn corrupt(&mut self, rng: &mut crate::rng::SimRng) -> bool {
        match &mut self.1 {
            Some(b) => crate::network::corrupt(b, rng),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use gauntlet_core::{CloseCode, ConnId, Outputs};

    use super::rate_limited_reply_fault;

    #[test]
    fn a_refused_frame_is_answered_rate_limited_with_a_wait_or_its_connection_closes() {
        let (conn, other) = (ConnId::new(1), ConnId::new(2));
        let reply = |conn: ConnId, frame: &str| {
            let mut out = Outputs::default();
            out.sends.push((conn, frame.into()));
            out
        };
        let good = r#"{"type":"error","code":"RATE_LIMITED","message":"m","retryable":true,"retry_after_ms":100}"#;
        assert_eq!(rate_limited_reply_fault(conn, &reply(conn, good)), None);
        // The reply went to another connection, or says nothing of when to retry.
        assert!(rate_limited_reply_fault(conn, &reply(other, good)).is_some());
        let no_wait = good.replace(r#","retry_after_ms":100"#, "");
        assert!(rate_limited_reply_fault(conn, &reply(conn, &no_wait)).is_some());
        let zero = good.replace("100", "0");
        assert!(rate_limited_reply_fault(conn, &reply(conn, &zero)).is_some());
        // Closed in the same call instead (a full queue or a spent error budget).
        let mut closed = Outputs::default();
        closed.closes.push((conn, CloseCode::Policy, "budget"));
        assert_eq!(rate_limited_reply_fault(conn, &closed), None);
    }
}
