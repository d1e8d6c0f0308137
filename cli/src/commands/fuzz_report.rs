//! `gauntlet fuzz-report`: the fuzz smoke's per-target logs as a summary and JUnit XML.
//!
//! `.ci/fuzz-smoke` runs each target through `fuzz/run.sh` into `fuzz/work/<target>.smoke.log`
//! and ends each log with a `fuzz-smoke: exit <status>` line. This command reads those logs
//! (the target is the file name before `.smoke.log`), makes a test case per target, and puts
//! a crash's evidence (the oracle violation or sanitizer report, and the artifact path) in
//! the failure. It judges nothing libFuzzer did not: a target passed when its run exited 0.
//! Exit 1 when a target failed or did not finish, 2 when a log cannot be read.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::files::read_bounded;
use super::junit::{self, JunitError};
use super::{Exit, Outcome, output_exit};

/// Largest log read: libFuzzer's output for a short run is kilobytes; a runaway one is cut.
const MAX_LOG_BYTES: u64 = 64 << 20;
/// The line `.ci/fuzz-smoke` ends each log with.
const EXIT_PREFIX: &str = "fuzz-smoke: exit ";
/// Most evidence lines carried into a failure.
const MAX_EVIDENCE_LINES: usize = 12;

/// `gauntlet fuzz-report`: summarise fuzz smoke logs.
#[derive(Debug, Args)]
pub(crate) struct FuzzReportArgs {
    /// The smoke logs (`fuzz/work/<target>.smoke.log`).
    #[arg(value_name = "TARGET.smoke.log", required = true)]
    logs: Vec<PathBuf>,
    /// Also write JUnit XML: a test case per target.
    #[arg(long, value_name = "FILE.xml")]
    junit: Option<PathBuf>,
}

/// Why `gauntlet fuzz-report` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FuzzReportError {
    /// A log could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause (none: larger than the bound).
        #[source]
        source: Option<io::Error>,
    },
    /// Writing the summary failed.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// The `--junit` file could not be written.
    #[error(transparent)]
    Junit(#[from] JunitError),
}

impl FuzzReportError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            FuzzReportError::Read { .. } => Exit::Usage,
            FuzzReportError::Output(e) => output_exit(e),
            FuzzReportError::Junit(e) => e.exit(),
        }
    }
}

/// One target's smoke run, as read from its log.
#[derive(Debug, PartialEq, Eq)]
struct TargetRun {
    target: String,
    passed: bool,
    evidence: String,
    time: Option<Duration>,
}

fn target_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".smoke.log")
        .or_else(|| name.strip_suffix(".log"))
        .unwrap_or(&name)
        .to_owned()
}

/// Reads what libFuzzer and the smoke script wrote.
fn parse_log(target: String, text: &str) -> TargetRun {
    let status = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(EXIT_PREFIX))
        .map(|s| s.trim().parse::<i32>().ok());
    // libFuzzer's closing line: `Done 12345 runs in 15 second(s)`.
    let done = text.lines().rev().find(|l| l.starts_with("Done "));
    let time = done.and_then(|l| {
        let secs = l.split(" in ").nth(1)?.split_whitespace().next()?;
        secs.parse().ok().map(Duration::from_secs)
    });
    let interesting = |l: &&str| {
        l.contains("oracle violated")
            || l.contains("panicked at")
            || l.contains("ERROR: ")
            || l.contains("SUMMARY: ")
            || l.contains("Test unit written to")
            || l.contains("crash artifact")
    };
    let mut evidence: Vec<&str> = text
        .lines()
        .filter(interesting)
        .take(MAX_EVIDENCE_LINES)
        .collect();
    let passed = status == Some(Some(0));
    let summary = match status {
        Some(Some(0)) => done.unwrap_or("exit 0").to_owned(),
        Some(Some(code)) => format!("exit {code}"),
        Some(None) => "an unreadable exit status".to_owned(),
        None => "no exit status: the run did not finish".to_owned(),
    };
    if passed {
        evidence.clear();
    }
    let evidence = std::iter::once(summary.as_str())
        .chain(evidence)
        .collect::<Vec<_>>()
        .join("\n");
    TargetRun {
        target,
        passed,
        evidence,
        time,
    }
}

impl FuzzReportArgs {
    /// Reads every log, prints a line per target, writes `--junit`.
    pub(crate) fn run(self, stdout: &mut dyn Write) -> Result<Outcome, FuzzReportError> {
        let mut runs = Vec::with_capacity(self.logs.len());
        for path in &self.logs {
            let bytes =
                read_bounded(path, MAX_LOG_BYTES).map_err(|source| FuzzReportError::Read {
                    path: path.clone(),
                    source,
                })?;
            runs.push(parse_log(
                target_name(path),
                &String::from_utf8_lossy(&bytes),
            ));
        }
        let width = runs
            .iter()
            .map(|r| r.target.len())
            .max()
            .unwrap_or(6)
            .max(6);
        for r in &runs {
            let verdict = if r.passed { "pass" } else { "FAIL" };
            let first = r.evidence.lines().next().unwrap_or_default();
            writeln!(stdout, "{:<width$}  {verdict}  {first}", r.target)?;
            if !r.passed {
                for l in r.evidence.lines().skip(1) {
                    writeln!(stdout, "{:<width$}        {l}", "")?;
                }
            }
        }
        let failed = runs.iter().filter(|r| !r.passed).count();
        writeln!(stdout, "{} targets, {failed} failed", runs.len())?;
        if let Some(path) = &self.junit {
            let mut suite = quick_junit::TestSuite::new("gauntlet fuzz smoke");
            suite.add_test_cases(runs.iter().map(|r| {
                junit::verdict_case("gauntlet.fuzz", &r.target, r.passed, &r.evidence, r.time)
            }));
            junit::write(path, &junit::report([suite]))?;
        }
        Ok(if failed == 0 {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_run_passes_with_libfuzzer_done_line() {
        let log = "INFO: seed\n#1024 pulse\nDone 52341 runs in 15 second(s)\nfuzz-smoke: exit 0\n";
        let r = parse_log("token_bytes".into(), log);
        assert!(r.passed);
        assert_eq!(r.time, Some(Duration::from_secs(15)));
        assert_eq!(r.evidence, "Done 52341 runs in 15 second(s)");
    }

    #[test]
    fn crash_fails_with_violation_and_artifact() {
        let log = "thread '<unnamed>' panicked at fuzz_targets/handshake.rs:7:9:\n\
                   oracle violated: handshake 3 accepted as oscar\n\
                   ==12== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='a/'; Test unit written to a/crash-1\n\
                   fuzz-smoke: exit 77\n";
        let r = parse_log("handshake".into(), log);
        assert!(!r.passed);
        assert!(r.evidence.starts_with("exit 77\n"), "{}", r.evidence);
        assert!(r.evidence.contains("oracle violated: handshake 3"));
        assert!(r.evidence.contains("Test unit written to a/crash-1"));
    }

    #[test]
    fn log_without_exit_line_is_a_failure() {
        let r = parse_log("frame_route".into(), "INFO: Running\n");
        assert!(!r.passed);
        assert!(r.evidence.contains("did not finish"));
        assert_eq!(
            target_name(Path::new("w/frame_route.smoke.log")),
            "frame_route"
        );
    }
}
