//! Fuzzing throughput beside its floor. Replays each target's committed seed corpus
//! (`corpora/<target>/`, sorted) through the harness the cargo-fuzz target calls (input
//! decoding, the code under test, the oracle) and through the target's floor (the same
//! decoding and calls of the code under test, no oracle), in a plain `--release` build with
//! no libFuzzer or sanitizer, and prints per target the exec/s of each, their ratio, and
//! PASS when the harness runs at least [`TARGET_RATIO`] of its floor's speed.
//!
//! ```sh
//! cargo run --release -p gauntlet-benches --features fuzzing --example fuzz_floors [-- SECS [TARGET...]]
//! ```
//!
//! Each target alternates whole corpus passes of harness and floor, so a busy machine slows
//! both alike, until each side has run for SECS seconds (default 2; at least one pass).
//! Exit status: 0 when every target passes, 1 when one is under the ratio, 2 when a seed
//! broke its oracle or the command line was wrong. The wall clock is read here only, to
//! time the passes; what runs is the same on every call.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gauntlet_core::fuzzing;

/// The throughput a harness must keep relative to its floor: the oracle and setup may cost
/// at most about twice the code under test.
const TARGET_RATIO: f64 = 0.3;

type Run = fn(&[u8]) -> Result<(), String>;

/// Every target: name, harness, floor.
const TARGETS: [(&str, Run, Run); 7] = [
    (
        "token_bytes",
        |d| fuzzing::token_bytes(d).map_err(|v| v.to_string()),
        |d| fuzzing::token_bytes_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "token_claims",
        |d| fuzzing::token_claims(d).map_err(|v| v.to_string()),
        |d| fuzzing::token_claims_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "frame_route",
        |d| fuzzing::frame_route(d).map_err(|v| v.to_string()),
        |d| fuzzing::frame_route_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "handshake",
        |d| fuzzing::handshake(d).map_err(|v| v.to_string()),
        |d| fuzzing::handshake_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "log_replay",
        |d| fuzzing::log_replay(d).map_err(|v| v.to_string()),
        |d| fuzzing::log_replay_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "oauth_flow",
        |d| fuzzing::oauth_flow(d).map_err(|v| v.to_string()),
        |d| fuzzing::oauth_flow_floor(d).map_err(|v| v.to_string()),
    ),
    (
        "scenario",
        gauntlet_sim::fuzz_scenario,
        gauntlet_sim::fuzz_scenario_floor,
    ),
];

/// The seed files of `target`, sorted, read into memory so reading is not timed.
fn corpus(target: &str) -> Result<Vec<(PathBuf, Vec<u8>)>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora")
        .join(target);
    let entries = fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            fs::read(&p)
                .map(|d| (p.clone(), d))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect()
}

/// One pass of `run` over `seeds`: its time, or the first seed it failed on.
// The wall clock times the pass and is only printed; it never reaches what runs.
#[allow(clippy::disallowed_methods)]
fn pass(run: Run, seeds: &[(PathBuf, Vec<u8>)]) -> Result<Duration, String> {
    let start = Instant::now();
    for (path, data) in seeds {
        run(data).map_err(|v| format!("{}: {v}", path.display()))?;
    }
    Ok(start.elapsed())
}

struct Measured {
    harness: f64,
    floor: f64,
    passes: u32,
}

fn measure(
    harness: Run,
    floor: Run,
    seeds: &[(PathBuf, Vec<u8>)],
    budget: Duration,
) -> Result<Measured, String> {
    let (mut h, mut f, mut passes) = (Duration::ZERO, Duration::ZERO, 0u32);
    while passes == 0 || h < budget || f < budget {
        h += pass(harness, seeds)?;
        f += pass(floor, seeds)?;
        passes += 1;
    }
    let execs = f64::from(passes) * seeds.len() as f64;
    Ok(Measured {
        harness: execs / h.as_secs_f64(),
        floor: execs / f.as_secs_f64(),
        passes,
    })
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let secs = match args.next().map(|s| s.parse::<f64>()) {
        None => 2.0,
        Some(Ok(s)) if s.is_finite() && s >= 0.0 => s,
        Some(_) => {
            eprintln!("usage: fuzz_floors [SECS [TARGET...]]");
            return ExitCode::from(2);
        }
    };
    let only: Vec<String> = args.collect();
    if let Some(t) = only
        .iter()
        .find(|t| !TARGETS.iter().any(|(n, _, _)| n == t))
    {
        eprintln!("unknown target {t}");
        return ExitCode::from(2);
    }
    let budget = Duration::from_secs_f64(secs);
    println!(
        "{:<13} {:>6} {:>7} {:>12} {:>12} {:>7}  result (target >= {TARGET_RATIO}x)",
        "target", "seeds", "passes", "harness/s", "floor/s", "ratio"
    );
    let mut status = ExitCode::SUCCESS;
    for (name, harness, floor) in TARGETS {
        if !only.is_empty() && !only.iter().any(|t| t == name) {
            continue;
        }
        let m = corpus(name)
            .and_then(|seeds| measure(harness, floor, &seeds, budget).map(|m| (seeds.len(), m)));
        match m {
            Ok((seeds, m)) => {
                let ratio = m.harness / m.floor;
                let verdict = if ratio >= TARGET_RATIO {
                    "PASS"
                } else {
                    "FAIL"
                };
                if ratio < TARGET_RATIO && status == ExitCode::SUCCESS {
                    status = ExitCode::from(1);
                }
                println!(
                    "{name:<13} {seeds:>6} {:>7} {:>12.0} {:>12.0} {ratio:>6.2}x  {verdict}",
                    m.passes, m.harness, m.floor
                );
            }
            Err(e) => {
                println!("{name:<13} ERROR {e}");
                status = ExitCode::from(2);
            }
        }
    }
    status
}
