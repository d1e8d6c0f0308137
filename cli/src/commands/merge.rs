//! `gauntlet merge`: the shard outputs of one `sim --seeds A..B --shard I/K --json` run, made
//! into one summary (a table, or JSON Lines) and optionally one JUnit file.
//!
//! This is the merge job of a CI matrix or a Kubernetes Indexed Job, so it is strict about
//! its input: every file must be a complete `sim --json` output (a `start` line first, a
//! `summary` last, `"schema": 1`), all from the same run (same seeds, users, duration,
//! faults, plant and shard count), and the shards must be exactly `0/K .. K-1/K`, each once.
//! Anything else is exit 2 (the merge cannot say what was tested), after printing every
//! `repro:` line it did find, so a broken matrix still hands over its failures. Exit 1 when
//! any seed failed, listing every repro line; 0 when every seed of every shard passed.
//!
//! The timed faults each seed injected (`faults` on its `progress` line) are summed by kind,
//! per shard and over the run, so the merged summary says what the run was tested under; a
//! shard whose `summary` totals disagree with its seeds' is inconsistent (exit 2), like one
//! whose seed count does.
//!
//! `--failures FILE` (repeatable) adds the shards' failures files (`seed<TAB>invariant<TAB>repro`
//! lines, as `sim --failures` appends them): their seeds within the range are reported too,
//! which matters when a shard died before its JSON Lines reached the merge.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use gauntlet_sim::{SCHEMA, SeedRange, Shard};
use serde::Deserialize;
use serde_json::json;

use super::files::read_bounded;
use super::junit::{self, JunitError, SeedCase, SeedFailure};
use super::sim::suite_name;
use super::{Exit, Outcome, output_exit};

/// Largest input file read (a shard of a million seeds is about 200 MB of JSON Lines).
const MAX_INPUT_BYTES: u64 = 1 << 30;

/// `gauntlet merge`: one summary from the shard outputs of a `sim` run.
#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The `sim --json` outputs (JSON Lines), one per shard, in any order.
    #[arg(value_name = "SHARD.jsonl", required = true)]
    inputs: Vec<PathBuf>,
    /// A shard's failures file (`sim --failures`); repeat for each.
    #[arg(long, value_name = "FILE")]
    failures: Vec<PathBuf>,
    /// Print JSON Lines (`shard` per shard, `failure` per failing seed, then `summary`).
    #[arg(long)]
    json: bool,
    /// Also write JUnit XML: a suite per shard, a test case per seed.
    #[arg(long, value_name = "FILE.xml")]
    junit: Option<PathBuf>,
}

/// Why `gauntlet merge` could not produce a summary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MergeError {
    /// An input file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause (none: larger than the bound).
        #[source]
        source: Option<io::Error>,
    },
    /// A line of an input is not what `sim --json` writes.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The inputs do not add up to one complete run (each problem on its own line).
    #[error("the shard outputs do not make one complete run:\n  {}", .0.join("\n  "))]
    Inconsistent(Vec<String>),
    /// Writing the summary failed.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// The `--junit` file could not be written.
    #[error(transparent)]
    Junit(#[from] JunitError),
}

impl MergeError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            MergeError::Read { .. }
            | MergeError::Malformed { .. }
            | MergeError::Inconsistent(_) => Exit::Usage,
            MergeError::Output(e) => output_exit(e),
            MergeError::Junit(e) => e.exit(),
        }
    }
}

/// One line of `sim --json` (`sim/src/report.rs`); unknown fields and line types are
/// skipped, as the schema promises readers.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Start {
        schema: u32,
        seeds: String,
        shard: String,
        users: u64,
        duration_ms: u64,
        faults: String,
        plant: Option<String>,
    },
    Progress {
        schema: u32,
        seed: u64,
        passed: bool,
        events: u64,
        wall_ms: u64,
        /// Added within schema 1: absent from older outputs, which injected none on record.
        #[serde(default)]
        faults: Faults,
    },
    Violation {
        schema: u32,
        seed: u64,
        invariant: String,
        message: String,
        repro: String,
    },
    Summary {
        schema: u32,
        seeds: u64,
        /// Added within schema 1: `None` in older outputs, whose totals cannot be checked.
        #[serde(default)]
        faults: Option<Faults>,
    },
    #[serde(other)]
    Other,
}

/// What identifies a run: every shard must agree on it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RunKey {
    seeds: String,
    users: u64,
    duration_ms: u64,
    faults: String,
    plant: Option<String>,
    shards: u32,
}

impl RunKey {
    fn describe(&self) -> String {
        format!(
            "seeds {} users {} duration {}ms faults {}{} over {} shards",
            self.seeds,
            self.users,
            self.duration_ms,
            self.faults,
            self.plant
                .as_deref()
                .map(|p| format!(" plant {p}"))
                .unwrap_or_default(),
            self.shards
        )
    }
}

/// Timed faults injected, by kind (`partition`, `client_crash`, ...): the kinds are the
/// simulator's, read as strings so a kind added later still sums.
type Faults = BTreeMap<String, u64>;

/// Adds `more` into `total`, kind by kind.
fn add_faults(total: &mut Faults, more: &Faults) {
    for (kind, n) in more {
        let t = total.entry(kind.clone()).or_default();
        *t = t.saturating_add(*n);
    }
}

/// One seed's line pair.
#[derive(Clone, Debug)]
struct SeedLine {
    passed: bool,
    events: u64,
    wall: Duration,
    faults: Faults,
}

/// One shard file, read.
#[derive(Debug)]
struct ShardFile {
    path: PathBuf,
    key: RunKey,
    range: SeedRange,
    shard: Shard,
    index: u32,
    seeds: BTreeMap<u64, SeedLine>,
    failures: BTreeMap<u64, SeedFailure>,
    summary_seeds: Option<u64>,
    /// The `summary` line's fault totals, to check against the seeds' (absent in older files).
    summary_faults: Option<Faults>,
}

fn malformed(path: &Path, line: usize, reason: impl Into<String>) -> MergeError {
    MergeError::Malformed {
        path: path.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn read_text(path: &Path) -> Result<String, MergeError> {
    let bytes = read_bounded(path, MAX_INPUT_BYTES).map_err(|source| MergeError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| malformed(path, 0, "not UTF-8"))
}

fn check_schema(path: &Path, line: usize, schema: u32) -> Result<(), MergeError> {
    if schema == SCHEMA {
        Ok(())
    } else {
        Err(malformed(
            path,
            line,
            format!("schema {schema}, this build reads schema {SCHEMA}"),
        ))
    }
}

/// Reads one `sim --json` output.
fn read_shard(path: &Path) -> Result<ShardFile, MergeError> {
    let text = read_text(path)?;
    let mut file: Option<ShardFile> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .map_err(|e| malformed(path, n, format!("not a sim --json line: {e}")))?;
        let Some(f) = file.as_mut() else {
            let Line::Start {
                schema,
                seeds,
                shard,
                users,
                duration_ms,
                faults,
                plant,
            } = line
            else {
                return Err(malformed(path, n, "the first line is not a `start` line"));
            };
            check_schema(path, n, schema)?;
            let range: SeedRange = seeds
                .parse()
                .map_err(|e| malformed(path, n, format!("seeds {seeds:?}: {e}")))?;
            let parsed: Shard = shard
                .parse()
                .map_err(|e| malformed(path, n, format!("shard {shard:?}: {e}")))?;
            // `Shard` keeps its index private; its text form is `I/N`, already validated.
            let index = shard
                .split_once('/')
                .and_then(|(i, _)| i.parse().ok())
                .ok_or_else(|| malformed(path, n, format!("shard {shard:?}")))?;
            file = Some(ShardFile {
                path: path.to_owned(),
                key: RunKey {
                    seeds,
                    users,
                    duration_ms,
                    faults,
                    plant,
                    shards: parsed.count(),
                },
                range,
                shard: parsed,
                index,
                seeds: BTreeMap::new(),
                failures: BTreeMap::new(),
                summary_seeds: None,
                summary_faults: None,
            });
            continue;
        };
        if f.summary_seeds.is_some() {
            return Err(malformed(path, n, "a line after the `summary` line"));
        }
        match line {
            Line::Start { .. } => return Err(malformed(path, n, "a second `start` line")),
            Line::Progress {
                schema,
                seed,
                passed,
                events,
                wall_ms,
                faults,
            } => {
                check_schema(path, n, schema)?;
                if !f.shard.contains(seed) || seed < f.range.first() || seed > f.range.last() {
                    return Err(malformed(
                        path,
                        n,
                        format!(
                            "seed {seed} is not in seeds {} shard {}",
                            f.key.seeds, f.shard
                        ),
                    ));
                }
                let dup = f.seeds.insert(
                    seed,
                    SeedLine {
                        passed,
                        events,
                        wall: Duration::from_millis(wall_ms),
                        faults,
                    },
                );
                if dup.is_some() {
                    return Err(malformed(path, n, format!("seed {seed} reported twice")));
                }
            }
            Line::Violation {
                schema,
                seed,
                invariant,
                message,
                repro,
            } => {
                check_schema(path, n, schema)?;
                f.failures.insert(
                    seed,
                    SeedFailure {
                        invariant,
                        message,
                        repro,
                    },
                );
            }
            Line::Summary {
                schema,
                seeds,
                faults,
            } => {
                check_schema(path, n, schema)?;
                f.summary_seeds = Some(seeds);
                f.summary_faults = faults;
            }
            Line::Other => {}
        }
    }
    file.ok_or_else(|| malformed(path, 0, "empty: no `start` line"))
}

/// Reads a failures file: `seed<TAB>invariant<TAB>repro` per line.
fn read_failures(path: &Path) -> Result<Vec<(u64, SeedFailure)>, MergeError> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let mut parts = raw.splitn(3, '\t');
        let (Some(seed), Some(invariant), Some(repro)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(path, i + 1, "not `seed<TAB>invariant<TAB>repro`"));
        };
        let seed = seed
            .parse()
            .map_err(|_| malformed(path, i + 1, format!("seed {seed:?}")))?;
        out.push((
            seed,
            SeedFailure {
                invariant: invariant.to_owned(),
                message: String::from("(from a failures file)"),
                repro: repro.to_owned(),
            },
        ));
    }
    Ok(out)
}

/// The merged run.
#[derive(Debug, Default)]
struct Merged {
    shards: Vec<ShardFile>,
    failures: BTreeMap<u64, SeedFailure>,
    problems: Vec<String>,
}

fn merge(shards: Vec<ShardFile>, extra: Vec<(u64, SeedFailure)>) -> Merged {
    let mut m = Merged::default();
    let Some(first) = shards.first() else {
        return m;
    };
    let key = first.key.clone();
    let range = first.range;
    let mut by_index: BTreeMap<u32, &Path> = BTreeMap::new();
    for s in &shards {
        if s.key != key {
            m.problems.push(format!(
                "{} is from another run ({}), not {} ({})",
                s.path.display(),
                s.key.describe(),
                first.path.display(),
                key.describe()
            ));
            continue;
        }
        if let Some(other) = by_index.insert(s.index, &s.path) {
            m.problems.push(format!(
                "shard {} given twice: {} and {}",
                s.shard,
                other.display(),
                s.path.display()
            ));
        }
        let expected = range.shard_len(s.shard);
        match s.summary_seeds {
            None => m.problems.push(format!(
                "{} (shard {}) has no `summary` line: the run did not finish",
                s.path.display(),
                s.shard
            )),
            Some(n) if n != s.seeds.len() as u64 => m.problems.push(format!(
                "{} (shard {}) sums up {n} seeds but reports {}",
                s.path.display(),
                s.shard,
                s.seeds.len()
            )),
            Some(n) if n < expected && s.failures.is_empty() => m.problems.push(format!(
                "{} (shard {}) ran {n} of its {expected} seeds without a failure to stop at",
                s.path.display(),
                s.shard
            )),
            Some(_) => {}
        }
        if let Some(summed) = &s.summary_faults {
            let seen = totals(s.seeds.values()).faults;
            if *summed != seen {
                m.problems.push(format!(
                    "{} (shard {}) sums up faults {} but its seeds injected {}",
                    s.path.display(),
                    s.shard,
                    fault_list(summed),
                    fault_list(&seen)
                ));
            }
        }
        for (seed, line) in &s.seeds {
            if !line.passed && !s.failures.contains_key(seed) {
                m.problems.push(format!(
                    "{}: seed {seed} failed without a `violation` line",
                    s.path.display()
                ));
            }
        }
        for (seed, f) in &s.failures {
            m.failures.insert(*seed, f.clone());
        }
    }
    let missing: Vec<String> = (0..key.shards)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{}", key.shards))
        .collect();
    if !missing.is_empty() {
        m.problems
            .push(format!("shards missing: {}", missing.join(" ")));
    }
    // A failures file appends across runs: an entry for a seed the JSON Lines say passed is
    // from an earlier run, not this one.
    let passed: BTreeSet<u64> = shards
        .iter()
        .flat_map(|s| {
            s.seeds
                .iter()
                .filter(|(_, l)| l.passed)
                .map(|(seed, _)| *seed)
        })
        .collect();
    for (seed, f) in extra {
        if seed >= range.first() && seed <= range.last() && !passed.contains(&seed) {
            m.failures.entry(seed).or_insert(f);
        }
    }
    m.shards = shards;
    m
}

impl MergeArgs {
    /// Reads, checks and merges the inputs, prints the summary, writes `--junit`.
    pub(crate) fn run(self, stdout: &mut dyn Write) -> Result<Outcome, MergeError> {
        let mut shards = Vec::with_capacity(self.inputs.len());
        for path in &self.inputs {
            shards.push(read_shard(path)?);
        }
        shards.sort_by_key(|s| s.index);
        let mut extra = Vec::new();
        for path in &self.failures {
            extra.extend(read_failures(path)?);
        }
        let merged = merge(shards, extra);
        if self.json {
            render_json(&merged, stdout)?;
        } else {
            render_human(&merged, stdout)?;
        }
        if !merged.problems.is_empty() {
            return Err(MergeError::Inconsistent(merged.problems));
        }
        if let Some(path) = &self.junit {
            let suites = merged.shards.iter().map(|s| {
                let cases: Vec<SeedCase> = s
                    .seeds
                    .iter()
                    .map(|(seed, l)| SeedCase {
                        seed: *seed,
                        wall: l.wall,
                        failure: merged.failures.get(seed).cloned().filter(|_| !l.passed),
                    })
                    .collect();
                junit::seed_suite(&suite_name(&s.key.seeds, &s.shard.to_string()), &cases)
            });
            junit::write(path, &junit::report(suites))?;
        }
        Ok(if merged.failures.is_empty() {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
}

struct Totals {
    seeds: u64,
    passed: u64,
    events: u64,
    wall: Duration,
    faults: Faults,
}

fn totals<'a>(lines: impl Iterator<Item = &'a SeedLine>) -> Totals {
    let mut t = Totals {
        seeds: 0,
        passed: 0,
        events: 0,
        wall: Duration::ZERO,
        faults: Faults::new(),
    };
    for l in lines {
        t.seeds += 1;
        t.passed += u64::from(l.passed);
        t.events = t.events.saturating_add(l.events);
        t.wall = t.wall.saturating_add(l.wall);
        add_faults(&mut t.faults, &l.faults);
    }
    t
}

/// Faults as `client_crash 3, partition 1` (kinds in name order), or `none`.
fn fault_list(faults: &Faults) -> String {
    if faults.is_empty() {
        return String::from("none");
    }
    let parts: Vec<String> = faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    parts.join(", ")
}

/// Wall time as `1.234s`, as `sim` prints it.
fn seconds(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

fn render_human(m: &Merged, out: &mut dyn Write) -> io::Result<()> {
    if let Some(first) = m.shards.first() {
        writeln!(out, "gauntlet merge: {}", first.key.describe())?;
    }
    writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8} {:>12} {:>10}",
        "shard", "seeds", "passed", "failed", "events", "wall"
    )?;
    for s in &m.shards {
        let t = totals(s.seeds.values());
        writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>8} {:>12} {:>10}",
            s.shard.to_string(),
            t.seeds,
            t.passed,
            t.seeds - t.passed,
            t.events,
            seconds(t.wall)
        )?;
    }
    let t = totals(m.shards.iter().flat_map(|s| s.seeds.values()));
    writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8} {:>12} {:>10}",
        "total",
        t.seeds,
        t.passed,
        t.seeds - t.passed,
        t.events,
        seconds(t.wall)
    )?;
    writeln!(out, "faults: {}", fault_list(&t.faults))?;
    for (seed, f) in &m.failures {
        writeln!(
            out,
            "violation: invariant {} (seed {seed}): {}",
            f.invariant, f.message
        )?;
        writeln!(out, "repro: {}", f.repro)?;
    }
    if !m.failures.is_empty() {
        let seeds: BTreeSet<String> = m.failures.keys().map(u64::to_string).collect();
        let list: Vec<String> = seeds.into_iter().collect();
        writeln!(out, "failed seeds: {}", list.join(" "))?;
    }
    out.flush()
}

fn render_json(m: &Merged, out: &mut dyn Write) -> io::Result<()> {
    for s in &m.shards {
        let t = totals(s.seeds.values());
        let line = json!({"type": "shard", "schema": SCHEMA, "shard": s.shard.to_string(),
            "file": s.path.display().to_string(), "seeds": t.seeds, "passed": t.passed,
            "failed": t.seeds - t.passed, "events": t.events,
            "wall_ms": u64::try_from(t.wall.as_millis()).unwrap_or(u64::MAX),
            "faults": t.faults});
        writeln!(out, "{line}")?;
    }
    for (seed, f) in &m.failures {
        let line = json!({"type": "failure", "schema": SCHEMA, "seed": seed,
            "invariant": f.invariant, "message": f.message, "repro": f.repro});
        writeln!(out, "{line}")?;
    }
    let t = totals(m.shards.iter().flat_map(|s| s.seeds.values()));
    let first = m.shards.first();
    let summary = json!({"type": "summary", "schema": SCHEMA,
        "seeds": first.map(|s| s.key.seeds.clone()),
        "shards": first.map(|s| s.key.shards),
        "seeds_run": t.seeds, "passed": t.passed, "failed": m.failures.len(),
        "failed_seeds": m.failures.keys().collect::<Vec<_>>(),
        "events": t.events, "faults": t.faults, "problems": m.problems});
    writeln!(out, "{summary}")?;
    out.flush()
}
