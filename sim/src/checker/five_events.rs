//! The five critical events: per run, `agent_started` first, tool calls paired, exactly one
//! terminal event last, nothing after it; and (liveness) every run ends.
//!
//! Read from the gateway's log, the authoritative order of each user's stream.

use std::collections::BTreeMap;

use gauntlet_core::{Event, RunId};

use super::{Checker, EndState, Failure, Obs};
use crate::frame_view::FrameView;

#[derive(Default)]
struct RunTrack {
    started: bool,
    ended: bool,
    open_tools: Vec<String>,
}

#[derive(Default)]
pub(crate) struct FiveEventsChecker {
    runs: BTreeMap<RunId, RunTrack>,
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
            let kind = entry.kind.as_str();
            let t = self.runs.entry(run).or_default();
            let fail = |m: String| Err(Failure::new("five_events", format!("{run}: {m}")));
            if t.ended {
                return fail(format!("{kind} after the terminal event"));
            }
            if !t.started && kind != "agent_started" {
                return fail(format!("{kind} before agent_started"));
            }
            // Only tool events need the payload, and only its `execution_id`.
            let exec = || {
                FrameView::parse(&entry.frame)
                    .execution_id()
                    .unwrap_or("")
                    .to_string()
            };
            match kind {
                "agent_started" if t.started => return fail("a second agent_started".into()),
                "agent_started" => t.started = true,
                "tool_executing" => t.open_tools.push(exec()),
                "tool_completed" => {
                    let exec = exec();
                    let Some(i) = t.open_tools.iter().position(|x| *x == exec) else {
                        return fail(format!("tool_completed {exec} without tool_executing"));
                    };
                    t.open_tools.remove(i);
                }
                "agent_completed" | "agent_failed" | "agent_cancelled" => {
                    if kind == "agent_completed" && !t.open_tools.is_empty() {
                        return fail(format!(
                            "completed with tools still running: {:?}",
                            t.open_tools
                        ));
                    }
                    t.ended = true;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn finish(&mut self, end: &EndState<'_>) -> Result<(), Failure> {
        if !end.quiescent {
            return Ok(());
        }
        match self.runs.iter().find(|(_, t)| !t.ended) {
            Some((run, _)) => Err(Failure::new(
                self.name(),
                format!("{run} never ended (liveness)"),
            )),
            None => Ok(()),
        }
    }
}
