//! The instruction-count gate (`.ci/bench-gate`): the hot paths of the criterion benches, each
//! run once under callgrind by gungraun. Instruction counts do not depend on machine noise, so
//! `.ci/bench-gate` can hold them to 5 % over `benches/baseline/instructions.txt`.
//! Setup (key rings, connections, warmed caches) happens in the `bench` arguments and is not
//! counted; each benchmark function is exactly one operation.

use std::hint::black_box;
use std::time::Duration;

use gauntlet_benches::{GatewayFixture, PeerClaims, TokenKit, bench_config, now};
use gauntlet_core::oauth::{
    AuthorizationCode, AuthorizeRequest, CallbackRequest, Grant, OAuth, OAuthConfig, OAuthError,
    s256_challenge,
};
use gauntlet_core::permissions::Permissions;
use gauntlet_core::token::{
    self, Claims, KeyRing, RefreshError, RefreshFamilies, TokenError, TokenRules, TokenType,
    Validator,
};
use gauntlet_core::{ConnId, FamilyId, Input, Instant, Jti, Outputs, Plants, UserId};
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

/// A gateway with one connection per name (each allowed to broadcast), and the first of them.
fn with_conns(names: impl Iterator<Item = String>) -> (GatewayFixture, ConnId) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let mut first = None;
    for name in names {
        let c = fx.connect(&name, &["system:broadcast"]).expect("connect");
        first.get_or_insert(c);
    }
    (fx, first.expect("at least one connection"))
}

/// One broadcast from the first connection through a kept `Outputs`, as the criterion bench
/// and the server's driver run: the measured broadcast then appends to outboxes that exist and
/// finds the gateway's render buffer and the output lists at their working size, instead of
/// growing them from empty.
fn warmed(gateway: (GatewayFixture, ConnId), reach: usize) -> (GatewayFixture, ConnId, Outputs) {
    let (mut fx, first) = gateway;
    let mut out = Outputs::default();
    fx.text_into(first, BROADCAST, &mut out);
    assert_eq!(
        out.sends.len(),
        reach,
        "the warm-up reached every connection"
    );
    (fx, first, out)
}

/// A gateway with `conns` connections of one user.
fn connected(conns: usize) -> (GatewayFixture, ConnId) {
    with_conns((0..conns).map(|_| "user-0001".to_string()))
}

fn connected_warm(conns: usize) -> (GatewayFixture, ConnId, Outputs) {
    warmed(connected(conns), conns)
}

/// A gateway with `users` users of one connection each, after one broadcast.
fn one_each(users: usize) -> (GatewayFixture, ConnId, Outputs) {
    warmed(
        with_conns((0..users).map(|u| format!("user-{u:04}"))),
        users,
    )
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

/// Entries in each full store below. The production caps are larger (100 000 refresh families
/// and redeemed codes, 10 000 pending states and codes), but the work of one sign-in must not
/// grow with the store at all: at 10 000 a scan of the store (what these paths did before)
/// still costs a hundred times the budget, and callgrind's setup stays short.
const FULL: usize = 10_000;
const OAUTH_SECRET: &[u8] = b"gauntlet-bench-oauth-secret-0123456789";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kQb6W4gN3kv-1b-JmMZOJjNW6jc";
const CLIENT: &str = "web";
const REDIRECT: &str = "https://app.example/cb";

fn at_millis(ms: u64) -> Instant {
    now().saturating_add(Duration::from_millis(ms))
}

/// A refresh-family store at its cap whose oldest family died at the returned instant (the
/// rest die a second apart after it): the next sign-in must make room by dropping that one.
fn families_full() -> (RefreshFamilies, Instant) {
    let leeway = Duration::from_secs(30);
    let mut families = RefreshFamilies::new(FULL, leeway, Plants::NONE);
    let user = UserId::parse("user-0001").expect("user id");
    for i in 0..FULL {
        let id = families.next_family(now()).expect("room below the cap");
        let jti = Jti::parse(&format!("jti-{i}")).expect("jti");
        let exp = now().saturating_add(Duration::from_secs(60 + i as u64));
        families.start(id, user.clone(), jti.clone(), &[(jti, exp)]);
    }
    let first_dead = now().saturating_add(Duration::from_secs(60) + leeway);
    (families, first_dead)
}

fn oauth_full(config: OAuthConfig) -> OAuth {
    OAuth::new(OAUTH_SECRET, config, Plants::NONE).expect("oauth")
}

/// Every store at [`FULL`], states and codes living 60 s like the code TTL.
fn full_config() -> OAuthConfig {
    OAuthConfig {
        state_ttl: Duration::from_secs(60),
        code_ttl: Duration::from_secs(60),
        max_states: FULL,
        max_codes: FULL,
        max_redeemed: FULL,
    }
}

/// Who authorizes: built in setup, so the measured call counts only the model's work.
struct Client {
    user: UserId,
    permissions: Permissions,
    challenge: String,
}

impl Client {
    fn new() -> Self {
        Self {
            user: UserId::parse("user-0001").expect("user id"),
            permissions: Permissions::empty(),
            challenge: s256_challenge(VERIFIER),
        }
    }
}

fn authorize(
    oauth: &mut OAuth,
    client: &Client,
    at: Instant,
    state: &str,
) -> Result<AuthorizationCode, OAuthError> {
    oauth.authorize(
        at,
        &AuthorizeRequest {
            user: &client.user,
            permissions: &client.permissions,
            client_id: CLIENT,
            redirect_uri: REDIRECT,
            code_challenge: &client.challenge,
            method: "S256",
            state,
        },
    )
}

fn callback(oauth: &mut OAuth, at: Instant, code: &AuthorizationCode) -> Result<Grant, OAuthError> {
    oauth.callback(
        at,
        &CallbackRequest {
            code: &code.code,
            state: &code.state,
            code_verifier: VERIFIER,
            redirect_uri: REDIRECT,
            client_id: CLIENT,
        },
    )
}

/// An OAuth model whose redeemed-code store is full, the oldest tombstone dying at the returned
/// instant (the others a millisecond apart after it), and one pending code to redeem then.
fn redeemed_full() -> (OAuth, AuthorizationCode, Instant) {
    let mut oauth = oauth_full(full_config());
    let client = Client::new();
    for i in 0..FULL {
        let at = at_millis(i as u64);
        let code = authorize(&mut oauth, &client, at, &format!("s-{i}")).expect("authorize");
        callback(&mut oauth, at, &code).expect("redeem");
    }
    let at = at_millis(FULL as u64);
    let code = authorize(&mut oauth, &client, at, "s-measured").expect("authorize");
    (oauth, code, at_millis(60_000))
}

/// An OAuth model whose pending states and codes are full, the oldest of each dying at the
/// returned instant.
fn pending_full() -> (OAuth, Client, Instant) {
    let mut oauth = oauth_full(full_config());
    let client = Client::new();
    for i in 0..FULL {
        let at = at_millis(i as u64);
        authorize(&mut oauth, &client, at, &format!("s-{i}")).expect("authorize");
    }
    (oauth, client, at_millis(60_000))
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
#[bench::send_to_user_10_conns(connected_warm(10))]
#[bench::broadcast_1000_conns(one_each(1000))]
fn fanout(input: (GatewayFixture, ConnId, Outputs)) -> (Outputs, GatewayFixture) {
    let (mut fx, conn, mut out) = input;
    fx.text_into(conn, black_box(BROADCAST), &mut out);
    black_box((out, fx))
}

#[library_benchmark]
#[bench::hs256(handshake_ready())]
fn handshake(input: (GatewayFixture, Input)) -> (Outputs, GatewayFixture) {
    let (mut fx, hs) = input;
    let out = fx.handle(black_box(hs));
    black_box((out, fx))
}

#[library_benchmark]
#[bench::refresh_family(families_full())]
fn sign_in_full_store(input: (RefreshFamilies, Instant)) -> RefreshFamilies {
    let (mut families, at) = input;
    let id: Result<FamilyId, RefreshError> = families.next_family(black_box(at));
    assert!(id.is_ok(), "the dead family made room");
    black_box(families)
}

#[library_benchmark]
#[bench::redeemed(redeemed_full())]
fn oauth_callback_full_store(input: (OAuth, AuthorizationCode, Instant)) -> (Grant, OAuth) {
    let (mut oauth, code, at) = input;
    let grant = callback(&mut oauth, black_box(at), &code);
    assert_eq!(
        oauth.redeemed_count(),
        FULL,
        "one tombstone dropped, one added"
    );
    black_box((grant.expect("the code redeems"), oauth))
}

#[library_benchmark]
#[bench::pending(pending_full())]
fn oauth_authorize_full_store(input: (OAuth, Client, Instant)) -> (AuthorizationCode, OAuth) {
    let (mut oauth, client, at) = input;
    let code = authorize(&mut oauth, &client, black_box(at), "s-measured");
    assert_eq!(oauth.state_count(), FULL, "one expired state made room");
    black_box((code.expect("room was made"), oauth))
}

library_benchmark_group!(
    name = hot_paths,
    benchmarks = [
        validate_uncached,
        validate_cached,
        parse_route,
        fanout,
        handshake,
        sign_in_full_store,
        oauth_callback_full_store,
        oauth_authorize_full_store
    ]
);

main!(library_benchmark_groups = hot_paths);
