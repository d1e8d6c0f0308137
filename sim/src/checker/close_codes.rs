//! Close codes: the close frame a client receives carries the code that docs/protocol.md
//! (section 16) assigns to the reason the gateway logged for that connection
//! (`CLOSE-CODE-MAP`); a binary frame on an open session closes it as a binary frame
//! (`MSG-BINARY`, 1003); a graceful shutdown closes every open session as a shutdown
//! (`CLOSE-GOING-AWAY`, 1001); and a session the gateway closed with a code is never left
//! open at its client once the network has drained.
//!
//! The reason-to-code table is written out here from the protocol ([`spec_code`]), never
//! taken from `CloseReason::close_code`: that is the code under test. The logged reason is
//! the one judged, so a connection closed for one reason before the frame that would have
//! closed it for another (a binary frame on a session already closed as a rate abuser)
//! passes with the first reason's code. A close without a frame (`None`: the transport
//! broke) is not judged. The checker only reads observations; it never feeds anything back
//! into the world.

use std::collections::BTreeMap;

use gauntlet_core::{CloseReason, ConnId, Event, LogEntry};

use super::open_sessions::OpenSessions;
use super::{Checker, EndState, Failure, Obs};

const NAME: &str = "close_codes";

/// The close code docs/protocol.md section 16 gives a session closed for `reason`, with the
/// table row's words for messages.
fn spec_code(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        CloseReason::PeerClosed => (1000, "a peer close"),
        CloseReason::Shutdown => (1001, "a shutdown"),
        CloseReason::BinaryFrame => (1003, "a binary frame"),
        CloseReason::InvalidUtf8 => (1007, "invalid UTF-8"),
        CloseReason::TokenExpired => (1008, "an expired token"),
        CloseReason::TokenRevoked => (1008, "a revoked token"),
        CloseReason::ProtocolErrorBudget => (1008, "a spent protocol-error budget"),
        CloseReason::FrameTooBig => (1009, "a frame too big"),
        CloseReason::SlowConsumer => (1013, "a slow consumer"),
    }
}

#[derive(Default)]
pub(crate) struct CloseCodesChecker {
    open: OpenSessions,
    /// The reason the log gave each closed session, until its client hears of the close.
    closed: BTreeMap<ConnId, CloseReason>,
    /// Sessions the gateway's next log entries must close, and as what: a binary frame or a
    /// shutdown reached the gateway while they were open.
    due: BTreeMap<ConnId, CloseReason>,
}

impl CloseCodesChecker {
    /// Expects `conn` closed as `reason` by the gateway's next log entries, if it is open.
    fn expect(&mut self, conn: ConnId, reason: CloseReason) {
        if self.open.contains(&conn) {
            self.due.insert(conn, reason);
        }
    }

    fn on_log(&mut self, entries: &[LogEntry]) -> Result<(), Failure> {
        // The whole call's entries are judged against what was due before it.
        let due = std::mem::take(&mut self.due);
        for e in entries {
            self.open.apply(&e.event);
            if let Event::SessionClosed { conn, reason } = &e.event {
                self.closed.insert(*conn, *reason);
            }
        }
        for (conn, want) in due {
            match self.closed.get(&conn) {
                Some(got) if *got != want => {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "{conn} was open when {} reached the gateway, which closed it as {} instead",
                            spec_code(want).1,
                            spec_code(*got).1
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "{conn} was open when {} reached the gateway, which did not close it",
                            spec_code(want).1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn on_client_closed(&mut self, conn: ConnId, code: Option<u16>) -> Result<(), Failure> {
        let reason = self.closed.remove(&conn);
        let Some(code) = code else {
            return Ok(());
        };
        let Some(reason) = reason else {
            return Err(Failure::new(
                NAME,
                format!("{conn} received close code {code}, but the gateway logged no close of it"),
            ));
        };
        let (want, why) = spec_code(reason);
        if code == want {
            return Ok(());
        }
        Err(Failure::new(
            NAME,
            format!(
                "{conn} received close code {code}, but the gateway logged it closed for {why}, which the protocol closes with {want}"
            ),
        ))
    }
}

impl Checker for CloseCodesChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Log(entries) => self.on_log(entries),
            Obs::BinaryFrame { conn } => {
                self.expect(*conn, CloseReason::BinaryFrame);
                Ok(())
            }
            Obs::Shutdown => {
                let open: Vec<ConnId> = self.open.iter().collect();
                for conn in open {
                    self.expect(conn, CloseReason::Shutdown);
                }
                Ok(())
            }
            Obs::ClientClosed { conn, code } => self.on_client_closed(*conn, *code),
            _ => Ok(()),
        }
    }

    fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        if let Some((conn, reason)) = self.due.first_key_value() {
            return Err(Failure::new(
                NAME,
                format!(
                    "{conn} was open when {} reached the gateway, which logged nothing after it",
                    spec_code(*reason).1
                ),
            ));
        }
        if !end.quiescent {
            return Ok(());
        }
        // Once the network has drained, every close frame sent has arrived (or broken its
        // connection, which the client also drops): a session closed with a code and still
        // open at its client never got its close frame. A peer close sends none.
        let unclosed = end.open.keys().find_map(|conn| {
            self.closed
                .get(conn)
                .filter(|r| **r != CloseReason::PeerClosed)
                .map(|r| (conn, *r))
        });
        match unclosed {
            Some((conn, reason)) => Err(Failure::new(
                NAME,
                format!(
                    "{conn} was closed by the gateway for {}, but its client never received a close frame",
                    spec_code(reason).1
                ),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_fixtures::{
        client_closed, closed, entry, finish_quiescent as end, message, opened,
    };

    fn log(c: &mut CloseCodesChecker, entries: &[LogEntry]) -> Result<(), Failure> {
        c.observe(&Obs::Log(entries))
    }

    /// A binary frame reaching the gateway on `conn` (passes: nothing is judged until the
    /// call's log).
    fn binary(c: &mut CloseCodesChecker, conn: u64) {
        c.observe(&Obs::BinaryFrame {
            conn: ConnId::new(conn),
        })
        .unwrap_or_else(|_| unreachable!());
    }

    #[test]
    fn every_reason_passes_with_its_code_and_fails_with_another() {
        let reasons = [
            (CloseReason::Shutdown, 1001),
            (CloseReason::BinaryFrame, 1003),
            (CloseReason::InvalidUtf8, 1007),
            (CloseReason::TokenExpired, 1008),
            (CloseReason::TokenRevoked, 1008),
            (CloseReason::ProtocolErrorBudget, 1008),
            (CloseReason::FrameTooBig, 1009),
            (CloseReason::SlowConsumer, 1013),
        ];
        let mut c = CloseCodesChecker::default();
        for (n, (reason, code)) in (1..).zip(reasons) {
            log(&mut c, &[opened(n, "alice"), closed(n, reason)])
                .unwrap_or_else(|_| unreachable!());
            assert_eq!(client_closed(&mut c, n, Some(code)), Ok(()), "{reason:?}");
        }
        log(
            &mut c,
            &[opened(20, "alice"), closed(20, CloseReason::Shutdown)],
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            message(client_closed(&mut c, 20, Some(1000))),
            "conn-20 received close code 1000, but the gateway logged it closed for a shutdown, which the protocol closes with 1001"
        );
        log(
            &mut c,
            &[opened(21, "alice"), closed(21, CloseReason::TokenRevoked)],
        )
        .unwrap_or_else(|_| unreachable!());
        assert_eq!(
            message(client_closed(&mut c, 21, Some(1011))),
            "conn-21 received close code 1011, but the gateway logged it closed for a revoked token, which the protocol closes with 1008"
        );
    }

    #[test]
    fn a_broken_transport_is_not_judged_and_an_unlogged_close_fails() {
        let mut c = CloseCodesChecker::default();
        log(&mut c, &[opened(1, "alice")]).unwrap_or_else(|_| unreachable!());
        // The transport broke before the gateway closed anything: no close frame.
        assert_eq!(client_closed(&mut c, 1, None), Ok(()));
        log(&mut c, &[opened(2, "alice")]).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            message(client_closed(&mut c, 2, Some(1008))),
            "conn-2 received close code 1008, but the gateway logged no close of it"
        );
    }

    #[test]
    fn a_close_frame_arriving_late_is_judged_by_the_logged_reason() {
        let mut c = CloseCodesChecker::default();
        log(
            &mut c,
            &[opened(1, "alice"), closed(1, CloseReason::SlowConsumer)],
        )
        .unwrap_or_else(|_| unreachable!());
        // The gateway crashed and came back before the frame arrived.
        log(&mut c, &[entry(Event::Restarted)]).unwrap_or_else(|_| unreachable!());
        assert_eq!(client_closed(&mut c, 1, Some(1013)), Ok(()));
    }

    #[test]
    fn a_binary_frame_must_close_an_open_session_as_binary() {
        let mut c = CloseCodesChecker::default();
        log(
            &mut c,
            &[opened(1, "alice"), opened(2, "alice"), opened(3, "alice")],
        )
        .unwrap_or_else(|_| unreachable!());
        binary(&mut c, 1);
        assert_eq!(log(&mut c, &[closed(1, CloseReason::BinaryFrame)]), Ok(()));
        // Ignored: the next entries are another call's.
        binary(&mut c, 2);
        assert_eq!(
            message(log(&mut c, &[closed(3, CloseReason::PeerClosed)])),
            "conn-2 was open when a binary frame reached the gateway, which did not close it"
        );
        let mut c = CloseCodesChecker::default();
        log(&mut c, &[opened(1, "alice")]).unwrap_or_else(|_| unreachable!());
        binary(&mut c, 1);
        assert_eq!(
            message(log(&mut c, &[closed(1, CloseReason::ProtocolErrorBudget)])),
            "conn-1 was open when a binary frame reached the gateway, which closed it as a spent protocol-error budget instead"
        );
        // Nothing logged after it by the end of the run.
        let mut c = CloseCodesChecker::default();
        log(&mut c, &[opened(1, "alice")]).unwrap_or_else(|_| unreachable!());
        binary(&mut c, 1);
        assert_eq!(
            message(end(&mut c, &[])),
            "conn-1 was open when a binary frame reached the gateway, which logged nothing after it"
        );
    }

    #[test]
    fn a_binary_frame_on_a_session_already_closed_keeps_the_first_reason() {
        let mut c = CloseCodesChecker::default();
        log(
            &mut c,
            &[
                opened(1, "alice"),
                closed(1, CloseReason::ProtocolErrorBudget),
            ],
        )
        .unwrap_or_else(|_| unreachable!());
        binary(&mut c, 1);
        assert_eq!(log(&mut c, &[opened(2, "alice")]), Ok(()));
        assert_eq!(client_closed(&mut c, 1, Some(1008)), Ok(()));
        assert_eq!(
            message(client_closed(&mut c, 2, Some(1003))),
            "conn-2 received close code 1003, but the gateway logged no close of it"
        );
    }

    #[test]
    fn a_shutdown_must_close_every_open_session_as_a_shutdown() {
        let mut c = CloseCodesChecker::default();
        log(
            &mut c,
            &[
                opened(1, "alice"),
                opened(2, "alice"),
                closed(1, CloseReason::PeerClosed),
            ],
        )
        .unwrap_or_else(|_| unreachable!());
        log(&mut c, &[opened(3, "alice")]).unwrap_or_else(|_| unreachable!());
        c.observe(&Obs::Shutdown).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            log(
                &mut c,
                &[
                    closed(2, CloseReason::Shutdown),
                    closed(3, CloseReason::Shutdown)
                ]
            ),
            Ok(())
        );
        log(
            &mut c,
            &[
                entry(Event::Restarted),
                opened(4, "alice"),
                opened(5, "alice"),
            ],
        )
        .unwrap_or_else(|_| unreachable!());
        c.observe(&Obs::Shutdown).unwrap_or_else(|_| unreachable!());
        assert_eq!(
            message(log(&mut c, &[closed(4, CloseReason::Shutdown)])),
            "conn-5 was open when a shutdown reached the gateway, which did not close it"
        );
    }

    #[test]
    fn a_session_closed_with_a_code_must_not_stay_open_at_its_client() {
        let mut c = CloseCodesChecker::default();
        log(
            &mut c,
            &[
                opened(1, "alice"),
                opened(2, "alice"),
                opened(3, "alice"),
                closed(1, CloseReason::TokenExpired),
                closed(2, CloseReason::PeerClosed),
            ],
        )
        .unwrap_or_else(|_| unreachable!());
        // A peer close sends no frame; conn-3 is still open at both ends.
        assert_eq!(end(&mut c, &[2, 3]), Ok(()));
        assert_eq!(
            message(end(&mut c, &[1, 3])),
            "conn-1 was closed by the gateway for an expired token, but its client never received a close frame"
        );
        assert_eq!(client_closed(&mut c, 1, Some(1008)), Ok(()));
        assert_eq!(end(&mut c, &[1, 3]), Ok(()));
    }
}
