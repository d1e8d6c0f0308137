//! `sim/events_1000_users`: events per second of the real simulator
//! ([`gauntlet_sim::run_scenario`]) on a fixed scenario: 1000 users, 30 virtual seconds,
//! the `chaos` fault preset, one fixed seed, no log or trace files. It measures the whole
//! world: clients, network model, faults, the gateway and every invariant checker.
//! Elements = `RunResult.events`, the same count every iteration for the fixed seed.

mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use gauntlet_sim::{FaultPreset, Faults, SimConfig, run_scenario, scenario_for};

// The allocator `gauntlet` itself runs with (cli/src/main.rs), with the same settings (`main`
// below relaunches like `gauntlet` does), so this measures the simulator as users run it. The
// other benches keep the system allocator: they measure core's paths, and an embedder of core
// picks its own.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED: u64 = 0x6a75_6e74_6c65_7431;
const USERS: u64 = 1000;
const DURATION: Duration = Duration::from_secs(30);

fn sim_benches(c: &mut Criterion) {
    let cfg = SimConfig::builder()
        .seed(SEED)
        .users(USERS)
        .duration(DURATION)
        .faults(Faults::Preset(FaultPreset::Chaos))
        .quiet(true)
        .build()
        .expect("config");
    let sc = scenario_for(&cfg, SEED).expect("scenario");
    let expected = run_scenario(&sc, None, None).expect("run");
    assert!(expected.violation.is_none(), "{:?}", expected.violation);
    assert!(expected.events > 0, "a run processes events");
    let mut g = c.benchmark_group("sim");
    g.sample_size(10);
    g.throughput(Throughput::Elements(expected.events));
    g.bench_function("events_1000_users", |b| {
        b.iter(|| {
            let run = run_scenario(&sc, None, None).expect("run");
            assert_eq!(run.events, expected.events, "same seed, same work");
            assert_eq!(run.state_hash, expected.state_hash, "same seed, same state");
            run
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = sim_benches
}
fn main() -> std::process::ExitCode {
    if let Some(code) = gauntlet_sim::relaunch::with_allocator_settings() {
        return code;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    std::process::ExitCode::SUCCESS
}
