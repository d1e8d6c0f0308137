//! `gauntlet shrink <sim flags>`: find the first failing seed of the flags and minimise its
//! workload and fault plan to a scenario file that still fails the same way.

use std::io::Write;
use std::path::PathBuf;

use gauntlet_sim::{SimConfig, scenario_for, shrink};

use super::sim_args::SimArgs;
use super::{Exit, Outcome, output_exit};

/// Arguments of `gauntlet shrink`: the `sim` flags plus where to write the result.
#[derive(Debug, clap::Args)]
pub(crate) struct ShrinkArgs {
    #[command(flatten)]
    sim: SimArgs,
    /// Where to write the minimised scenario (default: gauntlet-shrunk-SEED.json, SEED the failing seed).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Most simulation runs to spend while shrinking.
    #[arg(long, value_name = "RUNS", default_value_t = 400)]
    budget: u32,
}

/// Why `gauntlet shrink` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ShrinkCliError {
    /// The flags do not make a valid configuration.
    #[error("invalid configuration")]
    Config(#[from] gauntlet_sim::ConfigError),
    /// A run could not start.
    #[error(transparent)]
    Sim(#[from] gauntlet_sim::SimError),
    /// Shrinking failed.
    #[error(transparent)]
    Shrink(#[from] gauntlet_sim::ShrinkError),
    /// Writing the scenario or the output failed.
    #[error("writing output")]
    Io(#[from] std::io::Error),
}

impl ShrinkCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ShrinkCliError::Config(_) | ShrinkCliError::Sim(_) => Exit::Usage,
            // The seed failed before shrinking started: a candidate that cannot start, or a
            // start that no longer fails, means the shrinker or the world is not deterministic.
            ShrinkCliError::Shrink(_) => Exit::Bug,
            ShrinkCliError::Io(e) => output_exit(e),
        }
    }
}

pub(crate) fn run_shrink(
    mut args: ShrinkArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, ShrinkCliError> {
    if let Some(seed) = args.sim.pick_seed_if_missing() {
        writeln!(stderr, "SEED={seed}")?;
    }
    let cfg = SimConfig::try_from(args.sim)?;
    super::sim::preflight(&cfg)?;
    let seeds: Vec<u64> = cfg.seeds().shard_seeds(cfg.shard()).collect();
    for seed in seeds {
        let sc = scenario_for(&cfg, seed)?;
        let r = gauntlet_sim::run_scenario(&sc, None, None)?;
        if r.violation.is_none() {
            writeln!(stderr, "seed {seed} passes")?;
            continue;
        }
        writeln!(
            stderr,
            "seed {seed} fails: shrinking (budget {} runs)",
            args.budget
        )?;
        let s = shrink(&sc, args.budget)?;
        let path = args
            .out
            .unwrap_or_else(|| PathBuf::from(format!("gauntlet-shrunk-{seed}.json")));
        std::fs::write(&path, s.scenario.to_json() + "\n")?;
        writeln!(stdout, "{}", s.scenario.to_json())?;
        writeln!(stdout, "invariant: {} ({})", s.invariant, s.message)?;
        writeln!(
            stdout,
            "shrunk: users {} -> {}, operations {} -> {}, log entries {} -> {}, in {} runs",
            sc.users,
            s.scenario.users,
            s.ops_before,
            s.ops_after,
            s.log_before,
            s.log_after,
            s.runs
        )?;
        writeln!(stdout, "repro: gauntlet sim --scenario {}", path.display())?;
        return Ok(Outcome::Failure);
    }
    writeln!(stdout, "no seed failed: nothing to shrink")?;
    Ok(Outcome::Success)
}
