//! Messages per second through `gauntlet serve`'s server vs a bare tokio-tungstenite echo
//! server, measured in the same run with the same clients (issue 7, benchmark 5).
//!
//! Each of `CLIENTS` clients keeps `WINDOW` messages in flight: against the echo server it
//! sends text and counts echoes; against the gateway it sends `{"type":"ping"}` and counts
//! `pong`s, so every message crosses the whole gateway path (frame checks, rate limit,
//! decode, route, encode, flow control). Both servers use a 4096-byte read buffer.
//!
//! ```text
//! cargo run --release -p gauntlet-server --example server_throughput [-- SECONDS CLIENTS]
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use gauntlet_core::token::{Algorithm, KeyRing};
use gauntlet_core::{Config, Plants};
use gauntlet_server::{Server, ServerOptions, wall_clock};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const SECRET: &[u8] = b"gauntlet-bench-secret-0123456789abcdef";
const WINDOW: usize = 16;
const ROUNDS: usize = 3;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096)
}

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(ws_config())).await
                else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn gateway_server() -> SocketAddr {
    let config = Config::from_json(
        r#"{"limits":{"user_rate":{"per_second":10000000,"burst":10000000},
                      "ip_handshake_rate":{"per_second":100000,"burst":100000}}}"#,
    )
    .unwrap();
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, SECRET).unwrap();
    let options = ServerOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        config,
        ring,
        plants: Plants::NONE,
        journal: None,
        revocations_file: None,
    };
    let server = Server::bind(options).await.unwrap();
    let addr = server.local_addr();
    tokio::spawn(server.run(std::future::pending()));
    addr
}

fn token(sub: &str) -> String {
    let now = wall_clock().unix_secs();
    let claims = serde_json::json!({"iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub,
        "jti": format!("bench-{sub}"), "iat": now, "exp": now + 600, "token_type": "access"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

/// Runs `clients` fresh clients for `secs` seconds and returns replies per second.
async fn measure(addr: SocketAddr, gateway: bool, clients: usize, secs: u64) -> f64 {
    let replies = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    for i in 0..clients {
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        if gateway {
            let bearer = format!("Bearer {}", token(&format!("bench-{i}")));
            req.headers_mut()
                .insert("authorization", HeaderValue::from_str(&bearer).unwrap());
        }
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(req, stream, Some(ws_config()))
                .await
                .unwrap();
        if gateway {
            // connection_established
            ws.next().await.unwrap().unwrap();
        }
        sockets.push(ws);
    }
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for ws in sockets {
        let replies = replies.clone();
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = ws.split();
            let msg = r#"{"type":"ping"}"#;
            for _ in 0..WINDOW {
                tx.send(Message::text(msg)).await.unwrap();
            }
            while tokio::time::Instant::now() < deadline {
                match tokio::time::timeout_at(deadline, rx.next()).await {
                    Ok(Some(Ok(Message::Text(_)))) => {
                        replies.fetch_add(1, Ordering::Relaxed);
                        if tx.send(Message::text(msg)).await.is_err() {
                            return;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => return,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    replies.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let echo = echo_server().await;
        let gateway = gateway_server().await;
        // Alternate the two so background load on a shared machine hits both alike.
        let mut ratios = Vec::new();
        for round in 1..=ROUNDS {
            let floor = measure(echo, false, clients, secs).await;
            let ours = measure(gateway, true, clients, secs).await;
            println!(
                "round {round}: echo {floor:>8.0} msgs/s, gateway {ours:>8.0} msgs/s, ratio {:.2}",
                ours / floor
            );
            ratios.push(ours / floor);
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
        println!("clients {clients}, window {WINDOW}, {secs} s per measurement");
        println!("median ratio gateway/echo: {median:.2}");
    });
}
