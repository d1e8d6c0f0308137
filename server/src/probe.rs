//! `gauntlet probe`: black-box conformance and attack checks against any server that claims to
//! speak docs/protocol.md (ours or another implementation), over real sockets.
//!
//! With the server's signing key (an HS secret, or an RSA/EC/Ed25519 private key) it mints its
//! own tokens (`jsonwebtoken` for well-formed ones, hand-built parts for `alg: none` and
//! tampered ones), runs the conformance checks, and sends every case of the attack table
//! (`gauntlet_core::token::attacks::attack_cases`, the generator behind `corpora/tokens/`)
//! that the key can produce, re-signed and re-timed to now, comparing each answer with the
//! case's expected outcome. With or without a key it sends the keyless attacks
//! (`blackbox_cases`) and, given `--token`, checks that token's HMAC secret against a short
//! list offline, never by sending guesses to the server. Given the server's published JWKS
//! (`--jwks`), it sends the key-confusion attacks once per public key, naming its `kid`, and
//! verifies `--token` against the set. It judges only what a client can
//! observe: HTTP statuses before the upgrade, frames, and close codes; it never looks inside
//! the server. Each check uses fresh user ids so checks do not disturb each other.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::REVOCATIONS_WRITE;
use super::jwks::{JwksError, JwksKey, jwks_public_keys};
use super::wall_clock;
use gauntlet_core::protocol::{token_subprotocol, token_subprotocols};
use gauntlet_core::token::attacks::{
    AttackKeys, AttackSigner, BlackboxInput, attack_cases, blackbox_cases, weak_secret,
};
use gauntlet_core::token::{Algorithm, KeyRing, Revocation, TokenRules, verify_signature};
use gauntlet_core::{Instant, Jti};

/// How long the probe waits for any one expected frame or close.
const WAIT: Duration = Duration::from_secs(5);
/// How long an agent run may take before the five-event check gives up.
const RUN_WAIT: Duration = Duration::from_secs(20);
/// How often a handshake refused with `429 ip_rate_limited` is retried after its `Retry-After`.
const RATE_RETRIES: usize = 20;
/// Frames kept per connection while waiting for something, so a flood cannot grow memory.
const MAX_FRAMES: usize = 10_000;
/// WebSocket pings sent at once by the control-frame check: three times the protocol's
/// default burst of 20.
const CONTROL_FLOOD: usize = 60;
/// Junk `POST /tickets` sent by the per-address check before it gives up: ten times the
/// protocol's default burst of 10.
const HTTP_AUTH_FLOOD: usize = 100;

/// A signing key of the server under test: what `serve` validates with, private half.
#[derive(Clone, Debug)]
pub struct ProbeKey {
    /// The algorithm the server binds the key to.
    pub alg: Algorithm,
    /// An HMAC secret's bytes, or a private key PEM (RSA PKCS#1/8, EC PKCS#8, Ed25519 PKCS#8).
    pub material: Vec<u8>,
}

/// What to probe and how.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// `ws://HOST:PORT/PATH` of the gateway.
    pub target: String,
    /// The server's signing keys; empty for a black-box run (keyless attacks only). The first
    /// signs the conformance checks and most attack-table cases.
    pub keys: Vec<ProbeKey>,
    /// The `kid` the server knows its keys by (`None`: tokens carry no `kid`).
    pub kid: Option<String>,
    /// The server's public keys (PEM), for the key-confusion attacks.
    pub public_keys: Vec<Vec<u8>>,
    /// The server's published JWK Set (the document's bytes): each public key's
    /// key-confusion attacks name that key's `kid`, and `token` is verified against it.
    pub jwks: Option<Vec<u8>>,
    /// A token the server issued, whose HMAC secret is checked offline against a weak list.
    pub token: Option<String>,
    /// The server's largest accepted text frame (docs/protocol.md default 8192).
    pub max_frame_bytes: usize,
    /// The server's clock leeway in seconds (PROTOCOL.md default 30).
    pub leeway_secs: u64,
}

impl ProbeOptions {
    /// A run with one HS256 secret and protocol defaults otherwise.
    pub fn hs256(target: &str, secret: &[u8]) -> Self {
        Self {
            target: target.into(),
            keys: vec![ProbeKey {
                alg: Algorithm::HS256,
                material: secret.to_vec(),
            }],
            kid: None,
            public_keys: Vec::new(),
            jwks: None,
            token: None,
            max_frame_bytes: 8192,
            leeway_secs: 30,
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable name, `subject_expectation`.
    pub name: String,
    /// Whether the server behaved as docs/protocol.md says.
    pub passed: bool,
    /// What was observed.
    pub evidence: String,
}

/// Why the probe could not run at all (as opposed to a check failing).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The target is not `ws://host:port/path`.
    #[error("target must look like ws://HOST:PORT/PATH, got {0}")]
    BadTarget(String),
    /// A key is unusable for its algorithm (a short secret, a PEM of another key type).
    #[error("the {alg} key is not usable: {reason}")]
    BadKey {
        /// The algorithm it was given for.
        alg: Algorithm,
        /// What `jsonwebtoken` said.
        reason: String,
    },
    /// The `--jwks` document gives the probe no key to use.
    #[error("the JWKS: {0}")]
    BadJwks(#[from] JwksError),
    /// Nothing answers at the target: the name does not resolve, or no TCP connection opens
    /// (refused, unreachable, timed out). No check ran, so none failed.
    #[error("cannot connect to {target}: {reason}")]
    Unreachable {
        /// The target as given.
        target: String,
        /// What the connect said.
        reason: String,
    },
}

pub(super) struct Target {
    pub(super) authority: String,
    pub(super) path: String,
}

pub(super) fn parse_target(t: &str) -> Result<Target, ProbeError> {
    let rest = t
        .strip_prefix("ws://")
        .ok_or_else(|| ProbeError::BadTarget(t.into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (
            rest.get(..i).unwrap_or_default(),
            rest.get(i..).unwrap_or("/"),
        ),
        None => (rest, "/ws"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(ProbeError::BadTarget(t.into()));
    }
    Ok(Target {
        authority: authority.into(),
        path: path.into(),
    })
}

/// Opens (and drops) one TCP connection to the target, so that a target nothing listens on
/// is told apart from a server that fails checks: `Err` carries what the connect said.
pub(super) async fn reachable(target: &Target) -> Result<(), String> {
    match tokio::time::timeout(WAIT, TcpStream::connect(&target.authority)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}s", WAIT.as_secs())),
    }
}

type Ws = WebSocketStream<TcpStream>;

/// An open client connection.
struct Client {
    ws: Ws,
    subprotocol: Option<String>,
    established: Option<Value>,
}

/// A handshake the server refused, or a transport failure (`status` 0).
#[derive(Debug)]
struct Refused {
    status: u16,
    body: String,
}

/// The key the probe mints with.
struct Minter {
    alg: jsonwebtoken::Algorithm,
    key: EncodingKey,
    kid: Option<String>,
}

fn encoding_key(k: &ProbeKey) -> Result<EncodingKey, ProbeError> {
    let material = &k.material;
    let key = match k.alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            EncodingKey::from_secret(material)
        }
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => EncodingKey::from_rsa_pem(material),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(material),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(material),
    };
    key.map_err(|e| ProbeError::BadKey {
        alg: k.alg,
        reason: e.to_string(),
    })
}

struct Prober {
    target: Target,
    minter: Option<Minter>,
    /// The keys as the attack-table generator takes them (`None` in a black-box run).
    table_keys: Option<AttackKeys>,
    max_frame_bytes: usize,
    leeway_secs: u64,
    run_id: String,
    users: u64,
    jtis: u64,
    checks: Vec<Check>,
    /// Every handshake of this run where the server selected a subprotocol the probe did not
    /// offer (RFC 6455 section 4.1; tungstenite fails such a handshake). A mutex, not a
    /// `RefCell`, so the probe's future stays `Send`; it is never held across an await.
    unoffered: std::sync::Mutex<Vec<String>>,
}

/// Runs every check and returns them in a fixed order; [`ProbeError::Unreachable`] when not
/// even a TCP connection opens to the target.
pub async fn probe(options: &ProbeOptions) -> Result<Vec<Check>, ProbeError> {
    let target = parse_target(&options.target)?;
    let jwks_keys = match &options.jwks {
        Some(doc) => jwks_public_keys(doc)?,
        None => Vec::new(),
    };
    let mut signers = Vec::new();
    for k in &options.keys {
        signers.push(AttackSigner {
            kid: options.kid.clone(),
            alg: k.alg,
            key: encoding_key(k)?,
        });
    }
    let minter = signers.first().map(|s| Minter {
        alg: s.alg.to_jsonwebtoken(),
        key: s.key.clone(),
        kid: s.kid.clone(),
    });
    let several_keys = signers.len() > 1;
    let mut signers = signers.into_iter();
    let table_keys = signers.next().map(|primary| AttackKeys {
        primary,
        others: signers.collect(),
        // Key confusion with a public key is in the keyless attacks; the table's own two
        // cases need to know which ring key the public key is, which a live target hides.
        rsa_public_pem: None,
        ec_public_der: None,
        retired: None,
        several_keys,
    });
    reachable(&target)
        .await
        .map_err(|reason| ProbeError::Unreachable {
            target: options.target.clone(),
            reason,
        })?;
    let mut p = Prober {
        target,
        minter,
        table_keys,
        max_frame_bytes: options.max_frame_bytes,
        leeway_secs: options.leeway_secs,
        run_id: format!("{:x}", wall_clock().as_nanos()),
        users: 0,
        jtis: 0,
        checks: Vec::new(),
        unoffered: std::sync::Mutex::new(Vec::new()),
    };
    if p.minter.is_some() {
        p.handshakes().await;
        p.attack_tokens().await;
        p.attack_table().await;
        p.cached_token_expiry().await;
        p.stream().await;
        p.frames().await;
        p.control_frames().await;
        p.revocations().await;
    }
    p.blackbox(options).await;
    p.jwks_key_confusion(&jwks_keys).await;
    // Last: it empties this address's bucket for the endpoints that verify a bearer token.
    p.http_auth_flood().await;
    if let Some(token) = &options.token {
        let found = weak_secret(token.trim());
        p.record(
            "token_secret_not_weak",
            found.is_none(),
            match found {
                Some(s) => {
                    format!("the token's HMAC secret is the well-known {s:?} (found offline)")
                }
                None => format!(
                    "none of {} well-known secrets signs the token (checked offline)",
                    gauntlet_core::token::attacks::WEAK_SECRETS.len()
                ),
            },
        );
    }
    if let (Some(token), Some(doc)) = (&options.token, &options.jwks) {
        let (ok, ev) = verify_with_jwks(token.trim(), doc);
        p.record("token_verifies_with_jwks", ok, ev);
    }
    let unoffered = p.unoffered.lock().map(|u| u.clone()).unwrap_or_default();
    p.record(
        "subprotocol_never_unoffered",
        unoffered.is_empty(),
        if unoffered.is_empty() {
            "no handshake of this run selected a subprotocol the probe did not offer".to_string()
        } else {
            format!("selected without being offered: {}", unoffered.join("; "))
        },
    );
    Ok(p.checks)
}

impl Prober {
    fn record(&mut self, name: &str, passed: bool, evidence: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            passed,
            evidence: evidence.into(),
        });
    }

    fn user(&mut self) -> String {
        self.users += 1;
        format!("probe-{}-{}", self.run_id, self.users)
    }

    fn claims(&mut self, sub: &str) -> Value {
        self.jtis += 1;
        let now = wall_clock().unix_secs();
        json!({
            "iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub,
            "jti": format!("probe-{}-{}", self.run_id, self.jtis),
            "iat": now, "exp": now + 600, "token_type": "access",
        })
    }

    fn sign(&self, claims: &Value) -> String {
        let Some(m) = &self.minter else {
            return String::new();
        };
        let mut header = Header::new(m.alg);
        header.kid.clone_from(&m.kid);
        jsonwebtoken::encode(&header, claims, &m.key).unwrap_or_default()
    }

    fn token(&mut self, sub: &str) -> String {
        let c = self.claims(sub);
        self.sign(&c)
    }

    async fn connect(
        &self,
        headers: &[(&str, String)],
        query: Option<&str>,
    ) -> Result<Client, Refused> {
        let transport = |e: String| Refused { status: 0, body: e };
        for _ in 0..RATE_RETRIES {
            let url = match query {
                Some(q) => format!("ws://{}{}?{q}", self.target.authority, self.target.path),
                None => format!("ws://{}{}", self.target.authority, self.target.path),
            };
            let mut req = url
                .into_client_request()
                .map_err(|e| transport(e.to_string()))?;
            for (name, value) in headers {
                let v = HeaderValue::from_str(value).map_err(|e| transport(e.to_string()))?;
                let name =
                    tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|e| transport(e.to_string()))?;
                req.headers_mut().append(name, v);
            }
            let stream = TcpStream::connect(&self.target.authority)
                .await
                .map_err(|e| transport(e.to_string()))?;
            let config = WebSocketConfig::default()
                .read_buffer_size(super::READ_BUFFER_SIZE)
                .max_message_size(Some(1 << 20));
            match tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await {
                Ok((ws, response)) => {
                    let subprotocol = response
                        .headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let mut client = Client {
                        ws,
                        subprotocol,
                        established: None,
                    };
                    client.established = client
                        .next_json(WAIT)
                        .await
                        .filter(|f| f["type"] == "connection_established");
                    return Ok(client);
                }
                Err(WsError::Http(response)) => {
                    let status = response.status().as_u16();
                    let body = response
                        .body()
                        .as_ref()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default();
                    if status == 429 && body.contains("ip_rate_limited") {
                        let wait = serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v["retry_after_ms"].as_u64())
                            .unwrap_or(200)
                            .clamp(50, 2000);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        continue;
                    }
                    return Err(Refused { status, body });
                }
                Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                    e @ (SubProtocolError::InvalidSubProtocol
                    | SubProtocolError::ServerSentSubProtocolNoneRequested),
                ))) => {
                    let offered = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
                        .map_or("nothing", |(_, v)| v.as_str());
                    // The token is never put in a report: only the offer's shape.
                    let shape = redact_offer(offered);
                    if let Ok(mut u) = self.unoffered.lock() {
                        u.push(format!("offered [{shape}]: {e}"));
                    }
                    return Err(transport(format!(
                        "the server selected a subprotocol not offered ({shape}): {e}"
                    )));
                }
                Err(e) => return Err(transport(e.to_string())),
            }
        }
        Err(Refused {
            status: 429,
            body: "still rate limited after retries".into(),
        })
    }

    async fn bearer(&self, token: &str) -> Result<Client, Refused> {
        self.connect(&[("authorization", format!("Bearer {token}"))], None)
            .await
    }

    /// A plain HTTP request on the gateway's port: (status, body).
    async fn http(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<(u16, String), String> {
        self.http_with_body(method, path, authorization, "").await
    }

    /// [`Prober::http`] with a request body.
    async fn http_with_body(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|e| e.to_string())?;
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.target.authority,
            body.len()
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        tokio::time::timeout(WAIT, (&mut s).take(1 << 20).read_to_end(&mut buf))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP response: {text:.60}"))?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    // ---- handshake credential variants ------------------------------------------------

    async fn handshakes(&mut self) {
        let user = self.user();
        let token = self.token(&user);
        let r = self.bearer(&token).await;
        let (ok, ev) = established_as(&r, &user);
        self.record("handshake_bearer_accepted", ok, ev);

        let user = self.user();
        let token = self.token(&user);
        let offered = token_subprotocols(&token);
        let r = self
            .connect(&[("sec-websocket-protocol", offered)], None)
            .await;
        let (ok, ev) = established_as(&r, &user);
        let selected = r.as_ref().ok().and_then(|c| c.subprotocol.clone());
        self.record(
            "handshake_subprotocol_selects_jwt",
            ok && selected.as_deref() == Some("jwt"),
            format!("{ev}; selected subprotocol {selected:?}"),
        );

        // A token offered without `jwt`: selecting `jwt` would be a value the client never
        // offered, so the server must refuse with 400, and never echo the token.
        let user = self.user();
        let token = self.token(&user);
        let alone = token_subprotocol(&token);
        let r = self
            .connect(&[("sec-websocket-protocol", alone.clone())], None)
            .await;
        let (status_ok, ev) = refused_with(&r, 400);
        let echoed = r
            .as_ref()
            .err()
            .is_some_and(|f| f.body.contains(&token) || f.body.contains(&alone));
        self.record(
            "handshake_subprotocol_token_alone_400",
            status_ok && !echoed,
            if echoed {
                "the refusal body echoes the token".to_string()
            } else {
                ev
            },
        );

        let user = self.user();
        let token = self.token(&user);
        match self
            .http("POST", "/tickets", Some(&format!("Bearer {token}")))
            .await
        {
            Ok((200, body)) => {
                let ticket = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["ticket"].as_str().map(str::to_string))
                    .unwrap_or_default();
                let first = self.connect(&[], Some(&format!("ticket={ticket}"))).await;
                let (ok, ev) = established_as(&first, &user);
                self.record("handshake_ticket_accepted", ok, ev);
                drop(first);
                let again = self.connect(&[], Some(&format!("ticket={ticket}"))).await;
                let (ok, ev) = refused_with(&again, 401);
                self.record("handshake_ticket_single_use_401", ok, ev);
            }
            other => {
                let ev = format!("POST /tickets answered {other:?}");
                self.record("handshake_ticket_accepted", false, ev.clone());
                self.record("handshake_ticket_single_use_401", false, ev);
            }
        }
        let (status, _) = self
            .http("POST", "/tickets", None)
            .await
            .unwrap_or((0, String::new()));
        self.record(
            "tickets_without_bearer_401",
            status == 401,
            format!("POST /tickets without a token answered {status}"),
        );

        let user = self.user();
        let token = self.token(&user);
        let r = self.connect(&[], Some(&format!("token={token}"))).await;
        let (ok, ev) = refused_with(&r, 401);
        self.record("handshake_query_token_refused_401", ok, ev);

        let r = self.connect(&[], None).await;
        let (ok, ev) = refused_with(&r, 401);
        self.record("handshake_missing_credential_401", ok, ev);
    }

    // ---- the attack-token table -------------------------------------------------------

    async fn attack_tokens(&mut self) {
        let user = self.user();
        let now = wall_clock().unix_secs();
        let base = self.claims(&user);
        let with = |changes: &[(&str, Value)], remove: &[&str]| {
            let mut c = base.clone();
            if let Some(o) = c.as_object_mut() {
                for (k, v) in changes {
                    o.insert((*k).to_string(), v.clone());
                }
                for k in remove {
                    o.remove(*k);
                }
            }
            c
        };
        let valid = self.sign(&base);
        let mut attacks: Vec<(String, String)> = Vec::new();
        let forged_key = EncodingKey::from_secret(b"not-the-server-secret-0123456789abcdef").ok();
        let forged = forged_key
            .and_then(|k| {
                jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &base, &k).ok()
            })
            .unwrap_or_default();
        attacks.push(("forged_signature".into(), forged));
        let payload = URL_SAFE_NO_PAD.encode(base.to_string());
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            attacks.push((format!("alg_{alg}"), format!("{header}.{payload}.")));
        }
        // Another algorithm the same key material signs: the key, not the header, decides.
        if let Some(m) = &self.minter {
            use jsonwebtoken::Algorithm as J;
            let sibling = match m.alg {
                J::HS256 | J::HS384 => Some(J::HS512),
                J::HS512 => Some(J::HS256),
                J::RS256 | J::RS384 | J::PS256 | J::PS384 | J::PS512 => Some(J::RS512),
                J::RS512 => Some(J::RS256),
                _ => None,
            };
            if let Some(alg) = sibling {
                let mut header = Header::new(alg);
                header.kid.clone_from(&m.kid);
                let t = jsonwebtoken::encode(&header, &base, &m.key).unwrap_or_default();
                attacks.push(("alg_differs_from_key".into(), t));
            }
        }
        let expired = with(
            &[("iat", json!(now - 7200)), ("exp", json!(now - 3600))],
            &[],
        );
        attacks.push(("expired".into(), self.sign(&expired)));
        attacks.push((
            "wrong_audience".into(),
            self.sign(&with(&[("aud", json!("someone-else"))], &[])),
        ));
        attacks.push((
            "wrong_issuer".into(),
            self.sign(&with(&[("iss", json!("evil-auth"))], &[])),
        ));
        attacks.push((
            "refresh_as_access".into(),
            self.sign(&with(&[("token_type", json!("refresh"))], &[])),
        ));
        attacks.push((
            "service_as_access".into(),
            self.sign(&with(
                &[
                    ("token_type", json!("service")),
                    ("aud", json!("gauntlet-services")),
                    ("svc_id", json!("probe")),
                ],
                &[],
            )),
        ));
        attacks.push((
            "not_yet_valid".into(),
            self.sign(&with(&[("nbf", json!(now + 3600))], &[])),
        ));
        attacks.push((
            "issued_in_future".into(),
            self.sign(&with(
                &[("iat", json!(now + 3600)), ("exp", json!(now + 4200))],
                &[],
            )),
        ));
        attacks.push(("missing_sub".into(), self.sign(&with(&[], &["sub"]))));
        attacks.push(("missing_exp".into(), self.sign(&with(&[], &["exp"]))));
        attacks.push((
            "string_exp".into(),
            self.sign(&with(&[("exp", json!((now + 600).to_string()))], &[])),
        ));
        let other = self.user();
        let swapped = URL_SAFE_NO_PAD.encode(with(&[("sub", json!(other))], &[]).to_string());
        let mut parts = valid.split('.');
        let (h, _, s) = (
            parts.next().unwrap_or(""),
            parts.next(),
            parts.next().unwrap_or(""),
        );
        attacks.push(("tampered_payload".into(), format!("{h}.{swapped}.{s}")));
        let padding = "x".repeat(5000);
        attacks.push((
            "oversized_token".into(),
            self.sign(&with(&[("email", json!(padding))], &[])),
        ));
        attacks.push(("not_a_jwt".into(), "not.a.jwt".into()));
        for (name, token) in attacks {
            let r = self.bearer(&token).await;
            let (ok, ev) = refused_with(&r, 401);
            self.record(&format!("token_{name}_401"), ok, ev);
        }
    }

    // ---- the attack table, live ----------------------------------------------------------

    /// Every live case of the attack table, re-signed with the server's keys and timed at
    /// now: an expected `accepted` must open, anything else must be 401 naming that code.
    async fn attack_table(&mut self) {
        let user = self.user();
        let now = wall_clock().unix_secs();
        let cases = match &self.table_keys {
            Some(keys) => attack_cases(keys, now, &user),
            None => return,
        };
        let cases = match cases {
            Ok(c) => c,
            Err(e) => return self.record("table_generated", false, e.to_string()),
        };
        for case in cases.iter().filter(|c| c.live()) {
            let r = self.bearer(&case.token).await;
            let (ok, ev) = match (&r, case.expected.as_str()) {
                (Ok(c), "accepted") => match &c.established {
                    Some(_) => (true, "accepted, as expected".to_string()),
                    None => (false, "upgraded but no connection_established".into()),
                },
                (Ok(_), want) => (false, format!("ACCEPTED; expected 401 {want}")),
                (Err(f), "accepted") => (
                    false,
                    format!(
                        "refused: HTTP {} {}; expected accepted",
                        f.status,
                        f.body.trim()
                    ),
                ),
                (Err(f), want) => {
                    let code = serde_json::from_str::<Value>(&f.body)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    (
                        f.status == 401 && code == want,
                        format!("HTTP {} {code}; expected 401 {want}", f.status),
                    )
                }
            };
            drop(r);
            self.record(&format!("table_{}", case.name), ok, ev);
        }
    }

    /// A token accepted once (and so cached) must still be refused once its `exp + leeway`
    /// has passed: the cache re-checks time.
    async fn cached_token_expiry(&mut self) {
        let user = self.user();
        let now = wall_clock().unix_secs();
        let mut claims = self.claims(&user);
        // Valid for two more seconds whatever the leeway.
        let exp = (now + 2).saturating_sub(self.leeway_secs);
        claims["exp"] = json!(exp);
        claims["iat"] = json!(exp.saturating_sub(60));
        let token = self.sign(&claims);
        let first = self.bearer(&token).await;
        let opened = first.as_ref().is_ok_and(|c| c.established.is_some());
        drop(first);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let again = self.bearer(&token).await;
        let (refused, ev) = refused_with(&again, 401);
        self.record(
            "token_cached_then_expired_401",
            opened && refused,
            format!("first use opened: {opened}; after exp + leeway: {ev}"),
        );
    }

    // ---- keyless attacks --------------------------------------------------------------------

    /// The keyless attacks: each must be refused before the upgrade, whatever the code.
    async fn blackbox(&mut self, options: &ProbeOptions) {
        let user = self.user();
        let cases = blackbox_cases(&BlackboxInput {
            now: wall_clock().unix_secs(),
            sub: &user,
            kid: options.kid.as_deref(),
            public_pems: &options.public_keys,
        });
        for case in cases {
            let r = self.bearer(&case.token).await;
            let (ok, ev) = match &r {
                Ok(_) => (false, format!("ACCEPTED: {}", case.description)),
                Err(f) => (
                    (400..500).contains(&f.status),
                    format!("HTTP {} {}", f.status, f.body.trim()),
                ),
            };
            drop(r);
            self.record(&format!("attack_{}_refused", case.name), ok, ev);
        }
    }

    /// The key-confusion attacks of the keyless table once per public key of the server's
    /// JWKS, each naming that key's `kid` so the server selects it: HS256 signed with the
    /// key's SubjectPublicKeyInfo PEM (with and without its final newline) and DER.
    async fn jwks_key_confusion(&mut self, keys: &[JwksKey]) {
        for (i, key) in keys.iter().enumerate() {
            let user = self.user();
            let pems = [key.pem.clone()];
            let cases = blackbox_cases(&BlackboxInput {
                now: wall_clock().unix_secs(),
                sub: &user,
                kid: key.kid.as_deref(),
                public_pems: &pems,
            });
            let kid = key.kid.as_deref().unwrap_or("(none)");
            for case in cases {
                // The table numbers its public keys; this run passes one.
                let Some(kind) = case
                    .name
                    .strip_prefix("key_confusion_")
                    .and_then(|k| k.strip_suffix("_1"))
                else {
                    continue;
                };
                let r = self.bearer(&case.token).await;
                let (ok, ev) = match &r {
                    Ok(_) => (false, format!("ACCEPTED: {} (kid {kid})", case.description)),
                    Err(f) => (
                        (400..500).contains(&f.status),
                        format!(
                            "kid {kid} ({}): HTTP {} {}",
                            key.kty,
                            f.status,
                            f.body.trim()
                        ),
                    ),
                };
                drop(r);
                let n = i + 1;
                self.record(
                    &format!("attack_jwks_{n}_key_confusion_{kind}_refused"),
                    ok,
                    ev,
                );
            }
        }
    }

    // ---- the event stream: five events, isolation, cross-user ids, resume ------------

    async fn stream(&mut self) {
        let (alice, bob) = (self.user(), self.user());
        let (ta, tb) = (self.token(&alice), self.token(&bob));
        let (Ok(mut a), Ok(mut b)) = (self.bearer(&ta).await, self.bearer(&tb).await) else {
            for name in [
                "user_message_five_events_in_order",
                "client_user_id_ignored",
                "isolation_other_user_sees_nothing",
                "cross_user_stop_agent_forbidden",
                "cross_user_subscribe_thread_forbidden",
                "cross_user_thread_message_forbidden",
                "resume_replays_without_gap",
            ] {
                self.record(name, false, "could not connect two users");
            }
            return;
        };
        let msg = json!({
            "type": "user_message", "user_id": bob,
            "payload": {"content": "probe: hello", "user_id": bob},
        });
        a.send_json(&msg).await;
        let accepted = a
            .wait_for(WAIT, |f| {
                f["type"] == "message_accepted" || f["type"] == "error"
            })
            .await;
        let accepted = accepted.last().cloned().unwrap_or(Value::Null);
        let run = accepted["run_id"].as_str().unwrap_or_default().to_string();
        let thread = accepted["thread_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // While the run is live, bob tries to touch it.
        b.send_json(&json!({"type": "stop_agent", "payload": {"run_id": run}}))
            .await;
        let stop = b.wait_for(WAIT, |f| f["type"] == "error").await;
        let mut bob_saw = stop.clone();
        let stop_code = stop
            .last()
            .map(|f| f["code"].clone())
            .unwrap_or(Value::Null);
        self.record(
            "cross_user_stop_agent_forbidden",
            stop_code == "FORBIDDEN",
            format!("stop_agent on another user's run {run}: {stop_code}"),
        );
        b.send_json(&json!({"type": "subscribe_thread", "payload": {"thread_id": thread}}))
            .await;
        let sub = b
            .wait_for(WAIT, |f| f["type"] == "error" || f["type"] == "subscribed")
            .await;
        bob_saw.extend(sub.iter().cloned());
        let sub = sub.last().cloned().unwrap_or(Value::Null);
        self.record(
            "cross_user_subscribe_thread_forbidden",
            sub["type"] == "error" && sub["code"] == "FORBIDDEN",
            format!("subscribe_thread on another user's thread: {sub}"),
        );
        b.send_json(&json!({"type": "user_message", "payload": {"content": "mine now", "thread_id": thread}}))
            .await;
        let post = b
            .wait_for(WAIT, |f| {
                f["type"] == "error" || f["type"] == "message_accepted"
            })
            .await;
        bob_saw.extend(post.iter().cloned());
        let post = post.last().cloned().unwrap_or(Value::Null);
        self.record(
            "cross_user_thread_message_forbidden",
            post["type"] == "error" && post["code"] == "FORBIDDEN",
            format!("user_message into another user's thread: {post}"),
        );

        let frames = a.wait_for(RUN_WAIT, is_terminal).await;
        let events: Vec<&Value> = frames.iter().filter(|f| f.get("seq").is_some()).collect();
        let kinds: Vec<&str> = events
            .iter()
            .map(|f| f["type"].as_str().unwrap_or("?"))
            .collect();
        let seqs: Vec<u64> = events.iter().filter_map(|f| f["seq"].as_u64()).collect();
        let in_order = seqs
            .windows(2)
            .all(|w| matches!(w, [x, y] if x.checked_add(1) == Some(*y)));
        let five_ok = !run.is_empty()
            && kinds.first() == Some(&"agent_started")
            && kinds
                .last()
                .is_some_and(|k| ["agent_completed", "agent_failed"].contains(k))
            && kinds.iter().filter(|k| is_terminal_kind(k)).count() == 1
            && in_order
            && events
                .iter()
                .all(|f| f["run_id"] == run.as_str() && f["thread_id"] == thread.as_str());
        self.record(
            "user_message_five_events_in_order",
            five_ok,
            format!("run {run}: {kinds:?} seqs {seqs:?}"),
        );
        let owners: Vec<&Value> = events.iter().map(|f| &f["user_id"]).collect();
        self.record(
            "client_user_id_ignored",
            !events.is_empty() && owners.iter().all(|u| **u == alice.as_str()),
            format!("sent user_id {bob}; events carried {:?}", dedup(&owners)),
        );
        let leaked = b.wait_for(Duration::from_millis(300), |_| false).await;
        bob_saw.extend(leaked);
        let foreign: Vec<&Value> = bob_saw
            .iter()
            .filter(|f| f.get("user_id").is_some_and(|u| *u != bob.as_str()))
            .collect();
        self.record(
            "isolation_other_user_sees_nothing",
            foreign.is_empty(),
            format!("{} frames for another user reached {bob}", foreign.len()),
        );
        drop(a);

        let latest = seqs.last().copied().unwrap_or(0);
        let from = latest.min(2);
        let ta2 = self.token(&alice);
        match self.bearer(&ta2).await {
            Ok(mut again) => {
                let reported = again
                    .established
                    .as_ref()
                    .and_then(|e| e["latest_seq"].as_u64())
                    .unwrap_or(0);
                again
                    .send_json(&json!({"type": "resume", "payload": {"last_seq": from}}))
                    .await;
                let got = again
                    .wait_for(WAIT, |f| f["type"] == "resumed" || f["type"] == "error")
                    .await;
                let replayed: Vec<u64> = got.iter().filter_map(|f| f["seq"].as_u64()).collect();
                // Compared lazily: `latest` is whatever the server sent, and a range of it
                // collected could be any size.
                let no_gap = replayed.iter().copied().eq(from.saturating_add(1)..=latest);
                self.record(
                    "resume_replays_without_gap",
                    latest > 0 && reported == latest && no_gap,
                    format!("latest_seq {reported} (expected {latest}); resume from {from} gave {replayed:?}"),
                );
            }
            Err(r) => self.record(
                "resume_replays_without_gap",
                false,
                format!("reconnect refused: {r:?}"),
            ),
        }
    }

    // ---- frame rules --------------------------------------------------------------------

    async fn frames(&mut self) {
        let Some(mut c) = self.fresh().await else {
            return self.record("malformed_json_bad_message", false, "could not connect");
        };
        c.send_text("{not json").await;
        let err = c.wait_for(WAIT, |f| f["type"] == "error").await;
        let code = err.last().map(|f| f["code"].clone()).unwrap_or(Value::Null);
        c.send_json(&json!({"type": "ping"})).await;
        let pong = c.wait_for(WAIT, |f| f["type"] == "pong").await;
        let open = pong.last().is_some_and(|f| f["type"] == "pong");
        self.record(
            "malformed_json_bad_message",
            code == "BAD_MESSAGE" && open,
            format!("error code {code}; connection still answers ping: {open}"),
        );
        c.send_json(&json!({"type": "launch_missiles", "payload": {}}))
            .await;
        let err = c.wait_for(WAIT, |f| f["type"] == "error").await;
        let code = err.last().map(|f| f["code"].clone()).unwrap_or(Value::Null);
        self.record(
            "unknown_type_error",
            code == "UNKNOWN_TYPE",
            format!("error code {code}"),
        );
        drop(c);

        if let Some(mut c) = self.fresh().await {
            for _ in 0..60 {
                c.send_json(&json!({"type": "ping"})).await;
            }
            let got = c.wait_for(WAIT, |f| f["code"] == "RATE_LIMITED").await;
            let limited = got.iter().any(|f| f["code"] == "RATE_LIMITED");
            let retry = got
                .iter()
                .find(|f| f["code"] == "RATE_LIMITED")
                .map(|f| f["retry_after_ms"].clone());
            self.record(
                "flood_rate_limited",
                limited && retry.as_ref().is_some_and(Value::is_u64),
                format!("60 pings at once: RATE_LIMITED seen {limited}, retry_after_ms {retry:?}"),
            );
        } else {
            self.record("flood_rate_limited", false, "could not connect");
        }

        let big = "a".repeat(self.max_frame_bytes + 1);
        let cases: [(&str, Message, u16); 3] = [
            ("oversized_frame_closes_1009", Message::text(big), 1009),
            (
                "binary_frame_closes_1003",
                Message::binary(vec![1u8, 2, 3]),
                1003,
            ),
            (
                "invalid_utf8_closes_1007",
                Message::Frame(Frame::message(
                    vec![0x7B, 0xFF, 0xFE, 0x7D],
                    OpCode::Data(Data::Text),
                    true,
                )),
                1007,
            ),
        ];
        for (name, msg, want) in cases {
            match self.fresh().await {
                Some(mut c) => {
                    let _ = c.ws.send(msg).await;
                    let code = c.close_code(WAIT).await;
                    self.record(
                        name,
                        code == Some(want),
                        format!("close code {code:?}, want {want}"),
                    );
                }
                None => self.record(name, false, "could not connect"),
            }
        }
    }

    /// WebSocket pings are frames too: a flood of them must meet the rate limit
    /// (`RATE-USER`), answered `RATE_LIMITED` like a flood of text frames.
    async fn control_frames(&mut self) {
        let Some(mut c) = self.fresh().await else {
            return self.record("control_frames_rate_limited", false, "could not connect");
        };
        for _ in 0..CONTROL_FLOOD {
            let _ = c.ws.send(Message::Ping(Vec::new().into())).await;
        }
        let got = c.wait_for(WAIT, |f| f["code"] == "RATE_LIMITED").await;
        let limited = got.iter().any(|f| f["code"] == "RATE_LIMITED");
        self.record(
            "control_frames_rate_limited",
            limited,
            format!(
                "{CONTROL_FLOOD} WebSocket pings at once: RATE_LIMITED seen {limited} ({} text frames back)",
                got.len()
            ),
        );
    }

    /// A service token of `svc` that allows `permissions`, with a fresh `jti`: (token, jti, exp).
    fn service_token(&mut self, permissions: &[&str]) -> (String, String, u64) {
        let svc = self.user();
        let mut claims = self.claims(&svc);
        claims["aud"] = json!("gauntlet-services");
        claims["token_type"] = json!("service");
        claims["svc_id"] = json!(svc);
        claims["permissions"] = json!(permissions);
        let jti = claims["jti"].as_str().unwrap_or_default().to_string();
        let exp = claims["exp"].as_u64().unwrap_or_default();
        (self.sign(&claims), jti, exp)
    }

    /// `POST /revocations` (`HTTP-REVOCATIONS`): the permission is required, an acknowledged
    /// revocation is in force at once (`HTTP-REVOCATIONS-DURABLE`), it closes the revoked
    /// token's open connection (`AUTH-REVOKE-CLOSE-OPEN`), and a revoked service token can
    /// revoke nothing more (`HTTP-REVOCATIONS-CALLER`).
    async fn revocations(&mut self) {
        let revoke = |jti: &str, exp: u64| {
            let list = match Jti::parse(jti) {
                Some(jti) => vec![Revocation::Jti {
                    jti,
                    exp: Instant::from_unix_secs(exp),
                }],
                None => Vec::new(),
            };
            serde_json::to_string(&list).unwrap_or_default()
        };
        let (reader, _, _) = self.service_token(&["threads:read"]);
        let (status, body) = self
            .http_with_body(
                "POST",
                "/revocations",
                Some(&format!("Bearer {reader}")),
                "[]",
            )
            .await
            .unwrap_or_else(|e| (0, e));
        self.record(
            "revocations_without_permission_403",
            status == 403,
            format!(
                "a service token without revocations:write: HTTP {status} {}",
                body.trim()
            ),
        );

        let user = self.user();
        let victim_claims = self.claims(&user);
        let victim = self.sign(&victim_claims);
        let victim_jti = victim_claims["jti"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let victim_exp = victim_claims["exp"].as_u64().unwrap_or_default();
        let open = self.bearer(&victim).await;
        let (writer, writer_jti, writer_exp) = self.service_token(&[REVOCATIONS_WRITE]);
        let auth = format!("Bearer {writer}");
        let (status, body) = self
            .http_with_body(
                "POST",
                "/revocations",
                Some(&auth),
                &revoke(&victim_jti, victim_exp),
            )
            .await
            .unwrap_or_else(|e| (0, e));
        let again = self.bearer(&victim).await;
        let (refused, ev) = refused_with(&again, 401);
        self.record(
            "revocation_acknowledged_in_force_401",
            status == 202 && refused && ev.contains("revoked"),
            format!(
                "POST /revocations answered {status} {}; the token at once: {ev}",
                body.trim()
            ),
        );
        let code = match open {
            Ok(mut c) => c.close_code(WAIT).await,
            Err(_) => None,
        };
        self.record(
            "revocation_closes_open_connection_1008",
            status == 202 && code == Some(1008),
            format!("the revoked token's open connection: close code {code:?}"),
        );

        let (status, body) = self
            .http_with_body(
                "POST",
                "/revocations",
                Some(&auth),
                &revoke(&writer_jti, writer_exp),
            )
            .await
            .unwrap_or_else(|e| (0, e));
        let (after, after_body) = self
            .http_with_body("POST", "/revocations", Some(&auth), "[]")
            .await
            .unwrap_or_else(|e| (0, e));
        self.record(
            "revocations_revoked_service_token_401",
            status == 202 && after == 401 && after_body.contains("revoked"),
            format!(
                "the service token revoked itself ({status} {}); then it answered {after} {}",
                body.trim(),
                after_body.trim()
            ),
        );
    }

    /// The endpoints that verify a bearer token before the upgrade (`POST /tickets` here)
    /// are charged per address before verifying (`HTTP-IP-RATE`): a flood of junk tokens
    /// meets 429 `ip_rate_limited` with `retry_after_ms`.
    async fn http_auth_flood(&mut self) {
        let mut seen = Vec::new();
        for _ in 0..HTTP_AUTH_FLOOD {
            match self
                .http("POST", "/tickets", Some("Bearer not.a.jwt"))
                .await
            {
                Ok((429, body)) => {
                    seen.push(429);
                    let v = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null);
                    let ok = v["error"] == "ip_rate_limited" && v["retry_after_ms"].is_u64();
                    return self.record(
                        "tickets_ip_rate_limited_429",
                        ok,
                        format!("request {}: HTTP 429 {}", seen.len(), body.trim()),
                    );
                }
                Ok((status, _)) => seen.push(status),
                Err(e) => {
                    return self.record(
                        "tickets_ip_rate_limited_429",
                        false,
                        format!("request {}: {e}", seen.len() + 1),
                    );
                }
            }
        }
        let mut statuses = seen;
        statuses.dedup();
        self.record(
            "tickets_ip_rate_limited_429",
            false,
            format!("{HTTP_AUTH_FLOOD} junk POST /tickets, never 429: statuses {statuses:?}"),
        );
    }

    async fn fresh(&mut self) -> Option<Client> {
        let user = self.user();
        let token = self.token(&user);
        self.bearer(&token).await.ok()
    }
}

impl Client {
    async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await;
    }

    async fn send_text(&mut self, t: &str) {
        let _ = self.ws.send(Message::text(t)).await;
    }

    async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match msg {
                Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Frames until one matches `done` (included) or `wait` passes; all kept in `seen` too.
    async fn wait_for(&mut self, wait: Duration, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut got = Vec::new();
        while got.len() < MAX_FRAMES {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(f) = self.next_json(left).await else {
                break;
            };
            let stop = done(&f);
            got.push(f);
            if stop {
                break;
            }
        }
        got
    }

    /// Reads until the server's close frame; its code, or `None` if none came in time.
    async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??
            {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Whether `token`'s signature verifies with a key of the JWKS `doc` (the one its header
/// names), and what was found.
fn verify_with_jwks(token: &str, doc: &[u8]) -> (bool, String) {
    let ring = match KeyRing::from_jwks(doc) {
        Ok(ring) => ring,
        Err(e) => return (false, format!("the JWKS does not make a key ring: {e}")),
    };
    match verify_signature(token.as_bytes(), &ring, &TokenRules::default()) {
        Ok(_) => (
            true,
            "the token's signature verifies with the published JWKS".into(),
        ),
        Err(e) => (
            false,
            format!(
                "no key of the published JWKS verifies the token: {}",
                e.code()
            ),
        ),
    }
}

fn is_terminal_kind(k: &str) -> bool {
    matches!(k, "agent_completed" | "agent_failed" | "agent_cancelled")
}

fn is_terminal(f: &Value) -> bool {
    f["type"].as_str().is_some_and(is_terminal_kind)
}

fn dedup(v: &[&Value]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    out.sort();
    out.dedup();
    out
}

fn established_as(r: &Result<Client, Refused>, user: &str) -> (bool, String) {
    match r {
        Ok(c) => match &c.established {
            Some(e) if e["user_id"] == user => {
                (true, format!("upgraded; connection_established for {user}"))
            }
            Some(e) => (
                false,
                format!("connection_established names {}", e["user_id"]),
            ),
            None => (false, "upgraded but no connection_established".into()),
        },
        Err(r) => (false, format!("refused: {} {}", r.status, r.body)),
    }
}

/// A subprotocol offer with every `jwt.<token>` entry shortened to `jwt.<token>`, for reports.
fn redact_offer(offer: &str) -> String {
    offer
        .split(',')
        .map(str::trim)
        .map(|p| {
            if p.starts_with("jwt.") {
                "jwt.<token>"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn refused_with(r: &Result<Client, Refused>, status: u16) -> (bool, String) {
    match r {
        Ok(_) => (false, "the upgrade was accepted".into()),
        Err(r) => (
            r.status == status,
            format!("HTTP {} {}", r.status, r.body.trim()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../corpora/tokens/keys")
                .join(name),
        )
        .unwrap()
    }

    fn signed(kid: &str, alg: jsonwebtoken::Algorithm, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &json!({"sub": "u"}), key).unwrap()
    }

    #[test]
    fn verify_with_jwks_names_what_it_found() {
        let jwks = key_file("jwks.json");
        let rsa = EncodingKey::from_rsa_pem(&key_file("rs256.key.pem")).unwrap();
        let ec = EncodingKey::from_ec_pem(&key_file("ec256.key.pem")).unwrap();
        let good = signed("rsa-1", jsonwebtoken::Algorithm::RS256, &rsa);
        assert!(verify_with_jwks(&good, &jwks).0);
        let ec_token = signed("ec-1", jsonwebtoken::Algorithm::ES256, &ec);
        assert!(verify_with_jwks(&ec_token, &jwks).0);
        // The EC key's signature under the RSA key's kid verifies with nothing.
        let mislabelled = signed("rsa-1", jsonwebtoken::Algorithm::ES256, &ec);
        assert_eq!(
            verify_with_jwks(&mislabelled, &jwks),
            (
                false,
                "no key of the published JWKS verifies the token: algorithm_mismatch".into()
            )
        );
        let (ok, ev) = verify_with_jwks(&good, b"{}");
        assert!(
            !ok && ev.starts_with("the JWKS does not make a key ring"),
            "{ev}"
        );
    }
}
