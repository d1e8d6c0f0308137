//! Sessions end when their credential does (docs/protocol.md sections 2 and 12): a connection
//! whose token reaches `exp + leeway` without a successful `reauth` is closed then
//! (`SESSION-EXPIRY`), a `reauth` moves that to the new token's `exp + leeway`
//! (`SESSION-REAUTH-EXTENDS`), and a feed sync that brings a revocation closes at once every
//! open connection whose token it covers, by `jti` or by a user cut-off above the token's
//! `iat` (`AUTH-REVOKE-CLOSE-OPEN`).
//!
//! What each session's token is comes from the world: the credential its handshake, or its
//! last `reauth`, presented. The gateway's log says only when sessions open and close, when a
//! `reauth` was taken, and when the feed was synced; the checker never reads the identity
//! the gateway logged, so a gateway that records the wrong expiry is still judged against the
//! real token. A deadline is judged when the log moves past it: the world fires the gateway's
//! timers on time, so a session still open at a later entry outlived its token. Once the run
//! drains, timers no longer fire and expiry is no longer judged.
//!
//! This checker must never judge a session by a token the gateway has not seen yet: between
//! the gateway taking a `reauth` and the client hearing of it, the session's token is unknown
//! here, and neither its expiry nor a revocation is judged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gauntlet_core::token::Revocation;
use gauntlet_core::{CloseReason, ConnId, Event, Instant, Jti, LogEntry, UserId};

use super::auth::iat_of;
use super::{Checker, CredTruth, Failure, Obs};

const NAME: &str = "session";

/// What the world knows of an open session's current token.
#[derive(Debug, Clone)]
struct Live {
    user: UserId,
    jti: Jti,
    iat: Instant,
    /// `exp + leeway`: when the gateway must close the session.
    deadline: Instant,
    /// The gateway took a `reauth` whose token the world has not matched yet.
    reauth_pending: bool,
}

pub(crate) struct SessionChecker {
    leeway: Duration,
    sessions: BTreeMap<ConnId, Live>,
    /// The deadline of every open session whose token the world knows, soonest first (a
    /// session with a `reauth` pending has none until its new token is known).
    deadlines: BTreeSet<(Instant, ConnId)>,
    /// Sessions a feed sync must have closed at once: when, and what covered the token.
    must_close: BTreeMap<ConnId, (Instant, String)>,
    timers_stopped: bool,
}

impl SessionChecker {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        Self {
            leeway: config.tokens.leeway(),
            sessions: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            must_close: BTreeMap::new(),
            timers_stopped: false,
        }
    }

    fn open(&mut self, conn: ConnId, truth: &CredTruth) {
        let CredTruth::Access { user, jti, exp, .. } = truth else {
            return;
        };
        self.close(conn);
        let deadline = exp.saturating_add(self.leeway);
        self.deadlines.insert((deadline, conn));
        self.sessions.insert(
            conn,
            Live {
                user: user.clone(),
                jti: jti.clone(),
                iat: iat_of(truth),
                deadline,
                reauth_pending: false,
            },
        );
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(live) = self.sessions.remove(&conn) {
            self.deadlines.remove(&(live.deadline, conn));
        }
        self.must_close.remove(&conn);
    }

    /// Judges every deadline the log has moved past at `now`.
    fn judge(&self, now: Instant) -> Result<(), Failure> {
        if let Some((conn, (synced, why))) = self.must_close.iter().find(|(_, (t, _))| *t < now) {
            let user = self
                .sessions
                .get(conn)
                .map(|l| l.user.as_str())
                .unwrap_or("?");
            return Err(Failure::new(
                NAME,
                format!(
                    "{conn} of {user} still open {:?} after a feed sync brought {why}",
                    now.saturating_since(*synced)
                ),
            ));
        }
        if self.timers_stopped {
            return Ok(());
        }
        if let Some((deadline, conn)) = self.deadlines.first().filter(|(d, _)| *d < now)
            && let Some(live) = self.sessions.get(conn)
        {
            return Err(Failure::new(
                NAME,
                format!(
                    "{conn} of {} still open {:?} after its token {} reached exp + leeway",
                    live.user,
                    now.saturating_since(*deadline),
                    live.jti
                ),
            ));
        }
        Ok(())
    }

    /// The gateway closed `conn` at `at` for its token: expired only from `exp + leeway`
    /// on, revoked only when a synced revocation covers it.
    fn closed_early(&self, at: Instant, conn: ConnId, reason: CloseReason) -> Result<(), Failure> {
        let Some(live) = self.sessions.get(&conn).filter(|l| !l.reauth_pending) else {
            return Ok(());
        };
        let early = match reason {
            CloseReason::TokenExpired if at < live.deadline => format!(
                "{:?} before its token {} reached exp + leeway",
                live.deadline.saturating_since(at),
                live.jti
            ),
            CloseReason::TokenRevoked if !self.must_close.contains_key(&conn) => format!(
                "though no synced revocation covers its token {} (iat {})",
                live.jti, live.iat
            ),
            _ => return Ok(()),
        };
        Err(Failure::new(
            NAME,
            format!("{conn} of {} closed as {reason:?} {early}", live.user),
        ))
    }

    /// A feed sync at `at` brought `r`: the open sessions whose token it covers must close.
    fn synced(&mut self, at: Instant, r: &Revocation) {
        for (conn, live) in &self.sessions {
            if live.reauth_pending {
                continue;
            }
            let why = match r {
                Revocation::Jti { jti, .. } if *jti == live.jti => {
                    format!("the revocation of {jti}")
                }
                Revocation::User { user, not_before }
                    if *user == live.user && live.iat < *not_before =>
                {
                    format!(
                        "a cut-off at {not_before} for {user}, above its token's iat {}",
                        live.iat
                    )
                }
                _ => continue,
            };
            self.must_close.entry(*conn).or_insert((at, why));
        }
    }

    fn entry(&mut self, e: &LogEntry) -> Result<(), Failure> {
        if matches!(e.event, Event::Restarted) {
            // Every connection is gone with the gateway that held it.
            self.sessions.clear();
            self.deadlines.clear();
            self.must_close.clear();
            return Ok(());
        }
        self.judge(e.at)?;
        match &e.event {
            Event::SessionClosed { conn, reason } => {
                self.closed_early(e.at, *conn, *reason)?;
                self.close(*conn);
            }
            Event::SessionReauthed { conn, .. } => {
                if let Some(live) = self.sessions.get_mut(conn) {
                    live.reauth_pending = true;
                    self.deadlines.remove(&(live.deadline, *conn));
                }
            }
            Event::FeedSynced { revocations, .. } => {
                for r in revocations {
                    self.synced(e.at, r);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Checker for SessionChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Handshake {
                conn,
                truth,
                accepted_as: Some(_),
                ..
            } => self.open(*conn, truth),
            // The session's token is now the one the reauth presented, from when the gateway
            // took it; the checker learns it only now.
            Obs::Reauthed { conn, truth, .. } if self.sessions.contains_key(conn) => {
                self.open(*conn, truth);
            }
            Obs::Log(entries) => {
                for e in *entries {
                    self.entry(e)?;
                }
            }
            Obs::TimersStopped => self.timers_stopped = true,
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_fixtures::handshake;
    use gauntlet_core::LogSeq;

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_800_000_000 + secs)
    }

    fn token(jti: &str, iat: u64, exp: u64) -> CredTruth {
        CredTruth::Access {
            user: UserId::parse("u1").unwrap_or_else(|| unreachable!()),
            jti: Jti::parse(jti).unwrap_or_else(|| unreachable!()),
            minted: t(iat),
            exp: t(exp),
            kid: None,
            family: None,
            foreign_iat: None,
            nbf: Some(t(iat)),
            iat: Some(t(iat)),
        }
    }

    fn accepted(c: &mut SessionChecker, conn: ConnId, truth: &CredTruth) {
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        c.observe(&handshake(conn, t(0), truth, Some(&user), None))
            .unwrap_or_else(|f| unreachable!("{f:?}"));
    }

    fn log(c: &mut SessionChecker, at: u64, event: Event) -> Result<(), Failure> {
        let entry = LogEntry {
            seq: LogSeq::new(1),
            at: t(at),
            event,
        };
        c.observe(&Obs::Log(std::slice::from_ref(&entry)))
    }

    fn closed(conn: ConnId) -> Event {
        Event::SessionClosed {
            conn,
            reason: CloseReason::TokenExpired,
        }
    }

    fn revoked(conn: ConnId) -> Event {
        Event::SessionClosed {
            conn,
            reason: CloseReason::TokenRevoked,
        }
    }

    fn feed(revocations: Vec<Revocation>) -> Event {
        Event::FeedSynced {
            as_of: t(0),
            revocations,
        }
    }

    #[test]
    fn a_session_open_past_its_tokens_exp_plus_leeway_fails() {
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        let conn = ConnId::new(1);
        accepted(&mut c, conn, &token("j1", 0, 100));
        // exp 100 + leeway 30: an entry at 130 is on time, one at 131 is late.
        assert!(log(&mut c, 130, feed(vec![])).is_ok());
        let late = log(&mut c, 131, feed(vec![])).unwrap_err();
        assert!(late.message.contains("reached exp + leeway"), "{late:?}");

        // Closed on time: nothing to judge later.
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        accepted(&mut c, conn, &token("j1", 0, 100));
        assert!(log(&mut c, 130, closed(conn)).is_ok());
        assert!(log(&mut c, 500, feed(vec![])).is_ok());

        // Closed as expired a second early: a failure.
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        accepted(&mut c, conn, &token("j1", 0, 100));
        let early = log(&mut c, 129, closed(conn)).unwrap_err();
        assert!(early.message.contains("before its token j1"), "{early:?}");

        // Draining: timers no longer fire.
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        accepted(&mut c, conn, &token("j1", 0, 100));
        c.observe(&Obs::TimersStopped)
            .unwrap_or_else(|f| unreachable!("{f:?}"));
        assert!(log(&mut c, 500, feed(vec![])).is_ok());
    }

    #[test]
    fn a_reauth_moves_the_deadline_once_the_world_knows_the_new_token() {
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        let conn = ConnId::new(1);
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        accepted(&mut c, conn, &token("j1", 0, 100));
        let identity = gauntlet_core::Identity {
            user: user.clone(),
            jti: Jti::parse("j2").unwrap_or_else(|| unreachable!()),
            iat: t(90),
            exp: t(400),
            can_broadcast: false,
        };
        assert!(log(&mut c, 90, Event::SessionReauthed { conn, identity }).is_ok());
        // The answer has not reached the client: the old deadline is not judged.
        assert!(log(&mut c, 140, feed(vec![])).is_ok());
        c.observe(&Obs::Reauthed {
            at: t(141),
            conn,
            session_user: &user,
            truth: &token("j2", 90, 400),
        })
        .unwrap_or_else(|f| unreachable!("{f:?}"));
        assert!(log(&mut c, 430, feed(vec![])).is_ok());
        assert!(log(&mut c, 431, feed(vec![])).is_err());
    }

    #[test]
    fn a_feed_sync_closes_the_sessions_it_covers_at_once() {
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        let (a, b) = (ConnId::new(1), ConnId::new(2));
        let fresh = || {
            let mut c = SessionChecker::new(&gauntlet_core::Config::default());
            accepted(&mut c, a, &token("j1", 10, 900));
            accepted(&mut c, b, &token("j2", 20, 900));
            c
        };
        // By jti: only that token's session; closing it in the sync's instant is in time.
        let mut c = fresh();
        let jti = Jti::parse("j1").unwrap_or_else(|| unreachable!());
        let by_jti = Revocation::Jti { jti, exp: t(900) };
        assert!(log(&mut c, 50, feed(vec![by_jti.clone()])).is_ok());
        assert!(log(&mut c, 50, revoked(a)).is_ok());
        assert!(log(&mut c, 51, feed(vec![])).is_ok());
        // Left open past that instant: a failure naming the revocation.
        let mut c = fresh();
        assert!(log(&mut c, 50, feed(vec![by_jti])).is_ok());
        let late = log(&mut c, 51, feed(vec![])).unwrap_err();
        assert!(late.message.contains("the revocation of j1"), "{late:?}");
        // Closed as revoked with nothing covering it.
        let mut c = fresh();
        let wrong = log(&mut c, 50, revoked(b)).unwrap_err();
        assert!(wrong.message.contains("no synced revocation"), "{wrong:?}");
        // A user cut-off covers tokens with `iat` below it, not at or above it.
        let mut c = fresh();
        let cut = Revocation::User {
            user,
            not_before: t(20),
        };
        assert!(log(&mut c, 50, feed(vec![cut])).is_ok());
        assert!(log(&mut c, 50, revoked(a)).is_ok());
        assert!(log(&mut c, 50, revoked(b)).is_err());
        assert!(log(&mut c, 60, feed(vec![])).is_ok());
    }

    #[test]
    fn a_restart_ends_every_session() {
        let mut c = SessionChecker::new(&gauntlet_core::Config::default());
        accepted(&mut c, ConnId::new(1), &token("j1", 0, 100));
        assert!(log(&mut c, 500, Event::Restarted).is_ok());
        assert!(log(&mut c, 501, feed(vec![])).is_ok());
    }
}
