//! Envelopes: what a client puts beside a frame's payload never changes whose it is, and
//! direct replies echo the request's `message_id` to the connection that sent it.
//!
//! The world's [`crate::scenario::Op::EnvelopeAbuse`] names each `message_id` after its
//! request ([`message_id`]: the request's tag, the connection, a counter), so a reply's echo
//! can be judged alone: it must name the connection it arrived on and a request of the
//! reply's kind, and never be longer than the protocol echoes (`MSG-ENVELOPE`). A message
//! whose envelope and payload name another user as `user_id` starts its run for the sender
//! (`MSG-USER-ID-IGNORED`), and a `broadcast` from a user without `system:broadcast` never
//! reaches a stream (`MSG-BROADCAST-PERM`).
//!
//! A connection whose requests the network corrupted is not judged: a flipped bit may have
//! changed the id it carried. This checker only reads observations; it never feeds anything
//! back into the world.

use std::collections::{BTreeMap, BTreeSet};

use gauntlet_core::{ConnId, Event, RunId, StreamKind, UserId};

use super::{Checker, Failure, Obs};

const NAME: &str = "envelope";

/// The task of a `user_message` whose envelope and payload name another user; the sender's
/// own id follows it.
pub(crate) const IMPERSONATION_TASK: &str = "impersonation by ";

/// The text of a `broadcast` sent by a user without `system:broadcast`: it must never be
/// appended to any stream.
pub(crate) const UNPRIVILEGED_NOTICE: &str = "unprivileged notice";

/// The longest `message_id` a direct reply may echo (`MSG-ENVELOPE`).
pub(super) const MAX_ECHO: usize = 128;

/// Most impersonating runs remembered until their `message_accepted` arrives; the oldest is
/// forgotten first (a lost reply never comes).
const MAX_PENDING_RUNS: usize = 4096;

/// What a request carrying a `message_id` was, and so which reply may echo it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tagged {
    Ping,
    Heartbeat,
    /// A `user_message` whose envelope names another user.
    Impersonation,
    /// A `ping` whose `message_id` is one byte over the bound: it must be refused.
    Overlong,
}

impl Tagged {
    fn tag(self) -> &'static str {
        match self {
            Tagged::Ping => "ping",
            Tagged::Heartbeat => "hb",
            Tagged::Impersonation => "uid",
            Tagged::Overlong => "long",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        Some(match tag {
            "ping" => Tagged::Ping,
            "hb" => Tagged::Heartbeat,
            "uid" => Tagged::Impersonation,
            "long" => Tagged::Overlong,
            _ => return None,
        })
    }

    /// The direct reply that echoes this request's id.
    fn reply(self) -> Option<&'static str> {
        match self {
            Tagged::Ping => Some("pong"),
            Tagged::Heartbeat => Some("heartbeat_ack"),
            Tagged::Impersonation => Some("message_accepted"),
            Tagged::Overlong => None,
        }
    }
}

/// The `message_id` of request number `n` of kind `what` on `conn`: `<tag>.<conn>.<n>`, an
/// over-long one padded with `x` to one byte past the bound.
pub(crate) fn message_id(what: Tagged, conn: ConnId, n: u64) -> String {
    let mut id = format!("{}.{}.{n}.", what.tag(), conn.get());
    if what == Tagged::Overlong {
        let pad = (MAX_ECHO + 1).saturating_sub(id.len());
        id.extend(std::iter::repeat_n('x', pad));
    }
    id
}

/// The request kind and connection an id names, if it is one of [`message_id`]'s.
fn parse_id(id: &str) -> Option<(Tagged, u64)> {
    let mut parts = id.split('.');
    let what = Tagged::from_tag(parts.next()?)?;
    let conn = parts.next()?.parse().ok()?;
    Some((what, conn))
}

#[derive(Default)]
pub(crate) struct EnvelopeChecker {
    /// Connections with a request the network corrupted: their echoes are not judged.
    corrupted: BTreeSet<ConnId>,
    /// Runs started by an impersonating message, with the owner the log gave them, until
    /// their `message_accepted` names them.
    impersonations: BTreeMap<RunId, UserId>,
}

impl EnvelopeChecker {
    fn on_log(&mut self, entries: &[gauntlet_core::LogEntry]) -> Result<(), Failure> {
        for e in entries {
            match &e.event {
                Event::RunStarted {
                    run, owner, task, ..
                } if task.starts_with(IMPERSONATION_TASK) => {
                    if self.impersonations.len() >= MAX_PENDING_RUNS {
                        self.impersonations.pop_first();
                    }
                    self.impersonations.insert(*run, owner.clone());
                }
                Event::StreamBroadcast { entry }
                    if entry.kind() == StreamKind::SystemNotice
                        && entry.payload_json().contains(UNPRIVILEGED_NOTICE) =>
                {
                    return Err(Failure::new(
                        NAME,
                        "a broadcast from a user without system:broadcast reached the streams",
                    ));
                }
                Event::SessionClosed { conn, .. } => {
                    self.corrupted.remove(conn);
                }
                Event::Restarted => self.corrupted.clear(),
                _ => {}
            }
        }
        Ok(())
    }

    fn on_reply(
        &mut self,
        conn: ConnId,
        session_user: &UserId,
        kind: &str,
        id: &str,
        run: Option<&str>,
    ) -> Result<(), Failure> {
        if self.corrupted.contains(&conn) {
            return Ok(());
        }
        let fail = |m: String| Err(Failure::new(NAME, format!("{conn}: {kind} {m}")));
        if id.len() > MAX_ECHO {
            return fail(format!("echoed a message_id of {} bytes", id.len()));
        }
        let Some((what, on)) = parse_id(id) else {
            return fail(format!("echoed {id:?}, which no request carried"));
        };
        if on != conn.get() {
            return fail(format!("echoed {id:?}, sent on another connection"));
        }
        if let Some(reply) = what.reply()
            && reply != kind
        {
            return fail(format!(
                "echoed {id:?}, the id of a request answered by {reply}"
            ));
        }
        if what == Tagged::Impersonation
            && let Some(run) = run.and_then(RunId::parse)
            && let Some(owner) = self.impersonations.remove(&run)
            && owner != *session_user
        {
            return fail(format!(
                "started {run} for {owner}, named in the envelope, not for its sender"
            ));
        }
        Ok(())
    }
}

impl Checker for EnvelopeChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Log(entries) => self.on_log(entries),
            Obs::RequestCorrupted { conn } => {
                self.corrupted.insert(*conn);
                Ok(())
            }
            Obs::Frame {
                conn,
                session_user,
                json,
                ..
            } if json.seq().is_none() => match json.message_id() {
                Some(id) => self.on_reply(*conn, session_user, json.kind(), id, json.run_id()),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gauntlet_core::{Instant, LogEntry, LogSeq};

    use super::*;
    use crate::frame_view::FrameView;

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap_or_else(|| unreachable!("a valid user id"))
    }

    fn reply(c: &mut EnvelopeChecker, conn: u64, to: &str, text: &str) -> Result<(), Failure> {
        let frame: Arc<str> = Arc::from(text);
        c.observe(&Obs::Frame {
            conn: ConnId::new(conn),
            session_user: &user(to),
            frame: &frame,
            json: &FrameView::parse(&frame),
        })
    }

    fn log(c: &mut EnvelopeChecker, event: Event) -> Result<(), Failure> {
        c.observe(&Obs::Log(&[LogEntry {
            seq: LogSeq::new(1),
            at: Instant::from_unix_secs(1),
            event,
        }]))
    }

    #[test]
    fn message_ids_name_their_request_and_the_overlong_one_is_one_byte_over() {
        let id = message_id(Tagged::Ping, ConnId::new(7), 3);
        assert_eq!(id, "ping.7.3.");
        assert_eq!(parse_id(&id), Some((Tagged::Ping, 7)));
        let long = message_id(Tagged::Overlong, ConnId::new(7), 3);
        assert_eq!(long.len(), MAX_ECHO + 1);
        assert_eq!(parse_id(&long), Some((Tagged::Overlong, 7)));
    }

    #[test]
    fn an_echo_must_name_its_connection_and_a_request_of_the_reply_kind() {
        let mut c = EnvelopeChecker::default();
        let ping = message_id(Tagged::Ping, ConnId::new(7), 1);
        let pong = |id: &str| format!(r#"{{"message_id":"{id}","type":"pong"}}"#);
        assert!(reply(&mut c, 7, "u1", &pong(&ping)).is_ok());
        // Another connection's id, a heartbeat's id on a pong, an id nobody sent.
        assert!(reply(&mut c, 8, "u1", &pong(&ping)).is_err());
        let hb = message_id(Tagged::Heartbeat, ConnId::new(7), 2);
        assert!(reply(&mut c, 7, "u1", &pong(&hb)).is_err());
        assert!(reply(&mut c, 7, "u1", &pong("forged")).is_err());
        // The over-long id must never be echoed, on any reply.
        let long = message_id(Tagged::Overlong, ConnId::new(7), 3);
        assert!(reply(&mut c, 7, "u1", &pong(&long)).is_err());
        // A connection whose requests were corrupted is not judged.
        let _ = c.observe(&Obs::RequestCorrupted {
            conn: ConnId::new(8),
        });
        assert!(reply(&mut c, 8, "u1", &pong("forged")).is_ok());
    }

    #[test]
    fn an_impersonating_message_must_start_its_run_for_the_sender() {
        let run = |owner: &str, n: u64| Event::RunStarted {
            run: RunId::new(n),
            owner: user(owner),
            thread: gauntlet_core::ThreadId::parse("t").unwrap_or_else(|| unreachable!()),
            task: format!("{IMPERSONATION_TASK}u1"),
        };
        let accepted = |n: u64| {
            let id = message_id(Tagged::Impersonation, ConnId::new(7), n);
            format!(
                r#"{{"message_id":"{id}","run_id":"{}","thread_id":"t","type":"message_accepted"}}"#,
                RunId::new(n)
            )
        };
        let mut c = EnvelopeChecker::default();
        assert!(log(&mut c, run("u1", 1)).is_ok());
        assert!(reply(&mut c, 7, "u1", &accepted(1)).is_ok());
        assert!(log(&mut c, run("u2", 2)).is_ok());
        let err = reply(&mut c, 7, "u1", &accepted(2));
        assert!(
            err.as_ref()
                .is_err_and(|f| f.message.contains("for u2, named in the envelope")),
            "{err:?}"
        );
    }

    #[test]
    fn an_unprivileged_broadcast_in_the_log_fails() {
        let notice = |text: &str| Event::StreamBroadcast {
            entry: Arc::new(gauntlet_core::StreamEntry::new(
                Instant::from_unix_secs(1),
                StreamKind::SystemNotice,
                None,
                None,
                serde_json::from_str(&format!(r#"{{"text":"{text}"}}"#))
                    .unwrap_or_else(|e| unreachable!("a payload object: {e}")),
            )),
        };
        let mut c = EnvelopeChecker::default();
        assert!(log(&mut c, notice("maintenance at noon")).is_ok());
        assert!(log(&mut c, notice(UNPRIVILEGED_NOTICE)).is_err());
    }
}
