//! The `log_replay` harness. Raw mode: the input, as text, is a journal given to
//! `replay_journal`, which must never panic and, when it accepts a journal with a footer,
//! must have folded to the footer's hash. Structured mode: the same bytes drive a short
//! gateway run (connects, frames, time, revocations, tickets, a restart); its journal must
//! replay to the live gateway's state hash. This module never writes files.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use arbitrary::Unstructured;

use super::drive::Drive;
use super::{OracleViolation, capped, fixtures};
use crate::protocol::HandshakeRequest;
use crate::token::Revocation;
use crate::{
    Config, ConnId, Gateway, HandshakeDecision, Input, JOURNAL_SCHEMA, JournalLine, Jti, Plants,
    ReplayError, Replayed, replay_journal,
};

const MAX_STEPS: usize = 24;
const USERS: [&str; 3] = ["ann", "ben", "cat"];
/// Canned client frames: every inbound type, plus garbage.
const MESSAGES: [&str; 11] = [
    r#"{"type":"ping"}"#,
    r#"{"type":"heartbeat"}"#,
    r#"{"type":"user_message","payload":{"content":"hello"}}"#,
    r#"{"type":"user_message","payload":{"content":"again","thread_id":"t-shared"}}"#,
    r#"{"type":"stop_agent","payload":{"run_id":"run-1"}}"#,
    r#"{"type":"subscribe_thread","payload":{"thread_id":"t-shared"}}"#,
    r#"{"type":"resume","payload":{"last_seq":0}}"#,
    r#"{"type":"broadcast","payload":{"text":"notice"}}"#,
    r#"{"type":"nope"}"#,
    "not json",
    r#"{"type":"user_message","payload":{"content":"x","thread_id":"thread-run-1"}}"#,
];

/// `log_replay` with the real `replay_journal` (see [`log_replay_with`]).
pub fn log_replay(data: &[u8]) -> Result<(), OracleViolation> {
    log_replay_with(data, &replay_journal)
}

/// `log_replay` with the replay function `replay`.
///
/// Oracle, raw mode: a journal `replay` accepts with a recorded footer hash folds to that
/// hash, and it folded no more entries than the text has lines. Structured mode: the
/// journal of a real run (header, every entry, footer) replays, confirms the footer, folds
/// every entry, and yields the live gateway's state hash.
pub fn log_replay_with(
    data: &[u8],
    replay: &dyn Fn(&str) -> Result<Replayed, ReplayError>,
) -> Result<(), OracleViolation> {
    let data = capped(data);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(r) = replay(text)
    {
        let inconsistent = |why: String| OracleViolation::ReplayInconsistent { why };
        if let Some(h) = &r.recorded_hash
            && *h != r.gateway.state_hash()
        {
            return Err(inconsistent(format!(
                "footer hash {h} but state {}",
                r.gateway.state_hash()
            )));
        }
        if r.entries > text.lines().count() {
            return Err(inconsistent(format!(
                "{} entries from fewer lines",
                r.entries
            )));
        }
    }
    let mut u = Unstructured::new(data);
    let (journal, live_hash, entries) = record_run(&mut u)?;
    let diverged = |why: String| OracleViolation::ReplayDiverged { entries, why };
    let r = replay(&journal).map_err(|e| diverged(e.to_string()))?;
    if r.recorded_hash.as_deref() != Some(live_hash.as_str()) {
        return Err(diverged(format!(
            "recorded hash {:?}, live {live_hash}",
            r.recorded_hash
        )));
    }
    if r.entries != entries {
        return Err(diverged(format!("folded {} entries", r.entries)));
    }
    if r.gateway.state_hash() != live_hash {
        return Err(diverged(format!("replayed {}", r.gateway.state_hash())));
    }
    Ok(())
}

/// The `log_replay` floor: the same raw replay, gateway run and replay of its journal,
/// without comparing any result.
pub fn log_replay_floor(data: &[u8]) -> Result<(), OracleViolation> {
    let data = capped(data);
    if let Ok(text) = std::str::from_utf8(data) {
        std::hint::black_box(replay_journal(text)).ok();
    }
    let (journal, _, _) = record_run(&mut Unstructured::new(data))?;
    std::hint::black_box(replay_journal(&journal)).ok();
    Ok(())
}

fn peer(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 2, n))
}

/// Runs the gateway as `u` says and returns its journal, its state hash and entry count.
pub(crate) fn record_run(
    u: &mut Unstructured<'_>,
) -> Result<(String, String, usize), OracleViolation> {
    let fixture = |what| OracleViolation::Fixture { what };
    let config = Config::default();
    let gw = Gateway::new(config.clone(), fixtures::ring()?).map_err(|_| fixture("gateway"))?;
    let mut drive = Drive::new(gw, fixtures::now());
    drive.feed(Vec::new());
    let mut open: Vec<ConnId> = Vec::new();
    let mut next_conn = 1;
    let steps = u.int_in_range(0..=MAX_STEPS).unwrap_or(0);
    for _ in 0..steps {
        match u.int_in_range(0u8..=7).unwrap_or(0) {
            0 | 1 => {
                let i = u.choose_index(USERS.len()).unwrap_or(0);
                let user = USERS.get(i).copied().unwrap_or("ann");
                let perms: &[&str] = if i == 0 { &["system:broadcast"] } else { &[] };
                let jti = format!("j-{user}-{next_conn}");
                let token = fixtures::access_token(user, &jti, drive.now.unix_secs(), 600, perms)?;
                let conn = ConnId::new(next_conn);
                next_conn += 1;
                let request = HandshakeRequest::new(peer(1))
                    .header("Authorization", &format!("Bearer {token}"));
                let seen = drive.input(Input::Handshake { conn, request });
                if matches!(seen.handshake, Some((_, HandshakeDecision::Accept { .. }))) {
                    open.push(conn);
                }
            }
            2 | 3 => {
                let Some(conn) = pick(u, &open) else { continue };
                let msg = u.choose(&MESSAGES).copied().unwrap_or("{}");
                drive.input(Input::Text {
                    conn,
                    data: msg.as_bytes(),
                });
            }
            4 => {
                let secs = u.int_in_range(0u64..=20).unwrap_or(1);
                drive.advance(Duration::from_secs(secs), u.ratio(4u8, 5u8).unwrap_or(true));
            }
            5 => {
                let Some(conn) = pick(u, &open) else { continue };
                open.retain(|c| *c != conn);
                drive.input(Input::Closed { conn });
            }
            6 => {
                let n = u.int_in_range(1..=next_conn).unwrap_or(1);
                let user = USERS.get(usize::try_from(n).unwrap_or(0) % USERS.len());
                let jti = Jti::parse(&format!("j-{}-{n}", user.copied().unwrap_or("ann")))
                    .ok_or(fixture("jti"))?;
                let exp = drive.now.saturating_add(Duration::from_secs(600));
                drive.feed(vec![Revocation::Jti { jti, exp }]);
            }
            _ => {
                let out = drive.gw.restart(drive.now);
                drive.log.extend(out.events);
                open.clear();
            }
        }
    }
    let mut lines = vec![JournalLine::Header {
        schema: JOURNAL_SCHEMA,
        config: Box::new(config),
        plants: Plants::NONE,
    }];
    let entries = drive.log.len();
    lines.extend(drive.log.into_iter().map(JournalLine::Entry));
    let hash = drive.gw.state_hash();
    lines.push(JournalLine::Footer {
        state_hash: hash.clone(),
        last_seq: drive.gw.last_log_seq(),
    });
    let mut text = String::new();
    for l in &lines {
        text.push_str(&l.render());
        text.push('\n');
    }
    Ok((text, hash, entries))
}

fn pick(u: &mut Unstructured<'_>, open: &[ConnId]) -> Option<ConnId> {
    if open.is_empty() {
        return None;
    }
    open.get(u.choose_index(open.len()).unwrap_or(0)).copied()
}

#[cfg(test)]
mod tests;
