//! Memory per idle authenticated connection and handshake rate of the real server
//! (issue 7, benchmark 5), on this machine's loopback.
//!
//! The example re-runs itself as a child process that only serves, so the child's resident
//! memory (`VmRSS` in `/proc/PID/status`, Linux) is the server's alone. The parent opens
//! `N` connections with distinct users (the per-user cap is 10), waits for each
//! `connection_established`, and reports handshakes per second and the RSS growth per
//! connection.
//!
//! ```text
//! cargo run --release -p gauntlet-server --example server_idle [-- N]
//! ```

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt as _;
use gauntlet_core::token::{Algorithm, KeyRing};
use gauntlet_core::{Config, Plants};
use gauntlet_server::{Server, ServerOptions, wall_clock};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const SECRET: &[u8] = b"gauntlet-bench-secret-0123456789abcdef";
/// Handshakes in flight at once.
const PARALLEL: usize = 64;

fn child() {
    let config = Config::from_json(
        r#"{"limits":{"ip_handshake_rate":{"per_second":1000000,"burst":1000000}}}"#,
    )
    .unwrap();
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, SECRET).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = ServerOptions {
            addr: "127.0.0.1:0".parse().unwrap(),
            config,
            ring,
            plants: Plants::NONE,
            journal: None,
            revocations_file: None,
            trace: None,
        };
        let server = Server::bind(options).await.unwrap();
        println!("{}", server.local_addr());
        // Runs until the parent kills it.
        let _ = server.run(std::future::pending()).await;
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn token(sub: &str) -> String {
    let now = wall_clock().unix_secs();
    let claims = serde_json::json!({"iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": sub,
        "jti": format!("idle-{sub}"), "iat": now, "exp": now + 3600, "token_type": "access"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let first = args.next();
    if first.as_deref() == Some("--child") {
        return child();
    }
    let n: usize = first.and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mut server = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();
    let pid = server.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let tokens: Vec<String> = (0..n).map(|i| token(&format!("idle-{i}"))).collect();
        let before = rss_kib(pid);
        let started = tokio::time::Instant::now();
        let mut open = Vec::with_capacity(n);
        for chunk in tokens.chunks(PARALLEL) {
            let batch = chunk.iter().map(|t| async move {
                let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
                let bearer = HeaderValue::from_str(&format!("Bearer {t}")).unwrap();
                req.headers_mut().insert("authorization", bearer);
                let stream = TcpStream::connect(addr).await.unwrap();
                let config = WebSocketConfig::default().read_buffer_size(4096);
                let (mut ws, _) =
                    tokio_tungstenite::client_async_with_config(req, stream, Some(config))
                        .await
                        .unwrap();
                ws.next().await.unwrap().unwrap();
                ws
            });
            open.extend(futures_util::future::join_all(batch).await);
        }
        let elapsed = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_kib(pid);
        println!(
            "{n} idle authenticated connections in {elapsed:.2} s: {:.0} handshakes/s",
            n as f64 / elapsed
        );
        println!(
            "server RSS {before} KiB -> {after} KiB: {:.1} KiB per connection",
            (after.saturating_sub(before)) as f64 / n as f64
        );
        drop(open);
    });
    let _ = server.kill();
    let _ = server.wait();
}
