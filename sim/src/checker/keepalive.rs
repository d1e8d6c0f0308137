//! Keep-alives are answered: every `ping` that reaches an open session is answered with
//! exactly one `pong`, every `heartbeat` with exactly one `heartbeat_ack` (`MSG-PING`,
//! `MSG-HEARTBEAT`). The echo of their `message_id` is the envelope checker's.
//!
//! A request is owed its reply when the gateway let it through its user's rate bucket and
//! the session is still open in the log once the gateway has handled it: a refused one is
//! answered `RATE_LIMITED` instead, and one whose reply found the send queue full closes the
//! session as a slow consumer in the same call. The gateway sends a reply at once, before
//! any later close, and a connection delivers in order, so the replies owed must all have
//! arrived when a close frame does (unless the gateway logged the close as a slow consumer:
//! a reply may then have been dropped), and by the end of the run on a connection still open
//! at both ends. A reply beyond those owed fails at once. A connection the network corrupted
//! a request of is not judged (the bytes may have become a keep-alive, or stopped being
//! one), nor one its client closed or whose transport broke. This checker only reads
//! observations; it never feeds anything back into the world.

use std::collections::BTreeMap;

use gauntlet_core::{CloseReason, ConnId, Event, LogEntry};

use super::envelope::MAX_ECHO;
use super::open_sessions::OpenSessions;
use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::FrameView;

const NAME: &str = "keepalive";

/// The two keep-alives, by the kind of their reply.
const REPLIES: [&str; 2] = ["pong", "heartbeat_ack"];

/// Frames longer than this are not parsed for a keep-alive: the longest the clients send,
/// a `heartbeat` with a `message_id` one byte over the bound, is under 200 bytes.
const MAX_KEEPALIVE_BYTES: usize = 256;

/// The kind of reply a client's text frame is owed, if it is a keep-alive the protocol
/// answers: a `ping` or `heartbeat` whose `message_id`, if any, is within the bound (a
/// longer one is `BAD_MESSAGE`, `MSG-ENVELOPE`). Read from the bytes the gateway got.
pub(crate) fn keepalive_reply(text: &str) -> Option<&'static str> {
    if text.len() > MAX_KEEPALIVE_BYTES {
        return None;
    }
    let json = FrameView::parse(text);
    if json.message_id().is_some_and(|id| id.len() > MAX_ECHO) {
        return None;
    }
    match json.kind() {
        "ping" => Some(REPLIES[0]),
        "heartbeat" => Some(REPLIES[1]),
        _ => None,
    }
}

/// What one connection was owed and got.
#[derive(Default)]
struct Ledger {
    /// Replies owed, by [`REPLIES`] index.
    owed: [u64; 2],
    /// Replies received, by [`REPLIES`] index.
    got: [u64; 2],
    /// Not judged: a request was corrupted, its client closed it or its transport broke, or
    /// the gateway closed it as a slow consumer.
    excused: bool,
}

#[derive(Default)]
pub(crate) struct KeepaliveChecker {
    open: OpenSessions,
    /// Connections that sent a keep-alive or had a request corrupted, until their client
    /// hears of a close.
    ledgers: BTreeMap<ConnId, Ledger>,
}

/// The index of `kind` in [`REPLIES`].
fn reply_index(kind: &str) -> Option<usize> {
    REPLIES.iter().position(|r| *r == kind)
}

/// The request a reply answers.
fn request_of(reply: usize) -> &'static str {
    if reply == 0 { "ping" } else { "heartbeat" }
}

impl Ledger {
    /// The first kind of reply of which fewer arrived than were owed.
    fn missing(&self) -> Option<usize> {
        (0..REPLIES.len()).find(|k| self.got[*k] < self.owed[*k])
    }

    fn missing_message(&self, conn: ConnId, k: usize, when: &str) -> String {
        format!(
            "{conn}: {} {} requests reached the open session but {} {} replies came back {when}",
            self.owed[k],
            request_of(k),
            self.got[k],
            REPLIES[k]
        )
    }
}

impl KeepaliveChecker {
    fn on_log(&mut self, entries: &[LogEntry]) {
        for e in entries {
            self.open.apply(&e.event);
            // A peer close: the client closed it or its transport broke, so replies in
            // flight are lost. A slow consumer: the reply that overflowed it is.
            if let Event::SessionClosed { conn, reason } = &e.event
                && matches!(reason, CloseReason::PeerClosed | CloseReason::SlowConsumer)
                && let Some(l) = self.ledgers.get_mut(conn)
            {
                l.excused = true;
            }
        }
    }

    fn on_request(&mut self, conn: ConnId, reply: &str, limited: bool) {
        let Some(k) = reply_index(reply) else {
            return;
        };
        if limited || !self.open.contains(&conn) {
            return;
        }
        self.ledgers.entry(conn).or_default().owed[k] += 1;
    }

    fn on_reply(&mut self, conn: ConnId, kind: &str) -> Result<(), Failure> {
        let Some(k) = reply_index(kind) else {
            return Ok(());
        };
        let l = self.ledgers.entry(conn).or_default();
        l.got[k] += 1;
        if l.excused || l.got[k] <= l.owed[k] {
            return Ok(());
        }
        Err(Failure::new(
            NAME,
            format!(
                "{conn}: {} {} replies came back for {} {} requests that reached the open session",
                l.got[k],
                REPLIES[k],
                l.owed[k],
                request_of(k)
            ),
        ))
    }

    fn on_client_closed(&mut self, conn: ConnId, code: Option<u16>) -> Result<(), Failure> {
        let Some(l) = self.ledgers.remove(&conn) else {
            return Ok(());
        };
        if code.is_none() || l.excused {
            return Ok(());
        }
        match l.missing() {
            Some(k) => Err(Failure::new(
                NAME,
                l.missing_message(conn, k, "before its close frame"),
            )),
            None => Ok(()),
        }
    }
}

impl Checker for KeepaliveChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Log(entries) => {
                self.on_log(entries);
                Ok(())
            }
            Obs::RequestCorrupted { conn } => {
                self.ledgers.entry(*conn).or_default().excused = true;
                Ok(())
            }
            Obs::Keepalive {
                conn,
                reply,
                limited,
            } => {
                self.on_request(*conn, reply, *limited);
                Ok(())
            }
            Obs::Frame { conn, json, .. } if json.seq().is_none() => {
                self.on_reply(*conn, json.kind())
            }
            Obs::ClientClosed { conn, code } => self.on_client_closed(*conn, *code),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        if !end.quiescent {
            return Ok(());
        }
        // Open at both ends once the network drained: every reply sent has arrived.
        for (conn, l) in &self.ledgers {
            if l.excused || !self.open.contains(conn) || !end.open.contains_key(conn) {
                continue;
            }
            if let Some(k) = l.missing() {
                return Err(Failure::new(
                    NAME,
                    l.missing_message(*conn, k, "by the end of the run"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::checker::test_fixtures::{
        client_closed, closed, entry, finish_quiescent as end, message, opened, user,
    };
    use crate::checker::{Tagged, message_id};
    use gauntlet_core::protocol::ClientFrame;

    fn log(c: &mut KeepaliveChecker, entries: &[LogEntry]) {
        c.observe(&Obs::Log(entries))
            .unwrap_or_else(|_| unreachable!());
    }

    fn ask(c: &mut KeepaliveChecker, conn: u64, reply: &'static str, limited: bool) {
        c.observe(&Obs::Keepalive {
            conn: ConnId::new(conn),
            reply,
            limited,
        })
        .unwrap_or_else(|_| unreachable!());
    }

    fn frame(c: &mut KeepaliveChecker, conn: u64, text: &str) -> Result<(), Failure> {
        let frame: Arc<str> = Arc::from(text);
        let user = user("alice");
        c.observe(&Obs::Frame {
            conn: ConnId::new(conn),
            session_user: &user,
            frame: &frame,
            json: &FrameView::parse(&frame),
        })
    }

    const PONG: &str = r#"{"type":"pong"}"#;
    const ACK: &str = r#"{"type":"heartbeat_ack","message_id":"hb.1.3."}"#;

    #[test]
    fn keepalives_are_read_from_the_frames_the_clients_send() {
        let conn = ConnId::new(7);
        let ping = ClientFrame::Ping.to_json(None);
        let heartbeat =
            ClientFrame::Heartbeat.to_json(Some(&message_id(Tagged::Heartbeat, conn, 3)));
        let overlong = ClientFrame::Ping.to_json(Some(&message_id(Tagged::Overlong, conn, 3)));
        let resume = ClientFrame::Resume {
            last_seq: gauntlet_core::Seq::new(4),
        }
        .to_json(None);
        assert_eq!(keepalive_reply(&ping), Some("pong"));
        assert_eq!(keepalive_reply(&heartbeat), Some("heartbeat_ack"));
        assert_eq!(keepalive_reply(&overlong), None);
        assert_eq!(keepalive_reply(&resume), None);
        assert_eq!(keepalive_reply("{\"type\":\"ping\""), None);
    }

    #[test]
    fn answered_keepalives_pass_and_a_missing_reply_fails_at_the_end() {
        let mut c = KeepaliveChecker::default();
        log(&mut c, &[opened(1, "alice"), opened(2, "alice")]);
        ask(&mut c, 1, "pong", false);
        ask(&mut c, 1, "heartbeat_ack", false);
        ask(&mut c, 2, "pong", false);
        ask(&mut c, 2, "pong", false);
        assert_eq!(frame(&mut c, 1, PONG), Ok(()));
        assert_eq!(frame(&mut c, 1, ACK), Ok(()));
        assert_eq!(frame(&mut c, 2, PONG), Ok(()));
        // A stream frame with a seq is no reply.
        assert_eq!(frame(&mut c, 2, r#"{"type":"pong","seq":4}"#), Ok(()));
        assert_eq!(end(&mut c, &[1]), Ok(()));
        assert_eq!(
            message(end(&mut c, &[1, 2])),
            "conn-2: 2 ping requests reached the open session but 1 pong replies came back by the end of the run"
        );
    }

    #[test]
    fn a_reply_of_the_wrong_kind_or_one_too_many_fails_at_once() {
        let mut c = KeepaliveChecker::default();
        log(&mut c, &[opened(1, "alice")]);
        ask(&mut c, 1, "pong", false);
        assert_eq!(
            message(frame(&mut c, 1, ACK)),
            "conn-1: 1 heartbeat_ack replies came back for 0 heartbeat requests that reached the open session"
        );
        let mut c = KeepaliveChecker::default();
        log(&mut c, &[opened(1, "alice")]);
        ask(&mut c, 1, "pong", false);
        assert_eq!(frame(&mut c, 1, PONG), Ok(()));
        assert_eq!(
            message(frame(&mut c, 1, PONG)),
            "conn-1: 2 pong replies came back for 1 ping requests that reached the open session"
        );
    }

    #[test]
    fn refused_and_closed_requests_are_owed_nothing() {
        let mut c = KeepaliveChecker::default();
        log(&mut c, &[opened(1, "alice")]);
        // Over the rate: answered `RATE_LIMITED` instead.
        ask(&mut c, 1, "pong", true);
        // Its reply overflowed the send queue: closed as a slow consumer in the same call.
        log(
            &mut c,
            &[opened(2, "alice"), closed(2, CloseReason::SlowConsumer)],
        );
        ask(&mut c, 2, "pong", false);
        assert_eq!(end(&mut c, &[1, 2]), Ok(()));
        assert_eq!(
            message(frame(&mut c, 1, PONG)),
            "conn-1: 1 pong replies came back for 0 ping requests that reached the open session"
        );
    }

    #[test]
    fn a_close_frame_after_an_unanswered_request_fails_unless_the_consumer_was_slow() {
        let mut c = KeepaliveChecker::default();
        log(
            &mut c,
            &[opened(1, "alice"), opened(2, "alice"), opened(3, "alice")],
        );
        for conn in 1..=3 {
            ask(&mut c, conn, "heartbeat_ack", false);
        }
        log(
            &mut c,
            &[
                closed(1, CloseReason::Shutdown),
                closed(2, CloseReason::SlowConsumer),
                closed(3, CloseReason::TokenExpired),
            ],
        );
        assert_eq!(
            message(client_closed(&mut c, 1, Some(1001))),
            "conn-1: 1 heartbeat requests reached the open session but 0 heartbeat_ack replies came back before its close frame"
        );
        assert_eq!(client_closed(&mut c, 2, Some(1013)), Ok(()));
        // The transport broke: the reply may be lost with it.
        assert_eq!(client_closed(&mut c, 3, None), Ok(()));
    }

    #[test]
    fn corrupted_and_peer_closed_connections_are_not_judged() {
        let mut c = KeepaliveChecker::default();
        log(&mut c, &[opened(1, "alice"), opened(2, "alice")]);
        c.observe(&Obs::RequestCorrupted {
            conn: ConnId::new(1),
        })
        .unwrap_or_else(|_| unreachable!());
        ask(&mut c, 1, "pong", false);
        assert_eq!(frame(&mut c, 1, PONG), Ok(()));
        assert_eq!(frame(&mut c, 1, PONG), Ok(()));
        ask(&mut c, 2, "pong", false);
        log(&mut c, &[closed(2, CloseReason::PeerClosed)]);
        assert_eq!(end(&mut c, &[1, 2]), Ok(()));
        // After a restart no session of before is open: not judged at the end.
        log(&mut c, &[opened(3, "alice")]);
        ask(&mut c, 3, "pong", false);
        log(&mut c, &[entry(Event::Restarted)]);
        assert_eq!(end(&mut c, &[3]), Ok(()));
    }
}
