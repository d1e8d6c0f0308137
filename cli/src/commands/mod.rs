//! The `gauntlet` command line: the clap types and the dispatch to each command.
//!
//! Each command lives in its own file here (`token.rs`, ...) and owns its arguments, its
//! error type and its output. This module owns the top-level `Cli`, the `Command` enum and
//! the mapping to an [`Outcome`]. It must never decide protocol questions itself: commands
//! call into `gauntlet-core` / `gauntlet-sim` and only parse, print and map exit codes.

use std::io::{self, Read, Write};

use clap::{Parser, Subcommand};

mod files;
mod load;
mod plants;
mod probe;
mod replay;
mod serve;
mod shrink;
mod sim;
mod sim_args;
mod token;

/// Gauntlet: simulate, fuzz and inspect the JWT-authenticated WebSocket gateway.
#[derive(Debug, Parser)]
#[command(name = "gauntlet", version, about, long_about = None)]
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
    Shrink(shrink::ShrinkArgs),
    /// List the planted bugs `--plant` can switch on (builds with `--features planted-bugs`).
    Plants,
    /// Mint and verify JWTs with the gateway's own rules.
    Token(token::TokenCommand),
    /// Run the gateway on real sockets (tokio + tungstenite).
    Serve(serve::ServeCommand),
    /// Drive a running gateway with real WebSocket clients and check what they receive.
    Load(load::LoadCommand),
    /// Check a running gateway against PROTOCOL.md from the outside.
    Probe(probe::ProbeCommand),
}

/// How a command ended, when it ran to completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit code 0.
    Success,
    /// Exit code 1: the input was checked and rejected (e.g. an invalid token).
    Failure,
}

/// A command that could not run to completion (exit code 1).
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
    /// The `serve` command failed.
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    /// The `load` command failed.
    #[error(transparent)]
    Load(#[from] load::LoadCliError),
    /// The `probe` command failed.
    #[error(transparent)]
    Probe(#[from] probe::ProbeCliError),
    /// Writing the output failed.
    #[error("writing output")]
    Io(#[from] io::Error),
}

impl CliError {
    /// Whether the error is a closed stdout (`gauntlet ... | head`), which is not a failure.
    pub(crate) fn is_broken_pipe(&self) -> bool {
        match self {
            CliError::Io(e) => e.kind() == io::ErrorKind::BrokenPipe,
            CliError::Token(e) => e.is_broken_pipe(),
            CliError::Sim(e) => e.is_broken_pipe(),
            CliError::Replay(_) | CliError::Shrink(_) => false,
            CliError::Serve(e) => e.is_broken_pipe(),
            CliError::Probe(e) => e.is_broken_pipe(),
            CliError::Load(e) => e.is_broken_pipe(),
        }
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
            Command::Load(cmd) => Ok(cmd.run(stdout)?),
        }
    }
}
