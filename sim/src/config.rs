//! The validated configuration of a simulation run.
//!
//! [`SimConfig`] can only be made by [`SimConfigBuilder::build`], which checks every value
//! and returns a typed [`ConfigError`] instead of panicking, so code holding a `SimConfig`
//! does not re-check it. It also owns the small parsers and printers for durations
//! (`500ms`, `30s`, `10m`, `1h`, `1h30m`) and the `repro:` command line, which must
//! round-trip through the CLI to the very same configuration.
//!
//! Nothing here reads the clock, the environment or the file system.

use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::faults::{FaultPlan, FaultPlanError, FaultPreset};
use crate::seeds::{MAX_JOBS, RangeError, RunOptions, SeedRange, Shard};

/// Most simulated users in one run.
pub const MAX_USERS: u32 = 100_000;
/// Longest simulated duration of one run.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest duration string accepted by [`parse_duration`].
const MAX_DURATION_TEXT: usize = 32;
/// The placeholder a `--log`/`--trace` path must contain when several seeds run.
pub const SEED_PLACEHOLDER: &str = "{seed}";
/// The default failures file.
pub const DEFAULT_FAILURES_FILE: &str = "gauntlet-failures.txt";

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationParseError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// The string is longer than any sensible duration.
    #[error("duration text too long ({len} bytes)")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A number is not followed by a unit, e.g. `10`.
    #[error("missing unit after {0:?} (use ms, s, m or h)")]
    MissingUnit(String),
    /// A unit is not preceded by a number, e.g. `m`.
    #[error("missing number before {0:?}")]
    MissingNumber(String),
    /// The unit is not one of `ms`, `s`, `m`, `h`.
    #[error("unknown unit {0:?} (use ms, s, m or h)")]
    UnknownUnit(String),
    /// The value does not fit.
    #[error("duration overflows")]
    Overflow,
}

/// Why a configuration was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `users` outside `1..=MAX_USERS`.
    #[error("users must be in 1..={MAX_USERS}, got {0}")]
    Users(u64),
    /// A zero duration simulates nothing.
    #[error("duration must be positive")]
    ZeroDuration,
    /// The duration exceeds [`MAX_DURATION`].
    #[error("duration must be at most 24h, got {}", format_duration(*.0))]
    DurationTooLong(Duration),
    /// The adversary share is not in `[0, 1]`.
    #[error("adversary share must be in [0, 1], got {0}")]
    AdversaryShare(f64),
    /// `jobs` is zero or above the limit.
    #[error("jobs must be in 1..={MAX_JOBS}, got {0}")]
    Jobs(usize),
    /// Neither `--seed` nor `--seeds` was given (the CLI picks one before building).
    #[error("no seed given")]
    NoSeed,
    /// Both `--seed` and `--seeds` were given.
    #[error("--seed and --seeds are mutually exclusive")]
    SeedAndSeeds,
    /// A per-run output file was given for several seeds without a `{seed}` placeholder,
    /// so every seed would overwrite it.
    #[error("--{flag} {path:?} needs a {{seed}} placeholder when running several seeds")]
    NeedsSeedPlaceholder {
        /// The flag (`log` or `trace`).
        flag: &'static str,
        /// The path given.
        path: PathBuf,
    },
    /// A bad `--seeds` or `--shard`.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// A bad `--duration`.
    #[error("invalid duration: {0}")]
    Duration(#[from] DurationParseError),
    /// A bad fault preset or plan.
    #[error(transparent)]
    Faults(#[from] FaultPlanError),
}

/// Parses `500ms`, `30s`, `10m`, `1h` or a concatenation such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationParseError> {
    if text.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if text.len() > MAX_DURATION_TEXT {
        return Err(DurationParseError::TooLong { len: text.len() });
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, next) = tail.split_at(unit_len);
        if number.is_empty() {
            let shown = if unit.is_empty() { tail } else { unit };
            return Err(DurationParseError::MissingNumber(shown.to_owned()));
        }
        if unit.is_empty() {
            return Err(DurationParseError::MissingUnit(number.to_owned()));
        }
        let n: u64 = number.parse().map_err(|_| DurationParseError::Overflow)?;
        let scale: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => return Err(DurationParseError::UnknownUnit(other.to_owned())),
        };
        total_ms = n
            .checked_mul(scale)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or(DurationParseError::Overflow)?;
        rest = next;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Formats a duration the way [`parse_duration`] reads it (`1h30m`, `500ms`, `0ms`);
/// sub-millisecond parts are dropped.
pub fn format_duration(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0ms".to_owned();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, scale) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        let n = rest / scale;
        rest %= scale;
        if n > 0 {
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}{unit}");
        }
    }
    out
}

/// Where a run's faults come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Faults {
    /// A named preset (`swarm` draws a plan per seed).
    Preset(FaultPreset),
    /// An explicit plan, e.g. from a scenario file or the shrinker.
    Plan(FaultPlan),
}

impl Faults {
    /// The plan for `seed`.
    pub fn plan(&self, seed: u64) -> FaultPlan {
        match self {
            Faults::Preset(p) => p.plan(seed),
            Faults::Plan(plan) => plan.clone(),
        }
    }

    /// The preset's name, or `plan` for an explicit plan.
    pub fn name(&self) -> &'static str {
        match self {
            Faults::Preset(p) => p.name(),
            Faults::Plan(_) => "plan",
        }
    }
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Human-readable lines and a summary table.
    #[default]
    Human,
    /// JSON Lines (see [`JsonReporter`](crate::JsonReporter)).
    Json,
}

/// A validated simulation configuration. Build it with [`SimConfig::builder`].
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    seeds: SeedRange,
    shard: Shard,
    jobs: NonZeroUsize,
    stop_on_failure: bool,
    users: u32,
    duration: Duration,
    faults: Faults,
    adversary_share: f64,
    log: Option<PathBuf>,
    trace: Option<PathBuf>,
    failures: PathBuf,
    scenario: Option<PathBuf>,
    plant: Option<String>,
    output: Output,
    quiet: bool,
    require_marks: bool,
}

impl SimConfig {
    /// A builder with the defaults: 100 users, 1 minute, mild faults, 10% adversaries,
    /// one job, shard `0/1`, failures to [`DEFAULT_FAILURES_FILE`], human output.
    pub fn builder() -> SimConfigBuilder {
        SimConfigBuilder::default()
    }

    /// The seeds to run.
    pub fn seeds(&self) -> SeedRange {
        self.seeds
    }

    /// This process's shard.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Worker threads.
    pub fn jobs(&self) -> NonZeroUsize {
        self.jobs
    }

    /// Whether to stop after the lowest failing seed.
    pub fn stop_on_failure(&self) -> bool {
        self.stop_on_failure
    }

    /// What [`crate::runner::run_seeds`] needs.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            seeds: self.seeds,
            shard: self.shard,
            jobs: self.jobs,
            stop_on_failure: self.stop_on_failure,
        }
    }

    /// Simulated users.
    pub fn users(&self) -> u32 {
        self.users
    }

    /// Simulated duration of the safety phase.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The fault source.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Share of users that are adversaries, in `[0, 1]`.
    pub fn adversary_share(&self) -> f64 {
        self.adversary_share
    }

    /// The JSONL event-log path for `seed` (`{seed}` substituted), if logging.
    pub fn log_path(&self, seed: u64) -> Option<PathBuf> {
        self.log.as_deref().map(|p| per_seed(p, seed))
    }

    /// The Chrome trace path for `seed` (`{seed}` substituted), if tracing.
    pub fn trace_path(&self, seed: u64) -> Option<PathBuf> {
        self.trace.as_deref().map(|p| per_seed(p, seed))
    }

    /// Where failing seeds are appended.
    pub fn failures_path(&self) -> &Path {
        &self.failures
    }

    /// The scenario file the run was loaded from, if any.
    pub fn scenario(&self) -> Option<&Path> {
        self.scenario.as_deref()
    }

    /// The planted bug switched on, by name (validated by the world against `core`).
    pub fn plant(&self) -> Option<&str> {
        self.plant.as_deref()
    }

    /// Output format.
    pub fn output(&self) -> Output {
        self.output
    }

    /// Whether to print only violations and the summary.
    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// Whether a run in which a rule of [`crate::MARKED_RULES`] was never marked counts as a
    /// finding (exit 1), even when every invariant held.
    pub fn require_marks(&self) -> bool {
        self.require_marks
    }

    /// The exact command line that reruns `seed` alone with this configuration.
    pub fn repro_command(&self, seed: u64) -> String {
        let mut cmd = format!(
            "gauntlet sim --seed {seed} --users {} --duration {}",
            self.users,
            format_duration(self.duration)
        );
        match (&self.faults, &self.scenario) {
            (_, Some(scenario)) => {
                let _ = write!(
                    cmd,
                    " --scenario {}",
                    shell_quote(&scenario.to_string_lossy())
                );
            }
            (Faults::Preset(p), None) => {
                let _ = write!(cmd, " --faults {p}");
            }
            // An in-memory plan has no flag; the shrinker writes it to a scenario first.
            (Faults::Plan(_), None) => {}
        }
        if self.adversary_share != DEFAULT_ADVERSARY_SHARE {
            let _ = write!(cmd, " --adversaries {}", self.adversary_share);
        }
        if let Some(plant) = &self.plant {
            let _ = write!(cmd, " --plant {}", shell_quote(plant));
        }
        cmd
    }
}

/// Quotes `s` for a POSIX shell when it holds anything beyond a safe set.
fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn per_seed(path: &Path, seed: u64) -> PathBuf {
    let text = path.to_string_lossy();
    if text.contains(SEED_PLACEHOLDER) {
        PathBuf::from(text.replace(SEED_PLACEHOLDER, &seed.to_string()))
    } else {
        path.to_path_buf()
    }
}

const DEFAULT_ADVERSARY_SHARE: f64 = 0.1;

/// Builds a [`SimConfig`]; every setter takes raw values and [`SimConfigBuilder::build`]
/// checks them all.
#[derive(Debug, Clone)]
pub struct SimConfigBuilder {
    seed: Option<u64>,
    seeds: Option<SeedRange>,
    shard: Shard,
    jobs: usize,
    stop_on_failure: bool,
    users: u64,
    duration: Duration,
    faults: Faults,
    adversary_share: f64,
    log: Option<PathBuf>,
    trace: Option<PathBuf>,
    failures: PathBuf,
    scenario: Option<PathBuf>,
    plant: Option<String>,
    output: Output,
    quiet: bool,
    require_marks: bool,
}

impl Default for SimConfigBuilder {
    fn default() -> Self {
        Self {
            seed: None,
            seeds: None,
            shard: Shard::ALL,
            jobs: 1,
            stop_on_failure: false,
            users: 100,
            duration: Duration::from_secs(60),
            faults: Faults::Preset(FaultPreset::Mild),
            adversary_share: DEFAULT_ADVERSARY_SHARE,
            log: None,
            trace: None,
            failures: PathBuf::from(DEFAULT_FAILURES_FILE),
            scenario: None,
            plant: None,
            output: Output::Human,
            quiet: false,
            require_marks: false,
        }
    }
}

impl SimConfigBuilder {
    /// Run exactly `seed` (exclusive with [`SimConfigBuilder::seeds`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Run a range of seeds.
    pub fn seeds(mut self, seeds: SeedRange) -> Self {
        self.seeds = Some(seeds);
        self
    }

    /// Run only this shard of the seeds.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Worker threads (`1..=MAX_JOBS`).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs;
        self
    }

    /// Stop after the lowest failing seed.
    pub fn stop_on_failure(mut self, stop: bool) -> Self {
        self.stop_on_failure = stop;
        self
    }

    /// Simulated users (`1..=MAX_USERS`).
    pub fn users(mut self, users: u64) -> Self {
        self.users = users;
        self
    }

    /// Simulated duration (`0 < d <= 24h`).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// Fault source.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Share of adversarial users (`[0, 1]`).
    pub fn adversary_share(mut self, share: f64) -> Self {
        self.adversary_share = share;
        self
    }

    /// JSONL event log path (`{seed}` is replaced by the seed).
    pub fn log(mut self, path: Option<PathBuf>) -> Self {
        self.log = path;
        self
    }

    /// Chrome trace path (`{seed}` is replaced by the seed).
    pub fn trace(mut self, path: Option<PathBuf>) -> Self {
        self.trace = path;
        self
    }

    /// Failures file.
    pub fn failures(mut self, path: PathBuf) -> Self {
        self.failures = path;
        self
    }

    /// Scenario file the run comes from.
    pub fn scenario(mut self, path: Option<PathBuf>) -> Self {
        self.scenario = path;
        self
    }

    /// Planted bug to switch on.
    pub fn plant(mut self, plant: Option<String>) -> Self {
        self.plant = plant;
        self
    }

    /// Output format.
    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Print only violations and the summary.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Fail the run when a rule of [`crate::MARKED_RULES`] was never marked.
    pub fn require_marks(mut self, require: bool) -> Self {
        self.require_marks = require;
        self
    }

    /// Validates everything and builds the configuration.
    pub fn build(self) -> Result<SimConfig, ConfigError> {
        let seeds = match (self.seed, self.seeds) {
            (Some(_), Some(_)) => return Err(ConfigError::SeedAndSeeds),
            (Some(seed), None) => SeedRange::single(seed),
            (None, Some(range)) => range,
            (None, None) => return Err(ConfigError::NoSeed),
        };
        let users = u32::try_from(self.users)
            .ok()
            .filter(|u| (1..=MAX_USERS).contains(u))
            .ok_or(ConfigError::Users(self.users))?;
        if self.duration.is_zero() {
            return Err(ConfigError::ZeroDuration);
        }
        if self.duration > MAX_DURATION {
            return Err(ConfigError::DurationTooLong(self.duration));
        }
        if !(0.0..=1.0).contains(&self.adversary_share) {
            return Err(ConfigError::AdversaryShare(self.adversary_share));
        }
        let jobs = NonZeroUsize::new(self.jobs)
            .filter(|j| j.get() <= MAX_JOBS)
            .ok_or(ConfigError::Jobs(self.jobs))?;
        if let Faults::Plan(plan) = &self.faults {
            plan.validate()?;
        }
        if !seeds.is_single() {
            for (flag, path) in [("log", &self.log), ("trace", &self.trace)] {
                if let Some(path) = path
                    && !path.to_string_lossy().contains(SEED_PLACEHOLDER)
                {
                    return Err(ConfigError::NeedsSeedPlaceholder {
                        flag,
                        path: path.clone(),
                    });
                }
            }
        }
        Ok(SimConfig {
            seeds,
            shard: self.shard,
            jobs,
            stop_on_failure: self.stop_on_failure,
            users,
            duration: self.duration,
            faults: self.faults,
            adversary_share: self.adversary_share,
            log: self.log,
            trace: self.trace,
            failures: self.failures,
            scenario: self.scenario,
            plant: self.plant,
            output: self.output,
            quiet: self.quiet,
            require_marks: self.require_marks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_duration_accepts_every_unit_and_concatenation() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h30m5s"), Ok(Duration::from_secs(5405)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn parse_duration_bad_input_is_typed_error() {
        use DurationParseError as E;
        assert_eq!(parse_duration(""), Err(E::Empty));
        assert_eq!(parse_duration("10"), Err(E::MissingUnit("10".into())));
        assert_eq!(parse_duration("1h30"), Err(E::MissingUnit("30".into())));
        assert_eq!(parse_duration("m"), Err(E::MissingNumber("m".into())));
        assert_eq!(parse_duration("-5s"), Err(E::MissingNumber("-5s".into())));
        assert_eq!(parse_duration("5 s"), Err(E::MissingUnit("5".into())));
        assert_eq!(parse_duration("3d"), Err(E::UnknownUnit("d".into())));
        assert_eq!(parse_duration("3MS"), Err(E::UnknownUnit("MS".into())));
        assert_eq!(parse_duration("99999999999999999999s"), Err(E::Overflow));
        assert_eq!(parse_duration("9999999999999999h"), Err(E::Overflow));
        assert_eq!(
            parse_duration(&"1s".repeat(17)),
            Err(E::TooLong { len: 34 })
        );
    }

    #[test]
    fn format_duration_round_trips_through_parse() {
        for ms in [
            1, 999, 1000, 59_999, 60_000, 3_600_000, 5_405_000, 86_400_000, 90_061_001,
        ] {
            let d = Duration::from_millis(ms);
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
        assert_eq!(format_duration(Duration::from_secs(5405)), "1h30m5s");
        assert_eq!(format_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn build_defaults_with_seed_succeeds() {
        let cfg = SimConfig::builder().seed(7).build().unwrap();
        assert_eq!(cfg.seeds(), SeedRange::single(7));
        assert_eq!(cfg.users(), 100);
        assert_eq!(cfg.jobs().get(), 1);
        assert_eq!(cfg.failures_path(), Path::new(DEFAULT_FAILURES_FILE));
    }

    #[test]
    fn build_out_of_range_values_are_typed_errors() {
        let b = || SimConfig::builder().seed(1);
        assert_eq!(b().users(0).build(), Err(ConfigError::Users(0)));
        assert_eq!(b().users(100_001).build(), Err(ConfigError::Users(100_001)));
        assert_eq!(
            b().users(u64::from(u32::MAX) + 1).build(),
            Err(ConfigError::Users(u64::from(u32::MAX) + 1))
        );
        assert!(b().users(100_000).build().is_ok());
        assert_eq!(
            b().duration(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration)
        );
        let day_and_a_bit = MAX_DURATION + Duration::from_millis(1);
        assert_eq!(
            b().duration(day_and_a_bit).build(),
            Err(ConfigError::DurationTooLong(day_and_a_bit))
        );
        assert!(b().duration(MAX_DURATION).build().is_ok());
        assert_eq!(b().jobs(0).build(), Err(ConfigError::Jobs(0)));
        assert_eq!(
            b().jobs(MAX_JOBS + 1).build(),
            Err(ConfigError::Jobs(MAX_JOBS + 1))
        );
        assert!(matches!(
            b().adversary_share(f64::NAN).build(),
            Err(ConfigError::AdversaryShare(_))
        ));
        assert_eq!(
            b().adversary_share(1.5).build(),
            Err(ConfigError::AdversaryShare(1.5))
        );
        let bad_plan = FaultPlan {
            drop: 2.0,
            ..FaultPlan::none()
        };
        assert_eq!(
            b().faults(Faults::Plan(bad_plan)).build(),
            Err(ConfigError::Faults(FaultPlanError::Probability {
                field: "drop",
                value: 2.0
            }))
        );
    }

    #[test]
    fn build_seed_choice_is_exactly_one() {
        assert_eq!(SimConfig::builder().build(), Err(ConfigError::NoSeed));
        let range = SeedRange::new(0, 4).unwrap();
        assert_eq!(
            SimConfig::builder().seed(1).seeds(range).build(),
            Err(ConfigError::SeedAndSeeds)
        );
        assert_eq!(
            SimConfig::builder().seeds(range).build().unwrap().seeds(),
            range
        );
    }

    #[test]
    fn build_multi_seed_log_needs_placeholder_and_substitutes_it() {
        let range = SeedRange::new(0, 4).unwrap();
        assert_eq!(
            SimConfig::builder()
                .seeds(range)
                .trace(Some("t.json".into()))
                .build(),
            Err(ConfigError::NeedsSeedPlaceholder {
                flag: "trace",
                path: "t.json".into()
            })
        );
        let cfg = SimConfig::builder()
            .seeds(range)
            .log(Some("out/run-{seed}.jsonl".into()))
            .build()
            .unwrap();
        assert_eq!(cfg.log_path(3), Some(PathBuf::from("out/run-3.jsonl")));
        assert_eq!(cfg.trace_path(3), None);
        let single = SimConfig::builder()
            .seed(9)
            .log(Some("run.jsonl".into()))
            .build()
            .unwrap();
        assert_eq!(single.log_path(9), Some(PathBuf::from("run.jsonl")));
    }

    #[test]
    fn repro_command_names_the_seed_and_every_non_default_knob() {
        let cfg = SimConfig::builder()
            .seeds(SeedRange::new(0, 50).unwrap())
            .users(50)
            .duration(Duration::from_secs(90))
            .faults(Faults::Preset(FaultPreset::Chaos))
            .adversary_share(0.25)
            .plant(Some("broadcast_to_all".into()))
            .build()
            .unwrap();
        assert_eq!(
            cfg.repro_command(17),
            "gauntlet sim --seed 17 --users 50 --duration 1m30s --faults chaos \
             --adversaries 0.25 --plant broadcast_to_all"
        );
        let scenario = SimConfig::builder()
            .seed(3)
            .scenario(Some("my scenario.json".into()))
            .build()
            .unwrap();
        assert_eq!(
            scenario.repro_command(3),
            "gauntlet sim --seed 3 --users 100 --duration 1m --scenario 'my scenario.json'"
        );
    }

    #[test]
    fn faults_swarm_plan_depends_on_seed_only() {
        let f = Faults::Preset(FaultPreset::Swarm);
        assert_eq!(f.plan(4), f.plan(4));
        assert_ne!(f.plan(4), f.plan(5));
        let fixed = Faults::Plan(FaultPlan::chaos());
        assert_eq!(fixed.plan(4), FaultPlan::chaos());
        assert_eq!(fixed.name(), "plan");
    }
}
