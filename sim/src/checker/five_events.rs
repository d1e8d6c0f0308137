//! The five critical events: per run, `agent_started` first, tool calls paired, exactly one
//! terminal event last, nothing after it; and (liveness) every run ends.
//!
//! Read from the gateway's log, the authoritative order of each user's stream.

use std::borrow::Cow;

use gauntlet_core::{Event, RunId, StreamKind};

use super::seq_set::SeqSet;
use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::payload_execution_id;
use crate::id_map::IdMap;

#[derive(Default)]
struct RunTrack {
    started: bool,
    open_tools: Vec<String>,
}

#[derive(Default)]
pub(crate) struct FiveEventsChecker {
    /// Runs seen and not ended yet: a small table however long the run. Lookup-only: the
    /// liveness report names the lowest open run, found with an order-free `min`.
    open: IdMap<RunId, RunTrack>,
    /// Runs that ended, as id ranges: the gateway numbers runs in order and they end in
    /// roughly that order, so this is about one range per run still open.
    ended: SeqSet,
}

impl Checker for FiveEventsChecker {
    fn name(&self) -> &'static str {
        "five_events"
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        let Obs::Log(entries) = obs else {
            return Ok(());
        };
        for e in entries.iter() {
            // A broadcast carries no run (the fold refuses one that does), so only its
            // pattern is here: were it a run's step, it would count once, not per copy.
            let (Event::StreamAppended { entry, .. } | Event::StreamBroadcast { entry }) = &e.event
            else {
                continue;
            };
            let Some(run) = entry.run() else { continue };
            let kind = entry.kind();
            let fail = |m: String| Err(Failure::new("five_events", format!("{run}: {m}")));
            if self.ended.contains(run.get()) {
                return fail(format!("{} after the terminal event", kind.as_str()));
            }
            let t = self.open.entry(run).or_default();
            if !t.started && kind != StreamKind::AgentStarted {
                return fail(format!("{} before agent_started", kind.as_str()));
            }
            // Only tool events need the payload, and only its `execution_id`.
            let exec = || {
                payload_execution_id(&entry.payload_json())
                    .map(Cow::into_owned)
                    .unwrap_or_default()
            };
            match kind {
                StreamKind::AgentStarted if t.started => {
                    return fail("a second agent_started".into());
                }
                StreamKind::AgentStarted => t.started = true,
                StreamKind::ToolExecuting => {
                    t.open_tools.push(exec());
                }
                StreamKind::ToolCompleted => {
                    let exec = exec();
                    let Some(i) = t.open_tools.iter().position(|x| *x == exec) else {
                        return fail(format!("tool_completed {exec} without tool_executing"));
                    };
                    t.open_tools.remove(i);
                }
                StreamKind::AgentCompleted
                | StreamKind::AgentFailed
                | StreamKind::AgentCancelled => {
                    if kind == StreamKind::AgentCompleted && !t.open_tools.is_empty() {
                        return fail(format!(
                            "completed with tools still running: {:?}",
                            t.open_tools
                        ));
                    }
                    self.open.remove(&run);
                    self.ended.insert(run.get());
                }
                StreamKind::AgentThinking | StreamKind::SystemNotice => {}
            }
        }
        Ok(())
    }

    fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        if !end.quiescent {
            return Ok(());
        }
        match self.open.min_key() {
            Some(run) => Err(Failure::new(
                self.name(),
                format!("{run} never ended (liveness)"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use gauntlet_core::{Instant, LogEntry, LogSeq, Seq, StreamEntry, UserId};

    use super::*;

    fn appended(run: u64, kind: StreamKind, exec: &str) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(1),
            at: Instant::from_unix_secs(1),
            event: Event::StreamAppended {
                user: UserId::parse("u1").unwrap(),
                seq: Seq::new(1),
                entry: Arc::new(StreamEntry::new(
                    Instant::from_unix_secs(1),
                    kind,
                    None,
                    Some(RunId::new(run)),
                    serde_json::from_str(&format!(r#"{{"execution_id":"{exec}"}}"#)).unwrap(),
                )),
            },
        }
    }

    fn feed(c: &mut FiveEventsChecker, run: u64, kind: StreamKind) -> Result<(), Failure> {
        c.observe(&Obs::Log(&[appended(run, kind, "e1")]))
    }

    fn quiescent(c: &mut FiveEventsChecker) -> Result<(), Failure> {
        c.finish(&EndState {
            open: &BTreeMap::new(),
            quiescent: true,
        })
    }

    #[test]
    fn event_after_terminal_fails_even_once_many_later_runs_ended() {
        let mut c = FiveEventsChecker::default();
        for run in 1..=50 {
            feed(&mut c, run, StreamKind::AgentStarted).unwrap();
        }
        // Out of order, as runs of different users end.
        for run in (1..=50).rev() {
            feed(&mut c, run, StreamKind::AgentFailed).unwrap();
        }
        assert_eq!(quiescent(&mut c), Ok(()));
        let err = feed(&mut c, 17, StreamKind::AgentThinking).unwrap_err();
        assert_eq!(
            err.message,
            "run-17: agent_thinking after the terminal event"
        );
        let err = feed(&mut c, 3, StreamKind::AgentStarted).unwrap_err();
        assert_eq!(err.message, "run-3: agent_started after the terminal event");
    }

    #[test]
    fn unended_runs_report_the_smallest_id_at_quiescence() {
        let mut c = FiveEventsChecker::default();
        for run in [9, 4, 7, 2] {
            feed(&mut c, run, StreamKind::AgentStarted).unwrap();
        }
        feed(&mut c, 2, StreamKind::AgentCompleted).unwrap();
        feed(&mut c, 9, StreamKind::AgentCancelled).unwrap();
        let err = quiescent(&mut c).unwrap_err();
        assert_eq!(err.message, "run-4 never ended (liveness)");
    }

    #[test]
    fn completed_with_an_open_tool_fails_and_a_paired_tool_passes() {
        let mut c = FiveEventsChecker::default();
        feed(&mut c, 1, StreamKind::AgentStarted).unwrap();
        feed(&mut c, 1, StreamKind::ToolExecuting).unwrap();
        feed(&mut c, 1, StreamKind::ToolCompleted).unwrap();
        feed(&mut c, 1, StreamKind::AgentCompleted).unwrap();
        feed(&mut c, 2, StreamKind::AgentStarted).unwrap();
        feed(&mut c, 2, StreamKind::ToolExecuting).unwrap();
        let err = feed(&mut c, 2, StreamKind::AgentCompleted).unwrap_err();
        assert_eq!(
            err.message,
            r#"run-2: completed with tools still running: ["e1"]"#
        );
        let err = feed(&mut c, 5, StreamKind::ToolCompleted).unwrap_err();
        assert_eq!(err.message, "run-5: tool_completed before agent_started");
    }
}
