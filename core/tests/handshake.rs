//! Every handshake outcome of docs/protocol.md section 8, through the public `Gateway` API.

mod common;

use std::time::Duration;

use common::{Harness, ip};
use gauntlet_core::protocol::{HandshakeRequest, token_subprotocol, token_subprotocols};
use gauntlet_core::token::Revocation;
use gauntlet_core::{
    AuthUpdate, Config, Event, HandshakeDecision, HttpStatus, Input, Jti, Outputs, UserId,
};
use serde_json::json;

fn rejected(d: &HandshakeDecision) -> Option<(u16, &'static str)> {
    match d {
        HandshakeDecision::Reject { status, code, .. } => Some((status.as_u16(), *code)),
        HandshakeDecision::Accept { .. } => None,
    }
}

#[test]
fn bearer_handshake_accepts_and_announces_connection() {
    let mut h = Harness::new();
    let t = h.token("alice");
    let (conn, d) = h.handshake(h.bearer(&t));
    assert_eq!(
        d,
        HandshakeDecision::Accept {
            user: UserId::parse("alice").expect("id"),
            subprotocol: None
        }
    );
    let hello = &h.frames(conn)[0];
    assert_eq!(hello["type"], "connection_established");
    assert_eq!(hello["user_id"], "alice");
    assert_eq!(hello["connection_id"], conn.get());
    assert_eq!(hello["latest_seq"], 0);
    assert_eq!(
        hello["critical_events"],
        json!([
            "agent_started",
            "agent_thinking",
            "tool_executing",
            "tool_completed",
            "agent_completed"
        ])
    );
}

#[test]
fn subprotocol_handshake_selects_jwt() {
    let mut h = Harness::new();
    let t = h.token("bob");
    let req = HandshakeRequest::new(ip(1)).header(
        "Sec-WebSocket-Protocol",
        &format!("chat, {}", token_subprotocols(&t)),
    );
    let (_, d) = h.handshake(req);
    assert_eq!(
        d,
        HandshakeDecision::Accept {
            user: UserId::parse("bob").expect("id"),
            subprotocol: Some("jwt")
        }
    );
}

#[test]
fn subprotocol_token_without_jwt_is_400_and_opens_nothing() {
    let mut h = Harness::new();
    let t = h.token("bob");
    let req = HandshakeRequest::new(ip(1)).header(
        "Sec-WebSocket-Protocol",
        &format!("chat, {}", token_subprotocol(&t)),
    );
    let (_, d) = h.handshake(req);
    assert_eq!(
        d,
        HandshakeDecision::Reject {
            status: HttpStatus::BadRequest,
            code: "jwt_subprotocol_required",
            retry_after_ms: None,
        }
    );
    // Offered beside `jwt`, in a second header, the same token opens and `jwt` is selected.
    let req = HandshakeRequest::new(ip(1))
        .header("Sec-WebSocket-Protocol", &token_subprotocol(&t))
        .header("Sec-WebSocket-Protocol", "jwt");
    let (_, d) = h.handshake(req);
    assert!(matches!(
        d,
        HandshakeDecision::Accept {
            subprotocol: Some("jwt"),
            ..
        }
    ));
}

#[test]
fn subprotocol_token_not_base64url_or_not_utf8_is_401_bad_subprotocol() {
    let mut h = Harness::new();
    // `!` is outside base64url; `_w` decodes to the lone byte 0xff, which is not UTF-8.
    for offer in ["jwt, jwt.not!base64", "jwt, jwt._w"] {
        let req = HandshakeRequest::new(ip(1)).header("Sec-WebSocket-Protocol", offer);
        let (conn, d) = h.handshake(req);
        assert_eq!(rejected(&d), Some((401, "bad_subprotocol")), "{offer}");
        assert!(!h.gw.is_open(conn), "{offer}");
    }
    assert_eq!(h.gw.stats().connections, 0);
}

#[test]
fn ticket_is_single_use_and_short_lived() {
    let mut h = Harness::new();
    let t = h.token("carol");
    let out = h.input(Input::IssueTicket {
        request: 7,
        authorization: Some(format!("Bearer {t}")),
    });
    let (req, answer) = out.tickets[0].clone();
    assert_eq!(req, 7);
    let ticket = answer.expect("ticket issued").ticket;
    let use_ticket = |h: &mut Harness, ticket: &str| {
        h.handshake(HandshakeRequest::new(ip(2)).with_query(&format!("ticket={ticket}")))
            .1
    };
    assert!(
        matches!(use_ticket(&mut h, &ticket), HandshakeDecision::Accept { ref user, .. } if user.as_str() == "carol")
    );
    assert_eq!(
        rejected(&use_ticket(&mut h, &ticket)),
        Some((401, "unknown_ticket"))
    );

    let out = h.input(Input::IssueTicket {
        request: 8,
        authorization: Some(format!("Bearer {t}")),
    });
    let second = out.tickets[0].1.clone().expect("ticket").ticket;
    assert_ne!(second, ticket);
    h.advance(Duration::from_secs(31));
    let d = use_ticket(&mut h, &second);
    assert!(
        matches!(
            rejected(&d),
            Some((401, "ticket_expired" | "unknown_ticket"))
        ),
        "{d:?}"
    );
}

/// Regression: one user could take the whole ticket store.
#[test]
fn ticket_per_user_bound_refuses_the_hoarder_and_serves_others() {
    let mut h = Harness::new();
    let bound = Config::default().limits.max_tickets_per_user;
    let mallory = h.token("mallory");
    let ask = |h: &mut Harness, token: &str, request: u64| {
        h.input(Input::IssueTicket {
            request,
            authorization: Some(format!("Bearer {token}")),
        })
        .tickets[0]
            .1
            .clone()
            .map_err(|r| (r.status, r.code))
    };
    for i in 0..bound {
        assert!(ask(&mut h, &mallory, i as u64).is_ok(), "ticket {i}");
    }
    assert_eq!(
        ask(&mut h, &mallory, 99).map(|_| ()),
        Err((HttpStatus::TooManyRequests, "too_many_tickets_per_user"))
    );
    let erin = h.token("erin");
    assert!(ask(&mut h, &erin, 100).is_ok());
    // Redeeming one gives its place back; so does expiry.
    let ticket = ask(&mut h, &erin, 101).expect("erin's second").ticket;
    let _ = h.handshake(HandshakeRequest::new(ip(3)).with_query(&format!("ticket={ticket}")));
    h.advance(Duration::from_secs(31));
    let mallory = h.token("mallory");
    assert!(ask(&mut h, &mallory, 102).is_ok());
}

#[test]
fn ticket_endpoint_requires_a_valid_bearer() {
    let mut h = Harness::new();
    let out = h.input(Input::IssueTicket {
        request: 1,
        authorization: None,
    });
    assert_eq!(
        out.tickets[0].1.clone().map_err(|r| (r.status, r.code)),
        Err((HttpStatus::Unauthorized, "missing_credential"))
    );
    let out = h.input(Input::IssueTicket {
        request: 2,
        authorization: Some("Bearer a.b.c".into()),
    });
    assert_eq!(
        out.tickets[0].1.clone().map_err(|r| r.status),
        Err(HttpStatus::Unauthorized)
    );
}

#[test]
fn query_token_is_refused_unless_enabled() {
    let mut h = Harness::new();
    let t = h.token("dave");
    let q = format!("token={t}");
    assert_eq!(
        rejected(&h.handshake(HandshakeRequest::new(ip(1)).with_query(&q)).1),
        Some((401, "query_token_disabled"))
    );
    let mut cfg = Config::default();
    cfg.limits.allow_query_token = true;
    let mut h = Harness::with_config(cfg);
    let t = h.token("dave");
    let d = h
        .handshake(HandshakeRequest::new(ip(1)).with_query(&format!("token={t}")))
        .1;
    assert!(matches!(d, HandshakeDecision::Accept { .. }), "{d:?}");
}

#[test]
fn bad_expired_and_missing_credentials_get_401_with_reason() {
    let mut h = Harness::new();
    assert_eq!(
        rejected(&h.handshake(HandshakeRequest::new(ip(1))).1),
        Some((401, "missing_credential"))
    );
    let t = h.token("erin");
    let forged = common::tamper_signature(&t);
    assert_eq!(
        rejected(&h.handshake(h.bearer(&forged)).1),
        Some((401, "bad_signature"))
    );
    let short = h.token_with("erin", 10, json!({}));
    h.advance(Duration::from_secs(10 + 30));
    assert_eq!(
        rejected(&h.handshake(h.bearer(&short)).1),
        Some((401, "expired"))
    );
    let refresh = h.token_with("erin", 600, json!({"token_type": "refresh"}));
    assert_eq!(
        rejected(&h.handshake(h.bearer(&refresh)).1),
        Some((401, "wrong_token_type"))
    );
    let basic = HandshakeRequest::new(ip(1)).header("Authorization", "Basic Zm9v");
    assert_eq!(
        rejected(&h.handshake(basic).1),
        Some((401, "bad_authorization"))
    );
}

#[test]
fn revoked_token_gets_401() {
    let mut h = Harness::new();
    let t = h.token("frank");
    let jti = Jti::parse(&Harness::jti_of(&t)).expect("jti");
    let exp = h.now.saturating_add(Duration::from_secs(600));
    h.feed(vec![Revocation::Jti { jti, exp }]);
    assert_eq!(
        rejected(&h.handshake(h.bearer(&t)).1),
        Some((401, "revoked"))
    );
}

#[test]
fn origin_outside_allow_list_gets_403() {
    let mut cfg = Config::default();
    cfg.limits.origin_allow_list = vec!["https://app.example".into()];
    let mut h = Harness::with_config(cfg);
    let t = h.token("gina");
    assert_eq!(
        rejected(&h.handshake(h.bearer(&t)).1),
        Some((403, "origin_not_allowed"))
    );
    let evil = h.bearer(&t).header("Origin", "https://evil.example");
    assert_eq!(
        rejected(&h.handshake(evil).1),
        Some((403, "origin_not_allowed"))
    );
    let good = h.bearer(&t).header("Origin", "https://app.example");
    assert!(matches!(
        h.handshake(good).1,
        HandshakeDecision::Accept { .. }
    ));
}

#[test]
fn per_user_cap_is_429_and_released_on_close() {
    let mut h = Harness::new();
    let conns: Vec<_> = (0..10).map(|_| h.connect("hal")).collect();
    let t = h.token("hal");
    assert_eq!(
        rejected(&h.handshake(h.bearer(&t)).1),
        Some((429, "too_many_connections"))
    );
    h.input(Input::Closed { conn: conns[0] });
    let t = h.token("hal");
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Accept { .. }
    ));
    // A gateway-side close (binary frame, 1003) releases the slot too.
    h.input(Input::Binary {
        conn: conns[1],
        len: 3,
    });
    assert_eq!(h.close_code(conns[1]), Some(1003));
    let t = h.token("hal");
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Accept { .. }
    ));
}

#[test]
fn per_ip_handshake_rate_is_429_with_retry_after() {
    let mut h = Harness::new();
    let t = h.token("ivan");
    let req = || HandshakeRequest::new(ip(9)).header("Authorization", "Bearer nope");
    for i in 0..10 {
        assert_eq!(
            rejected(&h.handshake(req()).1).map(|r| r.0),
            Some(401),
            "attempt {i}"
        );
    }
    match h.handshake(req()).1 {
        HandshakeDecision::Reject {
            status,
            code,
            retry_after_ms,
        } => {
            assert_eq!((status.as_u16(), code), (429, "ip_rate_limited"));
            assert_eq!(retry_after_ms, Some(200));
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // Another IP is unaffected; after 200 ms this IP gets one more try.
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Accept { .. }
    ));
    h.now = h.now.saturating_add(Duration::from_millis(200));
    assert_eq!(rejected(&h.handshake(req()).1).map(|r| r.0), Some(401));
}

#[test]
fn stale_revocation_view_fails_closed_with_503() {
    let mut h = Harness::new();
    let t = h.token("judy");
    h.now = h.now.saturating_add(Duration::from_secs(6));
    assert_eq!(
        rejected(&h.handshake(h.bearer(&t)).1),
        Some((503, "auth_unavailable"))
    );
    h.feed(vec![]);
    assert!(matches!(
        h.handshake(h.bearer(&t)).1,
        HandshakeDecision::Accept { .. }
    ));
}

#[test]
fn wrong_path_is_404_and_oversized_handshake_is_400() {
    let mut h = Harness::new();
    let t = h.token("kim");
    let mut req = h.bearer(&t);
    req.path = "/admin".into();
    assert_eq!(rejected(&h.handshake(req).1), Some((404, "not_found")));
    let big = h.bearer(&t).header("X-Big", &"x".repeat(20_000));
    assert_eq!(
        rejected(&h.handshake(big).1),
        Some((400, "handshake_too_large"))
    );
}

/// The seed is in every journal header: a gateway given a ticket secret must issue tickets
/// that neither the seed alone nor another secret reproduces, and redeem its own.
#[test]
fn ticket_secret_makes_tickets_independent_of_the_journaled_seed() {
    let issue = |secret: Option<[u8; 32]>| {
        let mut h = Harness::new();
        if let Some(secret) = secret {
            h.gw.set_ticket_secret(&secret);
        }
        let t = h.token("dora");
        let out = h.input(Input::IssueTicket {
            request: 1,
            authorization: Some(format!("Bearer {t}")),
        });
        let ticket = out.tickets[0].1.clone().expect("ticket issued").ticket;
        (h, ticket)
    };
    let (_, seeded) = issue(None);
    let (_, seeded_again) = issue(None);
    assert_eq!(seeded, seeded_again, "seed-derived tickets replay");
    let (mut h, secret_a) = issue(Some([7; 32]));
    let (_, secret_b) = issue(Some([8; 32]));
    assert_ne!(secret_a, seeded);
    assert_ne!(secret_a, secret_b);
    let d = h
        .handshake(HandshakeRequest::new(ip(2)).with_query(&format!("ticket={secret_a}")))
        .1;
    assert!(matches!(d, HandshakeDecision::Accept { ref user, .. } if user.as_str() == "dora"));
}

#[test]
fn handshake_reusing_an_open_connection_id_is_400() {
    let mut h = Harness::new();
    let conn = h.connect("alice");
    let t = h.token("bob");
    let out = h.input(Input::Handshake {
        conn,
        request: h.bearer(&t),
    });
    let (c, d) = out.handshake.clone().expect("a verdict");
    assert_eq!(c, conn);
    assert_eq!(rejected(&d), Some((400, "duplicate_connection_id")));
}

#[test]
fn handshake_past_max_connections_is_429_server_full() {
    let mut config = Config::default();
    config.limits.max_connections = 1;
    let mut h = Harness::with_config(config);
    h.connect("alice");
    let t = h.token("bob");
    let (_, d) = h.handshake(h.bearer(&t));
    assert_eq!(
        d,
        HandshakeDecision::Reject {
            status: HttpStatus::TooManyRequests,
            code: "server_full",
            retry_after_ms: Some(1000),
        }
    );
}

/// A gateway tracking at most one address, which alice's accepted handshake (from `ip(1)`)
/// has just taken.
fn one_address_taken_by_alice() -> Harness {
    let mut config = Config::default();
    config.limits.max_tracked_ips = 1;
    let mut h = Harness::with_config(config);
    let t = h.token("alice");
    let (_, first) = h.handshake(h.bearer(&t));
    assert!(
        matches!(first, HandshakeDecision::Accept { .. }),
        "{first:?}"
    );
    assert_eq!(h.gw.stats().ip_buckets, 1);
    h
}

/// `user`'s handshake from `ip(n)`.
fn handshake_from(h: &mut Harness, n: u8, user: &str) -> HandshakeDecision {
    let t = h.token(user);
    let request = HandshakeRequest::new(ip(n)).header("Authorization", &format!("Bearer {t}"));
    h.handshake(request).1
}

fn ip_refused(retry_after_ms: u64) -> HandshakeDecision {
    HandshakeDecision::Reject {
        status: HttpStatus::TooManyRequests,
        code: "ip_rate_limited",
        retry_after_ms: Some(retry_after_ms),
    }
}

#[test]
fn handshake_from_a_new_address_when_every_tracked_one_is_busy_is_refused_for_a_sweep() {
    let mut h = one_address_taken_by_alice();
    assert_eq!(handshake_from(&mut h, 2, "bob"), ip_refused(1000));
    // The full table refuses only new addresses: the tracked one is still served.
    let again = handshake_from(&mut h, 1, "alice");
    assert!(
        matches!(again, HandshakeDecision::Accept { .. }),
        "{again:?}"
    );
}

#[test]
fn handshake_from_a_new_address_takes_the_place_of_a_tracked_one_whose_bucket_refilled() {
    let mut h = one_address_taken_by_alice();
    // Time passes with no sweep (no tick): the tracked bucket is full again, so a new
    // address evicts it at its handshake instead of being refused.
    h.now = h.now.saturating_add(Duration::from_secs(2));
    let d = handshake_from(&mut h, 2, "bob");
    assert!(matches!(d, HandshakeDecision::Accept { .. }), "{d:?}");
    assert_eq!(h.gw.stats().ip_buckets, 1, "ip(1)'s full bucket made room");
}

#[test]
fn handshake_from_a_new_address_after_a_fruitless_scan_is_refused_for_the_rest_of_the_second() {
    let mut h = one_address_taken_by_alice();
    // The scan finds alice's bucket in use.
    assert_eq!(handshake_from(&mut h, 2, "bob"), ip_refused(1000));
    // Half a second on, alice's bucket has refilled (5 a second), but the table is not
    // walked again before the second is over, so an address spray pays one walk a second.
    h.now = h.now.saturating_add(Duration::from_millis(500));
    assert_eq!(handshake_from(&mut h, 3, "carol"), ip_refused(500));
    assert_eq!(h.gw.stats().ip_buckets, 1);
    h.now = h.now.saturating_add(Duration::from_millis(500));
    let d = handshake_from(&mut h, 3, "carol");
    assert!(matches!(d, HandshakeDecision::Accept { .. }), "{d:?}");
    assert_eq!(h.gw.stats().ip_buckets, 1, "ip(1)'s full bucket made room");
}

fn issue_ticket(h: &mut Harness, token: &str) -> Result<String, (HttpStatus, &'static str)> {
    h.input(Input::IssueTicket {
        request: 1,
        authorization: Some(format!("Bearer {token}")),
    })
    .tickets[0]
        .1
        .clone()
        .map(|t| t.ticket)
        .map_err(|r| (r.status, r.code))
}

/// A feed that brings nothing new (the same `as_of`, no revocation) is not logged: the server
/// pulls the feed every second, and each pull would otherwise be a journal line. A newer
/// `as_of` is.
#[test]
fn a_repeated_feed_with_nothing_new_logs_nothing() {
    let mut h = Harness::new();
    h.now = h.now.saturating_add(Duration::from_millis(1));
    assert_eq!(h.feed(vec![]).events.len(), 1, "a newer as_of is logged");
    assert!(h.feed(vec![]).events.is_empty(), "the same as_of is not");
    h.now = h.now.saturating_add(Duration::from_millis(1));
    assert_eq!(h.feed(vec![]).events.len(), 1);
}

/// A reused `Outputs` holds only the latest call's outputs: `handle_into` clears it first, so
/// a driver that could not carry out one call does not carry its outputs into the next.
#[test]
fn handle_into_clears_the_reused_outputs_first() {
    let mut h = Harness::new();
    let mut out = Outputs::default();
    let as_of = h.now.saturating_add(Duration::from_millis(1));
    let feed = || {
        Input::Auth(AuthUpdate::Feed {
            as_of,
            revocations: Vec::new(),
        })
    };
    h.gw.handle_into(as_of, feed(), &mut out);
    assert_eq!(out.events.len(), 1);
    h.gw.handle_into(as_of, feed(), &mut out);
    assert!(out.events.is_empty(), "{:?}", out.events);
}

/// A ticket stops counting against its user's bound at exactly its TTL, before any sweep.
#[test]
fn ticket_per_user_bound_frees_a_place_at_exactly_the_ticket_ttl() {
    let mut h = Harness::new();
    let bound = Config::default().limits.max_tickets_per_user;
    let mallory = h.token("mallory");
    for i in 0..bound {
        assert!(issue_ticket(&mut h, &mallory).is_ok(), "ticket {i}");
    }
    assert_eq!(
        issue_ticket(&mut h, &mallory),
        Err((HttpStatus::TooManyRequests, "too_many_tickets_per_user"))
    );
    h.now = h.now.saturating_add(Duration::from_millis(
        Config::default().limits.ticket_ttl_ms,
    ));
    h.feed(vec![]);
    let mallory = h.token("mallory");
    assert!(
        issue_ticket(&mut h, &mallory).is_ok(),
        "the first tickets died at their TTL"
    );
}

/// Housekeeping: an unredeemed ticket leaves the store within a sweep interval of its expiry,
/// on a running gateway and on one restarted after a crash (whose timers are rebuilt from
/// state), and a restarted gateway with nothing to sweep arms no sweep.
#[test]
fn expired_tickets_are_swept_live_and_after_a_restart() {
    let ttl = Duration::from_millis(Config::default().limits.ticket_ttl_ms);
    for restart in [false, true] {
        let mut h = Harness::new();
        let t = h.token("carol");
        issue_ticket(&mut h, &t).expect("ticket");
        if restart {
            let out = h.gw.restart(h.now);
            h.absorb(&out);
        }
        h.advance(ttl - Duration::from_secs(1));
        assert_eq!(h.gw.stats().tickets, 1, "a live ticket is not swept");
        h.advance(Duration::from_secs(2));
        assert_eq!(h.gw.stats().tickets, 0, "restart: {restart}");
        assert!(
            h.log
                .iter()
                .any(|e| matches!(e.event, Event::TicketConsumed { .. })),
            "the sweep logs the expired ticket (restart: {restart})"
        );
    }
    let mut h = Harness::new();
    let out = h.gw.restart(h.now);
    h.absorb(&out);
    assert_eq!(h.gw.next_deadline(), None, "no ticket, no sweep");
}

/// Whether a sweep is due within a second (the sweep's interval); a session's expiry is not.
fn sweep_armed(h: &Harness) -> bool {
    h.gw.next_deadline()
        .is_some_and(|at| at <= h.now.saturating_add(Duration::from_secs(1)))
}

/// Housekeeping drops an address's handshake bucket once it has refilled, sweeping again
/// while it has not, and then stops sweeping.
#[test]
fn sweep_drops_an_address_bucket_once_refilled_and_then_stops() {
    let mut h = Harness::new();
    // Ten handshakes from one address empty its bucket (burst 10, 5 a second: full in 2 s).
    for _ in 0..10 {
        let t = h.token("alice");
        let req = h.bearer(&t);
        let (_, d) = h.handshake(req);
        assert!(matches!(d, HandshakeDecision::Accept { .. }), "{d:?}");
    }
    assert_eq!(h.gw.stats().ip_buckets, 1);
    h.advance(Duration::from_millis(1500));
    assert_eq!(
        h.gw.stats().ip_buckets,
        1,
        "half refilled after the first sweep"
    );
    assert!(sweep_armed(&h), "the sweep comes back for it");
    h.advance(Duration::from_millis(1500));
    assert_eq!(h.gw.stats().ip_buckets, 0, "refilled: dropped");
    assert!(!sweep_armed(&h), "nothing left to sweep");
}

/// A departed user's message bucket goes once it has refilled (the sweep comes back until
/// then); a connected user's stays.
#[test]
fn sweep_drops_a_departed_users_bucket_once_refilled_and_keeps_a_connected_ones() {
    let mut h = Harness::new();
    let alice = h.connect("alice");
    let bob = h.connect("bob");
    h.send(alice, r#"{"type":"ping"}"#);
    // Bob empties his bucket (burst 20, 10 a second: full in 2 s) and leaves.
    for _ in 0..20 {
        h.send(bob, r#"{"type":"ping"}"#);
    }
    assert_eq!(h.of_type(bob, "pong").len(), 20);
    h.input(Input::Closed { conn: bob });
    assert_eq!(h.gw.stats().user_buckets, 2);
    h.advance(Duration::from_millis(1500));
    let s = h.gw.stats();
    assert_eq!(
        (s.ip_buckets, s.user_buckets),
        (0, 2),
        "bob's is half refilled"
    );
    assert!(
        sweep_armed(&h),
        "the sweep comes back for bob's bucket alone"
    );
    h.advance(Duration::from_millis(1500));
    assert_eq!(
        h.gw.stats().user_buckets,
        1,
        "bob's refilled: dropped; alice's stays"
    );
    assert!(!sweep_armed(&h), "nothing left to sweep");
}

#[test]
fn ticket_store_full_is_429_too_many_tickets() {
    let mut config = Config::default();
    config.limits.max_tickets = 1;
    let mut h = Harness::with_config(config);
    let alice = h.token("alice");
    assert!(issue_ticket(&mut h, &alice).is_ok());
    let bob = h.token("bob");
    assert_eq!(
        issue_ticket(&mut h, &bob),
        Err((HttpStatus::TooManyRequests, "too_many_tickets"))
    );
}

#[test]
fn ticket_redeemed_at_its_expiry_before_the_sweep_is_401_ticket_expired() {
    let mut h = Harness::new();
    let t = h.token("carol");
    let ticket = issue_ticket(&mut h, &t).expect("ticket");
    // Jump straight to the expiry (no tick, so no sweep) with a fresh feed.
    h.now = h.now.saturating_add(Duration::from_millis(
        Config::default().limits.ticket_ttl_ms,
    ));
    h.feed(vec![]);
    let (_, d) = h.handshake(HandshakeRequest::new(ip(2)).with_query(&format!("ticket={ticket}")));
    assert_eq!(rejected(&d), Some((401, "ticket_expired")));
}

#[test]
fn ticket_outliving_its_token_is_401_token_expired() {
    let mut config = Config::default();
    config.limits.ticket_ttl_ms = 120_000;
    let mut h = Harness::with_config(config);
    let t = h.token_with("carol", 5, json!({}));
    let ticket = issue_ticket(&mut h, &t).expect("ticket");
    // Past the token's exp plus the 30 s leeway, still inside the ticket's 120 s.
    h.now = h.now.saturating_add(Duration::from_secs(36));
    h.feed(vec![]);
    let (_, d) = h.handshake(HandshakeRequest::new(ip(2)).with_query(&format!("ticket={ticket}")));
    assert_eq!(
        rejected(&d),
        Some((401, gauntlet_core::token::TokenError::Expired.code()))
    );
}
