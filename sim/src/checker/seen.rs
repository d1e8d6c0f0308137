//! Observations with their data owned, so they can wait in a batch or cross to another
//! thread: [`Seen`] is [`Obs`] without borrows.
//!
//! A stream frame travels as its shared text and is parsed again where it is checked; log
//! entries travel beside the observations (moved, never copied), and [`Seen::Log`] says how
//! many of them come next. Converting must never lose or reorder anything an [`Obs`] says.

use std::sync::Arc;

use gauntlet_core::token::Revocation;
use gauntlet_core::{ConnId, FamilyId, GatewayStats, Instant, Kid, LogEntry, UserId};

use super::{Checkers, CredTruth, Failure, Obs};
use crate::frame_view::FrameView;

/// An [`Obs`] with owned data.
pub(crate) enum Seen {
    /// The next this many log entries of the batch.
    Log(usize),
    Handshake {
        at: Instant,
        conn: ConnId,
        peer: std::net::IpAddr,
        truth: CredTruth,
        accepted_as: Option<UserId>,
        reject_code: Option<&'static str>,
        status: Option<(u16, Option<u64>)>,
        selected: Option<&'static str>,
        token_in_subprotocol: bool,
    },
    Frame {
        conn: ConnId,
        session_user: UserId,
        frame: Arc<str>,
    },
    RequestCorrupted {
        conn: ConnId,
    },
    ResumeSent {
        conn: ConnId,
        last_seq: u64,
    },
    Inbound {
        at: Instant,
        user: UserId,
        accepted: bool,
        control: bool,
    },
    Reauthed {
        at: Instant,
        conn: ConnId,
        session_user: UserId,
        truth: CredTruth,
    },
    Revocation {
        at: Instant,
        revocation: Revocation,
    },
    AuthServiceMisbehaved {
        what: String,
    },
    AuthFlow {
        rule: &'static str,
    },
    KeyRemoved {
        at: Instant,
        kid: Kid,
    },
    FamilyRevoked {
        at: Instant,
        auth_at: Instant,
        family: FamilyId,
    },
    LoggedOutEverywhere {
        at: Instant,
        auth_at: Instant,
        user: UserId,
    },
    TicketAnswer {
        at: Instant,
        user: UserId,
        refused: Option<&'static str>,
    },
    Stats(Box<GatewayStats>),
    TimersStopped,
    ClientClosed {
        conn: ConnId,
        code: Option<u16>,
    },
    BinaryFrame {
        conn: ConnId,
    },
    Shutdown,
    Keepalive {
        conn: ConnId,
        reply: &'static str,
        limited: bool,
    },
}

impl Seen {
    /// `obs` with its data owned; a log's entries are cloned onto `entries`.
    pub(crate) fn of(obs: &Obs<'_>, entries: &mut Vec<LogEntry>) -> Self {
        match obs {
            Obs::Log(log) => {
                entries.extend_from_slice(log);
                Seen::Log(log.len())
            }
            Obs::Handshake {
                at,
                conn,
                peer,
                truth,
                accepted_as,
                reject_code,
                status,
                selected,
                token_in_subprotocol,
            } => Seen::Handshake {
                at: *at,
                conn: *conn,
                peer: *peer,
                truth: (*truth).clone(),
                accepted_as: accepted_as.cloned(),
                reject_code: *reject_code,
                status: *status,
                selected: *selected,
                token_in_subprotocol: *token_in_subprotocol,
            },
            Obs::Frame {
                conn,
                session_user,
                frame,
                ..
            } => Seen::Frame {
                conn: *conn,
                session_user: (*session_user).clone(),
                frame: Arc::clone(frame),
            },
            Obs::RequestCorrupted { conn } => Seen::RequestCorrupted { conn: *conn },
            Obs::ResumeSent { conn, last_seq } => Seen::ResumeSent {
                conn: *conn,
                last_seq: *last_seq,
            },
            Obs::Inbound {
                at,
                user,
                accepted,
                control,
            } => Seen::Inbound {
                at: *at,
                user: (*user).clone(),
                accepted: *accepted,
                control: *control,
            },
            Obs::Reauthed {
                at,
                conn,
                session_user,
                truth,
            } => Seen::Reauthed {
                at: *at,
                conn: *conn,
                session_user: (*session_user).clone(),
                truth: (*truth).clone(),
            },
            Obs::Revocation { at, revocation } => Seen::Revocation {
                at: *at,
                revocation: (*revocation).clone(),
            },
            Obs::AuthServiceMisbehaved { what } => {
                Seen::AuthServiceMisbehaved { what: what.clone() }
            }
            Obs::AuthFlow { rule } => Seen::AuthFlow { rule },
            Obs::KeyRemoved { at, kid } => Seen::KeyRemoved {
                at: *at,
                kid: (*kid).clone(),
            },
            Obs::FamilyRevoked {
                at,
                auth_at,
                family,
            } => Seen::FamilyRevoked {
                at: *at,
                auth_at: *auth_at,
                family: (*family).clone(),
            },
            Obs::LoggedOutEverywhere { at, auth_at, user } => Seen::LoggedOutEverywhere {
                at: *at,
                auth_at: *auth_at,
                user: (*user).clone(),
            },
            Obs::TicketAnswer { at, user, refused } => Seen::TicketAnswer {
                at: *at,
                user: (*user).clone(),
                refused: *refused,
            },
            Obs::Stats(stats) => Seen::Stats(Box::new((*stats).clone())),
            Obs::TimersStopped => Seen::TimersStopped,
            Obs::ClientClosed { conn, code } => Seen::ClientClosed {
                conn: *conn,
                code: *code,
            },
            Obs::BinaryFrame { conn } => Seen::BinaryFrame { conn: *conn },
            Obs::Shutdown => Seen::Shutdown,
            Obs::Keepalive {
                conn,
                reply,
                limited,
            } => Seen::Keepalive {
                conn: *conn,
                reply,
                limited: *limited,
            },
        }
    }

    /// Shows the observation to `checkers`; a [`Seen::Log`] takes its entries from the
    /// front of `entries`, which then starts after them.
    pub(crate) fn show(
        &self,
        checkers: &mut Checkers,
        entries: &mut &[LogEntry],
    ) -> Result<(), Failure> {
        match self {
            Seen::Log(n) => {
                let (log, rest) = entries.split_at((*n).min(entries.len()));
                *entries = rest;
                checkers.observe(&Obs::Log(log))
            }
            Seen::Handshake {
                at,
                conn,
                peer,
                truth,
                accepted_as,
                reject_code,
                status,
                selected,
                token_in_subprotocol,
            } => checkers.observe(&Obs::Handshake {
                at: *at,
                conn: *conn,
                peer: *peer,
                truth,
                accepted_as: accepted_as.as_ref(),
                reject_code: *reject_code,
                status: *status,
                selected: *selected,
                token_in_subprotocol: *token_in_subprotocol,
            }),
            Seen::Frame {
                conn,
                session_user,
                frame,
            } => checkers.observe(&Obs::Frame {
                conn: *conn,
                session_user,
                frame,
                json: &FrameView::parse(frame),
            }),
            Seen::RequestCorrupted { conn } => {
                checkers.observe(&Obs::RequestCorrupted { conn: *conn })
            }
            Seen::ResumeSent { conn, last_seq } => checkers.observe(&Obs::ResumeSent {
                conn: *conn,
                last_seq: *last_seq,
            }),
            Seen::Inbound {
                at,
                user,
                accepted,
                control,
            } => checkers.observe(&Obs::Inbound {
                at: *at,
                user,
                accepted: *accepted,
                control: *control,
            }),
            Seen::Reauthed {
                at,
                conn,
                session_user,
                truth,
            } => checkers.observe(&Obs::Reauthed {
                at: *at,
                conn: *conn,
                session_user,
                truth,
            }),
            Seen::Revocation { at, revocation } => checkers.observe(&Obs::Revocation {
                at: *at,
                revocation,
            }),
            Seen::AuthServiceMisbehaved { what } => {
                checkers.observe(&Obs::AuthServiceMisbehaved { what: what.clone() })
            }
            Seen::AuthFlow { rule } => checkers.observe(&Obs::AuthFlow { rule }),
            Seen::KeyRemoved { at, kid } => checkers.observe(&Obs::KeyRemoved { at: *at, kid }),
            Seen::FamilyRevoked {
                at,
                auth_at,
                family,
            } => checkers.observe(&Obs::FamilyRevoked {
                at: *at,
                auth_at: *auth_at,
                family,
            }),
            Seen::LoggedOutEverywhere { at, auth_at, user } => {
                checkers.observe(&Obs::LoggedOutEverywhere {
                    at: *at,
                    auth_at: *auth_at,
                    user,
                })
            }
            Seen::TicketAnswer { at, user, refused } => checkers.observe(&Obs::TicketAnswer {
                at: *at,
                user,
                refused: *refused,
            }),
            Seen::Stats(stats) => checkers.observe(&Obs::Stats(stats)),
            Seen::TimersStopped => checkers.observe(&Obs::TimersStopped),
            Seen::ClientClosed { conn, code } => checkers.observe(&Obs::ClientClosed {
                conn: *conn,
                code: *code,
            }),
            Seen::BinaryFrame { conn } => checkers.observe(&Obs::BinaryFrame { conn: *conn }),
            Seen::Shutdown => checkers.observe(&Obs::Shutdown),
            Seen::Keepalive {
                conn,
                reply,
                limited,
            } => checkers.observe(&Obs::Keepalive {
                conn: *conn,
                reply,
                limited: *limited,
            }),
        }
    }
}
