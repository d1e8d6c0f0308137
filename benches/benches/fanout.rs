//! `fanout/*`: one stream event through the gateway to many connections, beside pushing one
//! shared frame into as many queues.
//!
//! The trigger is an inbound `broadcast` (the sender holds `system:broadcast`), which appends
//! a `system_notice` to every connected user's stream. With one user holding 10 connections
//! that is exactly `send_to_user` to 10 connections; with 1000 users of one connection each
//! it is `broadcast_to_all` to 1000 connections (each user's copy carries that user's own
//! `seq`, so it is rendered once per user). Sends are acknowledged every `ACK_EVERY` rounds.
//!
//! The floors are protocol-true: `floor_render_enqueue_1000` builds each of 1000 users' own
//! frame (its `seq` and `user_id` between a prefix and a suffix rendered once) and pushes it
//! into that user's queue; `floor_parse_render_enqueue_10` parses the inbound frame, then
//! builds one user's frame once and pushes it into that user's 10 queues. `floor_enqueue_1000`
//! (one shared frame into 1000 queues, which the protocol does not allow for a broadcast) is
//! kept as context.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_benches::{
    ACK_EVERY, FloorQueues, FloorRender, GatewayFixture, bench_config, floor_parse_render_enqueue,
};
use gauntlet_core::{ConnId, Outputs};

const BROADCAST: &[u8] = br#"{"type":"broadcast","payload":{"text":"maintenance at 02:00 UTC"}}"#;

/// A gateway whose first connection may broadcast, with `conns` connections spread over
/// `users` users.
fn setup(users: usize, conns: usize) -> (GatewayFixture, Vec<ConnId>) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let per_user = conns / users;
    let mut all = Vec::with_capacity(conns);
    for u in 0..users {
        let user = format!("user-{u:04}");
        for _ in 0..per_user {
            all.push(fx.connect(&user, &["system:broadcast"]).expect("connect"));
        }
    }
    (fx, all)
}

fn bench_broadcast(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    users: usize,
    conns: usize,
) {
    let (mut fx, all) = setup(users, conns);
    let sender = all[0];
    let mut out = Outputs::default();
    fx.text_into(sender, BROADCAST, &mut out);
    assert_eq!(
        out.sends.len(),
        conns,
        "a broadcast reaches every connection"
    );
    let mut rounds = 1;
    c.throughput(Throughput::Elements(conns as u64));
    c.bench_function(id, |b| {
        b.iter(|| {
            fx.text_into(sender, black_box(BROADCAST), &mut out);
            rounds += 1;
            if rounds == ACK_EVERY {
                for conn in &all {
                    drop(fx.ack(*conn, rounds));
                }
                rounds = 0;
            }
        })
    });
    assert_eq!(
        out.sends.len(),
        conns,
        "the last broadcast reached every connection"
    );
    let stats = fx.gateway().stats();
    assert_eq!(stats.connections, conns, "no connection was closed");
}

fn fanout_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    bench_broadcast(&mut g, "send_to_user_10_conns", 1, 10);
    bench_broadcast(&mut g, "broadcast_1000_conns", 1000, 1000);

    let frame: Arc<str> = Arc::from(
        r#"{"type":"system_notice","seq":42,"user_id":"user-0001","timestamp":1800000000000,"payload":{"from":"user-0000","text":"maintenance at 02:00 UTC"}}"#,
    );
    let mut queues = FloorQueues::new(1000);
    let mut rounds = 0;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("floor_enqueue_1000", |b| {
        b.iter(|| {
            queues.enqueue(black_box(&frame));
            rounds += 1;
            if rounds == ACK_EVERY {
                queues.drain();
                rounds = 0;
            }
        })
    });

    // The gateway's own payload for BROADCAST from user-0000, and a fixed event time.
    let payload = r#"{"from":"user-0000","text":"maintenance at 02:00 UTC"}"#;
    let at_ms = 1_800_000_000_000;
    let mut render = FloorRender::new(1000, 1, "system_notice", at_ms, payload);
    let mut rounds = 0;
    g.throughput(Throughput::Elements(1000));
    g.bench_function("floor_render_enqueue_1000", |b| {
        b.iter(|| {
            black_box(render.render_enqueue());
            rounds += 1;
            if rounds == ACK_EVERY {
                render.drain();
                rounds = 0;
            }
        })
    });

    let mut render = FloorRender::new(1, 10, "system_notice", at_ms, payload);
    let first = floor_parse_render_enqueue(BROADCAST, &mut render);
    assert_eq!(first.ok(), Some(10), "the inbound frame parses");
    let mut rounds = 1;
    g.throughput(Throughput::Elements(10));
    g.bench_function("floor_parse_render_enqueue_10", |b| {
        b.iter(|| {
            black_box(floor_parse_render_enqueue(black_box(BROADCAST), &mut render).ok());
            rounds += 1;
            if rounds == ACK_EVERY {
                render.drain();
                rounds = 0;
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = fanout_benches
}
criterion_main!(benches);
