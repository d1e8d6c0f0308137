//! The `frame_route` harness: user A (authenticated) sends the input as text frames while
//! user B, who owns a thread and a run, stays connected. It checks user isolation, the
//! documented frames and error codes, and the close rules of docs/protocol.md section 9. It must
//! never send B anything after setup, so whatever B receives came from A's frames.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use super::drive::{Drive, Observed};
use super::{Mode, OracleViolation, capped, evidence, fixtures};
use crate::protocol::HandshakeRequest;
use crate::{Config, ConnId, Gateway, HandshakeDecision, Input, Plants};

/// Most frames one input sends.
const MAX_FRAMES: usize = 64;
/// Clock step before each frame, and for an empty line.
const FRAME_STEP: Duration = Duration::from_millis(50);
const IDLE_STEP: Duration = Duration::from_secs(5);
/// docs/protocol.md section 9 defaults: frame limit, protocol-error budget and window.
const MAX_FRAME: usize = 8192;
const ERROR_BUDGET: usize = 10;
const ERROR_WINDOW: Duration = Duration::from_secs(60);

/// A first line equal to this grants A `system:broadcast`.
pub(crate) const BROADCAST_DIRECTIVE: &[u8] = b"#broadcast";
/// A line equal to this lets 10 s pass without a revocation feed (the view goes stale).
pub(crate) const STALE_DIRECTIVE: &[u8] = b"#stale";
const STALE_STEP: Duration = Duration::from_secs(10);
/// B's thread and run, created during setup.
pub(crate) const B_THREAD: &str = "bob-thread";
pub(crate) const B_RUN: &str = "run-2";

const DIRECT_TYPES: [&str; 8] = [
    "connection_established",
    "pong",
    "heartbeat_ack",
    "message_accepted",
    "subscribed",
    "reauthenticated",
    "resumed",
    "error",
];
const STREAM_TYPES: [&str; 8] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
    "agent_failed",
    "agent_cancelled",
    "system_notice",
];
const ERROR_CODES: [&str; 9] = [
    "BAD_MESSAGE",
    "UNKNOWN_TYPE",
    "FORBIDDEN",
    "NOT_FOUND",
    "RATE_LIMITED",
    "RESUME_GAP",
    "AUTH_UNAVAILABLE",
    "AUTH_FAILED",
    "LIMIT_EXCEEDED",
];
/// The codes that spend the protocol-error budget (docs/protocol.md section 9: bad messages and
/// unknown types, rate-limit abuse; `ErrorCode`'s docs add forbidden requests).
const BUDGET_CODES: [&str; 4] = ["BAD_MESSAGE", "UNKNOWN_TYPE", "RATE_LIMITED", "FORBIDDEN"];

/// `frame_route` on the real, plant-free gateway (see [`frame_route_with`]).
pub fn frame_route(data: &[u8]) -> Result<(), OracleViolation> {
    frame_route_with(data, Plants::NONE)
}

/// `frame_route` on a gateway with `plants` switched on.
///
/// The input is split on `\n` into at most 64 frames; an empty line lets 5 s pass instead,
/// a line `#stale` lets 10 s pass without a revocation feed, and a first line `#broadcast`
/// grants A `system:broadcast`. Before A connects, an earlier connection of alice ran one
/// agent run, so `resume` has history to send. Oracle: B receives only its
/// own stream (user `bob`, its thread and run, gap-free `seq`; system notices only when A
/// may broadcast); A receives only documented frames, never another user's, with
/// documented error codes; B is never closed; A is closed exactly when the protocol says:
/// 1009 for a frame over 8192 bytes, 1007 for invalid UTF-8, 1008 when more than 10
/// budget-counted errors fall within 60 s.
pub fn frame_route_with(data: &[u8], plants: Plants) -> Result<(), OracleViolation> {
    frame_route_in(data, plants, Mode::Oracle)
}

/// The `frame_route` floor: the same setup and frames through the plant-free gateway,
/// without reading or judging anything it sends.
pub fn frame_route_floor(data: &[u8]) -> Result<(), OracleViolation> {
    frame_route_in(data, Plants::NONE, Mode::Floor)
}

fn frame_route_in(data: &[u8], plants: Plants, mode: Mode) -> Result<(), OracleViolation> {
    let data = capped(data);
    let (may_broadcast, body) = match data.strip_prefix(BROADCAST_DIRECTIVE) {
        Some(rest) => (true, rest.strip_prefix(b"\n").unwrap_or(rest)),
        None => (false, data),
    };
    let mut w = World::start(plants, may_broadcast)?;
    for (index, frame) in body.split(|b| *b == b'\n').take(MAX_FRAMES).enumerate() {
        if w.a_closed {
            break;
        }
        if frame.is_empty() || frame == STALE_DIRECTIVE {
            let stale = !frame.is_empty();
            let step = if stale { STALE_STEP } else { IDLE_STEP };
            let seen = w.drive.advance(step, !stale);
            if mode == Mode::Oracle {
                w.check(&seen, index, None)?;
            }
            continue;
        }
        let seen = w.drive.advance(FRAME_STEP, true);
        if mode == Mode::Oracle {
            w.check(&seen, index, None)?;
        }
        let seen = w.drive.input(Input::Text {
            conn: A,
            data: frame,
        });
        if mode == Mode::Floor {
            // Without the check, a close is read straight off what the gateway sent.
            w.a_closed |= seen.closes.iter().any(|(c, _)| *c == A);
            continue;
        }
        let expected = w.expected_close(frame, &seen);
        // A resume sent while another is still re-sending is refused; the one in progress
        // is held to its own request, not this one.
        let idle = w.a_stream.count == 0;
        w.resume_asked = resume_last_seq(frame).filter(|_| idle);
        w.check(&seen, index, expected)?;
        w.resume_asked = None;
    }
    Ok(())
}

const A: ConnId = ConnId::new(1);
const B: ConnId = ConnId::new(2);

#[derive(Clone)]
struct World {
    drive: Drive,
    may_broadcast: bool,
    a_closed: bool,
    b_seq: u64,
    a_errors: VecDeque<crate::Instant>,
    a_stream: AStream,
    /// The `last_seq` of the frame A just sent, when it reads as a `resume`.
    resume_asked: Option<u64>,
}

/// What A has been sent of alice's stream. A is alice's only connection after setup, and
/// nothing here loses frames, so her live events reach it gap-free; seqs at or below the
/// live ones are a resume's backfill.
#[derive(Clone, Debug, Default)]
struct AStream {
    /// The highest seq sent live (alice's latest when A connected, then each live event).
    live: u64,
    /// The backfill sent since the last `resumed`: its first seq, and how many followed it
    /// one by one (so the next is due at `first + count`).
    first: Option<u64>,
    count: u64,
    /// The oldest retained seq a `RESUME_GAP` named, where the backfill may start instead.
    gap_oldest: Option<u64>,
}

/// `last_seq` of `frame` when it is a `resume` with a whole-number `last_seq`. Read apart
/// from the gateway's parser, so a resume it answers is held to what the client asked.
fn resume_last_seq(frame: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(frame).ok()?;
    if v["type"] != "resume" {
        return None;
    }
    v["payload"]["last_seq"].as_u64()
}

fn peer(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

impl World {
    /// The world after setup. On the plant-free gateway it is a copy of one built once per
    /// process for each `may_broadcast`: setup reads nothing of the input, so the copy is
    /// the state a fresh setup reaches, and it spares every input three handshakes, an agent
    /// run and five clock steps. Planted gateways (tests only) are set up afresh.
    fn start(plants: Plants, may_broadcast: bool) -> Result<Self, OracleViolation> {
        static WORLDS: OnceLock<[Result<World, OracleViolation>; 2]> = OnceLock::new();
        if plants != Plants::NONE {
            return Self::setup(plants, may_broadcast);
        }
        let worlds = WORLDS.get_or_init(|| {
            [false, true].map(|may_broadcast| Self::setup(Plants::NONE, may_broadcast))
        });
        let [without, with] = worlds;
        if may_broadcast { with } else { without }.clone()
    }

    fn setup(plants: Plants, may_broadcast: bool) -> Result<Self, OracleViolation> {
        let fixture = |what| OracleViolation::Fixture { what };
        let now = fixtures::now();
        let gw = Gateway::with_plants(Config::default(), fixtures::ring()?, plants)
            .map_err(|_| fixture("gateway"))?;
        let mut drive = Drive::new(gw, now);
        drive.feed(Vec::new());
        let perms: &[&str] = if may_broadcast {
            &["system:broadcast"]
        } else {
            &[]
        };
        let secs = now.unix_secs();
        let a_token = fixtures::access_token("alice", "jti-alice", secs, 600, perms)?;
        let b_token = fixtures::access_token("bob", "jti-bob", secs, 600, &[])?;
        // Alice's history: a finished run on an earlier connection, before A exists.
        let earlier = ConnId::new(3);
        let request =
            HandshakeRequest::new(peer(1)).header("Authorization", &format!("Bearer {a_token}"));
        drive.input(Input::Handshake {
            conn: earlier,
            request,
        });
        drive.input(Input::Text {
            conn: earlier,
            data: br#"{"type":"user_message","payload":{"content":"earlier"}}"#,
        });
        for _ in 0..5 {
            drive.advance(Duration::from_secs(1), true);
        }
        drive.input(Input::Closed { conn: earlier });
        let mut a_latest = None;
        for (conn, token, n) in [(A, a_token, 1), (B, b_token, 2)] {
            let request =
                HandshakeRequest::new(peer(n)).header("Authorization", &format!("Bearer {token}"));
            let seen = drive.input(Input::Handshake { conn, request });
            if !matches!(seen.handshake, Some((_, HandshakeDecision::Accept { .. }))) {
                return Err(fixture("handshake of alice and bob"));
            }
            if conn == A {
                a_latest = seen
                    .sends
                    .iter()
                    .filter_map(|(_, t)| serde_json::from_str::<Value>(t).ok())
                    .find(|v| v["type"] == "connection_established")
                    .and_then(|v| v["latest_seq"].as_u64());
            }
        }
        let start = format!(
            r#"{{"type":"user_message","payload":{{"content":"hi","thread_id":"{B_THREAD}"}}}}"#
        );
        let seen = drive.input(Input::Text {
            conn: B,
            data: start.as_bytes(),
        });
        let b_seq = last_seq(&seen, B);
        if b_seq == 0 {
            return Err(fixture("bob's run"));
        }
        let alice_latest = a_latest
            .filter(|n| *n > 0)
            .ok_or_else(|| fixture("alice's history"))?;
        Ok(Self {
            drive,
            may_broadcast,
            a_closed: false,
            b_seq,
            a_errors: VecDeque::new(),
            a_stream: AStream {
                live: alice_latest,
                ..AStream::default()
            },
            resume_asked: None,
        })
    }

    /// The close code docs/protocol.md section 9 requires after A sent `frame` and got `seen`.
    fn expected_close(&mut self, frame: &[u8], seen: &Observed) -> Option<u16> {
        if frame.len() > MAX_FRAME {
            return Some(1009);
        }
        if std::str::from_utf8(frame).is_err() {
            return Some(1007);
        }
        let now = self.drive.now;
        let mut exceeded = false;
        for (conn, text) in &seen.sends {
            let counted = serde_json::from_str::<Value>(text).ok().is_some_and(|v| {
                v["type"] == "error" && BUDGET_CODES.iter().any(|c| v["code"] == *c)
            });
            if *conn != A || !counted {
                continue;
            }
            while self
                .a_errors
                .front()
                .is_some_and(|t| now.saturating_since(*t) >= ERROR_WINDOW)
            {
                self.a_errors.pop_front();
            }
            self.a_errors.push_back(now);
            exceeded |= self.a_errors.len() > ERROR_BUDGET;
        }
        exceeded.then_some(1008)
    }

    fn check(
        &mut self,
        seen: &Observed,
        frame_index: usize,
        expected_a: Option<u16>,
    ) -> Result<(), OracleViolation> {
        for (conn, text) in &seen.sends {
            if *conn == A {
                self.check_a(text)?;
            } else {
                self.check_b(*conn, text)?;
            }
        }
        let closed = |c: ConnId| seen.closes.iter().find(|(x, _)| *x == c).map(|(_, n)| *n);
        let wrong = |conn: ConnId, expected, actual| OracleViolation::WrongClose {
            conn: conn.get(),
            frame_index,
            expected,
            actual,
        };
        if let Some(code) = closed(B) {
            return Err(wrong(B, None, Some(code)));
        }
        let actual = closed(A);
        if actual != expected_a {
            return Err(wrong(A, expected_a, actual));
        }
        self.a_closed |= actual.is_some();
        Ok(())
    }

    fn check_a(&mut self, text: &str) -> Result<(), OracleViolation> {
        let bad = || OracleViolation::UndocumentedFrame {
            conn: A.get(),
            frame: evidence(text.as_bytes(), 300),
        };
        let v: Value = serde_json::from_str(text).map_err(|_| bad())?;
        let ty = v["type"].as_str().ok_or_else(bad)?;
        if !DIRECT_TYPES.contains(&ty) && !STREAM_TYPES.contains(&ty) {
            return Err(bad());
        }
        if ty == "error" && !ERROR_CODES.iter().any(|c| v["code"] == *c) {
            return Err(bad());
        }
        if v.get("user_id").is_some_and(|u| u != "alice") {
            return Err(OracleViolation::CrossUserDelivery {
                conn: A.get(),
                owner: "alice".into(),
                frame: evidence(text.as_bytes(), 300),
            });
        }
        self.check_a_stream(ty, &v)
            .map_err(|why| OracleViolation::StreamOrder {
                conn: A.get(),
                why,
                frame: evidence(text.as_bytes(), 300),
            })
    }

    /// Holds A's stream frames and `resumed` replies to docs/protocol.md section 14.
    fn check_a_stream(&mut self, ty: &str, v: &Value) -> Result<(), String> {
        let a = &mut self.a_stream;
        if ty == "error" && v["code"] == "RESUME_GAP" {
            a.gap_oldest = v["oldest_seq"].as_u64();
            return Ok(());
        }
        if ty == "resumed" {
            let (from, count) = (v["from_seq"].as_u64(), v["count"].as_u64());
            let sent = (a.first.take(), std::mem::take(&mut a.count));
            let gap = a.gap_oldest.take();
            if count != Some(sent.1) {
                return Err(format!("resumed counts {count:?}, {} were re-sent", sent.1));
            }
            if sent.1 > 0 && from != sent.0 {
                return Err(format!(
                    "resumed from {from:?}, the re-sent began at {:?}",
                    sent.0
                ));
            }
            if let Some(asked) = self.resume_asked
                && from != asked.checked_add(1)
                && from != gap
            {
                return Err(format!("resume after {asked} answered from {from:?}"));
            }
            return Ok(());
        }
        let Some(seq) = v["seq"].as_u64().filter(|_| STREAM_TYPES.contains(&ty)) else {
            return Ok(());
        };
        if seq > a.live {
            if Some(seq) != a.live.checked_add(1) {
                return Err(format!("live seq {seq} after {}", a.live));
            }
            a.live = seq;
            return Ok(());
        }
        let expected = match (a.first, self.resume_asked) {
            (Some(first), _) => first.checked_add(a.count),
            (None, Some(asked)) => a.gap_oldest.or(asked.checked_add(1)),
            (None, None) => Some(seq),
        };
        if Some(seq) != expected {
            return Err(format!("re-sent seq {seq} where {expected:?} was due"));
        }
        a.first.get_or_insert(seq);
        a.count += 1;
        Ok(())
    }

    fn check_b(&mut self, conn: ConnId, text: &str) -> Result<(), OracleViolation> {
        let foreign = || OracleViolation::CrossUserDelivery {
            conn: conn.get(),
            owner: "bob".into(),
            frame: evidence(text.as_bytes(), 300),
        };
        let v: Value = serde_json::from_str(text).map_err(|_| foreign())?;
        let ty = v["type"].as_str().unwrap_or("");
        let own_stream = conn == B
            && v["user_id"] == "bob"
            && (ty != "system_notice" || self.may_broadcast)
            && STREAM_TYPES.contains(&ty)
            && v.get("thread_id").is_none_or(|t| t == B_THREAD)
            && v.get("run_id").is_none_or(|r| r == B_RUN);
        if !own_stream {
            return Err(foreign());
        }
        // B sends nothing after setup, so only another user can have stopped its run.
        if ty == "agent_cancelled" {
            return Err(OracleViolation::ActedForAnotherUser {
                conn: conn.get(),
                frame: evidence(text.as_bytes(), 300),
            });
        }
        if v["seq"].as_u64() != Some(self.b_seq + 1) {
            return Err(OracleViolation::UndocumentedFrame {
                conn: conn.get(),
                frame: evidence(text.as_bytes(), 300),
            });
        }
        self.b_seq += 1;
        Ok(())
    }
}

/// The highest stream `seq` sent to `conn` in `seen` (0 if none).
fn last_seq(seen: &Observed, conn: ConnId) -> u64 {
    seen.sends
        .iter()
        .filter(|(c, _)| *c == conn)
        .filter_map(|(_, t)| serde_json::from_str::<Value>(t).ok()?["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
