//! Session lifecycle: reauth, expiry, revocation of live connections, resume with and
//! without a gap, slow consumers, shutdown.

mod common;

use std::time::Duration;

use common::Harness;
use gauntlet_core::token::Revocation;
use gauntlet_core::{Config, Gateway, Input, Jti, Plants, UserId};
use serde_json::{Value, json};

fn run_to_completion(h: &mut Harness, conn: gauntlet_core::ConnId, n: usize) {
    for i in 0..n {
        h.send_json(
            conn,
            json!({"type":"user_message","payload":{"content":format!("m{i}")}}),
        );
        h.advance(Duration::from_secs(4));
    }
}

#[test]
fn session_closes_1008_when_token_expires_without_reauth() {
    let mut h = Harness::new();
    let t = h.token_with("alice", 60, json!({}));
    let c = h.connect_with(&t);
    // exp + 30 s leeway.
    h.advance(Duration::from_secs(89));
    assert_eq!(h.close_code(c), None);
    h.advance(Duration::from_secs(2));
    assert_eq!(
        h.closed
            .get(&c)
            .map(|(code, r)| (code.as_u16(), r.as_str())),
        Some((1008, "token expired"))
    );
}

#[test]
fn reauth_extends_the_session_and_requires_same_user() {
    let mut h = Harness::new();
    let t = h.token_with("alice", 60, json!({}));
    let c = h.connect_with(&t);
    h.advance(Duration::from_secs(50));
    let other = h.token("mallory");
    h.send_json(c, json!({"type":"reauth","payload":{"token":other}}));
    h.send(c, r#"{"type":"reauth","payload":{"token":"x.y.z"}}"#);
    assert_eq!(h.errors(c), vec!["AUTH_FAILED", "AUTH_FAILED"]);
    let fresh = h.token_with("alice", 600, json!({}));
    h.send_json(c, json!({"type":"reauth","payload":{"token":fresh}}));
    let re = h.of_type(c, "reauthenticated");
    assert_eq!(re.len(), 1);
    assert_eq!(re[0]["exp"].as_u64(), Some(h.now.unix_secs() + 600));
    h.advance(Duration::from_secs(120));
    assert_eq!(h.close_code(c), None, "the old expiry no longer applies");
    h.advance(Duration::from_secs(600));
    assert_eq!(h.close_code(c), Some(1008));
}

#[test]
fn reauth_fails_closed_when_revocation_view_is_stale() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    h.now = h.now.saturating_add(Duration::from_secs(6));
    let fresh = h.token("alice");
    h.send_json(c, json!({"type":"reauth","payload":{"token":fresh}}));
    let err = h.of_type(c, "error");
    assert_eq!(
        (err[0]["code"].as_str(), err[0]["retryable"].as_bool()),
        (Some("AUTH_UNAVAILABLE"), Some(true))
    );
    assert_eq!(
        h.close_code(c),
        None,
        "established connections keep being served"
    );
}

#[test]
fn revocation_closes_live_connections_of_that_token_or_user() {
    let mut h = Harness::new();
    let t1 = h.token("alice");
    let a1 = h.connect_with(&t1);
    let a2 = h.connect("alice");
    let b = h.connect("bob");
    let jti = Jti::parse(&Harness::jti_of(&t1)).expect("jti");
    h.feed(vec![Revocation::Jti {
        jti,
        exp: h.now.saturating_add(Duration::from_secs(600)),
    }]);
    assert_eq!(
        h.closed.get(&a1).map(|(c, r)| (c.as_u16(), r.as_str())),
        Some((1008, "token revoked"))
    );
    assert_eq!((h.close_code(a2), h.close_code(b)), (None, None));
    h.now = h.now.saturating_add(Duration::from_secs(1));
    h.feed(vec![Revocation::User {
        user: UserId::parse("alice").expect("id"),
        not_before: h.now,
    }]);
    assert_eq!((h.close_code(a2), h.close_code(b)), (Some(1008), None));
}

#[test]
fn resume_after_reconnect_delivers_missed_events_without_gap_or_duplicate() {
    let mut h = Harness::new();
    let c1 = h.connect("alice");
    let keep = h.connect("alice");
    run_to_completion(&mut h, c1, 2);
    let seen = h.seqs(c1);
    let last = *seen.last().expect("events");
    h.input(Input::Closed { conn: c1 });
    run_to_completion(&mut h, keep, 2);
    let total = *h.seqs(keep).last().expect("events");
    assert!(total > last);
    let c2 = h.connect("alice");
    assert_eq!(h.frames(c2)[0]["latest_seq"].as_u64(), Some(total));
    h.send_json(c2, json!({"type":"resume","payload":{"last_seq":last}}));
    let got = h.seqs(c2);
    assert_eq!(got, ((last + 1)..=total).collect::<Vec<_>>());
    let done = h.of_type(c2, "resumed");
    assert_eq!(
        (done[0]["from_seq"].as_u64(), done[0]["count"].as_u64()),
        (Some(last + 1), Some(total - last))
    );
    // The resumed frames are byte-identical to what the other connection got live.
    let live: Vec<Value> = h
        .frames(keep)
        .into_iter()
        .filter(|f| f["seq"].as_u64().is_some_and(|s| s > last))
        .collect();
    let resumed: Vec<Value> = h
        .frames(c2)
        .into_iter()
        .filter(|f| f.get("seq").is_some())
        .collect();
    assert_eq!(live, resumed);
    // A second resume from the same point sends nothing twice.
    h.send_json(c2, json!({"type":"resume","payload":{"last_seq":last}}));
    assert_eq!(h.seqs(c2).len() as u64, total - last);
}

/// A gateway whose outboxes keep 5 events, after alice's stream has gone past them; and her
/// latest seq.
fn past_retention() -> (Harness, u64) {
    let mut cfg = Config::default();
    cfg.limits.outbox_max_events = 5;
    let mut h = Harness::with_config(cfg);
    let c = h.connect("alice");
    run_to_completion(&mut h, c, 5);
    let total = *h.seqs(c).last().expect("events");
    assert!(total > 6, "need more events than retained, got {total}");
    (h, total)
}

#[test]
fn resume_past_retention_reports_gap_with_oldest_seq() {
    let (mut h, total) = past_retention();
    let c2 = h.connect("alice");
    h.send(c2, r#"{"type":"resume","payload":{"last_seq":0}}"#);
    let err = h.of_type(c2, "error");
    assert_eq!(err[0]["code"], "RESUME_GAP");
    assert_eq!(err[0]["oldest_seq"].as_u64(), Some(total - 4));
    assert_eq!(h.seqs(c2), ((total - 4)..=total).collect::<Vec<_>>());
    h.send(c2, r#"{"type":"resume","payload":{"last_seq":99999}}"#);
    assert_eq!(h.errors(c2), vec!["RESUME_GAP", "BAD_MESSAGE"]);
}

/// The two edges of a resume: from just before the oldest retained event there is no gap to
/// report, and from the latest seq there is nothing to send (an error for neither).
#[test]
fn resume_from_the_oldest_retained_or_the_latest_seq_is_neither_gap_nor_error() {
    let (mut h, total) = past_retention();
    let oldest = total - 4;
    let c2 = h.connect("alice");
    h.send_json(
        c2,
        json!({"type":"resume","payload":{"last_seq":oldest - 1}}),
    );
    assert_eq!(
        h.errors(c2),
        Vec::<String>::new(),
        "no RESUME_GAP at the edge"
    );
    assert_eq!(h.seqs(c2), (oldest..=total).collect::<Vec<_>>());
    let c3 = h.connect("alice");
    h.send_json(c3, json!({"type":"resume","payload":{"last_seq":total}}));
    assert_eq!(
        h.errors(c3),
        Vec::<String>::new(),
        "last_seq == latest is not ahead"
    );
    let done = h.of_type(c3, "resumed");
    assert_eq!(
        (done[0]["from_seq"].as_u64(), done[0]["count"].as_u64()),
        (Some(total + 1), Some(0))
    );
}

#[test]
fn slow_consumer_closes_1013_and_its_events_stay_for_resume() {
    let mut cfg = Config::default();
    cfg.limits.send_queue_capacity = 8;
    cfg.limits.user_rate.burst = 1000;
    cfg.limits.max_active_runs_per_user = 100;
    let mut h = Harness::with_config(cfg);
    let fast = h.connect("alice");
    let slow = h.connect("alice");
    h.auto_ack.insert(slow, false);
    run_to_completion(&mut h, fast, 6);
    assert_eq!(
        h.closed.get(&slow).map(|(c, r)| (c.as_u16(), r.as_str())),
        Some((1013, "consumer too slow"))
    );
    assert_eq!(h.close_code(fast), None);
    let slow_got = *h.seqs(slow).last().unwrap_or(&0);
    let total = *h.seqs(fast).last().expect("events");
    let again = h.connect("alice");
    h.send_json(
        again,
        json!({"type":"resume","payload":{"last_seq":slow_got}}),
    );
    h.advance(Duration::from_secs(1));
    assert_eq!(
        h.seqs(again),
        ((slow_got + 1)..=total).collect::<Vec<_>>(),
        "resume pages through the queue limit"
    );
}

#[test]
fn shutdown_closes_every_connection_1001() {
    let mut h = Harness::new();
    let conns = [h.connect("a"), h.connect("b"), h.connect("a")];
    let out = h.input(Input::Shutdown);
    assert_eq!(out.closes.len(), 3);
    for c in conns {
        assert_eq!(
            h.closed.get(&c).map(|(c, r)| (c.as_u16(), r.as_str())),
            Some((1001, "server going away"))
        );
    }
    assert_eq!(h.gw.stats().connections, 0);
}

#[test]
fn revocation_follows_reauth_and_survives_a_replay() {
    let mut h = Harness::new();
    let t1 = h.token("alice");
    let a = h.connect_with(&t1);
    let t2 = h.token_with("alice", 600, json!({}));
    h.send_json(a, json!({"type":"reauth","payload":{"token":t2}}));
    // Sessions come back from the log as records (no restart): the index must be rebuilt.
    h.gw = Gateway::replay(
        h.config.clone(),
        common::ring(),
        Plants::NONE,
        h.log.clone(),
    )
    .expect("replay");
    let exp = h.now.saturating_add(Duration::from_secs(600));
    let old = Jti::parse(&Harness::jti_of(&t1)).expect("jti");
    h.feed(vec![Revocation::Jti { jti: old, exp }]);
    assert_eq!(
        h.close_code(a),
        None,
        "the session now rests on the new token"
    );
    let new = Jti::parse(&Harness::jti_of(&t2)).expect("jti");
    h.feed(vec![Revocation::Jti { jti: new, exp }]);
    assert_eq!(h.close_code(a), Some(1008));
}

#[test]
fn stats_track_outbox_sizes_through_trimming_and_replay() {
    let mut cfg = Config::default();
    cfg.limits.outbox_max_events = 7;
    let mut h = Harness::with(cfg.clone(), Plants::NONE);
    let (a, b) = (h.connect("alice"), h.connect("bob"));
    run_to_completion(&mut h, a, 3);
    run_to_completion(&mut h, b, 1);
    let (sent_a, sent_b) = (h.seqs(a).len(), h.seqs(b).len());
    assert!(
        sent_a > 7,
        "alice's stream outgrew her outbox ({sent_a} events)"
    );
    let stats = h.gw.stats();
    assert_eq!(stats.outbox_events, 7 + sent_b.min(7));
    assert_eq!(stats.peak_outbox_len, 7);
    assert!(stats.peak_queue_depth >= 1);
    let replayed =
        Gateway::replay(cfg, common::ring(), Plants::NONE, h.log.clone()).expect("replay");
    let folded = replayed.stats();
    assert_eq!(
        (folded.outbox_events, folded.peak_outbox_len),
        (stats.outbox_events, stats.peak_outbox_len)
    );
    assert_eq!(folded.peak_queue_depth, 0, "send queues are soft state");
}

#[test]
fn resume_while_a_resume_is_still_paging_is_refused_and_closes_the_full_queue_1013() {
    let mut cfg = Config::default();
    cfg.limits.send_queue_capacity = 2;
    let mut h = Harness::with_config(cfg);
    let fast = h.connect("alice");
    run_to_completion(&mut h, fast, 1);
    assert!(h.seqs(fast).len() > 2, "more events than the queue holds");
    let slow = h.connect("alice");
    h.auto_ack.insert(slow, false);
    // The hello and one page fill the queue, so the backfill is still in progress (a backfill
    // only waits on a full queue).
    h.send(slow, r#"{"type":"resume","payload":{"last_seq":0}}"#);
    let paged = h.seqs(slow);
    assert!(
        !paged.is_empty() && paged.len() < h.seqs(fast).len(),
        "{paged:?}"
    );
    assert_eq!(h.close_code(slow), None);
    // The second resume is refused with an error frame, which the full queue cannot take.
    h.send(slow, r#"{"type":"resume","payload":{"last_seq":0}}"#);
    assert_eq!(h.seqs(slow), paged, "no second backfill started");
    assert!(h.of_type(slow, "resumed").is_empty());
    assert_eq!(
        h.closed.get(&slow).map(|(c, r)| (c.as_u16(), r.as_str())),
        Some((1013, "consumer too slow"))
    );
}

#[test]
fn inputs_for_a_connection_that_is_not_open_change_nothing() {
    let mut h = Harness::new();
    let c = h.connect("alice");
    let closed = h.input(Input::Closed { conn: c });
    assert_eq!(closed.events.len(), 1, "the session ends once");
    assert!(
        closed.closes.is_empty(),
        "the peer closed it: no close frame"
    );
    let hash = h.gw.state_hash();
    let ghost = gauntlet_core::ConnId::new(999);
    for conn in [ghost, c] {
        let inputs = [
            Input::Closed { conn },
            Input::Binary { conn, len: 3 },
            Input::Control {
                conn,
                kind: gauntlet_core::ControlFrame::Ping,
            },
            Input::Text {
                conn,
                data: br#"{"type":"ping"}"#,
            },
            Input::Sent { conn, frames: 1 },
        ];
        for input in inputs {
            let what = format!("{input:?}");
            let out = h.input(input);
            assert!(out.events.is_empty(), "{what}: {:?}", out.events);
            assert!(out.sends.is_empty(), "{what}");
            assert!(out.closes.is_empty(), "{what}");
        }
    }
    assert_eq!(h.gw.state_hash(), hash);
    assert_eq!(h.gw.rate_limited_frames(), 0);
    assert!(h.of_type(c, "pong").is_empty());
}

#[test]
fn resume_whose_gap_notice_overflows_the_queue_closes_1013_and_pages_nothing() {
    let mut cfg = Config::default();
    cfg.limits.send_queue_capacity = 2;
    cfg.limits.outbox_max_events = 2;
    let mut h = Harness::with_config(cfg);
    let fast = h.connect("alice");
    run_to_completion(&mut h, fast, 1);
    assert!(h.seqs(fast).len() > 3, "more events than retained");
    let slow = h.connect("alice");
    h.auto_ack.insert(slow, false);
    h.send(slow, r#"{"type":"ping"}"#);
    h.send(slow, r#"{"type":"ping"}"#);
    assert_eq!(h.of_type(slow, "pong").len(), 2, "the queue is now full");
    h.send(slow, r#"{"type":"resume","payload":{"last_seq":0}}"#);
    assert_eq!(
        h.closed.get(&slow).map(|(c, r)| (c.as_u16(), r.as_str())),
        Some((1013, "consumer too slow"))
    );
    assert!(
        h.of_type(slow, "error").is_empty(),
        "the gap notice did not fit"
    );
    assert!(h.seqs(slow).is_empty() && h.of_type(slow, "resumed").is_empty());
    assert!(!h.gw.is_open(slow));
}
