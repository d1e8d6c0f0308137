//! Bounded memory and the per-user bounds: queues, outboxes, tickets and tracked addresses
//! stay within their configured limits; a user never holds more sessions than the cap, and
//! is never refused for the cap while holding fewer (the cap is released); a user never
//! holds more live tickets than `max_tickets_per_user`, and is never refused for that bound
//! while holding fewer; no more than `max_connections` sessions are open, and `server_full`
//! refuses only at that bound. Sessions and tickets are counted from the log, not the gateway.

use std::collections::BTreeMap;

use gauntlet_core::{Config, ConnId, Event, Instant, UserId};

use super::{Checker, Failure, Obs};
use crate::id_map::{ConnMap, UserMap};

pub(crate) struct BoundsChecker {
    config: Config,
    sessions: ConnMap<UserId>,
    per_user: UserMap<usize>,
    /// Unredeemed tickets: digest -> owner, and per owner digest -> expiry.
    ticket_owner: BTreeMap<String, UserId>,
    tickets: UserMap<BTreeMap<String, Instant>>,
}

const NAME: &str = "bounds";

impl BoundsChecker {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            config: config.clone(),
            sessions: ConnMap::default(),
            per_user: UserMap::default(),
            ticket_owner: BTreeMap::new(),
            tickets: UserMap::default(),
        }
    }

    /// `user`'s tickets that are unredeemed and unexpired at `at`.
    fn live_tickets(&self, user: &UserId, at: Instant) -> usize {
        self.tickets
            .get(user)
            .map_or(0, |held| held.values().filter(|e| at < **e).count())
    }

    fn ticket_issued(
        &mut self,
        at: Instant,
        digest: &str,
        user: &UserId,
        expires: Instant,
    ) -> Result<(), Failure> {
        self.ticket_owner.insert(digest.to_string(), user.clone());
        let held = self.tickets.entry(user.clone()).or_default();
        held.insert(digest.to_string(), expires);
        // Expired ones are forgotten here: only live tickets count against the bound.
        held.retain(|_, e| at < *e);
        let bound = self.config.limits.max_tickets_per_user;
        let live = self.live_tickets(user, at);
        if live > bound {
            return Err(Failure::new(
                NAME,
                format!("{user} holds {live} live tickets (bound {bound})"),
            ));
        }
        Ok(())
    }

    fn ticket_consumed(&mut self, digest: &str) {
        if let Some(user) = self.ticket_owner.remove(digest)
            && let Some(held) = self.tickets.get_mut(&user)
        {
            held.remove(digest);
            if held.is_empty() {
                self.tickets.remove(&user);
            }
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
        let cap = self.config.limits.max_connections_per_user;
        match obs {
            Obs::Log(entries) => {
                for e in entries.iter() {
                    match &e.event {
                        Event::SessionOpened { conn, identity, .. } => {
                            self.sessions.insert(*conn, identity.user.clone());
                            let open = self.sessions.len();
                            let global = self.config.limits.max_connections;
                            if open > global {
                                return Err(Failure::new(
                                    NAME,
                                    format!("{open} sessions open (bound {global})"),
                                ));
                            }
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
                        Event::TicketIssued {
                            digest,
                            identity,
                            expires,
                        } => self.ticket_issued(e.at, digest, &identity.user, *expires)?,
                        Event::TicketConsumed { digest } => self.ticket_consumed(digest),
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
            Obs::Handshake {
                reject_code: Some("server_full"),
                ..
            } => {
                let (open, global) = (self.sessions.len(), self.config.limits.max_connections);
                if open < global {
                    return Err(Failure::new(
                        NAME,
                        format!("refused server_full with {open} sessions open (bound {global})"),
                    ));
                }
                Ok(())
            }
            Obs::TicketAnswer {
                at,
                user,
                refused: Some("too_many_tickets_per_user"),
            } => {
                let held = self.live_tickets(user, *at);
                let bound = self.config.limits.max_tickets_per_user;
                if held < bound {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "{user} refused a ticket for the per-user bound while holding {held} (bound {bound})"
                        ),
                    ));
                }
                Ok(())
            }
            Obs::Stats(s) => {
                let l = &self.config.limits;
                let checks = [
                    ("send queue", s.peak_queue_depth, l.send_queue_capacity),
                    ("outbox", s.peak_outbox_len, l.outbox_max_events),
                    ("tickets", s.tickets, l.max_tickets),
                    ("tracked IPs", s.ip_buckets, l.max_tracked_ips),
                    ("validation cache", s.cache_len, l.max_cached_tokens),
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
}
