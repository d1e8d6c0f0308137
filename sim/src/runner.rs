//! Running many seeds: worker threads, ordered results, the failures file.
//!
//! [`run_seeds`] runs a closure `seed -> SeedOutcome` over the seeds of a [`SeedRange`]
//! that belong to a [`Shard`] (`seed % N == I`), on `jobs` threads, and hands results to a
//! sink **in seed order** whatever the thread count: each seed's run is deterministic and
//! independent, so the outcomes, and the order they are reported in, do not depend on
//! `--jobs`. With stop-on-failure the run stops at the lowest failing seed, and every seed
//! below it is still run and reported, so even the stopping point is independent of `jobs`.
//!
//! [`run`] ties a whole `gauntlet sim` invocation together on top of it: reporter, progress
//! bar, failures file, and the re-run of a sweep's first seed that checks the simulation is
//! deterministic within one process (`LOG-DETERMINISM`).
//!
//! Besides a world's helper (`witness`), this is the one place in the simulator that
//! spawns threads, and the one that reads the wall clock (to report wall time per seed);
//! neither reaches a [`SeedOutcome`].

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use crate::config::SimConfig;
use crate::outcome::{SeedOutcome, SeedResult, Summary, Violation};
use crate::progress::{Progress, Ticker};
use crate::report::Reporter;
use crate::seeds::{MAX_JOBS, RunOptions};

/// The process's peak resident set in bytes (`VmHWM` of `/proc/self/status`), read only to
/// report it; `None` where the system does not say.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// `VmHWM:   123456 kB` -> bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kb = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kb.checked_mul(1024)
}

/// The wall clock, read only to report how long things took.
#[allow(clippy::disallowed_methods)] // wall time is reported, never fed into a seed's run
fn wall_now() -> std::time::Instant {
    std::time::Instant::now()
}

fn timed<F: Fn(u64) -> SeedOutcome>(run: &F, seed: u64) -> SeedResult {
    let started = wall_now();
    let outcome = run(seed);
    SeedResult {
        outcome,
        wall: started.elapsed(),
    }
}

/// Runs the seeds of `opts` and passes each result to `sink` in ascending seed order.
///
/// `run` must be deterministic in its seed; it is called from `opts.jobs` threads at once.
/// If `sink` fails (e.g. stdout is a closed pipe), no further seed is started and the error
/// is returned once running seeds finish. A panic in `run` is a bug and propagates once the
/// other workers finish.
pub fn run_seeds<F, S, E>(opts: &RunOptions, run: F, mut sink: S) -> Result<Summary, E>
where
    F: Fn(u64) -> SeedOutcome + Sync,
    S: FnMut(&SeedResult) -> Result<(), E>,
{
    let started = wall_now();
    let mut summary = Summary::default();
    let mut emit = |r: SeedResult| -> Result<(), E> {
        summary.add(&r.outcome);
        sink(&r)
    };
    let jobs = opts.jobs.get().min(MAX_JOBS);
    if jobs == 1 {
        for seed in opts.seeds.shard_seeds(opts.shard) {
            let r = timed(&run, seed);
            let failed = !r.outcome.passed();
            emit(r)?;
            if failed && opts.stop_on_failure {
                break;
            }
        }
    } else {
        run_parallel(opts, jobs, &run, emit)?;
    }
    summary.wall = started.elapsed();
    summary.peak_rss = peak_rss();
    Ok(summary)
}

/// The multi-threaded path of [`run_seeds`]: workers claim the shard's seeds in ascending
/// order from a shared counter; the calling thread reorders results by seed.
fn run_parallel<F, S, E>(opts: &RunOptions, jobs: usize, run: &F, mut emit: S) -> Result<(), E>
where
    F: Fn(u64) -> SeedOutcome + Sync,
    S: FnMut(SeedResult) -> Result<(), E>,
{
    let seeds = opts.seeds;
    let shard = opts.shard;
    let total = seeds.shard_len(shard);
    let step = u64::from(shard.count());
    let Some(first) = seeds.shard_seeds(shard).next() else {
        return Ok(());
    };
    let next = AtomicU64::new(0);
    // Highest seed still worth starting: lowered to the lowest failing seed with
    // stop-on-failure, and to nothing once the sink fails.
    let claim_limit = AtomicU64::new(u64::MAX);
    let stop_on_failure = opts.stop_on_failure;
    let (tx, rx) = mpsc::channel::<SeedResult>();

    // Threads are allowed here: seeds are independent deterministic runs, results are
    // reordered by seed below, so nothing observable depends on scheduling.
    #[allow(clippy::disallowed_methods)]
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            let claim_limit = &claim_limit;
            scope.spawn(move || {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    if k >= total {
                        return;
                    }
                    let seed = first + k * step;
                    if seed > claim_limit.load(Ordering::Relaxed) {
                        return;
                    }
                    let r = timed(run, seed);
                    if stop_on_failure && !r.outcome.passed() {
                        claim_limit.fetch_min(seed, Ordering::Relaxed);
                    }
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);

        // Emit in seed order: hold results until every lower seed has arrived.
        let mut pending: BTreeMap<u64, SeedResult> = BTreeMap::new();
        let mut expected = first;
        let mut done = false;
        for r in &rx {
            pending.insert(r.outcome.seed, r);
            while !done {
                let Some(r) = pending.remove(&expected) else {
                    break;
                };
                let failed = !r.outcome.passed();
                if let Err(e) = emit(r) {
                    // Start nothing new; workers finish their current seed and see the
                    // closed channel or the limit.
                    claim_limit.store(0, Ordering::Relaxed);
                    next.store(total, Ordering::Relaxed);
                    return Err(e);
                }
                done = failed && stop_on_failure;
                expected = expected.saturating_add(step);
            }
        }
        Ok(())
    })
}

/// Why a run stopped before reporting every seed (violations are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Writing the report failed (e.g. stdout closed; the CLI treats a broken pipe as success).
    #[error("writing the report failed")]
    Report(#[source] io::Error),
    /// Appending a failing seed to the failures file failed.
    #[error("appending to failures file {path:?} failed")]
    Failures {
        /// The failures file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Runs every seed of `cfg` through `world` and reports: the start, each seed in seed order
/// (a failing seed is appended to the failures file *before* it is printed, so a lost log
/// loses nothing), the progress bar on stderr, and the summary.
///
/// `world(cfg, seed, ticker)` is the whole simulation of one seed, reporting its simulated
/// time to `ticker` (the bar of a one-seed run); it must be deterministic.
pub fn run<F>(cfg: &SimConfig, world: F, reporter: &mut dyn Reporter) -> Result<Summary, RunError>
where
    F: Fn(&SimConfig, u64, &Ticker) -> SeedOutcome + Sync,
{
    reporter.start(cfg).map_err(RunError::Report)?;
    let mut progress = Progress::for_run(cfg);
    let ticker = progress.ticker();
    let mut first: Option<SeedOutcome> = None;
    let summary = run_seeds(
        &cfg.run_options(),
        |seed| world(cfg, seed, &ticker),
        |r: &SeedResult| {
            if first.is_none() {
                first = Some(r.outcome.clone());
            }
            progress.seed_done(r);
            if let Some(v) = &r.outcome.violation {
                record_failure(cfg, r.outcome.seed, &v.invariant)?;
            }
            progress
                .suspend(|| reporter.seed(cfg, r))
                .map_err(RunError::Report)
        },
    );
    let mut summary = summary?;
    // A sweep runs its first seed twice: the same seed must give the same outcome in the
    // same process, on another thread and after other worlds ran (`LOG-DETERMINISM`). That
    // catches what hash-seeded iteration, a clock or thread timing would change; `.ci/run`'s
    // determinism section compares whole journals across `--jobs` too. Only from
    // RERUN_MIN_SEEDS seeds on, so the second run costs a sweep a tenth at most.
    if summary.seeds >= RERUN_MIN_SEEDS
        && let Some(first) = first
    {
        let started = wall_now();
        let again = world(cfg, first.seed, &ticker);
        match rerun_difference(&first, &again) {
            None => {
                let n = summary.marks.entry("LOG-DETERMINISM").or_default();
                *n = n.saturating_add(1);
            }
            Some(difference) => {
                let seed = first.seed;
                let v = Violation {
                    invariant: "determinism".into(),
                    step: again.events,
                    message: format!("seed {seed} ran again in this process: {difference}"),
                    last_events: Vec::new(),
                };
                record_failure(cfg, seed, &v.invariant)?;
                summary.rerun_failed(&first);
                let r = SeedResult {
                    outcome: SeedOutcome {
                        violation: Some(v),
                        ..again
                    },
                    wall: started.elapsed(),
                };
                progress
                    .suspend(|| reporter.seed(cfg, &r))
                    .map_err(RunError::Report)?;
            }
        }
    }
    progress.finish();
    reporter.summary(cfg, &summary).map_err(RunError::Report)?;
    Ok(summary)
}

/// The fewest seeds a sweep runs for its first seed to be run a second time.
const RERUN_MIN_SEEDS: u64 = 10;

/// What differs between two runs of one seed, or `None` when nothing does.
fn rerun_difference(first: &SeedOutcome, again: &SeedOutcome) -> Option<String> {
    let hex = |h: &[u8; 32]| h.iter().map(|b| format!("{b:02x}")).collect::<String>();
    if first.state_hash != again.state_hash {
        return Some(format!(
            "state hash {} then {}",
            hex(&first.state_hash),
            hex(&again.state_hash)
        ));
    }
    if (first.events, first.simulated) != (again.events, again.simulated) {
        return Some(format!(
            "{} events over {:?} then {} over {:?}",
            first.events, first.simulated, again.events, again.simulated
        ));
    }
    if first.violation != again.violation {
        let name = |v: &Option<Violation>| {
            v.as_ref().map_or_else(
                || "none".to_string(),
                |v| format!("{} at step {}", v.invariant, v.step),
            )
        };
        return Some(format!(
            "violation {} then {}",
            name(&first.violation),
            name(&again.violation)
        ));
    }
    if first.marks != again.marks || first.faults != again.faults {
        return Some("the same state, but other coverage marks or faults".into());
    }
    None
}

/// Appends a failing seed to `cfg`'s failures file, with its repro command.
fn record_failure(cfg: &SimConfig, seed: u64, invariant: &str) -> Result<(), RunError> {
    append_failure(
        cfg.failures_path(),
        seed,
        invariant,
        &cfg.repro_command(seed),
    )
    .map_err(|source| RunError::Failures {
        path: cfg.failures_path().to_path_buf(),
        source,
    })
}

/// Appends one line `seed<TAB>invariant<TAB>repro command` to the failures file, creating it
/// if needed, so a failing seed survives the loss of a CI log.
pub fn append_failure(path: &Path, seed: u64, invariant: &str, repro: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    // Tabs and newlines inside fields would break the line format.
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    writeln!(f, "{seed}\t{}\t{}", clean(invariant), clean(repro))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Violation;
    use std::num::NonZeroUsize;
    use std::time::Duration;

    use crate::seeds::{SeedRange, Shard};

    /// A fake world: deterministic in the seed; seeds divisible by 7 (except 0) fail.
    fn fake(seed: u64) -> SeedOutcome {
        let mut hash = [0u8; 32];
        hash[..8].copy_from_slice(&seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        SeedOutcome {
            seed,
            events: seed * 10 + 1,
            simulated: Duration::from_millis(seed),
            state_hash: hash,
            violation: (seed.is_multiple_of(7) && seed > 0).then(|| Violation {
                invariant: "isolation".into(),
                step: seed,
                message: format!("seed {seed}"),
                last_events: vec![],
            }),
            marks: Default::default(),
            faults: Default::default(),
        }
    }

    fn opts(seeds: &str, shard: &str, jobs: usize, stop: bool) -> RunOptions {
        RunOptions {
            seeds: seeds.parse().unwrap(),
            shard: shard.parse().unwrap(),
            jobs: NonZeroUsize::new(jobs).unwrap(),
            stop_on_failure: stop,
        }
    }

    fn collect(o: &RunOptions) -> (Vec<SeedOutcome>, Summary) {
        let mut got = Vec::new();
        let summary = run_seeds(o, fake, |r| {
            got.push(r.outcome.clone());
            Ok::<(), ()>(())
        })
        .unwrap();
        (got, summary)
    }

    #[test]
    fn shard_of_tiny_range_can_be_empty() {
        let range = SeedRange::single(4);
        let shard = Shard::new(2, 3).unwrap();
        assert_eq!(range.shard_seeds(shard).count(), 0);
        assert_eq!(range.shard_len(shard), 0);
        let (got, summary) = collect(&RunOptions {
            seeds: range,
            shard,
            jobs: NonZeroUsize::new(2).unwrap(),
            stop_on_failure: false,
        });
        assert!(got.is_empty());
        assert_eq!(summary.seeds, 0);
    }

    #[test]
    fn run_results_independent_of_jobs_and_in_seed_order() {
        let (one, s1) = collect(&opts("0..60", "0/1", 1, false));
        let expected: Vec<SeedOutcome> = (0..60).map(fake).collect();
        assert_eq!(one, expected);
        for jobs in [2, 3, 8] {
            let (many, s) = collect(&opts("0..60", "0/1", jobs, false));
            assert_eq!(many, one, "jobs {jobs}");
            assert_eq!(
                (s.seeds, s.passed, s.failed),
                (s1.seeds, s1.passed, s1.failed)
            );
            assert_eq!(s.failed_seeds, s1.failed_seeds);
        }
        assert_eq!(s1.failed_seeds, [7, 14, 21, 28, 35, 42, 49, 56]);
        assert_eq!(s1.events, (0..60).map(|s| s * 10 + 1).sum::<u64>());
    }

    /// A tiny world built from the real pieces: clients ping the gateway over a chaos
    /// network, the gateway echoes; the hash covers every delivery.
    fn mini_world(seed: u64) -> SeedOutcome {
        use crate::{FaultPreset, Network, NodeId, Scheduler, SimRng};
        use gauntlet_core::Instant;
        use sha2::{Digest, Sha256};

        let root = SimRng::new(seed);
        let plan = FaultPreset::Swarm.plan(seed);
        let mut net = Network::new(plan.link_config(), root.fork("network"));
        let mut workload = root.fork("workload");
        let start = Instant::from_unix_secs(1_700_000_000);
        let mut sched = Scheduler::new(start, 100_000);
        let mut hash = Sha256::new();
        for c in 0..20u32 {
            let at = start.saturating_add(
                workload.uniform_duration(Duration::ZERO, Duration::from_millis(100)),
            );
            sched
                .schedule(at, (NodeId::client(c), NodeId::GATEWAY, vec![0u8; 8]))
                .unwrap();
        }
        while let Some((now, (from, to, mut msg))) = sched.pop() {
            hash.update(now.as_nanos().to_le_bytes());
            hash.update(from.to_string());
            hash.update(&msg);
            let hops = msg.first().copied().unwrap_or(0);
            if hops >= 30 {
                continue;
            }
            if let Some(first) = msg.first_mut() {
                *first = hops + 1;
            }
            for (at, m) in net.send(now, to, from, msg) {
                sched.schedule(at, (to, from, m)).unwrap();
            }
        }
        SeedOutcome {
            seed,
            events: sched.popped(),
            simulated: sched.now().saturating_since(start),
            state_hash: hash.finalize().into(),
            violation: None,
            marks: Default::default(),
            faults: Default::default(),
        }
    }

    #[test]
    fn mini_world_outcomes_independent_of_jobs_and_shards() {
        let run = |o: &RunOptions| -> Vec<SeedOutcome> {
            let mut got = Vec::new();
            run_seeds(o, mini_world, |r| {
                got.push(r.outcome.clone());
                Ok::<(), ()>(())
            })
            .unwrap();
            got
        };
        let one = run(&opts("0..12", "0/1", 1, false));
        assert_eq!(run(&opts("0..12", "0/1", 2, false)), one);
        let mut sharded = run(&opts("0..12", "0/2", 2, false));
        sharded.extend(run(&opts("0..12", "1/2", 1, false)));
        sharded.sort_by_key(|o| o.seed);
        assert_eq!(sharded, one);
        // The seed matters: different seeds, different worlds.
        let mut hashes: Vec<[u8; 32]> = one.iter().map(|o| o.state_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), 12);
        assert!(one.iter().all(|o| o.events > 0));
    }

    #[test]
    fn run_respects_shard() {
        let (got, _) = collect(&opts("0..30", "1/3", 2, false));
        let seeds: Vec<u64> = got.iter().map(|o| o.seed).collect();
        assert_eq!(seeds, (0..30).filter(|s| s % 3 == 1).collect::<Vec<u64>>());
    }

    #[test]
    fn stop_on_failure_stops_at_lowest_failure_for_any_jobs() {
        for jobs in [1, 2, 4] {
            let (got, summary) = collect(&opts("1..40", "0/1", jobs, true));
            let seeds: Vec<u64> = got.iter().map(|o| o.seed).collect();
            assert_eq!(seeds, (1..=7).collect::<Vec<u64>>(), "jobs {jobs}");
            assert_eq!((summary.passed, summary.failed), (6, 1));
        }
    }

    #[test]
    fn sink_error_stops_the_run_and_is_returned() {
        for jobs in [1, 3] {
            let mut seen = Vec::new();
            let err = run_seeds(&opts("0..1000", "0/1", jobs, false), fake, |r| {
                seen.push(r.outcome.seed);
                if r.outcome.seed == 4 {
                    Err("pipe closed")
                } else {
                    Ok(())
                }
            });
            assert_eq!(err, Err("pipe closed"), "jobs {jobs}");
            assert_eq!(seen, [0, 1, 2, 3, 4], "jobs {jobs}");
        }
    }

    #[test]
    fn peak_rss_is_read_from_vm_hwm() {
        let status = "Name:\tgauntlet\nVmPeak:\t  900 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(123_456 * 1024));
        assert_eq!(parse_vm_hwm("VmRSS:\t1 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t12 MB\n"), None);
        if cfg!(target_os = "linux") {
            let s = run_seeds(&opts("0..2", "0/1", 1, false), fake, |_| Ok::<(), ()>(())).unwrap();
            assert!(
                s.peak_rss.is_some_and(|b| b > 1024 * 1024),
                "{:?}",
                s.peak_rss
            );
        }
    }

    #[test]
    fn summary_events_per_sec_is_integer_ratio() {
        let s = Summary {
            events: 3_000,
            wall: Duration::from_millis(1_500),
            ..Summary::default()
        };
        assert_eq!(s.events_per_sec(), 2_000);
        assert_eq!(Summary::default().events_per_sec(), 0);
    }

    #[test]
    fn run_reports_in_order_and_records_failures() {
        use crate::JsonReporter;

        let dir = std::env::temp_dir().join(format!("gauntlet-run-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let failures = dir.join("failures.txt");
        let cfg = SimConfig::builder()
            .seeds(SeedRange::new(5, 16).unwrap())
            .jobs(2)
            .users(3)
            .failures(failures.clone())
            .output(crate::Output::Json)
            .build()
            .unwrap();
        let mut reporter = JsonReporter::new(Vec::new());
        let summary = run(&cfg, |_, seed, _| fake(seed), &mut reporter).unwrap();
        assert_eq!((summary.seeds, summary.failed), (11, 2));

        let text = String::from_utf8(reporter.into_inner()).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
            .collect();
        assert_eq!(kinds.first().map(String::as_str), Some("\"start\""));
        assert_eq!(kinds.last().map(String::as_str), Some("\"summary\""));
        assert_eq!(kinds.iter().filter(|k| *k == "\"violation\"").count(), 2);
        assert_eq!(kinds.iter().filter(|k| *k == "\"progress\"").count(), 11);

        let recorded = std::fs::read_to_string(&failures).unwrap();
        assert_eq!(
            recorded,
            "7\tisolation\tgauntlet sim --seed 7 --users 3 --duration 1m --faults mild\n\
             14\tisolation\tgauntlet sim --seed 14 --users 3 --duration 1m --faults mild\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(summary.marks.get("LOG-DETERMINISM"), Some(&1));
    }

    #[test]
    fn a_sweep_whose_first_seed_runs_differently_again_fails_as_nondeterministic() {
        let dir = std::env::temp_dir().join(format!("gauntlet-rerun-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = SimConfig::builder()
            .seeds(SeedRange::new(3, 13).unwrap())
            .jobs(1)
            .users(3)
            .failures(dir.join("failures.txt"))
            .output(crate::Output::Json)
            .build()
            .unwrap();
        // A world that remembers how often it ran: its second run of seed 3 differs.
        let runs = AtomicU64::new(0);
        let world = |_: &SimConfig, seed: u64, _: &Ticker| {
            let mut o = fake(seed);
            o.events += runs.fetch_add(1, Ordering::Relaxed) / 10;
            o
        };
        let mut reporter = crate::JsonReporter::new(Vec::new());
        let summary = run(&cfg, world, &mut reporter).unwrap();
        // Seed 7 fails in the fake world anyway.
        assert_eq!((summary.seeds, summary.passed, summary.failed), (10, 8, 2));
        assert_eq!(summary.failed_seeds, [3, 7]);
        assert_eq!(summary.marks.get("LOG-DETERMINISM"), None);
        let text = String::from_utf8(reporter.into_inner()).unwrap();
        let violation = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["type"] == "violation" && v["invariant"] == "determinism")
            .unwrap();
        assert_eq!(violation["seed"], 3);
        let recorded = std::fs::read_to_string(dir.join("failures.txt")).unwrap();
        assert!(recorded.contains("\n3\tdeterminism\t"), "{recorded}");

        // A sweep under RERUN_MIN_SEEDS is not run twice.
        let few = SimConfig::builder()
            .seeds(SeedRange::new(20, 29).unwrap())
            .users(3)
            .failures(dir.join("few.txt"))
            .build()
            .unwrap();
        let runs = AtomicU64::new(0);
        let counted = |_: &SimConfig, seed: u64, _: &Ticker| {
            runs.fetch_add(1, Ordering::Relaxed);
            fake(seed)
        };
        let summary = run(&few, counted, &mut crate::JsonReporter::new(Vec::new())).unwrap();
        assert_eq!((summary.seeds, runs.load(Ordering::Relaxed)), (9, 9));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn append_failure_appends_one_clean_line_per_call() {
        let dir = std::env::temp_dir().join(format!("gauntlet-runner-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("failures.txt");
        let _ = std::fs::remove_file(&path);
        append_failure(&path, 7, "isolation", "gauntlet sim --seed 7").unwrap();
        append_failure(&path, 9, "five\tevents", "gauntlet sim\n--seed 9").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "7\tisolation\tgauntlet sim --seed 7\n9\tfive events\tgauntlet sim --seed 9\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
