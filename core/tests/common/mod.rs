//! A scenario harness for gateway tests: one `Gateway`, a manual clock, real HS256 tokens
//! minted with `jsonwebtoken`, and per-connection inboxes of what the gateway sent.
//! Shaped like quinn's `Pair`: tests drive it step by step.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use gauntlet_core::protocol::HandshakeRequest;
use gauntlet_core::token::{Algorithm, KeyRing, Revocation};
use gauntlet_core::{
    AuthUpdate, CloseCode, Config, ConnId, Gateway, HandshakeDecision, Input, Instant, LogEntry,
    Outputs, Plants,
};
use serde_json::{Value, json};

pub const SECRET: &[u8] = b"gauntlet-test-secret-0123456789abcdef";
pub const T0: u64 = 1_800_000_000;

/// What one input produced, already absorbed into the harness (not `must_use`: tests
/// usually read the inboxes instead).
pub struct Out(pub Outputs);

impl std::ops::Deref for Out {
    type Target = Outputs;
    fn deref(&self) -> &Outputs {
        &self.0
    }
}

pub struct Harness {
    pub gw: Gateway,
    pub now: Instant,
    pub inbox: BTreeMap<ConnId, Vec<Value>>,
    pub closed: BTreeMap<ConnId, (CloseCode, String)>,
    pub log: Vec<LogEntry>,
    /// When false, sends are not acknowledged (a slow consumer).
    pub auto_ack: BTreeMap<ConnId, bool>,
    pub config: Config,
    pub plants: Plants,
    next_conn: u64,
    next_jti: u64,
}

pub fn ring() -> KeyRing {
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, SECRET)
        .expect("hmac key");
    ring
}

pub fn ip(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

impl Harness {
    pub fn new() -> Self {
        Self::with(Config::default(), Plants::NONE)
    }

    pub fn with_config(config: Config) -> Self {
        Self::with(config, Plants::NONE)
    }

    pub fn with(config: Config, plants: Plants) -> Self {
        let gw = Gateway::with_plants(config.clone(), ring(), plants).expect("valid config");
        let mut h = Self {
            gw,
            now: Instant::from_unix_secs(T0),
            inbox: BTreeMap::new(),
            closed: BTreeMap::new(),
            log: Vec::new(),
            auto_ack: BTreeMap::new(),
            config,
            plants,
            next_conn: 0,
            next_jti: 0,
        };
        h.feed(vec![]);
        h
    }

    /// Mints a real HS256 access token.
    pub fn token_with(&mut self, user: &str, ttl: u64, extra: Value) -> String {
        self.next_jti += 1;
        let iat = self.now.unix_secs();
        let mut claims = json!({
            "iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": user, "jti": format!("jti-{}", self.next_jti),
            "iat": iat, "nbf": iat, "exp": iat + ttl, "token_type": "access",
        });
        if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET).expect("key"),
        )
        .expect("encode")
    }

    pub fn token(&mut self, user: &str) -> String {
        self.token_with(user, 600, json!({}))
    }

    pub fn jti_of(token: &str) -> String {
        let payload = token.split('.').nth(1).expect("payload");
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        v["jti"].as_str().expect("jti").to_string()
    }

    pub fn input(&mut self, input: Input) -> Out {
        let out = self.gw.handle(self.now, input);
        self.absorb(&out);
        Out(out)
    }

    pub fn absorb(&mut self, out: &Outputs) {
        self.log.extend(out.events.iter().cloned());
        let mut acks: BTreeMap<ConnId, usize> = BTreeMap::new();
        for (conn, frame) in &out.sends {
            let v: Value = serde_json::from_str(frame).expect("gateway sends JSON");
            self.inbox.entry(*conn).or_default().push(v);
            if self.auto_ack.get(conn).copied().unwrap_or(true) {
                *acks.entry(*conn).or_default() += 1;
            }
        }
        for (conn, code, reason) in &out.closes {
            self.closed.insert(*conn, (*code, reason.to_string()));
        }
        for (conn, frames) in acks {
            if self.closed.contains_key(&conn) {
                continue;
            }
            let more = self.gw.handle(self.now, Input::Sent { conn, frames });
            self.absorb(&more);
        }
    }

    pub fn feed(&mut self, revocations: Vec<Revocation>) -> Out {
        let as_of = self.now;
        self.input(Input::Auth(AuthUpdate::Feed { as_of, revocations }))
    }

    pub fn new_conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId::new(self.next_conn)
    }

    pub fn handshake(&mut self, request: HandshakeRequest) -> (ConnId, HandshakeDecision) {
        let conn = self.new_conn();
        let out = self.input(Input::Handshake { conn, request });
        let (c, d) = out.handshake.clone().expect("a handshake verdict");
        assert_eq!(c, conn);
        (conn, d)
    }

    pub fn bearer(&self, token: &str) -> HandshakeRequest {
        HandshakeRequest::new(ip(1)).header("Authorization", &format!("Bearer {token}"))
    }

    /// Connects `user` with a fresh bearer token and asserts it was accepted.
    pub fn connect(&mut self, user: &str) -> ConnId {
        let token = self.token(user);
        self.connect_with(&token)
    }

    pub fn connect_with(&mut self, token: &str) -> ConnId {
        let req = HandshakeRequest::new(ip(self.next_conn as u8 % 200 + 1))
            .header("Authorization", &format!("Bearer {token}"));
        let (conn, d) = self.handshake(req);
        assert!(
            matches!(d, HandshakeDecision::Accept { .. }),
            "expected accept, got {d:?}"
        );
        conn
    }

    pub fn send(&mut self, conn: ConnId, text: &str) -> Out {
        self.input(Input::Text {
            conn,
            data: text.as_bytes(),
        })
    }

    pub fn send_json(&mut self, conn: ConnId, v: Value) -> Out {
        self.send(conn, &v.to_string())
    }

    /// Advances the clock in steps of at most one second, ticking due timers and keeping
    /// the revocation feed fresh, until `d` has passed.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.saturating_add(d);
        while self.now < end {
            let step = self.now.saturating_add(Duration::from_secs(1)).min(end);
            let next = self
                .gw
                .next_deadline()
                .map_or(step, |t| t.min(step))
                .max(self.now);
            self.now = next;
            self.input(Input::Tick);
            if next == step {
                self.feed(vec![]);
            }
        }
    }

    pub fn frames(&self, conn: ConnId) -> Vec<Value> {
        self.inbox.get(&conn).cloned().unwrap_or_default()
    }

    pub fn take(&mut self, conn: ConnId) -> Vec<Value> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    pub fn of_type(&self, conn: ConnId, ty: &str) -> Vec<Value> {
        self.frames(conn)
            .into_iter()
            .filter(|f| f["type"] == ty)
            .collect()
    }

    /// The seqs of stream events this connection received, in arrival order.
    pub fn seqs(&self, conn: ConnId) -> Vec<u64> {
        self.frames(conn)
            .iter()
            .filter_map(|f| f.get("seq").and_then(Value::as_u64))
            .collect()
    }

    pub fn errors(&self, conn: ConnId) -> Vec<String> {
        self.of_type(conn, "error")
            .iter()
            .map(|e| e["code"].as_str().unwrap_or("").to_string())
            .collect()
    }

    pub fn close_code(&self, conn: ConnId) -> Option<u16> {
        self.closed.get(&conn).map(|(c, _)| c.as_u16())
    }
}

/// The token with one signature character changed (keeping base64url canonical).
pub fn tamper_signature(token: &str) -> String {
    let sig_start = token.rfind('.').expect("three parts") + 1;
    let mut bytes = token.as_bytes().to_vec();
    let i = sig_start + 3;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ascii")
}
