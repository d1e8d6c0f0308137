//! Thread ownership: a connection is only ever told it subscribed to, or posted into, a
//! thread its own user owns (`MSG-THREAD-OWNER`). A `subscribed` or `message_accepted` reply
//! carries no `user_id`, so the isolation checker cannot see one that names another user's
//! thread; this checker learns each thread's owner from the log (`thread_created`) and
//! judges every such reply against the user of the session that received it.

use std::collections::BTreeMap;

use gauntlet_core::{Event, ThreadId, UserId};

use super::{Checker, Failure, Obs};
use crate::id_map::UserMap;

/// Threads are never deleted, so the table is bounded by the threads the gateway holds
/// (`limits.max_threads_per_user` per user).
#[derive(Default)]
pub(crate) struct ThreadOwnerChecker {
    /// Each thread's owner, as its place in `users`: a 10 000-user run creates threads by the
    /// hundred thousand, and a second id beside each cost 24 bytes of tree slot where this
    /// costs 4.
    owners: BTreeMap<ThreadId, u32>,
    /// Every owner, once, in the order first seen.
    users: Vec<UserId>,
    /// Each owner's place in `users` (lookup-only).
    places: UserMap<u32>,
}

const NAME: &str = "thread_owner";

impl ThreadOwnerChecker {
    /// `owner`'s place in `users`, given one at first sight.
    fn place(&mut self, owner: &UserId) -> Result<u32, Failure> {
        if let Some(k) = self.places.get(owner) {
            return Ok(*k);
        }
        let k = u32::try_from(self.users.len())
            .map_err(|_| Failure::new(NAME, "more thread owners than a u32 counts"))?;
        self.users.push(owner.clone());
        self.places.insert(owner.clone(), k);
        Ok(k)
    }
}

impl Checker for ThreadOwnerChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Log(entries) => {
                for e in *entries {
                    if let Event::ThreadCreated { thread, owner } = &e.event {
                        let k = self.place(owner)?;
                        self.owners.insert(thread.clone(), k);
                    }
                }
                Ok(())
            }
            Obs::Frame {
                conn,
                session_user,
                json,
                ..
            } => {
                let kind = json.kind();
                if kind != "subscribed" && kind != "message_accepted" {
                    return Ok(());
                }
                let Some(thread) = json.thread_id() else {
                    return Err(Failure::new(
                        NAME,
                        format!("{conn} of {session_user} got {kind} naming no thread"),
                    ));
                };
                // The log reaches the checkers before any reply it caused reaches a client,
                // so a thread the gateway answers for is known here.
                let owner = ThreadId::parse(thread)
                    .and_then(|t| self.owners.get(&t))
                    .and_then(|k| self.users.get(*k as usize));
                match owner {
                    Some(owner) if owner == *session_user => Ok(()),
                    Some(owner) => Err(Failure::new(
                        NAME,
                        format!("{conn} of {session_user} got {kind} for {thread} of user {owner}"),
                    )),
                    None => Err(Failure::new(
                        NAME,
                        format!("{conn} of {session_user} got {kind} for unknown thread {thread}"),
                    )),
                }
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gauntlet_core::{ConnId, Instant, LogEntry, LogSeq};

    use super::*;
    use crate::frame_view::FrameView;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn created(thread: &str, owner: &str) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(1),
            at: Instant::from_unix_secs(1),
            event: Event::ThreadCreated {
                thread: ThreadId::parse(thread).unwrap(),
                owner: user(owner),
            },
        }
    }

    fn reply(c: &mut ThreadOwnerChecker, to: &str, text: &str) -> Result<(), Failure> {
        let frame: Arc<str> = Arc::from(text);
        c.observe(&Obs::Frame {
            conn: ConnId::new(4),
            session_user: &user(to),
            frame: &frame,
            json: &FrameView::parse(&frame),
        })
    }

    #[test]
    fn subscribed_to_another_users_thread_fails_and_own_passes() {
        let mut c = ThreadOwnerChecker::default();
        c.observe(&Obs::Log(&[created("u1-t1", "u1"), created("u2-t1", "u2")]))
            .unwrap();
        assert_eq!(
            reply(&mut c, "u1", r#"{"type":"subscribed","thread_id":"u1-t1"}"#),
            Ok(())
        );
        assert_eq!(
            reply(&mut c, "u1", r#"{"type":"subscribed","thread_id":"u2-t1"}"#),
            Err(Failure::new(
                NAME,
                "conn-4 of u1 got subscribed for u2-t1 of user u2"
            ))
        );
    }

    #[test]
    fn message_accepted_for_unknown_or_foreign_thread_fails() {
        let mut c = ThreadOwnerChecker::default();
        c.observe(&Obs::Log(&[created("u2-t1", "u2")])).unwrap();
        let accepted = r#"{"type":"message_accepted","thread_id":"u2-t1","run_id":"run-1"}"#;
        assert_eq!(
            reply(&mut c, "u1", accepted),
            Err(Failure::new(
                NAME,
                "conn-4 of u1 got message_accepted for u2-t1 of user u2"
            ))
        );
        assert_eq!(reply(&mut c, "u2", accepted), Ok(()));
        assert_eq!(
            reply(&mut c, "u2", r#"{"type":"subscribed","thread_id":"t-9"}"#),
            Err(Failure::new(
                NAME,
                "conn-4 of u2 got subscribed for unknown thread t-9"
            ))
        );
        assert_eq!(reply(&mut c, "u2", r#"{"type":"pong"}"#), Ok(()));
    }
}
