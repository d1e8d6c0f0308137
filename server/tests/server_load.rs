//! `gauntlet load` against the real server on loopback: a correct gateway shows no violation
//! and delivers events; a planted isolation bug is reported with evidence. Bounded and
//! self-stopping (127.0.0.1 only, a few seconds each).

use std::time::Duration;

use gauntlet_core::token::{Algorithm, KeyRing};
use gauntlet_core::{Config, Plants};
use gauntlet_server::load::{LoadOptions, LoadReport, load};
use gauntlet_server::{Server, ServerOptions};
use tokio::sync::oneshot;

const SECRET: &[u8] = b"gauntlet-load-test-secret-0123456789abcdef";

async fn run_load(plants: Plants, users: u32) -> LoadReport {
    let config = Config::from_json(
        r#"{"limits":{"ip_handshake_rate":{"per_second":100000,"burst":100000}},
            "agent":{"min_step_ms":5,"max_step_ms":40},"seed":3}"#,
    )
    .expect("config");
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, SECRET).expect("key");
    let server = Server::bind(ServerOptions {
        addr: "127.0.0.1:0".parse().expect("addr"),
        config,
        ring,
        plants,
        journal: None,
        revocations_file: None,
        trace: None,
    })
    .await
    .expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let options = LoadOptions {
        target: format!("ws://{addr}/ws"),
        secret: SECRET.to_vec(),
        users,
        duration: Duration::from_secs(3),
        message_every: Duration::from_millis(200),
        reconnect_every: Duration::from_secs(1),
        trace: None,
    };
    let report = tokio::time::timeout(Duration::from_secs(30), load(&options))
        .await
        .expect("bounded")
        .expect("load runs")
        .report;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_against_correct_server_finds_no_violation() {
    let r = run_load(Plants::NONE, 20).await;
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert!(r.shortfalls(20).is_empty(), "{:?}", r.shortfalls(20));
    assert_eq!(r.users_connected, 20);
    assert_eq!(r.forged_refused, 20);
    assert!(
        r.connections >= 40,
        "reconnects happened: {}",
        r.connections
    );
    assert!(
        r.runs_completed > 50,
        "runs completed: {}",
        r.runs_completed
    );
    assert!(r.latency_us[0] > 0 && r.latency_us[0] <= r.latency_us[1]);
}

#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reports_a_planted_isolation_bug() {
    let r = run_load(Plants::only(gauntlet_core::Plant::BroadcastLeak), 6).await;
    assert!(
        r.violations
            .iter()
            .any(|v| v.contains("received an event of")),
        "{:?}",
        r.violations
    );
}
