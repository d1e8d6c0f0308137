//! The progress bar of a run, on stderr.
//!
//! Shown only when it helps a person watching: human output, not `--quiet`, and stderr is a
//! terminal. Otherwise the bar is hidden and every call is a cheap no-op, so CI logs and
//! `--json` consumers never see control characters. stdout is never touched. A run of
//! several seeds counts seeds; a run of one seed (which can take minutes at 10 000 users)
//! follows its simulated time, reported by the world through a [`Ticker`].
//! The bar reads the wall clock (for its rate and ETA) inside `indicatif`; nothing it
//! observes flows back into a run.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::format_duration;
use crate::config::{Output, SimConfig};
use crate::outcome::SeedResult;
use crate::world::LIVENESS;

const SEEDS_TEMPLATE: &str = "{bar:40} {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}";
const SIMULATED_TEMPLATE: &str = "{bar:40} {msg}  eta {eta}";

/// What the bar counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Seeds,
    /// Simulated milliseconds of the only seed, out of its safety and liveness phases.
    SimulatedMs,
}

/// A progress bar over the seeds of a run, or over the simulated time of its only seed
/// (possibly hidden).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    unit: Unit,
    failed: u64,
}

impl Progress {
    /// A bar over `total` seeds, drawn on stderr if `visible`.
    pub fn new(total: u64, visible: bool) -> Self {
        Self::with_unit(total, visible, Unit::Seeds, SEEDS_TEMPLATE)
    }

    /// A bar over one seed's `planned` simulated time, drawn on stderr if `visible`.
    pub fn simulated(planned: Duration, visible: bool) -> Self {
        let ms = u64::try_from(planned.as_millis()).unwrap_or(u64::MAX);
        Self::with_unit(ms, visible, Unit::SimulatedMs, SIMULATED_TEMPLATE)
    }

    fn with_unit(len: u64, visible: bool, unit: Unit, template: &str) -> Self {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        // A bad template is our bug, but not worth a crash: keep indicatif's default style.
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        Self {
            bar,
            unit,
            failed: 0,
        }
    }

    /// The bar for `cfg`'s run: visible only for human output, not quiet, and a terminal on
    /// stderr; over seeds when there are several, else over the seed's simulated time.
    pub fn for_run(cfg: &SimConfig) -> Self {
        let total = cfg.seeds().shard_len(cfg.shard());
        let visible = Self::wanted(cfg.output(), cfg.quiet()) && std::io::stderr().is_terminal();
        if total == 1 {
            Self::simulated(cfg.duration().saturating_add(LIVENESS), visible)
        } else {
            Self::new(total, visible)
        }
    }

    /// Whether a run with this output wants a bar (before the TTY check).
    pub fn wanted(output: Output, quiet: bool) -> bool {
        output == Output::Human && !quiet
    }

    /// The handle a running seed reports its simulated time through: it moves a bar over
    /// simulated time, and does nothing for a bar over seeds (whose seeds run at once on
    /// several threads).
    pub fn ticker(&self) -> Ticker {
        Ticker {
            bar: (self.unit == Unit::SimulatedMs).then(|| self.bar.clone()),
            label: "",
        }
    }

    /// Records one finished seed.
    pub fn seed_done(&mut self, result: &SeedResult) {
        match self.unit {
            Unit::Seeds => self.bar.inc(1),
            Unit::SimulatedMs => {
                self.ticker().simulated(result.outcome.simulated);
                self.bar.set_position(self.bar.length().unwrap_or(0));
            }
        }
        if !result.outcome.passed() {
            self.failed += 1;
            self.bar.set_message(format!("{} failed", self.failed));
        }
    }

    /// Runs `f` (which may print to the terminal) with the bar cleared, then redraws it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Seeds (or simulated milliseconds) recorded so far.
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

/// Where a running seed reports how far its simulated time has got (see
/// [`Progress::ticker`]). Cheap to call; a no-op when no bar follows the time.
#[derive(Clone, Debug, Default)]
pub struct Ticker {
    bar: Option<ProgressBar>,
    /// Put before the simulated time: why the bar started over, if it did.
    label: &'static str,
}

impl Ticker {
    /// A ticker that reports to nothing.
    pub fn none() -> Self {
        Self::default()
    }

    /// The seed has simulated `elapsed` so far.
    pub fn simulated(&self, elapsed: Duration) {
        if let Some(bar) = &self.bar {
            let len = bar.length().unwrap_or(0);
            let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
            bar.set_position(ms.min(len));
            // Whole seconds: milliseconds would flicker without telling a person anything.
            bar.set_message(format!(
                "{}simulated {} of {}",
                self.label,
                format_duration(Duration::from_secs(elapsed.as_secs())),
                format_duration(Duration::from_secs(len / 1000))
            ));
        }
    }

    /// The ticker for running the seed again inline, after its checks on a helper thread
    /// found a violation (the run that is reported): the bar starts over and says why,
    /// rather than seeming to lose the time it had shown.
    pub fn rerun(&self) -> Ticker {
        if let Some(bar) = &self.bar {
            bar.set_position(0);
            bar.reset_eta();
        }
        Ticker {
            bar: self.bar.clone(),
            label: "failed; running it again inline for the report: ",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{SeedOutcome, Violation};
    use crate::seeds::SeedRange;
    use std::time::Duration;

    #[test]
    fn a_rerun_starts_the_bar_over_and_says_why() {
        let p = Progress::simulated(Duration::from_secs(60), false);
        let ticker = p.ticker();
        ticker.simulated(Duration::from_secs(40));
        assert_eq!(p.position(), 40_000);
        assert_eq!(p.bar.message(), "simulated 40s of 1m");
        let again = ticker.rerun();
        assert_eq!(p.position(), 0);
        again.simulated(Duration::from_secs(3));
        assert_eq!(p.position(), 3_000);
        assert_eq!(
            p.bar.message(),
            "failed; running it again inline for the report: simulated 3s of 1m"
        );
    }

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
                marks: Default::default(),
                faults: Default::default(),
            },
            wall: Duration::ZERO,
        }
    }

    #[test]
    fn wanted_only_for_human_output_not_quiet() {
        assert!(Progress::wanted(Output::Human, false));
        assert!(!Progress::wanted(Output::Json, false));
        assert!(!Progress::wanted(Output::Human, true));
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
    fn a_single_seed_bar_follows_simulated_time_up_to_its_plan() {
        let mut p = Progress::simulated(Duration::from_secs(90), false);
        let ticker = p.ticker();
        ticker.simulated(Duration::from_millis(1500));
        assert_eq!(p.position(), 1500);
        // The drain after the liveness phase runs past the plan: the bar stops at its end.
        ticker.simulated(Duration::from_secs(95));
        assert_eq!(p.position(), 90_000);
        p.seed_done(&result(0, false));
        assert_eq!((p.position(), p.failed), (90_000, 1));
    }

    #[test]
    fn a_seeds_bar_ignores_simulated_time() {
        let p = Progress::new(4, false);
        p.ticker().simulated(Duration::from_secs(10));
        assert_eq!(p.position(), 0);
    }

    #[test]
    fn for_run_counts_seeds_or_one_seed_s_time() {
        let one = SimConfig::builder()
            .seeds(SeedRange::new(3, 4).unwrap())
            .duration(Duration::from_secs(60))
            .build()
            .unwrap();
        let p = Progress::for_run(&one);
        p.ticker().simulated(Duration::from_secs(2));
        assert_eq!(p.position(), 2000);
        let many = SimConfig::builder()
            .seeds(SeedRange::new(0, 10).unwrap())
            .build()
            .unwrap();
        let p = Progress::for_run(&many);
        p.ticker().simulated(Duration::from_secs(2));
        assert_eq!(p.position(), 0);
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
