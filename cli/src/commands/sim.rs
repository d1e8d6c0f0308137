//! `gauntlet sim`: run seeds of the deterministic simulation and report.
//!
//! Thin: flags -> `SimConfig` -> `gauntlet_sim::run` with the world of `run_seed` ->
//! outcome. Exit 0 when every invariant held, 1 on a violation (the report names it, with a
//! `repro:` line) or, with `--require-marks`, when a rule of `MARKED_RULES` was never marked
//! (stderr names them), 2 on bad flags or a configuration that cannot run (checked before the
//! first seed, so a bad `--plant` or `--scenario` is never reported as a violation).
//! `--junit FILE` and `--html FILE` tee the seed results into a JUnit file and an HTML page
//! (`sim_html`), each written after the summary.

use std::io::{self, Write};
use std::path::Path;

use gauntlet_sim::{
    HumanReporter, JsonReporter, Output, Reporter, RunError, Scenario, SeedResult, SimConfig,
    SimError, Summary, plants_from, run, run_seed, scenario_for,
};

use super::html::{WriteError, write_file};
use super::junit::{self, JunitError, SeedCase, SeedFailure};
use super::sim_args::SimArgs;
use super::sim_html::SimPage;
use super::{Exit, Outcome, output_exit};

/// Why `gauntlet sim` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SimCliError {
    /// The flags do not make a valid configuration.
    #[error("invalid configuration")]
    Config(#[from] gauntlet_sim::ConfigError),
    /// Reporting or the failures file failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The scenario file could not be loaded.
    #[error(transparent)]
    Scenario(#[from] SimError),
    /// Writing to stderr failed.
    #[error("writing to stderr")]
    Io(#[from] std::io::Error),
    /// The `--junit` file could not be written.
    #[error(transparent)]
    Junit(#[from] JunitError),
    /// The `--html` file could not be written.
    #[error(transparent)]
    Html(#[from] WriteError),
}

impl SimCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            SimCliError::Config(_) | SimCliError::Scenario(_) => Exit::Usage,
            SimCliError::Run(RunError::Report(e)) => output_exit(e),
            // stderr, or the failures file: not the results a reader may have stopped reading.
            SimCliError::Io(_) | SimCliError::Run(RunError::Failures { .. }) => Exit::Usage,
            SimCliError::Junit(e) => e.exit(),
            SimCliError::Html(e) => e.exit(),
        }
    }
}

pub(crate) fn run_sim(
    mut args: SimArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, SimCliError> {
    if let Some(path) = &args.scenario {
        // A scenario file carries its own seed and population; the header and the repro
        // line should say so rather than show defaults that the file overrides.
        let scenario_error = |reason: String| SimError::Scenario {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| scenario_error(e.to_string()))?;
        let sc = Scenario::from_json(&text).map_err(|e| scenario_error(e.to_string()))?;
        args.seed = Some(sc.seed);
        args.seeds = None;
        args.users = u64::from(sc.users);
        args.duration = sc.duration();
    }
    if let Some(seed) = args.pick_seed_if_missing() {
        // Printed first, so a run that dies still names its seed (TigerBeetle's SEED=).
        writeln!(stderr, "SEED={seed}")?;
    }
    let junit_path = args.junit.take();
    let html_path = args.html.take();
    let cfg = SimConfig::try_from(args)?;
    preflight(&cfg)?;
    let mut human;
    let mut json;
    let reporter: &mut dyn Reporter = match cfg.output() {
        Output::Human => {
            human = HumanReporter::new(&mut *stdout);
            &mut human
        }
        Output::Json => {
            json = JsonReporter::new(&mut *stdout);
            &mut json
        }
    };
    let summary = if junit_path.is_none() && html_path.is_none() {
        run(&cfg, run_seed, reporter)?
    } else {
        let mut tee = Tee {
            inner: reporter,
            cases: junit_path.as_ref().map(|_| Vec::new()),
            page: html_path.as_ref().map(|_| SimPage::default()),
        };
        let summary = run(&cfg, run_seed, &mut tee)?;
        if let (Some(path), Some(cases)) = (&junit_path, &tee.cases) {
            write_junit(path, &cfg, cases)?;
        }
        if let (Some(path), Some(page)) = (&html_path, &tee.page) {
            write_file(path, &page.render(&cfg, &summary))?;
        }
        summary
    };
    let unmarked = summary.unmarked();
    if cfg.require_marks() && !unmarked.is_empty() {
        // A sweep that never ran a rule's path checked nothing of it: a finding, like a
        // violation, not a usage error.
        writeln!(
            stderr,
            "gauntlet sim: --require-marks: {} rule(s) never marked: {}",
            unmarked.len(),
            unmarked.join(", ")
        )?;
        return Ok(Outcome::Failure);
    }
    Ok(if summary.failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

/// Checks, before any seed runs, what would otherwise fail every seed at setup and be
/// reported as a violation with a `repro:` line: the scenario file and the planted bug it
/// or `--plant` names (unknown, or a build without planted bugs), and the directories the
/// per-seed `--log` and `--trace` files go to. Each is a usage error (exit 2).
pub(crate) fn preflight(cfg: &SimConfig) -> Result<(), SimError> {
    let first = cfg.seeds().shard_seeds(cfg.shard()).next();
    let sc = scenario_for(cfg, first.unwrap_or_default())?;
    plants_from(sc.plant.as_deref())?;
    if let Some(seed) = first {
        for path in [cfg.log_path(seed), cfg.trace_path(seed)]
            .into_iter()
            .flatten()
        {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if !dir.is_dir() {
                return Err(SimError::Output {
                    path: path.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no directory {}", dir.display()),
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Passes every result on to the chosen reporter and keeps what a JUnit case and the HTML
/// page need (each only when its file was asked for).
struct Tee<'a> {
    inner: &'a mut dyn Reporter,
    cases: Option<Vec<SeedCase>>,
    page: Option<SimPage>,
}

impl Reporter for Tee<'_> {
    fn start(&mut self, cfg: &SimConfig) -> io::Result<()> {
        self.inner.start(cfg)
    }

    fn seed(&mut self, cfg: &SimConfig, result: &SeedResult) -> io::Result<()> {
        let o = &result.outcome;
        if let Some(cases) = &mut self.cases {
            cases.push(SeedCase {
                seed: o.seed,
                wall: result.wall,
                failure: o.violation.as_ref().map(|v| SeedFailure {
                    invariant: v.invariant.clone(),
                    message: v.message.clone(),
                    repro: cfg.repro_command(o.seed),
                }),
            });
        }
        if let Some(page) = &mut self.page {
            page.seed(cfg, result);
        }
        self.inner.seed(cfg, result)
    }

    fn summary(&mut self, cfg: &SimConfig, summary: &Summary) -> io::Result<()> {
        self.inner.summary(cfg, summary)
    }
}

/// The suite name of a run: what a CI view lists it as (`gauntlet sim seeds 0..100 shard 3/8`).
pub(crate) fn suite_name(seeds: &str, shard: &str) -> String {
    format!("gauntlet sim seeds {seeds} shard {shard}")
}

fn write_junit(path: &Path, cfg: &SimConfig, cases: &[SeedCase]) -> Result<(), JunitError> {
    let name = suite_name(&cfg.seeds().to_string(), &cfg.shard().to_string());
    junit::write(path, &junit::report([junit::seed_suite(&name, cases)]))
}
