//! `sim/events_1000_users`: events per second of the gateway under a seeded workload of 1000
//! connected users. Until the simulator exists this is `EventsDriver`, a seeded driver loop
//! over the gateway alone (no network model, no faults, no checkers); see its docs. One
//! iteration is 10 000 rounds (10 virtual seconds) from a freshly connected gateway (the
//! 1000 handshakes are setup, unmeasured). Elements = inputs handled + frames sent, the same
//! count every iteration for the fixed seed.

mod common;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gauntlet_benches::EventsDriver;

const SEED: u64 = 0x6a75_6e74_6c65_7431;
const USERS: usize = 1000;
const ROUNDS: u64 = 10_000;

fn sim_benches(c: &mut Criterion) {
    let expected = EventsDriver::new(SEED, USERS).expect("driver").run(ROUNDS);
    assert_eq!(expected.closes, 0, "a healthy workload closes nobody");
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.throughput(Throughput::Elements(expected.elements()));
    g.bench_function("events_1000_users", |b| {
        b.iter_batched(
            || EventsDriver::new(SEED, USERS).expect("driver"),
            |mut d| {
                let run = d.run(ROUNDS);
                assert_eq!(run, expected, "same seed, same work");
                d
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sim_benches
}
criterion_main!(benches);
