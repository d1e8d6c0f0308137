//! `gauntlet load`: real WebSocket clients against a running gateway, with the invariants
//! observable from outside checked on what they receive (`gauntlet_server::load`).
//!
//! This file owns the flags, reading the secret and rendering stdout; `--json`, `--hgrm` and
//! `--html` files are rendered by `load_files`, and `--trace` by `gauntlet_server` (it
//! records while the users run). Exit 1 on any violation, and
//! when the run did not test what was asked (users that never connected, handshakes refused
//! by a rate limit or a 503: a server turning legitimate users away), each shortfall named
//! on stderr. Exit 2 when the load cannot run (no secret, a bad target, nothing answering).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use gauntlet_server::load::{LoadError, LoadOptions, LoadRun, load};
use gauntlet_server::{DEFAULT_MAX_TRACE_EVENTS, TraceOptions};
use gauntlet_sim::parse_duration;

use super::html::{WriteError, write_file};
use super::load_files::{self, Asked};
use super::serve::{SECRET_ENV, ServeError, read_file};
use super::{Exit, Outcome, output_exit};

/// `gauntlet load`: drive a running server with real clients.
#[derive(Debug, Args)]
pub(crate) struct LoadCommand {
    /// The gateway's WebSocket URL.
    #[arg(long, value_name = "ws://HOST:PORT/ws")]
    target: String,
    /// Concurrent users (each one connection at a time, reconnecting with resume).
    #[arg(long, default_value_t = 100)]
    users: u32,
    /// How long to run, e.g. 30s, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Time between two messages of one user (the default rate limit is 10 msg/s per user).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    message_every: Duration,
    /// Time between a user's deliberate reconnects (each followed by `resume`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    reconnect_every: Duration,
    /// File holding the server's HS256 secret (default: the GAUNTLET_HS256_SECRET variable).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// Also write the run's figures as one JSON document: users, messages per second,
    /// latency percentiles in microseconds, errors by kind, duration (docs/json-lines.md).
    #[arg(long, value_name = "FILE.json")]
    json: Option<PathBuf>,
    /// Also write the latency percentile distribution in HdrHistogram's .hgrm text format
    /// (values in milliseconds), for HdrHistogram's plotter or HistogramLogAnalyzer.
    #[arg(long, value_name = "FILE.hgrm")]
    hgrm: Option<PathBuf>,
    /// Also write a self-contained HTML report: the figures, the latency distribution
    /// plotted, errors by kind (opens offline; the page fetches nothing).
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    /// Also write a Chrome trace (opens in Perfetto): a track per user with its handshakes,
    /// connections, message round trips and errors, in microseconds since the run started.
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Most events the --trace file holds (and load keeps in memory until the run ends); past
    /// it the trace ends with a `trace truncated` note.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TRACE_EVENTS, requires = "trace")]
    trace_max_events: u64,
}

/// Why `gauntlet load` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadCliError {
    /// The secret could not be read.
    #[error(transparent)]
    Secret(#[from] ServeError),
    /// No secret given.
    #[error("no secret: give --secret-file or set {SECRET_ENV}")]
    NoSecret,
    /// The load could not start.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The async runtime could not start.
    #[error("starting the tokio runtime")]
    Runtime(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// A `--json`, `--hgrm` or `--html` file could not be written.
    #[error(transparent)]
    File(#[from] WriteError),
    /// The `--json` document could not be rendered.
    #[error("rendering the --json document")]
    Json(#[from] serde_json::Error),
}

impl LoadCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            LoadCliError::Secret(e) => e.exit(),
            LoadCliError::NoSecret | LoadCliError::Runtime(_) => Exit::Usage,
            // The trace, like the other files, is output asked for that could not be written.
            LoadCliError::Load(
                LoadError::BadTarget(_)
                | LoadError::Secret
                | LoadError::Unreachable { .. }
                | LoadError::Trace { .. },
            ) => Exit::Usage,
            // hdrhistogram refuses only bounds it is given, and those are constants.
            LoadCliError::Load(LoadError::Histogram(_)) => Exit::Bug,
            LoadCliError::Output(e) => output_exit(e),
            LoadCliError::File(e) => e.exit(),
            // Plain integers, strings and maps: serde_json cannot refuse them.
            LoadCliError::Json(_) => Exit::Bug,
        }
    }
}

impl LoadCommand {
    /// Runs the load, prints the report on stdout and any shortfall on stderr.
    pub(crate) fn run(
        self,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<Outcome, LoadCliError> {
        let secret = match &self.secret_file {
            Some(path) => read_file(path)?,
            // Read at the CLI edge only, so the secret never sits in argv.
            None => std::env::var_os(SECRET_ENV)
                .map(|s| s.as_encoded_bytes().to_vec())
                .ok_or(LoadCliError::NoSecret)?,
        };
        let options = LoadOptions {
            target: self.target.clone(),
            secret,
            users: self.users,
            duration: self.duration,
            message_every: self.message_every,
            reconnect_every: self.reconnect_every,
            trace: self.trace.clone().map(|path| TraceOptions {
                path,
                max_events: self.trace_max_events,
            }),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(LoadCliError::Runtime)?;
        let run = runtime.block_on(load(&options))?;
        let asked = Asked {
            target: &options.target,
            users: options.users,
            duration: options.duration,
        };
        self.write_files(&run, &asked)?;
        let r = &run.report;
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            stdout,
            "users          {} ({} connected)",
            options.users, r.users_connected
        )?;
        writeln!(
            stdout,
            "connections    {} ({} refused and retried)",
            r.connections, r.refused
        )?;
        writeln!(
            stdout,
            "forged tokens  {} refused of {}",
            r.forged_refused, options.users
        )?;
        writeln!(
            stdout,
            "messages sent  {} ({:.0}/s)",
            r.messages_sent,
            r.messages_sent as f64 / secs
        )?;
        writeln!(
            stdout,
            "frames in      {} ({:.0}/s), {} stream events",
            r.frames_received,
            r.frames_received as f64 / secs,
            r.events_received
        )?;
        writeln!(stdout, "runs finished  {}", r.runs_completed)?;
        let [p50, p99, p999, max] = r.latency_us;
        writeln!(
            stdout,
            "latency        p50 {p50} us  p99 {p99} us  p99.9 {p999} us  max {max} us"
        )?;
        writeln!(stdout, "violations     {}", r.violations.len())?;
        for v in &r.violations {
            writeln!(stdout, "  {v}")?;
        }
        if run.trace_dropped > 0 {
            let _ = writeln!(
                stderr,
                "gauntlet load: the trace reached --trace-max-events; {} later events were not written",
                run.trace_dropped
            );
        }
        let shortfalls = r.shortfalls(options.users);
        for s in &shortfalls {
            // The verdict stands even if stderr is gone.
            let _ = writeln!(stderr, "gauntlet load: did not test what was asked: {s}");
        }
        Ok(if r.violations.is_empty() && shortfalls.is_empty() {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }

    /// Writes the files asked for, before stdout, so a reader of stdout that stops early
    /// still finds them.
    fn write_files(&self, run: &LoadRun, asked: &Asked<'_>) -> Result<(), LoadCliError> {
        if let Some(path) = &self.json {
            write_file(path, &load_files::json(run, asked)?)?;
        }
        if let Some(path) = &self.hgrm {
            write_file(path, &load_files::hgrm(&run.latency))?;
        }
        if let Some(path) = &self.html {
            write_file(path, &load_files::html(run, asked))?;
        }
        Ok(())
    }
}
