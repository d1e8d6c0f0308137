//! `gauntlet sim --html FILE`: a one-page, self-contained HTML summary of a run, rendered
//! from the same [`SeedResult`]s and [`Summary`] the human and JSON Lines reports print.
//!
//! [`SimPage`] keeps what the page shows as the seeds arrive (a row per seed, up to
//! [`MAX_ROWS`], and every failing seed's violation with its repro command line) and renders
//! once the summary is in. Every text from the run goes through [`html::escape`]: violation
//! messages and last events carry user input (frames, tokens, thread ids).

use std::fmt::Write as _;
use std::time::Duration;

use gauntlet_sim::{MAX_FAILED_SEEDS, SeedResult, SimConfig, Summary, format_duration, hex};

use super::html;

/// Most seed rows the page keeps; the figures above them count every seed.
pub(crate) const MAX_ROWS: usize = 10_000;
/// Slowest seeds charted.
const SLOWEST: usize = 20;

/// One seed's row.
struct Row {
    seed: u64,
    passed: bool,
    events: u64,
    simulated: Duration,
    wall: Duration,
    faults: u64,
    state_hash: String,
}

/// A failing seed, as the human report's violation block shows it.
struct Failure {
    seed: u64,
    invariant: String,
    step: u64,
    message: String,
    last_events: Vec<String>,
    repro: String,
}

/// The page, filled in as the run reports.
#[derive(Default)]
pub(crate) struct SimPage {
    rows: Vec<Row>,
    failures: Vec<Failure>,
    /// Seeds run past [`MAX_ROWS`], not shown as rows.
    rows_left_out: u64,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl SimPage {
    /// Keeps what the page shows of one seed.
    pub(crate) fn seed(&mut self, cfg: &SimConfig, result: &SeedResult) {
        let o = &result.outcome;
        if self.rows.len() < MAX_ROWS {
            self.rows.push(Row {
                seed: o.seed,
                passed: o.passed(),
                events: o.events,
                simulated: o.simulated,
                wall: result.wall,
                faults: o.faults.values().fold(0, |a, n| a.saturating_add(*n)),
                state_hash: hex(&o.state_hash),
            });
        } else {
            self.rows_left_out += 1;
        }
        if let Some(v) = &o.violation
            && self.failures.len() < MAX_FAILED_SEEDS
        {
            let from = v
                .last_events
                .len()
                .saturating_sub(gauntlet_sim::MAX_LAST_EVENTS);
            self.failures.push(Failure {
                seed: o.seed,
                invariant: v.invariant.clone(),
                step: v.step,
                message: v.message.clone(),
                last_events: v.last_events.get(from..).unwrap_or_default().to_vec(),
                repro: cfg.repro_command(o.seed),
            });
        }
    }

    /// The whole page.
    pub(crate) fn render(&self, cfg: &SimConfig, s: &Summary) -> String {
        let e = html::escape;
        let passed = s.failed == 0;
        let mut body = format!(
            "<p>Seeds <code>{}</code>, shard <code>{}</code>, {} users, {} simulated each, \
             faults <code>{}</code>{}: <span class=\"{}\" id=\"verdict\">{}</span></p>\n",
            e(&cfg.seeds().to_string()),
            e(&cfg.shard().to_string()),
            cfg.users(),
            e(&format_duration(cfg.duration())),
            e(cfg.faults().name()),
            cfg.plant()
                .map(|p| format!(", planted bug <code>{}</code>", e(p)))
                .unwrap_or_default(),
            if passed { "pass" } else { "fail" },
            if passed {
                "every invariant held".to_string()
            } else {
                format!("{} seed(s) violated an invariant", s.failed)
            }
        );
        let fault_total = s.faults.values().fold(0u64, |a, n| a.saturating_add(*n));
        let ratio = if s.wall.is_zero() {
            "-".to_string()
        } else {
            // Display only.
            format!("{:.1}x", s.simulated.as_secs_f64() / s.wall.as_secs_f64())
        };
        body.push_str("<h2>Figures</h2>\n");
        body.push_str(&html::figures(&[
            ("seeds", "seeds run", s.seeds.to_string()),
            ("passed", "passed", s.passed.to_string()),
            ("failed", "failed", s.failed.to_string()),
            ("events", "events", s.events.to_string()),
            ("faults", "timed faults injected", fault_total.to_string()),
            ("simulated", "simulated time", format_duration(s.simulated)),
            ("wall_ms", "wall time (ms)", millis(s.wall).to_string()),
            (
                "events_per_sec",
                "events per second",
                s.events_per_sec().to_string(),
            ),
            ("ratio", "simulated / wall", ratio),
        ]));
        body.push_str("<h2>Faults injected, by kind</h2>\n");
        if s.faults.is_empty() {
            body.push_str("<p id=\"no-faults\">No timed faults were injected.</p>\n");
        } else {
            let bars: Vec<(String, u64)> =
                s.faults.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            body.push_str(&html::bar_chart("timed faults over every seed", &bars));
            let rows: Vec<(String, String, String)> = s
                .faults
                .iter()
                .map(|(k, n)| (format!("fault-{k}"), k.to_string(), n.to_string()))
                .collect();
            let rows: Vec<(&str, &str, String)> = rows
                .iter()
                .map(|(id, k, n)| (id.as_str(), k.as_str(), n.clone()))
                .collect();
            body.push_str(&html::figures(&rows));
        }
        body.push_str(
            "<p>Per-message faults (latency, loss, duplication, reordering, corruption) act on \
             every frame and are not counted here.</p>\n",
        );
        self.violations(&mut body);
        self.timings(&mut body);
        self.seed_table(&mut body);
        html::page("gauntlet sim", &body)
    }

    fn violations(&self, body: &mut String) {
        let e = html::escape;
        body.push_str("<h2>Violations</h2>\n");
        if self.failures.is_empty() {
            body.push_str("<p id=\"no-violations\">None.</p>\n");
            return;
        }
        for f in &self.failures {
            let _ = writeln!(
                body,
                "<h3 id=\"violation-{seed}\">seed {seed}: invariant <code>{inv}</code> at step \
                 {step}</h3>\n<pre class=\"message\">{msg}</pre>",
                seed = f.seed,
                inv = e(&f.invariant),
                step = f.step,
                msg = e(&f.message)
            );
            if !f.last_events.is_empty() {
                let _ = writeln!(
                    body,
                    "<details><summary>last {} events</summary><pre>{}</pre></details>",
                    f.last_events.len(),
                    e(&f.last_events.join("\n"))
                );
            }
            let _ = writeln!(
                body,
                "<p>Rerun this seed alone:</p>\n<pre class=\"repro\"><code>{}</code></pre>",
                e(&f.repro)
            );
        }
    }

    fn timings(&self, body: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let mut slowest: Vec<&Row> = self.rows.iter().collect();
        slowest.sort_by(|a, b| b.wall.cmp(&a.wall).then(a.seed.cmp(&b.seed)));
        slowest.truncate(SLOWEST);
        let bars: Vec<(String, u64)> = slowest
            .iter()
            .map(|r| (format!("seed {}", r.seed), millis(r.wall)))
            .collect();
        body.push_str("<h2>Timings</h2>\n");
        body.push_str(&html::bar_chart("slowest seeds, wall time (ms)", &bars));
    }

    fn seed_table(&self, body: &mut String) {
        body.push_str(
            "<h2>Seeds</h2>\n<table id=\"seeds\">\n<tr><th>seed</th><th>verdict</th>\
             <th>events</th><th>simulated</th><th>wall (ms)</th><th>faults</th>\
             <th>state hash</th></tr>\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                body,
                "<tr><td class=\"n\">{}</td><td class=\"{}\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td><code>{}</code></td></tr>",
                r.seed,
                if r.passed { "pass" } else { "fail" },
                if r.passed { "PASS" } else { "FAIL" },
                r.events,
                html::escape(&format_duration(r.simulated)),
                millis(r.wall),
                r.faults,
                r.state_hash
            );
        }
        body.push_str("</table>\n");
        if self.rows_left_out > 0 {
            let _ = writeln!(
                body,
                "<p>{} more seeds ran; the figures above count them.</p>",
                self.rows_left_out
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_sim::{SeedOutcome, SeedRange, Violation};

    fn cfg() -> SimConfig {
        SimConfig::builder()
            .seeds(SeedRange::new(0, 2).unwrap())
            .users(10)
            .build()
            .unwrap()
    }

    fn result(seed: u64, violation: Option<&str>) -> SeedResult {
        SeedResult {
            outcome: SeedOutcome {
                seed,
                events: 100 + seed,
                simulated: Duration::from_secs(60),
                state_hash: [0xab; 32],
                violation: violation.map(|m| Violation {
                    invariant: "isolation".into(),
                    step: 7,
                    message: m.into(),
                    last_events: vec!["ev <1>".into()],
                }),
                marks: Default::default(),
                faults: [("partition", 2)].into_iter().collect(),
            },
            wall: Duration::from_millis(30 + seed),
        }
    }

    #[test]
    fn page_has_the_figures_faults_and_an_escaped_violation_with_its_repro() {
        let cfg = cfg();
        let mut page = SimPage::default();
        let results = [result(0, None), result(1, Some("frame </pre><script>x"))];
        let mut summary = Summary {
            seeds: 2,
            passed: 1,
            failed: 1,
            failed_seeds: vec![1],
            events: 201,
            ..Summary::default()
        };
        summary.faults.insert("partition", 4);
        for r in &results {
            page.seed(&cfg, r);
        }
        let html = page.render(&cfg, &summary);
        assert!(html.contains("id=\"fig-seeds\">2</td>"), "{html}");
        assert!(html.contains("id=\"fig-faults\">4</td>"));
        assert!(html.contains("id=\"fig-fault-partition\">4</td>"));
        assert!(html.contains("frame &lt;/pre&gt;&lt;script&gt;x"));
        assert!(html.contains("ev &lt;1&gt;"));
        assert!(!html.contains("<script"));
        let repro = html::escape(&cfg.repro_command(1));
        assert!(html.contains(&format!("<code>{repro}</code>")));
        assert!(
            html.contains(">seed 1</text>"),
            "the timings chart names seed 1"
        );
        assert!(html.contains(&"ab".repeat(32)));
    }

    #[test]
    fn a_clean_run_says_so() {
        let cfg = cfg();
        let mut page = SimPage::default();
        page.seed(&cfg, &result(0, None));
        let html = page.render(&cfg, &Summary::default());
        assert!(html.contains("id=\"no-violations\""));
        assert!(html.contains("id=\"no-faults\""));
        assert!(html.contains("every invariant held"));
    }
}
