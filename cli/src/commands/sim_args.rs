//! The raw arguments of `gauntlet sim` (clap derive) and their conversion to a [`SimConfig`].
//!
//! Like ripgrep's low-level/high-level argument split, [`SimArgs`] only holds what the user
//! typed (each value already syntax-checked by its parser: seed ranges, shards, durations,
//! fault presets), and `SimConfig::try_from` does the cross-field validation. The one
//! impure step, picking a seed from the wall clock when none was given, is a separate,
//! explicit call ([`SimArgs::pick_seed_if_missing`]) so the caller can print the seed first.
//!
//! Every flag also reads a `GAUNTLET_*` environment variable (`GAUNTLET_SEEDS`,
//! `GAUNTLET_SHARD`, `GAUNTLET_USERS`, ...; `--help` names each), so a container or a
//! Kubernetes Indexed Job configures a run without a shell: a flag on the command line wins
//! over its variable. Boolean flags take `true`/`false` from the variable.

use std::path::PathBuf;
use std::time::Duration;

use gauntlet_sim::{
    ConfigError, DEFAULT_FAILURES_FILE, FaultPreset, Faults, Output, SeedRange, Shard, SimConfig,
    parse_duration,
};

/// `gauntlet sim`: run the deterministic simulation for one seed or a range of seeds.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SimArgs {
    /// Run exactly this seed (default: a seed picked from the clock, printed first).
    #[arg(long, env = "GAUNTLET_SEED", conflicts_with = "seeds")]
    pub seed: Option<u64>,

    /// Run every seed in A..B (B exclusive), e.g. `0..100`. A run of 10 or more seeds also
    /// runs its first seed a second time and fails (invariant `determinism`) if it differs.
    #[arg(long, env = "GAUNTLET_SEEDS", value_name = "A..B")]
    pub seeds: Option<SeedRange>,

    /// Run only the seeds s with s % N == I (split a range across CI jobs).
    #[arg(
        long,
        env = "GAUNTLET_SHARD",
        value_name = "I/N",
        default_value = "0/1"
    )]
    pub shard: Shard,

    /// Seeds run at once, one thread each; results do not depend on it. While fewer seeds
    /// run at once than there are cores, each also checks its invariants on a helper thread.
    #[arg(
        long,
        env = "GAUNTLET_JOBS",
        short = 'j',
        value_name = "J",
        default_value_t = 1
    )]
    pub jobs: usize,

    /// Simulated users (1..=100000).
    #[arg(long, env = "GAUNTLET_USERS", value_name = "N", default_value_t = 100)]
    pub users: u64,

    /// Simulated time of the safety phase: `500ms`, `30s`, `10m`, `1h`, `1h30m` (max 24h).
    #[arg(long, env = "GAUNTLET_DURATION", value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub duration: Duration,

    /// Fault preset: none, mild, chaos, or swarm (a different fault mix per seed).
    #[arg(
        long,
        env = "GAUNTLET_FAULTS",
        value_name = "PRESET",
        default_value = "mild"
    )]
    pub faults: FaultPreset,

    /// Share of users that are adversaries, in [0, 1].
    #[arg(
        long,
        env = "GAUNTLET_ADVERSARIES",
        value_name = "SHARE",
        default_value_t = 0.1
    )]
    pub adversaries: f64,

    /// Write the event log as JSON Lines (with several seeds, put `{seed}` in the name).
    #[arg(long, env = "GAUNTLET_LOG", value_name = "FILE.jsonl")]
    pub log: Option<PathBuf>,

    /// Write a Chrome trace (opens in Perfetto; with several seeds, put `{seed}` in the name).
    #[arg(long, env = "GAUNTLET_TRACE", value_name = "FILE.json")]
    pub trace: Option<PathBuf>,

    /// Print results as JSON Lines on stdout (no progress bar).
    #[arg(long, env = "GAUNTLET_JSON")]
    pub json: bool,

    /// Print only violations and the summary (no progress bar).
    #[arg(long, env = "GAUNTLET_QUIET", short = 'q')]
    pub quiet: bool,

    /// Append failing seeds to this file.
    #[arg(long, env = "GAUNTLET_FAILURES", value_name = "FILE", default_value = DEFAULT_FAILURES_FILE)]
    pub failures: PathBuf,

    /// Stop at the lowest failing seed (every lower seed still runs).
    #[arg(long, env = "GAUNTLET_STOP_ON_FAILURE")]
    pub stop_on_failure: bool,

    /// Run a scenario file written by `gauntlet shrink` (its fault plan and workload).
    #[arg(long, env = "GAUNTLET_SCENARIO", value_name = "FILE")]
    pub scenario: Option<PathBuf>,

    /// Switch on a planted bug (needs a build with `--features planted-bugs`; see `gauntlet plants`).
    #[arg(long, env = "GAUNTLET_PLANT", value_name = "NAME")]
    pub plant: Option<String>,

    /// Also write the results as JUnit XML: a test case per seed, a failure carrying the
    /// violation and its `repro:` line.
    #[arg(long, env = "GAUNTLET_JUNIT", value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,

    /// Also write a one-page, self-contained HTML summary of the run: the figures, faults
    /// injected by kind, the slowest seeds, every violation with its repro command line,
    /// and a row per seed (opens offline; the page fetches nothing).
    #[arg(long, env = "GAUNTLET_HTML", value_name = "FILE.html")]
    pub html: Option<PathBuf>,

    /// Exit 1 when a protocol rule the sweep must cover was never marked (its path never
    /// ran in any seed), naming the rules.
    #[arg(long, env = "GAUNTLET_REQUIRE_MARKS")]
    pub require_marks: bool,
}

impl SimArgs {
    /// If neither `--seed` nor `--seeds` was given, sets `--seed` from the wall clock and
    /// returns it, so the caller prints it before anything else (a failing run can then
    /// always be reproduced). Returns `None` when a seed was given.
    pub fn pick_seed_if_missing(&mut self) -> Option<u64> {
        if self.seed.is_some() || self.seeds.is_some() {
            return None;
        }
        let seed = wall_clock_seed();
        self.seed = Some(seed);
        Some(seed)
    }
}

/// A seed from the wall clock's nanoseconds.
#[allow(clippy::disallowed_methods)] // the CLI edge: the seed is printed, then everything derives from it
fn wall_clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Keep the low, fast-moving bits; truncation is intended.
    nanos as u64
}

impl TryFrom<SimArgs> for SimConfig {
    type Error = ConfigError;

    fn try_from(a: SimArgs) -> Result<Self, Self::Error> {
        let mut b = SimConfig::builder()
            .shard(a.shard)
            .jobs(a.jobs)
            .stop_on_failure(a.stop_on_failure)
            .users(a.users)
            .duration(a.duration)
            .faults(Faults::Preset(a.faults))
            .adversary_share(a.adversaries)
            .log(a.log)
            .trace(a.trace)
            .failures(a.failures)
            .scenario(a.scenario)
            .plant(a.plant)
            .output(if a.json { Output::Json } else { Output::Human })
            .quiet(a.quiet)
            .require_marks(a.require_marks);
        if let Some(seed) = a.seed {
            b = b.seed(seed);
        }
        if let Some(seeds) = a.seeds {
            b = b.seeds(seeds);
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn parse(args: &[&str]) -> Result<SimArgs, clap::Error> {
        let argv = std::iter::once("gauntlet-sim").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.sim)
    }

    #[test]
    fn full_flag_set_converts_to_config() {
        let args = parse(&[
            "--seeds",
            "10..20",
            "--shard",
            "1/2",
            "--jobs",
            "3",
            "--users",
            "50",
            "--duration",
            "10m",
            "--faults",
            "chaos",
            "--adversaries",
            "0.3",
            "--log",
            "out-{seed}.jsonl",
            "--json",
            "--failures",
            "f.txt",
            "--plant",
            "broadcast_to_all",
        ])
        .unwrap();
        let cfg = SimConfig::try_from(args).unwrap();
        assert_eq!(cfg.seeds(), SeedRange::new(10, 20).unwrap());
        assert_eq!(cfg.shard(), Shard::new(1, 2).unwrap());
        assert_eq!(cfg.jobs().get(), 3);
        assert_eq!(cfg.users(), 50);
        assert_eq!(cfg.duration(), Duration::from_secs(600));
        assert_eq!(cfg.faults(), &Faults::Preset(FaultPreset::Chaos));
        assert_eq!(cfg.adversary_share(), 0.3);
        assert_eq!(cfg.log_path(12), Some(PathBuf::from("out-12.jsonl")));
        assert_eq!(cfg.output(), Output::Json);
        assert_eq!(cfg.failures_path(), Path::new("f.txt"));
        assert_eq!(cfg.plant(), Some("broadcast_to_all"));
    }

    #[test]
    fn defaults_match_documented_values() {
        let cfg = SimConfig::try_from(parse(&["--seed", "5"]).unwrap()).unwrap();
        assert_eq!(cfg.seeds(), SeedRange::single(5));
        assert_eq!(cfg.shard(), Shard::ALL);
        assert_eq!(cfg.users(), 100);
        assert_eq!(cfg.duration(), Duration::from_secs(60));
        assert_eq!(cfg.faults(), &Faults::Preset(FaultPreset::Mild));
        assert_eq!(cfg.failures_path(), Path::new(DEFAULT_FAILURES_FILE));
        assert_eq!(cfg.output(), Output::Human);
        assert!(!cfg.quiet() && !cfg.stop_on_failure());
    }

    #[test]
    fn seed_and_seeds_conflict_is_usage_error() {
        let err = parse(&["--seed", "1", "--seeds", "0..4"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["--duration", "10"][..],
            &["--seeds", "5..5"],
            &["--shard", "3/3"],
            &["--faults", "loud"],
            &["--users=-1"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
    }

    #[test]
    fn out_of_range_values_fail_conversion() {
        let args = parse(&["--seed", "1", "--users", "0"]).unwrap();
        assert_eq!(SimConfig::try_from(args), Err(ConfigError::Users(0)));
        let args = parse(&["--seed", "1", "--duration", "25h"]).unwrap();
        assert_eq!(
            SimConfig::try_from(args),
            Err(ConfigError::DurationTooLong(Duration::from_secs(25 * 3600)))
        );
        let args = parse(&["--seeds", "0..3", "--trace", "t.json"]).unwrap();
        assert!(matches!(
            SimConfig::try_from(args),
            Err(ConfigError::NeedsSeedPlaceholder { flag: "trace", .. })
        ));
    }

    #[test]
    fn pick_seed_only_when_missing() {
        let mut given = parse(&["--seeds", "0..3"]).unwrap();
        assert_eq!(given.pick_seed_if_missing(), None);
        assert_eq!(given.seed, None);

        let mut missing = parse(&[]).unwrap();
        assert_eq!(
            SimConfig::try_from(missing.clone()),
            Err(ConfigError::NoSeed)
        );
        let picked = missing.pick_seed_if_missing().unwrap();
        assert_eq!(missing.seed, Some(picked));
        let cfg = SimConfig::try_from(missing).unwrap();
        assert_eq!(cfg.seeds(), SeedRange::single(picked));
    }

    #[test]
    fn repro_command_parses_back_to_same_config() {
        let cfg = SimConfig::try_from(
            parse(&[
                "--seeds",
                "0..50",
                "--users",
                "50",
                "--duration",
                "90s",
                "--faults",
                "swarm",
                "--adversaries",
                "0.25",
                "--plant",
                "refresh_reusable",
            ])
            .unwrap(),
        )
        .unwrap();
        let repro = cfg.repro_command(17);
        let argv: Vec<&str> = repro.split(' ').skip(2).collect();
        let again = SimConfig::try_from(parse(&argv).unwrap()).unwrap();
        assert_eq!(again.seeds(), SeedRange::single(17));
        assert_eq!(again.users(), cfg.users());
        assert_eq!(again.duration(), cfg.duration());
        assert_eq!(again.faults(), cfg.faults());
        assert_eq!(again.adversary_share(), cfg.adversary_share());
        assert_eq!(again.plant(), cfg.plant());
    }
}
