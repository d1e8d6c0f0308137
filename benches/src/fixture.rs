//! A gateway on a manual clock, driven only through `Gateway::handle`, with real HS256 access
//! tokens. Connections are opened through real handshakes; the driver acknowledges sends in
//! batches (`Input::Sent`), as a real socket writer reports completed writes, so send queues
//! never fill up during a bench. It makes no protocol decisions of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use gauntlet_core::protocol::HandshakeRequest;
use gauntlet_core::{
    AuthUpdate, Config, ConnId, Gateway, HandshakeDecision, Input, Instant, Outputs, Rate,
};

use crate::{FixtureError, TokenKit, now};

/// How many frames a bench lets pile up on a connection before acknowledging them in one
/// `Input::Sent` (well under the 1024-frame send queue).
pub const ACK_EVERY: usize = 256;

/// The config of the router and fan-out benches: protocol defaults, except that the rate
/// limits cannot trip (a bench repeats one message far faster than 10/s on a frozen clock;
/// the buckets are still consulted on every frame) and outboxes keep 256 events, so a long
/// bench over 1000 users holds tens of MB instead of gigabytes (trimming still runs).
pub fn bench_config() -> Config {
    let mut c = Config::default();
    let open = Rate {
        per_second: u32::MAX,
        burst: u32::MAX,
    };
    c.limits.user_rate = open;
    c.limits.ip_handshake_rate = open;
    c.limits.outbox_max_events = 256;
    c
}

/// One gateway, its clock and a token minter.
pub struct GatewayFixture {
    gw: Gateway,
    now: Instant,
    kit: TokenKit,
    next_conn: u64,
    next_jti: u64,
}

/// A distinct peer address for the `n`th connection.
fn peer(n: u64) -> IpAddr {
    let b = n.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, b[5], b[6], b[7]))
}

impl GatewayFixture {
    /// A gateway with `config` over [`TokenKit::ring`] at [`now`], revocation feed fresh.
    pub fn new(config: Config) -> Result<Self, FixtureError> {
        let gw = Gateway::new(config, TokenKit::ring()?)?;
        let mut fx = Self {
            gw,
            now: now(),
            kit: TokenKit::new()?,
            next_conn: 0,
            next_jti: 0,
        };
        drop(fx.feed());
        Ok(fx)
    }

    /// The gateway's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The gateway (read-only: every change goes through [`GatewayFixture::handle`]).
    pub fn gateway(&self) -> &Gateway {
        &self.gw
    }

    /// The token minter.
    pub fn kit(&self) -> &TokenKit {
        &self.kit
    }

    /// `Gateway::handle` at the fixture's clock.
    pub fn handle(&mut self, input: Input<'_>) -> Outputs {
        self.gw.handle(self.now, input)
    }

    /// A text frame on `conn`.
    pub fn text(&mut self, conn: ConnId, data: &[u8]) -> Outputs {
        self.handle(Input::Text { conn, data })
    }

    /// A text frame on `conn`, through `Gateway::handle_into` with the caller's reused
    /// `out` (how a driver that keeps one `Outputs` calls the gateway).
    pub fn text_into(&mut self, conn: ConnId, data: &[u8], out: &mut Outputs) {
        self.gw
            .handle_into(self.now, Input::Text { conn, data }, out);
    }

    /// Reports `frames` frames written to `conn`.
    pub fn ack(&mut self, conn: ConnId, frames: usize) -> Outputs {
        self.handle(Input::Sent { conn, frames })
    }

    /// Delivers an empty revocation feed read at the current time.
    pub fn feed(&mut self) -> Outputs {
        let as_of = self.now;
        self.handle(Input::Auth(AuthUpdate::Feed {
            as_of,
            revocations: Vec::new(),
        }))
    }

    /// Moves the clock forward (never back).
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    /// A fresh connection id.
    pub fn next_conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId::new(self.next_conn)
    }

    /// A bearer-token handshake request for `token` from a peer derived from `conn`.
    pub fn bearer(conn: ConnId, token: &str) -> HandshakeRequest {
        HandshakeRequest::new(peer(conn.get())).header("Authorization", &format!("Bearer {token}"))
    }

    /// Mints a fresh HS256 access token for `user`.
    pub fn token(&mut self, user: &str, permissions: &[&str]) -> Result<String, FixtureError> {
        self.next_jti += 1;
        self.kit
            .access_hs256(user, &format!("jti-{}", self.next_jti), permissions)
    }

    /// Opens an authenticated connection for `user` through a real handshake and
    /// acknowledges its `connection_established` frame.
    pub fn connect(&mut self, user: &str, permissions: &[&str]) -> Result<ConnId, FixtureError> {
        let token = self.token(user, permissions)?;
        let conn = self.next_conn();
        let request = Self::bearer(conn, &token);
        let out = self.handle(Input::Handshake { conn, request });
        match out.handshake {
            Some((_, HandshakeDecision::Accept { .. })) => {}
            other => {
                return Err(FixtureError::Refused {
                    user: user.to_string(),
                    decision: format!("{other:?}"),
                });
            }
        }
        let sent = out.sends.len();
        drop(self.ack(conn, sent));
        Ok(conn)
    }
}

/// The string field `field` of a JSON frame the gateway sent, if present.
pub fn frame_field(frame: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(frame).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_ping_one_pong_to_sender() {
        let mut fx = GatewayFixture::new(bench_config()).unwrap();
        let a = fx.connect("user-a", &[]).unwrap();
        let out = fx.text(a, br#"{"type":"ping","message_id":"m-1"}"#);
        assert_eq!(out.sends.len(), 1);
        let (conn, frame) = &out.sends[0];
        assert_eq!(*conn, a);
        assert_eq!(frame_field(frame, "type").as_deref(), Some("pong"));
        assert_eq!(frame_field(frame, "message_id").as_deref(), Some("m-1"));
    }

    #[test]
    fn fixture_broadcast_reaches_every_connection_of_the_user() {
        let mut fx = GatewayFixture::new(bench_config()).unwrap();
        let conns: Vec<ConnId> = (0..10)
            .map(|_| fx.connect("user-b", &["system:broadcast"]).unwrap())
            .collect();
        let out = fx.text(conns[0], br#"{"type":"broadcast","payload":{"text":"hi"}}"#);
        let mut got: Vec<ConnId> = out.sends.iter().map(|(c, _)| *c).collect();
        got.sort();
        assert_eq!(got, conns);
        assert_eq!(
            frame_field(&out.sends[0].1, "type").as_deref(),
            Some("system_notice")
        );
    }

    #[test]
    fn fixture_eleventh_connection_of_a_user_refused() {
        let mut fx = GatewayFixture::new(bench_config()).unwrap();
        for _ in 0..10 {
            fx.connect("user-c", &[]).unwrap();
        }
        assert!(matches!(
            fx.connect("user-c", &[]),
            Err(FixtureError::Refused { .. })
        ));
    }
}
