//! Messages per second and ping latency through `gauntlet serve`'s server, beside three
//! floors measured in the same run with the same clients:
//!
//! * **naive echo**: tokio-tungstenite, `ws.send(msg)` per frame, so every reply is flushed
//!   on its own (context only: it is not a floor, the server batches its writes);
//! * **tuned echo**: the floor. The same WebSocket config and read buffer as the server; it
//!   reads every frame that is already available, `feed`s each reply and flushes once per
//!   drained batch, as the server's writer does. A ping (`{"type":"ping"}`) and a pong
//!   (`{"type":"pong"}`) are both 15 bytes, so echoing the frame is a reply of pong's size;
//! * **raw TCP**: the same batching on a plain socket with newline-delimited messages, so
//!   the table shows what WebSocket framing itself costs.
//!
//! Each of `CLIENTS` clients keeps `WINDOW` messages in flight: against the gateway it sends
//! `{"type":"ping"}` and counts `pong`s, so every message crosses the whole gateway path
//! (frame checks, rate limit, decode, route, encode, flow control). Every reply's latency
//! (from its request's send to its arrival; replies come back in order on a connection) goes
//! into an HDR histogram. The four servers are measured in turn, round after round, so
//! background load on a shared machine hits all of them alike; the table gives medians over
//! rounds and ratios to the tuned echo.
//!
//! Targets: `serve` >= 0.95x the tuned echo's messages per second, and its p99 ping latency
//! <= 1.5x the tuned echo's. A missed target is reported, not an error: the command exits
//! non-zero only when a measurement itself fails (a server or client could not run).
//!
//! ```text
//! cargo run --release -p gauntlet-server --example server_throughput [-- SECONDS CLIENTS ROUNDS [ONLY]]
//! ```
//!
//! `ONLY` (a comma-separated subset of `naive,tuned,tcp,serve`) measures just those servers,
//! so a profiler attached to the process sees one server's path alone; the ratios and targets
//! then need `tuned` in the list.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use gauntlet_core::token::{Algorithm, KeyRing};
use gauntlet_core::{Config, Plants};
use gauntlet_server::{READ_BUFFER_SIZE, Server, ServerOptions, wall_clock};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const SECRET: &[u8] = b"gauntlet-bench-secret-0123456789abcdef";
const WINDOW: usize = 16;
const PING: &str = r#"{"type":"ping"}"#;
/// The gateway's writer feeds at most this many frames before a flush (server `conn.rs`).
const WRITE_BATCH: usize = 64;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_SIZE)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    NaiveEcho,
    TunedEcho,
    RawTcp,
    Gateway,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::NaiveEcho,
        Kind::TunedEcho,
        Kind::RawTcp,
        Kind::Gateway,
    ];

    /// The name `ONLY` selects it by.
    fn key(self) -> &'static str {
        match self {
            Kind::NaiveEcho => "naive",
            Kind::TunedEcho => "tuned",
            Kind::RawTcp => "tcp",
            Kind::Gateway => "serve",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::NaiveEcho => "naive echo (send per frame)",
            Kind::TunedEcho => "tuned echo (the floor)",
            Kind::RawTcp => "raw TCP, same batching",
            Kind::Gateway => "gauntlet serve",
        }
    }
}

/// Accepts WebSocket connections on a free loopback port, each with the server's config, and
/// hands each to `session` on a task of its own.
async fn serve_ws<F, Fut>(session: F) -> Result<SocketAddr>
where
    F: Fn(WebSocketStream<TcpStream>) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
                {
                    session(ws).await;
                }
            });
        }
    });
    Ok(addr)
}

/// Accepts WebSocket connections and echoes every text frame, flushing per frame.
async fn naive_echo() -> Result<SocketAddr> {
    serve_ws(|mut ws| async move {
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() && ws.send(msg).await.is_err() {
                return;
            }
        }
    })
    .await
}

/// Accepts WebSocket connections and echoes every text frame, feeding the replies to every
/// frame already read and flushing once per drained batch (at most [`WRITE_BATCH`]).
async fn tuned_echo() -> Result<SocketAddr> {
    serve_ws(|mut ws| async move {
        while let Some(Ok(first)) = ws.next().await {
            let mut next = Some(first);
            let mut fed = 0;
            while let Some(msg) = next.take() {
                if msg.is_text() {
                    if ws.feed(msg).await.is_err() {
                        return;
                    }
                    fed += 1;
                }
                if fed < WRITE_BATCH {
                    next = match ws.next().now_or_never() {
                        Some(Some(Ok(m))) => Some(m),
                        Some(_) => return,
                        None => None,
                    };
                }
            }
            if ws.flush().await.is_err() {
                return;
            }
        }
    })
    .await
}

/// A newline-delimited echo on plain TCP: one read, every complete line answered with a
/// line of the same size, one write per read.
async fn raw_tcp() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; READ_BUFFER_SIZE];
                let mut pending = Vec::new();
                let mut out = Vec::new();
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(buf.get(..n).unwrap_or_default());
                    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                        out.extend(pending.drain(..=end));
                    }
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            });
        }
    });
    Ok(addr)
}

async fn gateway() -> Result<SocketAddr> {
    let config = Config::from_json(
        r#"{"limits":{"user_rate":{"per_second":10000000,"burst":10000000},
                      "ip_handshake_rate":{"per_second":100000,"burst":100000}}}"#,
    )?;
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, SECRET)?;
    let options = ServerOptions {
        addr: "127.0.0.1:0".parse()?,
        config,
        ring,
        plants: Plants::NONE,
        journal: None,
        revocations_file: None,
        trace: None,
    };
    let server = Server::bind(options).await?;
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    Ok(addr)
}

fn token(sub: &str) -> Result<String> {
    let now = wall_clock().unix_secs();
    let claims = serde_json::json!({"iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub,
        "jti": format!("bench-{sub}"), "iat": now, "exp": now + 600, "token_type": "access"});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET)?,
    )?)
}

/// One client's run: replies counted and each reply's latency recorded.
struct ClientRun {
    replies: u64,
    latency: Histogram<u64>,
}

fn histogram() -> Result<Histogram<u64>> {
    // 1 us .. 60 s, 3 significant digits.
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

fn record(h: &mut Histogram<u64>, sent: Option<Instant>) {
    if let Some(sent) = sent {
        let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        h.saturating_record(us.max(1));
    }
}

async fn ws_client(
    addr: SocketAddr,
    gateway: bool,
    i: usize,
    deadline: Instant,
) -> Result<ClientRun> {
    let mut req = format!("ws://{addr}/ws").into_client_request()?;
    if gateway {
        let bearer = format!("Bearer {}", token(&format!("bench-{i}"))?);
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(&bearer)?);
    }
    let stream = TcpStream::connect(addr).await?;
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config())).await?;
    let (mut tx, mut rx) = ws.split();
    if gateway {
        // connection_established comes first and is not a reply.
        rx.next()
            .await
            .ok_or("closed before connection_established")??;
    }
    let mut run = ClientRun {
        replies: 0,
        latency: histogram()?,
    };
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    for _ in 0..WINDOW {
        in_flight.push_back(Instant::now());
        tx.send(Message::text(PING)).await?;
    }
    loop {
        match tokio::time::timeout_at(deadline, rx.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => {
                run.replies += 1;
                record(&mut run.latency, in_flight.pop_front());
                in_flight.push_back(Instant::now());
                tx.send(Message::text(PING)).await?;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err("server closed the connection".into()),
            Err(_) => return Ok(run),
        }
    }
}

async fn tcp_client(addr: SocketAddr, deadline: Instant) -> Result<ClientRun> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let line = format!("{PING}\n");
    let mut run = ClientRun {
        replies: 0,
        latency: histogram()?,
    };
    let mut in_flight = VecDeque::with_capacity(WINDOW);
    for _ in 0..WINDOW {
        in_flight.push_back(Instant::now());
        stream.write_all(line.as_bytes()).await?;
    }
    let mut buf = vec![0u8; READ_BUFFER_SIZE];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("server closed the connection".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Ok(run),
        };
        let lines = buf
            .get(..n)
            .unwrap_or_default()
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        let mut out = Vec::with_capacity(lines * line.len());
        for _ in 0..lines {
            run.replies += 1;
            record(&mut run.latency, in_flight.pop_front());
            in_flight.push_back(Instant::now());
            out.extend_from_slice(line.as_bytes());
        }
        stream.write_all(&out).await?;
    }
}

/// One measurement: messages per second and the latency histogram over every client.
struct Measured {
    per_sec: f64,
    latency: Histogram<u64>,
}

async fn measure(kind: Kind, addr: SocketAddr, clients: usize, secs: u64) -> Result<Measured> {
    // Connect first (handshakes are not measured), then start every client together.
    let start = Instant::now() + Duration::from_millis(300 + clients as u64 * 2);
    let deadline = start + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            match kind {
                Kind::RawTcp => tcp_client(addr, deadline).await,
                _ => ws_client(addr, kind == Kind::Gateway, i, deadline).await,
            }
        }));
    }
    let mut replies = 0;
    let mut latency = histogram()?;
    for t in tasks {
        let run = t.await??;
        replies += run.replies;
        latency.add(&run.latency)?;
    }
    let elapsed = Instant::now()
        .saturating_duration_since(start)
        .as_secs_f64();
    Ok(Measured {
        per_sec: replies as f64 / elapsed.max(1e-9),
        latency,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let only = args.next();
    let selected = |kind: Kind| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|k| k == kind.key()))
    };
    if Kind::ALL.into_iter().all(|k| !selected(k)) {
        return Err("ONLY names none of naive, tuned, tcp, serve".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addrs = [naive_echo().await?, tuned_echo().await?, raw_tcp().await?, gateway().await?];
        let mut rates: [Vec<f64>; 4] = Default::default();
        let mut p50s: [Vec<f64>; 4] = Default::default();
        let mut p99s: [Vec<f64>; 4] = Default::default();
        for round in 1..=rounds {
            for (k, kind) in Kind::ALL.into_iter().enumerate() {
                if !selected(kind) {
                    continue;
                }
                let addr = addrs.get(k).copied().ok_or("server missing")?;
                let m = measure(kind, addr, clients, secs).await?;
                let (p50, p99) = (m.latency.value_at_quantile(0.5), m.latency.value_at_quantile(0.99));
                println!(
                    "round {round}: {:<28} {:>9.0} msgs/s  p50 {p50:>6} us  p99 {p99:>6} us",
                    kind.name(),
                    m.per_sec
                );
                if let (Some(r), Some(a), Some(b)) = (rates.get_mut(k), p50s.get_mut(k), p99s.get_mut(k)) {
                    r.push(m.per_sec);
                    a.push(p50 as f64);
                    b.push(p99 as f64);
                }
            }
        }
        let rate: Vec<f64> = rates.into_iter().map(median).collect();
        let p50: Vec<f64> = p50s.into_iter().map(median).collect();
        let p99: Vec<f64> = p99s.into_iter().map(median).collect();
        let tuned = rate.get(1).copied().unwrap_or(0.0).max(1e-9);
        let tuned_p99 = p99.get(1).copied().unwrap_or(0.0).max(1e-9);
        println!();
        println!("clients {clients}, window {WINDOW}, {secs} s per measurement, {rounds} rounds (medians)");
        println!("{:<28} {:>10} {:>9} {:>9} {:>9} {:>10}", "server", "msgs/s", "vs tuned", "p50 us", "p99 us", "p99/tuned");
        for (k, kind) in Kind::ALL.into_iter().enumerate() {
            if !selected(kind) {
                continue;
            }
            let (r, a, b) = (
                rate.get(k).copied().unwrap_or(0.0),
                p50.get(k).copied().unwrap_or(0.0),
                p99.get(k).copied().unwrap_or(0.0),
            );
            // Without the tuned echo measured there is nothing to divide by.
            let ratio = |x: f64, of: f64| {
                if selected(Kind::TunedEcho) {
                    format!("{:.2}x", x / of)
                } else {
                    "-".to_owned()
                }
            };
            println!(
                "{:<28} {r:>10.0} {:>9} {a:>9.0} {b:>9.0} {:>10}",
                kind.name(),
                ratio(r, tuned),
                ratio(b, tuned_p99)
            );
        }
        let ours = rate.get(3).copied().unwrap_or(0.0) / tuned;
        let ours_p99 = p99.get(3).copied().unwrap_or(0.0) / tuned_p99;
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        if !(selected(Kind::TunedEcho) && selected(Kind::Gateway)) {
            return Ok(());
        }
        println!();
        println!("target serve >= 0.95x tuned echo msgs/s: {ours:.2}x ({})", verdict(ours >= 0.95));
        println!("target serve p99 <= 1.5x tuned echo p99: {ours_p99:.2}x ({})", verdict(ours_p99 <= 1.5));
        Ok(())
    })
}
