//! What running a seed yields: the deterministic [`SeedOutcome`] (events, simulated time,
//! state hash, the first [`Violation`]), the [`SeedResult`] that adds wall time, and the
//! [`Summary`] of a whole run, with the coverage marks of its seeds.
//!
//! The world raises a [`Violation`] and the reports render these types; this module holds
//! them so neither has to import the runner.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::checker::MARKED_RULES;

/// Failing seeds remembered in a [`Summary`]; the count is always exact.
pub const MAX_FAILED_SEEDS: usize = 1000;

/// An invariant violation found in one seed's run, as the reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant's name (its checker module, e.g. `isolation`).
    pub invariant: String,
    /// The step (popped event number) at which the checker failed.
    pub step: u64,
    /// What was wrong, in one line.
    pub message: String,
    /// The last events before the failure, oldest first (reports show at most
    /// [`crate::report::MAX_LAST_EVENTS`]).
    pub last_events: Vec<String>,
}

/// The deterministic result of one seed's run: a pure function of the seed and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time covered.
    pub simulated: Duration,
    /// Hash of the final gateway state (SHA-256).
    pub state_hash: [u8; 32],
    /// The first violation, if any invariant failed.
    pub violation: Option<Violation>,
    /// Coverage marks: how often each protocol rule's path was seen to run, by rule id
    /// (observations only: a pure function of the seed and config, like everything here).
    pub marks: BTreeMap<&'static str, u64>,
    /// Timed faults injected, by [`crate::faults::Fault::name`] (deterministic too).
    pub faults: BTreeMap<&'static str, u64>,
}

impl SeedOutcome {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

/// A seed's outcome plus the wall time it took (which is not deterministic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedResult {
    /// The deterministic part.
    pub outcome: SeedOutcome,
    /// Wall-clock time of the run.
    pub wall: Duration,
}

/// Totals over a run, in seed order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds where every invariant held.
    pub passed: u64,
    /// Seeds with a violation.
    pub failed: u64,
    /// The first [`MAX_FAILED_SEEDS`] failing seeds, ascending.
    pub failed_seeds: Vec<u64>,
    /// Events over all seeds.
    pub events: u64,
    /// Virtual time over all seeds.
    pub simulated: Duration,
    /// Wall time of the whole run (not the sum over seeds: threads overlap).
    pub wall: Duration,
    /// The process's peak resident memory in bytes when the run ended, for sizing a machine
    /// (with several jobs it covers every world that ran at once); `None` where the OS does
    /// not say (it is read from Linux's `/proc/self/status`).
    pub peak_rss: Option<u64>,
    /// Coverage marks summed over the seeds, by rule id.
    pub marks: BTreeMap<&'static str, u64>,
    /// Timed faults injected, summed over the seeds, by kind.
    pub faults: BTreeMap<&'static str, u64>,
}

impl Summary {
    pub(crate) fn add(&mut self, r: &SeedOutcome) {
        self.seeds += 1;
        self.events = self.events.saturating_add(r.events);
        self.simulated = self.simulated.saturating_add(r.simulated);
        for (rule, n) in &r.marks {
            let total = self.marks.entry(rule).or_default();
            *total = total.saturating_add(*n);
        }
        for (kind, n) in &r.faults {
            let total = self.faults.entry(kind).or_default();
            *total = total.saturating_add(*n);
        }
        if r.passed() {
            self.passed += 1;
        } else {
            self.failed += 1;
            if self.failed_seeds.len() < MAX_FAILED_SEEDS {
                self.failed_seeds.push(r.seed);
            }
        }
    }

    /// Counts `seed`, already added as `first`, as failed: it ran differently a second time.
    pub(crate) fn rerun_failed(&mut self, first: &SeedOutcome) {
        if !first.passed() {
            return;
        }
        self.passed = self.passed.saturating_sub(1);
        self.failed += 1;
        // The first seed of a run is its lowest.
        if self.failed_seeds.len() < MAX_FAILED_SEEDS {
            self.failed_seeds.insert(0, first.seed);
        }
    }

    /// The rules of [`MARKED_RULES`] that no seed of the run marked, in that list's order.
    pub fn unmarked(&self) -> Vec<&'static str> {
        MARKED_RULES
            .iter()
            .copied()
            .filter(|rule| !self.marks.contains_key(rule))
            .collect()
    }

    /// Events per wall-clock second (integer, 0 for a zero-length run).
    pub fn events_per_sec(&self) -> u64 {
        let nanos = self.wall.as_nanos();
        if nanos == 0 {
            return 0;
        }
        u64::try_from(u128::from(self.events) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
    }
}
