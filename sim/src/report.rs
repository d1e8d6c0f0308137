//! Rendering run results on stdout: a human summary or JSON Lines.
//!
//! A [`Reporter`] receives the run's start, each seed's result in seed order, and the
//! summary. stdout carries results only; progress and diagnostics go to stderr elsewhere.
//! [`HumanReporter`] prints one line per seed (unless quiet), a block per violation ending
//! in a `repro: ` line, and a summary table. [`JsonReporter`] prints JSON Lines.
//!
//! # JSON Lines format
//!
//! Each line is one JSON object with a `"type"` field saying what it is and `"schema": 1`.
//! Fields are added in later versions of a schema but never renamed or retyped; a change
//! that breaks readers bumps `schema`. Durations are integers in milliseconds, hashes are
//! lowercase hex, and nothing is a float, so output is byte-stable across platforms
//! (except the fields measured on the machine: `wall_ms`, `events_per_sec` and
//! `peak_rss_bytes`).
//!
//! * `start`: once, first.
//!   `seeds` (`"A..B"`, B exclusive), `shard` (`"I/N"`), `jobs`, `users`, `duration_ms`,
//!   `faults` (preset name or `"plan"`), `plant` (string or null).
//! * `progress`: once per seed run, in ascending seed order.
//!   `seed`, `passed` (bool), `events`, `simulated_ms`, `wall_ms`, `state_hash` (64 hex),
//!   `faults` (an object: fault kind -> timed faults of that kind injected; added within
//!   schema 1).
//! * `violation`: for a failing seed, just before its `progress` line.
//!   `seed`, `invariant`, `step`, `message`, `last_events` (array of strings, oldest first,
//!   at most [`MAX_LAST_EVENTS`]), `repro` (the command line that reruns this seed alone).
//! * `marks`: once, just before `summary`: the coverage marks of the run.
//!   `marked` (how many rules of `rules` were marked), `rules` (the number of rules a sweep
//!   must mark, [`crate::MARKED_RULES`]), `unmarked` (those never marked, in that list's
//!   order), `counts` (an object: rule id -> times its path ran, over every rule marked,
//!   including rules outside the list).
//! * `summary`: once, last.
//!   `seeds`, `passed`, `failed`, `failed_seeds` (ascending, at most
//!   [`crate::outcome::MAX_FAILED_SEEDS`]), `events`, `simulated_ms`, `wall_ms`,
//!   `events_per_sec`, `peak_rss_bytes` (the process's peak resident memory, or null where
//!   the OS does not say; added within schema 1), `faults` (as on `progress`, summed over
//!   the seeds; added within schema 1).
//!
//! ```text
//! {"type":"start","schema":1,"seeds":"0..2","shard":"0/1","jobs":1,"users":10,"duration_ms":60000,"faults":"mild","plant":null}
//! {"type":"progress","schema":1,"seed":0,"passed":true,"events":5120,"simulated_ms":60000,"wall_ms":12,"state_hash":"9f86...0a08","faults":{"client_crash":2}}
//! {"type":"violation","schema":1,"seed":1,"invariant":"isolation","step":812,"message":"...","last_events":["..."],"repro":"gauntlet sim --seed 1 ..."}
//! {"type":"progress","schema":1,"seed":1,"passed":false,"events":812,"simulated_ms":9100,"wall_ms":3,"state_hash":"5e88...42d1","faults":{}}
//! {"type":"marks","schema":1,"marked":55,"rules":56,"unmarked":["RESUME-GAP"],"counts":{"AGENT-ORDER":210,"...":1}}
//! {"type":"summary","schema":1,"seeds":2,"passed":1,"failed":1,"failed_seeds":[1],"events":5932,"simulated_ms":69100,"wall_ms":15,"events_per_sec":395466,"peak_rss_bytes":52428800,"faults":{"client_crash":2}}
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::checker::MARKED_RULES;
use crate::config::{SimConfig, format_duration};
use crate::outcome::{SeedResult, Summary};

/// The JSON Lines schema version.
pub const SCHEMA: u32 = 1;
/// Most events shown before a violation.
pub const MAX_LAST_EVENTS: usize = 32;

/// Receives a run's results in order: `start`, then `seed` per seed ascending, then `summary`.
pub trait Reporter {
    /// The run begins.
    fn start(&mut self, cfg: &SimConfig) -> io::Result<()>;
    /// One seed finished (called in ascending seed order).
    fn seed(&mut self, cfg: &SimConfig, result: &SeedResult) -> io::Result<()>;
    /// The run is over.
    fn summary(&mut self, cfg: &SimConfig, summary: &Summary) -> io::Result<()>;
}

/// Lowercase hex of a hash.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Wall time as `1.234s` (integer arithmetic, so identical everywhere).
fn seconds(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

/// A byte count in decimal units, three significant digits (`3.07 GB`, `307 KB`).
fn bytes(n: u64) -> String {
    let units = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "KB")];
    for (scale, unit) in units {
        if n >= scale {
            // Display only: the float rounding never reaches a run.
            let v = n as f64 / scale as f64;
            let digits = if v >= 100.0 {
                0
            } else if v >= 10.0 {
                1
            } else {
                2
            };
            return format!("{v:.digits$} {unit}");
        }
    }
    format!("{n} B")
}

/// The one-line marks summary: `marks: N of M rules marked; unmarked: A, B` (`none`).
fn marks_line(s: &Summary) -> String {
    let unmarked = s.unmarked();
    let list = if unmarked.is_empty() {
        "none".to_string()
    } else {
        unmarked.join(", ")
    };
    format!(
        "marks: {} of {} rules marked; unmarked: {list}",
        MARKED_RULES.len() - unmarked.len(),
        MARKED_RULES.len()
    )
}

fn last_events(events: &[String]) -> &[String] {
    events
        .get(events.len().saturating_sub(MAX_LAST_EVENTS)..)
        .unwrap_or(events)
}

/// The human-readable renderer.
#[derive(Debug)]
pub struct HumanReporter<W> {
    out: W,
}

impl<W: Write> HumanReporter<W> {
    /// Renders to `out` (normally stdout).
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> Reporter for HumanReporter<W> {
    fn start(&mut self, cfg: &SimConfig) -> io::Result<()> {
        if cfg.quiet() {
            return Ok(());
        }
        writeln!(
            self.out,
            "gauntlet sim: seeds {} shard {} jobs {} users {} duration {} faults {}{}",
            cfg.seeds(),
            cfg.shard(),
            cfg.jobs(),
            cfg.users(),
            format_duration(cfg.duration()),
            cfg.faults().name(),
            cfg.plant()
                .map(|p| format!(" plant {p}"))
                .unwrap_or_default()
        )
    }

    fn seed(&mut self, cfg: &SimConfig, result: &SeedResult) -> io::Result<()> {
        let o = &result.outcome;
        if !cfg.quiet() || !o.passed() {
            writeln!(
                self.out,
                "seed {}  {}  events {}  simulated {}  wall {}  state_hash: {}",
                o.seed,
                if o.passed() { "PASS" } else { "FAIL" },
                o.events,
                format_duration(o.simulated),
                seconds(result.wall),
                hex(&o.state_hash)
            )?;
        }
        if let Some(v) = &o.violation {
            writeln!(
                self.out,
                "violation: invariant {} at step {} (seed {})",
                v.invariant, v.step, o.seed
            )?;
            writeln!(self.out, "  {}", v.message)?;
            let events = last_events(&v.last_events);
            if !events.is_empty() {
                writeln!(self.out, "  last events:")?;
                for e in events {
                    writeln!(self.out, "    {e}")?;
                }
            }
            writeln!(self.out, "repro: {}", cfg.repro_command(o.seed))?;
        }
        Ok(())
    }

    fn summary(&mut self, cfg: &SimConfig, s: &Summary) -> io::Result<()> {
        writeln!(
            self.out,
            "seeds      {} ({} passed, {} failed)",
            s.seeds, s.passed, s.failed
        )?;
        writeln!(self.out, "events     {}", s.events)?;
        writeln!(self.out, "simulated  {}", format_duration(s.simulated))?;
        writeln!(self.out, "wall       {}", seconds(s.wall))?;
        writeln!(self.out, "events/s   {}", s.events_per_sec())?;
        if !s.wall.is_zero() {
            let ratio = s.simulated.as_secs_f64() / s.wall.as_secs_f64();
            writeln!(self.out, "sim/wall   {ratio:.1}x")?;
        }
        if let Some(peak) = s.peak_rss {
            write!(self.out, "peak rss   {}", bytes(peak))?;
            // Per user only when one world was in memory at a time.
            if (cfg.jobs().get() == 1 || s.seeds == 1) && cfg.users() > 0 {
                write!(
                    self.out,
                    " ({} per user)",
                    bytes(peak / u64::from(cfg.users()))
                )?;
            }
            writeln!(self.out)?;
        }
        writeln!(self.out, "{}", marks_line(s))?;
        if !s.failed_seeds.is_empty() {
            let list: Vec<String> = s.failed_seeds.iter().map(u64::to_string).collect();
            let more = if s.failed > s.failed_seeds.len() as u64 {
                " ..."
            } else {
                ""
            };
            writeln!(self.out, "failed     {}{more}", list.join(" "))?;
        }
        self.out.flush()
    }
}

/// The JSON Lines renderer (format in the module doc).
#[derive(Debug)]
pub struct JsonReporter<W> {
    out: W,
}

impl<W: Write> JsonReporter<W> {
    /// Renders to `out` (normally stdout).
    pub fn new(out: W) -> Self {
        Self { out }
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn line<T: Serialize>(&mut self, value: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct StartLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    seeds: String,
    shard: String,
    jobs: usize,
    users: u32,
    duration_ms: u64,
    faults: &'static str,
    plant: Option<&'a str>,
}

#[derive(Serialize)]
struct ProgressLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    seed: u64,
    passed: bool,
    events: u64,
    simulated_ms: u64,
    wall_ms: u64,
    state_hash: String,
    faults: &'a BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct ViolationLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    seed: u64,
    invariant: &'a str,
    step: u64,
    message: &'a str,
    last_events: &'a [String],
    repro: String,
}

#[derive(Serialize)]
struct MarksLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    marked: usize,
    rules: usize,
    unmarked: Vec<&'static str>,
    counts: &'a BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: u32,
    seeds: u64,
    passed: u64,
    failed: u64,
    failed_seeds: &'a [u64],
    events: u64,
    simulated_ms: u64,
    wall_ms: u64,
    events_per_sec: u64,
    peak_rss_bytes: Option<u64>,
    faults: &'a BTreeMap<&'static str, u64>,
}

impl<W: Write> Reporter for JsonReporter<W> {
    fn start(&mut self, cfg: &SimConfig) -> io::Result<()> {
        self.line(&StartLine {
            kind: "start",
            schema: SCHEMA,
            seeds: cfg.seeds().to_string(),
            shard: cfg.shard().to_string(),
            jobs: cfg.jobs().get(),
            users: cfg.users(),
            duration_ms: millis(cfg.duration()),
            faults: cfg.faults().name(),
            plant: cfg.plant(),
        })
    }

    fn seed(&mut self, cfg: &SimConfig, result: &SeedResult) -> io::Result<()> {
        let o = &result.outcome;
        if let Some(v) = &o.violation {
            self.line(&ViolationLine {
                kind: "violation",
                schema: SCHEMA,
                seed: o.seed,
                invariant: &v.invariant,
                step: v.step,
                message: &v.message,
                last_events: last_events(&v.last_events),
                repro: cfg.repro_command(o.seed),
            })?;
        }
        self.line(&ProgressLine {
            kind: "progress",
            schema: SCHEMA,
            seed: o.seed,
            passed: o.passed(),
            events: o.events,
            simulated_ms: millis(o.simulated),
            wall_ms: millis(result.wall),
            state_hash: hex(&o.state_hash),
            faults: &o.faults,
        })
    }

    fn summary(&mut self, _cfg: &SimConfig, s: &Summary) -> io::Result<()> {
        let unmarked = s.unmarked();
        self.line(&MarksLine {
            kind: "marks",
            schema: SCHEMA,
            marked: MARKED_RULES.len() - unmarked.len(),
            rules: MARKED_RULES.len(),
            unmarked,
            counts: &s.marks,
        })?;
        self.line(&SummaryLine {
            kind: "summary",
            schema: SCHEMA,
            seeds: s.seeds,
            passed: s.passed,
            failed: s.failed,
            failed_seeds: &s.failed_seeds,
            events: s.events,
            simulated_ms: millis(s.simulated),
            wall_ms: millis(s.wall),
            events_per_sec: s.events_per_sec(),
            peak_rss_bytes: s.peak_rss,
            faults: &s.faults,
        })?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{SeedOutcome, Violation};
    use crate::seeds::SeedRange;
    use serde_json::Value;

    fn cfg(quiet: bool) -> SimConfig {
        SimConfig::builder()
            .seeds(SeedRange::new(0, 2).unwrap())
            .users(10)
            .quiet(quiet)
            .build()
            .unwrap()
    }

    fn pass(seed: u64) -> SeedResult {
        SeedResult {
            outcome: SeedOutcome {
                seed,
                events: 5120,
                simulated: Duration::from_secs(60),
                state_hash: [0xab; 32],
                violation: None,
                marks: Default::default(),
                faults: Default::default(),
            },
            wall: Duration::from_millis(1234),
        }
    }

    fn fail(seed: u64, events: usize) -> SeedResult {
        let mut r = pass(seed);
        r.outcome.violation = Some(Violation {
            invariant: "isolation".into(),
            step: 812,
            message: "user b received an event of user a".into(),
            last_events: (0..events).map(|i| format!("ev{i}")).collect(),
        });
        r
    }

    fn summary() -> Summary {
        Summary {
            seeds: 2,
            passed: 1,
            failed: 1,
            failed_seeds: vec![1],
            events: 10_240,
            simulated: Duration::from_secs(120),
            wall: Duration::from_secs(2),
            peak_rss: Some(3_068_932 * 1024),
            // Every rule of the list but RESUME-GAP, and one rule outside it.
            marks: MARKED_RULES
                .iter()
                .copied()
                .filter(|r| *r != "RESUME-GAP")
                .map(|r| (r, 7))
                .chain([("WS-PATH", 1)])
                .collect(),
            faults: [("client_crash", 3), ("partition", 1)]
                .into_iter()
                .collect(),
        }
    }

    fn json_lines(quiet: bool) -> Vec<Value> {
        let c = cfg(quiet);
        let mut r = JsonReporter::new(Vec::new());
        r.start(&c).unwrap();
        r.seed(&c, &pass(0)).unwrap();
        r.seed(&c, &fail(1, 40)).unwrap();
        r.summary(&c, &summary()).unwrap();
        String::from_utf8(r.into_inner())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn json_lines_have_type_tags_in_order_and_schema() {
        let lines = json_lines(false);
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "start",
                "progress",
                "violation",
                "progress",
                "marks",
                "summary"
            ]
        );
        assert!(lines.iter().all(|l| l["schema"] == 1));
    }

    #[test]
    fn json_start_and_progress_fields() {
        let lines = json_lines(false);
        let start = &lines[0];
        assert_eq!(start["seeds"], "0..2");
        assert_eq!(start["shard"], "0/1");
        assert_eq!(start["users"], 10);
        assert_eq!(start["duration_ms"], 60_000);
        assert_eq!(start["faults"], "mild");
        assert_eq!(start["plant"], Value::Null);
        let p = &lines[1];
        assert_eq!(p["seed"], 0);
        assert_eq!(p["passed"], true);
        assert_eq!(p["events"], 5120);
        assert_eq!(p["simulated_ms"], 60_000);
        assert_eq!(p["wall_ms"], 1234);
        assert_eq!(p["state_hash"], "ab".repeat(32));
        assert_eq!(lines[3]["passed"], false);
    }

    #[test]
    fn json_violation_carries_repro_and_bounded_last_events() {
        let v = &json_lines(false)[2];
        assert_eq!(v["seed"], 1);
        assert_eq!(v["invariant"], "isolation");
        assert_eq!(v["step"], 812);
        let events = v["last_events"].as_array().unwrap();
        assert_eq!(events.len(), MAX_LAST_EVENTS);
        // The newest events are kept: 40 given, the last 32 are ev8..ev39.
        assert_eq!(events[0], "ev8");
        assert_eq!(events[MAX_LAST_EVENTS - 1], "ev39");
        assert_eq!(
            v["repro"],
            "gauntlet sim --seed 1 --users 10 --duration 1m --faults mild"
        );
    }

    #[test]
    fn json_marks_name_the_unmarked_rules_and_every_count() {
        let m = &json_lines(false)[4];
        let rules = MARKED_RULES.len();
        assert_eq!(m["rules"], rules);
        assert_eq!(m["marked"], rules - 1);
        assert_eq!(m["unmarked"], serde_json::json!(["RESUME-GAP"]));
        assert_eq!(m["counts"]["LOG-FOLD"], 7);
        assert_eq!(
            m["counts"]["WS-PATH"], 1,
            "rules outside the list are counted too"
        );
        let mut r = HumanReporter::new(Vec::new());
        r.summary(&cfg(true), &summary()).unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert!(
            out.contains(&format!(
                "marks: {} of {rules} rules marked; unmarked: RESUME-GAP\n",
                rules - 1
            )),
            "{out}"
        );
    }

    #[test]
    fn json_summary_fields() {
        let s = &json_lines(false)[5];
        assert_eq!(s["seeds"], 2);
        assert_eq!(s["passed"], 1);
        assert_eq!(s["failed"], 1);
        assert_eq!(s["failed_seeds"], serde_json::json!([1]));
        assert_eq!(s["events"], 10_240);
        assert_eq!(s["simulated_ms"], 120_000);
        assert_eq!(s["wall_ms"], 2000);
        assert_eq!(s["events_per_sec"], 5120);
        assert_eq!(s["peak_rss_bytes"], 3_068_932u64 * 1024);
    }

    fn human(quiet: bool) -> String {
        let c = cfg(quiet);
        let mut r = HumanReporter::new(Vec::new());
        r.start(&c).unwrap();
        r.seed(&c, &pass(0)).unwrap();
        r.seed(&c, &fail(1, 2)).unwrap();
        r.summary(&c, &summary()).unwrap();
        String::from_utf8(r.into_inner()).unwrap()
    }

    #[test]
    fn human_report_has_hash_violation_repro_and_summary() {
        let out = human(false);
        let hash = "ab".repeat(32);
        assert!(out.contains(&format!(
            "seed 0  PASS  events 5120  simulated 1m  wall 1.234s  state_hash: {hash}\n"
        )));
        assert!(out.contains("violation: invariant isolation at step 812 (seed 1)\n"));
        assert!(out.contains("  last events:\n    ev0\n    ev1\n"));
        assert!(
            out.contains("\nrepro: gauntlet sim --seed 1 --users 10 --duration 1m --faults mild\n")
        );
        assert!(out.contains("seeds      2 (1 passed, 1 failed)\n"));
        assert!(out.contains("events/s   5120\n"));
        assert!(out.contains("sim/wall   60.0x\n"));
        // Two seeds on one job: one world at a time, 10 users.
        assert!(
            out.contains("peak rss   3.14 GB (314 MB per user)\n"),
            "{out}"
        );
        assert!(out.contains("failed     1\n"));
    }

    #[test]
    fn human_summary_gives_memory_per_user_only_for_one_world_at_a_time() {
        let c = SimConfig::builder()
            .seeds(SeedRange::new(0, 2).unwrap())
            .users(10)
            .jobs(2)
            .build()
            .unwrap();
        let mut r = HumanReporter::new(Vec::new());
        r.summary(&c, &summary()).unwrap();
        let out = String::from_utf8(r.into_inner()).unwrap();
        assert!(out.contains("peak rss   3.14 GB\n"), "{out}");
        let mut r = HumanReporter::new(Vec::new());
        let unknown = Summary {
            peak_rss: None,
            ..summary()
        };
        r.summary(&c, &unknown).unwrap();
        assert!(
            !String::from_utf8(r.into_inner())
                .unwrap()
                .contains("peak rss")
        );
    }

    #[test]
    fn byte_counts_keep_three_significant_digits() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(307_000), "307 KB");
        assert_eq!(bytes(97_700_000), "97.7 MB");
        assert_eq!(bytes(3_142_586_368), "3.14 GB");
    }

    #[test]
    fn human_quiet_hides_passing_seeds_but_not_failures() {
        let out = human(true);
        assert!(!out.contains("seed 0"));
        assert!(!out.starts_with("gauntlet sim:"));
        assert!(out.contains("seed 1  FAIL"));
        assert!(out.contains("repro: "));
        assert!(out.contains("seeds      2"));
    }
}
