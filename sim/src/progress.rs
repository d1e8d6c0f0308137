//! The progress bar of multi-seed runs, on stderr.
//!
//! Shown only when it helps a person watching: several seeds, human output, not `--quiet`,
//! and stderr is a terminal. Otherwise the bar is hidden and every call is a cheap no-op,
//! so CI logs and `--json` consumers never see control characters. stdout is never touched.
//! The bar reads the wall clock (for its rate and ETA) inside `indicatif`; nothing it
//! observes flows back into a run.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Output, SimConfig};
use crate::runner::SeedResult;

const TEMPLATE: &str = "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}";

/// A progress bar over the seeds of a run (possibly hidden).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    failed: u64,
}

impl Progress {
    /// A bar over `total` seeds, drawn on stderr if `visible`.
    pub fn new(total: u64, visible: bool) -> Self {
        let bar = if visible {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        // A bad template is our bug, but not worth a crash: keep indicatif's default style.
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style);
        }
        Self { bar, failed: 0 }
    }

    /// The bar for `cfg`'s run: visible only for several seeds, human output, not quiet,
    /// and a terminal on stderr.
    pub fn for_run(cfg: &SimConfig) -> Self {
        let total = cfg.seeds().shard_len(cfg.shard());
        let visible =
            Self::wanted(total, cfg.output(), cfg.quiet()) && std::io::stderr().is_terminal();
        Self::new(total, visible)
    }

    /// Whether a run of `total` seeds with this output wants a bar (before the TTY check).
    pub fn wanted(total: u64, output: Output, quiet: bool) -> bool {
        total > 1 && output == Output::Human && !quiet
    }

    /// Records one finished seed.
    pub fn seed_done(&mut self, result: &SeedResult) {
        if !result.outcome.passed() {
            self.failed += 1;
            self.bar.set_message(format!("{} failed", self.failed));
        }
        self.bar.inc(1);
    }

    /// Runs `f` (which may print to the terminal) with the bar cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Seeds recorded so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Whether the bar is drawn.
    pub fn is_visible(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Removes the bar from the terminal.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{SeedOutcome, SeedRange, Violation};
    use std::time::Duration;

    fn result(seed: u64, passed: bool) -> SeedResult {
        SeedResult {
            outcome: SeedOutcome {
                seed,
                events: 1,
                simulated: Duration::from_secs(1),
                state_hash: [0; 32],
                violation: (!passed).then(|| Violation {
                    invariant: "x".into(),
                    step: 0,
                    message: String::new(),
                    last_events: vec![],
                }),
            },
            wall: Duration::ZERO,
        }
    }

    #[test]
    fn wanted_only_for_multi_seed_human_not_quiet() {
        assert!(Progress::wanted(5, Output::Human, false));
        assert!(!Progress::wanted(1, Output::Human, false));
        assert!(!Progress::wanted(5, Output::Json, false));
        assert!(!Progress::wanted(5, Output::Human, true));
    }

    #[test]
    fn hidden_bar_still_counts_seeds_and_failures() {
        let mut p = Progress::new(3, false);
        assert!(!p.is_visible());
        p.seed_done(&result(0, true));
        p.seed_done(&result(1, false));
        p.seed_done(&result(2, false));
        assert_eq!(p.position(), 3);
        assert_eq!(p.failed, 2);
        assert_eq!(p.suspend(|| 5), 5);
        p.finish();
    }

    #[test]
    fn for_run_json_is_hidden() {
        let cfg = SimConfig::builder()
            .seeds(SeedRange::new(0, 10).unwrap())
            .output(Output::Json)
            .build()
            .unwrap();
        assert!(!Progress::for_run(&cfg).is_visible());
    }
}
