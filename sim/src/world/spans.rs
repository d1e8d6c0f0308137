//! The trace spans: which agent runs and sessions are open, since when, and on which track
//! each is drawn, so the sink gets one span per run and per session. It owns only that
//! bookkeeping: it never changes the run, the gateway or what the checkers see, and when
//! the sink keeps no spans it keeps nothing either.

use std::collections::BTreeMap;

use gauntlet_core::{ConnId, Instant, RunId, UserId};

use super::sink::Sink;
use crate::id_map::UserMap;

/// Open trace spans.
pub(super) struct Spans {
    /// Whether the sink keeps spans (when not, the tables below stay empty).
    on: bool,
    /// Open runs: when each started and the track it is drawn on.
    runs: BTreeMap<RunId, (Instant, u64)>,
    /// Open sessions: when each opened (a session is drawn on its connection's track).
    sessions: BTreeMap<ConnId, Instant>,
    /// Each user's latest session, whose track their runs are drawn on.
    user_track: UserMap<ConnId>,
}

impl Spans {
    pub(super) fn new(on: bool) -> Self {
        Spans {
            on,
            runs: BTreeMap::new(),
            sessions: BTreeMap::new(),
            user_track: UserMap::default(),
        }
    }

    /// `user`'s agent run `run` started.
    pub(super) fn run_started(&mut self, run: RunId, user: &UserId, now: Instant) {
        if self.on {
            // Runs are drawn on the track of the owner's latest session.
            let track = self.user_track.get(user).map_or(0, |c| c.get());
            self.runs.insert(run, (now, track));
        }
    }

    /// Run `run` ended as `how` (the terminal stream entry's kind).
    pub(super) fn run_ended(&mut self, run: RunId, how: &str, now: Instant, sink: &mut dyn Sink) {
        if self.on
            && let Some((start, track)) = self.runs.remove(&run)
        {
            sink.span(track, &format!("{run} {how}"), start, now);
        }
    }

    /// `user` opened a session on `conn`.
    pub(super) fn session_opened(&mut self, conn: ConnId, user: &UserId, now: Instant) {
        if self.on {
            self.sessions.insert(conn, now);
            self.user_track.insert(user.clone(), conn);
        }
    }

    /// The session on `conn` closed for `why`.
    pub(super) fn session_closed(
        &mut self,
        conn: ConnId,
        why: &str,
        now: Instant,
        sink: &mut dyn Sink,
    ) {
        if self.on
            && let Some(start) = self.sessions.remove(&conn)
        {
            sink.span(conn.get(), &format!("{conn} ({why})"), start, now);
        }
    }

    /// The gateway crashed: every open session ended with it.
    pub(super) fn crashed(&mut self, now: Instant, sink: &mut dyn Sink) {
        for (conn, start) in std::mem::take(&mut self.sessions) {
            sink.span(conn.get(), &format!("{conn} (crash)"), start, now);
        }
    }
}
