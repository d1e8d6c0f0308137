//! The instruction-count gate (`.ci/bench-gate`): the hot paths of the criterion benches, each
//! run once under callgrind by gungraun. Instruction counts do not depend on machine noise, so
//! `.ci/bench-gate` can hold them to 5 % over `benches/baseline/instructions.txt`.
//! Setup (key rings, connections, warmed caches) happens in the `bench` arguments and is not
//! counted; each benchmark function is exactly one operation.

use std::hint::black_box;

use gauntlet_benches::{GatewayFixture, PeerClaims, TokenKit, bench_config, now};
use gauntlet_core::token::{self, Claims, KeyRing, TokenError, TokenRules, TokenType, Validator};
use gauntlet_core::{ConnId, Input, Outputs};
use gungraun::{library_benchmark, library_benchmark_group, main};

const PING: &[u8] = br#"{"type":"ping","message_id":"m-1"}"#;
const BROADCAST: &[u8] = br#"{"type":"broadcast","payload":{"text":"maintenance at 02:00 UTC"}}"#;

fn hs256_token() -> String {
    TokenKit::new()
        .expect("keys")
        .access_hs256("user-0001", "jti-0001", &["threads:read", "runs:*"])
        .expect("mint")
}

fn uncached() -> (String, KeyRing) {
    (hs256_token(), TokenKit::ring().expect("ring"))
}

fn cached() -> (String, Validator) {
    let token = hs256_token();
    let mut v = Validator::new(TokenKit::ring().expect("ring"), TokenRules::default());
    v.validate(token.as_bytes(), now(), TokenType::Access)
        .expect("warm the cache");
    (token, v)
}

/// A gateway with `conns` connections of one user who may broadcast.
fn connected(conns: usize) -> (GatewayFixture, ConnId) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let mut first = None;
    for _ in 0..conns {
        let c = fx
            .connect("user-0001", &["system:broadcast"])
            .expect("connect");
        first.get_or_insert(c);
    }
    (fx, first.expect("at least one connection"))
}

/// A gateway with `users` users of one connection each, the first of whom may broadcast, and
/// one broadcast already sent: the measured one appends to outboxes that exist, as in the
/// criterion bench's steady state, rather than creating them.
fn one_each(users: usize) -> (GatewayFixture, ConnId) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let mut first = None;
    for u in 0..users {
        let c = fx
            .connect(&format!("user-{u:04}"), &["system:broadcast"])
            .expect("connect");
        first.get_or_insert(c);
    }
    let first = first.expect("at least one user");
    let warm = fx.text(first, BROADCAST);
    assert_eq!(
        warm.sends.len(),
        users,
        "the warm-up broadcast reached every user"
    );
    (fx, first)
}

fn handshake_ready() -> (GatewayFixture, Input<'static>) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let claims = PeerClaims::access("user-0001", "jti-0001", &[]);
    let token = fx
        .kit()
        .mint(gauntlet_benches::BenchAlg::Hs256, &claims)
        .expect("mint");
    let conn = fx.next_conn();
    let request = GatewayFixture::bearer(conn, &token);
    (fx, Input::Handshake { conn, request })
}

#[library_benchmark]
#[bench::hs256(uncached())]
fn validate_uncached(input: (String, KeyRing)) -> Result<Claims, TokenError> {
    let (token, ring) = input;
    black_box(token::validate(
        black_box(token.as_bytes()),
        now(),
        &ring,
        &TokenRules::default(),
        TokenType::Access,
    ))
}

#[library_benchmark]
#[bench::hs256(cached())]
fn validate_cached(input: (String, Validator)) -> (Result<Claims, TokenError>, Validator) {
    let (token, mut v) = input;
    let r = v.validate(black_box(token.as_bytes()), now(), TokenType::Access);
    black_box((r, v))
}

#[library_benchmark]
#[bench::ping(connected(1))]
fn parse_route(input: (GatewayFixture, ConnId)) -> (Outputs, GatewayFixture) {
    let (mut fx, conn) = input;
    let out = fx.text(conn, black_box(PING));
    black_box((out, fx))
}

#[library_benchmark]
#[bench::send_to_user_10_conns(connected(10))]
#[bench::broadcast_1000_conns(one_each(1000))]
fn fanout(input: (GatewayFixture, ConnId)) -> (Outputs, GatewayFixture) {
    let (mut fx, conn) = input;
    let out = fx.text(conn, black_box(BROADCAST));
    black_box((out, fx))
}

#[library_benchmark]
#[bench::hs256(handshake_ready())]
fn handshake(input: (GatewayFixture, Input)) -> (Outputs, GatewayFixture) {
    let (mut fx, hs) = input;
    let out = fx.handle(black_box(hs));
    black_box((out, fx))
}

library_benchmark_group!(
    name = hot_paths,
    benchmarks = [
        validate_uncached,
        validate_cached,
        parse_route,
        fanout,
        handshake
    ]
);

main!(library_benchmark_groups = hot_paths);
