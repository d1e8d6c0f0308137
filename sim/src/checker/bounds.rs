//! Bounded memory and the per-user connection cap: queues, outboxes, tickets and tracked
//! addresses stay within their configured limits; a user never holds more sessions than
//! the cap, and is never refused for the cap while holding fewer (the cap is released).

use gauntlet_core::{Config, ConnId, Event, UserId};

use super::{Checker, EndState, Failure, Obs};
use crate::id_map::{ConnMap, UserMap};

pub(crate) struct BoundsChecker {
    config: Config,
    sessions: ConnMap<UserId>,
    per_user: UserMap<usize>,
}

const NAME: &str = "bounds";

impl BoundsChecker {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            sessions: ConnMap::default(),
            per_user: UserMap::default(),
        }
    }

    fn close(&mut self, conn: &ConnId) {
        if let Some(u) = self.sessions.remove(conn)
            && let Some(n) = self.per_user.get_mut(&u)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(&u);
            }
        }
    }
}

impl Checker for BoundsChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        let l = &self.config.limits;
        let cap = l.max_connections_per_user;
        match obs {
            Obs::Log(entries) => {
                for e in entries.iter() {
                    match &e.event {
                        Event::SessionOpened { conn, identity, .. } => {
                            self.sessions.insert(*conn, identity.user.clone());
                            let n = self.per_user.entry(identity.user.clone()).or_default();
                            *n += 1;
                            if *n > cap {
                                return Err(Failure::new(
                                    NAME,
                                    format!("{} holds {n} sessions (cap {})", identity.user, cap),
                                ));
                            }
                        }
                        Event::SessionClosed { conn, .. } => self.close(conn),
                        Event::Restarted => {
                            self.sessions.clear();
                            self.per_user.clear();
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Obs::Handshake {
                truth,
                reject_code: Some("too_many_connections"),
                ..
            } => {
                if let super::CredTruth::Access { user, .. } = truth {
                    let held = self.per_user.get(user).copied().unwrap_or(0);
                    if held < cap {
                        return Err(Failure::new(
                            NAME,
                            format!(
                                "{user} refused for the cap while holding {held} sessions (cap not released)"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            Obs::Stats(s) => {
                let checks = [
                    ("send queue", s.peak_queue_depth, l.send_queue_capacity),
                    ("outbox", s.peak_outbox_len, l.outbox_max_events),
                    ("tickets", s.tickets, l.max_tickets),
                    ("tracked IPs", s.ip_buckets, l.max_tracked_ips),
                    (
                        "validation cache",
                        s.cache_len,
                        gauntlet_core::token::DEFAULT_CACHE_CAPACITY,
                    ),
                ];
                match checks.iter().find(|(_, v, max)| v > max) {
                    Some((what, v, max)) => Err(Failure::new(
                        NAME,
                        format!("{what} holds {v} (bound {max})"),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, _end: &EndState<'_>) -> Result<(), Failure> {
        Ok(())
    }
}
