//! The gateway's durable state and the fold that builds it from the event log.
//!
//! `State::apply` is the only code that mutates durable state: the live gateway applies each
//! event it emits, and replay applies each event it reads, so the two cannot diverge. Apply
//! checks every event against the state (a corrupt or hostile log is an error, never a panic
//! or a silent gap). Soft state (rate buckets, caches, queue depths, timers) lives in the
//! gateway, not here, and is rebuilt empty after a restart, as in a real process.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::iter::Peekable;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeStruct;
use sha2::{Digest, Sha256};

use crate::agent::{self, AgentRun, AgentStep, PlanWire};
use crate::config::Config;
use crate::conn_set::ConnSet;
use crate::ids::{ConnId, Jti, LogSeq, RunId, Seq, ThreadId, UserId};
use crate::log::{CredentialKind, Event, Identity, LogEntry};
use crate::outbox::{Outbox, StreamEntry};
use crate::plant::{Plants, planted};
use crate::protocol::StreamKind;
use crate::time::Instant;

/// Why a log could not be folded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// A line is not a log entry.
    #[error("line {line}: not a log entry: {reason}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The decoder's message.
        reason: String,
    },
    /// Log sequence numbers must start at 1 and have no gap.
    #[error("log seq {found} out of order, expected {expected}")]
    OutOfOrder {
        /// The next seq the fold expected.
        expected: LogSeq,
        /// The seq it read.
        found: LogSeq,
    },
    /// Entry times must not go backwards.
    #[error("log time went backwards at {seq}")]
    TimeWentBackwards {
        /// The entry.
        seq: LogSeq,
    },
    /// An event names a connection that is not open (or opens one twice).
    #[error("{seq}: connection {conn} is not in the expected state")]
    Connection {
        /// The entry.
        seq: LogSeq,
        /// The connection.
        conn: ConnId,
    },
    /// An event names a thread that does not exist, or creates one twice, or is not its owner's.
    #[error("{seq}: thread {thread} is not in the expected state")]
    Thread {
        /// The entry.
        seq: LogSeq,
        /// The thread.
        thread: ThreadId,
    },
    /// A run event that is not the run's next planned step, or for an unknown run.
    #[error("{seq}: run event does not follow the plan of {run}")]
    Run {
        /// The entry.
        seq: LogSeq,
        /// The run.
        run: RunId,
    },
    /// A stream event whose seq is not the user's next.
    #[error("{seq}: stream seq {found} for {user}, expected {expected}")]
    StreamSeq {
        /// The entry.
        seq: LogSeq,
        /// The user.
        user: UserId,
        /// The user's next seq.
        expected: Seq,
        /// What the event carried.
        found: Seq,
    },
    /// A ticket consumed that was never issued, or issued twice.
    #[error("{seq}: ticket not in the expected state")]
    Ticket {
        /// The entry.
        seq: LogSeq,
    },
    /// The log recorded a state hash and the fold produced another.
    #[error("state hash mismatch: log says {recorded}, replay gives {replayed}")]
    HashMismatch {
        /// From the log.
        recorded: String,
        /// From the fold.
        replayed: String,
    },
}

/// The durable part of an open session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct SessionRecord {
    pub(crate) identity: Identity,
    pub(crate) via: CredentialKind,
    pub(crate) peer: IpAddr,
    pub(crate) subscriptions: BTreeSet<ThreadId>,
    /// The first seq delivered live on this connection (the user's latest + 1 at open).
    pub(crate) live_from: Seq,
}

/// An agent run in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunRecord {
    pub(crate) owner: UserId,
    /// The run's id, thread and task, shared with every entry the run appends.
    pub(crate) info: Arc<AgentRun>,
    pub(crate) plan: Vec<AgentStep>,
    pub(crate) next_step: usize,
    pub(crate) next_at: Instant,
}

impl Serialize for RunRecord {
    /// The fields the state hash has always had: the thread beside the owner, the task in the
    /// plan (see [`PlanWire`]).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("RunRecord", 5)?;
        s.serialize_field("owner", &self.owner)?;
        s.serialize_field("thread", self.info.thread())?;
        s.serialize_field(
            "plan",
            &PlanWire {
                run: &self.info,
                steps: &self.plan,
            },
        )?;
        s.serialize_field("next_step", &self.next_step)?;
        s.serialize_field("next_at", &self.next_at)?;
        s.end()
    }
}

/// An unredeemed ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct TicketRecord {
    pub(crate) identity: Identity,
    pub(crate) expires: Instant,
}

/// Everything that must survive a crash, as a fold of the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct State {
    pub(crate) last_seq: LogSeq,
    pub(crate) last_at: Instant,
    pub(crate) feed_as_of: Option<Instant>,
    pub(crate) sessions: BTreeMap<ConnId, SessionRecord>,
    /// Slots held in the per-user connection cap.
    pub(crate) cap_slots: BTreeMap<UserId, usize>,
    pub(crate) threads: BTreeMap<ThreadId, UserId>,
    pub(crate) threads_per_user: BTreeMap<UserId, usize>,
    pub(crate) runs: BTreeMap<RunId, RunRecord>,
    pub(crate) runs_per_user: BTreeMap<UserId, usize>,
    pub(crate) next_run: RunId,
    /// Hashed after the rest by [`State::hash`], payloads as raw bytes.
    #[serde(skip)]
    pub(crate) outboxes: BTreeMap<UserId, Outbox>,
    pub(crate) tickets: BTreeMap<String, TicketRecord>,
    pub(crate) tickets_issued: u64,
    /// Index: each user's unredeemed tickets by digest (derived from `tickets`), so the
    /// per-user ticket bound never scans the whole store.
    #[serde(skip)]
    pub(crate) tickets_by_user: BTreeMap<UserId, BTreeSet<String>>,
    /// Index: a user's open connections (derived from `sessions`).
    #[serde(skip)]
    pub(crate) by_user: BTreeMap<UserId, ConnSet>,
    /// Index: the open connections authenticated by each token (derived from `sessions`),
    /// so a revoked `jti` finds its sessions without a scan.
    #[serde(skip)]
    pub(crate) by_jti: BTreeMap<Jti, ConnSet>,
    /// Events held across all outboxes (derived, so stats never scan the outboxes).
    #[serde(skip)]
    pub(crate) outbox_events: usize,
    /// The longest any outbox has been after an append (derived; a high-water mark).
    #[serde(skip)]
    pub(crate) peak_outbox_len: usize,
}

fn bump(map: &mut BTreeMap<UserId, usize>, user: &UserId) {
    *map.entry(user.clone()).or_default() += 1;
}

fn drop_one(map: &mut BTreeMap<UserId, usize>, user: &UserId) {
    // Callers only drop what they counted, so the user is always there; written without an
    // `else` for that case so no branch stands for it.
    let emptied = map.get_mut(user).is_some_and(|n| {
        *n = n.saturating_sub(1);
        *n == 0
    });
    if emptied {
        map.remove(user);
    }
}

impl State {
    /// The user's latest stream seq.
    pub(crate) fn latest_seq(&self, user: &UserId) -> Seq {
        self.outboxes
            .get(user)
            .map_or(Seq::default(), Outbox::latest)
    }

    /// SHA-256 over a canonical encoding of the durable state (every map is ordered): the
    /// compact JSON of everything but the outboxes, then each outbox in user order as its
    /// user's JSON followed by [`Outbox::hash_into`].
    pub(crate) fn hash(&self) -> String {
        // Streamed into the digest (the state of a large world renders to hundreds of MB)
        // through a buffer: serde_json writes in pieces of a few bytes.
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, DigestWriter(Sha256::new()));
        let _ = serde_json::to_writer(&mut w, self);
        let _ = w.write_all(&(self.outboxes.len() as u64).to_le_bytes());
        for (user, outbox) in &self.outboxes {
            let _ = serde_json::to_writer(&mut w, user);
            let _ = outbox.hash_into(&mut w);
        }
        let (mut digest, unwritten) = w.into_parts();
        if let Ok(rest) = unwritten {
            digest.0.update(&rest);
        }
        hex(&digest.0.finalize())
    }

    /// Folds one entry in. On error the state is unchanged.
    pub(crate) fn apply(
        &mut self,
        entry: &LogEntry,
        config: &Config,
        plants: Plants,
    ) -> Result<(), ReplayError> {
        let seq = entry.seq;
        if seq != self.last_seq.next() {
            return Err(ReplayError::OutOfOrder {
                expected: self.last_seq.next(),
                found: seq,
            });
        }
        if entry.at < self.last_at {
            return Err(ReplayError::TimeWentBackwards { seq });
        }
        self.apply_event(seq, entry.at, &entry.event, config, plants)?;
        self.last_seq = seq;
        self.last_at = entry.at;
        Ok(())
    }

    fn apply_event(
        &mut self,
        seq: LogSeq,
        at: Instant,
        event: &Event,
        config: &Config,
        plants: Plants,
    ) -> Result<(), ReplayError> {
        match event {
            Event::FeedSynced { as_of, .. } => {
                self.feed_as_of = Some(self.feed_as_of.map_or(*as_of, |old| old.max(*as_of)));
            }
            Event::SessionOpened {
                conn,
                identity,
                via,
                peer,
            } => {
                if self.sessions.contains_key(conn) {
                    return Err(ReplayError::Connection { seq, conn: *conn });
                }
                let live_from = self.latest_seq(&identity.user).next();
                bump(&mut self.cap_slots, &identity.user);
                self.by_user
                    .entry(identity.user.clone())
                    .or_default()
                    .insert(*conn);
                self.by_jti
                    .entry(identity.jti.clone())
                    .or_default()
                    .insert(*conn);
                self.sessions.insert(
                    *conn,
                    SessionRecord {
                        identity: identity.clone(),
                        via: *via,
                        peer: *peer,
                        subscriptions: BTreeSet::new(),
                        live_from,
                    },
                );
            }
            Event::SessionReauthed { conn, identity } => {
                let s = self
                    .sessions
                    .get_mut(conn)
                    .ok_or(ReplayError::Connection { seq, conn: *conn })?;
                let rebound = s.identity.user != identity.user;
                if rebound && !planted!(plants, ReauthAnyUser) {
                    return Err(ReplayError::Connection { seq, conn: *conn });
                }
                let old = std::mem::replace(&mut s.identity, identity.clone());
                if rebound {
                    // The planted rebind: the connection now counts and routes as the
                    // token's user.
                    drop_one(&mut self.cap_slots, &old.user);
                    bump(&mut self.cap_slots, &identity.user);
                    unindex(&mut self.by_user, &old.user, *conn);
                    self.by_user
                        .entry(identity.user.clone())
                        .or_default()
                        .insert(*conn);
                }
                unindex(&mut self.by_jti, &old.jti, *conn);
                self.by_jti
                    .entry(identity.jti.clone())
                    .or_default()
                    .insert(*conn);
            }
            Event::SessionClosed { conn, .. } => {
                let s = self
                    .sessions
                    .remove(conn)
                    .ok_or(ReplayError::Connection { seq, conn: *conn })?;
                self.forget_conn(*conn, &s.identity, plants);
            }
            Event::Subscribed { conn, thread } => {
                if !self.threads.contains_key(thread) {
                    return Err(ReplayError::Thread {
                        seq,
                        thread: thread.clone(),
                    });
                }
                let s = self
                    .sessions
                    .get_mut(conn)
                    .ok_or(ReplayError::Connection { seq, conn: *conn })?;
                s.subscriptions.insert(thread.clone());
            }
            Event::ThreadCreated { thread, owner } => {
                if self.threads.contains_key(thread) {
                    return Err(ReplayError::Thread {
                        seq,
                        thread: thread.clone(),
                    });
                }
                self.threads.insert(thread.clone(), owner.clone());
                bump(&mut self.threads_per_user, owner);
            }
            Event::RunStarted {
                run,
                owner,
                thread,
                task,
            } => {
                if self.threads.get(thread) != Some(owner) {
                    return Err(ReplayError::Thread {
                        seq,
                        thread: thread.clone(),
                    });
                }
                if *run != self.next_run.next() {
                    return Err(ReplayError::Run { seq, run: *run });
                }
                self.next_run = *run;
                bump(&mut self.runs_per_user, owner);
                self.runs.insert(
                    *run,
                    RunRecord {
                        owner: owner.clone(),
                        info: Arc::new(AgentRun::new(*run, thread.clone(), task)),
                        plan: agent::plan(&config.agent, config.seed, *run),
                        next_step: 0,
                        next_at: at,
                    },
                );
            }
            Event::StreamAppended {
                user,
                seq: stream_seq,
                entry,
            } => {
                // Every check before any change, so a rejected entry leaves the state as it
                // was (a user's first event must not leave an empty outbox behind either).
                let mut fresh = None;
                let outbox = match self.outboxes.get_mut(user) {
                    Some(o) => o,
                    None => fresh.insert(Outbox::default()),
                };
                let expected = outbox.next_seq();
                if *stream_seq != expected {
                    return Err(ReplayError::StreamSeq {
                        seq,
                        user: user.clone(),
                        expected,
                        found: *stream_seq,
                    });
                }
                if let Some(run) = entry.run() {
                    advance_run(
                        &mut self.runs,
                        &mut self.runs_per_user,
                        (seq, at),
                        run,
                        user,
                        entry.kind(),
                    )?;
                }
                let mut sizes = OutboxSizes {
                    events: &mut self.outbox_events,
                    peak: &mut self.peak_outbox_len,
                };
                sizes.append(outbox, *stream_seq, entry, at, config);
                if let Some(o) = fresh {
                    self.outboxes.insert(user.clone(), o);
                }
            }
            Event::StreamBroadcast { entry } => {
                // A broadcast is a notice, never a run's step: a log that says otherwise is
                // corrupt (checked before any change).
                if let Some(run) = entry.run() {
                    return Err(ReplayError::Run { seq, run });
                }
                self.append_to_every_user(entry, at, config);
            }
            Event::TicketIssued {
                digest,
                identity,
                expires,
            } => {
                if self.tickets.contains_key(digest) {
                    return Err(ReplayError::Ticket { seq });
                }
                self.tickets_issued += 1;
                self.tickets_by_user
                    .entry(identity.user.clone())
                    .or_default()
                    .insert(digest.clone());
                self.tickets.insert(
                    digest.clone(),
                    TicketRecord {
                        identity: identity.clone(),
                        expires: *expires,
                    },
                );
            }
            Event::TicketConsumed { digest } => {
                let record = self
                    .tickets
                    .remove(digest)
                    .ok_or(ReplayError::Ticket { seq })?;
                let user = &record.identity.user;
                // `tickets_by_user` is derived from `tickets`, so the user is always there.
                let emptied = self.tickets_by_user.get_mut(user).is_some_and(|held| {
                    held.remove(digest);
                    held.is_empty()
                });
                if emptied {
                    self.tickets_by_user.remove(user);
                }
            }
            Event::Restarted => {
                for (conn, s) in std::mem::take(&mut self.sessions) {
                    self.forget_conn(conn, &s.identity, plants);
                }
            }
        }
        Ok(())
    }

    /// Appends `entry` to the stream of every user with an open session, each copy at that
    /// user's own next seq. Cannot fail: every copy's seq is the user's next by construction.
    fn append_to_every_user(&mut self, entry: &Arc<StreamEntry>, at: Instant, config: &Config) {
        let mut sizes = OutboxSizes {
            events: &mut self.outbox_events,
            peak: &mut self.peak_outbox_len,
        };
        // Connected users and outboxes are both ordered by user, so one walk of the two finds
        // each copy's outbox: a B-tree search per user would be most of a large broadcast's
        // fold. Users with no outbox yet get theirs after the walk (it borrows the map).
        let mut fresh = Vec::new();
        let mut outboxes = self.outboxes.iter_mut().peekable();
        for user in self.by_user.keys() {
            match entry_of(&mut outboxes, user) {
                Some(outbox) => {
                    let next = outbox.next_seq();
                    sizes.append(outbox, next, entry, at, config);
                }
                None => fresh.push(user.clone()),
            }
        }
        for user in fresh {
            let mut outbox = Outbox::default();
            let next = outbox.next_seq();
            sizes.append(&mut outbox, next, entry, at, config);
            self.outboxes.insert(user, outbox);
        }
    }

    fn forget_conn(&mut self, conn: ConnId, identity: &Identity, plants: Plants) {
        if !planted!(plants, CapNotReleased) {
            drop_one(&mut self.cap_slots, &identity.user);
        }
        unindex(&mut self.by_user, &identity.user, conn);
        unindex(&mut self.by_jti, &identity.jti, conn);
    }
}

/// Takes from `entries` (ordered by user) the entry of `user`, passing over those of users
/// before it; later users' entries stay for the next call. Asking for users in order walks the
/// map once, where a search per user costs a B-tree descent each.
pub(crate) fn entry_of<'a, V>(
    entries: &mut Peekable<impl Iterator<Item = (&'a UserId, V)>>,
    user: &UserId,
) -> Option<V> {
    while let Some((u, _)) = entries.peek() {
        match (*u).cmp(user) {
            Ordering::Less => drop(entries.next()),
            Ordering::Equal => return entries.next().map(|(_, v)| v),
            Ordering::Greater => return None,
        }
    }
    None
}

/// The derived outbox counters, borrowed apart from the outboxes so an append can update
/// them while a walk holds the outbox map.
struct OutboxSizes<'a> {
    events: &'a mut usize,
    peak: &'a mut usize,
}

impl OutboxSizes<'_> {
    /// Appends `entry` at `seq` (already checked to be the outbox's next) and keeps the
    /// counters in step with what retention trimmed.
    fn append(
        &mut self,
        outbox: &mut Outbox,
        seq: Seq,
        entry: &Arc<StreamEntry>,
        at: Instant,
        config: &Config,
    ) {
        let before = outbox.len();
        let appended = outbox.append(
            seq,
            Arc::clone(entry),
            at,
            config.limits.outbox_max_events,
            config_retention(config),
        );
        debug_assert!(appended, "seq checked by the caller");
        let after = outbox.len();
        *self.events = *self.events - before + after;
        *self.peak = (*self.peak).max(after);
    }
}

/// Moves `run` past its next planned step, which must be `kind` (or a cancel) of `user`;
/// removes it after a terminal step. Changes nothing on error.
fn advance_run(
    runs: &mut BTreeMap<RunId, RunRecord>,
    runs_per_user: &mut BTreeMap<UserId, usize>,
    (seq, at): (LogSeq, Instant),
    run: RunId,
    user: &UserId,
    kind: StreamKind,
) -> Result<(), ReplayError> {
    let r = runs.get_mut(&run).ok_or(ReplayError::Run { seq, run })?;
    let planned = r.plan.get(r.next_step).map(AgentStep::kind);
    let follows = kind == StreamKind::AgentCancelled || planned == Some(kind);
    if !follows || r.owner != *user {
        return Err(ReplayError::Run { seq, run });
    }
    r.next_step += 1;
    if kind.is_terminal() {
        let owner = r.owner.clone();
        runs.remove(&run);
        drop_one(runs_per_user, &owner);
    } else if let Some(next) = r.plan.get(r.next_step) {
        r.next_at = at.saturating_add(next.delay());
    }
    Ok(())
}

/// Removes `conn` from `key`'s set in an index, dropping the set when it empties.
fn unindex<K: Ord>(index: &mut BTreeMap<K, ConnSet>, key: &K, conn: ConnId) {
    // The indexes are derived from `sessions`, so an open connection's key is always there;
    // written without an `else` for a missing key so no branch stands for it.
    let emptied = index.get_mut(key).is_some_and(|set| {
        set.remove(conn);
        set.is_empty()
    });
    if emptied {
        index.remove(key);
    }
}

/// Feeds everything written to it into a SHA-256 digest.
struct DigestWriter(Sha256);

impl std::io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config_retention(config: &Config) -> std::time::Duration {
    std::time::Duration::from_millis(config.limits.outbox_retention_ms)
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::payload::Payload;

    fn user(name: &str) -> UserId {
        UserId::parse(name).expect("valid user id")
    }

    fn thread(name: &str) -> ThreadId {
        ThreadId::parse(name).expect("valid thread id")
    }

    fn identity(name: &str) -> Identity {
        Identity {
            user: user(name),
            jti: Jti::parse(&format!("jti-{name}")).expect("valid jti"),
            iat: Instant::EPOCH,
            exp: Instant::from_unix_secs(3600),
            can_broadcast: false,
        }
    }

    /// Folds `events` one by one (seq 1.., one second apart) into a fresh state and returns it
    /// with the result of the last fold; every earlier fold must succeed.
    fn fold(events: Vec<Event>) -> (State, Result<(), ReplayError>) {
        let config = Config::default();
        let mut state = State::default();
        let n = events.len();
        let mut last = Ok(());
        for (i, event) in events.into_iter().enumerate() {
            let entry = LogEntry {
                seq: LogSeq::new(i as u64 + 1),
                at: Instant::from_unix_secs(i as u64 + 1),
                event,
            };
            last = state.apply(&entry, &config, Plants::NONE);
            if i + 1 < n {
                assert_eq!(last, Ok(()), "event {} must fold", i + 1);
            }
        }
        (state, last)
    }

    fn opened(conn: u64, name: &str) -> Event {
        Event::SessionOpened {
            conn: ConnId::new(conn),
            identity: identity(name),
            via: CredentialKind::Bearer,
            peer: IpAddr::from([127, 0, 0, 1]),
        }
    }

    fn created(name: &str, owner: &str) -> Event {
        Event::ThreadCreated {
            thread: thread(name),
            owner: user(owner),
        }
    }

    fn started(run: u64, owner: &str, on: &str) -> Event {
        Event::RunStarted {
            run: RunId::new(run),
            owner: user(owner),
            thread: thread(on),
            task: "task".to_owned(),
        }
    }

    fn run_event(user_name: &str, seq: u64, run: u64, kind: StreamKind) -> Event {
        Event::StreamAppended {
            user: user(user_name),
            seq: Seq::new(seq),
            entry: Arc::new(StreamEntry::new(
                Instant::EPOCH,
                kind,
                Some(thread("t1")),
                Some(RunId::new(run)),
                Payload::object().finish(),
            )),
        }
    }

    #[test]
    fn apply_refuses_an_entry_older_than_the_last_one() {
        let config = Config::default();
        let mut state = State::default();
        let first = LogEntry {
            seq: LogSeq::new(1),
            at: Instant::from_unix_secs(10),
            event: created("t1", "alice"),
        };
        state.apply(&first, &config, Plants::NONE).expect("first");
        let earlier = LogEntry {
            seq: LogSeq::new(2),
            at: Instant::from_unix_secs(9),
            event: created("t2", "alice"),
        };
        assert_eq!(
            state.apply(&earlier, &config, Plants::NONE),
            Err(ReplayError::TimeWentBackwards {
                seq: LogSeq::new(2)
            })
        );
        assert!(
            !state.threads.contains_key(&thread("t2")),
            "state unchanged"
        );
    }

    #[test]
    fn apply_refuses_opening_an_open_connection() {
        let (state, last) = fold(vec![opened(1, "alice"), opened(1, "bob")]);
        assert_eq!(
            last,
            Err(ReplayError::Connection {
                seq: LogSeq::new(2),
                conn: ConnId::new(1)
            })
        );
        assert_eq!(state.cap_slots.get(&user("bob")), None, "bob never counted");
    }

    #[test]
    fn apply_refuses_a_reauth_as_another_user() {
        let reauth = Event::SessionReauthed {
            conn: ConnId::new(1),
            identity: identity("bob"),
        };
        let (state, last) = fold(vec![opened(1, "alice"), reauth]);
        assert_eq!(
            last,
            Err(ReplayError::Connection {
                seq: LogSeq::new(2),
                conn: ConnId::new(1)
            })
        );
        assert_eq!(
            state.sessions.get(&ConnId::new(1)).map(|s| &s.identity),
            Some(&identity("alice"))
        );
    }

    #[test]
    fn apply_refuses_a_subscription_to_an_unknown_thread() {
        let subscribe = Event::Subscribed {
            conn: ConnId::new(1),
            thread: thread("nope"),
        };
        let (_, last) = fold(vec![opened(1, "alice"), subscribe]);
        assert_eq!(
            last,
            Err(ReplayError::Thread {
                seq: LogSeq::new(2),
                thread: thread("nope")
            })
        );
    }

    #[test]
    fn apply_refuses_creating_a_thread_twice() {
        let (state, last) = fold(vec![created("t1", "alice"), created("t1", "bob")]);
        assert_eq!(
            last,
            Err(ReplayError::Thread {
                seq: LogSeq::new(2),
                thread: thread("t1")
            })
        );
        assert_eq!(state.threads.get(&thread("t1")), Some(&user("alice")));
        assert_eq!(state.threads_per_user.get(&user("bob")), None);
    }

    #[test]
    fn apply_refuses_a_run_on_a_thread_of_another_owner() {
        let (state, last) = fold(vec![created("t1", "alice"), started(1, "bob", "t1")]);
        assert_eq!(
            last,
            Err(ReplayError::Thread {
                seq: LogSeq::new(2),
                thread: thread("t1")
            })
        );
        assert!(state.runs.is_empty());
    }

    #[test]
    fn apply_refuses_a_run_id_that_is_not_the_next() {
        let (state, last) = fold(vec![created("t1", "alice"), started(2, "alice", "t1")]);
        assert_eq!(
            last,
            Err(ReplayError::Run {
                seq: LogSeq::new(2),
                run: RunId::new(2)
            })
        );
        assert!(state.runs.is_empty());
        assert_eq!(state.next_run, RunId::default());
    }

    #[test]
    fn apply_refuses_a_run_event_by_another_user_or_out_of_plan() {
        // The first planned step of every run is `agent_started`.
        let setup = || vec![created("t1", "alice"), started(1, "alice", "t1")];
        let mut by_bob = setup();
        by_bob.push(run_event("bob", 1, 1, StreamKind::AgentStarted));
        let (state, last) = fold(by_bob);
        assert_eq!(
            last,
            Err(ReplayError::Run {
                seq: LogSeq::new(3),
                run: RunId::new(1)
            })
        );
        assert!(
            !state.outboxes.contains_key(&user("bob")),
            "no outbox left behind"
        );
        let mut skipping = setup();
        skipping.push(run_event("alice", 1, 1, StreamKind::AgentCompleted));
        let (state, last) = fold(skipping);
        assert_eq!(
            last,
            Err(ReplayError::Run {
                seq: LogSeq::new(3),
                run: RunId::new(1)
            })
        );
        assert_eq!(state.runs.get(&RunId::new(1)).map(|r| r.next_step), Some(0));
    }

    fn notice() -> Arc<StreamEntry> {
        Arc::new(StreamEntry::new(
            Instant::EPOCH,
            StreamKind::SystemNotice,
            None,
            None,
            Payload::object().str("text", "hi").finish(),
        ))
    }

    #[test]
    fn a_broadcast_folds_to_a_copy_per_connected_user_at_its_own_next_seq() {
        let (state, last) = fold(vec![
            opened(1, "alice"),
            opened(2, "bob"),
            opened(3, "bob"),
            opened(4, "carol"),
            Event::SessionClosed {
                conn: ConnId::new(4),
                reason: crate::log::CloseReason::PeerClosed,
            },
            Event::StreamAppended {
                user: user("alice"),
                seq: Seq::new(1),
                entry: notice(),
            },
            Event::StreamBroadcast { entry: notice() },
        ]);
        assert_eq!(last, Ok(()));
        let latest: Vec<u64> = ["alice", "bob", "carol"]
            .iter()
            .map(|u| state.latest_seq(&user(u)).get())
            .collect();
        // Bob's two connections get one copy; carol, gone before it, none.
        assert_eq!(latest, vec![2, 1, 0]);
        assert!(!state.outboxes.contains_key(&user("carol")));
        assert_eq!((state.outbox_events, state.peak_outbox_len), (3, 2));
    }

    #[test]
    fn a_broadcast_folds_like_one_append_per_connected_user() {
        // The two logs of the same broadcast give the same state, byte for byte.
        let setup = || vec![opened(1, "bob"), opened(2, "alice"), opened(3, "ops")];
        let mut one = setup();
        one.push(Event::StreamBroadcast { entry: notice() });
        let mut each = setup();
        for name in ["alice", "bob", "ops"] {
            each.push(Event::StreamAppended {
                user: user(name),
                seq: Seq::new(1),
                entry: notice(),
            });
        }
        let ((a, ra), (b, rb)) = (fold(one), fold(each));
        assert_eq!((ra, rb), (Ok(()), Ok(())));
        assert_eq!(a.outboxes, b.outboxes);
        assert_eq!(
            (a.outbox_events, a.peak_outbox_len),
            (b.outbox_events, b.peak_outbox_len)
        );
    }

    #[test]
    fn apply_refuses_a_broadcast_that_carries_a_run() {
        let entry = StreamEntry::new(
            Instant::EPOCH,
            StreamKind::SystemNotice,
            None,
            Some(RunId::new(1)),
            Payload::object().str("text", "hi").finish(),
        );
        let (state, last) = fold(vec![
            opened(1, "alice"),
            Event::StreamBroadcast {
                entry: Arc::new(entry),
            },
        ]);
        assert_eq!(
            last,
            Err(ReplayError::Run {
                seq: LogSeq::new(2),
                run: RunId::new(1)
            })
        );
        assert!(state.outboxes.is_empty(), "no copy appended");
    }

    #[test]
    fn apply_refuses_issuing_the_same_ticket_twice() {
        let issued = || Event::TicketIssued {
            digest: "d1".to_owned(),
            identity: identity("alice"),
            expires: Instant::from_unix_secs(60),
        };
        let (state, last) = fold(vec![issued(), issued()]);
        assert_eq!(
            last,
            Err(ReplayError::Ticket {
                seq: LogSeq::new(2)
            })
        );
        assert_eq!(state.tickets_issued, 1);
    }

    #[test]
    fn digest_writer_flush_adds_nothing_to_the_digest() {
        let mut w = DigestWriter(Sha256::new());
        w.write_all(b"abc").expect("write");
        w.flush().expect("flush");
        assert_eq!(
            hex(&w.0.finalize()),
            hex(&Sha256::digest(b"abc")),
            "flush wrote nothing"
        );
    }
}
