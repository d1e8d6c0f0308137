//! What `gauntlet load --trace` records: a track per simulated user (named after it), with a
//! `handshake` span per connection attempt (its credential and outcome), a `connection` span
//! per accepted connection (from the connect to the close), a `round trip` span per message
//! from its send to the live `agent_started` of the run it started, and instants for what
//! went wrong (a handshake refused, a connect that failed, the server closing, a violation).
//!
//! Users run as concurrent tasks, so each keeps its own events ([`UserTrace`]) and the file
//! is written once the run is over: no lock and no disk write while latency is measured.
//! Memory is bounded by one [`Budget`] all users draw from, the trace's event cap; an event
//! past it is counted, and the trace ends with the `trace truncated` note at the first one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gauntlet_core::Instant;
use gauntlet_core::trace::{TraceScope, conn_track};

use super::trace_file::{Dropped, TraceFile, TraceOptions};
use super::wall_clock;

/// The name of each accepted connection's span.
pub(crate) const CONNECTION_SPAN: &str = "connection";
/// The name of each message's span, from its send to its run's live `agent_started`.
const ROUND_TRIP_SPAN: &str = "round trip";
/// Messages awaiting their `agent_started` per connection; past it the oldest is forgotten
/// (a server that never answers must not grow this).
const MAX_PENDING_ROUND_TRIPS: usize = 64;

/// The events every user together may still keep.
pub(crate) struct Budget(AtomicU64);

impl Budget {
    pub(crate) fn new(max_events: u64) -> Arc<Self> {
        Arc::new(Self(AtomicU64::new(max_events)))
    }

    /// Takes one event's place; false when none is left.
    fn take(&self) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// One recorded event, written when the run is over.
enum Mark {
    Span {
        name: &'static str,
        start: Instant,
        end: Instant,
        args: Vec<(&'static str, String)>,
    },
    Point {
        name: String,
        at: Instant,
        args: Vec<(&'static str, String)>,
    },
}

/// One user's trace events; records nothing when the load is not traced.
pub(crate) struct UserTrace {
    budget: Option<Arc<Budget>>,
    marks: Vec<Mark>,
    /// When the first event the budget refused happened, and how many it refused.
    first_dropped: Option<Instant>,
    dropped: u64,
    /// Send times of messages awaiting their run's `agent_started`, oldest first.
    pending: VecDeque<Instant>,
}

impl UserTrace {
    /// A trace drawing on `budget`, or (with `None`) one that records nothing.
    pub(crate) fn new(budget: Option<Arc<Budget>>) -> Self {
        Self {
            budget,
            marks: Vec::new(),
            first_dropped: None,
            dropped: 0,
            pending: VecDeque::new(),
        }
    }

    fn keep(&mut self, at: Instant, mark: impl FnOnce() -> Mark) {
        let Some(budget) = &self.budget else {
            return;
        };
        if budget.take() {
            self.marks.push(mark());
        } else {
            self.first_dropped.get_or_insert(at);
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// A span `name` from `start` to now.
    pub(crate) fn span(
        &mut self,
        name: &'static str,
        start: Instant,
        args: &[(&'static str, &str)],
    ) {
        if self.budget.is_none() {
            return;
        }
        let end = wall_clock();
        self.keep(end, || Mark::Span {
            name,
            start,
            end,
            args: owned(args),
        });
    }

    /// An instant `name` now.
    pub(crate) fn point(&mut self, name: &str, args: &[(&'static str, &str)]) {
        if self.budget.is_none() {
            return;
        }
        let at = wall_clock();
        self.keep(at, || Mark::Point {
            name: name.to_owned(),
            at,
            args: owned(args),
        });
    }

    /// A `user_message` went out (its send began at `at`): its round trip starts.
    pub(crate) fn sent(&mut self, at: Instant) {
        if self.budget.is_none() {
            return;
        }
        if self.pending.len() == MAX_PENDING_ROUND_TRIPS {
            self.pending.pop_front();
        }
        self.pending.push_back(at);
    }

    /// A live `agent_started` arrived: the oldest message awaiting one has its answer (runs
    /// start in the order their messages arrive).
    pub(crate) fn answered(&mut self) {
        if let Some(start) = self.pending.pop_front() {
            self.span(ROUND_TRIP_SPAN, start, &[]);
        }
    }

    /// The connection ended: what it still awaited will not be answered on it.
    pub(crate) fn disconnected(&mut self) {
        self.pending.clear();
    }
}

fn owned(args: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    args.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Writes the users' events (user `i` on track `i + 1`, named `names[i]`): the events the
/// cap dropped, or the file's path and error.
pub(crate) fn write(
    options: &TraceOptions,
    origin: Instant,
    target: &str,
    users: &[(String, UserTrace)],
) -> Result<Dropped, (std::path::PathBuf, std::io::Error)> {
    let mut file = TraceFile::create(options, origin, &format!("gauntlet load {target}"), "load")?;
    let mut first_dropped: Option<Instant> = None;
    let mut dropped: u64 = 0;
    for (i, (name, trace)) in (0u64..).zip(users) {
        let tid = conn_track(i);
        file.write(|w| {
            w.name_track(tid, name)?;
            for mark in &trace.marks {
                match mark {
                    Mark::Span {
                        name,
                        start,
                        end,
                        args,
                    } => w.complete(
                        *start,
                        end.saturating_since(*start),
                        tid,
                        name,
                        &borrowed(args),
                    )?,
                    Mark::Point { name, at, args } => {
                        w.instant(*at, tid, TraceScope::Track, name, &borrowed(args))?;
                    }
                }
            }
            Ok(())
        });
        if let Some(at) = trace.first_dropped {
            first_dropped = Some(first_dropped.map_or(at, |f| f.min(at)));
        }
        dropped = dropped.saturating_add(trace.dropped);
    }
    if let Some(at) = first_dropped {
        file.write(|w| w.truncate(at));
    }
    Ok(dropped.saturating_add(file.finish()?))
}

fn borrowed<'a>(args: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    args.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_share_one_budget_and_the_trace_says_where_it_ran_out() {
        let budget = Budget::new(3);
        let mut a = UserTrace::new(Some(budget.clone()));
        let mut b = UserTrace::new(Some(budget));
        a.point("one", &[("k", "v")]);
        b.point("two", &[]);
        a.sent(wall_clock());
        a.answered();
        b.point("four", &[]);
        b.point("five", &[]);
        assert_eq!((a.marks.len(), b.marks.len()), (2, 1));
        assert_eq!((a.dropped, b.dropped), (0, 2));

        let dir = std::env::temp_dir().join(format!("gauntlet-load-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = TraceOptions {
            path: dir.join("t.json"),
            max_events: 100,
        };
        let users = [("a".to_owned(), a), ("b".to_owned(), b)];
        let dropped = write(&options, wall_clock(), "ws://x/ws", &users).unwrap();
        let text = std::fs::read_to_string(&options.path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(dropped, 2);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "process_name",
                "thread_name",
                "thread_name",
                "thread_name",
                "one",
                ROUND_TRIP_SPAN,
                "thread_name",
                "two",
                gauntlet_core::trace::TRUNCATED
            ]
        );
    }

    #[test]
    fn an_untraced_user_keeps_nothing() {
        let mut t = UserTrace::new(None);
        t.point("x", &[]);
        t.sent(wall_clock());
        t.answered();
        assert!(t.marks.is_empty() && t.pending.is_empty() && t.dropped == 0);
    }
}
