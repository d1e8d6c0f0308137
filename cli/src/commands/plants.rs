//! `gauntlet plants`: the planted bugs this build can switch on with `--plant NAME`.
//!
//! On a build without the `planted-bugs` feature there is nothing to list: that is a usage
//! error (exit 2, the notice on stderr), so a loop over `gauntlet plants` stops at once
//! instead of iterating over the words of a notice.

use std::io::{self, Write};

use super::{Exit, Outcome, output_exit};

/// Why `gauntlet plants` could not list anything.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PlantsError {
    /// The build has no planted bugs.
    #[cfg_attr(feature = "planted-bugs", allow(dead_code))]
    #[error("this build has no planted bugs: rebuild with `--features planted-bugs`")]
    NotBuilt,
    /// Writing the list failed.
    #[error("writing output")]
    Output(#[from] io::Error),
}

impl PlantsError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            PlantsError::NotBuilt => Exit::Usage,
            PlantsError::Output(e) => output_exit(e),
        }
    }
}

/// Lists the planted bugs, one per line: name, then what it breaks, then `[probe: CHECK]`
/// for a plant only `gauntlet probe` against `gauntlet serve` catches (`.ci/run` sweeps the
/// others with the simulator).
#[cfg(feature = "planted-bugs")]
pub(crate) fn run_plants(stdout: &mut dyn Write) -> Result<Outcome, PlantsError> {
    for p in gauntlet_core::Plant::ALL {
        match p.probe_check() {
            Some(check) => writeln!(
                stdout,
                "{:<32} {} [probe: {check}]",
                p.name(),
                p.description()
            )?,
            None => writeln!(stdout, "{:<32} {}", p.name(), p.description())?,
        }
    }
    Ok(Outcome::Success)
}

/// Without the feature there is nothing to list: a usage error, reported on stderr.
#[cfg(not(feature = "planted-bugs"))]
pub(crate) fn run_plants(_stdout: &mut dyn Write) -> Result<Outcome, PlantsError> {
    Err(PlantsError::NotBuilt)
}
