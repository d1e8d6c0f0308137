//! The five critical events: per run, `agent_started` first, tool calls paired, exactly one
//! terminal event last, nothing after it; and (liveness) every run ends.
//!
//! Read from the gateway's log, the authoritative order of each user's stream.

use gauntlet_core::{Event, RunId, StreamKind};

use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::FrameView;
use crate::user_map::IdMap;

#[derive(Default)]
struct RunTrack {
    started: bool,
    ended: bool,
    open_tools: Vec<String>,
}

#[derive(Default)]
pub(crate) struct FiveEventsChecker {
    /// Every run seen (lookup-only: `finish` reports the smallest unended id, not hash order).
    runs: IdMap<RunId, RunTrack>,
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
            let Event::StreamAppended { entry, .. } = &e.event else {
                continue;
            };
            let Some(run) = entry.run else { continue };
            let kind = entry.kind;
            let t = self.runs.entry(run).or_default();
            let fail = |m: String| Err(Failure::new("five_events", format!("{run}: {m}")));
            if t.ended {
                return fail(format!("{} after the terminal event", kind.as_str()));
            }
            if !t.started && kind != StreamKind::AgentStarted {
                return fail(format!("{} before agent_started", kind.as_str()));
            }
            // Only tool events need the payload, and only its `execution_id`.
            let view = || FrameView::parse(&entry.frame);
            match kind {
                StreamKind::AgentStarted if t.started => {
                    return fail("a second agent_started".into());
                }
                StreamKind::AgentStarted => t.started = true,
                StreamKind::ToolExecuting => {
                    t.open_tools
                        .push(view().execution_id().unwrap_or("").to_string());
                }
                StreamKind::ToolCompleted => {
                    let view = view();
                    let exec = view.execution_id().unwrap_or("");
                    let Some(i) = t.open_tools.iter().position(|x| x == exec) else {
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
                    t.ended = true;
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
        // The smallest unended run, as a walk in id order would find first.
        let unended = self.runs.iter().filter(|(_, t)| !t.ended).map(|(r, _)| r);
        match unended.min() {
            Some(run) => Err(Failure::new(
                self.name(),
                format!("{run} never ended (liveness)"),
            )),
            None => Ok(()),
        }
    }
}
