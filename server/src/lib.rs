//! # gauntlet-server
//!
//! The gateway on real sockets: the sans-IO [`Gateway`] of `gauntlet-core` driven by tokio +
//! tokio-tungstenite ([`Server`]), and the two real-socket clients, [`load`] (many honest
//! users, invariants checked on what they receive) and [`probe`] (black-box conformance and
//! attack checks against any server speaking the protocol of `docs/protocol.md`).
//!
//! This crate is plumbing only. One task owns the gateway and is the only caller of
//! [`Gateway::handle`]; connection tasks turn socket reads into [`Input`]s and carry out the
//! [`gauntlet_core::Outputs`] it hands back (writes, closes, `Input::Sent` flow control, timers,
//! the journal). It must never decide a protocol, auth or routing question itself: the
//! handshake verdict, every close code the protocol names and every error frame come from
//! the gateway. The exceptions are transport limits the gateway cannot see (a frame over
//! tungstenite's own size limit, a request that is not an HTTP upgrade), the per-IP charge
//! on the plain HTTP requests that verify a bearer token (`POST /tickets`,
//! `POST /revocations`), and the permission of the admin endpoint `POST /revocations`, whose
//! *service* token the gateway itself checks ([`Gateway::check_service_token`]).
//!
//! The wall clock, the OS RNG and tokio tasks live here, never in `gauntlet-core`: time is
//! read in one place, [`wall_clock`], and converted to [`Instant`].
//!
//! Both the server and [`load`] can write a Chrome trace ([`TraceOptions`]) in the
//! simulator's format (`gauntlet_core::trace`), timed in wall-clock microseconds since they
//! started: the server's from the gateway task (`serve_trace`), the load's from its users
//! (`load_trace`).

mod conn;
mod driver;
mod head;
mod http;
mod journal_file;
pub mod jwks;
pub mod load;
mod load_trace;
pub mod probe;
mod serve_trace;
mod shared;
mod trace_file;
mod writer_queue;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use gauntlet_core::Instant;
use gauntlet_core::Plants;
use gauntlet_core::ReplayError;
use gauntlet_core::token::KeyRing;
use gauntlet_core::{AuthUpdate, Gateway, Input};
use gauntlet_core::{Config, ConfigError};

use driver::{Cmd, Driver};
pub use http::REVOCATIONS_WRITE;
pub use journal_file::FsyncPolicy;
pub use trace_file::{DEFAULT_MAX_TRACE_EVENTS, TraceOptions};

/// How often the revocation feed is delivered to the gateway (well inside the default
/// `max_revocation_staleness` of 5 s) and the `interval` fsync policy syncs.
pub const FEED_INTERVAL: Duration = Duration::from_secs(1);
/// tungstenite's read buffer, and the most one socket read takes. Its default (128 KiB) is
/// zero-filled on every read, which halves loopback throughput; and every connection keeps
/// (and has touched) this much for its life, so it is most of an idle connection's memory:
/// 4 KiB was 3 KiB per idle connection more. 1 KiB holds a whole window of pings and the
/// usual chat frame; a bigger frame still arrives whole (the buffer grows to the frame,
/// up to the size limit), it just takes one read per KiB.
pub const READ_BUFFER_SIZE: usize = 1024;
/// Bytes over the gateway's `max_frame_bytes` that tungstenite still reads, so that a frame
/// just over the protocol limit reaches the gateway, which closes it with 1009 itself.
pub const FRAME_SLACK_BYTES: usize = 4096;
/// How long shutdown waits for connections to carry out their 1001 close.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Sockets served at once beyond the gateway's `max_connections`: room for handshakes and
/// plain HTTP requests in progress. Past it, new sockets are dropped on accept.
pub const PRE_UPGRADE_SLACK: usize = 1024;
/// Commands queued to the gateway task before readers wait (backpressure on sockets).
const CMD_CAPACITY: usize = 4096;

/// What `gauntlet serve` runs.
pub struct ServerOptions {
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// The gateway config (ignored in favour of the journal's own when resuming a journal).
    pub config: Config,
    /// The keys tokens are validated against.
    pub ring: KeyRing,
    /// Planted bugs (empty without the `planted-bugs` feature).
    pub plants: Plants,
    /// Where and how to write the journal, if anywhere.
    pub journal: Option<JournalOptions>,
    /// A JSON Lines file of [`gauntlet_core::token::Revocation`]s, watched for appended lines.
    pub revocations_file: Option<PathBuf>,
    /// Where to write a Chrome trace of the connections, if anywhere.
    pub trace: Option<TraceOptions>,
}

/// The journal file and its durability policy.
#[derive(Clone, Debug)]
pub struct JournalOptions {
    /// The JSON Lines journal (see [`gauntlet_core::JournalLine`]).
    pub path: PathBuf,
    /// When appended lines are fsynced.
    pub fsync: FsyncPolicy,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The journal could not be read, written or synced; the server stops rather than
    /// acknowledge anything it could not make durable.
    #[error("journal {}", path.display())]
    Journal {
        /// The journal file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The existing journal does not replay.
    #[error("replaying the journal")]
    Replay(#[from] ReplayError),
    /// The gateway config is invalid.
    #[error("gateway config")]
    Config(#[from] ConfigError),
    /// The OS random number generator failed.
    #[error("reading the OS random number generator: {0}")]
    Rng(String),
    /// The gateway task ended unexpectedly.
    #[error("the gateway task stopped")]
    GatewayStopped,
    /// The `--trace` file could not be created or written. A write that fails while
    /// serving stops the trace, not the server: this is reported when the server stops.
    #[error("trace {}", path.display())]
    Trace {
        /// The trace file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// What a finished server run left behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReport {
    /// The state hash written to the journal footer (and of the final state).
    pub state_hash: String,
    /// The last log seq.
    pub last_seq: u64,
    /// Events the trace's cap kept out of the `--trace` file (0 when whole, or not tracing).
    pub trace_dropped: u64,
}

/// How the server came up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Startup {
    /// A fresh gateway (and a fresh journal, if any).
    Fresh,
    /// A gateway folded from an existing journal, then restarted.
    Resumed {
        /// Entries replayed.
        entries: usize,
        /// Whether the `--config` given was set aside for the journal's own.
        config_differs: bool,
    },
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    driver: Driver,
    shared: Arc<shared::Shared>,
    revocations_file: Option<PathBuf>,
    startup: Startup,
    next_conn: u64,
}

/// The current wall-clock time as the gateway's [`Instant`]: the one place the server reads it.
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> Instant {
    // The server is the one driver that runs on real time; core and the simulator never
    // call this (clippy.toml bans `SystemTime::now` everywhere else).
    let since = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Instant::from_nanos(u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

/// A gateway seed from the OS RNG (for the agent model's draws; tickets use a separate
/// secret that is never journaled, see [`Gateway::set_ticket_secret`]).
pub fn os_seed() -> Result<u64, ServerError> {
    getrandom::u64().map_err(|e| ServerError::Rng(e.to_string()))
}

impl Server {
    /// Binds the listener and builds (or recovers from the journal) the gateway.
    pub async fn bind(options: ServerOptions) -> Result<Server, ServerError> {
        let ServerOptions {
            addr,
            config,
            ring,
            plants,
            journal,
            revocations_file,
            trace,
        } = options;
        config.validate()?;
        // Bound first: a server that cannot listen must not touch the journal.
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let now = wall_clock();
        let (gateway, journal, startup, next_conn) = match journal {
            None => (
                Gateway::with_plants(config.clone(), ring, plants)?,
                None,
                Startup::Fresh,
                0,
            ),
            Some(j) => match journal_file::JournalFile::recover(&j)? {
                Some(recovered) => {
                    let mut gateway = recovered.replayed.gateway;
                    let differs = *gateway.config() != config;
                    let mut file = recovered.file;
                    let keys = gateway.handle(now, Input::Auth(AuthUpdate::Keys(Box::new(ring))));
                    file.append(&keys.events)?;
                    let restarted = gateway.restart(now);
                    file.append(&restarted.events)?;
                    let startup = Startup::Resumed {
                        entries: recovered.replayed.entries,
                        config_differs: differs,
                    };
                    (gateway, Some(file), startup, recovered.max_conn)
                }
                None => {
                    let gateway = Gateway::with_plants(config.clone(), ring, plants)?;
                    let file = journal_file::JournalFile::create(&j, &config, plants)?;
                    (gateway, Some(file), Startup::Fresh, 0)
                }
            },
        };
        let mut gateway = gateway;
        // Tickets must not be computable from the journal, which records the seed.
        let mut ticket_secret = [0u8; 32];
        getrandom::fill(&mut ticket_secret).map_err(|e| ServerError::Rng(e.to_string()))?;
        gateway.set_ticket_secret(&ticket_secret);
        let gw_config = gateway.config().clone();
        let shared = Arc::new(shared::Shared::new(&gw_config));
        let trace = trace
            .map(|t| serve_trace::ServeTrace::create(&t, now, local_addr))
            .transpose()?;
        Ok(Server {
            listener,
            local_addr,
            driver: Driver::new(gateway, journal, trace),
            shared,
            revocations_file,
            startup,
            next_conn,
        })
    }

    /// The bound address (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How the gateway came up.
    pub fn startup(&self) -> &Startup {
        &self.startup
    }

    /// Serves until `shutdown` completes, then closes every connection with 1001, writes the
    /// journal footer and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<ServerReport, ServerError> {
        let Server {
            listener,
            local_addr: _,
            driver,
            shared,
            revocations_file,
            startup: _,
            mut next_conn,
        } = self;
        let (cmd_tx, cmd_rx) = mpsc::channel(CMD_CAPACITY);
        let mut driver_task = tokio::spawn(driver.run(cmd_rx));
        if let Some(path) = revocations_file {
            tokio::spawn(http::watch_revocations(path, cmd_tx.clone()));
        }
        // Every connection task holds a clone; when all are gone, `recv` returns `None`.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let slots = Arc::new(tokio::sync::Semaphore::new(shared.max_sockets));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                finished = &mut driver_task => {
                    return match finished {
                        Ok(Ok(report)) => Ok(report),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(ServerError::GatewayStopped),
                    };
                }
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Bounded: a socket over the limit is closed at once, before any read.
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            drop(stream);
                            continue;
                        };
                        // A journal may carry any connection id; ids are never reused, so
                        // once they run out a socket is refused rather than given an old one.
                        let Some(id) = next_conn.checked_add(1) else {
                            eprintln!("gauntlet serve: connection ids exhausted; refusing {peer}");
                            drop(stream);
                            continue;
                        };
                        next_conn = id;
                        let task = conn::Connection {
                            conn: gauntlet_core::ConnId::new(next_conn),
                            peer,
                            shared: shared.clone(),
                            cmd: cmd_tx.clone(),
                            _alive: alive_tx.clone(),
                            _slot: slot,
                        };
                        tokio::spawn(task.serve(stream));
                    }
                    // Out of descriptors or a connection reset before accept: back off briefly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
        drop(listener);
        if cmd_tx.send(Cmd::Shutdown).await.is_err() {
            return Err(ServerError::GatewayStopped);
        }
        drop(cmd_tx);
        drop(alive_tx);
        let report = driver_task
            .await
            .map_err(|_| ServerError::GatewayStopped)??;
        // The gateway has queued a 1001 close to every connection; give them time to send it.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv()).await;
        Ok(report)
    }
}

/// Resolves on SIGINT or SIGTERM (what `gauntlet serve` waits for).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
