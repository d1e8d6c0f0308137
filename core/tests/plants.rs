//! Each gateway planted bug changes exactly the behaviour its name says (docs/design.md,
//! "Planted bugs"). The simulator proves they are *caught*; these tests show they are *there*.
#![cfg(feature = "planted-bugs")]

mod common;

use std::time::Duration;

use common::Harness;
use gauntlet_core::{Config, HandshakeDecision, Input, Plant, Plants};
use serde_json::json;

fn planted(p: Plant) -> Harness {
    Harness::with(Config::default(), Plants::only(p))
}

fn start_run(h: &mut Harness, conn: gauntlet_core::ConnId, thread: &str) -> String {
    h.send_json(
        conn,
        json!({"type":"user_message","payload":{"content":"go","thread_id":thread}}),
    );
    h.of_type(conn, "message_accepted")
        .last()
        .and_then(|m| m["run_id"].as_str())
        .expect("run")
        .to_string()
}

#[test]
fn broadcast_leak_sends_user_events_to_everyone() {
    for (plants, leaks) in [
        (Plants::NONE, false),
        (Plants::only(Plant::BroadcastLeak), true),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let a = h.connect("alice");
        let b = h.connect("bob");
        start_run(&mut h, a, "ta");
        h.advance(Duration::from_secs(5));
        let foreign = h
            .frames(b)
            .iter()
            .filter(|f| f["user_id"] == "alice")
            .count();
        assert_eq!(foreign > 0, leaks, "plants {plants:?}");
        assert!(!h.seqs(a).is_empty());
    }
}

#[test]
fn run_id_as_user_id_lets_anyone_stop_any_run() {
    let mut h = planted(Plant::RunIdAsUserId);
    let a = h.connect("alice");
    let m = h.connect("mallory");
    let run = start_run(&mut h, a, "ta");
    h.send_json(m, json!({"type":"stop_agent","payload":{"run_id":run}}));
    assert!(h.errors(m).is_empty());
    assert_eq!(h.of_type(a, "agent_cancelled").len(), 1);
}

#[test]
fn thread_id_as_user_id_routes_thread_events_to_the_user_named_like_the_thread() {
    let mut h = planted(Plant::ThreadIdAsUserId);
    let victim = h.connect("bob");
    let m = h.connect("mallory");
    start_run(&mut h, m, "bob");
    h.advance(Duration::from_secs(5));
    assert!(
        h.frames(victim).iter().any(|f| f["user_id"] == "mallory"),
        "bob got mallory's run"
    );
    assert!(h.seqs(m).is_empty(), "the owner lost them");
}

#[test]
fn ack_without_forward_stores_but_never_delivers() {
    let mut h = planted(Plant::AckWithoutForward);
    let a = h.connect("alice");
    start_run(&mut h, a, "ta");
    h.advance(Duration::from_secs(5));
    assert!(h.seqs(a).is_empty());
    let stored = h
        .log
        .iter()
        .filter(|e| matches!(e.event, gauntlet_core::Event::StreamAppended { .. }))
        .count();
    assert!(stored >= 2);
}

#[test]
fn resume_skips_drops_the_first_missed_event() {
    let mut h = planted(Plant::ResumeSkips);
    let a = h.connect("alice");
    start_run(&mut h, a, "ta");
    h.advance(Duration::from_secs(5));
    let total = h.seqs(a).len() as u64;
    let a2 = h.connect("alice");
    h.send(a2, r#"{"type":"resume","payload":{"last_seq":0}}"#);
    assert_eq!(h.seqs(a2), (2..=total).collect::<Vec<_>>());
}

#[test]
fn revocation_fail_open_accepts_with_a_stale_view() {
    let mut h = planted(Plant::RevocationFailOpen);
    let t = h.token("alice");
    h.now = h.now.saturating_add(Duration::from_secs(60));
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Accept { .. }
    ));
}

#[test]
fn cap_not_released_keeps_slots_after_close() {
    let mut h = planted(Plant::CapNotReleased);
    let conns: Vec<_> = (0..10).map(|_| h.connect("alice")).collect();
    for c in conns {
        h.input(Input::Closed { conn: c });
    }
    assert_eq!(h.gw.stats().connections, 0);
    let t = h.token("alice");
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Reject {
            code: "too_many_connections",
            ..
        }
    ));
}

#[test]
fn unbounded_queue_never_closes_slow_consumers() {
    let mut cfg = Config::default();
    cfg.limits.send_queue_capacity = 2;
    for (plants, closed) in [
        (Plants::NONE, Some(1013)),
        (Plants::only(Plant::UnboundedQueue), None),
    ] {
        let mut h = Harness::with(cfg.clone(), plants);
        let slow = h.connect("alice");
        h.auto_ack.insert(slow, false);
        for _ in 0..5 {
            h.send(slow, r#"{"type":"ping"}"#);
        }
        assert_eq!(h.close_code(slow), closed, "plants {plants:?}");
        if closed.is_none() {
            assert_eq!(h.gw.stats().peak_queue_depth, 5);
        }
    }
}

#[test]
fn tickets_unbounded_per_user_lets_one_user_hoard_tickets() {
    let bound = Config::default().limits.max_tickets_per_user;
    for (plants, issued) in [
        (Plants::NONE, bound),
        (Plants::only(Plant::TicketsUnboundedPerUser), bound + 4),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let t = h.token("mallory");
        let got = (0..bound + 4)
            .filter(|i| {
                h.input(Input::IssueTicket {
                    request: *i as u64,
                    authorization: Some(format!("Bearer {t}")),
                })
                .tickets[0]
                    .1
                    .is_ok()
            })
            .count();
        assert_eq!(got, issued, "plants {plants:?}");
    }
}

#[test]
fn reauth_any_user_rebinds_the_connection_to_the_tokens_user() {
    for (plants, rebound) in [
        (Plants::NONE, false),
        (Plants::only(Plant::ReauthAnyUser), true),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let bob = h.connect("bob");
        let m = h.connect("mallory");
        let stolen = h.token("bob");
        h.send_json(m, json!({"type":"reauth","payload":{"token":stolen}}));
        let expected: &[&str] = if rebound { &[] } else { &["AUTH_FAILED"] };
        assert_eq!(h.errors(m), expected, "plants {plants:?}");
        assert_eq!(h.of_type(m, "reauthenticated").len(), usize::from(rebound));
        // Bob's run then reaches mallory's connection only when it was rebound.
        start_run(&mut h, bob, "tb");
        h.advance(Duration::from_secs(5));
        let foreign = h.frames(m).iter().filter(|f| f["user_id"] == "bob").count();
        assert_eq!(foreign > 0, rebound, "plants {plants:?}");
    }
}

#[test]
fn subscribe_any_thread_subscribes_to_another_users_thread() {
    for (plants, reply) in [
        (Plants::NONE, "error"),
        (Plants::only(Plant::SubscribeAnyThread), "subscribed"),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let a = h.connect("alice");
        let m = h.connect("mallory");
        start_run(&mut h, a, "alice-t1");
        h.send_json(
            m,
            json!({"type":"subscribe_thread","payload":{"thread_id":"alice-t1"}}),
        );
        let last = h.frames(m).last().cloned().unwrap_or_default();
        assert_eq!(last["type"], reply, "plants {plants:?}");
        if reply == "subscribed" {
            assert_eq!(last["thread_id"], "alice-t1");
        } else {
            assert_eq!(last["code"], "FORBIDDEN");
        }
    }
}

#[test]
fn ticket_reusable_opens_a_second_session_with_a_redeemed_ticket() {
    for (plants, second) in [
        (Plants::NONE, Err("unknown_ticket")),
        (Plants::only(Plant::TicketReusable), Ok("carol")),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let t = h.token("carol");
        let out = h.input(Input::IssueTicket {
            request: 1,
            authorization: Some(format!("Bearer {t}")),
        });
        let ticket = out.tickets[0].1.clone().expect("ticket").ticket;
        let mut redeem = || {
            let req = gauntlet_core::protocol::HandshakeRequest::new(common::ip(2))
                .with_query(&format!("ticket={ticket}"));
            match h.handshake(req).1 {
                HandshakeDecision::Accept { user, .. } => Ok(user.as_str().to_string()),
                HandshakeDecision::Reject { code, .. } => Err(code),
            }
        };
        assert_eq!(redeem(), Ok("carol".to_string()), "plants {plants:?}");
        assert_eq!(redeem(), second.map(str::to_string), "plants {plants:?}");
    }
}

#[test]
fn origin_prefix_match_lets_an_allowed_origin_with_a_suffix_through() {
    let mut cfg = Config::default();
    cfg.limits.origin_allow_list = vec!["https://app.example".into()];
    for (plants, accepted) in [
        (Plants::NONE, false),
        (Plants::only(Plant::OriginPrefixMatch), true),
    ] {
        let mut h = Harness::with(cfg.clone(), plants);
        let t = h.token("alice");
        let d = h
            .handshake(
                h.bearer(&t)
                    .header("Origin", "https://app.example.evil.example"),
            )
            .1;
        assert_eq!(
            matches!(d, HandshakeDecision::Accept { .. }),
            accepted,
            "plants {plants:?}: {d:?}"
        );
        // A foreign origin is refused either way.
        let d = h
            .handshake(h.bearer(&t).header("Origin", "https://evil.example"))
            .1;
        assert!(matches!(
            d,
            HandshakeDecision::Reject {
                code: "origin_not_allowed",
                ..
            }
        ));
    }
}

#[test]
fn control_frames_uncharged_never_rate_limits_a_ping_flood() {
    let burst = Config::default().limits.user_rate.burst as usize;
    for (plants, limited) in [
        (Plants::NONE, 10),
        (Plants::only(Plant::ControlFramesUncharged), 0),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let a = h.connect("alice");
        for _ in 0..burst + 10 {
            h.input(Input::Control {
                conn: a,
                kind: gauntlet_core::ControlFrame::Ping,
            });
        }
        assert_eq!(h.gw.rate_limited_frames(), limited, "plants {plants:?}");
        assert_eq!(h.errors(a).len() as u64, limited, "plants {plants:?}");
    }
}

mod auth_service_plants {
    use std::time::Duration;

    use gauntlet_core::auth_service::{AuthService, VerifyKey};
    use gauntlet_core::permissions::Permissions;
    use gauntlet_core::token::{
        Algorithm, Issuer, KeyRing, SigningKey, TokenRules, TokenType, Validator,
    };
    use gauntlet_core::{Instant, Kid, Plant, Plants, UserId};

    const SECRET: &[u8] = b"plants-auth-service-secret-0123456789";

    fn service(plants: Plants) -> (AuthService, KeyRing) {
        let kid = Kid::parse("k1").expect("kid");
        let key = SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, SECRET).expect("key");
        let mut ring = KeyRing::new();
        ring.add_hmac(Some(kid), Algorithm::HS256, SECRET)
            .expect("ring");
        let rules = TokenRules::default();
        let service =
            AuthService::new(Issuer::new(key, rules.clone()), ring.clone(), rules, plants);
        (service, ring)
    }

    #[test]
    fn rotation_never_prunes_fails_once_the_ring_is_full() {
        let rotate = |plants: Plants| {
            let (mut s, _) = service(plants);
            (2..100).find(|n| {
                let secret = format!("plant-rotation-secret-{n:04}-0123456789abcdef");
                let kid = Kid::parse(&format!("k{n}")).expect("kid");
                let key =
                    SigningKey::hmac(Some(kid), Algorithm::HS256, secret.as_bytes()).expect("key");
                s.rotate_key(key, &VerifyKey::Hmac(secret.into_bytes()))
                    .is_err()
            })
        };
        assert_eq!(rotate(Plants::NONE), None);
        // k1 plus 63 rotations fill the 64 keys; rotation 64 (to k65) is refused.
        assert_eq!(rotate(Plants::only(Plant::RotationNeverPrunes)), Some(65));
    }

    #[test]
    fn logout_same_second_refuses_a_login_right_after_the_logout() {
        let alice = UserId::parse("alice").expect("user");
        let t0 = Instant::from_unix_secs(1_800_000_100);
        let ms = |n: u64| t0.saturating_add(Duration::from_millis(n));
        for (plants, accepted) in [
            (Plants::NONE, true),
            (Plants::only(Plant::LogoutSameSecond), false),
        ] {
            let (mut s, ring) = service(plants);
            s.logout_everywhere(ms(300), &alice);
            let after = s
                .login(ms(600), &alice, Permissions::empty())
                .expect("login");
            let mut gw = Validator::new(ring, TokenRules::default());
            for (_, r) in s.feed_since(0) {
                gw.apply(r);
            }
            let got = gw.validate(after.access.token.as_bytes(), ms(700), TokenType::Access);
            assert_eq!(got.is_ok(), accepted, "plants {plants:?}: {got:?}");
        }
    }
}

#[test]
fn service_token_revocation_ignored_accepts_a_revoked_caller() {
    for (plants, revoked_refused) in [
        (Plants::NONE, true),
        (Plants::only(Plant::ServiceTokenRevocationIgnored), false),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let service = h.token_with(
            "auth-node",
            600,
            json!({"token_type": "service", "aud": "gauntlet-services", "svc_id": "auth"}),
        );
        let claims = h.gw.check_service_token(h.now, &service).unwrap();
        h.feed(vec![gauntlet_core::token::Revocation::Jti {
            jti: claims.jti().clone(),
            exp: claims.exp(),
        }]);
        let again = h.gw.check_service_token(h.now, &service);
        assert_eq!(
            again.err(),
            revoked_refused.then_some(gauntlet_core::token::TokenError::Revoked),
            "{plants:?}"
        );
    }
}

#[test]
fn crit_header_ignored_accepts_a_token_that_demands_an_unknown_extension() {
    use base64::Engine as _;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    for (plants, accepted) in [
        (Plants::NONE, false),
        (Plants::only(Plant::CritHeaderIgnored), true),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let valid = h.token("alice");
        let payload = valid.split('.').nth(1).expect("payload");
        let header = b64(&json!({"alg": "HS256", "typ": "JWT", "crit": ["x-bind"], "x-bind": 1}));
        let input = format!("{header}.{payload}");
        let key = jsonwebtoken::EncodingKey::from_secret(common::SECRET).expect("key");
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
                .expect("sign");
        let d = h.handshake(h.bearer(&format!("{input}.{sig}"))).1;
        match (accepted, &d) {
            (true, HandshakeDecision::Accept { .. }) => {}
            (false, HandshakeDecision::Reject { code, .. }) => assert_eq!(*code, "critical_header"),
            _ => panic!("plants {plants:?}: {d:?}"),
        }
    }
}

#[test]
fn broadcast_leak_sends_every_users_copy_of_a_broadcast_to_everyone() {
    for (plants, per_conn) in [(Plants::NONE, 1), (Plants::only(Plant::BroadcastLeak), 2)] {
        let mut h = Harness::with(Config::default(), plants);
        let a = h.connect("alice");
        let t = h.token_with("ops", 600, json!({"permissions": ["system:broadcast"]}));
        let ops = h.connect_with(&t);
        h.send(ops, r#"{"type":"broadcast","payload":{"text":"hi"}}"#);
        for conn in [a, ops] {
            let notices = h.of_type(conn, "system_notice");
            assert_eq!(notices.len(), per_conn, "plants {plants:?}: {notices:?}");
        }
        // Each user's stream still holds exactly its own copy.
        for user in ["alice", "ops"] {
            let user = gauntlet_core::UserId::parse(user).expect("id");
            assert_eq!(h.gw.latest_seq(&user).get(), 1, "plants {plants:?}: {user}");
        }
        // The correct gateway logs the broadcast once; the leak keeps its old shape, one
        // append per user.
        let kinds: Vec<String> = h
            .log
            .iter()
            .filter_map(|e| match &e.event {
                gauntlet_core::Event::StreamAppended { user, .. } => Some(user.to_string()),
                gauntlet_core::Event::StreamBroadcast { .. } => Some("broadcast".to_owned()),
                _ => None,
            })
            .collect();
        let expected: &[&str] = if plants == Plants::NONE {
            &["broadcast"]
        } else {
            &["alice", "ops"]
        };
        assert_eq!(kinds, expected, "plants {plants:?}");
    }
}

#[test]
fn unbounded_queue_lets_a_resume_page_past_entries_trimmed_meanwhile_with_a_gap_notice() {
    // Only with the queue unbounded can a new event reach a connection whose backfill waits
    // on a full queue; its append trims entries the backfill has not sent yet.
    let mut cfg = Config::default();
    cfg.limits.send_queue_capacity = 2;
    cfg.limits.outbox_max_events = 4;
    let mut h = Harness::with(cfg, Plants::only(Plant::UnboundedQueue));
    let fast = h.connect("alice");
    start_run(&mut h, fast, "t0");
    h.advance(Duration::from_secs(10));
    let total = *h.seqs(fast).last().expect("events");
    assert!(total >= 5, "{total}");
    let slow = h.connect("alice");
    h.auto_ack.insert(slow, false);
    // Retained: total-3 ..= total. One page of two fills the queue.
    h.send_json(
        slow,
        json!({"type":"resume","payload":{"last_seq": total - 4}}),
    );
    assert_eq!(h.seqs(slow), [total - 3, total - 2]);
    // Three new events reach the slow connection too and trim the outbox to total..=total+3,
    // past the backfill's next seq (total-1).
    for thread in ["t1", "t2", "t3"] {
        start_run(&mut h, fast, thread);
    }
    assert_eq!(h.seqs(slow).len(), 5);
    h.auto_ack.insert(slow, true);
    h.input(Input::Sent {
        conn: slow,
        frames: 5,
    });
    let gap = h.of_type(slow, "error");
    assert_eq!(gap.len(), 1, "{gap:?}");
    assert_eq!(gap[0]["code"], "RESUME_GAP");
    assert_eq!(gap[0]["oldest_seq"].as_u64(), Some(total));
    assert_eq!(
        h.seqs(slow),
        [total - 3, total - 2, total + 1, total + 2, total + 3, total],
        "the backfill goes on from the oldest kept"
    );
    let resumed = h.of_type(slow, "resumed");
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["from_seq"].as_u64(), Some(total - 3));
    assert_eq!(resumed[0]["count"].as_u64(), Some(3));
    assert_eq!(h.close_code(slow), None);
}

#[test]
fn retired_key_accepted_lets_a_retired_keys_token_through() {
    for (plants, accepted) in [
        (Plants::NONE, false),
        (Plants::only(Plant::RetiredKeyAccepted), true),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        let token = h.token("alice");
        // The ring's one key, named so it can be retired (a token without `kid` selects it).
        let kid = gauntlet_core::Kid::parse("k1").expect("kid");
        let mut ring = gauntlet_core::token::KeyRing::new();
        ring.add_hmac(
            Some(kid.clone()),
            gauntlet_core::token::Algorithm::HS256,
            common::SECRET,
        )
        .expect("hmac key");
        ring.retire(&kid).expect("retire");
        h.input(Input::Auth(gauntlet_core::AuthUpdate::Keys(Box::new(ring))));
        let d = h.handshake(h.bearer(&token)).1;
        match (accepted, &d) {
            (true, HandshakeDecision::Accept { .. }) => {}
            (false, HandshakeDecision::Reject { code, .. }) => assert_eq!(*code, "key_retired"),
            _ => panic!("plants {plants:?}: {d:?}"),
        }
    }
}

#[test]
fn rejection_cached_refuses_a_token_again_once_it_is_valid() {
    for (plants, second) in [
        (Plants::NONE, None),
        (Plants::only(Plant::RejectionCached), Some("not_yet_valid")),
    ] {
        let mut h = Harness::with(Config::default(), plants);
        // Valid from 40 s on: 10 s past the 30 s leeway now.
        let token = h.token_with("alice", 600, json!({"nbf": h.now.unix_secs() + 40}));
        let first = h.handshake(h.bearer(&token)).1;
        assert!(
            matches!(
                &first,
                HandshakeDecision::Reject {
                    code: "not_yet_valid",
                    ..
                }
            ),
            "plants {plants:?}: {first:?}"
        );
        h.advance(Duration::from_secs(11));
        let again = h.handshake(h.bearer(&token)).1;
        match (second, &again) {
            (None, HandshakeDecision::Accept { .. }) => {}
            (Some(code), HandshakeDecision::Reject { code: c, .. }) => assert_eq!(*c, code),
            _ => panic!("plants {plants:?}: {again:?}"),
        }
    }
}
