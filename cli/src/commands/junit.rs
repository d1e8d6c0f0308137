//! JUnit XML for CI systems that show test results (GitHub, GitLab, Jenkins): a test case per
//! seed (`sim`, `merge`), per check (`probe`) or per fuzz target (`fuzz-report`).
//!
//! Built with `quick-junit`, never by hand, so escaping and structure are the crate's. This
//! module only maps results to cases and writes the file; it never decides whether something
//! passed. JSON Lines stays the machine format (`docs/json-lines.md`): JUnit carries what a
//! test view shows, a failure's message and, for a seed, its `repro:` line.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::Exit;

/// The report name every `gauntlet` JUnit file carries.
pub(crate) const REPORT_NAME: &str = "gauntlet";

/// Why a JUnit file could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JunitError {
    /// The report could not be serialised (a writer error inside quick-junit).
    #[error("rendering JUnit XML")]
    Serialize(#[from] quick_junit::SerializeError),
    /// The file could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl JunitError {
    /// The exit class: the output asked for could not be written, so the run did not do
    /// what it was asked (the findings are still on stdout).
    pub(crate) fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// One seed's result as a test case needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeedCase {
    /// The seed.
    pub(crate) seed: u64,
    /// Wall time of the run.
    pub(crate) wall: Duration,
    /// The violation, when an invariant failed.
    pub(crate) failure: Option<SeedFailure>,
}

/// A failing seed: what broke and how to rerun it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SeedFailure {
    /// The invariant's name (a checker module, or `replay`).
    pub(crate) invariant: String,
    /// The checker's message.
    pub(crate) message: String,
    /// The command line that reruns this seed alone.
    pub(crate) repro: String,
}

/// A suite of seed cases, named after the run (`seeds 0..100 shard 3/8`).
pub(crate) fn seed_suite(name: &str, cases: &[SeedCase]) -> TestSuite {
    let mut suite = TestSuite::new(name);
    let mut total = Duration::ZERO;
    for c in cases {
        total = total.saturating_add(c.wall);
        let status = match &c.failure {
            None => TestCaseStatus::success(),
            Some(f) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type(f.invariant.as_str())
                    .set_message(format!("invariant {}: {}", f.invariant, f.message))
                    // The body a test view shows expanded: the message, then the line to paste.
                    .set_description(format!("{}\nrepro: {}", f.message, f.repro));
                s
            }
        };
        let mut case = TestCase::new(format!("seed {}", c.seed), status);
        case.set_classname("gauntlet.sim").set_time(c.wall);
        suite.add_test_case(case);
    }
    suite.set_time(total);
    suite
}

/// One pass/fail case with the evidence as its message (probe checks, fuzz targets).
pub(crate) fn verdict_case(
    classname: &str,
    name: &str,
    passed: bool,
    evidence: &str,
    time: Option<Duration>,
) -> TestCase {
    let status = if passed {
        TestCaseStatus::success()
    } else {
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_message(evidence);
        s
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(classname);
    if let Some(t) = time {
        case.set_time(t);
    }
    if passed && !evidence.is_empty() {
        // Passing evidence is still worth reading (what was observed), out of the way.
        case.set_system_out(evidence);
    }
    case
}

/// A report of the given suites.
pub(crate) fn report(suites: impl IntoIterator<Item = TestSuite>) -> Report {
    let mut r = Report::new(REPORT_NAME);
    r.add_test_suites(suites);
    r
}

/// Writes `report` to `path` (replacing it).
pub(crate) fn write(path: &Path, report: &Report) -> Result<(), JunitError> {
    let mut xml = Vec::new();
    report.serialize(&mut xml)?;
    std::fs::write(path, xml).map_err(|source| JunitError::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_seed_case_carries_invariant_message_and_repro() {
        let cases = [
            SeedCase {
                seed: 3,
                wall: Duration::from_millis(5),
                failure: None,
            },
            SeedCase {
                seed: 4,
                wall: Duration::from_millis(7),
                failure: Some(SeedFailure {
                    invariant: "delivery".into(),
                    message: "conn-1 <got> & lost".into(),
                    repro: "gauntlet sim --seed 4 --users 5".into(),
                }),
            },
        ];
        let xml = report([seed_suite("seeds 3..5 shard 0/1", &cases)])
            .to_string()
            .unwrap();
        assert!(xml.contains(r#"tests="2""#), "{xml}");
        assert!(xml.contains(r#"failures="1""#), "{xml}");
        assert!(xml.contains(r#"name="seed 4""#), "{xml}");
        assert!(xml.contains("invariant delivery: conn-1 &lt;got&gt; &amp; lost"));
        assert!(
            xml.contains("repro: gauntlet sim --seed 4 --users 5"),
            "{xml}"
        );
    }
}
