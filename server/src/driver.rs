//! The gateway task: the one owner of the [`Gateway`], the only caller of `handle`.
//!
//! It receives [`Cmd`]s from connection and HTTP tasks over one bounded channel, runs the
//! gateway's timer (sleeping until `next_deadline`, then `Input::Tick`) and the revocation
//! feed pump, appends every emitted event to the journal *before* any frame of the same
//! call goes out, and distributes sends and closes to per-connection writer queues
//! ([`super::writer_queue`]), waking each writer once per drained batch of commands. It
//! keeps counters for `/metrics` and never makes a protocol decision, with one exception the
//! gateway cannot make: the per-IP charge on the HTTP requests that verify a bearer token
//! ([`IpLimiter`], docs/protocol.md `HTTP-IP-RATE`), taken before the gateway verifies it.
//! With `--trace`, it hands the trace what it sees (verdicts, log entries, stats).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Bytes;

use super::journal_file::JournalFile;
use super::serve_trace::ServeTrace;
use super::writer_queue::QueueTx;
use super::{FEED_INTERVAL, ServerError, ServerReport, wall_clock};
use gauntlet_core::CloseCode;
use gauntlet_core::ConnId;
use gauntlet_core::protocol::{HandshakeRequest, WireFrame};
use gauntlet_core::token::{Claims, Revocation};
use gauntlet_core::{
    AuthUpdate, ControlFrame, Effects, Gateway, HandshakeDecision, Input, Instant, IpLimiter,
    IssuedTicket, LogEntry, Outputs, TicketRefusal,
};
/// Commands handled per wake-up before timers and the feed get a look in.
const DRAIN_BATCH: usize = 256;
/// Distinct (status, code) pairs tracked for `/metrics`; codes are `&'static str` so the set is
/// small anyway, this only bounds it by construction.
const MAX_METRIC_KEYS: usize = 256;

/// What a connection's writer task is asked to do.
#[derive(Debug)]
pub(crate) enum WriterMsg {
    /// Write this text frame, then report it with `Input::Sent`.
    Text(WireFrame),
    /// Send a close frame with this code and reason, then stop.
    Close(CloseCode, &'static str),
}

/// An upgrade request; `writer` receives the connection's frames if it is accepted.
pub(crate) struct HandshakeCmd {
    pub(crate) conn: ConnId,
    /// The socket's peer, port included, for the trace (the request carries its IP).
    pub(crate) peer: SocketAddr,
    pub(crate) request: HandshakeRequest,
    pub(crate) writer: QueueTx<WriterMsg>,
    pub(crate) reply: oneshot::Sender<HandshakeDecision>,
}

/// A request to the gateway task. Kept small (the handshake is boxed): every command is
/// copied into the channel and out again, and under load nearly all of them are `Text`.
pub(crate) enum Cmd {
    /// An upgrade request.
    Handshake(Box<HandshakeCmd>),
    /// A text frame's bytes from a connection task, handed over without a copy.
    Text { conn: ConnId, data: Bytes },
    /// A binary frame (`Input::Binary`).
    Binary { conn: ConnId, len: usize },
    /// A ping or pong read (`Input::Control`).
    Control { conn: ConnId, kind: ControlFrame },
    /// Frames written (`Input::Sent`, flow control).
    Sent { conn: ConnId, frames: usize },
    /// The peer closed or the socket failed (`Input::Closed`).
    Closed { conn: ConnId },
    /// A frame over tungstenite's size limit: the transport cannot hand it to the gateway.
    Oversize { conn: ConnId },
    /// `POST /tickets` from `peer`.
    Ticket {
        peer: IpAddr,
        authorization: Option<String>,
        reply: oneshot::Sender<Result<IssuedTicket, HttpRefusal>>,
    },
    /// The bearer of `POST /revocations` from `peer`, to check as a service token.
    ServiceAuth {
        peer: IpAddr,
        token: String,
        reply: oneshot::Sender<Result<Claims, HttpRefusal>>,
    },
    /// Revocations to deliver now (`POST /revocations`, the watched file); the reply, the
    /// number delivered, is sent once they are journaled and synced as the fsync policy
    /// allows (`HTTP-REVOCATIONS-DURABLE`).
    Revoke {
        revocations: Vec<Revocation>,
        reply: oneshot::Sender<usize>,
    },
    /// `GET /metrics`.
    Metrics(oneshot::Sender<String>),
    /// Close everything with 1001, footer the journal and stop.
    Shutdown,
}

/// Why an HTTP request was refused: status, machine-readable code, and when to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HttpRefusal {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) retry_after_ms: Option<u64>,
}

impl HttpRefusal {
    /// 429 `ip_rate_limited`: the peer's bucket is empty for `wait`.
    fn ip_rate_limited(wait: Duration) -> Self {
        Self {
            status: 429,
            code: "ip_rate_limited",
            retry_after_ms: Some(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1)),
        }
    }
}

#[derive(Default)]
struct Counters {
    handshakes_accepted: u64,
    handshake_failures: BTreeMap<(u16, &'static str), u64>,
    messages_in: u64,
    messages_out: u64,
    closes: BTreeMap<u16, u64>,
    peer_disconnects: u64,
    tickets_issued: u64,
    revocations: u64,
}

/// What the gateway answered the command that called it, for the command's reply.
#[derive(Default)]
struct Answers {
    handshake: Option<HandshakeDecision>,
    tickets: Vec<(u64, Result<IssuedTicket, TicketRefusal>)>,
}

/// The server's effects: the journal file, the connections' writer queues, the counters.
struct Carry<'d> {
    journal: Option<&'d mut JournalFile>,
    trace: Option<&'d mut ServeTrace>,
    writers: &'d mut BTreeMap<ConnId, QueueTx<WriterMsg>>,
    /// Writers whose queue this batch made non-empty: woken once the batch is done.
    wakes: &'d mut Vec<ConnId>,
    counters: &'d mut Counters,
    /// Connections whose writer could not take a frame: the caller reports them closed.
    lost: &'d mut Vec<ConnId>,
    answers: &'d mut Answers,
}

impl Effects for Carry<'_> {
    type Error = ServerError;

    fn log(&mut self, events: &mut Vec<LogEntry>) -> Result<(), ServerError> {
        if let Some(t) = self.trace.as_deref_mut() {
            t.entries(events);
        }
        match self.journal.as_deref_mut() {
            Some(j) => j.append(events),
            None => Ok(()),
        }
    }

    fn handshake(&mut self, _conn: ConnId, decision: HandshakeDecision) {
        self.answers.handshake = Some(decision);
    }

    fn send(&mut self, conn: ConnId, frame: WireFrame) {
        let Some(w) = self.writers.get(&conn) else {
            return;
        };
        match w.push(WriterMsg::Text(frame)) {
            Ok(was_empty) => {
                self.counters.messages_out += 1;
                if was_empty {
                    self.wakes.push(conn);
                }
            }
            Err(_) => {
                self.writers.remove(&conn);
                self.lost.push(conn);
            }
        }
    }

    fn close(&mut self, conn: ConnId, code: CloseCode, reason: &'static str) {
        *self.counters.closes.entry(code.as_u16()).or_default() += 1;
        // Dropping the queue's sending end wakes the writer at once: a close is not batched.
        if let Some(w) = self.writers.remove(&conn) {
            let _ = w.push(WriterMsg::Close(code, reason));
        }
    }

    fn ticket(&mut self, request: u64, answer: Result<IssuedTicket, TicketRefusal>) {
        self.answers.tickets.push((request, answer));
    }

    /// The serve loop asks the gateway for its next deadline before every wait.
    fn deadline(&mut self, _at: Option<Instant>) {}
}

/// The gateway task's state.
pub(crate) struct Driver {
    gw: Gateway,
    journal: Option<JournalFile>,
    trace: Option<ServeTrace>,
    writers: BTreeMap<ConnId, QueueTx<WriterMsg>>,
    /// See [`Carry::wakes`].
    wakes: Vec<ConnId>,
    /// One call's outputs, reused: `handle_into` then allocates nothing for the lists.
    out: Outputs,
    /// Charged by `POST /tickets` and `POST /revocations` before their token is verified.
    http_auth: IpLimiter,
    counters: Counters,
    next_ticket: u64,
}

impl Driver {
    pub(crate) fn new(
        gw: Gateway,
        journal: Option<JournalFile>,
        trace: Option<ServeTrace>,
    ) -> Self {
        let limits = &gw.config().limits;
        let http_auth = IpLimiter::new(limits.ip_http_auth_rate, limits.max_tracked_ips);
        Self {
            gw,
            journal,
            trace,
            writers: BTreeMap::new(),
            wakes: Vec::new(),
            out: Outputs::default(),
            http_auth,
            counters: Counters::default(),
            next_ticket: 0,
        }
    }

    /// Runs until `Cmd::Shutdown` (or every sender is gone), then footers the journal.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Cmd>,
    ) -> Result<ServerReport, ServerError> {
        // The first feed goes in before any command is read: without it every early
        // handshake would be refused 503 (the gateway fails closed on a stale feed).
        self.deliver_feed(Vec::new())?;
        let first = tokio::time::Instant::now() + FEED_INTERVAL;
        let mut feed = tokio::time::interval_at(first, FEED_INTERVAL);
        feed.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'serve: loop {
            let wait = self
                .gw
                .next_deadline()
                .map(|d| d.saturating_since(wall_clock()));
            tokio::select! {
                cmd = rx.recv() => {
                    // Drain what is already queued before re-arming the timer and the select:
                    // under load that setup, not the gateway, would otherwise dominate.
                    let mut next = cmd;
                    let mut budget = DRAIN_BATCH;
                    loop {
                        match next {
                            Some(Cmd::Shutdown) | None => break 'serve,
                            Some(cmd) => self.on_cmd(cmd)?,
                        }
                        budget -= 1;
                        if budget == 0 {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(cmd) => next = Some(cmd),
                            Err(_) => break,
                        }
                    }
                }
                () = sleep_for(wait) => {
                    self.step(Input::Tick)?;
                }
                _ = feed.tick() => {
                    self.deliver_feed(Vec::new())?;
                    self.sample_trace(true);
                    if let Some(j) = self.journal.as_mut() {
                        j.sync_if_dirty()?;
                    }
                }
            }
            self.wake_writers();
        }
        self.wake_writers();
        self.step(Input::Shutdown)?;
        self.wake_writers();
        self.sample_trace(true);
        if let Some(j) = self.journal.as_mut() {
            j.finish(&self.gw)?;
        }
        let trace_dropped = match self.trace.take() {
            Some(t) => t.finish()?,
            None => 0,
        };
        Ok(ServerReport {
            state_hash: self.gw.state_hash(),
            last_seq: self.gw.last_log_seq().get(),
            trace_dropped,
        })
    }

    /// The revocation feed: this server is the gateway's view of the auth service, so it
    /// delivers revocations as they arrive, and an empty feed every second to keep the view
    /// fresh, stamped with the time now. A batch of revocations is synced to disk before this
    /// returns (under the `interval` policy too; `always` synced it already, `never` leaves
    /// it to the OS), so whoever is told it was accepted can rely on it surviving a crash.
    fn deliver_feed(&mut self, revocations: Vec<Revocation>) -> Result<(), ServerError> {
        let acknowledged = !revocations.is_empty();
        let as_of = wall_clock();
        self.step(Input::Auth(AuthUpdate::Feed { as_of, revocations }))?;
        if acknowledged && let Some(j) = self.journal.as_mut() {
            j.sync_if_dirty()?;
        }
        Ok(())
    }

    /// Wakes every writer the last batch queued frames for (see [`Carry::wakes`]).
    fn wake_writers(&mut self) {
        for conn in self.wakes.drain(..) {
            // A writer closed since has been woken by its queue's drop.
            if let Some(w) = self.writers.get(&conn) {
                w.wake();
            }
        }
    }

    fn on_cmd(&mut self, cmd: Cmd) -> Result<(), ServerError> {
        match cmd {
            Cmd::Handshake(asked) => {
                let HandshakeCmd {
                    conn,
                    peer,
                    request,
                    writer,
                    reply,
                } = *asked;
                // Registered first: the accept's `connection_established` goes to this writer.
                self.writers.insert(conn, writer);
                let decision = self.step(Input::Handshake { conn, request })?.handshake;
                match &decision {
                    Some(HandshakeDecision::Accept { .. }) => {
                        self.counters.handshakes_accepted += 1
                    }
                    Some(HandshakeDecision::Reject { status, code, .. }) => {
                        self.writers.remove(&conn);
                        self.count_failure(status.as_u16(), code);
                    }
                    None => {
                        self.writers.remove(&conn);
                    }
                }
                if let (Some(t), Some(d)) = (self.trace.as_mut(), &decision) {
                    t.handshake(wall_clock(), conn, peer, d);
                }
                if let Some(d) = decision {
                    // The connection task may have gone; its socket closes with it.
                    let _ = reply.send(d);
                }
            }
            Cmd::Text { conn, data } => {
                self.counters.messages_in += 1;
                self.step(Input::Text { conn, data: &data })?;
            }
            Cmd::Binary { conn, len } => {
                self.counters.messages_in += 1;
                self.step(Input::Binary { conn, len })?;
            }
            Cmd::Control { conn, kind } => {
                self.counters.messages_in += 1;
                self.step(Input::Control { conn, kind })?;
            }
            Cmd::Sent { conn, frames } => {
                self.step(Input::Sent { conn, frames })?;
            }
            Cmd::Closed { conn } => {
                if self.writers.remove(&conn).is_some() {
                    self.counters.peer_disconnects += 1;
                }
                self.step(Input::Closed { conn })?;
            }
            Cmd::Oversize { conn } => {
                // RFC 6455 section 7.4.1: 1009, the same code the gateway uses for its limit.
                if let Some(w) = self.writers.remove(&conn) {
                    let _ = w.push(WriterMsg::Close(CloseCode::TooBig, "frame too big"));
                    *self
                        .counters
                        .closes
                        .entry(CloseCode::TooBig.as_u16())
                        .or_default() += 1;
                }
                self.step(Input::Closed { conn })?;
            }
            Cmd::Ticket {
                peer,
                authorization,
                reply,
            } => {
                if let Err(wait) = self.http_auth.charge(wall_clock(), peer) {
                    let _ = reply.send(Err(HttpRefusal::ip_rate_limited(wait)));
                    return Ok(());
                }
                self.next_ticket += 1;
                let request = self.next_ticket;
                let mut tickets = self
                    .step(Input::IssueTicket {
                        request,
                        authorization,
                    })?
                    .tickets;
                let answer = tickets
                    .iter()
                    .position(|(r, _)| *r == request)
                    .map(|i| tickets.swap_remove(i).1);
                if let Some(answer) = answer {
                    if answer.is_ok() {
                        self.counters.tickets_issued += 1;
                    }
                    let _ = reply.send(answer.map_err(|r| HttpRefusal {
                        status: r.status.as_u16(),
                        code: r.code,
                        retry_after_ms: None,
                    }));
                }
            }
            Cmd::ServiceAuth { peer, token, reply } => {
                let now = wall_clock();
                let answer = match self.http_auth.charge(now, peer) {
                    Err(wait) => Err(HttpRefusal::ip_rate_limited(wait)),
                    Ok(()) => self
                        .gw
                        .check_service_token(now, &token)
                        .map_err(|e| HttpRefusal {
                            status: 401,
                            code: e.code(),
                            retry_after_ms: None,
                        }),
                };
                let _ = reply.send(answer);
            }
            Cmd::Revoke { revocations, reply } => {
                let n = revocations.len();
                if n > 0 {
                    self.counters.revocations += n as u64;
                    self.deliver_feed(revocations)?;
                }
                // Sent only now: a failed journal write stops the server and drops the reply,
                // so no revocation is acknowledged that a crash could lose.
                let _ = reply.send(n);
            }
            Cmd::Metrics(reply) => {
                let _ = reply.send(self.render_metrics());
            }
            Cmd::Shutdown => {}
        }
        Ok(())
    }

    /// Hands `input` to the gateway and carries out its outputs, in the reused buffer.
    fn step(&mut self, input: Input) -> Result<Answers, ServerError> {
        let mut out = std::mem::take(&mut self.out);
        self.gw.handle_into(wall_clock(), input, &mut out);
        let answers = self.carry_out(&mut out);
        self.out = out;
        answers
    }

    /// Carries out one call's outputs in the order [`Outputs`] documents (the journal first,
    /// then sends, then closes) and returns what it answered. A writer that cannot take a
    /// frame (its task is gone, or it overran a queue the gateway's own flow control bounds)
    /// is reported as disconnected, and that call's outputs are carried out too.
    fn carry_out(&mut self, out: &mut Outputs) -> Result<Answers, ServerError> {
        let mut answers = Answers::default();
        let mut lost: Vec<ConnId> = Vec::new();
        loop {
            out.carry_out(&mut Carry {
                journal: self.journal.as_mut(),
                trace: self.trace.as_mut(),
                writers: &mut self.writers,
                wakes: &mut self.wakes,
                counters: &mut self.counters,
                lost: &mut lost,
                answers: &mut answers,
            })?;
            let Some(conn) = lost.pop() else {
                self.sample_trace(false);
                return Ok(answers);
            };
            self.gw
                .handle_into(wall_clock(), Input::Closed { conn }, out);
        }
    }

    /// Samples the gateway's sizes into the trace, if tracing: on `force` (the feed tick,
    /// shutdown), else only when a session opened or closed since the last sample.
    fn sample_trace(&mut self, force: bool) {
        if let Some(t) = self.trace.as_mut() {
            let gw = &self.gw;
            t.sample(wall_clock(), || gw.stats(), force);
        }
    }

    fn count_failure(&mut self, status: u16, code: &'static str) {
        let key = (status, code);
        if self.counters.handshake_failures.len() < MAX_METRIC_KEYS
            || self.counters.handshake_failures.contains_key(&key)
        {
            *self.counters.handshake_failures.entry(key).or_default() += 1;
        }
    }

    fn render_metrics(&self) -> String {
        use std::fmt::Write as _;
        let s = self.gw.stats();
        let c = &self.counters;
        let mut m = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(
                m,
                "# HELP gauntlet_{name} {help}\n# TYPE gauntlet_{name} {kind}"
            );
            for (labels, value) in samples {
                let _ = writeln!(m, "gauntlet_{name}{labels} {value}");
            }
        };
        let one = |v: String| vec![(String::new(), v)];
        metric(
            "connections",
            "gauge",
            "Open WebSocket sessions.",
            &one(s.connections.to_string()),
        );
        metric(
            "handshakes_accepted_total",
            "counter",
            "Upgrades the gateway accepted.",
            &one(c.handshakes_accepted.to_string()),
        );
        let failures: Vec<(String, String)> = c
            .handshake_failures
            .iter()
            .map(|((status, code), n)| {
                (
                    format!("{{status=\"{status}\",code=\"{code}\"}}"),
                    n.to_string(),
                )
            })
            .collect();
        metric(
            "auth_failures_total",
            "counter",
            "Handshakes refused before the upgrade, by HTTP status and reason.",
            &failures,
        );
        metric(
            "messages_in_total",
            "counter",
            "Frames read from clients.",
            &one(c.messages_in.to_string()),
        );
        metric(
            "messages_out_total",
            "counter",
            "Frames queued to clients.",
            &one(c.messages_out.to_string()),
        );
        let closes: Vec<(String, String)> = c
            .closes
            .iter()
            .map(|(code, n)| (format!("{{code=\"{code}\"}}"), n.to_string()))
            .collect();
        metric(
            "closes_total",
            "counter",
            "Connections the server closed, by close code.",
            &closes,
        );
        metric(
            "peer_disconnects_total",
            "counter",
            "Connections the client closed or lost.",
            &one(c.peer_disconnects.to_string()),
        );
        metric(
            "send_queue_depth_peak",
            "gauge",
            "The deepest any connection's send queue has been since the server started.",
            &one(s.peak_queue_depth.to_string()),
        );
        metric(
            "outbox_events",
            "gauge",
            "Events held across all outboxes.",
            &one(s.outbox_events.to_string()),
        );
        metric(
            "active_runs",
            "gauge",
            "Agent runs in progress.",
            &one(s.active_runs.to_string()),
        );
        metric(
            "tickets_issued_total",
            "counter",
            "Tickets handed out by POST /tickets.",
            &one(c.tickets_issued.to_string()),
        );
        metric(
            "revocations_received_total",
            "counter",
            "Revocations delivered to the gateway.",
            &one(c.revocations.to_string()),
        );
        metric(
            "validation_cache_hits_total",
            "counter",
            "Token validation cache hits.",
            &one(s.cache_hits.to_string()),
        );
        metric(
            "validation_cache_misses_total",
            "counter",
            "Token validation cache misses.",
            &one(s.cache_misses.to_string()),
        );
        let lookups = s.cache_hits.saturating_add(s.cache_misses);
        #[allow(clippy::cast_precision_loss)]
        let ratio = if lookups == 0 {
            0.0
        } else {
            s.cache_hits as f64 / lookups as f64
        };
        metric(
            "validation_cache_hit_ratio",
            "gauge",
            "Hits over lookups of the validation cache.",
            &one(format!("{ratio}")),
        );
        m
    }
}

async fn sleep_for(wait: Option<Duration>) {
    match wait {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
