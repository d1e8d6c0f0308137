//! `router/*`: one inbound text frame through the whole gateway path (`Gateway::handle_into`
//! with `Input::Text` on an authenticated connection and a reused `Outputs`, as the drivers
//! call it: size and UTF-8 checks, the rate bucket, envelope decode, routing, reply
//! rendering), beside a typed `serde_json` parse of the same bytes. Sends are acknowledged
//! with `Input::Sent` every `ACK_EVERY` frames.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_benches::{ACK_EVERY, GatewayFixture, bench_config, floor_serde_typed, frame_field};
use gauntlet_core::Outputs;

const PING: &[u8] = br#"{"type":"ping","message_id":"m-1"}"#;
const USER_MESSAGE: &[u8] =
    br#"{"type":"user_message","payload":{"content":"summarise the report","thread_id":"t-bench"},"message_id":"m-2"}"#;

fn router_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("router");

    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let conn = fx.connect("user-ping", &[]).expect("connect");
    let mut out = Outputs::default();
    fx.text_into(conn, PING, &mut out);
    assert_eq!(
        out.sends.first().map(|(_, f)| &**f),
        Some(r#"{"type":"pong","message_id":"m-1"}"#),
        "a ping is answered"
    );
    let mut sent = out.sends.len();
    g.bench_function("parse_route_ping", |b| {
        b.iter(|| {
            fx.text_into(conn, black_box(PING), &mut out);
            sent += out.sends.len();
            if sent >= ACK_EVERY {
                drop(fx.ack(conn, sent));
                sent = 0;
            }
        })
    });
    assert_eq!(
        fx.gateway().stats().connections,
        1,
        "the bench connection stayed open"
    );

    // A user_message starts an agent run, and runs outlive a frozen clock, so each measured
    // message is followed by an unmeasured `stop_agent` for the run it started: the
    // per-user run cap is never reached and the state stays the same size.
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let conn = fx.connect("user-chat", &[]).expect("connect");
    g.bench_function("parse_route_user_message", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let data = USER_MESSAGE.to_vec();
                let (out, took) = common::timed(|| fx.text(conn, black_box(&data)));
                total += took;
                let run = out
                    .sends
                    .iter()
                    .find_map(|(_, f)| frame_field(f, "run_id"))
                    .expect("message_accepted names the run");
                let mut sent = out.sends.len();
                drop(out);
                let stop = format!(r#"{{"type":"stop_agent","payload":{{"run_id":"{run}"}}}}"#);
                sent += fx.text(conn, stop.as_bytes()).sends.len();
                drop(fx.ack(conn, sent));
            }
            total
        })
    });
    assert_eq!(fx.gateway().stats().active_runs, 0, "every run was stopped");

    g.bench_function("floor_serde_typed", |b| {
        b.iter(|| floor_serde_typed(black_box(PING)).map(|e| e.message_id.map(str::len)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = router_benches
}
criterion_main!(benches);
