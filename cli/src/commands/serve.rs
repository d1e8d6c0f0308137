//! `gauntlet serve`: the real tokio + tungstenite server over `gauntlet_server`.
//!
//! This file owns the flags, reading keys, config and secrets, and printing the listening
//! address. Everything the server does is `gauntlet_server`'s. Secrets come from a file
//! or the `GAUNTLET_HS256_SECRET` environment variable, never from argv (which `ps` shows).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use gauntlet_core::token::{Algorithm, KeyError, KeyRing};
use gauntlet_core::{Config, ConfigError, Kid, Plants};
use gauntlet_server::{
    DEFAULT_MAX_TRACE_EVENTS, FsyncPolicy, JournalOptions, Server, ServerError, ServerOptions,
    Startup, TraceOptions, os_seed, shutdown_signal,
};

use super::{Exit, Outcome, output_exit};

/// Longest key, secret, JWKS or config file read.
const MAX_FILE: u64 = 1 << 20;
/// The environment variable that may hold the HS256 secret.
pub(crate) const SECRET_ENV: &str = "GAUNTLET_HS256_SECRET";

/// `gauntlet serve`: run the gateway on real sockets.
#[derive(Debug, Args)]
pub(crate) struct ServeCommand {
    /// Address to listen on; port 0 picks a free port (the first stdout line says which).
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// File holding the HS256 secret (the file's exact bytes, at least 32).
    #[arg(long, value_name = "FILE")]
    hs256_secret_file: Option<PathBuf>,
    /// RFC 7517 JWK Set file of verification keys.
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// PEM file with an RSA public key (>= 2048 bits) for RS256.
    #[arg(long, value_name = "PEM")]
    rs256_public_key: Option<PathBuf>,
    /// PEM file with a P-256 public key for ES256.
    #[arg(long, value_name = "PEM")]
    es256_public_key: Option<PathBuf>,
    /// PEM file with an Ed25519 public key for EdDSA.
    #[arg(long, value_name = "PEM")]
    ed25519_public_key: Option<PathBuf>,
    /// Key id given to the PEM/secret keys above; tokens must then name it in their `kid`.
    #[arg(long, value_name = "K")]
    kid: Option<String>,
    /// Gateway config as JSON (missing fields take the docs/protocol.md defaults).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seed for everything the gateway draws, tickets included (default: from the OS RNG).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the event journal (JSON Lines) here; an existing journal is replayed and continued.
    #[arg(long, value_name = "FILE.jsonl")]
    journal: Option<PathBuf>,
    /// When journal lines are fsynced.
    #[arg(long, value_enum, default_value = "interval")]
    fsync: Fsync,
    /// JSON Lines file of revocations ({"kind":"jti",...} / {"kind":"user",...}), watched for appended lines.
    #[arg(long, value_name = "FILE")]
    revocations: Option<PathBuf>,
    /// Write a Chrome trace (opens in Perfetto): a track per connection named by peer and
    /// user, its session span, handshake, auth and close instants, and counter tracks of
    /// open sessions and send-queue depth, in microseconds since the server started;
    /// complete once the server stops (SIGINT or SIGTERM).
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    /// Most events the --trace file holds; past it the trace ends with a `trace truncated` note.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TRACE_EVENTS, requires = "trace")]
    trace_max_events: u64,
    /// Switch on a planted bug (testing the probe and the simulator only).
    #[cfg(feature = "planted-bugs")]
    #[arg(long, hide = true, value_name = "NAME")]
    plant: Vec<gauntlet_core::Plant>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Fsync {
    /// After every batch of entries, before the frames they cause are sent.
    Always,
    /// Once a second.
    Interval,
    /// Only at shutdown.
    Never,
}

/// Why `gauntlet serve` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    /// A key, secret or config file could not be read.
    #[error("reading {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A file is larger than any key or config.
    #[error("{} is larger than {MAX_FILE} bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A key was refused by the key ring.
    #[error("key from {origin}")]
    Key {
        /// The file or variable it came from.
        origin: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// No verification key was given.
    #[error("no key: give --hs256-secret-file, --jwks, a --*-public-key, or set {SECRET_ENV}")]
    NoKey,
    /// `--kid` is not a valid key id.
    #[error("invalid --kid (1..=128 characters, no control characters)")]
    BadKid,
    /// The config file is invalid.
    #[error("config {}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// The server failed.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The async runtime could not start.
    #[error("starting the tokio runtime")]
    Runtime(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] io::Error),
}

impl ServeError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ServeError::ReadFile { .. }
            | ServeError::FileTooLarge { .. }
            | ServeError::Key { .. }
            | ServeError::NoKey
            | ServeError::BadKid
            | ServeError::Config { .. }
            | ServeError::Runtime(_) => Exit::Usage,
            // The gateway task only stops on its own by panicking.
            ServeError::Server(ServerError::GatewayStopped) => Exit::Bug,
            // Binding, the journal (unreadable, unwritable, or not replaying), the config, the
            // OS RNG: the server could not run as asked.
            ServeError::Server(
                ServerError::Bind { .. }
                | ServerError::Journal { .. }
                | ServerError::Replay(_)
                | ServerError::Config(_)
                | ServerError::Rng(_)
                | ServerError::Trace { .. },
            ) => Exit::Usage,
            ServeError::Output(e) => output_exit(e),
        }
    }
}

impl ServeCommand {
    /// Runs the server until SIGINT/SIGTERM.
    pub(crate) fn run(
        self,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<Outcome, ServeError> {
        let ring = self.ring()?;
        let mut config = match &self.config {
            Some(path) => {
                let text = String::from_utf8_lossy(&read_file(path)?).into_owned();
                Config::from_json(&text).map_err(|source| ServeError::Config {
                    path: path.clone(),
                    source,
                })?
            }
            None => Config::default(),
        };
        config.seed = match self.seed {
            Some(seed) => seed,
            None => os_seed()?,
        };
        let journal = self.journal.clone().map(|path| JournalOptions {
            path,
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Interval => FsyncPolicy::Interval,
                Fsync::Never => FsyncPolicy::Never,
            },
        });
        let options = ServerOptions {
            addr: self.addr,
            config,
            ring,
            plants: self.plants(),
            journal,
            revocations_file: self.revocations.clone(),
            trace: self.trace.clone().map(|path| TraceOptions {
                path,
                max_events: self.trace_max_events,
            }),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        runtime.block_on(async {
            let server = Server::bind(options).await?;
            let addr = server.local_addr();
            writeln!(stdout, "listening on ws://{addr}/ws")?;
            stdout.flush()?;
            if let Startup::Resumed {
                entries,
                config_differs,
            } = server.startup()
            {
                writeln!(
                    stderr,
                    "gauntlet serve: resumed from the journal ({entries} entries)"
                )?;
                if *config_differs && (self.config.is_some() || self.seed.is_some()) {
                    writeln!(
                        stderr,
                        "gauntlet serve: using the journal's config, not --config/--seed"
                    )?;
                }
            }
            let report = server.run(shutdown_signal()).await?;
            writeln!(
                stderr,
                "gauntlet serve: stopped at log seq {} (state {})",
                report.last_seq, report.state_hash
            )?;
            if report.trace_dropped > 0 {
                writeln!(
                    stderr,
                    "gauntlet serve: the trace reached --trace-max-events; {} later events were not written",
                    report.trace_dropped
                )?;
            }
            Ok(Outcome::Success)
        })
    }

    #[cfg(feature = "planted-bugs")]
    fn plants(&self) -> Plants {
        self.plant.iter().fold(Plants::NONE, |ps, p| ps.with(*p))
    }

    #[cfg(not(feature = "planted-bugs"))]
    fn plants(&self) -> Plants {
        Plants::NONE
    }

    fn ring(&self) -> Result<KeyRing, ServeError> {
        if let Some(path) = &self.jwks {
            return KeyRing::from_jwks(&read_file(path)?).map_err(|source| ServeError::Key {
                origin: path.display().to_string(),
                source,
            });
        }
        let kid = self
            .kid
            .as_deref()
            .map(|k| Kid::parse(k).ok_or(ServeError::BadKid))
            .transpose()?;
        let mut ring = KeyRing::new();
        let key_err = |origin: &dyn std::fmt::Display| {
            let origin = origin.to_string();
            move |source| ServeError::Key { origin, source }
        };
        if let Some(path) = &self.hs256_secret_file {
            ring.add_hmac(kid.clone(), Algorithm::HS256, &read_file(path)?)
                .map_err(key_err(&path.display()))?;
        } else if let Some(secret) = std::env::var_os(SECRET_ENV) {
            // The environment is read here, at the CLI edge, so a secret never sits in argv.
            ring.add_hmac(kid.clone(), Algorithm::HS256, secret.as_encoded_bytes())
                .map_err(key_err(&SECRET_ENV))?;
        }
        let publics = [
            (&self.rs256_public_key, Algorithm::RS256),
            (&self.es256_public_key, Algorithm::ES256),
            (&self.ed25519_public_key, Algorithm::EdDSA),
        ];
        for (path, alg) in publics {
            if let Some(path) = path {
                ring.add_public_pem(kid.clone(), alg, &read_file(path)?)
                    .map_err(key_err(&path.display()))?;
            }
        }
        if ring.is_empty() {
            return Err(ServeError::NoKey);
        }
        Ok(ring)
    }
}

/// Reads a key, secret or config file, refusing anything over [`MAX_FILE`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ServeError> {
    super::files::read_bounded(path, MAX_FILE).map_err(|e| match e {
        Some(source) => ServeError::ReadFile {
            path: path.to_path_buf(),
            source,
        },
        None => ServeError::FileTooLarge {
            path: path.to_path_buf(),
        },
    })
}
