//! `gauntlet load`: real tokio-tungstenite clients against a running gateway, checking on
//! what they actually receive the invariants observable from outside, and measuring event
//! delivery latency.
//!
//! Each simulated user mints its own access token (HS256, the server's secret), first tries a
//! forged copy (which must be refused before any upgrade), then connects (by bearer header and
//! by the `jwt` subprotocol offer in turn, which must select `jwt`), chats, and every few
//! seconds drops its connection and reconnects with `resume`. Checked on every frame: only the
//! user's own events arrive (isolation), no `seq` twice on a connection, the five events of
//! each run in order, and no gap across reconnects (or an explicit `RESUME_GAP`). Latency is
//! the frame's gateway `timestamp` to its arrival, for live (not resumed) events. Every loop
//! is bounded by the run's deadline; nothing here decides protocol questions.
//!
//! With [`LoadOptions::trace`], each user's handshakes, connections, message round trips and
//! errors go to a Chrome trace (`load_trace`), written when the run is over.
//!
//! A target nothing answers at is an error ([`LoadError::Unreachable`]); a run that did not
//! test what was asked (users that never connected, handshakes refused by a rate limit or a
//! 503) says so in [`LoadReport::shortfalls`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::load_trace::{self, Budget, CONNECTION_SPAN, UserTrace};
use super::probe::{Target, parse_target, reachable};
use super::trace_file::TraceOptions;
use super::wall_clock;
use gauntlet_core::Instant;
use gauntlet_core::protocol::{JWT_SUBPROTOCOL, token_subprotocols};

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `ws://HOST:PORT/PATH` of the gateway.
    pub target: String,
    /// The HS256 secret the server validates access tokens with.
    pub secret: Vec<u8>,
    /// Concurrent users.
    pub users: u32,
    /// How long to run.
    pub duration: Duration,
    /// Time between two messages of one user.
    pub message_every: Duration,
    /// Time between a user's deliberate reconnects.
    pub reconnect_every: Duration,
    /// Where to write a Chrome trace of the users' connections, if anywhere.
    pub trace: Option<TraceOptions>,
}

/// What happened.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Connections accepted.
    pub connections: u64,
    /// Handshakes refused for a reason other than a forged token (rate limits, 503), with the
    /// valid token or with a forged one answered by anything but 401.
    pub refused: u64,
    /// [`LoadReport::refused`] by HTTP status.
    pub refused_by_status: BTreeMap<u16, u64>,
    /// Forged tokens refused (one per user).
    pub forged_refused: u64,
    /// Users that had at least one connection accepted.
    pub users_connected: u64,
    /// `user_message`s sent.
    pub messages_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Stream events (frames with a `seq`) received.
    pub events_received: u64,
    /// Runs seen from `agent_started` to a terminal event.
    pub runs_completed: u64,
    /// Live event delivery latency, microseconds: p50, p99, p99.9, max.
    pub latency_us: [u64; 4],
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Invariant violations, with evidence (empty when everything held).
    pub violations: Vec<String>,
}

/// A finished run: its figures, and the histogram of live event delivery latency they were
/// read from (microseconds, three significant digits), for the percentile distribution
/// exports.
#[derive(Clone, Debug)]
pub struct LoadRun {
    /// The figures.
    pub report: LoadReport,
    /// Every live event's delivery latency, in microseconds.
    pub latency: Histogram<u64>,
    /// Events the trace's cap kept out of the trace file (0 when whole, or not tracing).
    pub trace_dropped: u64,
}

/// Why the load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The target is not `ws://HOST:PORT/PATH`.
    #[error("target must be ws://HOST:PORT/PATH, got {0:?}")]
    BadTarget(String),
    /// The secret could not key HS256.
    #[error("the secret is not a usable HS256 key")]
    Secret,
    /// A latency histogram could not be built.
    #[error("histogram: {0}")]
    Histogram(String),
    /// Nothing answers at the target: the name does not resolve, or no TCP connection opens.
    #[error("cannot connect to {target}: {reason}")]
    Unreachable {
        /// The target as given.
        target: String,
        /// What the connect said.
        reason: String,
    },
    /// The trace file could not be written (the run itself finished).
    #[error("trace {}", path.display())]
    Trace {
        /// The trace file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl LoadReport {
    /// What the run did not test of what was asked: users that never connected, and
    /// handshakes refused for reasons the workload did not intend (a rate limit, 503). Empty
    /// when every user connected and ran its forged-token check with nothing refused. A
    /// server that turns legitimate users away is a finding, reported with this evidence.
    pub fn shortfalls(&self, users: u32) -> Vec<String> {
        let mut out = Vec::new();
        let users = u64::from(users);
        if self.users_connected < users {
            out.push(format!(
                "only {} of {users} users ever connected",
                self.users_connected
            ));
        }
        if self.forged_refused < users {
            out.push(format!(
                "the forged-token check was answered with 401 for only {} of {users} users",
                self.forged_refused
            ));
        }
        if self.refused > 0 {
            let by_status = self
                .refused_by_status
                .iter()
                .map(|(status, n)| {
                    let why = match status {
                        429 => {
                            " (a rate limit: the per-IP handshake rate applies to the load \
                                generator's one address; raise limits.ip_handshake_rate)"
                        }
                        503 => " (server unavailable)",
                        _ => "",
                    };
                    format!("HTTP {status} x{n}{why}")
                })
                .collect::<Vec<_>>()
                .join(", ");
            out.push(format!(
                "{} handshakes refused that the workload did not intend: {by_status}",
                self.refused
            ));
        }
        out
    }
}

/// Most violations kept per user (the first ones are the interesting ones).
const MAX_VIOLATIONS: usize = 8;
const WAIT: Duration = Duration::from_secs(5);

struct UserOutcome {
    report: LoadReport,
    latency: Histogram<u64>,
    trace: UserTrace,
}

/// Runs the load and returns the merged report with its latency histogram.
pub async fn load(options: &LoadOptions) -> Result<LoadRun, LoadError> {
    let target =
        parse_target(&options.target).map_err(|_| LoadError::BadTarget(options.target.clone()))?;
    let key = EncodingKey::from_secret(&options.secret).map_err(|_| LoadError::Secret)?;
    reachable(&target)
        .await
        .map_err(|reason| LoadError::Unreachable {
            target: options.target.clone(),
            reason,
        })?;
    let started = tokio::time::Instant::now();
    let origin = wall_clock();
    let deadline = started + options.duration;
    let budget = options.trace.as_ref().map(|t| Budget::new(t.max_events));
    let mut tasks = Vec::new();
    for i in 0..options.users {
        let trace = UserTrace::new(budget.clone());
        let (target, key, opts) = (
            Target {
                authority: target.authority.clone(),
                path: target.path.clone(),
            },
            key.clone(),
            options.clone(),
        );
        tasks.push(tokio::spawn(async move {
            run_user(i, &target, &key, &opts, deadline, trace).await
        }));
    }
    let mut total = LoadReport::default();
    let mut latency = Histogram::<u64>::new(3).map_err(|e| LoadError::Histogram(e.to_string()))?;
    let mut traces = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await {
            Ok(Ok(u)) => {
                merge(&mut total, &u.report);
                latency
                    .add(&u.latency)
                    .map_err(|e| LoadError::Histogram(e.to_string()))?;
                traces.push((user_name(i), u.trace));
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => total
                .violations
                .push(format!("a client task panicked: {e}")),
        }
    }
    total.elapsed = started.elapsed();
    let trace_dropped = match &options.trace {
        Some(t) => load_trace::write(t, origin, &options.target, &traces)
            .map_err(|(path, source)| LoadError::Trace { path, source })?,
        None => 0,
    };
    total.latency_us = [
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max(),
    ];
    Ok(LoadRun {
        report: total,
        latency,
        trace_dropped,
    })
}

/// User `i`'s name, its token's `sub` and its trace track's name.
fn user_name(i: impl std::fmt::Display) -> String {
    format!("load-u{i}")
}

fn merge(total: &mut LoadReport, u: &LoadReport) {
    total.connections += u.connections;
    total.refused += u.refused;
    for (status, n) in &u.refused_by_status {
        *total.refused_by_status.entry(*status).or_default() += n;
    }
    total.forged_refused += u.forged_refused;
    total.users_connected += u.users_connected;
    total.messages_sent += u.messages_sent;
    total.frames_received += u.frames_received;
    total.events_received += u.events_received;
    total.runs_completed += u.runs_completed;
    total.violations.extend(u.violations.iter().cloned());
}

fn mint(key: &EncodingKey, user: &str, jti: &str, ttl: Duration) -> String {
    let now = wall_clock().unix_secs();
    let claims = json!({
        "iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": user, "jti": jti,
        "iat": now, "nbf": now, "exp": now + ttl.as_secs(), "token_type": "access",
    });
    jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, key)
        .unwrap_or_default()
}

type Ws = WebSocketStream<TcpStream>;

enum Connect {
    Open(Box<Ws>, Value),
    Refused(u16),
    Failed(String),
}

/// How a connection presents its token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Sec-WebSocket-Protocol: jwt, jwt.<base64url(token)>`, as a browser must; the server
    /// has to select `jwt` (tungstenite fails the handshake on any value not offered).
    Subprotocol,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Bearer => "bearer",
            Via::Subprotocol => "subprotocol",
        }
    }
}

/// Traces one connection attempt begun at `start`: its `handshake` span, and an instant
/// when it was refused or failed.
fn trace_connect(trace: &mut UserTrace, start: Instant, credential: &str, outcome: &Connect) {
    let result = match outcome {
        Connect::Open(..) => String::from("accepted"),
        Connect::Refused(status) => format!("refused {status}"),
        Connect::Failed(_) => String::from("failed"),
    };
    trace.span(
        "handshake",
        start,
        &[("credential", credential), ("outcome", &result)],
    );
    match outcome {
        Connect::Open(..) => {}
        Connect::Refused(_) => trace.point(&format!("handshake {result}"), &[]),
        Connect::Failed(e) => trace.point("connect failed", &[("error", e)]),
    }
}

async fn connect(target: &Target, token: &str, via: Via) -> Connect {
    let Ok(mut req) = format!("ws://{}{}", target.authority, target.path).into_client_request()
    else {
        return Connect::Failed("bad url".into());
    };
    let (name, value) = match via {
        Via::Bearer => ("authorization", format!("Bearer {token}")),
        Via::Subprotocol => ("sec-websocket-protocol", token_subprotocols(token)),
    };
    let Ok(v) = HeaderValue::from_str(&value) else {
        return Connect::Failed("bad token".into());
    };
    req.headers_mut().insert(name, v);
    let stream = match TcpStream::connect(&target.authority).await {
        Ok(s) => s,
        Err(e) => return Connect::Failed(e.to_string()),
    };
    let config = WebSocketConfig::default().read_buffer_size(super::READ_BUFFER_SIZE);
    match tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await {
        Ok((_, response))
            if via == Via::Subprotocol
                && response
                    .headers()
                    .get("sec-websocket-protocol")
                    .is_none_or(|v| v.as_bytes() != JWT_SUBPROTOCOL.as_bytes()) =>
        {
            Connect::Failed(format!(
                "subprotocol handshake selected {:?}, not jwt",
                response.headers().get("sec-websocket-protocol")
            ))
        }
        Ok((mut ws, _)) => match next_json(&mut ws, WAIT).await {
            Some(v) if v["type"] == "connection_established" => Connect::Open(Box::new(ws), v),
            other => Connect::Failed(format!("no connection_established: {other:?}")),
        },
        Err(WsError::Http(r)) => Connect::Refused(r.status().as_u16()),
        Err(e) => Connect::Failed(e.to_string()),
    }
}

async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// Most stream events one simulated user reads before it stops with a violation: far past
/// what a run sends, and a bound on what a misbehaving server can make it track.
const MAX_EVENTS_PER_USER: u64 = 1 << 20;

/// What one user tracks across its connections.
#[derive(Default)]
struct Stream {
    last_seq: u64,
    ahead: BTreeSet<u64>,
    runs: BTreeMap<String, Vec<String>>,
}

impl Stream {
    fn note(&mut self, seq: u64) {
        if self.last_seq.checked_add(1) == Some(seq) {
            self.last_seq = seq;
            while let Some(next) = self.last_seq.checked_add(1)
                && self.ahead.remove(&next)
            {
                self.last_seq = next;
            }
        } else if seq > self.last_seq {
            self.ahead.insert(seq);
        }
    }
}

/// Counts a handshake refused for a reason the workload did not intend.
fn refused(r: &mut LoadReport, status: u16) {
    r.refused += 1;
    *r.refused_by_status.entry(status).or_default() += 1;
}

async fn run_user(
    i: u32,
    target: &Target,
    key: &EncodingKey,
    opts: &LoadOptions,
    deadline: tokio::time::Instant,
    mut trace: UserTrace,
) -> Result<UserOutcome, LoadError> {
    let user = user_name(i);
    let mut r = LoadReport::default();
    let mut latency = Histogram::<u64>::new(3).map_err(|e| LoadError::Histogram(e.to_string()))?;
    let violate = |r: &mut LoadReport, trace: &mut UserTrace, m: String| {
        trace.point("violation", &[("evidence", &m)]);
        if r.violations.len() < MAX_VIOLATIONS {
            r.violations.push(format!("{user}: {m}"));
        }
    };
    let ttl = opts.duration + Duration::from_secs(300);
    let token = mint(
        key,
        &user,
        &format!("{user}-{}", wall_clock().as_nanos()),
        ttl,
    );
    let forged = {
        let mut t = token.clone().into_bytes();
        let i = t.len().saturating_sub(10);
        if let Some(b) = t.get_mut(i) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        String::from_utf8(t).unwrap_or_default()
    };
    loop {
        let start = wall_clock();
        let outcome = connect(target, &forged, Via::Bearer).await;
        trace_connect(&mut trace, start, "forged bearer", &outcome);
        match outcome {
            Connect::Refused(401) => {
                r.forged_refused += 1;
                break;
            }
            Connect::Refused(status @ (429 | 503)) if tokio::time::Instant::now() < deadline => {
                refused(&mut r, status);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Connect::Refused(status) if status != 401 => {
                refused(&mut r, status);
                break;
            }
            Connect::Open(..) => {
                violate(&mut r, &mut trace, "a forged token was accepted".into());
                break;
            }
            _ => break,
        }
    }
    let mut stream = Stream::default();
    let mut sent = 0u64;
    while tokio::time::Instant::now() < deadline {
        // Every other connection authenticates the way a browser does.
        let via = if r.connections % 2 == 1 {
            Via::Subprotocol
        } else {
            Via::Bearer
        };
        let start = wall_clock();
        let outcome = connect(target, &token, via).await;
        trace_connect(&mut trace, start, via.name(), &outcome);
        let (mut ws, hello) = match outcome {
            Connect::Open(ws, hello) => (ws, hello),
            Connect::Refused(status) => {
                refused(&mut r, status);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Connect::Failed(e) => {
                violate(&mut r, &mut trace, format!("connect failed: {e}"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if r.connections == 0 {
            r.users_connected = 1;
        }
        r.connections += 1;
        if hello["user_id"] != user.as_str() {
            violate(
                &mut r,
                &mut trace,
                format!("connection_established names {}", hello["user_id"]),
            );
        }
        let live_from = hello["latest_seq"].as_u64().unwrap_or(0).saturating_add(1);
        let asked = stream.last_seq;
        if asked > 0 {
            let _ = ws
                .send(Message::text(
                    json!({"type":"resume","payload":{"last_seq":asked}}).to_string(),
                ))
                .await;
        }
        let mut on_conn: BTreeSet<u64> = BTreeSet::new();
        let reconnect_at = (tokio::time::Instant::now() + opts.reconnect_every).min(deadline);
        let mut next_msg = tokio::time::Instant::now();
        loop {
            let now = tokio::time::Instant::now();
            if now >= reconnect_at {
                break;
            }
            if now >= next_msg {
                sent += 1;
                let m = json!({"type":"user_message","payload":{"content":format!("load {sent}"),"thread_id":format!("{user}-t{}", sent % 3)}});
                // Read before the send: the answer may be in before the send returns.
                let sending = wall_clock();
                if ws.send(Message::text(m.to_string())).await.is_err() {
                    trace.point("send failed", &[]);
                    break;
                }
                r.messages_sent += 1;
                trace.sent(sending);
                next_msg = now + opts.message_every;
            }
            let wait = next_msg
                .min(reconnect_at)
                .saturating_duration_since(tokio::time::Instant::now());
            let Ok(msg) = tokio::time::timeout(wait.max(Duration::from_millis(1)), ws.next()).await
            else {
                continue;
            };
            let v: Value = match msg {
                Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).unwrap_or_default(),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map(|f| u16::from(f.code).to_string());
                    trace.point(
                        "closed by the server",
                        &[("code", code.as_deref().unwrap_or("none"))],
                    );
                    break;
                }
                None | Some(Err(_)) => {
                    trace.point("connection lost", &[]);
                    break;
                }
                Some(Ok(_)) => continue,
            };
            r.frames_received += 1;
            if let Some(owner) = v["user_id"].as_str()
                && owner != user
            {
                violate(&mut r, &mut trace, format!("received an event of {owner}"));
            }
            if v["type"] == "error" && v["code"] == "RESUME_GAP" {
                let oldest = v["oldest_seq"].as_u64().unwrap_or(0);
                stream.last_seq = stream.last_seq.max(oldest.saturating_sub(1));
                stream.ahead.retain(|s| *s > oldest);
            }
            if v["type"] == "resumed" && v["from_seq"].as_u64() != Some(asked + 1) {
                violate(
                    &mut r,
                    &mut trace,
                    format!("resume after {asked} started at {}", v["from_seq"]),
                );
            }
            let Some(seq) = v["seq"].as_u64() else {
                continue;
            };
            r.events_received += 1;
            if r.events_received > MAX_EVENTS_PER_USER {
                // What is tracked per event (seqs seen, runs open) is bounded by this.
                violate(
                    &mut r,
                    &mut trace,
                    format!("over {MAX_EVENTS_PER_USER} events for one user; stopped reading"),
                );
                let _ = ws.close(None).await;
                end_connection(&mut trace, start, via, on_conn.len());
                return Ok(UserOutcome {
                    report: r,
                    latency,
                    trace,
                });
            }
            if !on_conn.insert(seq) {
                violate(
                    &mut r,
                    &mut trace,
                    format!("seq {seq} twice on one connection"),
                );
            }
            stream.note(seq);
            if seq >= live_from
                && let Some(ts) = v["timestamp"].as_u64()
            {
                let micros = wall_clock().as_nanos() / 1000;
                let _ = latency.record(micros.saturating_sub(ts.saturating_mul(1000)));
            }
            let (Some(run), Some(kind)) = (v["run_id"].as_str(), v["type"].as_str()) else {
                continue;
            };
            if kind == "agent_started" && seq >= live_from {
                trace.answered();
            }
            let events = stream.runs.entry(run.to_string()).or_default();
            if events.is_empty() && kind != "agent_started" {
                violate(
                    &mut r,
                    &mut trace,
                    format!("{run}: {kind} before agent_started"),
                );
            }
            if events.last().is_some_and(|k| {
                matches!(
                    k.as_str(),
                    "agent_completed" | "agent_failed" | "agent_cancelled"
                )
            }) {
                violate(
                    &mut r,
                    &mut trace,
                    format!("{run}: {kind} after its terminal event"),
                );
            }
            events.push(kind.to_string());
            if matches!(kind, "agent_completed" | "agent_failed" | "agent_cancelled") {
                r.runs_completed += 1;
                stream.runs.remove(run);
            }
        }
        let _ = ws.close(None).await;
        end_connection(&mut trace, start, via, on_conn.len());
    }
    if let Some(missing) = stream.ahead.first() {
        violate(
            &mut r,
            &mut trace,
            format!("gap: have up to {}, then {missing}", stream.last_seq),
        );
    }
    Ok(UserOutcome {
        report: r,
        latency,
        trace,
    })
}

/// Traces a connection opened at `start` and closed now, with the stream events it carried.
fn end_connection(trace: &mut UserTrace, start: Instant, via: Via, events: usize) {
    trace.span(
        CONNECTION_SPAN,
        start,
        &[("credential", via.name()), ("events", &events.to_string())],
    );
    trace.disconnected();
}
