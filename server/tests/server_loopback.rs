//! The real server on loopback sockets (docs/protocol.md sections 8, 9, 11, 14, 16, 17): every test binds
//! port 0, drives real tokio-tungstenite clients with real HS256 tokens on the wall clock,
//! is bounded by a timeout and stops its own server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use gauntlet_core::protocol::{token_subprotocol, token_subprotocols};
use gauntlet_core::token::{Algorithm, KeyRing, Revocation};
use gauntlet_core::{
    CloseReason, Config, Event, Instant, JournalLine, Jti, LogEntry, Plants, replay_journal,
};
use gauntlet_server::probe::{ProbeError, ProbeOptions, probe};
use gauntlet_server::{
    FsyncPolicy, JournalOptions, Server, ServerError, ServerOptions, ServerReport, Startup,
    wall_clock,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const SECRET: &[u8] = b"gauntlet-loopback-secret-0123456789abcdef";
/// Every test finishes well inside this, or fails.
const TEST_BUDGET: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<TcpStream>;

/// Fast agent runs, no leeway (so a short token expires in seconds) and a handshake rate
/// loopback tests cannot trip by accident.
fn test_config() -> Config {
    Config::from_json(
        r#"{"tokens":{"leeway_secs":0},
            "limits":{"ip_handshake_rate":{"per_second":1000,"burst":1000}},
            "agent":{"min_step_ms":5,"max_step_ms":30},
            "seed":7}"#,
    )
    .unwrap()
}

fn ring() -> KeyRing {
    let mut r = KeyRing::new();
    r.add_hmac(None, Algorithm::HS256, SECRET).unwrap();
    r
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<ServerReport, ServerError>>,
    startup: Startup,
}

impl Running {
    async fn start(config: Config, plants: Plants, journal: Option<PathBuf>) -> Running {
        Self::start_with(ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config,
            ring: ring(),
            plants,
            journal: journal.map(|path| JournalOptions {
                path,
                fsync: FsyncPolicy::Always,
            }),
            revocations_file: None,
            trace: None,
        })
        .await
    }

    async fn start_with(options: ServerOptions) -> Running {
        let server = Server::bind(options).await.unwrap();
        let addr = server.local_addr();
        let startup = server.startup().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            stop: Some(stop),
            task,
            startup,
        }
    }

    /// Stops the server and waits for it. Tests drop their clients first: the server waits up
    /// to its close grace (2 s) for a connected client to answer its 1001, and a test that no
    /// longer reads its socket never does.
    async fn shutdown(mut self) -> ServerReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.unwrap().unwrap()
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn now_secs() -> u64 {
    wall_clock().unix_secs()
}

fn mint(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

fn access_claims(sub: &str, jti: &str, ttl: u64) -> Value {
    let now = now_secs();
    json!({"iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub, "jti": jti,
           "iat": now, "exp": now + ttl, "token_type": "access"})
}

fn token(sub: &str) -> String {
    mint(&access_claims(sub, &format!("jti-{sub}"), 600))
}

async fn connect_with(
    addr: SocketAddr,
    headers: &[(&str, String)],
    query: Option<&str>,
) -> Result<(Ws, Option<String>), WsError> {
    let url = match query {
        Some(q) => format!("ws://{addr}/ws?{q}"),
        None => format!("ws://{addr}/ws"),
    };
    let mut req = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name =
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        req.headers_mut()
            .append(name, HeaderValue::from_str(value).unwrap());
    }
    let stream = TcpStream::connect(addr).await.unwrap();
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)).await?;
    let sub = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_string());
    Ok((ws, sub))
}

/// Connects with a bearer token and returns the socket and its `connection_established`.
async fn connect(addr: SocketAddr, token: &str) -> (Ws, Value) {
    let (mut ws, _) = connect_with(addr, &[("authorization", format!("Bearer {token}"))], None)
        .await
        .unwrap();
    let hello = next_json(&mut ws).await.unwrap();
    assert_eq!(hello["type"], "connection_established");
    (ws, hello)
}

async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Frames up to and including the first that matches `done`.
async fn until(ws: &mut Ws, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    while let Some(f) = next_json(ws).await {
        let stop = done(&f);
        got.push(f);
        if stop {
            break;
        }
    }
    got
}

fn terminal(f: &Value) -> bool {
    ["agent_completed", "agent_failed", "agent_cancelled"]
        .contains(&f["type"].as_str().unwrap_or(""))
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The close code the server sent, reading past any other frames.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split(' ').nth(1).unwrap().parse().unwrap();
    (status, buf.split_once("\r\n\r\n").unwrap().1.to_string())
}

fn stream_seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter_map(|f| f["seq"].as_u64()).collect()
}

async fn bounded<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST_BUDGET, f)
        .await
        .expect("test exceeded its time budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_refused_401_before_upgrade() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &access_claims("mallory", "jti-mallory", 600),
            &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-0123456789abcdef").unwrap(),
        )
        .unwrap();
        let refused = connect_with(
            server.addr,
            &[("authorization", format!("Bearer {forged}"))],
            None,
        )
        .await;
        let Err(WsError::Http(response)) = refused else {
            panic!("expected an HTTP refusal, got {:?}", refused.map(|_| ()));
        };
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
        assert_eq!(body["error"], "bad_signature");
        let (status, metrics) = http(server.addr, "GET", "/metrics", None, "").await;
        assert_eq!(status, 200);
        assert!(
            metrics
                .contains(r#"gauntlet_auth_failures_total{status="401",code="bad_signature"} 1"#),
            "{metrics}"
        );
        assert!(metrics.contains("gauntlet_connections 0"), "{metrics}");
        assert_eq!(
            http(server.addr, "GET", "/healthz", None, "").await,
            (200, "ok\n".to_string())
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_token_selects_jwt() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let offered = token_subprotocols(&token("sam"));
        let (mut ws, selected) =
            connect_with(server.addr, &[("sec-websocket-protocol", offered)], None)
                .await
                .unwrap();
        assert_eq!(selected.as_deref(), Some("jwt"));
        let hello = next_json(&mut ws).await.unwrap();
        assert_eq!(hello["user_id"], "sam");
        drop(ws);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subprotocol_token_without_jwt_is_400_with_hint_and_no_token() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let t = token("sid");
        let alone = token_subprotocol(&t);
        let refused = connect_with(
            server.addr,
            &[("sec-websocket-protocol", alone.clone())],
            None,
        )
        .await;
        let Err(WsError::Http(response)) = refused else {
            panic!("expected an HTTP refusal, got {:?}", refused.map(|_| ()));
        };
        assert_eq!(response.status().as_u16(), 400);
        assert!(response.headers().get("sec-websocket-protocol").is_none());
        let raw = response.body().as_ref().unwrap();
        let text = String::from_utf8_lossy(raw);
        assert!(!text.contains(&t) && !text.contains(&alone), "{text}");
        let body: Value = serde_json::from_slice(raw).unwrap();
        assert_eq!(body["error"], "jwt_subprotocol_required");
        assert!(body["hint"].as_str().unwrap().contains("`jwt`"), "{body}");
        // The same token, offered beside `jwt`, opens.
        let (_ws, selected) = connect_with(
            server.addr,
            &[("sec-websocket-protocol", token_subprotocols(&t))],
            None,
        )
        .await
        .unwrap();
        assert_eq!(selected.as_deref(), Some("jwt"));
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_message_yields_five_events_in_order() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let (mut ws, hello) = connect(server.addr, &token("ada")).await;
        assert_eq!(hello["latest_seq"], 0);
        send(
            &mut ws,
            json!({"type": "user_message", "payload": {"content": "hi"}}),
        )
        .await;
        let frames = until(&mut ws, terminal).await;
        let accepted = &frames[0];
        assert_eq!(accepted["type"], "message_accepted");
        let events: Vec<&Value> = frames.iter().filter(|f| f.get("seq").is_some()).collect();
        let kinds: Vec<&str> = events.iter().map(|f| f["type"].as_str().unwrap()).collect();
        assert_eq!(kinds.first(), Some(&"agent_started"));
        assert!(terminal(events.last().unwrap()), "{kinds:?}");
        let seqs = stream_seqs(&frames);
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
        for e in &events {
            assert_eq!(e["user_id"], "ada");
            assert_eq!(e["run_id"], accepted["run_id"]);
            assert_eq!(e["thread_id"], accepted["thread_id"]);
        }
        drop(ws);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_see_only_their_own_events() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let (mut a, _) = connect(server.addr, &token("alice")).await;
        let (mut b, _) = connect(server.addr, &token("bob")).await;
        send(
            &mut a,
            json!({"type": "user_message", "user_id": "bob", "payload": {"content": "a"}}),
        )
        .await;
        send(
            &mut b,
            json!({"type": "user_message", "payload": {"content": "b"}}),
        )
        .await;
        let fa = until(&mut a, terminal).await;
        let fb = until(&mut b, terminal).await;
        for (frames, me) in [(&fa, "alice"), (&fb, "bob")] {
            let owners: Vec<&Value> = frames.iter().filter_map(|f| f.get("user_id")).collect();
            assert!(!owners.is_empty());
            assert!(owners.iter().all(|u| *u == me), "{me} saw {owners:?}");
        }
        drop(a);
        drop(b);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_with_protocol_codes() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let bad_utf8 = Frame::message(vec![b'{', 0xFF, b'}'], OpCode::Data(Data::Text), true);
        let cases: Vec<(Message, u16)> = vec![
            (Message::text("x".repeat(8193)), 1009),
            // Past tungstenite's own limit (max_frame_bytes + 4096): the server closes it itself.
            (Message::text("x".repeat(8192 + 4096 + 1)), 1009),
            (Message::binary(vec![0u8; 4]), 1003),
            (Message::Frame(bad_utf8), 1007),
        ];
        for (i, (msg, want)) in cases.into_iter().enumerate() {
            let (mut ws, _) = connect(server.addr, &token(&format!("frames-{i}"))).await;
            ws.send(msg).await.unwrap();
            assert_eq!(close_code(&mut ws).await, Some(want), "case {i}");
        }
        let (_, metrics) = http(server.addr, "GET", "/metrics", None, "").await;
        assert!(
            metrics.contains(r#"gauntlet_closes_total{code="1009"} 2"#),
            "{metrics}"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_gets_rate_limited() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let (mut ws, _) = connect(server.addr, &token("flooder")).await;
        for _ in 0..40 {
            send(&mut ws, json!({"type": "ping"})).await;
        }
        let frames = until(&mut ws, |f| f["code"] == "RATE_LIMITED").await;
        let pongs = frames.iter().filter(|f| f["type"] == "pong").count();
        // The burst is 20 (docs/protocol.md section 9); at 10/s a slow sender may earn a few more.
        assert!(
            (20..40).contains(&pongs),
            "{pongs} pongs before RATE_LIMITED"
        );
        let limited = frames.last().unwrap();
        assert_eq!(limited["code"], "RATE_LIMITED");
        assert!(limited["retry_after_ms"].as_u64().unwrap() > 0);
        drop(ws);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_resume_has_no_gap() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let (mut ws, _) = connect(server.addr, &token("rhea")).await;
        send(
            &mut ws,
            json!({"type": "user_message", "payload": {"content": "go"}}),
        )
        .await;
        let first = until(&mut ws, |f| f["type"] == "agent_started").await;
        let seen = stream_seqs(&first);
        assert_eq!(seen, vec![1]);
        drop(ws);
        // Let the run finish while rhea is away.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (mut ws, hello) = connect(server.addr, &token("rhea")).await;
        let latest = hello["latest_seq"].as_u64().unwrap();
        assert!(latest >= 2, "latest_seq {latest}");
        send(
            &mut ws,
            json!({"type": "resume", "payload": {"last_seq": 1}}),
        )
        .await;
        let resumed = until(&mut ws, |f| f["type"] == "resumed").await;
        assert_eq!(stream_seqs(&resumed), (2..=latest).collect::<Vec<_>>());
        assert_eq!(resumed.last().unwrap()["count"], latest - 1);
        assert!(terminal(&resumed[resumed.len() - 2]));
        drop(ws);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiry_closes_1008() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let short = mint(&access_claims("eve", "jti-short", 2));
        let (mut ws, _) = connect(server.addr, &short).await;
        let started = wall_clock();
        let code = close_code_within(&mut ws, Duration::from_secs(6)).await;
        assert_eq!(code, Some((1008, "token expired".to_string())));
        assert!(wall_clock().saturating_since(started) >= Duration::from_millis(500));
        server.shutdown().await;
    })
    .await;
}

async fn close_code_within(ws: &mut Ws, wait: Duration) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()?? {
            Ok(Message::Close(frame)) => {
                return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_live_connection() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let victim = mint(&access_claims("vic", "jti-vic", 600));
        let (mut ws, _) = connect(server.addr, &victim).await;
        let now = now_secs();
        let service = |perms: Value| {
            mint(
                &json!({"iss": "gauntlet-auth", "aud": "gauntlet-services", "sub": "auth-node",
                         "jti": "svc-1", "iat": now, "exp": now + 600, "token_type": "service",
                         "svc_id": "auth", "permissions": perms}),
            )
        };
        let body = serde_json::to_string(&vec![Revocation::Jti {
            jti: Jti::parse("jti-vic").unwrap(),
            exp: Instant::from_unix_secs(now + 600),
        }])
        .unwrap();
        let weak = service(json!(["threads:read"]));
        assert_eq!(
            http(server.addr, "POST", "/revocations", Some(&weak), &body)
                .await
                .0,
            403
        );
        assert_eq!(
            http(server.addr, "POST", "/revocations", Some(&victim), &body)
                .await
                .0,
            401
        );
        let strong = service(json!(["revocations:write"]));
        let (status, answer) =
            http(server.addr, "POST", "/revocations", Some(&strong), &body).await;
        assert_eq!((status, answer.as_str()), (202, r#"{"accepted":1}"#));
        let code = close_code_within(&mut ws, Duration::from_secs(4)).await;
        assert_eq!(code.map(|c| c.0), Some(1008));
        let again = connect_with(
            server.addr,
            &[("authorization", format!("Bearer {victim}"))],
            None,
        )
        .await;
        assert!(matches!(again, Err(WsError::Http(r)) if r.status() == 401));
        server.shutdown().await;
    })
    .await;
}

fn temp_journal(name: &str) -> PathBuf {
    temp_file(name, "journal.jsonl")
}

fn temp_file(name: &str, file: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-server-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(file);
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_1001_and_footers_journal() {
    bounded(async {
        let path = temp_journal("shutdown");
        let server = Running::start(test_config(), Plants::NONE, Some(path.clone())).await;
        let (mut ws, _) = connect(server.addr, &token("gus")).await;
        send(&mut ws, json!({"type": "ping"})).await;
        assert_eq!(next_json(&mut ws).await.unwrap()["type"], "pong");
        let closing = tokio::spawn(async move { close_code(&mut ws).await });
        let report = server.shutdown().await;
        assert_eq!(closing.await.unwrap(), Some(1001));
        let text = std::fs::read_to_string(&path).unwrap();
        let replayed = replay_journal(&text).unwrap();
        assert_eq!(
            replayed.recorded_hash.as_deref(),
            Some(report.state_hash.as_str())
        );
        assert_eq!(replayed.gateway.state_hash(), report.state_hash);
        let closed_by_shutdown: Vec<LogEntry> = text
            .lines()
            .filter_map(|l| match serde_json::from_str::<JournalLine>(l).unwrap() {
                JournalLine::Entry(e) => Some(e),
                _ => None,
            })
            .filter(|e| {
                matches!(
                    e.event,
                    Event::SessionClosed {
                        reason: CloseReason::Shutdown,
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(closed_by_shutdown.len(), 1, "{text}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_journal_keeps_user_stream() {
    restart_keeps_user_stream("restart", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_crash_without_footer_keeps_user_stream() {
    restart_keeps_user_stream("crash", true).await;
}

/// Runs a user's agent run, stops the server (cleanly, or as a crash that left neither the
/// footer nor the last newline), restarts on the same journal and resumes the stream.
async fn restart_keeps_user_stream(name: &str, crash: bool) {
    bounded(async {
        let path = temp_journal(name);
        let server = Running::start(test_config(), Plants::NONE, Some(path.clone())).await;
        assert_eq!(server.startup, Startup::Fresh);
        let (mut ws, _) = connect(server.addr, &token("ria")).await;
        send(
            &mut ws,
            json!({"type": "user_message", "payload": {"content": "remember"}}),
        )
        .await;
        let before = until(&mut ws, terminal).await;
        let before: Vec<Value> = before
            .into_iter()
            .filter(|f| f.get("seq").is_some())
            .collect();
        server.shutdown().await;
        if crash {
            let text = std::fs::read_to_string(&path).unwrap();
            let body = text.trim_end();
            let cut = body.get(..body.rfind('\n').unwrap()).unwrap();
            assert!(body.get(cut.len()..).unwrap().contains("footer"));
            std::fs::write(&path, cut).unwrap();
        }

        let server = Running::start(test_config(), Plants::NONE, Some(path.clone())).await;
        assert!(matches!(server.startup, Startup::Resumed { entries, .. } if entries > 0));
        let (mut ws, hello) = connect(server.addr, &token("ria")).await;
        assert_eq!(hello["latest_seq"].as_u64().unwrap(), before.len() as u64);
        send(
            &mut ws,
            json!({"type": "resume", "payload": {"last_seq": 0}}),
        )
        .await;
        let mut after = until(&mut ws, |f| f["type"] == "resumed").await;
        after.pop();
        assert_eq!(
            after, before,
            "the replayed stream must be byte-for-byte the original"
        );
        drop(ws);
        let report = server.shutdown().await;
        let replayed = replay_journal(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(replayed.recorded_hash, Some(report.state_hash));
    })
    .await;
}

/// Protocol defaults for everything the attack table's expectations hang on (leeway,
/// lifetimes, issuer, audience), with fast agents and a handshake rate the probe cannot trip.
fn probe_config() -> Config {
    Config::from_json(
        r#"{"limits":{"ip_handshake_rate":{"per_second":1000,"burst":1000}},
            "agent":{"min_step_ms":5,"max_step_ms":30},
            "seed":7}"#,
    )
    .unwrap()
}

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../corpora/tokens/keys")
            .join(name),
    )
    .unwrap()
}

/// A server whose ring is the committed RS256 public key, without a kid.
async fn start_rs256(plants: Plants) -> Running {
    let mut ring = KeyRing::new();
    ring.add_public_pem(None, Algorithm::RS256, &key_file("rs256.pub.pem"))
        .unwrap();
    Running::start_with(ServerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        config: probe_config(),
        ring,
        plants,
        journal: None,
        revocations_file: None,
        trace: None,
    })
    .await
}

#[cfg(feature = "planted-bugs")]
fn failed(checks: &[gauntlet_server::probe::Check]) -> Vec<&str> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_passes_against_our_server() {
    bounded(async {
        let server = Running::start(probe_config(), Plants::NONE, None).await;
        let options = ProbeOptions::hs256(&server.url(), SECRET);
        let checks = probe(&options).await.unwrap();
        let bad: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        let table = checks
            .iter()
            .filter(|c| c.name.starts_with("table_"))
            .count();
        let keyless = checks
            .iter()
            .filter(|c| c.name.starts_with("attack_"))
            .count();
        assert!(table >= 60, "only {table} attack-table cases ran live");
        assert!(keyless >= 15, "only {keyless} keyless attacks ran");
        for name in [
            "table_valid_hs256",
            "table_alg_differs_from_key",
            "table_max_size_4096",
            "token_cached_then_expired_401",
            "handshake_subprotocol_token_alone_400",
            "subprotocol_never_unoffered",
            "control_frames_rate_limited",
            "revocations_without_permission_403",
            "revocation_acknowledged_in_force_401",
            "revocation_closes_open_connection_1008",
            "revocations_revoked_service_token_401",
            "tickets_ip_rate_limited_429",
        ] {
            assert!(checks.iter().any(|c| c.name == name), "no check {name}");
        }
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_with_rs256_private_key_runs_the_table_and_passes() {
    bounded(async {
        let server = start_rs256(Plants::NONE).await;
        let mut options = ProbeOptions::hs256(&server.url(), b"");
        options.keys = vec![gauntlet_server::probe::ProbeKey {
            alg: Algorithm::RS256,
            material: key_file("rs256.key.pem"),
        }];
        options.public_keys = vec![key_file("rs256.pub.pem")];
        let checks = probe(&options).await.unwrap();
        let bad: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(checks.iter().any(|c| c.name == "table_valid_rs256"));
        assert!(
            checks
                .iter()
                .any(|c| c.name == "attack_key_confusion_pem_1_refused")
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_without_key_sends_keyless_attacks_all_refused() {
    bounded(async {
        let server = start_rs256(Plants::NONE).await;
        let mut options = ProbeOptions::hs256(&server.url(), b"");
        options.keys.clear();
        options.public_keys = vec![key_file("rs256.pub.pem")];
        let checks = probe(&options).await.unwrap();
        let bad: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(checks.iter().all(|c| !c.name.starts_with("table_")));
        for name in [
            "attack_alg_none_refused",
            "attack_key_confusion_pem_1_refused",
            "attack_key_confusion_der_1_refused",
            "attack_embedded_jwk_refused",
            "attack_header_jku_elsewhere_refused",
            "attack_kid_sql_injection_refused",
            "attack_kid_nul_byte_refused",
            "attack_psychic_signature_es256_refused",
            "attack_null_signature_hs256_refused",
            "attack_hs256_empty_secret_refused",
            "tickets_ip_rate_limited_429",
        ] {
            assert!(checks.iter().any(|c| c.name == name), "no check {name}");
        }
        server.shutdown().await;
    })
    .await;
}

#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_alg_from_header_plant_as_accepted_attacks() {
    use gauntlet_core::Plant;
    bounded(async {
        let server = Running::start(probe_config(), Plants::only(Plant::AlgFromHeader), None).await;
        let checks = probe(&ProbeOptions::hs256(&server.url(), SECRET))
            .await
            .unwrap();
        let bad = failed(&checks);
        assert!(bad.contains(&"table_alg_differs_from_key"), "{bad:?}");
        assert!(bad.contains(&"token_alg_differs_from_key_401"), "{bad:?}");
        let ev = checks
            .iter()
            .find(|c| c.name == "table_alg_differs_from_key")
            .map(|c| c.evidence.clone())
            .unwrap_or_default();
        assert!(ev.starts_with("ACCEPTED"), "{ev}");
        server.shutdown().await;
        // Keyless, against an RS256 server: RS -> HS key confusion with its public key opens.
        let server = start_rs256(Plants::only(Plant::AlgFromHeader)).await;
        let mut options = ProbeOptions::hs256(&server.url(), b"");
        options.keys.clear();
        options.public_keys = vec![key_file("rs256.pub.pem")];
        let checks = probe(&options).await.unwrap();
        assert_eq!(failed(&checks), vec!["attack_key_confusion_pem_1_refused"]);
        server.shutdown().await;
    })
    .await;
}

#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_reports_cache_ignores_exp_plant() {
    use gauntlet_core::Plant;
    bounded(async {
        let server =
            Running::start(probe_config(), Plants::only(Plant::CacheIgnoresExp), None).await;
        let checks = probe(&ProbeOptions::hs256(&server.url(), SECRET))
            .await
            .unwrap();
        assert_eq!(failed(&checks), vec!["token_cached_then_expired_401"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_of_a_port_nothing_listens_on_is_unreachable_not_failed_checks() {
    bounded(async {
        // A port just freed: nothing listens on it, so the connect is refused at once.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let options = ProbeOptions::hs256(&format!("ws://{addr}/ws"), SECRET);
        match probe(&options).await {
            Err(ProbeError::Unreachable { target, reason }) => {
                assert_eq!(target, options.target);
                assert!(!reason.is_empty());
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    })
    .await;
}

#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fails_against_planted_broadcast_leak() {
    use gauntlet_core::Plant;
    bounded(async {
        let server = Running::start(probe_config(), Plants::only(Plant::BroadcastLeak), None).await;
        let options = ProbeOptions::hs256(&server.url(), SECRET);
        let checks = probe(&options).await.unwrap();
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, vec!["isolation_other_user_sees_nothing"]);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_file_appended_line_closes_connection() {
    bounded(async {
        let path = temp_file("revfile", "revocations.jsonl");
        std::fs::write(&path, "").unwrap();
        let server = Running::start_with(ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config: test_config(),
            ring: ring(),
            plants: Plants::NONE,
            journal: None,
            revocations_file: Some(path.clone()),
            trace: None,
        })
        .await;
        let (mut ws, _) = connect(server.addr, &mint(&access_claims("fay", "jti-fay", 600))).await;
        let (mut other, _) = connect(server.addr, &token("gil")).await;
        let line = serde_json::to_string(&Revocation::User {
            user: gauntlet_core::UserId::parse("fay").unwrap(),
            not_before: Instant::from_unix_secs(now_secs() + 1),
        })
        .unwrap();
        std::fs::write(&path, format!("not json\n{line}\n")).unwrap();
        let code = close_code_within(&mut ws, Duration::from_secs(4)).await;
        assert_eq!(code, Some((1008, "token revoked".to_string())));
        send(&mut other, json!({"type": "ping"})).await;
        assert_eq!(next_json(&mut other).await.unwrap()["type"], "pong");
        drop(other);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_over_ip_rate_answers_429_with_retry_after() {
    bounded(async {
        let mut config = test_config();
        config.limits.ip_handshake_rate = gauntlet_core::Rate {
            per_second: 1,
            burst: 2,
        };
        let server = Running::start(config, Plants::NONE, None).await;
        let _a = connect(server.addr, &token("ivy")).await;
        let _b = connect(server.addr, &token("ivy")).await;
        let third = connect_with(
            server.addr,
            &[("authorization", format!("Bearer {}", token("ivy")))],
            None,
        )
        .await;
        let Err(WsError::Http(response)) = third else {
            panic!("expected 429, got {:?}", third.map(|_| ()));
        };
        assert_eq!(response.status().as_u16(), 429);
        let retry: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(retry, 1);
        let body: Value = serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
        assert_eq!(body["error"], "ip_rate_limited");
        server.shutdown().await;
    })
    .await;
}

fn service_token(jti: &str, permissions: Value) -> String {
    let now = now_secs();
    mint(
        &json!({"iss": "gauntlet-auth", "aud": "gauntlet-services", "sub": "auth-node",
                 "jti": jti, "iat": now, "exp": now + 600, "token_type": "service",
                 "svc_id": "auth", "permissions": permissions}),
    )
}

fn revoke_body(jti: &str) -> String {
    serde_json::to_string(&vec![Revocation::Jti {
        jti: Jti::parse(jti).unwrap(),
        exp: Instant::from_unix_secs(now_secs() + 600),
    }])
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frames_count_against_the_user_rate_limit() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let (mut ws, _) = connect(server.addr, &token("cid")).await;
        // The default bucket holds 20: the 21st ping finds it empty.
        for _ in 0..21 {
            ws.send(Message::Ping(Vec::new().into())).await.unwrap();
        }
        let err = next_json(&mut ws).await.unwrap();
        assert_eq!(
            (err["type"].as_str(), err["code"].as_str()),
            (Some("error"), Some("RATE_LIMITED"))
        );
        assert!(err["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1));
        send(&mut ws, json!({"type": "ping"})).await;
        let next = next_json(&mut ws).await.unwrap();
        assert_eq!(
            next["code"], "RATE_LIMITED",
            "the pings spent the tokens the text frame needed"
        );
        let metrics = http(server.addr, "GET", "/metrics", None, "").await.1;
        assert!(
            metrics.contains("gauntlet_messages_in_total 22"),
            "{metrics}"
        );
        drop(ws);
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_refuse_a_revoked_service_token_at_once() {
    bounded(async {
        let server = Running::start(test_config(), Plants::NONE, None).await;
        let writer = service_token("svc-self", json!(["revocations:write"]));
        let other = service_token("svc-other", json!(["revocations:write"]));
        let post = |t: String, body: String| async move {
            http(server.addr, "POST", "/revocations", Some(&t), &body).await
        };
        assert_eq!(
            post(writer.clone(), revoke_body("svc-self")).await,
            (202, r#"{"accepted":1}"#.to_string())
        );
        // No wait: the revocation was in force when it was acknowledged.
        assert_eq!(
            post(writer.clone(), "[]".into()).await,
            (401, r#"{"error":"revoked"}"#.to_string())
        );
        assert_eq!(
            post(other, "[]".into()).await,
            (202, r#"{"accepted":0}"#.to_string()),
            "another service token still works"
        );
        server.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_journaled_and_in_force_when_acknowledged() {
    bounded(async {
        let path = temp_journal("durable-revocation");
        let server = Running::start_with(ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config: test_config(),
            ring: ring(),
            plants: Plants::NONE,
            journal: Some(JournalOptions {
                path: path.clone(),
                fsync: FsyncPolicy::Interval,
            }),
            revocations_file: None,
            trace: None,
        })
        .await;
        let victim = mint(&access_claims("dee", "jti-dee", 600));
        let writer = service_token("svc-1", json!(["revocations:write"]));
        let (status, _) = http(
            server.addr,
            "POST",
            "/revocations",
            Some(&writer),
            &revoke_body("jti-dee"),
        )
        .await;
        assert_eq!(status, 202);
        // What a crash right after the 202 leaves: the journal as it is on disk now.
        let crashed = temp_journal("durable-revocation-crashed");
        std::fs::copy(&path, &crashed).unwrap();
        let text = std::fs::read_to_string(&crashed).unwrap();
        let journaled = text.lines().any(|l| {
            matches!(
                serde_json::from_str::<JournalLine>(l),
                Ok(JournalLine::Entry(LogEntry { event: Event::FeedSynced { revocations, .. }, .. }))
                    if revocations.iter().any(|r| matches!(r, Revocation::Jti { jti, .. } if jti.as_str() == "jti-dee"))
            )
        });
        assert!(journaled, "the acknowledged revocation is not in the journal:\n{text}");
        let refused = connect_with(
            server.addr,
            &[("authorization", format!("Bearer {victim}"))],
            None,
        )
        .await;
        assert!(matches!(refused, Err(WsError::Http(r)) if r.status() == 401));
        server.shutdown().await;

        let restarted = Running::start(test_config(), Plants::NONE, Some(crashed)).await;
        assert!(matches!(restarted.startup, Startup::Resumed { .. }));
        let refused = connect_with(
            restarted.addr,
            &[("authorization", format!("Bearer {victim}"))],
            None,
        )
        .await;
        let Err(WsError::Http(response)) = refused else {
            panic!("the revoked token opened after the restart");
        };
        assert_eq!(response.status().as_u16(), 401);
        let body: Value = serde_json::from_slice(response.body().as_ref().unwrap()).unwrap();
        assert_eq!(body["error"], "revoked");
        restarted.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_and_revocations_over_the_ip_rate_are_429_before_the_token_is_verified() {
    bounded(async {
        let mut config = test_config();
        config.limits.ip_http_auth_rate = gauntlet_core::Rate {
            per_second: 1,
            burst: 2,
        };
        let server = Running::start(config, Plants::NONE, None).await;
        let valid = token("hal");
        assert_eq!(
            http(server.addr, "POST", "/tickets", Some("not.a.jwt"), "")
                .await
                .0,
            401
        );
        let writer = service_token("svc-1", json!(["revocations:write"]));
        assert_eq!(
            http(server.addr, "POST", "/revocations", Some(&writer), "[]")
                .await
                .0,
            202,
            "both endpoints draw on one bucket per address"
        );
        // The bucket is empty: even a valid token is refused before it is looked at.
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        let req = format!(
            "POST /tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {valid}\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
        assert!(answer.contains("\r\nRetry-After: 1\r\n"), "{answer}");
        let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["error"], "ip_rate_limited");
        assert!(
            body["retry_after_ms"]
                .as_u64()
                .is_some_and(|ms| (1..=1000).contains(&ms))
        );
        assert_eq!(
            http(server.addr, "POST", "/revocations", Some(&writer), "[]")
                .await
                .0,
            429
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (status, body) = http(server.addr, "POST", "/tickets", Some(&valid), "").await;
        assert_eq!(status, 200, "refilled: {body}");
        server.shutdown().await;
    })
    .await;
}

/// Each plant the simulator cannot reach is caught by exactly the probe check it names.
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_catches_each_probe_only_plant_with_its_named_check() {
    use gauntlet_core::Plant;
    bounded(async {
        let plants: Vec<Plant> = Plant::ALL
            .into_iter()
            .filter(|p| p.probe_check().is_some())
            .collect();
        assert_eq!(plants, vec![Plant::ServiceTokenRevocationIgnored]);
        for plant in plants {
            let server = Running::start(probe_config(), Plants::only(plant), None).await;
            let checks = probe(&ProbeOptions::hs256(&server.url(), SECRET))
                .await
                .unwrap();
            assert_eq!(
                failed(&checks),
                vec![plant.probe_check().unwrap()],
                "{plant}"
            );
            server.shutdown().await;
        }
    })
    .await;
}

/// The committed JWKS of the corpus keys: `rsa-1` (RS256) and `ec-1` (ES256).
fn jwks_doc() -> Vec<u8> {
    key_file("jwks.json")
}

/// A keyless probe that knows only the server's published JWKS (as `probe --jwks` runs it).
fn jwks_options(url: &str) -> ProbeOptions {
    let mut options = ProbeOptions::hs256(url, b"");
    options.keys.clear();
    options.jwks = Some(jwks_doc());
    options.kid = Some("rsa-1".into());
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_with_only_the_jwks_attacks_each_key_by_kid_and_verifies_the_token() {
    bounded(async {
        let server = Running::start_with(ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config: probe_config(),
            ring: KeyRing::from_jwks(&jwks_doc()).unwrap(),
            plants: Plants::NONE,
            journal: None,
            revocations_file: None,
            trace: None,
        })
        .await;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        let issued = jsonwebtoken::encode(
            &header,
            &access_claims("jay", "jti-jay", 600),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&key_file("rs256.key.pem")).unwrap(),
        )
        .unwrap();
        let mut options = jwks_options(&server.url());
        options.token = Some(issued);
        let checks = probe(&options).await.unwrap();
        let bad: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
        assert!(bad.is_empty(), "{bad:#?}");
        for name in [
            "attack_jwks_1_key_confusion_pem_refused",
            "attack_jwks_1_key_confusion_pem_no_newline_refused",
            "attack_jwks_1_key_confusion_der_refused",
            "attack_jwks_2_key_confusion_pem_refused",
            "attack_jwks_2_key_confusion_der_refused",
            "token_verifies_with_jwks",
        ] {
            assert!(checks.iter().any(|c| c.name == name), "no check {name}");
        }
        let ev = checks
            .iter()
            .find(|c| c.name == "attack_jwks_2_key_confusion_der_refused")
            .map(|c| c.evidence.clone())
            .unwrap_or_default();
        assert!(ev.starts_with("kid ec-1 (EC): HTTP 401"), "{ev}");
        assert!(
            checks.iter().all(|c| !c.name.starts_with("table_")),
            "no private key, so no table"
        );
        server.shutdown().await;
    })
    .await;
}

/// A server that lets the header's `alg` pick the algorithm, holding the JWKS's RSA key as
/// its PEM: the JWKS-derived PEM is byte for byte what it holds, so HS256 signed with it opens.
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_with_only_the_jwks_catches_key_confusion_of_an_alg_from_header_server() {
    use gauntlet_core::{Kid, Plant};
    bounded(async {
        let mut ring = KeyRing::new();
        ring.add_public_pem(
            Kid::parse("rsa-1"),
            Algorithm::RS256,
            &key_file("rs256.pub.pem"),
        )
        .unwrap();
        let server = Running::start_with(ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config: probe_config(),
            ring,
            plants: Plants::only(Plant::AlgFromHeader),
            journal: None,
            revocations_file: None,
            trace: None,
        })
        .await;
        let checks = probe(&jwks_options(&server.url())).await.unwrap();
        assert_eq!(
            failed(&checks),
            vec!["attack_jwks_1_key_confusion_pem_refused"]
        );
        server.shutdown().await;
    })
    .await;
}
