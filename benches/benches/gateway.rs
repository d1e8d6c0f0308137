//! `gateway/handshake_hs256`: a full authenticated handshake through `Gateway::handle`
//! (credential extraction, per-IP bucket, token validation, revocation and connection caps,
//! session open, `connection_established` rendered), with a token the validation cache has
//! not seen: tokens come from a pool larger than the cache, used in order, so each was
//! evicted before it comes round again. The connection is closed again, unmeasured.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_benches::{GatewayFixture, bench_config};
use gauntlet_core::protocol::HandshakeRequest;
use gauntlet_core::token::DEFAULT_CACHE_CAPACITY;
use gauntlet_core::{HandshakeDecision, Input};
use std::net::IpAddr;

const USERS: usize = 1000;

fn gateway_benches(c: &mut Criterion) {
    let mut fx = GatewayFixture::new(bench_config()).expect("gateway");
    let pool: Vec<String> = (0..DEFAULT_CACHE_CAPACITY + DEFAULT_CACHE_CAPACITY / 10)
        .map(|i| {
            fx.token(&format!("user-{:04}", i % USERS), &[])
                .expect("mint")
        })
        .collect();
    let mut next = 0;
    let mut g = c.benchmark_group("gateway");
    g.bench_function("handshake_hs256", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let token = &pool[next % pool.len()];
                next += 1;
                let conn = fx.next_conn();
                // Peers cycle over 1000 addresses: the gateway tracks a bounded number of IPs.
                let request = HandshakeRequest::new(IpAddr::from([
                    10,
                    1,
                    (next % 250) as u8,
                    (next % 4) as u8,
                ]))
                .header("Authorization", &format!("Bearer {token}"));
                let (out, took) =
                    common::timed(|| fx.handle(black_box(Input::Handshake { conn, request })));
                total += took;
                assert!(matches!(
                    out.handshake,
                    Some((_, HandshakeDecision::Accept { .. }))
                ));
                drop(out);
                drop(fx.handle(Input::Closed { conn }));
            }
            total
        })
    });
    g.finish();
    assert_eq!(
        fx.gateway().stats().cache_hits,
        0,
        "every handshake was uncached"
    );
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = gateway_benches
}
criterion_main!(benches);
