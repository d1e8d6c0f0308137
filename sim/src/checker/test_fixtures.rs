//! Fixtures for the checkers' unit tests, written once for every checker that needs them:
//! log entries of sessions opening and closing at a fixed time, handshake verdicts, a client
//! hearing of a close, and the end of a quiescent run. Test-only; never compiled into a run.

use std::collections::BTreeMap;
use std::net::IpAddr;

use gauntlet_core::{
    CloseReason, ConnId, CredentialKind, Event, Identity, Instant, Jti, LogEntry, LogSeq, UserId,
};

use super::{Checker, CredTruth, EndState, Failure, Obs};

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

/// A bearer handshake on `conn` from 10.0.0.1 at `at`, for `truth`: accepted as
/// `accepted_as`, or refused with `reject_code` (no status, no subprotocol).
pub(crate) fn handshake<'a>(
    conn: ConnId,
    at: Instant,
    truth: &'a CredTruth,
    accepted_as: Option<&'a UserId>,
    reject_code: Option<&'static str>,
) -> Obs<'a> {
    Obs::Handshake {
        at,
        conn,
        peer: IpAddr::from([10, 0, 0, 1]),
        truth,
        accepted_as,
        reject_code,
        status: None,
        selected: None,
        token_in_subprotocol: false,
    }
}

/// The client of `conn` heard of its close, with `code` (`None`: the transport broke).
pub(crate) fn client_closed(
    c: &mut impl Checker,
    conn: u64,
    code: Option<u16>,
) -> Result<(), Failure> {
    c.observe(&Obs::ClientClosed {
        conn: ConnId::new(conn),
        code,
    })
}

/// `c`'s end-of-run verdict on a quiescent run that ends with alice's `open` connections.
pub(crate) fn finish_quiescent(c: &mut impl Checker, open: &[u64]) -> Result<(), Failure> {
    let open: BTreeMap<ConnId, UserId> = open
        .iter()
        .map(|n| (ConnId::new(*n), user("alice")))
        .collect();
    c.finish(&EndState {
        open: &open,
        quiescent: true,
    })
}

/// The failure's message, or nothing for a pass.
pub(crate) fn message(r: Result<(), Failure>) -> String {
    r.err().map(|f| f.message).unwrap_or_default()
}
