//! Delivery: every stream event a connection receives is byte-identical to the log's, none
//! twice, live events in order, `resume` picks up exactly after the client's `last_seq` (or
//! says where the retained stream starts), and at quiescence every open connection has every
//! event of its user's stream since it opened.
//!
//! A broadcast reaches the log as one `stream_broadcast` event. The checker expands it
//! itself, not from anything the gateway keeps: the copies go to the users its own model of
//! the log's sessions says are connected (opened, not yet closed, no restart since; a session
//! stays its handshake's user, as a `reauth` must), each at the next seq of this checker's own
//! model of that user's stream. A gateway that gives a copy to anyone else, or at another seq,
//! then disagrees with the model: its next append to that user is out of step, a frame differs
//! from the expected one, or an open connection misses a seq at quiescence.

use std::collections::BTreeMap;
use std::sync::Arc;

use gauntlet_core::{ConnId, Event, Seq, StreamEntry, UserId};

use super::seq_set::SeqSet;
use super::wire_shape::{envelope_fault, welcome_fault};
use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::FrameView;
use crate::id_map::{ConnMap, UserMap};

struct ConnTrack {
    /// The user its session opened as.
    user: UserId,
    live_from: u64,
    live_last: u64,
    backfill_last: u64,
    received: SeqSet,
    resume_from: Option<u64>,
    gap_oldest: Option<u64>,
    /// A frame the client sent here was corrupted: whatever resume the gateway saw, it may
    /// not be the one the client asked for.
    intent_unknown: bool,
    /// Its first frame, which must be `connection_established`, has arrived.
    welcomed: bool,
}

impl ConnTrack {
    fn new(user: UserId, live_from: u64) -> Self {
        Self {
            user,
            live_from,
            live_last: 0,
            backfill_last: 0,
            received: SeqSet::default(),
            resume_from: None,
            gap_oldest: None,
            intent_unknown: false,
            welcomed: false,
        }
    }
}

#[derive(Default)]
pub(crate) struct DeliveryChecker {
    /// Every entry of every user's stream (shared with the log, so each costs a pointer).
    streams: UserMap<Vec<Arc<StreamEntry>>>,
    conns: ConnMap<ConnTrack>,
    /// Open sessions per user, from the log's session events: who a broadcast reaches.
    /// Ordered so a broadcast's copies are appended in user order, as the protocol says.
    connected: BTreeMap<UserId, usize>,
    /// The expected frame, rendered here to compare without allocating.
    expected: String,
}

const NAME: &str = "delivery";

/// One stream frame in this many (by `seq`) is also read against the documented envelope.
const ENVELOPE_SAMPLE: u64 = 8;

/// Appends `entry` to a user's stream, growing it by a quarter where a `Vec` would double:
/// every stream is kept to the end, and doubling left a quarter of the 18 MB the streams of a
/// 10 000-user run took unused.
fn push_entry(stream: &mut Vec<Arc<StreamEntry>>, entry: &Arc<StreamEntry>) {
    if stream.len() == stream.capacity() {
        stream.reserve_exact((stream.len() / 4).max(4));
    }
    stream.push(Arc::clone(entry));
}

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
                    push_entry(s, entry);
                }
                Event::StreamBroadcast { entry } => {
                    // Each copy takes its user's next seq by construction: a gateway that
                    // placed it elsewhere is caught at that user's next append or frame.
                    for user in self.connected.keys() {
                        match self.streams.get_mut(user) {
                            Some(s) => push_entry(s, entry),
                            None => {
                                self.streams.insert(user.clone(), vec![Arc::clone(entry)]);
                            }
                        }
                    }
                }
                Event::SessionOpened { conn, identity, .. } => {
                    let user = &identity.user;
                    let live_from = self.streams.get(user).map_or(0, Vec::len) as u64 + 1;
                    *self.connected.entry(user.clone()).or_default() += 1;
                    let track = ConnTrack::new(user.clone(), live_from);
                    if let Some(old) = self.conns.insert(*conn, track) {
                        // The gateway's fold refuses a second open of an open connection;
                        // were one logged, the model still counts each session once.
                        self.disconnect(&old.user);
                    }
                }
                Event::SessionClosed { conn, .. } => {
                    if let Some(t) = self.conns.remove(conn) {
                        self.disconnect(&t.user);
                    }
                }
                Event::Restarted => {
                    self.conns.clear();
                    self.connected.clear();
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// One session of `user` ended.
    fn disconnect(&mut self, user: &UserId) {
        let emptied = self.connected.get_mut(user).is_some_and(|n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
        if emptied {
            self.connected.remove(user);
        }
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
        if !t.welcomed {
            t.welcomed = true;
            // WS-CONNECTION-ESTABLISHED: the user's latest seq is the one before its first live.
            if let Some(fault) = welcome_fault(frame, conn, user, t.live_from - 1) {
                return Err(Failure::new(NAME, format!("{conn} of {user}: {fault}")));
            }
            return Ok(());
        }
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
            *self.expected == **frame
        });
        if !same {
            return Err(Failure::new(
                NAME,
                format!("{conn}: seq {seq} of {user} differs from the log"),
            ));
        }
        // OUT-ENVELOPE, against the protocol rather than the renderer the line above trusts:
        // one frame in ENVELOPE_SAMPLE, since a shape the renderer gets wrong is wrong on
        // every frame of its kind.
        if seq % ENVELOPE_SAMPLE == 1
            && let Some(e) = stored
            && let Some(fault) = envelope_fault(frame, e, Seq::new(seq), user)
        {
            return Err(Failure::new(
                NAME,
                format!("{conn}: seq {seq} of {user}: {fault}"),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use gauntlet_core::{CloseReason, Instant, LogEntry, StreamKind};

    use super::*;
    use crate::checker::test_fixtures::{closed, entry, opened};

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn notice(text: &str) -> Arc<StreamEntry> {
        Arc::new(StreamEntry::new(
            Instant::from_unix_secs(1),
            StreamKind::SystemNotice,
            None,
            None,
            serde_json::from_str(&format!(r#"{{"text":"{text}"}}"#)).unwrap(),
        ))
    }

    fn appended(name: &str, seq: u64, e: &Arc<StreamEntry>) -> LogEntry {
        entry(Event::StreamAppended {
            user: user(name),
            seq: Seq::new(seq),
            entry: Arc::clone(e),
        })
    }

    fn broadcast(e: &Arc<StreamEntry>) -> LogEntry {
        entry(Event::StreamBroadcast {
            entry: Arc::clone(e),
        })
    }

    /// `e` rendered for `rendered_for` at `seq`, received on `conn` of `session_user`.
    fn receive(
        c: &mut DeliveryChecker,
        conn: u64,
        session_user: &str,
        (e, seq, rendered_for): (&Arc<StreamEntry>, u64, &str),
    ) -> Result<(), Failure> {
        let mut buf = String::new();
        e.write_frame(Seq::new(seq), &user(rendered_for), &mut buf);
        let frame: Arc<str> = Arc::from(buf);
        c.observe(&Obs::Frame {
            conn: ConnId::new(conn),
            session_user: &user(session_user),
            frame: &frame,
            json: &FrameView::parse(&frame),
        })
    }

    /// The `connection_established` a session of `name` on `conn` gets with `latest_seq`.
    fn welcome(
        c: &mut DeliveryChecker,
        conn: u64,
        name: &str,
        latest_seq: u64,
    ) -> Result<(), Failure> {
        let frame = gauntlet_core::protocol::ServerFrame::ConnectionEstablished {
            user_id: user(name),
            connection_id: ConnId::new(conn),
            latest_seq: Seq::new(latest_seq),
            critical_events: gauntlet_core::protocol::CRITICAL_EVENTS,
        };
        let frame: Arc<str> = Arc::from(serde_json::to_string(&frame).unwrap().as_str());
        c.observe(&Obs::Frame {
            conn: ConnId::new(conn),
            session_user: &user(name),
            frame: &frame,
            json: &FrameView::parse(&frame),
        })
    }

    fn fail(message: &str) -> Result<(), Failure> {
        Err(Failure::new(NAME, message))
    }

    /// Alice (conn 1, one earlier event), bob (conns 2 and 3) connected and carol (conn 4)
    /// gone when the broadcast `b` is logged.
    fn after_broadcast(b: &Arc<StreamEntry>) -> DeliveryChecker {
        let mut c = DeliveryChecker::default();
        let first = notice("first");
        let log = [
            opened(1, "alice"),
            opened(2, "bob"),
            opened(3, "bob"),
            opened(4, "carol"),
            closed(4, CloseReason::PeerClosed),
            appended("alice", 1, &first),
            broadcast(b),
        ];
        assert_eq!(c.observe(&Obs::Log(&log)), Ok(()));
        for (conn, name) in [(1, "alice"), (2, "bob"), (3, "bob")] {
            assert_eq!(welcome(&mut c, conn, name, 0), Ok(()));
        }
        assert_eq!(receive(&mut c, 1, "alice", (&first, 1, "alice")), Ok(()));
        c
    }

    #[test]
    fn a_session_opens_with_connection_established_at_its_users_latest_seq() {
        let first = notice("first");
        let log = [
            appended("alice", 1, &first),
            opened(1, "alice"),
            opened(2, "alice"),
        ];
        let mut c = DeliveryChecker::default();
        assert_eq!(c.observe(&Obs::Log(&log)), Ok(()));
        assert_eq!(welcome(&mut c, 1, "alice", 1), Ok(()));
        // Stale `latest_seq`.
        let stale = welcome(&mut c, 2, "alice", 0).unwrap_err();
        assert!(stale.message.contains("latest_seq"), "{stale:?}");
        // A stream frame before the welcome.
        let mut c = DeliveryChecker::default();
        assert_eq!(c.observe(&Obs::Log(&log)), Ok(()));
        let early = receive(&mut c, 1, "alice", (&first, 1, "alice")).unwrap_err();
        assert!(early.message.contains("first frame of type"), "{early:?}");
    }

    #[test]
    fn a_broadcast_copy_is_expected_for_each_connected_user_at_its_own_next_seq() {
        let b = notice("maintenance");
        let mut c = after_broadcast(&b);
        assert_eq!(receive(&mut c, 1, "alice", (&b, 2, "alice")), Ok(()));
        assert_eq!(receive(&mut c, 2, "bob", (&b, 1, "bob")), Ok(()));
        assert_eq!(receive(&mut c, 3, "bob", (&b, 1, "bob")), Ok(()));
        let open = BTreeMap::from([
            (ConnId::new(1), user("alice")),
            (ConnId::new(2), user("bob")),
            (ConnId::new(3), user("bob")),
        ]);
        let end = |quiescent| EndState {
            open: &open,
            quiescent,
        };
        assert_eq!(c.finish(&end(true)), Ok(()));
        // Carol, gone before it, got no copy: her first event is her seq 1; bob's next is 2.
        let next = notice("next");
        assert_eq!(c.observe(&Obs::Log(&[appended("carol", 1, &next)])), Ok(()));
        assert_eq!(
            c.observe(&Obs::Log(&[appended("bob", 1, &next)])),
            fail("bob: seq 1 appended after 1")
        );
    }

    #[test]
    fn a_broadcast_copy_at_another_seq_or_for_another_user_fails() {
        let b = notice("maintenance");
        let mut c = after_broadcast(&b);
        // Alice's copy is her seq 2, not 1 (which is her first event).
        assert_eq!(
            receive(&mut c, 1, "alice", (&b, 1, "alice")),
            fail("conn-1: seq 1 of alice differs from the log")
        );
        // Alice's copy on bob's connection.
        assert_eq!(
            receive(&mut c, 2, "bob", (&b, 2, "alice")),
            fail("conn-2: seq 2 of bob differs from the log")
        );
        // Bob's own copy, twice.
        assert_eq!(receive(&mut c, 3, "bob", (&b, 1, "bob")), Ok(()));
        assert_eq!(
            receive(&mut c, 3, "bob", (&b, 1, "bob")),
            fail("conn-3: seq 1 delivered twice")
        );
    }

    #[test]
    fn a_connection_that_never_gets_its_broadcast_copy_fails_at_quiescence() {
        let b = notice("maintenance");
        let mut c = after_broadcast(&b);
        assert_eq!(receive(&mut c, 1, "alice", (&b, 2, "alice")), Ok(()));
        let open = BTreeMap::from([
            (ConnId::new(1), user("alice")),
            (ConnId::new(2), user("bob")),
        ]);
        assert_eq!(
            c.finish(&EndState {
                open: &open,
                quiescent: true,
            }),
            fail("conn-2 of bob never received seq 1 (of 1)")
        );
    }

    #[test]
    fn after_a_restart_a_broadcast_reaches_only_sessions_opened_since() {
        let mut c = DeliveryChecker::default();
        let b = notice("maintenance");
        let log = [
            opened(1, "alice"),
            entry(Event::Restarted),
            opened(2, "bob"),
            broadcast(&b),
        ];
        assert_eq!(c.observe(&Obs::Log(&log)), Ok(()));
        let next = notice("next");
        let log = [appended("alice", 1, &next), appended("bob", 2, &next)];
        assert_eq!(c.observe(&Obs::Log(&log)), Ok(()));
    }
}
