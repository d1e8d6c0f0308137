//! The seeded agent-run model: what a run emits and when (docs/protocol.md section 13).
//!
//! A run's whole plan is a pure function of (gateway seed, run id, task), so the event log
//! only needs `RunStarted` to let a replay or a restarted gateway continue the run exactly
//! where it was. The model never touches the outbox or the clock; the gateway schedules
//! the steps and appends what they emit.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::AgentConfig;
use crate::ids::RunId;
use crate::payload::Payload;
use crate::protocol::StreamKind;

/// The agent name every run reports.
pub const AGENT_NAME: &str = "gauntlet-agent";
const TOOLS: [&str; 4] = ["search", "calculator", "code_runner", "retriever"];
/// Longest task text echoed into `agent_started` (the rest is cut, on a char boundary).
const MAX_TASK_ECHO: usize = 256;

/// One event a run will emit, `delay` after the previous one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentStep {
    /// What the event is.
    pub kind: StreamKind,
    /// Time after the previous step (zero for `agent_started`).
    pub delay: Duration,
    /// What the payload says; rendered by [`AgentStep::payload`] when the step runs.
    body: StepBody,
}

/// The facts a step's payload is rendered from. A plan holds these rather than payloads:
/// every fold of the log (the live gateway's, a checkpoint's, a replay's) plans each run,
/// but only the gateway that runs a step renders its payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
enum StepBody {
    Started {
        task: String,
    },
    Thinking {
        thought: u32,
    },
    ToolExecuting {
        tool: &'static str,
        tool_no: u32,
    },
    ToolCompleted {
        tool: &'static str,
        tool_no: u32,
        duration_ms: u64,
        success: bool,
    },
    Failed,
    Completed {
        tools: u32,
    },
}

impl AgentStep {
    /// The step's payload in run `run` (the plan's own run).
    pub fn payload(&self, run: RunId) -> Payload {
        match &self.body {
            StepBody::Started { task } => Payload::object()
                .str("agent_name", AGENT_NAME)
                .str("task", task)
                .finish(),
            StepBody::Thinking { thought } => Payload::object()
                .str(
                    "reasoning",
                    &format!("step {thought}: considering the request"),
                )
                .finish(),
            StepBody::ToolExecuting { tool, tool_no } => Payload::object()
                .object(
                    "args",
                    &Payload::object()
                        .str("query", &format!("q{tool_no}"))
                        .finish(),
                )
                .str("execution_id", &format!("{run}-exec-{tool_no}"))
                .str("tool_name", tool)
                .finish(),
            StepBody::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            } => Payload::object()
                .u64("duration_ms", *duration_ms)
                .str("execution_id", &format!("{run}-exec-{tool_no}"))
                .str("result", if *success { "ok" } else { "tool error" })
                .bool("success", *success)
                .str("tool_name", tool)
                .finish(),
            StepBody::Failed => Payload::object().str("error", "the agent gave up").finish(),
            StepBody::Completed { tools } => Payload::object()
                .str(
                    "final_response",
                    &format!("answer after {tools} tool calls"),
                )
                .str("status", "completed")
                .finish(),
        }
    }
}

/// The full, deterministic plan of a run: `agent_started` first, then thinking steps and
/// tool calls (each `tool_executing` followed later by its `tool_completed`), then exactly
/// one terminal event.
pub fn plan(config: &AgentConfig, seed: u64, run: RunId, task: &str) -> Vec<AgentStep> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ run.get());
    let lo = config.min_step_ms.min(config.max_step_ms);
    let hi = config.max_step_ms.max(lo);
    let delay = |rng: &mut ChaCha8Rng| Duration::from_millis(rng.random_range(lo..=hi));
    let mut steps = vec![AgentStep {
        kind: StreamKind::AgentStarted,
        delay: Duration::ZERO,
        body: StepBody::Started {
            task: task.chars().take(MAX_TASK_ECHO).collect(),
        },
    }];
    let thinking = rng.random_range(0..=config.max_thinking);
    let tools = rng.random_range(0..=config.max_tools);
    // Interleave: a shuffled sequence of `thinking` T's and `tools` X's.
    let mut order: Vec<bool> = (0..thinking)
        .map(|_| true)
        .chain((0..tools).map(|_| false))
        .collect();
    for i in (1..order.len()).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let mut thought = 0u32;
    let mut tool_no = 0u32;
    for is_thinking in order {
        if is_thinking {
            thought += 1;
            steps.push(AgentStep {
                kind: StreamKind::AgentThinking,
                delay: delay(&mut rng),
                body: StepBody::Thinking { thought },
            });
        } else {
            tool_no += 1;
            let tool = TOOLS[rng.random_range(0..TOOLS.len())];
            let duration = delay(&mut rng);
            let success = rng.random_range(0..10u32) != 0;
            steps.push(AgentStep {
                kind: StreamKind::ToolExecuting,
                delay: delay(&mut rng),
                body: StepBody::ToolExecuting { tool, tool_no },
            });
            steps.push(AgentStep {
                kind: StreamKind::ToolCompleted,
                delay: duration,
                body: StepBody::ToolCompleted {
                    tool,
                    tool_no,
                    duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    success,
                },
            });
        }
    }
    let failed = rng.random_range(0..1000u32) < config.failure_per_mille;
    steps.push(if failed {
        AgentStep {
            kind: StreamKind::AgentFailed,
            delay: delay(&mut rng),
            body: StepBody::Failed,
        }
    } else {
        AgentStep {
            kind: StreamKind::AgentCompleted,
            delay: delay(&mut rng),
            body: StepBody::Completed { tools: tool_no },
        }
    });
    steps
}

/// The payload of `agent_cancelled`.
pub(crate) fn cancelled_payload() -> Payload {
    Payload::object().str("reason", "stopped by user").finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_rules(steps: &[AgentStep], run: RunId) {
        assert_eq!(
            steps.first().map(|s| s.kind),
            Some(StreamKind::AgentStarted)
        );
        let terminal: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind.is_terminal())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            terminal,
            vec![steps.len() - 1],
            "exactly one terminal, last"
        );
        let mut open: Vec<String> = Vec::new();
        for s in steps {
            let payload: serde_json::Value =
                serde_json::from_str(s.payload(run).as_json()).unwrap_or_default();
            let id = payload
                .get("execution_id")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            match s.kind {
                StreamKind::ToolExecuting => open.push(id.unwrap_or_default()),
                StreamKind::ToolCompleted => {
                    let id = id.unwrap_or_default();
                    assert!(
                        open.contains(&id),
                        "tool_completed {id} without its tool_executing"
                    );
                    open.retain(|o| *o != id);
                }
                _ => {}
            }
        }
        assert!(
            open.is_empty(),
            "tool_executing without completion: {open:?}"
        );
    }

    #[test]
    fn plans_follow_section_6_for_many_runs() {
        let cfg = AgentConfig::default();
        let mut shapes = std::collections::BTreeSet::new();
        for r in 0..500 {
            let p = plan(&cfg, 7, RunId::new(r), "task");
            check_rules(&p, RunId::new(r));
            shapes.insert(p.len());
            for s in &p[1..] {
                assert!(
                    s.delay >= Duration::from_millis(cfg.min_step_ms)
                        && s.delay <= Duration::from_millis(cfg.max_step_ms)
                );
            }
        }
        // 0..=3 thinking + 0..=2 tools (2 events each) + start + terminal: lengths 2..=9 all occur.
        assert_eq!(shapes, (2..=9).collect());
    }

    #[test]
    fn plan_is_a_pure_function_of_seed_and_run() {
        let cfg = AgentConfig::default();
        assert_eq!(
            plan(&cfg, 1, RunId::new(5), "x"),
            plan(&cfg, 1, RunId::new(5), "x")
        );
        let differs =
            (0..20).any(|r| plan(&cfg, 1, RunId::new(r), "x") != plan(&cfg, 2, RunId::new(r), "x"));
        assert!(differs);
    }

    #[test]
    fn task_echo_is_bounded_on_char_boundary() {
        let p = plan(&AgentConfig::default(), 0, RunId::new(1), &"é".repeat(1000));
        let payload: serde_json::Value =
            serde_json::from_str(p[0].payload(RunId::new(1)).as_json()).unwrap_or_default();
        let task = payload
            .get("task")
            .and_then(|t| t.as_str())
            .map(|t| t.chars().count());
        assert_eq!(task, Some(MAX_TASK_ECHO));
    }
}
