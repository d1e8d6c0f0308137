//! Delivery: every stream event a connection receives is byte-identical to the log's, none
//! twice, live events in order, `resume` picks up exactly after the client's `last_seq` (or
//! says where the retained stream starts), and at quiescence every open connection has every
//! event of its user's stream since it opened.

use std::sync::Arc;

use gauntlet_core::{ConnId, Event, Seq, StreamEntry, UserId};

use super::seq_set::SeqSet;
use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::FrameView;
use crate::id_map::{ConnMap, UserMap};

#[derive(Default)]
struct ConnTrack {
    live_from: u64,
    live_last: u64,
    backfill_last: u64,
    received: SeqSet,
    resume_from: Option<u64>,
    gap_oldest: Option<u64>,
    /// A frame the client sent here was corrupted: whatever resume the gateway saw, it may
    /// not be the one the client asked for.
    intent_unknown: bool,
}

#[derive(Default)]
pub(crate) struct DeliveryChecker {
    /// Every entry of every user's stream (shared with the log, so each costs a pointer).
    streams: UserMap<Vec<Arc<StreamEntry>>>,
    conns: ConnMap<ConnTrack>,
    /// The expected frame, rendered here to compare without allocating.
    expected: Vec<u8>,
}

const NAME: &str = "delivery";

impl DeliveryChecker {
    fn on_log(&mut self, entries: &[gauntlet_core::LogEntry]) -> Result<(), Failure> {
        for e in entries {
            match &e.event {
                Event::StreamAppended { user, seq, entry } => {
                    // Looked up before inserting: an existing user costs no id clone.
                    let s = match self.streams.get_mut(user) {
                        Some(s) => s,
                        None => self.streams.entry(user.clone()).or_default(),
                    };
                    if seq.get() != s.len() as u64 + 1 {
                        return Err(Failure::new(
                            NAME,
                            format!("{user}: seq {} appended after {}", seq.get(), s.len()),
                        ));
                    }
                    s.push(Arc::clone(entry));
                }
                Event::SessionOpened { conn, identity, .. } => {
                    let live_from = self.streams.get(&identity.user).map_or(0, Vec::len) as u64 + 1;
                    self.conns.insert(
                        *conn,
                        ConnTrack {
                            live_from,
                            ..ConnTrack::default()
                        },
                    );
                }
                Event::SessionClosed { conn, .. } => {
                    self.conns.remove(conn);
                }
                Event::Restarted => self.conns.clear(),
                _ => {}
            }
        }
        Ok(())
    }

    fn on_frame(
        &mut self,
        conn: ConnId,
        user: &UserId,
        frame: &Arc<str>,
        json: &FrameView<'_>,
    ) -> Result<(), Failure> {
        let Some(t) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let kind = json.kind();
        if kind == "error" && json.code() == Some("RESUME_GAP") {
            t.gap_oldest = json.oldest_seq();
            return Ok(());
        }
        if kind == "resumed" && t.intent_unknown {
            return Ok(());
        }
        if kind == "resumed" {
            let from = json.resumed_from().unwrap_or(0);
            let latest = self.streams.get(user).map_or(0, Vec::len) as u64;
            if from > latest + 1 {
                // RESUME-ERRORS: a `last_seq` past the stream is BAD_MESSAGE, never resumed.
                return Err(Failure::new(
                    NAME,
                    format!("{conn}: resumed from {from}, ahead of {user}'s stream ({latest})"),
                ));
            }
            let asked = t.resume_from.map_or(0, |l| l + 1);
            if from != asked && Some(from) != t.gap_oldest {
                return Err(Failure::new(
                    NAME,
                    format!(
                        "{conn}: resume after {} started at {from} without a RESUME_GAP",
                        asked.saturating_sub(1)
                    ),
                ));
            }
            return Ok(());
        }
        let Some(seq) = json.seq() else {
            return Ok(());
        };
        let stored = self
            .streams
            .get(user)
            .and_then(|s| s.get(seq.saturating_sub(1) as usize));
        // Compared with the log's entry rendered for this user, byte by byte.
        let same = stored.is_some_and(|e| {
            e.write_frame(Seq::new(seq), user, &mut self.expected);
            self.expected == frame.as_bytes()
        });
        if !same {
            return Err(Failure::new(
                NAME,
                format!("{conn}: seq {seq} of {user} differs from the log"),
            ));
        }
        if !t.received.insert(seq) {
            return Err(Failure::new(
                NAME,
                format!("{conn}: seq {seq} delivered twice"),
            ));
        }
        if seq >= t.live_from {
            if seq <= t.live_last {
                return Err(Failure::new(
                    NAME,
                    format!("{conn}: live seq {seq} after {}", t.live_last),
                ));
            }
            t.live_last = seq;
        } else {
            if seq <= t.backfill_last {
                return Err(Failure::new(
                    NAME,
                    format!("{conn}: resumed seq {seq} after {}", t.backfill_last),
                ));
            }
            if t.backfill_last == 0 && !t.intent_unknown {
                let expected = t.resume_from.map_or(1, |l| l + 1);
                if seq != expected && Some(seq) != t.gap_oldest {
                    return Err(Failure::new(
                        NAME,
                        format!("{conn}: resume after {} began with seq {seq}", expected - 1),
                    ));
                }
            }
            t.backfill_last = seq;
        }
        Ok(())
    }
}

impl Checker for DeliveryChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Log(entries) => self.on_log(entries),
            Obs::Frame {
                conn,
                session_user,
                frame,
                json,
                ..
            } => self.on_frame(*conn, session_user, frame, json),
            Obs::RequestCorrupted { conn } => {
                if let Some(t) = self.conns.get_mut(conn) {
                    t.intent_unknown = true;
                }
                Ok(())
            }
            Obs::ResumeSent { conn, last_seq } => {
                if let Some(t) = self.conns.get_mut(conn) {
                    t.resume_from = Some(*last_seq);
                    t.backfill_last = 0;
                    t.gap_oldest = None;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        if !end.quiescent {
            return Ok(());
        }
        for (conn, user) in end.open {
            let Some(t) = self.conns.get(conn) else {
                continue;
            };
            let total = self.streams.get(user).map_or(0, Vec::len) as u64;
            if let Some(missing) = t.received.first_missing(t.live_from, total) {
                return Err(Failure::new(
                    NAME,
                    format!("{conn} of {user} never received seq {missing} (of {total})"),
                ));
            }
        }
        Ok(())
    }
}
