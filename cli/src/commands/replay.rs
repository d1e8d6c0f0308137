//! `gauntlet replay FILE.jsonl`: fold a journal (from `gauntlet sim --log` or
//! `gauntlet serve --journal`) into a fresh gateway and print its state hash.

use std::io::Write;
use std::path::PathBuf;

use super::{Exit, Outcome, output_exit};

/// Arguments of `gauntlet replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The journal to replay (JSON Lines, schema 4: header, entries, optional footer).
    #[arg(value_name = "FILE.jsonl")]
    file: PathBuf,
}

/// Why `gauntlet replay` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayCliError {
    /// The file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the result failed.
    #[error("writing output")]
    Io(#[from] std::io::Error),
}

impl ReplayCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ReplayCliError::Read { .. } => Exit::Usage,
            ReplayCliError::Io(e) => output_exit(e),
        }
    }
}

/// Exit 0 with `state_hash: <hex>` when the journal replays (and matches its footer, if any);
/// exit 1 with the reason when it does not; exit 2 when the file cannot be read.
pub(crate) fn run_replay(
    args: &ReplayArgs,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, ReplayCliError> {
    let text = std::fs::read_to_string(&args.file).map_err(|source| ReplayCliError::Read {
        path: args.file.display().to_string(),
        source,
    })?;
    match gauntlet_core::replay_journal(&text) {
        Ok(r) => {
            writeln!(stdout, "entries: {}", r.entries)?;
            writeln!(stdout, "state_hash: {}", r.gateway.state_hash())?;
            let note = if r.recorded_hash.is_some() {
                "matches the footer"
            } else {
                "no footer (journal cut short)"
            };
            writeln!(stdout, "recorded: {note}")?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(stderr, "gauntlet replay: {}: {e}", args.file.display())?;
            Ok(Outcome::Failure)
        }
    }
}
