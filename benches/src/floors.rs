//! The floors: the least work each hot path cannot avoid, measured in the same run as the
//! path itself so the ratio survives a noisy machine. A floor does only its named steps
//! (no claim rules, no routing, no bookkeeping); it must never be tuned to flatter a ratio.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

/// Why a floor refused its input (the benches feed it only valid input; the tests do not).
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// Not three dot-separated parts.
    #[error("not a compact jws")]
    Structure,
    /// A part is not base64url.
    #[error("bad base64url")]
    Base64,
    /// The HMAC does not match.
    #[error("bad signature")]
    Signature,
    /// The payload is not the claims object.
    #[error("bad claims json: {0}")]
    Json(#[from] serde_json::Error),
}

/// The typed claims the HS256 floor parses into, borrowing from the decoded payload.
#[derive(Debug, Deserialize)]
pub struct FloorClaims<'a> {
    /// Issuer.
    pub iss: &'a str,
    /// Subject.
    pub sub: &'a str,
    /// Token id.
    pub jti: &'a str,
    /// Audience.
    pub aud: &'a str,
    /// Expiry.
    pub exp: u64,
    /// Issued at.
    pub iat: u64,
    /// Token type.
    pub token_type: &'a str,
    /// Grants.
    #[serde(borrow)]
    pub permissions: Vec<&'a str>,
    /// Email.
    pub email: &'a str,
}

/// `token/floor_hs256`: HMAC-SHA256 verify with the key prepared once, base64url decode of
/// the payload, `serde_json` into [`FloorClaims`]. No header parsing, no claim checks.
pub struct HmacFloor {
    mac: Hmac<Sha256>,
}

impl HmacFloor {
    /// Prepares the HMAC key.
    pub fn new(secret: &[u8]) -> Result<Self, FloorError> {
        let mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| FloorError::Signature)?;
        Ok(Self { mac })
    }

    /// Verifies `token` and parses its claims into `buf` (reused across calls).
    pub fn verify<'b>(
        &self,
        token: &[u8],
        buf: &'b mut Vec<u8>,
    ) -> Result<FloorClaims<'b>, FloorError> {
        let dot = token
            .iter()
            .rposition(|b| *b == b'.')
            .ok_or(FloorError::Structure)?;
        let (signing_input, sig_b64) = token.split_at(dot);
        let sig_b64 = sig_b64.get(1..).ok_or(FloorError::Structure)?;
        let mut sig = [0u8; 32];
        let n = URL_SAFE_NO_PAD
            .decode_slice(sig_b64, &mut sig)
            .map_err(|_| FloorError::Base64)?;
        let mut mac = self.mac.clone();
        mac.update(signing_input);
        mac.verify_slice(sig.get(..n).ok_or(FloorError::Base64)?)
            .map_err(|_| FloorError::Signature)?;
        let first = signing_input
            .iter()
            .position(|b| *b == b'.')
            .ok_or(FloorError::Structure)?;
        let payload = signing_input
            .get(first + 1..)
            .ok_or(FloorError::Structure)?;
        buf.clear();
        URL_SAFE_NO_PAD
            .decode_vec(payload, buf)
            .map_err(|_| FloorError::Base64)?;
        Ok(serde_json::from_slice(buf)?)
    }
}

/// A map of `filler` synthetic 371-byte-ish keys plus `key`, for `token/floor_map_lookup`:
/// a bare std `HashMap` (SipHash, as the validation cache uses) hit on the full token bytes.
// A bench floor, looked up only and never iterated: iteration order cannot matter here.
#[allow(clippy::disallowed_types)]
pub fn floor_map(key: &[u8], filler: usize) -> std::collections::HashMap<Box<[u8]>, u64> {
    let mut map = std::collections::HashMap::with_capacity(filler + 1);
    for i in 0..filler {
        let mut k = key.to_vec();
        k.extend_from_slice(format!("-{i}").as_bytes());
        map.insert(k.into_boxed_slice(), i as u64);
    }
    map.insert(key.to_vec().into_boxed_slice(), u64::MAX);
    map
}

/// The inbound `type`s, as a unit enum (the cheapest typed form of the envelope tag).
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FloorKind {
    /// `ping`.
    Ping,
    /// `heartbeat`.
    Heartbeat,
    /// `user_message`.
    UserMessage,
    /// Any other type.
    #[serde(other)]
    Other,
}

/// `router/floor_serde_typed`: the envelope parsed flat and borrowed, nothing else.
#[derive(Debug, Deserialize)]
pub struct FloorEnvelope<'a> {
    /// The type tag.
    #[serde(rename = "type")]
    pub kind: FloorKind,
    /// The correlation id.
    #[serde(default)]
    pub message_id: Option<&'a str>,
    /// The payload, unparsed.
    #[serde(borrow, default)]
    pub payload: Option<&'a RawValue>,
}

/// Parses `bytes` as [`FloorEnvelope`].
pub fn floor_serde_typed(bytes: &[u8]) -> Result<FloorEnvelope<'_>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// `fanout/floor_enqueue_1000`: one shared frame pushed into N per-connection queues.
pub struct FloorQueues {
    queues: Vec<Vec<Arc<str>>>,
}

impl FloorQueues {
    /// `n` empty queues.
    pub fn new(n: usize) -> Self {
        Self {
            queues: (0..n).map(|_| Vec::with_capacity(8)).collect(),
        }
    }

    /// Pushes `frame` into every queue.
    pub fn enqueue(&mut self, frame: &Arc<str>) {
        for q in &mut self.queues {
            q.push(Arc::clone(frame));
        }
    }

    /// Empties every queue (the writes completed), returning how many frames were held.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        for q in &mut self.queues {
            n += q.len();
            q.clear();
        }
        n
    }
}

/// `fanout/floor_render_enqueue_1000` and the render half of
/// `fanout/floor_parse_render_enqueue_10`: what a stream event fanned out to its users cannot
/// avoid under docs/protocol.md sections 10 and 14. Each user's frame carries that user's own
/// `seq` and `user_id`, so it is built once per user: the envelope before `seq` (the prefix)
/// and everything after `user_id` (the suffix: timestamp and payload) rendered once per event,
/// then per user the prefix copied, `seq` formatted as an integer, `user_id` copied, the
/// suffix copied, and the frame (one `Arc<str>`, shared by the user's connections) pushed into
/// each of that user's connection queues. No escaping, no outbox, no log: the gateway does
/// those too, and they are its cost over the floor.
pub struct FloorRender {
    users: Vec<FloorUser>,
    /// The frame's `type`.
    kind: String,
    /// Unix milliseconds of the event.
    timestamp: u64,
    /// The payload object, as the event holds it rendered.
    payload: String,
    prefix: String,
    suffix: String,
    frame: String,
}

struct FloorUser {
    id: String,
    seq: u64,
    queues: Vec<Vec<Arc<str>>>,
}

impl FloorRender {
    /// `users` users (`user-0000`, ...) of `conns_per_user` empty queues each, for events of
    /// type `kind` at `timestamp` (Unix ms) carrying `payload` (a JSON object).
    pub fn new(
        users: usize,
        conns_per_user: usize,
        kind: &str,
        timestamp: u64,
        payload: &str,
    ) -> Self {
        Self {
            users: (0..users)
                .map(|u| FloorUser {
                    id: format!("user-{u:04}"),
                    seq: 0,
                    queues: (0..conns_per_user).map(|_| Vec::with_capacity(8)).collect(),
                })
                .collect(),
            kind: kind.to_owned(),
            timestamp,
            payload: payload.to_owned(),
            prefix: String::new(),
            suffix: String::new(),
            frame: String::new(),
        }
    }

    /// One event to every user: each user's next `seq`, its frame built and pushed into each
    /// of its queues. Returns the frames pushed.
    pub fn render_enqueue(&mut self) -> usize {
        let mut num = itoa::Buffer::new();
        self.prefix.clear();
        self.prefix.push_str("{\"type\":\"");
        self.prefix.push_str(&self.kind);
        self.prefix.push_str("\",\"seq\":");
        self.suffix.clear();
        self.suffix.push_str("\",\"timestamp\":");
        self.suffix.push_str(num.format(self.timestamp));
        self.suffix.push_str(",\"payload\":");
        self.suffix.push_str(&self.payload);
        self.suffix.push('}');
        let mut pushed = 0;
        for user in &mut self.users {
            user.seq += 1;
            self.frame.clear();
            self.frame.push_str(&self.prefix);
            self.frame.push_str(num.format(user.seq));
            self.frame.push_str(",\"user_id\":\"");
            self.frame.push_str(&user.id);
            self.frame.push_str(&self.suffix);
            let frame: Arc<str> = Arc::from(self.frame.as_str());
            for q in &mut user.queues {
                q.push(Arc::clone(&frame));
            }
            pushed += user.queues.len();
        }
        pushed
    }

    /// Empties every queue (the writes completed), returning how many frames were held.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        for q in self.users.iter_mut().flat_map(|u| &mut u.queues) {
            n += q.len();
            q.clear();
        }
        n
    }

    /// The frame at `index` of connection `conn` of user number `user`, if queued.
    pub fn queued(&self, user: usize, conn: usize, index: usize) -> Option<&Arc<str>> {
        self.users.get(user)?.queues.get(conn)?.get(index)
    }
}

/// `fanout/floor_parse_render_enqueue_10`: the floor of `send_to_user_10_conns`. The inbound
/// frame parsed as [`floor_serde_typed`] does, then one event rendered and pushed by
/// `render` (one user of ten connections: one frame, ten pushes, since every connection of a
/// user gets the same bytes). Returns the frames pushed.
pub fn floor_parse_render_enqueue(
    inbound: &[u8],
    render: &mut FloorRender,
) -> Result<usize, serde_json::Error> {
    let envelope = floor_serde_typed(inbound)?;
    std::hint::black_box(&envelope);
    Ok(render.render_enqueue())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PeerClaims, TokenKit};

    fn token() -> String {
        TokenKit::new()
            .unwrap()
            .access_hs256("user-7", "jti-7", &["threads:read"])
            .unwrap()
    }

    #[test]
    fn hmac_floor_valid_token_parses_claims() {
        let floor = HmacFloor::new(TokenKit::hs256_secret()).unwrap();
        let t = token();
        let mut buf = Vec::new();
        let c = floor.verify(t.as_bytes(), &mut buf).unwrap();
        let expected = PeerClaims::access("user-7", "jti-7", &["threads:read"]);
        assert_eq!((c.sub, c.jti, c.exp), ("user-7", "jti-7", expected.exp));
        assert_eq!(c.permissions, vec!["threads:read"]);
    }

    #[test]
    fn hmac_floor_tampered_signature_rejected() {
        let floor = HmacFloor::new(TokenKit::hs256_secret()).unwrap();
        let mut t = token().into_bytes();
        let last = t.len() - 2;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        let mut buf = Vec::new();
        assert!(matches!(
            floor.verify(&t, &mut buf),
            Err(FloorError::Signature)
        ));
    }

    #[test]
    fn floor_map_holds_filler_plus_key() {
        let t = token();
        let map = floor_map(t.as_bytes(), 100);
        assert_eq!(map.len(), 101);
        assert_eq!(map.get(t.as_bytes()).copied(), Some(u64::MAX));
    }

    #[test]
    fn floor_serde_typed_ping_reads_tag_and_id() {
        let env = floor_serde_typed(br#"{"type":"ping","message_id":"m-1"}"#).unwrap();
        assert_eq!(env.kind, FloorKind::Ping);
        assert_eq!(env.message_id, Some("m-1"));
    }

    #[test]
    fn floor_render_builds_the_gateways_frame_for_each_user_at_its_own_seq() {
        use gauntlet_core::{Instant, Payload, Seq, StreamEntry, StreamKind, UserId};
        let payload: Payload =
            serde_json::from_str(r#"{"from":"user-0000","text":"maintenance"}"#).unwrap();
        let mut floor =
            FloorRender::new(3, 2, "system_notice", 1_800_000_000_123, payload.as_json());
        assert_eq!(floor.render_enqueue(), 6);
        assert_eq!(floor.render_enqueue(), 6);
        let entry = StreamEntry::new(
            Instant::from_unix_millis(1_800_000_000_123),
            StreamKind::SystemNotice,
            None,
            None,
            payload,
        );
        let mut expected = String::new();
        for (user, seq) in [(0, 1), (2, 2)] {
            let id = UserId::parse(&format!("user-{user:04}")).unwrap();
            entry.write_frame(Seq::new(seq), &id, &mut expected);
            let got = floor
                .queued(user, 1, seq as usize - 1)
                .map(|f| f.as_bytes());
            assert_eq!(got, Some(expected.as_bytes()), "user {user} seq {seq}");
        }
        // A user's connections share one frame.
        let (a, b) = (
            floor.queued(1, 0, 0).unwrap(),
            floor.queued(1, 1, 0).unwrap(),
        );
        assert!(Arc::ptr_eq(a, b));
        assert_eq!(floor.drain(), 12);
        assert!(floor.queued(0, 0, 0).is_none());
    }

    #[test]
    fn floor_parse_render_enqueue_refuses_a_frame_that_is_not_json() {
        let mut floor = FloorRender::new(1, 10, "system_notice", 0, "{}");
        let ok = floor_parse_render_enqueue(
            br#"{"type":"broadcast","payload":{"text":"x"}}"#,
            &mut floor,
        );
        assert_eq!(ok.ok(), Some(10));
        assert!(floor_parse_render_enqueue(b"{nope", &mut floor).is_err());
        assert_eq!(floor.drain(), 10);
    }

    #[test]
    fn floor_queues_enqueue_reaches_every_queue_once() {
        let mut q = FloorQueues::new(1000);
        let frame: Arc<str> = Arc::from("{}");
        q.enqueue(&frame);
        q.enqueue(&frame);
        assert_eq!(Arc::strong_count(&frame), 2001);
        assert_eq!(q.drain(), 2000);
        assert_eq!(Arc::strong_count(&frame), 1);
    }
}
