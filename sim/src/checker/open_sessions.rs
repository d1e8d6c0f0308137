//! The sessions the gateway's log shows open: opened, not closed, and no restart since (a
//! restart ends every session without logging their closes). Checkers that judge what an
//! open session is owed keep one; it only follows the log and judges nothing.

use std::collections::BTreeSet;

use gauntlet_core::{ConnId, Event};

#[derive(Default)]
pub(crate) struct OpenSessions(BTreeSet<ConnId>);

impl OpenSessions {
    /// Follows one log event.
    pub(crate) fn apply(&mut self, event: &Event) {
        match event {
            Event::SessionOpened { conn, .. } => {
                self.0.insert(*conn);
            }
            Event::SessionClosed { conn, .. } => {
                self.0.remove(conn);
            }
            Event::Restarted => self.0.clear(),
            _ => {}
        }
    }

    pub(crate) fn contains(&self, conn: &ConnId) -> bool {
        self.0.contains(conn)
    }

    /// The open sessions, in connection order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.0.iter().copied()
    }
}
