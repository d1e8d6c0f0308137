//! The seeded agent-run model: what a run emits and when (docs/protocol.md section 13).
//!
//! A run's whole plan is a pure function of (gateway seed, run id), and what its events say
//! of (plan, run id, task), so the event log only needs `RunStarted` to let a replay or a
//! restarted gateway continue the run exactly where it was. The model never touches the
//! outbox or the clock; the gateway schedules the steps and appends what they emit.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::AgentConfig;
use crate::ids::{RunId, ThreadId};
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
pub(crate) struct Tool(u8);

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

/// A run's identity and task: what every event of the run carries besides its step. One per
/// run, shared by the run's record and every entry the run appends, so a retained step keeps
/// a pointer here instead of its own thread id, run id and task (a 10 000-user world retains
/// every event it produced: each step was 80 bytes, and is 32).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AgentRun {
    run: RunId,
    thread: ThreadId,
    /// Echoed by `agent_started`: at most [`MAX_TASK_ECHO`] chars of what the user asked.
    task: Box<str>,
}

impl AgentRun {
    /// The run `run` on `thread`, asked to do `task`.
    pub(crate) fn new(run: RunId, thread: ThreadId, task: &str) -> Self {
        Self {
            run,
            thread,
            task: task.chars().take(MAX_TASK_ECHO).collect(),
        }
    }

    /// The run's id.
    pub(crate) fn run(&self) -> RunId {
        self.run
    }

    /// The thread the run answers on.
    pub(crate) fn thread(&self) -> &ThreadId {
        &self.thread
    }
}

/// One event a run will emit, `delay` after the previous one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentStep {
    /// Time after the previous step (zero for `agent_started`).
    delay: Duration,
    /// What the payload says; rendered with the run's [`AgentRun`] when the step runs.
    body: StepBody,
}

impl AgentStep {
    /// What the event is.
    pub fn kind(&self) -> StreamKind {
        self.body.kind()
    }

    /// Time after the previous step (zero for `agent_started`).
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// The facts the step's payload is rendered from.
    pub(crate) fn body(&self) -> StepBody {
        self.body
    }
}

/// The facts a step's payload is rendered from. A plan holds these rather than payloads:
/// every fold of the log (the live gateway's, a checkpoint's, a replay's) plans each run,
/// but only the gateway that runs a step renders its payload. The run's own facts (its id,
/// for execution ids, and its task) are in its [`AgentRun`]; what is left fits in 12 bytes,
/// with no pointer, so a stored step is small and `Copy`.
pub(crate) type StepBody = Step<()>;

/// A step's facts, `agent_started`'s task of type `T`: none in a stored step ([`StepBody`]),
/// the run's task where a plan is serialized for the state hash ([`PlanWire`]), which
/// hashed it there before the task moved into [`AgentRun`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum Step<T> {
    Started {
        task: T,
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
        /// One step's delay: `Config::validate` keeps it within `MAX_STEP_MS`.
        duration_ms: u32,
        success: bool,
    },
    Failed,
    Completed {
        tools: u32,
    },
}

impl StepBody {
    /// The event kind a step of this body is.
    pub(crate) fn kind(self) -> StreamKind {
        match self {
            StepBody::Started { .. } => StreamKind::AgentStarted,
            StepBody::Thinking { .. } => StreamKind::AgentThinking,
            StepBody::ToolExecuting { .. } => StreamKind::ToolExecuting,
            StepBody::ToolCompleted { .. } => StreamKind::ToolCompleted,
            StepBody::Failed => StreamKind::AgentFailed,
            StepBody::Completed { .. } => StreamKind::AgentCompleted,
        }
    }

    /// The same step with `task` as its task.
    fn with_task<T>(self, task: T) -> Step<T> {
        match self {
            Step::Started { task: () } => Step::Started { task },
            Step::Thinking { thought } => Step::Thinking { thought },
            Step::ToolExecuting { tool, tool_no } => Step::ToolExecuting { tool, tool_no },
            Step::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            } => Step::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            },
            Step::Failed => Step::Failed,
            Step::Completed { tools } => Step::Completed { tools },
        }
    }

    /// Appends the step's payload object in `run` to `buf`: the bytes `serde_json` renders
    /// for it.
    pub(crate) fn write_json(self, run: &AgentRun, buf: &mut String) {
        let mut num = itoa::Buffer::new();
        let mut run_no = itoa::Buffer::new();
        let run_no = run_no.format(run.run.get());
        let o = ObjectWriter::appending(buf);
        match self {
            StepBody::Started { .. } => o
                .str_verbatim("agent_name", &[AGENT_NAME])
                .str("task", &run.task),
            StepBody::Thinking { thought } => o.str_verbatim(
                "reasoning",
                &["step ", num.format(thought), ": considering the request"],
            ),
            StepBody::ToolExecuting { tool, tool_no } => {
                let tool_no = num.format(tool_no);
                o.object_with("args", |a| a.str_verbatim("query", &["q", tool_no]))
                    .str_verbatim("execution_id", &[RunId::PREFIX, run_no, "-exec-", tool_no])
                    .str_verbatim("tool_name", &[tool.name()])
            }
            StepBody::ToolCompleted {
                tool,
                tool_no,
                duration_ms,
                success,
            } => o
                .u64("duration_ms", u64::from(duration_ms))
                .str_verbatim(
                    "execution_id",
                    &[RunId::PREFIX, run_no, "-exec-", num.format(tool_no)],
                )
                .str_verbatim("result", &[if success { "ok" } else { "tool error" }])
                .bool("success", success)
                .str_verbatim("tool_name", &[tool.name()]),
            StepBody::Failed => o.str_verbatim("error", &["the agent gave up"]),
            StepBody::Completed { tools } => o
                .str_verbatim(
                    "final_response",
                    &["answer after ", num.format(tools), " tool calls"],
                )
                .str_verbatim("status", &["completed"]),
        }
        .end();
    }
}

/// A run's plan as the state hash has always serialized it: `{kind, delay, body}` per step,
/// the task inside `agent_started`'s body. Moving the task into [`AgentRun`] left every
/// state hash, and so every journal's footer, as it was.
pub(crate) struct PlanWire<'a> {
    pub(crate) run: &'a AgentRun,
    pub(crate) steps: &'a [AgentStep],
}

impl Serialize for PlanWire<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.steps.iter().map(|s| StepWire {
            kind: s.kind(),
            delay: s.delay,
            body: s.body.with_task(&*self.run.task),
        }))
    }
}

#[derive(Serialize)]
struct StepWire<'a> {
    kind: StreamKind,
    delay: Duration,
    body: Step<&'a str>,
}

/// The full, deterministic plan of a run: `agent_started` first, then thinking steps and
/// tool calls (each `tool_executing` followed later by its `tool_completed`), then exactly
/// one terminal event.
pub fn plan(config: &AgentConfig, seed: u64, run: RunId) -> Vec<AgentStep> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ run.get());
    let lo = config.min_step_ms.min(config.max_step_ms);
    let hi = config.max_step_ms.max(lo);
    let delay = |rng: &mut ChaCha8Rng| Duration::from_millis(rng.random_range(lo..=hi));
    let mut steps = vec![AgentStep {
        delay: Duration::ZERO,
        body: StepBody::Started { task: () },
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
                delay: delay(&mut rng),
                body: StepBody::Thinking { thought },
            });
        } else {
            tool_no += 1;
            let tool = Tool(u8::try_from(rng.random_range(0..TOOLS.len())).unwrap_or(0));
            let duration = delay(&mut rng);
            let success = rng.random_range(0..10u32) != 0;
            steps.push(AgentStep {
                delay: delay(&mut rng),
                body: StepBody::ToolExecuting { tool, tool_no },
            });
            steps.push(AgentStep {
                delay: duration,
                body: StepBody::ToolCompleted {
                    tool,
                    tool_no,
                    // `Config::validate` keeps a delay within `MAX_STEP_MS`, which fits.
                    duration_ms: u32::try_from(duration.as_millis()).unwrap_or(u32::MAX),
                    success,
                },
            });
        }
    }
    let failed = rng.random_range(0..1000u32) < config.failure_per_mille;
    steps.push(if failed {
        AgentStep {
            delay: delay(&mut rng),
            body: StepBody::Failed,
        }
    } else {
        AgentStep {
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

    fn on(run: RunId, task: &str) -> AgentRun {
        AgentRun::new(
            run,
            ThreadId::parse("t1").unwrap_or_else(|| unreachable!()),
            task,
        )
    }

    fn render(step: &AgentStep, run: &AgentRun) -> String {
        let mut buf = String::new();
        step.body.write_json(run, &mut buf);
        buf
    }

    fn check_rules(steps: &[AgentStep], run: RunId) {
        assert_eq!(
            steps.first().map(AgentStep::kind),
            Some(StreamKind::AgentStarted)
        );
        let terminal: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind().is_terminal())
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
                serde_json::from_str(&render(s, &on(run, "task"))).unwrap_or_default();
            let id = payload
                .get("execution_id")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            match s.kind() {
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
            let p = plan(&cfg, 7, RunId::new(r));
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
        assert_eq!(plan(&cfg, 1, RunId::new(5)), plan(&cfg, 1, RunId::new(5)));
        let differs = (0..20).any(|r| plan(&cfg, 1, RunId::new(r)) != plan(&cfg, 2, RunId::new(r)));
        assert!(differs);
    }

    /// What each step's payload says, written with `serde_json` from the step's facts.
    fn expected(step: &AgentStep, on: &AgentRun) -> serde_json::Value {
        let run = on.run;
        use serde_json::json;
        match &step.body {
            StepBody::Started { .. } => json!({"agent_name": AGENT_NAME, "task": &*on.task}),
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
            let on = on(run, tasks[(r % 3) as usize]);
            for step in plan(&cfg, 3, run) {
                let want = serde_json::to_string(&expected(&step, &on)).unwrap_or_default();
                let mut appended = String::from("prefix");
                step.body.write_json(&on, &mut appended);
                assert_eq!(appended, format!("prefix{want}"), "{step:?}");
                assert_eq!(render(&step, &on), want);
                kinds.insert(step.kind().as_str());
            }
        }
        assert_eq!(kinds.len(), 6, "every step kind rendered: {kinds:?}");
    }

    #[test]
    fn task_echo_is_bounded_on_char_boundary() {
        let p = plan(&AgentConfig::default(), 0, RunId::new(1));
        let payload: serde_json::Value =
            serde_json::from_str(&render(&p[0], &on(RunId::new(1), &"é".repeat(1000))))
                .unwrap_or_default();
        let task = payload
            .get("task")
            .and_then(|t| t.as_str())
            .map(|t| t.chars().count());
        assert_eq!(task, Some(MAX_TASK_ECHO));
    }

    /// The state hash serializes each live run's plan: its shape is the one the plan had when
    /// the task was a field of `agent_started`'s step, so old journals' footers still match.
    #[test]
    fn a_plan_serializes_in_the_shape_state_hashes_were_taken_of() {
        use serde_json::json;
        let cfg = AgentConfig {
            failure_per_mille: 300,
            ..AgentConfig::default()
        };
        let mut variants = std::collections::BTreeSet::new();
        for r in 0..50 {
            let run = on(RunId::new(r), "say \"hi\"");
            let steps = plan(&cfg, 11, run.run);
            let want: Vec<serde_json::Value> = steps
                .iter()
                .map(|s| {
                    let body = match s.body {
                        StepBody::Started { .. } => json!({"Started": {"task": "say \"hi\""}}),
                        StepBody::Thinking { thought } => json!({"Thinking": {"thought": thought}}),
                        StepBody::ToolExecuting { tool, tool_no } => json!({
                            "ToolExecuting": {"tool": tool.name(), "tool_no": tool_no}
                        }),
                        StepBody::ToolCompleted {
                            tool,
                            tool_no,
                            duration_ms,
                            success,
                        } => json!({"ToolCompleted": {
                            "tool": tool.name(),
                            "tool_no": tool_no,
                            "duration_ms": duration_ms,
                            "success": success,
                        }}),
                        StepBody::Failed => json!("Failed"),
                        StepBody::Completed { tools } => json!({"Completed": {"tools": tools}}),
                    };
                    variants.insert(s.kind());
                    json!({
                        "kind": s.kind(),
                        "delay": {"secs": s.delay.as_secs(), "nanos": s.delay.subsec_nanos()},
                        "body": body,
                    })
                })
                .collect();
            let got = serde_json::to_value(PlanWire {
                run: &run,
                steps: &steps,
            })
            .unwrap_or_default();
            assert_eq!(got, json!(want), "run {r}");
        }
        assert_eq!(
            variants.len(),
            6,
            "every step kind serialized: {variants:?}"
        );
    }

    #[test]
    fn a_tools_reported_duration_is_the_delay_before_its_completion() {
        let cfg = AgentConfig {
            max_tools: 5,
            ..AgentConfig::default()
        };
        let mut seen = 0;
        for r in 0..50 {
            for s in plan(&cfg, 2, RunId::new(r)) {
                if let StepBody::ToolCompleted { duration_ms, .. } = s.body {
                    assert_eq!(u128::from(duration_ms), s.delay.as_millis());
                    seen += 1;
                }
            }
        }
        assert!(seen > 50, "{seen} tool completions");
    }
}
