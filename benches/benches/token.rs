//! `token/*`: validation uncached (per algorithm) and cached, beside `jsonwebtoken::decode`,
//! the HMAC + base64 + typed-JSON floor, and a bare hash-map hit.
//!
//! "Uncached" is the free `token::validate`, which has no cache at all (the `Validator` adds
//! revocation and the cache on top); "cached" is `Validator::validate` hitting its cache.

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gauntlet_benches::{
    BenchAlg, HmacFloor, PeerClaims, TokenKit, floor_map, jsonwebtoken_peer, now,
};
use gauntlet_core::token::{self, TokenRules, TokenType, Validator};

fn token_benches(c: &mut Criterion) {
    let kit = TokenKit::new().expect("keys");
    let ring = TokenKit::ring().expect("ring");
    let rules = TokenRules::default();
    let claims = PeerClaims::access("user-0001", "jti-0001", &["threads:read", "runs:*"]);
    let hs = kit.mint(BenchAlg::Hs256, &claims).expect("hs256");
    let at = now();
    let mut g = c.benchmark_group("token");

    g.bench_function("validate_uncached_hs256", |b| {
        b.iter(|| {
            token::validate(
                black_box(hs.as_bytes()),
                at,
                &ring,
                &rules,
                TokenType::Access,
            )
        })
    });
    let (key, validation) = jsonwebtoken_peer().expect("peer");
    g.bench_function("jsonwebtoken_decode_hs256", |b| {
        b.iter(|| jsonwebtoken::decode::<PeerClaims>(black_box(&hs), &key, &validation))
    });
    let floor = HmacFloor::new(TokenKit::hs256_secret()).expect("floor");
    let mut buf = Vec::new();
    g.bench_function("floor_hs256", |b| {
        b.iter(|| {
            floor
                .verify(black_box(hs.as_bytes()), &mut buf)
                .map(|c| c.exp)
        })
    });

    for (id, alg) in [
        ("validate_uncached_rs256", BenchAlg::Rs256),
        ("validate_uncached_es256", BenchAlg::Es256),
        ("validate_uncached_eddsa", BenchAlg::EdDsa),
    ] {
        let t = kit.mint(alg, &claims).expect("mint");
        g.bench_function(id, |b| {
            b.iter(|| {
                token::validate(
                    black_box(t.as_bytes()),
                    at,
                    &ring,
                    &rules,
                    TokenType::Access,
                )
            })
        });
    }

    let mut validator = Validator::new(ring.clone(), rules.clone());
    validator
        .validate(hs.as_bytes(), at, TokenType::Access)
        .expect("warm the cache");
    g.bench_function("validate_cached", |b| {
        b.iter(|| validator.validate(black_box(hs.as_bytes()), at, TokenType::Access))
    });
    assert_eq!(
        validator.cache_stats().misses,
        1,
        "every benched lookup hit"
    );
    let map = floor_map(hs.as_bytes(), 10_000);
    g.bench_function("floor_map_lookup", |b| {
        b.iter(|| map.get(black_box(hs.as_bytes())).copied())
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = token_benches
}
criterion_main!(benches);
