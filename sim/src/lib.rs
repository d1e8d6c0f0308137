//! # gauntlet-sim
//!
//! The deterministic simulator and the library behind the `gauntlet` command-line tool.
//!
//! One `u64` seed determines a whole run: the seeded RNG ([`SimRng`]) forks named
//! sub-streams, a discrete-event [`Scheduler`] orders everything on virtual time
//! ([`gauntlet_core::Instant`]), and a simulated [`Network`] carries messages between nodes
//! with the faults of a [`FaultPlan`]. The simulation path never reads the wall clock or the
//! OS RNG, and its one thread beside the world's, the checks and the log's fold
//! ([`Offload::Background`]), computes a pure function of what it is handed, is read only
//! after it has taken all of it, and never decides a report (a failing seed is run again
//! on one thread). The drivers at the edge do the rest: [`run_seeds`] runs independent
//! seeds on threads and times them, the [`Progress`] bar reads the wall clock, and
//! [`relaunch`] starts a process; nothing they observe reaches a seed's [`SeedOutcome`].
//!
//! This crate does not implement any gateway logic: it drives `gauntlet-core`'s gateway. It
//! has no command line either: the `gauntlet` binary (package `gauntlet-cli`) parses flags into
//! a [`SimConfig`] and calls [`run`].
//!
//! Main parts:
//! * `rng`: the only RNG ([`SimRng`]); `clock`: the event queue ([`Scheduler`]);
//! * `network` and `faults`: links, latency, drop, duplicate, reorder, corruption,
//!   partitions ([`Network`]), and the plan of every fault ([`FaultPlan`], [`FaultPreset`]);
//! * `config`: the validated run configuration ([`SimConfig`]);
//! * `seeds`: seed ranges and shards ([`SeedRange`], [`Shard`]); `runner`: jobs and ordered
//!   results ([`run_seeds`]); `outcome`: what a seed yields ([`SeedOutcome`], [`Violation`]);
//! * `report` (human and JSON Lines, [`Reporter`]), `progress` (the stderr bar,
//!   [`Progress`]); the trace format ([`TraceWriter`]) is `gauntlet_core::trace`, shared
//!   with the server's `--trace`, and re-exported here.
#![forbid(unsafe_code)]

mod checker;
mod clock;
mod config;
mod faults;
mod frame_view;
mod fuzz_scenario;
mod id_map;
mod network;
mod outcome;
mod progress;
pub mod relaunch;
mod report;
mod rng;
mod runner;
mod scenario;
mod seeds;
mod shrink;
mod simulate;
mod witness;
mod workload;
mod world;

pub use checker::MARKED_RULES;
pub use clock::{ScheduleError, Scheduler};
pub use config::{
    ConfigError, DEFAULT_FAILURES_FILE, DurationParseError, Faults, MAX_DURATION, MAX_USERS,
    Output, SEED_PLACEHOLDER, SimConfig, SimConfigBuilder, format_duration, parse_duration,
};
pub use faults::{
    Fault, FaultPlan, FaultPlanError, FaultPreset, MAX_FAULT_MS, MAX_RATE_PER_HOUR, MAX_TIMELINE,
    TimedFault,
};
pub use fuzz_scenario::{
    FUZZ_MAX_DURATION_MS, FUZZ_MAX_USERS, fuzz_scenario, fuzz_scenario_floor, scenario_from_bytes,
};
pub use gauntlet_core::trace::{TraceScope, TraceWriter, WORLD_TRACK, conn_track};
pub use network::{
    Endpoint, Fate, Latency, LinkConfig, MAX_PARTITIONS, NetStats, Network, NetworkError, NodeId,
    Partition, Payload, Transmit, corrupt,
};
pub use outcome::{MAX_FAILED_SEEDS, SeedOutcome, SeedResult, Summary, Violation};
pub use progress::{Progress, Ticker};
pub use report::{HumanReporter, JsonReporter, MAX_LAST_EVENTS, Reporter, SCHEMA, hex};
pub use rng::SimRng;
pub use runner::{RunError, append_failure, peak_rss, run, run_seeds};
pub use scenario::{Mix, Op, Scenario};
pub use seeds::{MAX_JOBS, RangeError, RunOptions, SeedRange, Shard};
pub use shrink::{ShrinkError, Shrunk, shrink};
pub use simulate::{
    DEFAULT_THINK_MS, SimError, plants_from, run_scenario, run_scenario_ticking, run_seed,
    scenario_for,
};
pub use witness::Offload;
pub use world::{
    EPOCH_SECS, LIVENESS, NoSink, RunResult, SIM_ORIGIN, SIM_ORIGIN_LIST_SHARE, SIM_SEND_QUEUE,
    SIM_SMALL_OUTBOX, SIM_SMALL_OUTBOX_SHARE, SIM_TIGHT_CACHED_TOKENS, SIM_TIGHT_CONNECTIONS,
    SIM_TIGHT_OAUTH_ENTRIES, SIM_TIGHT_SHARE, SIM_TIGHT_TRACKED_IPS, Sink, World, gateway_config,
};
