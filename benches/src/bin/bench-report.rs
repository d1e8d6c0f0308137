//! `bench-report`: runs the criterion benches in a short mode (or reads an earlier run) and
//! prints each bench beside its floor: median, floor median, ratio, the issue-6 target and
//! whether it is met.
//!
//! ```text
//! cargo run --release -p gauntlet-benches --bin bench-report                 # run short, report
//! cargo run --release -p gauntlet-benches --bin bench-report -- --no-run     # report the last `cargo bench`
//! cargo run --release -p gauntlet-benches --bin bench-report -- --save-baseline main
//! cargo run --release -p gauntlet-benches --bin bench-report -- --no-run --read main
//! ```
//!
//! It reads criterion's `target/criterion/<group>/<bench>/<new|NAME>/estimates.json` and never
//! changes a measurement. Exit status: 0 when the table printed (met or not), 2 on bad usage,
//! missing results or a failed bench run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The criterion bench targets of this crate (the gungraun gate is not one of them).
const BENCH_TARGETS: [&str; 5] = ["token", "router", "fanout", "gateway", "sim"];

/// What a row's ratio must satisfy.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// Shown for orientation, no target.
    None,
    /// bench / floor at most this.
    MaxRatio(f64),
    /// Elements per second at least this (no floor).
    MinThroughput(f64),
}

/// One row: a bench, optionally a floor (scaled: `floor_scale` times the floor's median is the
/// comparable work), and a target.
struct Row {
    bench: &'static str,
    floor: Option<(&'static str, f64)>,
    target: Target,
}

const fn row(bench: &'static str, floor: Option<(&'static str, f64)>, target: Target) -> Row {
    Row {
        bench,
        floor,
        target,
    }
}

/// The table of issue 6, with the protocol-true fan-out floors of issue 20: a broadcast's copy
/// carries each user's own `seq` and `user_id`, so its floor builds one frame per user
/// (`floor_render_enqueue_1000`); `send_to_user_10_conns` starts from an inbound frame, so its
/// floor parses it, then builds the one user's frame and pushes it into 10 queues
/// (`floor_parse_render_enqueue_10`). `floor_enqueue_1000` (one shared frame into every queue)
/// stays as context, without a target, and so do ten render-and-push steps without the parse
/// (`floor_render_enqueue_1000` x0.01: ten frames built where the protocol needs one).
const ROWS: [Row; 16] = [
    row(
        "token/validate_uncached_hs256",
        Some(("token/floor_hs256", 1.0)),
        Target::MaxRatio(1.3),
    ),
    row(
        "token/validate_uncached_hs256",
        Some(("token/jsonwebtoken_decode_hs256", 1.0)),
        Target::MaxRatio(0.6),
    ),
    row(
        "token/jsonwebtoken_decode_hs256",
        Some(("token/floor_hs256", 1.0)),
        Target::None,
    ),
    row("token/validate_uncached_rs256", None, Target::None),
    row("token/validate_uncached_es256", None, Target::None),
    row("token/validate_uncached_eddsa", None, Target::None),
    row(
        "token/validate_cached",
        Some(("token/floor_map_lookup", 1.0)),
        Target::MaxRatio(2.0),
    ),
    row(
        "token/validate_cached",
        Some(("token/validate_uncached_hs256", 1.0)),
        Target::MaxRatio(1.0 / 15.0),
    ),
    row(
        "router/parse_route_ping",
        Some(("router/floor_serde_typed", 1.0)),
        Target::MaxRatio(1.5),
    ),
    row(
        "router/parse_route_user_message",
        Some(("router/floor_serde_typed", 1.0)),
        Target::None,
    ),
    row(
        "fanout/send_to_user_10_conns",
        Some(("fanout/floor_parse_render_enqueue_10", 1.0)),
        Target::MaxRatio(2.0),
    ),
    row(
        "fanout/send_to_user_10_conns",
        Some(("fanout/floor_render_enqueue_1000", 0.01)),
        Target::None,
    ),
    row(
        "fanout/send_to_user_10_conns",
        Some(("fanout/floor_enqueue_1000", 0.01)),
        Target::None,
    ),
    row(
        "fanout/broadcast_1000_conns",
        Some(("fanout/floor_render_enqueue_1000", 1.0)),
        Target::MaxRatio(2.0),
    ),
    row(
        "fanout/broadcast_1000_conns",
        Some(("fanout/floor_enqueue_1000", 1.0)),
        Target::None,
    ),
    row(
        "sim/events_1000_users",
        None,
        Target::MinThroughput(1_000_000.0),
    ),
];

/// Benches reported on their own line after the table (no floor, no target).
const EXTRA: [&str; 1] = ["gateway/handshake_hs256"];

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
enum ReportError {
    /// The command line is wrong.
    #[error(
        "{0}\nusage: bench-report [--no-run] [--full | --smoke] [--save-baseline NAME | --read NAME] [--criterion-dir DIR]"
    )]
    Usage(String),
    /// `cargo bench` failed or could not start.
    #[error("cargo bench failed: {0}")]
    BenchRun(String),
    /// A result file is missing or unreadable.
    #[error("cannot read {path}: {reason} (run the benches first, or drop --no-run)")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A result file does not have the expected shape.
    #[error("{path}: not a criterion result: {reason}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
}

const HELP: &str = "\
bench-report: run the criterion benches of gauntlet-benches in a short mode (or read an earlier
run) and print each bench beside its floor: median, floor median, ratio, target, PASS/FAIL.

usage: bench-report [--no-run] [--full | --smoke] [--save-baseline NAME | --read NAME] [--criterion-dir DIR]

  --no-run              do not run the benches; report the results already on disk
  --full                run with criterion's default (longer) timings instead of the short mode
  --smoke               run every bench as briefly as criterion allows (10 samples, ~0.2 s
                        each): checks that the benches, this report and the baselines work
                        (CI runs it); its figures are too noisy to compare
  --save-baseline NAME  run and also save the results as criterion baseline NAME
  --read NAME           report baseline NAME (saved earlier) instead of the latest run
  --criterion-dir DIR   where criterion keeps its results (default: <workspace>/target/criterion)
  -h, --help            print this help

Compare two branches: on the first, `bench-report --save-baseline main`; on the second,
`cargo bench -p gauntlet-benches -- --baseline main` prints criterion's change per bench.
Exit status: 0 when the table printed (targets met or not), 2 on bad usage, missing results or
a failed bench run.
";

/// How long criterion measures each bench.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Length {
    /// 0.3 s warm-up, 1 s measurement: the default.
    Short,
    /// Criterion's own defaults.
    Full,
    /// The least criterion accepts, for checking that the commands work.
    Smoke,
}

impl Length {
    /// Criterion's flags for this length.
    fn criterion_args(self) -> &'static [&'static str] {
        match self {
            Length::Short => &["--warm-up-time", "0.3", "--measurement-time", "1"],
            Length::Full => &[],
            Length::Smoke => &[
                "--warm-up-time",
                "0.05",
                "--measurement-time",
                "0.1",
                "--sample-size",
                "10",
                "--nresamples",
                "1000",
            ],
        }
    }
}

struct Options {
    help: bool,
    run: bool,
    length: Length,
    save_baseline: Option<String>,
    read: Option<String>,
    criterion_dir: PathBuf,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, ReportError> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Options {
        help: false,
        run: true,
        length: Length::Short,
        save_baseline: None,
        read: None,
        criterion_dir: workspace.join("target").join("criterion"),
    };
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| ReportError::Usage(format!("{flag} needs a value")))
        };
        match a.as_str() {
            "-h" | "--help" => o.help = true,
            "--no-run" => o.run = false,
            "--full" | "--smoke" if o.length != Length::Short => {
                return Err(ReportError::Usage(
                    "--full and --smoke exclude each other".into(),
                ));
            }
            "--full" => o.length = Length::Full,
            "--smoke" => o.length = Length::Smoke,
            "--save-baseline" => o.save_baseline = Some(value("--save-baseline")?),
            "--read" => o.read = Some(value("--read")?),
            "--criterion-dir" => o.criterion_dir = PathBuf::from(value("--criterion-dir")?),
            other => return Err(ReportError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    if o.save_baseline.is_some() && o.read.is_some() {
        return Err(ReportError::Usage(
            "--save-baseline and --read exclude each other".into(),
        ));
    }
    if o.save_baseline.is_some() && !o.run {
        return Err(ReportError::Usage(
            "--save-baseline needs a run (drop --no-run)".into(),
        ));
    }
    Ok(o)
}

fn run_benches(o: &Options) -> Result<(), ReportError> {
    let mut cmd = Command::new("cargo");
    cmd.args(["bench", "-p", "gauntlet-benches"]);
    for t in BENCH_TARGETS {
        cmd.args(["--bench", t]);
    }
    cmd.arg("--");
    cmd.args(o.length.criterion_args());
    if let Some(name) = &o.save_baseline {
        cmd.args(["--save-baseline", name]);
    }
    // Criterion's own output goes to stderr, so stdout carries only the table.
    cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    eprintln!("bench-report: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| ReportError::BenchRun(e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(ReportError::BenchRun(status.to_string()))
    }
}

/// A bench's result: median nanoseconds per iteration and elements per iteration, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Measured {
    median_ns: f64,
    elements: Option<f64>,
}

fn read_json(path: &Path) -> Result<serde_json::Value, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ReportError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| ReportError::Shape {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads `<dir>/<group>/<bench>/<which>/{estimates,benchmark}.json`.
fn read_measured(dir: &Path, id: &str, which: &str) -> Result<Measured, ReportError> {
    let base = dir.join(id).join(which);
    let estimates = base.join("estimates.json");
    let median_ns = read_json(&estimates)?
        .pointer("/median/point_estimate")
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| ReportError::Shape {
            path: estimates.clone(),
            reason: "no median.point_estimate".into(),
        })?;
    let benchmark = base.join("benchmark.json");
    let elements = match read_json(&benchmark) {
        Ok(v) => v
            .pointer("/throughput/Elements")
            .and_then(serde_json::Value::as_f64),
        Err(ReportError::Read { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(Measured {
        median_ns,
        elements,
    })
}

fn fmt_time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The ratio shown and whether the target is met (`None`: no target).
fn evaluate(
    bench: Measured,
    floor: Option<(Measured, f64)>,
    target: Target,
) -> (String, String, Option<bool>) {
    match (floor, target) {
        (_, Target::MinThroughput(min)) => {
            let per_sec = bench.elements.map(|e| e * 1e9 / bench.median_ns);
            let shown = per_sec.map_or("-".into(), |p| format!("{:.0} elem/s", p));
            (
                shown,
                format!(">= {min:.0} elem/s"),
                per_sec.map(|p| p >= min),
            )
        }
        (Some((f, scale)), t) => {
            let ratio = bench.median_ns / (f.median_ns * scale);
            let (target, met) = match t {
                Target::MaxRatio(max) if max < 1.0 => (
                    format!("<= {max:.3}x ({:.1}x faster)", 1.0 / max),
                    Some(ratio <= max),
                ),
                Target::MaxRatio(max) => (format!("<= {max}x"), Some(ratio <= max)),
                _ => ("-".into(), None),
            };
            (format!("{ratio:.2}x"), target, met)
        }
        (None, _) => ("-".into(), "-".into(), None),
    }
}

fn report(o: &Options) -> Result<String, ReportError> {
    let which = o
        .read
        .as_deref()
        .or(o.save_baseline.as_deref())
        .unwrap_or("new");
    let get = |id: &str| read_measured(&o.criterion_dir, id, which);
    let mut out = String::new();
    let header = [
        "bench",
        "median",
        "floor",
        "floor median",
        "ratio",
        "target",
        "result",
    ];
    let mut lines: Vec<[String; 7]> = Vec::new();
    let (mut met, mut missed) = (0, 0);
    for r in &ROWS {
        let bench = get(r.bench)?;
        let floor = match r.floor {
            Some((id, scale)) => Some((get(id)?, scale, id)),
            None => None,
        };
        let (ratio, target, ok) = evaluate(bench, floor.map(|(m, s, _)| (m, s)), r.target);
        let floor_name = floor.map_or("-".to_string(), |(_, s, id)| {
            if s == 1.0 {
                id.to_string()
            } else {
                format!("{id} x{s}")
            }
        });
        let floor_median = floor.map_or("-".to_string(), |(m, s, _)| fmt_time(m.median_ns * s));
        let result = match ok {
            Some(true) => {
                met += 1;
                "PASS"
            }
            Some(false) => {
                missed += 1;
                "FAIL"
            }
            None => "-",
        };
        lines.push([
            r.bench.to_string(),
            fmt_time(bench.median_ns),
            floor_name,
            floor_median,
            ratio,
            target,
            result.to_string(),
        ]);
    }
    for id in EXTRA {
        let m = get(id)?;
        lines.push([
            id.to_string(),
            fmt_time(m.median_ns),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    let mut width = header.map(str::len);
    for l in &lines {
        for (w, cell) in width.iter_mut().zip(l) {
            *w = (*w).max(cell.len());
        }
    }
    let mut put = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "| {} |", parts.join(" | "));
    };
    put(&header.map(String::from));
    put(&width.map(|w| "-".repeat(w)));
    for l in &lines {
        put(l);
    }
    let _ = writeln!(
        out,
        "\n{met} of {} targets met ({which} results in {})",
        met + missed,
        o.criterion_dir.display()
    );
    Ok(out)
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|o| {
        if o.help {
            return Ok(HELP.to_string());
        }
        if o.run {
            run_benches(&o)?;
        }
        report(&o)
    });
    match result {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(median_ns: f64) -> Measured {
        Measured {
            median_ns,
            elements: None,
        }
    }

    #[test]
    fn help_flag_is_recognised_and_skips_the_run() {
        let o = parse_args(["--help".to_string()]).ok();
        assert!(o.is_some_and(|o| o.help));
        let err = parse_args(["--frobnicate".to_string()]).err();
        assert!(matches!(err, Some(ReportError::Usage(m)) if m.contains("--frobnicate")));
    }

    #[test]
    fn evaluate_ratio_over_limit_fails() {
        let (ratio, _, ok) = evaluate(m(300.0), Some((m(200.0), 1.0)), Target::MaxRatio(1.3));
        assert_eq!(ratio, "1.50x");
        assert_eq!(ok, Some(false));
    }

    #[test]
    fn evaluate_scaled_floor_within_limit_passes() {
        // 10 pushes of a 1000-push floor of 20 us is 200 ns; 350 ns is 1.75x.
        let (ratio, _, ok) = evaluate(m(350.0), Some((m(20_000.0), 0.01)), Target::MaxRatio(2.0));
        assert_eq!(ratio, "1.75x");
        assert_eq!(ok, Some(true));
    }

    #[test]
    fn evaluate_speedup_target_needs_fifteen_times() {
        let fourteen = evaluate(
            m(100.0),
            Some((m(1400.0), 1.0)),
            Target::MaxRatio(1.0 / 15.0),
        );
        let sixteen = evaluate(
            m(100.0),
            Some((m(1600.0), 1.0)),
            Target::MaxRatio(1.0 / 15.0),
        );
        assert_eq!((fourteen.2, sixteen.2), (Some(false), Some(true)));
    }

    #[test]
    fn evaluate_throughput_from_elements_and_median() {
        let run = Measured {
            median_ns: 100e6,
            elements: Some(60_000.0),
        };
        let (shown, _, ok) = evaluate(run, None, Target::MinThroughput(500_000.0));
        assert_eq!(shown, "600000 elem/s");
        assert_eq!(ok, Some(true));
    }

    #[test]
    fn read_measured_reads_median_and_elements() {
        let dir = std::env::temp_dir().join(format!("bench-report-test-{}", std::process::id()));
        let base = dir.join("sim/events_1000_users/new");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(
            base.join("estimates.json"),
            r#"{"mean":{"point_estimate":9.0},"median":{"point_estimate":1234.5}}"#,
        )
        .unwrap();
        std::fs::write(
            base.join("benchmark.json"),
            r#"{"throughput":{"Elements":777}}"#,
        )
        .unwrap();
        let got = read_measured(&dir, "sim/events_1000_users", "new").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            got,
            Measured {
                median_ns: 1234.5,
                elements: Some(777.0)
            }
        );
    }

    #[test]
    fn read_measured_missing_file_is_read_error() {
        let dir = std::env::temp_dir().join("bench-report-test-missing");
        assert!(matches!(
            read_measured(&dir, "token/x", "new"),
            Err(ReportError::Read { .. })
        ));
    }

    #[test]
    fn parse_args_lengths_default_short_and_full_excludes_smoke() {
        let length =
            |args: &[&str]| parse_args(args.iter().map(|a| a.to_string())).map(|o| o.length);
        assert!(matches!(length(&[]), Ok(Length::Short)));
        assert!(matches!(length(&["--full"]), Ok(Length::Full)));
        assert!(matches!(length(&["--smoke"]), Ok(Length::Smoke)));
        assert!(matches!(
            length(&["--smoke", "--full"]),
            Err(ReportError::Usage(_))
        ));
        assert!(matches!(
            length(&["--full", "--smoke"]),
            Err(ReportError::Usage(_))
        ));
        assert_eq!(
            Length::Smoke.criterion_args().len() % 2,
            0,
            "flag and value pairs"
        );
    }

    #[test]
    fn parse_args_save_and_read_conflict() {
        let args = ["--save-baseline", "a", "--read", "b"].map(String::from);
        assert!(matches!(parse_args(args), Err(ReportError::Usage(_))));
    }
}
