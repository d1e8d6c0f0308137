//! Event sourcing: the log folds back into the same state, survives a crash, and a corrupt
//! log is a typed error.

mod common;

use std::time::Duration;

use common::{Harness, ring};
use gauntlet_core::token::Revocation;
use gauntlet_core::{
    Checkpoint, ConnId, Event, Gateway, Input, Jti, LogEntry, LogSeq, Plants, ReplayError, UserId,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

const USERS: [&str; 4] = ["alice", "bob", "carol", "ops"];

/// Drives `steps` random inputs, honest and hostile, from `seed`.
fn random_run(seed: u64, steps: usize) -> Harness {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut h = Harness::new();
    let mut open: Vec<(ConnId, &str)> = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    for _ in 0..steps {
        let pick = rng.random_range(0..100u32);
        match pick {
            0..=14 => {
                let user = USERS[rng.random_range(0..USERS.len())];
                let perms = if user == "ops" {
                    json!({"permissions":["system:broadcast"]})
                } else {
                    json!({})
                };
                let t = h.token_with(user, rng.random_range(20..400), perms);
                let req = h.bearer(&t);
                tokens.push(t);
                if let (c, gauntlet_core::HandshakeDecision::Accept { .. }) = h.handshake(req) {
                    open.push((c, user));
                }
            }
            15..=60 if !open.is_empty() => {
                let (c, _) = open[rng.random_range(0..open.len())];
                let msg = match rng.random_range(0..10u32) {
                    0 => json!({"type":"ping"}).to_string(),
                    1 => json!({"type":"user_message","payload":{"content":"go","thread_id":format!("t{}", rng.random_range(0..6u32))}}).to_string(),
                    2 => json!({"type":"user_message","payload":{"content":"go"}}).to_string(),
                    3 => json!({"type":"stop_agent","payload":{"run_id":format!("run-{}", rng.random_range(1..20u32))}}).to_string(),
                    4 => json!({"type":"subscribe_thread","payload":{"thread_id":format!("t{}", rng.random_range(0..6u32))}}).to_string(),
                    5 => json!({"type":"resume","payload":{"last_seq":rng.random_range(0..30u64)}}).to_string(),
                    6 => json!({"type":"broadcast","payload":{"text":"note"}}).to_string(),
                    7 => "{not json".to_string(),
                    8 => {
                        let t = tokens.get(rng.random_range(0..tokens.len().max(1))).cloned().unwrap_or_default();
                        json!({"type":"reauth","payload":{"token":t}}).to_string()
                    }
                    _ => json!({"type":"heartbeat"}).to_string(),
                };
                h.send(c, &msg);
            }
            61..=66 if !open.is_empty() => {
                let i = rng.random_range(0..open.len());
                let (c, _) = open.swap_remove(i);
                h.input(Input::Closed { conn: c });
            }
            67..=69 if !tokens.is_empty() => {
                let t = &tokens[rng.random_range(0..tokens.len())];
                let jti = Jti::parse(&Harness::jti_of(t)).expect("jti");
                h.feed(vec![Revocation::Jti {
                    jti,
                    exp: h.now.saturating_add(Duration::from_secs(900)),
                }]);
            }
            70..=72 if !tokens.is_empty() => {
                let t = tokens[rng.random_range(0..tokens.len())].clone();
                h.input(Input::IssueTicket {
                    request: 1,
                    authorization: Some(format!("Bearer {t}")),
                });
            }
            _ => h.advance(Duration::from_millis(rng.random_range(10..1500))),
        }
        open.retain(|(c, _)| !h.closed.contains_key(c));
    }
    h
}

#[test]
fn random_inputs_replay_to_the_same_state_hash() {
    for seed in 0..4 {
        let h = random_run(seed, 3000);
        assert!(
            h.log.len() > 500,
            "seed {seed}: only {} events",
            h.log.len()
        );
        let kinds: std::collections::BTreeSet<&str> =
            h.log.iter().map(|e| event_kind(&e.event)).collect();
        for k in [
            "session_opened",
            "session_closed",
            "stream_appended",
            "stream_broadcast",
            "run_started",
            "thread_created",
            "feed_synced",
            "ticket_issued",
        ] {
            assert!(kinds.contains(k), "seed {seed}: no {k} in the log");
        }
        // Through JSON Lines, as a log file would be.
        let lines: Vec<String> = h.log.iter().map(LogEntry::to_json_line).collect();
        let parsed: Vec<LogEntry> = lines
            .iter()
            .map(|l| LogEntry::from_json_line(l).expect("parse"))
            .collect();
        let replayed =
            Gateway::replay(h.config.clone(), ring(), Plants::NONE, parsed).expect("replay");
        assert_eq!(replayed.state_hash(), h.gw.state_hash(), "seed {seed}");
        assert_eq!(replayed.last_log_seq(), h.gw.last_log_seq());
    }
}

#[test]
fn same_inputs_give_byte_identical_logs() {
    let a: Vec<String> = random_run(42, 1500)
        .log
        .iter()
        .map(LogEntry::to_json_line)
        .collect();
    let b: Vec<String> = random_run(42, 1500)
        .log
        .iter()
        .map(LogEntry::to_json_line)
        .collect();
    let c: Vec<String> = random_run(43, 1500)
        .log
        .iter()
        .map(LogEntry::to_json_line)
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn event_kind(e: &Event) -> &'static str {
    match e {
        Event::FeedSynced { .. } => "feed_synced",
        Event::SessionOpened { .. } => "session_opened",
        Event::SessionReauthed { .. } => "session_reauthed",
        Event::SessionClosed { .. } => "session_closed",
        Event::Subscribed { .. } => "subscribed",
        Event::ThreadCreated { .. } => "thread_created",
        Event::RunStarted { .. } => "run_started",
        Event::StreamAppended { .. } => "stream_appended",
        Event::StreamBroadcast { .. } => "stream_broadcast",
        Event::TicketIssued { .. } => "ticket_issued",
        Event::TicketConsumed { .. } => "ticket_consumed",
        Event::Restarted => "restarted",
    }
}

#[test]
fn crash_restart_from_log_loses_no_acknowledged_event() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    for i in 0..3 {
        h.send_json(
            c,
            json!({"type":"user_message","payload":{"content":format!("m{i}")}}),
        );
        h.advance(Duration::from_millis(150));
    }
    let seen = h.seqs(c);
    let last_seen = *seen.last().expect("some events");
    // Crash: the gateway and its connections are gone; only the log survives.
    let log = h.log.clone();
    let acknowledged: Vec<u64> = log
        .iter()
        .filter_map(|e| match &e.event {
            Event::StreamAppended { user, seq, .. } if user.as_str() == "alice" => Some(seq.get()),
            _ => None,
        })
        .collect();
    let mut g = Gateway::replay(h.config.clone(), ring(), Plants::NONE, log).expect("replay");
    let out = g.restart(h.now);
    assert!(matches!(
        out.events.last().map(|e| &e.event),
        Some(Event::Restarted)
    ));
    h.absorb(&out);
    h.gw = g;
    h.feed(vec![]);
    // The runs were in flight; they continue after the restart.
    h.advance(Duration::from_secs(10));
    let c2 = h.connect("alice");
    h.send_json(
        c2,
        json!({"type":"resume","payload":{"last_seq":last_seen}}),
    );
    let after_restart = h.seqs(c2);
    let mut all: Vec<u64> = seen.clone();
    all.extend(after_restart);
    let latest = h.gw.latest_seq(&UserId::parse("alice").expect("id")).get();
    assert_eq!(
        all,
        (1..=latest).collect::<Vec<_>>(),
        "every event, once, in order"
    );
    for seq in acknowledged {
        assert!(all.contains(&seq), "acknowledged event {seq} lost");
    }
    // Every run finished with exactly one terminal event.
    let terminals = h.log.iter().filter(|e| matches!(&e.event, Event::StreamAppended { entry, .. } if matches!(entry.kind().as_str(), "agent_completed" | "agent_failed" | "agent_cancelled"))).count();
    assert_eq!(terminals, 3);
}

#[test]
fn corrupt_logs_are_typed_errors() {
    let h = random_run(7, 400);
    let log = h.log.clone();
    assert!(log.len() > 20);
    let mut skipped = log.clone();
    skipped.remove(5);
    assert!(matches!(
        Gateway::replay(h.config.clone(), ring(), Plants::NONE, skipped),
        Err(ReplayError::OutOfOrder { expected, .. }) if expected == LogSeq::new(6)
    ));
    // Renumber after dropping a stream event: the user's seq now has a gap.
    let pos = log
        .iter()
        .position(|e| matches!(e.event, Event::StreamAppended { .. }))
        .expect("a stream event");
    let mut gap: Vec<LogEntry> = log.clone();
    gap.remove(pos);
    for (i, e) in gap.iter_mut().enumerate() {
        e.seq = LogSeq::new(i as u64 + 1);
    }
    let err = Gateway::replay(h.config.clone(), ring(), Plants::NONE, gap).err();
    assert!(
        matches!(
            err,
            Some(ReplayError::StreamSeq { .. } | ReplayError::Run { .. })
        ),
        "{err:?}"
    );
    let mut closed_twice = log.clone();
    let close = log
        .iter()
        .find(|e| matches!(e.event, Event::SessionClosed { .. }))
        .cloned()
        .expect("a close");
    let mut dup = close.clone();
    dup.seq = LogSeq::new(log.len() as u64 + 1);
    dup.at = log.last().map_or(dup.at, |e| e.at);
    closed_twice.push(dup);
    assert!(matches!(
        Gateway::replay(h.config.clone(), ring(), Plants::NONE, closed_twice),
        Err(ReplayError::Connection { .. })
    ));
}

#[test]
fn journal_round_trips_and_detects_tampering() {
    use gauntlet_core::{JournalLine, replay_journal};
    let h = random_run(11, 800);
    let mut lines = vec![
        JournalLine::Header {
            schema: gauntlet_core::JOURNAL_SCHEMA,
            config: Box::new(h.config.clone()),
            plants: Plants::NONE,
        }
        .render(),
    ];
    lines.extend(h.log.iter().map(|e| JournalLine::Entry(e.clone()).render()));
    let footer = JournalLine::Footer {
        state_hash: h.gw.state_hash(),
        last_seq: h.gw.last_log_seq(),
    };
    lines.push(footer.render());
    let text = lines.join("\n");
    let r = replay_journal(&text).expect("replays");
    assert_eq!(r.recorded_hash.as_deref(), Some(h.gw.state_hash().as_str()));
    assert_eq!(
        (r.entries, r.gateway.state_hash()),
        (h.log.len(), h.gw.state_hash())
    );
    // Without the footer (a crash mid-write) it still replays.
    let cut = lines[..lines.len() - 1].join("\n");
    assert_eq!(
        replay_journal(&cut).map(|r| r.recorded_hash).ok(),
        Some(None)
    );
    // A footer with another hash is a mismatch, a missing header a parse error.
    let mut forged = lines.clone();
    let last = forged.len() - 1;
    forged[last] = JournalLine::Footer {
        state_hash: "0".repeat(64),
        last_seq: h.gw.last_log_seq(),
    }
    .render();
    assert!(matches!(
        replay_journal(&forged.join("\n")),
        Err(ReplayError::HashMismatch { .. })
    ));
    assert!(matches!(
        replay_journal(&lines[1..].join("\n")),
        Err(ReplayError::Parse { line: 1, .. })
    ));
    // A journal of schema 3 (a broadcast as one `stream_appended` per user) is refused as
    // unsupported, not reported as corrupt, and the reason names both schemas.
    assert_eq!(gauntlet_core::JOURNAL_SCHEMA, 4);
    let mut old = lines.clone();
    old[0] = JournalLine::Header {
        schema: 3,
        config: Box::new(h.config.clone()),
        plants: Plants::NONE,
    }
    .render();
    match replay_journal(&old.join("\n")) {
        Err(ReplayError::Parse { line: 1, reason }) => assert_eq!(
            reason,
            "unsupported schema 3 (this build reads schema 4; replay the journal with the \
             build that wrote it)"
        ),
        other => panic!(
            "expected an unsupported schema, got {:?}",
            other.map(|r| r.entries)
        ),
    }
    assert!(matches!(
        replay_journal("garbage"),
        Err(ReplayError::Parse { .. })
    ));
}

#[test]
fn checkpoint_folded_in_steps_restores_what_a_full_replay_builds() {
    let h = random_run(7, 2000);
    let mut cp = Checkpoint::new(h.config.clone(), Plants::NONE).expect("config");
    for (i, e) in h.log.iter().enumerate() {
        cp.fold(e).expect("fold");
        if i % 400 == 399 || i + 1 == h.log.len() {
            let prefix = h.log[..=i].to_vec();
            let mut full =
                Gateway::replay(h.config.clone(), ring(), Plants::NONE, prefix).expect("replay");
            assert_eq!(
                cp.state_hash(),
                full.state_hash(),
                "after {} entries",
                i + 1
            );
            let mut restored = cp.restore(ring()).expect("restore");
            let (a, b) = (full.restart(h.now), restored.restart(h.now));
            assert_eq!(a.events, b.events, "after {} entries", i + 1);
            assert_eq!(a.next_deadline, b.next_deadline);
            assert_eq!(full.state_hash(), restored.state_hash());
        }
    }
    assert_eq!(cp.state_hash(), h.gw.state_hash());
}

#[test]
fn gateway_restored_from_checkpoint_keeps_the_feed_revocations() {
    let mut h = Harness::new();
    let t = h.token_with("alice", 300, json!({}));
    let jti = Jti::parse(&Harness::jti_of(&t)).expect("jti");
    h.feed(vec![Revocation::Jti {
        jti,
        exp: h.now.saturating_add(Duration::from_secs(900)),
    }]);
    let mut cp = Checkpoint::new(h.config.clone(), Plants::NONE).expect("config");
    for e in &h.log {
        cp.fold(e).expect("fold");
    }
    h.gw = cp.restore(ring()).expect("restore");
    h.feed(vec![]);
    let req = h.bearer(&t);
    let (_, decision) = h.handshake(req);
    assert!(
        matches!(decision, gauntlet_core::HandshakeDecision::Reject { status, code: "revoked", .. } if status.as_u16() == 401),
        "{decision:?}"
    );
    let fresh = h.token_with("alice", 300, json!({}));
    let req = h.bearer(&fresh);
    assert!(matches!(
        h.handshake(req).1,
        gauntlet_core::HandshakeDecision::Accept { .. }
    ));
}

#[test]
fn rejected_stream_entry_leaves_the_folded_state_unchanged() {
    let h = random_run(3, 1500);
    let at = h
        .log
        .iter()
        .position(
            |e| matches!(&e.event, Event::StreamAppended { entry, .. } if entry.run().is_some()),
        )
        .expect("a run event");
    let mut cp = Checkpoint::new(h.config.clone(), Plants::NONE).expect("config");
    for e in &h.log[..at] {
        cp.fold(e).expect("fold");
    }
    let before = cp.state_hash();
    let mut bad = h.log[at].clone();
    if let Event::StreamAppended { seq, .. } = &mut bad.event {
        *seq = seq.next();
    }
    assert!(matches!(cp.fold(&bad), Err(ReplayError::StreamSeq { .. })));
    assert_eq!(cp.state_hash(), before, "a refused entry changed the state");
    cp.fold(&h.log[at]).expect("the genuine entry still folds");
}

#[test]
fn replay_with_a_config_it_refuses_is_a_parse_error_at_line_zero() {
    let mut config = gauntlet_core::Config::default();
    config.limits.max_frame_bytes = 0;
    let err = Gateway::replay(config, ring(), Plants::NONE, Vec::new()).err();
    assert_eq!(
        err,
        Some(ReplayError::Parse {
            line: 0,
            reason: "limits.max_frame_bytes must be greater than zero".to_owned(),
        })
    );
}

#[test]
fn replayed_session_first_frame_gets_a_full_rate_bucket() {
    // A replay restores sessions but not the soft rate buckets: the first frame after it
    // creates its user's bucket, full, and charges it.
    let mut h = Harness::new();
    let c = h.connect("alice");
    for _ in 0..20 {
        h.send(c, r#"{"type":"ping"}"#);
    }
    assert_eq!(h.gw.rate_limited_frames(), 0);
    let mut g =
        Gateway::replay(h.config.clone(), ring(), Plants::NONE, h.log.clone()).expect("replay");
    assert!(g.is_open(c), "the session was restored");
    let mut replies = Vec::new();
    for _ in 0..21 {
        let out = g.handle(
            h.now,
            Input::Text {
                conn: c,
                data: br#"{"type":"ping"}"#,
            },
        );
        for (conn, frame) in &out.sends {
            assert_eq!(*conn, c);
            let v: serde_json::Value = serde_json::from_str(frame).expect("json");
            let code = v["code"].as_str().unwrap_or_default();
            replies.push(format!("{}{code}", v["type"].as_str().unwrap_or_default()));
        }
        let frames = out.sends.len();
        let acked = g.handle(h.now, Input::Sent { conn: c, frames });
        assert!(acked.sends.is_empty() && acked.closes.is_empty());
    }
    let mut want = vec!["pong".to_string(); 20];
    want.push("errorRATE_LIMITED".to_string());
    assert_eq!(replies, want, "a full bucket of 20, then refused");
    assert_eq!(g.rate_limited_frames(), 1);
}

/// Folds `log` with `extra` appended as its next entry.
fn replay_with(h: &Harness, log: &[LogEntry], extra: Event) -> Result<Gateway, ReplayError> {
    let last = log.last().expect("a log");
    let mut tampered = log.to_vec();
    tampered.push(LogEntry {
        seq: LogSeq::new(log.len() as u64 + 1),
        at: last.at,
        event: extra,
    });
    Gateway::replay(h.config.clone(), ring(), Plants::NONE, tampered)
}

#[test]
fn replay_of_an_event_contradicting_the_folded_state_is_a_typed_error() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    let fresh = h.token("alice");
    h.send_json(c, json!({"type":"reauth","payload":{"token":fresh}}));
    h.send_json(
        c,
        json!({"type":"user_message","payload":{"content":"x","thread_id":"t-a"}}),
    );
    h.send_json(
        c,
        json!({"type":"subscribe_thread","payload":{"thread_id":"t-a"}}),
    );
    let t = h.token("alice");
    let ticket = h.input(Input::IssueTicket {
        request: 1,
        authorization: Some(format!("Bearer {t}")),
    });
    assert!(matches!(ticket.tickets.first(), Some((1, Ok(_)))));
    let log = h.log.clone();
    assert!(Gateway::replay(h.config.clone(), ring(), Plants::NONE, log.clone()).is_ok());
    let find = |pick: fn(&Event) -> bool| {
        log.iter()
            .map(|e| e.event.clone())
            .find(pick)
            .expect("the scenario logged it")
    };
    let next = LogSeq::new(log.len() as u64 + 1);
    let mallory = UserId::parse("mallory").expect("id");
    let mut rebind = find(|e| matches!(e, Event::SessionReauthed { .. }));
    if let Event::SessionReauthed { identity, .. } = &mut rebind {
        identity.user = mallory.clone();
    }
    let mut unknown = find(|e| matches!(e, Event::Subscribed { .. }));
    if let Event::Subscribed { thread, .. } = &mut unknown {
        *thread = gauntlet_core::ThreadId::parse("t-none").expect("id");
    }
    let started = find(|e| matches!(e, Event::RunStarted { .. }));
    let mut foreign = started.clone();
    if let Event::RunStarted { owner, .. } = &mut foreign {
        *owner = mallory.clone();
    }
    let connection = format!("{next}: connection {c} is not in the expected state");
    let thread_a = format!("{next}: thread t-a is not in the expected state");
    let cases = vec![
        (
            "open twice",
            find(|e| matches!(e, Event::SessionOpened { .. })),
            connection.clone(),
        ),
        ("reauth as another user", rebind, connection),
        (
            "subscribe to an unknown thread",
            unknown,
            format!("{next}: thread t-none is not in the expected state"),
        ),
        (
            "thread created twice",
            find(|e| matches!(e, Event::ThreadCreated { .. })),
            thread_a.clone(),
        ),
        ("run in another user's thread", foreign, thread_a),
        (
            "run started twice",
            started,
            format!("{next}: run event does not follow the plan of run-1"),
        ),
        (
            "ticket issued twice",
            find(|e| matches!(e, Event::TicketIssued { .. })),
            format!("{next}: ticket not in the expected state"),
        ),
    ];
    for (what, event, message) in cases {
        let err = replay_with(&h, &log, event).err().map(|e| e.to_string());
        assert_eq!(err, Some(message), "{what}");
    }
}
