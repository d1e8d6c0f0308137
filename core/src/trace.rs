//! Chrome trace-event JSON output (`--trace FILE.json`), which opens in Perfetto and
//! `chrome://tracing`.
//!
//! [`TraceWriter`] streams events straight to a [`Write`] as a JSON array (the "JSON Array
//! Format" of the Trace Event Format spec), so memory stays constant however long the run.
//! Conventions: one process (`pid` 1, named after the run), one track (`tid`, see
//! [`conn_track`]) per connection, named with a metadata event; runs are `B`/`E` or `X`
//! spans on their connection's track; faults (with their parameters as `args`) and violations
//! are `i` instants (global scope when they are not tied to one connection, on
//! [`WORLD_TRACK`]); sampled sizes (send-queue depth, outboxes) are `C` counter events, which
//! Perfetto draws as counter tracks. Timestamps are microseconds since the
//! run's start with nanosecond precision, printed with integer arithmetic so the file is
//! byte-identical across platforms.
//!
//! It lives in `core` because every driver writes the same format: the simulator (simulated
//! time), and `gauntlet serve` and `gauntlet load` (wall-clock time, since their start). It
//! writes to the caller's [`Write`] and never opens a file or reads a clock: times come in as
//! [`Instant`]s like everywhere else in this crate.
//!
//! A trace may be capped ([`TraceWriter::capped`]): a long-running server must not fill a
//! disk. The last event under the cap is a global [`TRUNCATED`] instant saying the trace
//! stops there (args: `max_events`); every event after it is counted
//! ([`TraceWriter::dropped`]), not written, so the file stays a valid JSON array.
//!
//! This module writes; it never decides what is traced.

use std::io::{self, Write};
use std::time::Duration;

use crate::gateway::GatewayStats;
use crate::time::Instant;

/// The track for events not tied to a connection (faults, violations, the scheduler).
pub const WORLD_TRACK: u64 = 0;

/// The track of connection number `conn` (shifted by one so it never lands on [`WORLD_TRACK`]).
pub fn conn_track(conn: u64) -> u64 {
    conn.saturating_add(1)
}
/// The single process id of a trace.
const PID: u32 = 1;

/// The name of the instant that marks where a capped trace stops.
pub const TRUNCATED: &str = "trace truncated";

/// TraceScope of an instant event: how much of the timeline it marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceScope {
    /// Only its own track.
    Track,
    /// The whole trace (a vertical line across every track).
    Global,
}

impl TraceScope {
    fn code(self) -> &'static str {
        match self {
            TraceScope::Track => "t",
            TraceScope::Global => "g",
        }
    }
}

/// Streams Chrome trace events to `out`.
#[derive(Debug)]
pub struct TraceWriter<W: Write> {
    out: W,
    origin: Instant,
    first: bool,
    events: u64,
    /// Most events written, the [`TRUNCATED`] note included.
    max_events: u64,
    /// Whether the [`TRUNCATED`] note is written: nothing more is.
    full: bool,
    /// Events refused since.
    dropped: u64,
    /// The latest time written, for a note that a timeless (metadata) event triggers.
    latest: Instant,
}

impl<W: Write> TraceWriter<W> {
    /// Starts a trace whose time zero is `origin`, naming the process `name`; no cap (a
    /// simulated run is bounded by its own duration).
    pub fn new(out: W, origin: Instant, name: &str) -> io::Result<Self> {
        Self::capped(out, origin, name, u64::MAX)
    }

    /// Starts a trace that writes at most `max_events` events (at least the two metadata
    /// events naming the process and the world track, and the note).
    pub fn capped(mut out: W, origin: Instant, name: &str, max_events: u64) -> io::Result<Self> {
        out.write_all(b"[\n")?;
        let mut w = Self {
            out,
            origin,
            first: true,
            events: 0,
            max_events: max_events.max(3),
            full: false,
            dropped: 0,
            latest: origin,
        };
        w.open("process_name", "M", None, WORLD_TRACK)?;
        w.args(&[("name", name)])?;
        w.close()?;
        w.name_track(WORLD_TRACK, "world")?;
        Ok(w)
    }

    /// Events written so far (including metadata and the [`TRUNCATED`] note).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Events not written because the cap was reached (0 when the trace is whole).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Ends the trace here: writes the [`TRUNCATED`] note at `at` (unless already written)
    /// and drops every later event. For a caller that kept events in a bounded buffer and
    /// had to let some go before they reached this writer.
    pub fn truncate(&mut self, at: Instant) -> io::Result<()> {
        if self.full {
            return Ok(());
        }
        self.full = true;
        let max = self.max_events.to_string();
        self.open(TRUNCATED, "i", Some(at), WORLD_TRACK)?;
        self.out.write_all(b",\"s\":\"g\"")?;
        self.args(&[("max_events", &max)])?;
        self.close()
    }

    /// Whether one more event fits. The last slot under the cap goes to the note: a full
    /// trace says so (at `at`, or the latest time written for a metadata event).
    fn admit(&mut self, at: Option<Instant>) -> io::Result<bool> {
        if !self.full && self.events.saturating_add(1) < self.max_events {
            return Ok(true);
        }
        self.truncate(at.unwrap_or(self.latest))?;
        self.dropped = self.dropped.saturating_add(1);
        Ok(false)
    }

    /// Names track `tid` (e.g. `conn 17 (user u3)`); a later name replaces it.
    pub fn name_track(&mut self, tid: u64, name: &str) -> io::Result<()> {
        if !self.admit(None)? {
            return Ok(());
        }
        self.open("thread_name", "M", None, tid)?;
        self.args(&[("name", name)])?;
        self.close()
    }

    /// Opens a span on `tid` at `at`; close it with [`TraceWriter::end`] on the same track.
    pub fn begin(
        &mut self,
        at: Instant,
        tid: u64,
        name: &str,
        args: &[(&str, &str)],
    ) -> io::Result<()> {
        if !self.admit(Some(at))? {
            return Ok(());
        }
        self.open(name, "B", Some(at), tid)?;
        self.args(args)?;
        self.close()
    }

    /// Closes the innermost open span on `tid`.
    pub fn end(&mut self, at: Instant, tid: u64) -> io::Result<()> {
        if !self.admit(Some(at))? {
            return Ok(());
        }
        self.open("", "E", Some(at), tid)?;
        self.close()
    }

    /// A complete span of length `dur` starting at `at`.
    pub fn complete(
        &mut self,
        at: Instant,
        dur: Duration,
        tid: u64,
        name: &str,
        args: &[(&str, &str)],
    ) -> io::Result<()> {
        if !self.admit(Some(at))? {
            return Ok(());
        }
        self.open(name, "X", Some(at), tid)?;
        let nanos = u64::try_from(dur.as_nanos()).unwrap_or(u64::MAX);
        write!(self.out, ",\"dur\":{}", micros(nanos))?;
        self.args(args)?;
        self.close()
    }

    /// A point event (a fault, a violation) on `tid`.
    pub fn instant(
        &mut self,
        at: Instant,
        tid: u64,
        scope: TraceScope,
        name: &str,
        args: &[(&str, &str)],
    ) -> io::Result<()> {
        if !self.admit(Some(at))? {
            return Ok(());
        }
        self.open(name, "i", Some(at), tid)?;
        write!(self.out, ",\"s\":\"{}\"", scope.code())?;
        self.args(args)?;
        self.close()
    }

    /// A counter sample at `at`: Perfetto draws one counter track per `name`, with a line
    /// per series of `values`.
    pub fn counter(&mut self, at: Instant, name: &str, values: &[(&str, u64)]) -> io::Result<()> {
        if !self.admit(Some(at))? {
            return Ok(());
        }
        self.open(name, "C", Some(at), WORLD_TRACK)?;
        self.out.write_all(b",\"args\":{")?;
        for (i, (k, v)) in values.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            serde_json::to_writer(&mut self.out, k)?;
            write!(self.out, ":{v}")?;
        }
        self.out.write_all(b"}")?;
        self.close()
    }

    /// The gateway's sizes as counter tracks: the deepest send queue so far, the outboxes,
    /// and the open sessions and runs. The same names in every driver's trace.
    pub fn gateway_counters(&mut self, at: Instant, s: &GatewayStats) -> io::Result<()> {
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.counter(
            at,
            "send queue depth (peak so far)",
            &[("frames", n(s.peak_queue_depth))],
        )?;
        self.counter(
            at,
            "outboxes",
            &[
                ("events held", n(s.outbox_events)),
                ("longest (peak so far)", n(s.peak_outbox_len)),
            ],
        )?;
        self.counter(
            at,
            "sessions and runs",
            &[
                ("connections", n(s.connections)),
                ("active runs", n(s.active_runs)),
            ],
        )
    }

    /// Ends the JSON array and returns the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"\n]\n")?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes the common head of an event object, left open for extra fields.
    fn open(&mut self, name: &str, ph: &str, at: Option<Instant>, tid: u64) -> io::Result<()> {
        if !self.first {
            self.out.write_all(b",\n")?;
        }
        self.first = false;
        self.events += 1;
        self.out.write_all(b"{\"name\":")?;
        serde_json::to_writer(&mut self.out, name)?;
        write!(self.out, ",\"ph\":\"{ph}\",\"pid\":{PID},\"tid\":{tid}")?;
        if let Some(at) = at {
            self.latest = self.latest.max(at);
            let nanos = at.as_nanos().saturating_sub(self.origin.as_nanos());
            write!(self.out, ",\"ts\":{}", micros(nanos))?;
        }
        Ok(())
    }

    fn args(&mut self, args: &[(&str, &str)]) -> io::Result<()> {
        if args.is_empty() {
            return Ok(());
        }
        self.out.write_all(b",\"args\":{")?;
        for (i, (k, v)) in args.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            serde_json::to_writer(&mut self.out, k)?;
            self.out.write_all(b":")?;
            serde_json::to_writer(&mut self.out, v)?;
        }
        self.out.write_all(b"}")
    }

    fn close(&mut self) -> io::Result<()> {
        self.out.write_all(b"}")
    }
}

/// Nanoseconds as a decimal microsecond count (`1234567` ns -> `1234.567`).
fn micros(nanos: u64) -> String {
    format!("{}.{:03}", nanos / 1000, nanos % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn t(ns: u64) -> Instant {
        Instant::from_nanos(1_700_000_000_000_000_000 + ns)
    }

    fn sample() -> (String, u64) {
        let mut w = TraceWriter::new(Vec::new(), t(0), "seed 7").unwrap();
        w.name_track(3, "conn 3 \"alice\"").unwrap();
        w.begin(t(1_500), 3, "run r1", &[("thread", "t1")]).unwrap();
        w.end(t(2_000_250), 3).unwrap();
        w.complete(t(10_000), Duration::from_micros(5), 3, "run r2", &[])
            .unwrap();
        w.instant(
            t(42_000),
            WORLD_TRACK,
            TraceScope::Global,
            "partition",
            &[("to", "client3")],
        )
        .unwrap();
        w.counter(t(50_000), "outbox events", &[("events", 12), ("peak", 30)])
            .unwrap();
        let events = w.events();
        (String::from_utf8(w.finish().unwrap()).unwrap(), events)
    }

    #[test]
    fn trace_is_a_json_array_of_events() {
        let (text, count) = sample();
        let v: Value = serde_json::from_str(&text).unwrap();
        let events = v.as_array().unwrap();
        assert_eq!(events.len() as u64, count);
        assert_eq!(count, 8);
        assert!(events.iter().all(|e| e["pid"] == 1));
    }

    #[test]
    fn trace_metadata_names_process_and_tracks() {
        let (text, _) = sample();
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = v.as_array().unwrap();
        assert_eq!(e[0]["name"], "process_name");
        assert_eq!(e[0]["args"]["name"], "seed 7");
        assert_eq!(e[1]["ph"], "M");
        assert_eq!(
            (e[1]["tid"].as_u64(), e[1]["args"]["name"].as_str()),
            (Some(0), Some("world"))
        );
        assert_eq!(e[2]["args"]["name"], "conn 3 \"alice\"");
        assert_eq!(e[2]["tid"], 3);
    }

    #[test]
    fn trace_spans_and_instants_have_relative_microsecond_times() {
        let (text, _) = sample();
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = v.as_array().unwrap();
        assert_eq!(e[3]["ph"], "B");
        assert_eq!(e[3]["ts"].as_f64(), Some(1.5));
        assert_eq!(e[3]["args"]["thread"], "t1");
        assert_eq!(e[4]["ph"], "E");
        assert_eq!(e[4]["ts"].as_f64(), Some(2000.25));
        assert_eq!(e[5]["ph"], "X");
        assert_eq!(e[5]["ts"].as_f64(), Some(10.0));
        assert_eq!(e[5]["dur"].as_f64(), Some(5.0));
        assert_eq!(e[6]["ph"], "i");
        assert_eq!(e[6]["s"], "g");
        assert_eq!(e[6]["ts"].as_f64(), Some(42.0));
        assert_eq!(e[7]["ph"], "C");
        assert_eq!(e[7]["name"], "outbox events");
        assert_eq!(e[7]["tid"], WORLD_TRACK);
        assert_eq!(e[7]["ts"].as_f64(), Some(50.0));
        assert_eq!(
            (
                e[7]["args"]["events"].as_u64(),
                e[7]["args"]["peak"].as_u64()
            ),
            (Some(12), Some(30))
        );
        // Integer formatting: exactly three decimals, no exponent.
        assert!(text.contains("\"ts\":2000.250"));
    }

    #[test]
    fn conn_tracks_never_collide_with_world_track() {
        assert_ne!(conn_track(0), WORLD_TRACK);
        assert_ne!(conn_track(0), conn_track(1));
        assert_eq!(conn_track(u64::MAX), u64::MAX);
    }

    #[test]
    fn capped_trace_ends_with_the_note_and_counts_what_it_dropped() {
        let mut w = TraceWriter::capped(Vec::new(), t(0), "serve", 6).unwrap();
        for i in 0..10u64 {
            w.instant(t(i * 1_000), 3, TraceScope::Track, "tick", &[])
                .unwrap();
        }
        w.name_track(3, "late").unwrap();
        assert_eq!((w.events(), w.dropped()), (6, 8));
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = v.as_array().unwrap();
        assert_eq!(e.len(), 6);
        let last = &e[5];
        assert_eq!(
            (last["name"].as_str(), last["s"].as_str()),
            (Some(TRUNCATED), Some("g"))
        );
        assert_eq!(last["args"]["max_events"], "6");
        assert_eq!(last["ts"].as_f64(), Some(3.0));
    }

    #[test]
    fn truncate_writes_one_note_then_drops_everything() {
        let mut w = TraceWriter::new(Vec::new(), t(0), "load").unwrap();
        w.truncate(t(7_000)).unwrap();
        w.truncate(t(8_000)).unwrap();
        w.counter(t(9_000), "c", &[("v", 1)]).unwrap();
        assert_eq!((w.events(), w.dropped()), (3, 1));
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text.matches(TRUNCATED).count(), 1, "{text}");
    }

    #[test]
    fn gateway_counters_are_three_counter_tracks() {
        let mut w = TraceWriter::new(Vec::new(), t(0), "serve").unwrap();
        let stats = GatewayStats {
            connections: 4,
            peak_queue_depth: 9,
            ..GatewayStats::default()
        };
        w.gateway_counters(t(1_000), &stats).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        let e = v.as_array().unwrap();
        assert!(e[2..].iter().all(|c| c["ph"] == "C"));
        assert_eq!(e[2]["args"]["frames"], 9);
        assert_eq!(e[4]["args"]["connections"], 4);
    }

    #[test]
    fn trace_same_events_same_bytes() {
        assert_eq!(sample().0, sample().0);
    }
}
