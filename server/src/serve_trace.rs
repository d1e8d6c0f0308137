//! What `gauntlet serve --trace` records, from the gateway task: a track per WebSocket
//! connection, named after its peer and, once authenticated, its user; instants for the
//! handshake's verdict (accepted, or refused with its status and code), the session's auth
//! and reauth, and its close (code and reason); one `session` span per accepted connection,
//! from its open to its close; and the gateway's sizes as counter tracks (open sessions and
//! runs, outboxes, the deepest send queue so far), sampled when a session opens or closes
//! and every feed tick.
//!
//! It reads what the gateway task already has (the handshake verdict, the log entries, the
//! gateway's stats) and never reaches back: nothing here changes what the server does. Its
//! memory is the open sessions (bounded by the gateway's `max_connections`); the file is
//! bounded by the trace's event cap.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use gauntlet_core::trace::TraceScope;
use gauntlet_core::{ConnId, Event, GatewayStats, HandshakeDecision, Instant, LogEntry, UserId};

use super::trace_file::{Dropped, TraceFile, TraceOptions};

/// The name of each accepted connection's lifetime span.
const SESSION_SPAN: &str = "session";

/// The serve trace: the file and the sessions open now.
pub(crate) struct ServeTrace {
    file: TraceFile,
    /// Open sessions: when each opened and whose it is, for its span at close.
    open: BTreeMap<ConnId, (Instant, UserId)>,
    /// Whether a session opened or closed since the gateway's sizes were last sampled.
    changed: bool,
}

impl ServeTrace {
    /// Starts the trace of a server listening on `addr`; time zero is `origin`.
    pub(crate) fn create(
        options: &TraceOptions,
        origin: Instant,
        addr: SocketAddr,
    ) -> Result<Self, super::ServerError> {
        let process = format!("gauntlet serve {addr}");
        let file = TraceFile::create(options, origin, &process, "server")
            .map_err(|(path, source)| super::ServerError::Trace { path, source })?;
        Ok(Self {
            file,
            open: BTreeMap::new(),
            changed: false,
        })
    }

    /// The gateway's verdict on `conn`'s upgrade request from `peer`.
    pub(crate) fn handshake(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: SocketAddr,
        decision: &HandshakeDecision,
    ) {
        let tid = conn.get();
        self.file.write(|w| match decision {
            HandshakeDecision::Accept { user, subprotocol } => {
                w.name_track(tid, &format!("{conn} {user} ({peer})"))?;
                w.instant(
                    now,
                    tid,
                    TraceScope::Track,
                    "handshake accepted",
                    &[
                        ("user", user.as_str()),
                        ("subprotocol", subprotocol.unwrap_or("none")),
                    ],
                )
            }
            HandshakeDecision::Reject { status, code, .. } => {
                w.name_track(tid, &format!("{conn} {peer} (refused)"))?;
                let status = status.as_u16().to_string();
                w.instant(
                    now,
                    tid,
                    TraceScope::Track,
                    "handshake refused",
                    &[("status", &status), ("code", code)],
                )
            }
        });
    }

    /// The log entries of one gateway call: sessions opening, reauthenticating, closing.
    pub(crate) fn entries(&mut self, entries: &[LogEntry]) {
        for e in entries {
            match &e.event {
                Event::SessionOpened {
                    conn,
                    identity,
                    via,
                    ..
                } => {
                    let user = &identity.user;
                    let via = credential(*via);
                    self.file.write(|w| {
                        w.instant(
                            e.at,
                            conn.get(),
                            TraceScope::Track,
                            "auth",
                            &[("user", user.as_str()), ("via", &via)],
                        )
                    });
                    self.open.insert(*conn, (e.at, user.clone()));
                    self.changed = true;
                }
                Event::SessionReauthed { conn, identity } => self.file.write(|w| {
                    w.instant(
                        e.at,
                        conn.get(),
                        TraceScope::Track,
                        "reauth",
                        &[("user", identity.user.as_str())],
                    )
                }),
                Event::SessionClosed { conn, reason } => {
                    let code = reason.close_code().as_u16().to_string();
                    let why = reason.text();
                    let opened = self.open.remove(conn);
                    self.file.write(|w| {
                        let tid = conn.get();
                        w.instant(
                            e.at,
                            tid,
                            TraceScope::Track,
                            &format!("close {code} ({why})"),
                            &[("code", &code), ("reason", why)],
                        )?;
                        // Every session closing opened under this trace: a resumed
                        // journal's sessions ended with the restart, before it began.
                        if let Some((start, user)) = &opened {
                            w.complete(
                                *start,
                                e.at.saturating_since(*start),
                                tid,
                                SESSION_SPAN,
                                &[("user", user.as_str()), ("close", why)],
                            )?;
                        }
                        Ok(())
                    });
                    self.changed = true;
                }
                _ => {}
            }
        }
    }

    /// Samples the gateway's sizes as counters: always when `force` (the feed tick), else
    /// only when a session opened or closed since the last sample.
    pub(crate) fn sample(
        &mut self,
        now: Instant,
        stats: impl FnOnce() -> GatewayStats,
        force: bool,
    ) {
        if force || std::mem::take(&mut self.changed) {
            let stats = stats();
            self.file.write(|w| w.gateway_counters(now, &stats));
        }
    }

    /// Ends the trace: the events its cap dropped, or the first write error.
    pub(crate) fn finish(self) -> Result<Dropped, super::ServerError> {
        self.file
            .finish()
            .map_err(|(path, source)| super::ServerError::Trace { path, source })
    }
}

/// A credential kind as the journal spells it (`bearer`, `subprotocol`, `ticket`, `query_token`).
fn credential(via: gauntlet_core::CredentialKind) -> String {
    serde_json::to_value(via)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
