//! Every inbound row of docs/protocol.md section 9, frame-level close codes, rate limits and
//! user isolation, through the public `Gateway` API.

mod common;

use std::time::Duration;

use common::Harness;
use gauntlet_core::{Config, ConnId, Input};
use serde_json::{Value, json};

fn kinds(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["type"].as_str().unwrap_or("").to_string())
        .collect()
}

fn stream_kinds(h: &Harness, conn: ConnId) -> Vec<String> {
    kinds(
        &h.frames(conn)
            .into_iter()
            .filter(|f| f.get("seq").is_some())
            .collect::<Vec<_>>(),
    )
}

#[test]
fn ping_and_heartbeat_get_direct_replies_without_seq() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    h.take(c);
    h.send(c, r#"{"type":"ping","message_id":"m1"}"#);
    h.send(c, r#"{"type":"heartbeat"}"#);
    let f = h.frames(c);
    assert_eq!(
        f,
        vec![
            json!({"type":"pong","message_id":"m1"}),
            json!({"type":"heartbeat_ack"})
        ]
    );
}

#[test]
fn user_message_runs_an_agent_through_the_five_events_in_order() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    h.send(c, r#"{"type":"user_message","message_id":"q1","payload":{"content":"hello","thread_id":"t-a"}}"#);
    let accepted = h.of_type(c, "message_accepted");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["thread_id"], "t-a");
    assert_eq!(accepted[0]["message_id"], "q1");
    let run = accepted[0]["run_id"].as_str().expect("run id").to_string();
    h.advance(Duration::from_secs(10));
    let stream: Vec<Value> = h
        .frames(c)
        .into_iter()
        .filter(|f| f.get("seq").is_some())
        .collect();
    let k = kinds(&stream);
    assert_eq!(k.first().map(String::as_str), Some("agent_started"));
    assert!(
        matches!(
            k.last().map(String::as_str),
            Some("agent_completed" | "agent_failed")
        ),
        "{k:?}"
    );
    for f in &stream {
        assert_eq!(
            (
                f["run_id"].as_str(),
                f["thread_id"].as_str(),
                f["user_id"].as_str()
            ),
            (Some(run.as_str()), Some("t-a"), Some("alice"))
        );
    }
    let seqs: Vec<u64> = stream.iter().filter_map(|f| f["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=stream.len() as u64).collect::<Vec<_>>());
    assert_eq!(stream[0]["payload"]["task"], "hello");
}

#[test]
fn user_message_without_thread_creates_one_owned_by_sender() {
    let mut h = Harness::new();
    let a = h.connect("alice");
    let b = h.connect("bob");
    h.send(a, r#"{"type":"user_message","payload":{"content":"x"}}"#);
    let thread = h.of_type(a, "message_accepted")[0]["thread_id"]
        .as_str()
        .expect("thread")
        .to_string();
    // Bob can neither post into nor subscribe to Alice's thread.
    h.send_json(
        b,
        json!({"type":"user_message","payload":{"content":"y","thread_id":thread}}),
    );
    h.send_json(
        b,
        json!({"type":"subscribe_thread","payload":{"thread_id":thread}}),
    );
    assert_eq!(h.errors(b), vec!["FORBIDDEN", "FORBIDDEN"]);
    assert!(h.close_code(b).is_none());
    h.send_json(
        a,
        json!({"type":"subscribe_thread","payload":{"thread_id":thread}}),
    );
    assert_eq!(
        h.of_type(a, "subscribed"),
        vec![json!({"type":"subscribed","thread_id":thread})]
    );
    h.send(
        a,
        r#"{"type":"subscribe_thread","payload":{"thread_id":"nope"}}"#,
    );
    assert_eq!(h.errors(a), vec!["NOT_FOUND"]);
}

#[test]
fn stop_agent_cancels_own_run_only() {
    let mut h = Harness::new();
    let a = h.connect("alice");
    let b = h.connect("bob");
    h.send(
        a,
        r#"{"type":"user_message","payload":{"content":"long task"}}"#,
    );
    let run = h.of_type(a, "message_accepted")[0]["run_id"]
        .as_str()
        .expect("run")
        .to_string();
    h.send_json(b, json!({"type":"stop_agent","payload":{"run_id":run}}));
    assert_eq!(h.errors(b), vec!["FORBIDDEN"]);
    h.send(b, r#"{"type":"stop_agent","payload":{"run_id":"run-999"}}"#);
    assert_eq!(h.errors(b), vec!["FORBIDDEN", "NOT_FOUND"]);
    h.send_json(a, json!({"type":"stop_agent","payload":{"run_id":run}}));
    h.advance(Duration::from_secs(10));
    let k = stream_kinds(&h, a);
    assert_eq!(k, vec!["agent_started", "agent_cancelled"]);
    // Stopping it again: the run is over.
    h.send_json(a, json!({"type":"stop_agent","payload":{"run_id":run}}));
    assert_eq!(h.errors(a), vec!["NOT_FOUND"]);
}

/// Each connection received exactly one `system_notice` saying `text`, addressed to its user
/// at that user's own seq.
fn assert_one_notice_each(h: &Harness, text: &str, expected: &[(ConnId, &str, u64)]) {
    for &(conn, user, seq) in expected {
        let notices = h.of_type(conn, "system_notice");
        assert_eq!(notices.len(), 1, "{user}");
        assert_eq!(
            (notices[0]["user_id"].as_str(), notices[0]["seq"].as_u64()),
            (Some(user), Some(seq))
        );
        assert_eq!(notices[0]["payload"]["text"], text, "{user}");
    }
}

#[test]
fn broadcast_requires_permission_and_reaches_every_user_with_own_seq() {
    let mut h = Harness::new();
    let a = h.connect("alice");
    let b1 = h.connect("bob");
    let b2 = h.connect("bob");
    h.send(a, r#"{"type":"broadcast","payload":{"text":"hi all"}}"#);
    assert_eq!(h.errors(a), vec!["FORBIDDEN"]);
    // Alice gets a stream event first so her seq differs from Bob's.
    h.send(a, r#"{"type":"user_message","payload":{"content":"x"}}"#);
    let t = h.token_with("ops", 600, json!({"permissions": ["system:broadcast"]}));
    let ops = h.connect_with(&t);
    h.send(
        ops,
        r#"{"type":"broadcast","payload":{"text":"maintenance"}}"#,
    );
    assert_one_notice_each(
        &h,
        "maintenance",
        &[
            (a, "alice", 2),
            (b1, "bob", 1),
            (b2, "bob", 1),
            (ops, "ops", 1),
        ],
    );
    // The broadcast is one log event; the fold gives each connected user a copy at that
    // user's own next seq (alice 2, bob and ops 1), and carol, who never connected, none.
    let broadcasts: Vec<_> = h
        .log
        .iter()
        .filter_map(|e| match &e.event {
            gauntlet_core::Event::StreamBroadcast { entry } => Some(std::sync::Arc::clone(entry)),
            gauntlet_core::Event::StreamAppended { entry, .. }
                if entry.kind() == gauntlet_core::StreamKind::SystemNotice =>
            {
                panic!("a broadcast copy logged as its own append")
            }
            _ => None,
        })
        .collect();
    assert_eq!(broadcasts.len(), 1);
    assert_eq!(
        broadcasts[0].kind(),
        gauntlet_core::StreamKind::SystemNotice
    );
    let latest = |name: &str| {
        h.gw.latest_seq(&gauntlet_core::UserId::parse(name).expect("id"))
    };
    let seqs: Vec<u64> = ["alice", "bob", "ops", "carol"]
        .iter()
        .map(|u| latest(u).get())
        .collect();
    assert_eq!(seqs, vec![2, 1, 1, 0]);
    // Replaying the log derives the same copies: the same state, byte for byte.
    let replayed = gauntlet_core::Gateway::replay(
        h.config.clone(),
        common::ring(),
        gauntlet_core::Plants::NONE,
        h.log.clone(),
    )
    .expect("replay");
    assert_eq!(replayed.state_hash(), h.gw.state_hash());
}

#[test]
fn broadcast_gives_each_connected_user_their_next_seq_and_skips_the_disconnected() {
    let mut h = Harness::new();
    // Users in id order, so the broadcast's walk must step over outboxes of users who are
    // gone (bea between two connected users, eve after them) and find none for dan.
    let amy = h.connect("amy");
    let bea = h.connect("bea");
    let cat = h.connect("cat");
    let dan = h.connect("dan");
    let eve = h.connect("eve");
    let message = r#"{"type":"user_message","payload":{"content":"x"}}"#;
    for (conn, events) in [(amy, 1), (bea, 2), (cat, 3), (eve, 1)] {
        for _ in 0..events {
            h.send(conn, message);
        }
    }
    h.input(Input::Closed { conn: bea });
    h.input(Input::Closed { conn: eve });
    let t = h.token_with("ops", 600, json!({"permissions": ["system:broadcast"]}));
    let ops = h.connect_with(&t);
    h.send(ops, r#"{"type":"broadcast","payload":{"text":"hi"}}"#);
    assert_one_notice_each(
        &h,
        "hi",
        &[
            (amy, "amy", 2),
            (cat, "cat", 4),
            (dan, "dan", 1),
            (ops, "ops", 1),
        ],
    );
    // Bea was not connected: her stream has no copy, so her next event follows her last.
    let bea = h.connect("bea");
    h.send(bea, message);
    assert_eq!(h.seqs(bea), vec![3]);
    assert!(h.of_type(bea, "system_notice").is_empty());
}

/// The content bound is inclusive: exactly `max_content_bytes` is a message, one byte more is
/// `BAD_MESSAGE` (and not a protocol violation that closes).
#[test]
fn user_message_content_at_its_bound_accepted_one_byte_over_refused() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    let max = Config::default().limits.max_content_bytes;
    let at = "x".repeat(max);
    h.send_json(c, json!({"type":"user_message","payload":{"content":at}}));
    assert_eq!(h.of_type(c, "message_accepted").len(), 1);
    assert!(h.errors(c).is_empty(), "{:?}", h.errors(c));
    let over = "x".repeat(max + 1);
    h.send_json(c, json!({"type":"user_message","payload":{"content":over}}));
    assert_eq!(h.of_type(c, "message_accepted").len(), 1);
    assert_eq!(h.errors(c), vec!["BAD_MESSAGE"]);
    assert!(h.close_code(c).is_none());
}

/// A broadcast's text has the same inclusive bound.
#[test]
fn broadcast_text_at_its_bound_accepted_one_byte_over_refused() {
    let mut h = Harness::new();
    let t = h.token_with("ops", 600, json!({"permissions": ["system:broadcast"]}));
    let ops = h.connect_with(&t);
    let max = Config::default().limits.max_content_bytes;
    let at = "x".repeat(max);
    h.send_json(ops, json!({"type":"broadcast","payload":{"text":at}}));
    assert!(h.errors(ops).is_empty(), "{:?}", h.errors(ops));
    assert_eq!(h.of_type(ops, "system_notice").len(), 1);
    let over = "x".repeat(max + 1);
    h.send_json(ops, json!({"type":"broadcast","payload":{"text":over}}));
    assert_eq!(h.errors(ops), vec!["BAD_MESSAGE"]);
    assert_eq!(h.of_type(ops, "system_notice").len(), 1);
    assert!(h.close_code(ops).is_none());
}

#[test]
fn unknown_type_and_bad_json_keep_connection_open() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    h.send(c, r#"{"type":"launch"}"#);
    h.send(c, "not json");
    h.send(c, r#"{"type":"user_message","payload":{"content":7}}"#);
    assert_eq!(
        h.errors(c),
        vec!["UNKNOWN_TYPE", "BAD_MESSAGE", "BAD_MESSAGE"]
    );
    assert!(h.close_code(c).is_none());
    h.send(c, r#"{"type":"ping"}"#);
    assert_eq!(h.of_type(c, "pong").len(), 1);
}

#[test]
fn eleventh_protocol_error_in_a_minute_closes_1008() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    for _ in 0..10 {
        h.send(c, "{");
    }
    assert!(h.close_code(c).is_none());
    h.send(c, "{");
    assert_eq!(h.close_code(c), Some(1008));
    assert_eq!(h.closed[&c].1, "too many protocol errors");
    // Frames after the close are ignored.
    let before = h.frames(c).len();
    h.send(c, r#"{"type":"ping"}"#);
    assert_eq!(h.frames(c).len(), before);
}

#[test]
fn client_supplied_user_id_never_changes_identity() {
    let mut h = Harness::new();
    let a = h.connect("alice");
    let b = h.connect("bob");
    h.send(
        a,
        r#"{"type":"user_message","user_id":"bob","payload":{"content":"x","user_id":"bob"}}"#,
    );
    h.advance(Duration::from_secs(5));
    assert!(h.seqs(b).is_empty(), "bob received {:?}", h.frames(b));
    assert!(
        h.frames(a)
            .iter()
            .filter(|f| f.get("seq").is_some())
            .all(|f| f["user_id"] == "alice")
    );
}

#[test]
fn two_users_never_see_each_others_events() {
    let mut h = Harness::new();
    let a = [h.connect("alice"), h.connect("alice")];
    let b = [h.connect("bob"), h.connect("bob")];
    for i in 0..5 {
        h.send_json(
            a[i % 2],
            json!({"type":"user_message","payload":{"content":format!("a{i}")}}),
        );
        h.send_json(
            b[i % 2],
            json!({"type":"user_message","payload":{"content":format!("b{i}")}}),
        );
        h.advance(Duration::from_millis(300));
    }
    h.advance(Duration::from_secs(10));
    for (conns, me) in [(a, "alice"), (b, "bob")] {
        for c in conns {
            let stream: Vec<Value> = h
                .frames(c)
                .into_iter()
                .filter(|f| f.get("seq").is_some())
                .collect();
            assert!(stream.len() >= 10, "{me} got {} events", stream.len());
            assert!(
                stream.iter().all(|f| f["user_id"] == me),
                "{me} saw a foreign event"
            );
            let seqs: Vec<u64> = stream.iter().filter_map(|f| f["seq"].as_u64()).collect();
            assert_eq!(
                seqs,
                (1..=seqs.len() as u64).collect::<Vec<_>>(),
                "{me}: gap-free, in order, once"
            );
        }
        assert_eq!(h.seqs(conns[0]), h.seqs(conns[1]));
    }
}

#[test]
fn oversized_binary_and_invalid_utf8_frames_close_with_their_codes() {
    let mut h = Harness::new();
    let big = h.connect("a");
    h.input(Input::Text {
        conn: big,
        data: &[b' '; 8193],
    });
    assert_eq!(h.close_code(big), Some(1009));
    let ok = h.connect("b");
    h.input(Input::Text {
        conn: ok,
        data: format!("{{\"type\":\"ping\"}}{}", " ".repeat(8192 - 15)).as_bytes(),
    });
    assert_eq!((h.close_code(ok), h.of_type(ok, "pong").len()), (None, 1));
    let bin = h.connect("c");
    h.input(Input::Binary { conn: bin, len: 4 });
    assert_eq!(h.close_code(bin), Some(1003));
    let utf = h.connect("d");
    h.input(Input::Text {
        conn: utf,
        data: &[b'"', 0xff, 0xfe, b'"'],
    });
    assert_eq!(h.close_code(utf), Some(1007));
}

#[test]
fn control_frames_take_from_the_user_bucket_and_are_answered_only_over_the_limit() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    let ping = |h: &mut Harness| {
        h.input(Input::Control {
            conn: c,
            kind: gauntlet_core::ControlFrame::Ping,
        })
    };
    for _ in 0..20 {
        let out = ping(&mut h);
        assert!(
            out.sends.is_empty(),
            "the transport answers a ping, not the gateway"
        );
    }
    // The burst is spent by control frames alone: a text frame is refused now.
    h.send(c, r#"{"type":"ping"}"#);
    assert_eq!(h.errors(c), ["RATE_LIMITED"]);
    h.now = h.now.saturating_add(Duration::from_millis(100));
    assert!(ping(&mut h).sends.is_empty());
    let refused = h.of_type(c, "error");
    assert_eq!(refused[0]["retry_after_ms"].as_u64(), Some(100));
    h.take(c);
    // Refused control frames spend the connection's protocol-error budget too.
    for _ in 0..9 {
        ping(&mut h);
    }
    assert_eq!(h.errors(c), ["RATE_LIMITED"; 9]);
    assert!(
        h.close_code(c).is_none(),
        "ten refusals are within the budget"
    );
    ping(&mut h);
    assert_eq!(h.close_code(c), Some(1008));
    assert_eq!(h.gw.rate_limited_frames(), 11);
}

#[test]
fn user_rate_limit_answers_rate_limited_then_closes_sustained_abuse() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    let c2 = h.connect("alice");
    for _ in 0..20 {
        h.send(c, r#"{"type":"ping"}"#);
    }
    assert!(h.errors(c).is_empty());
    h.send(c2, r#"{"type":"ping"}"#);
    let err = h.of_type(c2, "error");
    assert_eq!(
        err.len(),
        1,
        "the bucket is per user, shared by connections"
    );
    assert_eq!(
        (
            err[0]["code"].as_str(),
            err[0]["retry_after_ms"].as_u64(),
            err[0]["retryable"].as_bool()
        ),
        (Some("RATE_LIMITED"), Some(100), Some(true))
    );
    h.now = h.now.saturating_add(Duration::from_millis(100));
    h.send(c, r#"{"type":"ping"}"#);
    assert_eq!(h.of_type(c, "pong").len(), 21);
    for _ in 0..10 {
        h.send(c, r#"{"type":"ping"}"#);
    }
    assert!(
        h.close_code(c).is_none(),
        "ten refusals are within the budget"
    );
    h.send(c, r#"{"type":"ping"}"#);
    assert_eq!(h.close_code(c), Some(1008));
}

#[test]
fn subscription_past_the_per_connection_limit_is_limit_exceeded() {
    let mut cfg = gauntlet_core::Config::default();
    cfg.limits.max_subscriptions_per_connection = 1;
    let mut h = Harness::with_config(cfg);
    let owner = h.connect("alice");
    for thread in ["t-a", "t-b"] {
        h.send_json(
            owner,
            json!({"type":"user_message","payload":{"content":"x","thread_id":thread}}),
        );
    }
    let c = h.connect("alice");
    h.send_json(
        c,
        json!({"type":"subscribe_thread","payload":{"thread_id":"t-a"}}),
    );
    assert_eq!(h.of_type(c, "subscribed").len(), 1);
    h.send_json(
        c,
        json!({"type":"subscribe_thread","payload":{"thread_id":"t-b"}}),
    );
    let errors = h.of_type(c, "error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "LIMIT_EXCEEDED");
    assert_eq!(
        errors[0]["message"],
        "at most 1 subscriptions per connection"
    );
    // Subscribing again to a thread it holds needs no new place.
    h.send_json(
        c,
        json!({"type":"subscribe_thread","payload":{"thread_id":"t-a"}}),
    );
    assert_eq!(h.of_type(c, "subscribed").len(), 2);
}

#[test]
fn new_thread_past_the_per_user_limit_is_limit_exceeded() {
    let mut cfg = gauntlet_core::Config::default();
    cfg.limits.max_threads_per_user = 1;
    let mut h = Harness::with_config(cfg);
    let c = h.connect("alice");
    h.send_json(
        c,
        json!({"type":"user_message","payload":{"content":"x","thread_id":"t-a"}}),
    );
    assert!(h.errors(c).is_empty(), "{:?}", h.errors(c));
    h.send_json(
        c,
        json!({"type":"user_message","payload":{"content":"x","thread_id":"t-b"}}),
    );
    let errors = h.of_type(c, "error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "LIMIT_EXCEEDED");
    assert_eq!(errors[0]["message"], "at most 1 threads");
}

#[test]
fn frames_over_the_user_rate_are_counted_by_rate_limited_frames() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    assert_eq!(h.gw.rate_limited_frames(), 0);
    for _ in 0..21 {
        h.send(c, r#"{"type":"ping"}"#);
    }
    assert_eq!(h.of_type(c, "pong").len(), 20);
    assert_eq!(h.gw.rate_limited_frames(), 1);
}

#[test]
fn key_ring_update_takes_effect_for_the_next_handshake() {
    let mut h = Harness::new();
    let t = h.token("alice");
    h.input(Input::Auth(gauntlet_core::AuthUpdate::Keys(Box::new(
        gauntlet_core::token::KeyRing::new(),
    ))));
    let (_, d) = h.handshake(h.bearer(&t));
    assert!(
        matches!(
            d,
            gauntlet_core::HandshakeDecision::Reject {
                code: "unknown_key",
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn user_message_when_every_generated_thread_id_is_taken_is_limit_exceeded() {
    let mut cfg = gauntlet_core::Config::default();
    cfg.limits.max_active_runs_per_user = 16;
    let mut h = Harness::with_config(cfg);
    let c = h.connect("alice");
    // Runs 1 to 8 take, by name, the eight ids run 9 would be given.
    let taken: Vec<String> = std::iter::once("thread-run-9".to_string())
        .chain((1..8).map(|k| format!("thread-run-9-{k}")))
        .collect();
    for t in &taken {
        h.send_json(
            c,
            json!({"type":"user_message","payload":{"content":"x","thread_id":t}}),
        );
    }
    assert!(h.errors(c).is_empty(), "{:?}", h.errors(c));
    let accepted_before = h.of_type(c, "message_accepted").len();
    assert_eq!(accepted_before, 8);
    let events_before = h.log.len();
    h.send_json(c, json!({"type":"user_message","payload":{"content":"x"}}));
    let errors = h.of_type(c, "error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["code"], "LIMIT_EXCEEDED");
    assert_eq!(errors[0]["message"], "could not allocate a thread id");
    assert_eq!(h.of_type(c, "message_accepted").len(), accepted_before);
    assert_eq!(
        h.log.len(),
        events_before,
        "no run and no thread were started"
    );
    assert_eq!(h.gw.stats().threads, 8);
}
