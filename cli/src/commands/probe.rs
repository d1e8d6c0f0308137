//! `gauntlet probe`: black-box conformance and attack checks against a running gateway
//! (`gauntlet_server::probe`), printed as a table or JSON Lines.
//!
//! This file owns the flags, reading the secret and rendering; every check is the core
//! probe's. Exit code 1 when any check fails, 2 when the probe cannot run (no secret, a bad
//! target, or nothing answering at the target: no check ran, so none is reported failed).

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use gauntlet_server::probe::{Check, ProbeError, ProbeOptions, probe};
use serde_json::json;

use super::serve::{SECRET_ENV, ServeError, read_file};
use super::{Exit, Outcome, output_exit};

/// `gauntlet probe`: check a running server against PROTOCOL.md.
#[derive(Debug, Args)]
pub(crate) struct ProbeCommand {
    /// The gateway's WebSocket URL.
    #[arg(long, value_name = "ws://HOST:PORT/ws")]
    target: String,
    /// File holding the server's HS256 secret (default: the GAUNTLET_HS256_SECRET variable).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// The server's largest accepted text frame in bytes.
    #[arg(long, default_value_t = 8192)]
    max_frame_bytes: usize,
    /// Print JSON Lines (`{"schema":1,"type":"check",...}` per check, then a `summary`).
    #[arg(long)]
    json: bool,
}

/// Why `gauntlet probe` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeCliError {
    /// The secret could not be read.
    #[error(transparent)]
    Secret(#[from] ServeError),
    /// No secret given.
    #[error("no secret: give --secret-file or set {SECRET_ENV}")]
    NoSecret,
    /// The probe could not start.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The async runtime could not start.
    #[error("starting the tokio runtime")]
    Runtime(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] io::Error),
}

impl ProbeCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ProbeCliError::Secret(e) => e.exit(),
            ProbeCliError::NoSecret | ProbeCliError::Runtime(_) => Exit::Usage,
            ProbeCliError::Probe(
                ProbeError::BadTarget(_) | ProbeError::BadSecret | ProbeError::Unreachable { .. },
            ) => Exit::Usage,
            ProbeCliError::Output(e) => output_exit(e),
        }
    }
}

impl ProbeCommand {
    /// Runs every check and prints the results.
    pub(crate) fn run(self, stdout: &mut dyn Write) -> Result<Outcome, ProbeCliError> {
        let secret = match &self.secret_file {
            Some(path) => read_file(path)?,
            // The environment is read here, at the CLI edge, so the secret never sits in argv.
            None => std::env::var_os(SECRET_ENV)
                .map(|s| s.as_encoded_bytes().to_vec())
                .ok_or(ProbeCliError::NoSecret)?,
        };
        let options = ProbeOptions {
            target: self.target.clone(),
            secret,
            max_frame_bytes: self.max_frame_bytes,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ProbeCliError::Runtime)?;
        let checks = runtime.block_on(probe(&options))?;
        render(&checks, self.json, stdout)?;
        Ok(if checks.iter().all(|c| c.passed) {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
}

fn render(checks: &[Check], as_json: bool, out: &mut dyn Write) -> io::Result<()> {
    let failed = checks.iter().filter(|c| !c.passed).count();
    if as_json {
        for c in checks {
            let line = json!({"schema": 1, "type": "check", "check": c.name, "passed": c.passed, "evidence": c.evidence});
            writeln!(out, "{line}")?;
        }
        let summary =
            json!({"schema": 1, "type": "summary", "checks": checks.len(), "failed": failed});
        return writeln!(out, "{summary}");
    }
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(out, "{:<width$}  {:<4}  evidence", "check", "pass")?;
    for c in checks {
        let verdict = if c.passed { "pass" } else { "FAIL" };
        writeln!(out, "{:<width$}  {verdict:<4}  {}", c.name, c.evidence)?;
    }
    writeln!(out, "{} checks, {failed} failed", checks.len())
}
