//! One seed, start to finish: the scenario a seed and the command line describe, the files a
//! run writes (journal, trace), and the outcome the runner reports.
//!
//! This is the glue between `runner` (many seeds, threads) and `world` (one run); it owns
//! the only file I/O of a run and never decides anything about the protocol.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use gauntlet_core::{Event, GatewayStats, Instant, JournalLine, LogEntry, Plants};

use crate::config::SimConfig;
use crate::faults::Fault;
use crate::outcome::{SeedOutcome, Violation};
use crate::progress::Ticker;
use crate::scenario::{Mix, Scenario};
use crate::witness::Offload;
use crate::world::{EPOCH_SECS, RunResult, Sink, World};
use gauntlet_core::trace::{TraceScope, TraceWriter, WORLD_TRACK};

/// Mean think time of a simulated user between two operations.
pub const DEFAULT_THINK_MS: u64 = 3_000;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `--plant` named a bug this build does not know (or was built without `planted-bugs`).
    #[error("{0}")]
    Plant(String),
    /// The scenario file could not be read or parsed.
    #[error("scenario {path}: {reason}")]
    Scenario {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A log or trace file could not be written.
    #[error("writing {path}")]
    Output {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The world refused the scenario.
    #[error("world: {0}")]
    World(String),
}

/// The planted bugs named by `name` (none when `None`).
pub fn plants_from(name: Option<&str>) -> Result<Plants, SimError> {
    let Some(name) = name else {
        return Ok(Plants::NONE);
    };
    #[cfg(feature = "planted-bugs")]
    {
        name.parse::<gauntlet_core::Plant>()
            .map(Plants::only)
            .map_err(|e| SimError::Plant(e.to_string()))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        Err(SimError::Plant(format!(
            "--plant {name}: this build has no planted bugs (build with --features planted-bugs)"
        )))
    }
}

/// The scenario for `seed`: from `--scenario` when given (its own seed wins), else from the flags.
pub fn scenario_for(cfg: &SimConfig, seed: u64) -> Result<Scenario, SimError> {
    if let Some(path) = cfg.scenario() {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Scenario {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        return Scenario::from_json(&text).map_err(|e| SimError::Scenario {
            path: path.display().to_string(),
            reason: e.to_string(),
        });
    }
    Ok(Scenario {
        seed,
        users: cfg.users(),
        duration_ms: u64::try_from(cfg.duration().as_millis()).unwrap_or(u64::MAX),
        adversary_share: cfg.adversary_share(),
        faults: cfg.faults().plan(seed),
        mix: Mix::default(),
        plant: cfg.plant().map(str::to_string),
        think_ms: DEFAULT_THINK_MS,
    })
}

/// Runs one scenario, writing the journal and trace when paths are given.
pub fn run_scenario(
    sc: &Scenario,
    log: Option<&Path>,
    trace: Option<&Path>,
) -> Result<RunResult, SimError> {
    run_scenario_ticking(sc, log, trace, &Ticker::none(), Offload::Inline)
}

/// [`run_scenario`], reporting how far simulated time has got to `ticker` as it goes, with
/// the checks and the log's fold run where `offload` says, which never changes the result.
///
/// With [`Offload::Background`] a violation reaches the world some steps after it happened,
/// so a failing scenario is run again inline and that run is reported (journal and trace
/// included): the first violation, at its own step. Should the inline run pass, that is a
/// determinism bug, reported as a violation of its own.
pub fn run_scenario_ticking(
    sc: &Scenario,
    log: Option<&Path>,
    trace: Option<&Path>,
    ticker: &Ticker,
    offload: Offload,
) -> Result<RunResult, SimError> {
    run_counting_faults(sc, log, trace, ticker, offload).map(|(r, _)| r)
}

/// Timed faults a run injected, by kind.
type FaultCounts = BTreeMap<&'static str, u64>;

/// [`run_scenario_ticking`], with the faults the reported run injected.
fn run_counting_faults(
    sc: &Scenario,
    log: Option<&Path>,
    trace: Option<&Path>,
    ticker: &Ticker,
    offload: Offload,
) -> Result<(RunResult, FaultCounts), SimError> {
    let first = run_once(sc, log, trace, ticker, offload)?;
    let Some(seen) = first
        .0
        .violation
        .as_ref()
        .filter(|_| offload == Offload::Background)
    else {
        return Ok(first);
    };
    let (mut again, faults) = run_once(sc, log, trace, &ticker.rerun(), Offload::Inline)?;
    if again.violation.is_none() {
        again.violation = Some(Violation {
            invariant: "determinism".into(),
            step: again.events,
            message: format!(
                "the run failed with its checks on a helper thread ({}: {}) but passed inline",
                seen.invariant, seen.message
            ),
            last_events: Vec::new(),
        });
    }
    Ok((again, faults))
}

fn run_once(
    sc: &Scenario,
    log: Option<&Path>,
    trace: Option<&Path>,
    ticker: &Ticker,
    offload: Offload,
) -> Result<(RunResult, FaultCounts), SimError> {
    let plants = plants_from(sc.plant.as_deref())?;
    let mut sink = FileSink::open(log, trace, ticker)?;
    let result = World::new(sc.clone(), plants, offload, &mut sink)
        .map_err(SimError::World)?
        .run();
    let faults = sink.close()?;
    Ok((result, faults))
}

/// The runner's closure: one seed of the command line's configuration, its simulated time
/// reported to `ticker`. Checks and the log's fold run on a helper thread when fewer worlds
/// run at once than there are cores.
pub fn run_seed(cfg: &SimConfig, seed: u64, ticker: &Ticker) -> SeedOutcome {
    let at_once = usize::try_from(cfg.seeds().len())
        .map_or(cfg.jobs().get(), |seeds| seeds.min(cfg.jobs().get()));
    let run = scenario_for(cfg, seed).and_then(|sc| {
        run_counting_faults(
            &sc,
            cfg.log_path(seed).as_deref(),
            cfg.trace_path(seed).as_deref(),
            ticker,
            Offload::for_jobs(at_once),
        )
    });
    match run {
        Ok((r, faults)) => SeedOutcome {
            seed,
            events: r.events,
            simulated: r.simulated,
            state_hash: hash_bytes(&r.state_hash),
            violation: r.violation,
            marks: r.marks,
            faults,
        },
        Err(e) => SeedOutcome {
            seed,
            events: 0,
            simulated: Duration::ZERO,
            state_hash: [0; 32],
            violation: Some(Violation {
                invariant: "setup".into(),
                step: 0,
                message: format!("{e}"),
                last_events: Vec::new(),
            }),
            marks: Default::default(),
            faults: Default::default(),
        },
    }
}

fn hash_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

/// Writes the journal and trace of one run, remembering the first I/O error, and counts
/// the faults injected (for the reports, whether or not a trace is written).
struct FileSink<'t> {
    log: Option<(String, BufWriter<File>)>,
    trace: Option<(String, TraceWriter<BufWriter<File>>)>,
    error: Option<SimError>,
    ticker: &'t Ticker,
    faults: FaultCounts,
}

fn create(path: &Path) -> Result<BufWriter<File>, SimError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| SimError::Output {
            path: path.display().to_string(),
            source,
        })
}

impl<'t> FileSink<'t> {
    fn open(
        log: Option<&Path>,
        trace: Option<&Path>,
        ticker: &'t Ticker,
    ) -> Result<Self, SimError> {
        let log = log
            .map(|p| create(p).map(|w| (p.display().to_string(), w)))
            .transpose()?;
        let trace = match trace {
            Some(p) => {
                let origin = Instant::from_unix_secs(EPOCH_SECS);
                let w = TraceWriter::new(create(p)?, origin, "gauntlet sim").map_err(|source| {
                    SimError::Output {
                        path: p.display().to_string(),
                        source,
                    }
                })?;
                Some((p.display().to_string(), w))
            }
            None => None,
        };
        Ok(Self {
            log,
            trace,
            error: None,
            ticker,
            faults: FaultCounts::new(),
        })
    }

    fn note(&mut self, path: &str, r: io::Result<()>) {
        if let Err(source) = r
            && self.error.is_none()
        {
            self.error = Some(SimError::Output {
                path: path.to_string(),
                source,
            });
        }
    }

    /// Flushes the files; the faults counted on success.
    fn close(mut self) -> Result<FaultCounts, SimError> {
        if let Some((path, mut w)) = self.log.take() {
            let r = w.flush();
            self.note(&path, r);
        }
        if let Some((path, w)) = self.trace.take() {
            let r = w.finish().and_then(|mut f| f.flush());
            self.note(&path, r);
        }
        self.error.map_or(Ok(self.faults), Err)
    }
}

impl Sink for FileSink<'_> {
    fn journal(&mut self, line: &JournalLine) {
        if let Some((path, w)) = &mut self.log {
            let r = writeln!(w, "{}", line.render());
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn entry(&mut self, entry: &LogEntry) {
        // Only a sink that writes pays for the owned line.
        if self.log.is_some() {
            self.journal(&JournalLine::Entry(entry.clone()));
        }
        // A session's spans are drawn on its connection's track: name the track after the
        // connection and its user, from the log, as the session opens.
        if let Event::SessionOpened { conn, identity, .. } = &entry.event
            && let Some((path, w)) = &mut self.trace
        {
            let r = w.name_track(conn.get(), &format!("{conn} {}", identity.user));
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn span(&mut self, track: u64, name: &str, start: Instant, end: Instant) {
        if let Some((path, w)) = &mut self.trace {
            let r = w.complete(start, end.saturating_since(start), track, name, &[]);
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn instant(&mut self, track: u64, name: &str, at: Instant) {
        if let Some((path, w)) = &mut self.trace {
            let r = w.instant(at, track, TraceScope::Global, name, &[]);
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn fault(&mut self, fault: &Fault, at: Instant) {
        let n = self.faults.entry(fault.name()).or_default();
        *n = n.saturating_add(1);
        if let Some((path, w)) = &mut self.trace {
            let args = fault.args();
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = w.instant(at, WORLD_TRACK, TraceScope::Global, fault.name(), &args);
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn stats(&mut self, s: &GatewayStats, at: Instant) {
        if let Some((path, w)) = &mut self.trace {
            let r = w.gateway_counters(at, s);
            let path = path.clone();
            self.note(&path, r);
        }
    }

    fn progress(&mut self, elapsed: Duration) {
        self.ticker.simulated(elapsed);
    }

    fn keeps_spans(&self) -> bool {
        self.trace.is_some()
    }
}
