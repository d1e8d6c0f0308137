//! Where what leaves a simulated run goes: the journal, trace spans and points, progress.
//! A sink only receives; nothing it does may reach the run.

use std::time::Duration;

use gauntlet_core::{Instant, JournalLine, LogEntry};

/// Hooks for outputs that leave the simulation (log and trace files).
pub trait Sink {
    /// A journal header or footer line.
    fn journal(&mut self, line: &JournalLine);
    /// A journal entry line, borrowed: a sink that keeps nothing must not cost a clone.
    fn entry(&mut self, entry: &LogEntry);
    /// A span on a track (track 0 is the world, others are connections).
    fn span(&mut self, track: u64, name: &str, start: Instant, end: Instant);
    /// A point event (a violation) on a track.
    fn instant(&mut self, track: u64, name: &str, at: Instant);
    /// A timed fault was injected: by default an instant on the world's track named after
    /// it; a sink may also count them for the run's summary or trace its parameters.
    fn fault(&mut self, fault: &crate::faults::Fault, at: Instant) {
        self.instant(0, fault.name(), at);
    }
    /// The gateway's sizes, sampled every few thousand gateway calls (what the bounds
    /// checker reads), for counter tracks. Nothing a sink does with them may reach the run.
    fn stats(&mut self, _stats: &gauntlet_core::GatewayStats, _at: Instant) {}
    /// Whether this sink keeps spans. Asked once per run: a world whose sink keeps none
    /// does not track open runs and sessions or name their spans.
    fn keeps_spans(&self) -> bool {
        true
    }
    /// The run has simulated `elapsed` so far (every few tens of thousands of steps), for a
    /// progress bar. Nothing a sink does with it may reach the run.
    fn progress(&mut self, _elapsed: Duration) {}
}

/// A sink that keeps nothing.
pub struct NoSink;

impl Sink for NoSink {
    fn journal(&mut self, _line: &JournalLine) {}
    fn entry(&mut self, _entry: &LogEntry) {}
    fn span(&mut self, _track: u64, _name: &str, _start: Instant, _end: Instant) {}
    fn instant(&mut self, _track: u64, _name: &str, _at: Instant) {}
    fn keeps_spans(&self) -> bool {
        false
    }
}
