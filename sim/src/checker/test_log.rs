//! Log entries for the checkers' unit tests: sessions opening and closing at a fixed time,
//! written once for every checker that reads the log. Test-only; never compiled into a run.

use std::net::IpAddr;

use gauntlet_core::{
    CloseReason, ConnId, CredentialKind, Event, Identity, Instant, Jti, LogEntry, LogSeq, UserId,
};

/// A valid user id.
pub(crate) fn user(name: &str) -> UserId {
    UserId::parse(name).unwrap_or_else(|| unreachable!("a valid user id"))
}

/// `event` as the log's first entry, at 1 s.
pub(crate) fn entry(event: Event) -> LogEntry {
    LogEntry {
        seq: LogSeq::new(1),
        at: Instant::from_unix_secs(1),
        event,
    }
}

/// A bearer session of `name` opened on `conn`, its token valid until 900 s.
pub(crate) fn opened(conn: u64, name: &str) -> LogEntry {
    entry(Event::SessionOpened {
        conn: ConnId::new(conn),
        identity: Identity {
            user: user(name),
            jti: Jti::parse(&format!("j-{conn}")).unwrap_or_else(|| unreachable!()),
            iat: Instant::EPOCH,
            exp: Instant::from_unix_secs(900),
            can_broadcast: false,
        },
        via: CredentialKind::Bearer,
        peer: IpAddr::from([127, 0, 0, 1]),
    })
}

/// The session on `conn` closed for `reason`.
pub(crate) fn closed(conn: u64, reason: CloseReason) -> LogEntry {
    entry(Event::SessionClosed {
        conn: ConnId::new(conn),
        reason,
    })
}
