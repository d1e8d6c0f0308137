//! `gauntlet sim`: run seeds of the deterministic simulation and report.
//!
//! Thin: flags -> `SimConfig` -> `gauntlet_sim::run` with the world of `run_seed` ->
//! outcome. Exit 0 when every invariant held, 1 on a violation (the report names it, with a
//! `repro:` line), 2 on bad flags.

use std::io::Write;

use gauntlet_sim::{
    HumanReporter, JsonReporter, Output, Reporter, RunError, Scenario, SimConfig, SimError, run,
    run_seed,
};

use super::Outcome;
use super::sim_args::SimArgs;

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
}

impl SimCliError {
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, SimCliError::Run(RunError::Report(e)) if e.kind() == std::io::ErrorKind::BrokenPipe)
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
    let cfg = SimConfig::try_from(args)?;
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
    let summary = run(&cfg, run_seed, reporter)?;
    Ok(if summary.failed == 0 {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}
