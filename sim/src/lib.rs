//! # gauntlet-sim
//!
//! The deterministic simulator and the library behind the `gauntlet` command-line tool.
//!
//! One `u64` seed determines a whole run: the seeded RNG ([`SimRng`]) forks named
//! sub-streams, a discrete-event [`Scheduler`] orders everything on virtual time
//! ([`gauntlet_core::Instant`]), and a simulated [`Network`] carries messages between nodes
//! with the faults of a [`FaultPlan`]. The simulation path never reads the wall clock or the
//! OS RNG and never spawns threads; only the drivers at the edge do (the seed [`runner`]
//! runs independent seeds on threads, the progress bar and the CLI's seed pick read the
//! wall clock), and nothing they observe reaches a seed's result.
//!
//! Main parts:
//! * [`rng`]: the only RNG; [`clock`]: the event queue;
//! * [`network`] and [`faults`]: links, latency, drop/duplicate/reorder/corrupt, partitions;
//! * [`config`]: validated run configuration; [`runner`]: seed ranges, shards, jobs;
//! * [`report`] (human and JSON Lines), [`trace`] (Chrome trace events), [`progress`].
#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod faults;
pub mod network;
pub mod progress;
pub mod report;
pub mod rng;
pub mod runner;
pub mod sim_args;
pub mod trace;

pub use clock::{ScheduleError, Scheduler};
pub use config::{
    ConfigError, DurationParseError, Faults, Output, SimConfig, SimConfigBuilder, format_duration,
    parse_duration,
};
pub use faults::{Fault, FaultPlan, FaultPlanError, FaultPreset, Latency, TimedFault};
pub use network::{
    Endpoint, Fate, LinkConfig, NetStats, Network, NodeId, Partition, Payload, Transmit,
};
pub use progress::Progress;
pub use report::{HumanReporter, JsonReporter, Reporter};
pub use rng::SimRng;
pub use runner::{
    RangeError, RunOptions, SeedOutcome, SeedRange, SeedResult, Shard, Summary, Violation,
    append_failure, run_seeds,
};
pub use sim_args::SimArgs;
pub use trace::{Scope, TraceWriter};
