//! The `handshake` harness: a short sequence of upgrade requests (headers, subprotocols,
//! query, origin, peer) built from the input, mixing real tokens and tickets (valid,
//! expired, revoked, forged, key-confused, wrong type) with arbitrary text, plus ticket
//! issuing, revocations and clock moves. An independent model of docs/protocol.md section 8
//! decides which credential a request presents and whether it is valid now; the gateway
//! may refuse for its own reasons (rates, caps) but must never accept what the model
//! refuses. The model must not call the gateway's credential parser.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::drive::Drive;
use super::{Mode, OracleViolation, capped, fixtures};
use crate::protocol::{HandshakeRequest, MAX_HANDSHAKE_BYTES, MAX_HEADERS as MAX_HEADERS_READ};
use crate::token::{Algorithm, Revocation};
use crate::{Config, ConnId, Gateway, HandshakeDecision, Input, Instant, Jti, Plants};

/// docs/protocol.md sections 1 and 8 defaults the model applies.
const LEEWAY: u64 = 30;
const ACCESS_LIFETIME: u64 = 15 * 60;
const TICKET_TTL: Duration = Duration::from_secs(30);
const MAX_STALENESS: Duration = Duration::from_secs(5);
pub(crate) const ALLOWED_ORIGIN: &str = "https://app.example";

const MAX_STEPS: usize = 16;
/// Lifetime of the one short-lived valid token in the pool, seconds.
const SHORT_LIVED: u64 = 60;
const MAX_HEADERS: usize = 6;

/// A token the harness minted, and the user it is valid for (`None`: never valid).
#[derive(Clone, Debug)]
pub(crate) struct PoolToken {
    pub(crate) token: String,
    pub(crate) user: Option<&'static str>,
    pub(crate) jti: &'static str,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

/// Which pool token a request or ticket issue uses, by index (taken modulo the pool).
pub(crate) type Pick = usize;

/// A header the generator can write.
#[derive(Clone, Debug)]
pub(crate) enum Header {
    Authorization {
        name: &'static str,
        scheme: &'static str,
        token: Pick,
    },
    Subprotocols(Vec<Proto>),
    Origin(String),
    Raw(String, String),
    /// A header of `len` bytes, to reach the request size bound.
    Huge(u16),
}

/// One offered subprotocol.
#[derive(Clone, Debug)]
pub(crate) enum Proto {
    Token(Pick),
    /// The bare `jwt` a client must offer beside `jwt.<token>`.
    Jwt,
    Text(String),
}

/// One step of a handshake run.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Request {
        path_ok: bool,
        headers: Vec<Header>,
        query: Option<Query>,
        peer: u8,
    },
    IssueTicket(Pick),
    Advance {
        secs: u16,
        feed: bool,
    },
    Revoke(Pick),
    Close(usize),
}

/// A query string.
#[derive(Clone, Debug)]
pub(crate) enum Query {
    Ticket(usize),
    Token(Pick),
    Raw(String),
}

/// The world a handshake run starts from.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) origin_list: bool,
    pub(crate) query_tokens: bool,
    pub(crate) steps: Vec<Step>,
}

/// `handshake` on the real, plant-free gateway (see [`handshake_with`]).
pub fn handshake(data: &[u8]) -> Result<(), OracleViolation> {
    handshake_with(data, Plants::NONE)
}

/// `handshake` on a gateway with `plants` switched on.
///
/// Oracle: an accepted request has a path of `/ws`, is within the handshake size bounds
/// (`protocol::MAX_HEADERS`, `protocol::MAX_HANDSHAKE_BYTES`), has an allowed `Origin` when an allow-list
/// is set, a fresh revocation view, and presents (in protocol order: `Authorization`, then
/// a `jwt.` subprotocol, then `?ticket=`, then `?token=` when enabled) a credential that is
/// valid now for a real user; the accepted identity is that credential's `sub`; a ticket is
/// accepted at most once and only within its TTL.
pub fn handshake_with(data: &[u8], plants: Plants) -> Result<(), OracleViolation> {
    let mut u = Unstructured::new(capped(data));
    let case = gen_case(&mut u);
    run_case(&case, plants)
}

/// The `handshake` floor: the same requests, tickets, revocations and clock moves through
/// the plant-free gateway, without judging what it accepts.
pub fn handshake_floor(data: &[u8]) -> Result<(), OracleViolation> {
    let mut u = Unstructured::new(capped(data));
    let case = gen_case(&mut u);
    run_case_in(&case, Plants::NONE, Mode::Floor)
}

/// The credential pool, minted once per process: it depends on no input (only the fixed
/// fuzz time and keys), and minting it signed eight tokens per input.
pub(crate) fn pool() -> Result<&'static [PoolToken], OracleViolation> {
    static POOL: OnceLock<Result<Vec<PoolToken>, OracleViolation>> = OnceLock::new();
    POOL.get_or_init(mint_pool).as_deref().map_err(Clone::clone)
}

/// The credential pool: minted at the fuzz time, in a fixed order the corpus relies on.
fn mint_pool() -> Result<Vec<PoolToken>, OracleViolation> {
    let t0 = fixtures::now().unix_secs();
    let claims = |sub: &str, jti: &str, iat: u64, exp: u64, ty: &str| {
        json!({"iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub, "jti": jti,
               "iat": iat, "exp": exp, "token_type": ty})
    };
    let entry = |token, user, jti, iat, exp| PoolToken {
        token,
        user,
        jti,
        iat,
        exp,
    };
    let (iat, exp) = (t0, t0 + 600);
    let alice = fixtures::sign_claims(&claims("alice", "j-alice", iat, exp, "access"), "hs256")?;
    let forged_payload = claims("mallory", "j-mallory", iat, exp, "access").to_string();
    let header = |alg: &str, kid: &str| format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
    let forged = fixtures::sign_raw(
        header("HS256", "hs256").as_bytes(),
        forged_payload.as_bytes(),
        Algorithm::HS256,
        b"an-attacker-secret-that-is-32-bytes-long",
    )?;
    let confused = fixtures::sign_raw(
        header("HS256", "rs256").as_bytes(),
        claims("oscar", "j-oscar", iat, exp, "access")
            .to_string()
            .as_bytes(),
        Algorithm::HS256,
        fixtures::RS256_PUB,
    )?;
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header("none", "hs256")),
        URL_SAFE_NO_PAD.encode(claims("eve", "j-eve", iat, exp, "access").to_string())
    );
    let tampered = tamper(&alice);
    Ok(vec![
        entry(alice, Some("alice"), "j-alice", iat, exp),
        // Bob's token expires within the time one input can pass (16 steps of up to 40 s),
        // so a token accepted while valid can be presented again after it expired.
        entry(
            fixtures::sign_claims(
                &claims("bob", "j-bob", iat, t0 + SHORT_LIVED, "access"),
                "hs384",
            )?,
            Some("bob"),
            "j-bob",
            iat,
            t0 + SHORT_LIVED,
        ),
        entry(
            fixtures::sign_claims(
                &claims("carol", "j-carol", t0 - 2000, t0 - 1000, "access"),
                "hs256",
            )?,
            None,
            "j-carol",
            t0 - 2000,
            t0 - 1000,
        ),
        entry(
            fixtures::sign_claims(&claims("dave", "j-dave", iat, exp, "refresh"), "hs256")?,
            None,
            "j-dave",
            iat,
            exp,
        ),
        entry(unsigned, None, "j-eve", iat, exp),
        entry(
            fixtures::sign_claims(&claims("frank", "j-frank", iat, exp, "access"), "hs512")?,
            Some("frank"),
            "j-frank",
            iat,
            exp,
        ),
        entry(forged, None, "j-mallory", iat, exp),
        entry(confused, None, "j-oscar", iat, exp),
        entry(tampered, None, "j-alice-t", iat, exp),
    ])
}

/// The token with one signature character changed, keeping base64url canonical.
fn tamper(token: &str) -> String {
    let mut out = token.to_string();
    let last = out.pop();
    out.push(if last == Some('A') { 'Q' } else { 'A' });
    out
}

fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, n % 4))
}

/// What the model knows about a ticket it saw issued.
struct Ticket {
    text: String,
    user: &'static str,
    token: Pick,
    expires: Instant,
    used: bool,
}

struct Model<'p> {
    pool: &'p [PoolToken],
    revoked: Vec<Pick>,
    tickets: Vec<Ticket>,
    last_feed: Instant,
    origin_list: bool,
    query_tokens: bool,
}

/// A credential as the model extracted it.
enum Presented {
    Token(String),
    Ticket(String),
    Invalid(&'static str),
}

impl Model<'_> {
    fn token_user(&self, token: &str, now: Instant) -> Result<&'static str, &'static str> {
        let (i, t) = self
            .pool
            .iter()
            .enumerate()
            .find(|(_, t)| t.token == token)
            .ok_or("not a token the harness minted")?;
        let user = t.user.ok_or("a token that is never valid")?;
        let secs = now.unix_secs();
        if secs >= t.exp + LEEWAY || secs.saturating_sub(t.iat) > ACCESS_LIFETIME + LEEWAY {
            return Err("an expired token");
        }
        if self.revoked.contains(&i) {
            return Err("a revoked token");
        }
        Ok(user)
    }

    /// docs/protocol.md section 8's credential order, written independently of the gateway.
    fn presented(&self, req: &HandshakeRequest) -> Presented {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        if let Some(auth) = header("authorization") {
            return match auth.trim().split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Presented::Token(token.trim().to_string())
                }
                _ => Presented::Invalid("a malformed authorization header"),
            };
        }
        let protocols = || {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
        };
        if let Some(encoded) = protocols().find_map(|p| p.strip_prefix("jwt.")) {
            if !protocols().any(|p| p == "jwt") {
                return Presented::Invalid("a jwt.<token> subprotocol offered without jwt");
            }
            return match URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(token) => Presented::Token(token),
                None => Presented::Invalid("an undecodable jwt subprotocol"),
            };
        }
        let param = |key: &str| {
            req.query.as_deref().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key))
                    .map(|(_, v)| v.to_string())
            })
        };
        if let Some(t) = param("ticket") {
            return Presented::Ticket(t);
        }
        match param("token") {
            Some(t) if self.query_tokens => Presented::Token(t),
            Some(_) => Presented::Invalid("a query token while they are disabled"),
            None => Presented::Invalid("no credential"),
        }
    }

    /// The user the model says may be accepted, or why none may.
    fn judge(&mut self, req: &HandshakeRequest, now: Instant) -> Result<&'static str, String> {
        if req.path != "/ws" {
            return Err("a path other than /ws".into());
        }
        let bytes: usize = req
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
            + req.query.as_ref().map_or(0, String::len)
            + req.path.len();
        if req.headers.len() > MAX_HEADERS_READ || bytes > MAX_HANDSHAKE_BYTES {
            return Err("a request over the handshake size bounds".into());
        }
        let origin = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("origin"))
            .map(|(_, v)| v.as_str());
        if self.origin_list && origin != Some(ALLOWED_ORIGIN) {
            return Err("an origin not on the allow-list".into());
        }
        if now.saturating_since(self.last_feed) > MAX_STALENESS {
            return Err("a stale revocation view (fail closed)".into());
        }
        match self.presented(req) {
            Presented::Invalid(why) => Err(why.into()),
            Presented::Token(t) => self.token_user(&t, now).map_err(str::to_string),
            Presented::Ticket(text) => {
                let i = self
                    .tickets
                    .iter()
                    .position(|t| t.text == text)
                    .ok_or("an unknown ticket")?;
                let (token, expires, used, user) = match self.tickets.get(i) {
                    Some(t) => (t.token, t.expires, t.used, t.user),
                    None => return Err("an unknown ticket".into()),
                };
                if used {
                    return Err("a ticket already used".into());
                }
                if now >= expires {
                    return Err("an expired ticket".into());
                }
                let token = self.pool.get(token).map(|t| t.token.clone());
                self.token_user(&token.unwrap_or_default(), now)
                    .map_err(|why| format!("a ticket issued for {why}"))?;
                if let Some(t) = self.tickets.get_mut(i) {
                    t.used = true;
                }
                Ok(user)
            }
        }
    }
}

pub(crate) fn run_case(case: &Case, plants: Plants) -> Result<(), OracleViolation> {
    run_case_in(case, plants, Mode::Oracle)
}

fn run_case_in(case: &Case, plants: Plants, mode: Mode) -> Result<(), OracleViolation> {
    let fixture = |what| OracleViolation::Fixture { what };
    let pool = pool()?;
    let mut config = Config::default();
    config.limits.allow_query_token = case.query_tokens;
    if case.origin_list {
        config.limits.origin_allow_list = vec![ALLOWED_ORIGIN.to_string()];
    }
    let gw =
        Gateway::with_plants(config, fixtures::ring()?, plants).map_err(|_| fixture("gateway"))?;
    let mut drive = Drive::new(gw, fixtures::now());
    let mut model = Model {
        pool,
        revoked: Vec::new(),
        tickets: Vec::new(),
        last_feed: drive.now,
        origin_list: case.origin_list,
        query_tokens: case.query_tokens,
    };
    // Frank's token is revoked before anything happens.
    let frank = pool.iter().position(|t| t.jti == "j-frank").unwrap_or(0);
    revoke(&mut drive, &mut model, frank)?;
    let mut open: Vec<ConnId> = Vec::new();
    let mut next_conn = 1;
    let mut next_request = 1;
    for (step_index, step) in case.steps.iter().take(MAX_STEPS).enumerate() {
        match step {
            Step::Request {
                path_ok,
                headers,
                query,
                peer,
            } => {
                let req = build_request(pool, &model, *path_ok, headers, query.as_ref(), *peer);
                let conn = ConnId::new(next_conn);
                next_conn += 1;
                let seen = drive.input(Input::Handshake {
                    conn,
                    request: req.clone(),
                });
                if let Some((_, HandshakeDecision::Accept { user, .. })) = seen.handshake {
                    if mode == Mode::Oracle {
                        let allowed = model.judge(&req, drive.now).map_err(|why| {
                            OracleViolation::AcceptedWithoutCredential {
                                step: step_index,
                                user: user.to_string(),
                                why,
                            }
                        })?;
                        if user.as_str() != allowed {
                            return Err(OracleViolation::WrongIdentity {
                                step: step_index,
                                expected: allowed.to_string(),
                                actual: user.to_string(),
                            });
                        }
                    }
                    open.push(conn);
                }
            }
            Step::IssueTicket(pick) => {
                let i = pick % pool.len().max(1);
                let Some(t) = pool.get(i) else { continue };
                let request = next_request;
                next_request += 1;
                let seen = drive.input(Input::IssueTicket {
                    request,
                    authorization: Some(format!("Bearer {}", t.token)),
                });
                let issued = seen.tickets.into_iter().find_map(|(_, t)| t);
                if let Some(text) = issued {
                    let stale = drive.now.saturating_since(model.last_feed) > MAX_STALENESS;
                    let user = model
                        .token_user(&t.token, drive.now)
                        .ok()
                        .filter(|_| !stale)
                        .ok_or(OracleViolation::AcceptedWithoutCredential {
                            step: step_index,
                            user: t.user.unwrap_or("nobody").to_string(),
                            why: "a ticket was issued for a token that is not valid now".into(),
                        })?;
                    model.tickets.push(Ticket {
                        text,
                        user,
                        token: i,
                        expires: drive.now.saturating_add(TICKET_TTL),
                        used: false,
                    });
                }
            }
            Step::Advance { secs, feed } => {
                drive.advance(Duration::from_secs(u64::from(*secs)), *feed);
                if *feed {
                    model.last_feed = drive.now;
                }
            }
            Step::Revoke(pick) => revoke(&mut drive, &mut model, pick % pool.len().max(1))?,
            Step::Close(k) => {
                if open.is_empty() {
                    continue;
                }
                let conn = open.remove(k % open.len());
                drive.input(Input::Closed { conn });
            }
        }
    }
    Ok(())
}

fn revoke(drive: &mut Drive, model: &mut Model<'_>, i: Pick) -> Result<(), OracleViolation> {
    let t = model
        .pool
        .get(i)
        .ok_or(OracleViolation::Fixture { what: "pool" })?;
    let jti = Jti::parse(t.jti).ok_or(OracleViolation::Fixture { what: "jti" })?;
    drive.feed(vec![Revocation::Jti {
        jti,
        exp: Instant::from_unix_secs(t.exp),
    }]);
    model.last_feed = drive.now;
    model.revoked.push(i);
    Ok(())
}

fn build_request(
    pool: &[PoolToken],
    model: &Model<'_>,
    path_ok: bool,
    headers: &[Header],
    query: Option<&Query>,
    peer: u8,
) -> HandshakeRequest {
    let token = |p: Pick| {
        pool.get(p % pool.len().max(1))
            .map(|t| t.token.clone())
            .unwrap_or_default()
    };
    let mut req = HandshakeRequest::new(ip(peer));
    if !path_ok {
        req.path = "/ws/".into();
    }
    for h in headers.iter().take(MAX_HEADERS) {
        req = match h {
            Header::Authorization {
                name,
                scheme,
                token: p,
            } => req.header(name, &format!("{scheme} {}", token(*p))),
            Header::Subprotocols(list) => {
                let offered: Vec<String> = list
                    .iter()
                    .map(|p| match p {
                        Proto::Token(p) => format!("jwt.{}", URL_SAFE_NO_PAD.encode(token(*p))),
                        Proto::Jwt => "jwt".to_string(),
                        Proto::Text(s) => s.clone(),
                    })
                    .collect();
                req.header("Sec-WebSocket-Protocol", &offered.join(", "))
            }
            Header::Origin(o) => req.header("Origin", o),
            Header::Raw(n, v) => req.header(n, v),
            Header::Huge(len) => req.header("X-Padding", &"p".repeat(usize::from(*len))),
        };
    }
    req.query = query.map(|q| match q {
        Query::Ticket(k) => {
            let t = model
                .tickets
                .get(k % model.tickets.len().max(1))
                .map(|t| t.text.clone())
                .unwrap_or_default();
            format!("ticket={t}")
        }
        Query::Token(p) => format!("token={}", token(*p)),
        Query::Raw(s) => s.clone(),
    });
    req
}

fn text(u: &mut Unstructured<'_>, max: usize) -> String {
    let s: &str = u.arbitrary().unwrap_or("");
    s.chars().take(max).collect()
}

fn gen_case(u: &mut Unstructured<'_>) -> Case {
    let origin_list = u.arbitrary().unwrap_or(false);
    let query_tokens = u.arbitrary().unwrap_or(false);
    let n = u.int_in_range(0..=MAX_STEPS).unwrap_or(0);
    let steps = (0..n).map(|_| gen_step(u, origin_list)).collect();
    Case {
        origin_list,
        query_tokens,
        steps,
    }
}

fn gen_step(u: &mut Unstructured<'_>, origin_list: bool) -> Step {
    match u.int_in_range(0u8..=9).unwrap_or(0) {
        0..=5 => {
            let path_ok = u.ratio(15u8, 16u8).unwrap_or(true);
            let mut headers = Vec::new();
            if origin_list && u.ratio(3u8, 4u8).unwrap_or(true) {
                headers.push(Header::Origin(ALLOWED_ORIGIN.into()));
            }
            let n = u.int_in_range(0..=3usize).unwrap_or(0);
            headers.extend((0..n).map(|_| gen_header(u)));
            let query = match u.int_in_range(0u8..=4).unwrap_or(0) {
                0 | 1 => None,
                2 => Some(Query::Ticket(u.arbitrary().unwrap_or(0))),
                3 => Some(Query::Token(u.arbitrary().unwrap_or(0))),
                _ => Some(Query::Raw(text(u, 200))),
            };
            Step::Request {
                path_ok,
                headers,
                query,
                peer: u.arbitrary().unwrap_or(0),
            }
        }
        6 => Step::IssueTicket(u.arbitrary().unwrap_or(0)),
        7 => Step::Advance {
            secs: u.int_in_range(0u16..=40).unwrap_or(1),
            feed: u.ratio(3u8, 4u8).unwrap_or(true),
        },
        8 => Step::Revoke(u.arbitrary().unwrap_or(0)),
        _ => Step::Close(u.arbitrary().unwrap_or(0)),
    }
}

fn gen_header(u: &mut Unstructured<'_>) -> Header {
    match u.int_in_range(0u8..=5).unwrap_or(0) {
        0 | 1 => Header::Authorization {
            name: u
                .choose(&["Authorization", "authorization", "AUTHORIZATION"])
                .unwrap_or(&"Authorization"),
            scheme: u
                .choose(&["Bearer", "bearer", "Basic", "Bearer ", ""])
                .unwrap_or(&"Bearer"),
            token: u.arbitrary().unwrap_or(0),
        },
        2 | 3 => {
            let n = u.int_in_range(1..=3usize).unwrap_or(1);
            Header::Subprotocols(
                (0..n)
                    .map(|_| match u.int_in_range(0..=5u8).unwrap_or(0) {
                        0..=2 => Proto::Token(u.arbitrary().unwrap_or(0)),
                        3 | 4 => Proto::Jwt,
                        _ => Proto::Text(text(u, 80)),
                    })
                    .collect(),
            )
        }
        4 if u.ratio(1u8, 8u8).unwrap_or(false) => {
            Header::Huge(u.int_in_range(8000u16..=17_000).unwrap_or(8000))
        }
        4 => Header::Origin(if u.arbitrary().unwrap_or(false) {
            ALLOWED_ORIGIN.into()
        } else {
            text(u, 80)
        }),
        _ => Header::Raw(text(u, 40), text(u, 300)),
    }
}

#[cfg(test)]
mod tests;
