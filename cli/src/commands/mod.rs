//! The `gauntlet` command line: the clap types and the dispatch to each command.
//!
//! Each command lives in its own file here (`token.rs`, ...) and owns its arguments, its
//! error type and its output. This module owns the top-level `Cli`, the `Command` enum and
//! the mapping to an exit code. It must never decide protocol questions itself: commands
//! call into `gauntlet-core` / `gauntlet-sim` and only parse, print and map exit codes.
//!
//! # The exit-code contract
//!
//! Every command, so that a pipeline can tell a finding from a broken setup (docs/contributing.md
//! section 8):
//!
//! - **0** the command ran and everything it checked held; also when stdout was closed
//!   early (`gauntlet ... | head`).
//! - **1** the command ran and found something: an invariant violated (`sim`, `shrink`), a
//!   check failed (`probe`), a violation or a server that turned legitimate users away
//!   (`load`), a journal that does not replay (`replay`), an invalid token (`token verify`).
//!   The evidence is on stdout (and, for `load`'s shortfalls, on stderr).
//! - **2** the command could not run as asked, so nothing was checked: bad flags (clap), an
//!   invalid configuration, a file that cannot be read or written, `--plant` or `gauntlet
//!   plants` on a build without planted bugs, a target nothing answers at. One line on
//!   stderr says why.
//! - **101** a bug in gauntlet: a panic (Rust's own code), or an error that cannot happen
//!   unless gauntlet is wrong (the gateway task stopped).
//!
//! A command returns [`Outcome`] when it ran (0 or 1) and [`CliError`] when it could not;
//! [`CliError::exit`] gives each error its [`Exit`] class, with an exhaustive match per
//! command's error type, so a new error variant must be classified to compile.

use std::io::{self, Read, Write};

use clap::{Parser, Subcommand};

mod files;
mod fuzz_report;
mod html;
mod junit;
mod load;
mod load_files;
mod merge;
mod plants;
mod probe;
mod replay;
mod serve;
mod shrink;
mod sim;
mod sim_args;
mod sim_html;
mod token;

/// The exit codes every command keeps, shown under `gauntlet --help`.
const EXIT_CODES_HELP: &str = "\
Exit codes (every command):
  0    passed: everything checked held (also when stdout is closed early, e.g. `| head`)
  1    found something: an invariant violated, a probe check failed, a load violation or
       legitimate users refused, a journal that does not replay, an invalid token
  2    could not run as asked: bad flags or config, unreadable file, unknown --plant or a
       build without planted bugs, unreachable target (nothing was checked)
  101  a bug in gauntlet (a panic)";

/// Gauntlet: simulate, fuzz and inspect the JWT-authenticated WebSocket gateway.
#[derive(Debug, Parser)]
#[command(name = "gauntlet", version, about, long_about = None, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Every `gauntlet` subcommand.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the deterministic simulation: users, attackers and faults against the gateway,
    /// with every invariant checked after every step.
    Sim(sim_args::SimArgs),
    /// Fold a journal into a fresh gateway and print its state hash (exit 1 on mismatch).
    Replay(replay::ReplayArgs),
    /// Minimise a failing seed to a small scenario file that still fails.
    // The `sim` flags shrink ignores (it runs its candidates in memory, one at a time, and
    // prints its own result) are hidden from its --help.
    #[command(
        mut_arg("jobs", |a| a.hide(true)),
        mut_arg("log", |a| a.hide(true)),
        mut_arg("trace", |a| a.hide(true)),
        mut_arg("json", |a| a.hide(true)),
        mut_arg("quiet", |a| a.hide(true)),
        mut_arg("failures", |a| a.hide(true)),
        mut_arg("stop_on_failure", |a| a.hide(true)),
        mut_arg("junit", |a| a.hide(true)),
        mut_arg("html", |a| a.hide(true))
    )]
    Shrink(shrink::ShrinkArgs),
    /// List the planted bugs `--plant` can switch on (builds with `--features planted-bugs`).
    Plants,
    /// Mint and verify JWTs with the gateway's own rules.
    Token(token::TokenCommand),
    /// Run the gateway on real sockets (tokio + tungstenite).
    Serve(serve::ServeCommand),
    /// Drive a running gateway with real WebSocket clients and check what they receive.
    Load(load::LoadCommand),
    /// Check a running gateway against docs/protocol.md from the outside.
    Probe(probe::ProbeCommand),
    /// Merge the `sim --json` outputs of a sharded run into one summary (exit 1 listing
    /// every repro line when a seed failed, 2 when the shards do not make one whole run).
    Merge(merge::MergeArgs),
    /// Summarise `.ci/fuzz-smoke` logs, a line (and a JUnit case) per fuzz target.
    FuzzReport(fuzz_report::FuzzReportArgs),
}

/// How a command ended, when it ran to completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit code 0.
    Success,
    /// Exit code 1: the input was checked and rejected (e.g. an invalid token).
    Failure,
}

impl Outcome {
    /// The exit class of a command that ran.
    pub(crate) fn exit(self) -> Exit {
        match self {
            Outcome::Success => Exit::Passed,
            Outcome::Failure => Exit::Found,
        }
    }
}

/// The classes of the exit-code contract (the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 0: everything checked held, or stdout was closed early.
    Passed,
    /// 1: the command ran and found a violation or a failed check.
    Found,
    /// 2: the command could not run as asked (usage, configuration, files, target).
    Usage,
    /// 101: a bug in gauntlet.
    Bug,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Passed => 0,
            Exit::Found => 1,
            Exit::Usage => 2,
            Exit::Bug => 101,
        }
    }
}

/// A command that could not run to completion; [`CliError::exit`] says with which code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The `token` command failed.
    #[error(transparent)]
    Token(#[from] token::TokenCliError),
    /// The `sim` command failed.
    #[error(transparent)]
    Sim(#[from] sim::SimCliError),
    /// The `replay` command failed.
    #[error(transparent)]
    Replay(#[from] replay::ReplayCliError),
    /// The `shrink` command failed.
    #[error(transparent)]
    Shrink(#[from] shrink::ShrinkCliError),
    /// The `plants` command failed.
    #[error(transparent)]
    Plants(#[from] plants::PlantsError),
    /// The `serve` command failed.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// The `load` command failed.
    #[error(transparent)]
    Load(#[from] load::LoadCliError),
    /// The `probe` command failed.
    #[error(transparent)]
    Probe(#[from] probe::ProbeCliError),
    /// The `merge` command failed.
    #[error(transparent)]
    Merge(#[from] merge::MergeError),
    /// The `fuzz-report` command failed.
    #[error(transparent)]
    FuzzReport(#[from] fuzz_report::FuzzReportError),
}

impl CliError {
    /// The exit class of the error: [`Exit::Passed`] for a closed stdout, else what the
    /// command's error type says.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            CliError::Token(e) => e.exit(),
            CliError::Sim(e) => e.exit(),
            CliError::Replay(e) => e.exit(),
            CliError::Shrink(e) => e.exit(),
            CliError::Plants(e) => e.exit(),
            CliError::Serve(e) => e.exit(),
            CliError::Load(e) => e.exit(),
            CliError::Probe(e) => e.exit(),
            CliError::Merge(e) => e.exit(),
            CliError::FuzzReport(e) => e.exit(),
        }
    }
}

/// The class of an I/O error writing output: a closed stdout is a pass (the reader has what
/// it wanted), anything else means the output could not be written.
pub(crate) fn output_exit(e: &io::Error) -> Exit {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Exit::Passed
    } else {
        Exit::Usage
    }
}

impl Cli {
    /// Whether the command folds a world in memory (simulate, shrink, replay), the only
    /// commands worth a relaunch with the allocator settings. Servers and clients are never
    /// relaunched: a signal sent to the parent alone would leave the child running.
    pub(crate) fn runs_a_world(&self) -> bool {
        matches!(
            self.command,
            Command::Sim(_) | Command::Replay(_) | Command::Shrink(_)
        )
    }

    /// Runs the parsed command with the given standard streams.
    pub(crate) fn run(
        self,
        stdin: &mut dyn Read,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<Outcome, CliError> {
        match self.command {
            Command::Token(cmd) => Ok(cmd.run(stdin, stdout, stderr)?),
            Command::Sim(args) => Ok(sim::run_sim(args, stdout, stderr)?),
            Command::Replay(args) => Ok(replay::run_replay(&args, stdout, stderr)?),
            Command::Shrink(args) => Ok(shrink::run_shrink(args, stdout, stderr)?),
            Command::Plants => Ok(plants::run_plants(stdout)?),
            Command::Serve(cmd) => Ok(cmd.run(stdout, stderr)?),
            Command::Probe(cmd) => Ok(cmd.run(stdout)?),
            Command::Load(cmd) => Ok(cmd.run(stdout, stderr)?),
            Command::Merge(args) => Ok(args.run(stdout)?),
            Command::FuzzReport(args) => Ok(args.run(stdout)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    #[test]
    fn broken_pipe_is_the_one_output_error_mapped_to_success() {
        let e = CliError::from(plants::PlantsError::from(io::Error::from(
            ErrorKind::BrokenPipe,
        )));
        assert_eq!(e.exit(), Exit::Passed);
        assert_eq!(e.exit().code(), 0);
        let e = CliError::from(plants::PlantsError::from(io::Error::from(
            ErrorKind::PermissionDenied,
        )));
        assert_eq!(e.exit().code(), 2);
    }

    #[test]
    fn outcomes_map_to_0_and_1_and_classes_to_their_codes() {
        assert_eq!(Outcome::Success.exit().code(), 0);
        assert_eq!(Outcome::Failure.exit().code(), 1);
        assert_eq!(Exit::Usage.code(), 2);
        assert_eq!(Exit::Bug.code(), 101);
    }
}
