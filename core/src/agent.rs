//! The seeded agent-run model: what a run emits and when (docs/protocol.md section 13).
//!
//! A run's whole plan is a pure function of (gateway seed, run id, task), so the event log
//! only needs `RunStarted` to let a replay or a restarted gateway continue the run exactly
//! where it was. The model never touches the outbox or the clock; the gateway schedules
//! the steps and appends what they emit.

use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::AgentConfig;
use crate::ids::RunId;
use crate::payload::{ObjectWriter, Payload};
use crate::protocol::StreamKind;

/// The agent name every run reports.
pub const AGENT_NAME: &str = "gauntlet-agent";
const TOOLS: [&str; 4] = ["search", "calculator", "code_runner", "retriever"];
/// Longest task text echoed into `agent_started` (the rest is cut, on a char boundary).
const MAX_TASK_ECHO: usize = 256;

/// One of [`TOOLS`], by index: a byte in every retained tool step, not a 16-byte `&str`.
/// Serialized as its name, as the `&str` it replaced was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tool(u8);

impl Tool {
    fn name(self) -> &'static str {
        TOOLS.get(usize::from(self.0)).copied().unwrap_or_default()
    }
}

impl Serialize for Tool {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

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
        /// Shared by the plan and every entry of the step, never copied. Behind a thin
        /// pointer: the widest step is then 16 bytes and a stream entry 80, not 88 (which
        /// the allocator rounds to 112).
        task: Arc<String>,
    },
    Thinking {
        thought: u32,
    },
    ToolExecuting {
        tool: Tool,
        tool_no: u32,
    },
    ToolCompleted {
        tool: Tool,
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
    pub fn payload(&self, run: RunId) -> AgentPayload {
        AgentPayload {
            run,
            body: self.body.clone(),
        }
    }
}

/// An agent step's payload, kept as the facts it is rendered from: the stream entry that
/// holds it renders it into each frame as the frame is written
/// ([`write_json`](Self::write_json)), so a retained event keeps no copy of its text. With
/// the 10-minute retention of docs/protocol.md section 14 a large world holds every event it
/// produced, and their rendered payloads were a fifth of a 10 000-user world's heap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPayload {
    run: RunId,
    body: StepBody,
}

impl AgentPayload {
    /// Appends the payload's JSON object to `buf`: the bytes `serde_json` renders for it.
    pub fn write_json(&self, buf: &mut String) {
        let mut num = itoa::Buffer::new();
        let mut run_no = itoa::Buffer::new();
        let run = run_no.format(self.run.get());
        let o = ObjectWriter::appending(buf);
        match &self.body {
            StepBody::Started { task } => o
                .str_verbatim("agent_name", &[AGENT_NAME])
                .str("task", task),
            StepBody::Thinking { thought } => o.str_verbatim(
                "reasoning",
                &["step ", num.format(*thought), ": considering the request"],
            ),
            StepBody::ToolExecuting { tool, tool_no } => {
                let tool_no = num.format(*tool_no);
                o.object_with("args", |a| a.str_verbatim("query", &["q", tool_no]))
                    .str_verbatim("execution_id", &[RunId::PREFIX, run, "-exec-", tool_no])
                    .str_verbatim("tool_name", &[tool.name()])
            }
            StepBody::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            } => o
                .u64("duration_ms", *duration_ms)
                .str_verbatim(
                    "execution_id",
                    &[RunId::PREFIX, run, "-exec-", num.format(*tool_no)],
                )
                .str_verbatim("result", &[if *success { "ok" } else { "tool error" }])
                .bool("success", *success)
                .str_verbatim("tool_name", &[tool.name()]),
            StepBody::Failed => o.str_verbatim("error", &["the agent gave up"]),
            StepBody::Completed { tools } => o
                .str_verbatim(
                    "final_response",
                    &["answer after ", num.format(*tools), " tool calls"],
                )
                .str_verbatim("status", &["completed"]),
        }
        .end();
    }

    /// The payload's JSON object.
    pub fn to_json(&self) -> String {
        let mut buf = String::with_capacity(96);
        self.write_json(&mut buf);
        buf
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
            task: Arc::new(task.chars().take(MAX_TASK_ECHO).collect()),
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
            let tool = Tool(u8::try_from(rng.random_range(0..TOOLS.len())).unwrap_or(0));
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
                serde_json::from_str(&s.payload(run).to_json()).unwrap_or_default();
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

    /// What each step's payload says, written with `serde_json` from the step's facts.
    fn expected(step: &AgentStep, run: RunId) -> serde_json::Value {
        use serde_json::json;
        match &step.body {
            StepBody::Started { task } => json!({"agent_name": AGENT_NAME, "task": &**task}),
            StepBody::Thinking { thought } => {
                json!({"reasoning": format!("step {thought}: considering the request")})
            }
            StepBody::ToolExecuting { tool, tool_no } => json!({
                "args": {"query": format!("q{tool_no}")},
                "execution_id": format!("{run}-exec-{tool_no}"),
                "tool_name": tool.name(),
            }),
            StepBody::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            } => json!({
                "duration_ms": duration_ms,
                "execution_id": format!("{run}-exec-{tool_no}"),
                "result": if *success { "ok" } else { "tool error" },
                "success": success,
                "tool_name": tool.name(),
            }),
            StepBody::Failed => json!({"error": "the agent gave up"}),
            StepBody::Completed { tools } => json!({
                "final_response": format!("answer after {tools} tool calls"),
                "status": "completed",
            }),
        }
    }

    #[test]
    fn payloads_are_the_bytes_serde_json_renders_for_each_steps_facts() {
        let cfg = AgentConfig {
            failure_per_mille: 300,
            ..AgentConfig::default()
        };
        let mut kinds = std::collections::BTreeSet::new();
        let tasks = ["task", "say \"hi\"\n\t\u{1} é", ""];
        for r in 0..300 {
            let run = RunId::new(u64::MAX - r);
            for step in plan(&cfg, 3, run, tasks[(r % 3) as usize]) {
                let want = serde_json::to_string(&expected(&step, run)).unwrap_or_default();
                let mut appended = String::from("prefix");
                step.payload(run).write_json(&mut appended);
                assert_eq!(appended, format!("prefix{want}"), "{step:?}");
                assert_eq!(step.payload(run).to_json(), want);
                kinds.insert(step.kind.as_str());
            }
        }
        assert_eq!(kinds.len(), 6, "every step kind rendered: {kinds:?}");
    }

    #[test]
    fn task_echo_is_bounded_on_char_boundary() {
        let p = plan(&AgentConfig::default(), 0, RunId::new(1), &"é".repeat(1000));
        let payload: serde_json::Value =
            serde_json::from_str(&p[0].payload(RunId::new(1)).to_json()).unwrap_or_default();
        let task = payload
            .get("task")
            .and_then(|t| t.as_str())
            .map(|t| t.chars().count());
        assert_eq!(task, Some(MAX_TASK_ECHO));
    }
}
