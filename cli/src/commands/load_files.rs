//! The files `gauntlet load` writes beside its stdout report: `--json` (the run's figures as
//! one JSON document, fields in docs/json-lines.md), `--hgrm` (the latency percentile
//! distribution in HdrHistogram's text format, which its plotter and `HistogramLogAnalyzer`
//! read) and `--html` (a self-contained page with the distribution plotted).
//!
//! All three are rendered from the same [`LoadRun`], so a figure reads the same in each.
//! This module renders; the run and its verdict are `gauntlet_server::load`'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use gauntlet_server::load::LoadRun;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::html::{self, Quantile};

/// The `--json` document's schema version (a change that breaks readers bumps it).
pub(crate) const SCHEMA: u32 = 1;

/// What the run was asked to do, for the reports' headers.
pub(crate) struct Asked<'a> {
    /// The target URL.
    pub(crate) target: &'a str,
    /// Users asked for.
    pub(crate) users: u32,
    /// Duration asked for.
    pub(crate) duration: Duration,
}

/// The percentiles every report shows, with the JSON field of each.
const PERCENTILES: [(&str, &str, f64); 4] = [
    ("p50", "p50", 0.5),
    ("p90", "p90", 0.9),
    ("p99", "p99", 0.99),
    ("p99_9", "p99.9", 0.999),
];

/// The `--json` document.
#[derive(Serialize)]
struct LoadJson<'a> {
    schema: u32,
    passed: bool,
    target: &'a str,
    users: u32,
    users_connected: u64,
    duration_ms: u64,
    elapsed_ms: u64,
    connections: u64,
    messages_sent: u64,
    msgs_per_sec: u64,
    frames_received: u64,
    events_received: u64,
    runs_completed: u64,
    latency_us: BTreeMap<&'static str, u64>,
    errors: Errors,
    violations: &'a [String],
    shortfalls: Vec<String>,
}

/// Errors by kind.
#[derive(Serialize)]
struct Errors {
    refused_by_status: BTreeMap<String, u64>,
    forged_not_refused: u64,
    violations: usize,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `count` per second of `elapsed`, as an integer (0 for a zero-length run).
fn per_sec(count: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos();
    if nanos == 0 {
        return 0;
    }
    u64::try_from(u128::from(count) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// The latency figures: `count`, `mean`, each of [`PERCENTILES`] and `max`, microseconds.
fn latency_figures(h: &Histogram<u64>) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    out.insert("count", h.len());
    // The mean rounded to a whole microsecond, like every other figure.
    out.insert("mean", h.mean().round() as u64);
    for (field, _, q) in PERCENTILES {
        out.insert(field, h.value_at_quantile(q));
    }
    out.insert("max", h.max());
    out
}

/// The `--json` document, one line of JSON.
pub(crate) fn json(run: &LoadRun, asked: &Asked<'_>) -> Result<String, serde_json::Error> {
    let r = &run.report;
    let shortfalls = r.shortfalls(asked.users);
    let doc = LoadJson {
        schema: SCHEMA,
        passed: r.violations.is_empty() && shortfalls.is_empty(),
        target: asked.target,
        users: asked.users,
        users_connected: r.users_connected,
        duration_ms: millis(asked.duration),
        elapsed_ms: millis(r.elapsed),
        connections: r.connections,
        messages_sent: r.messages_sent,
        msgs_per_sec: per_sec(r.messages_sent, r.elapsed),
        frames_received: r.frames_received,
        events_received: r.events_received,
        runs_completed: r.runs_completed,
        latency_us: latency_figures(&run.latency),
        errors: Errors {
            refused_by_status: r
                .refused_by_status
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
            forged_not_refused: u64::from(asked.users).saturating_sub(r.forged_refused),
            violations: r.violations.len(),
        },
        violations: &r.violations,
        shortfalls,
    };
    let mut s = serde_json::to_string(&doc)?;
    s.push('\n');
    Ok(s)
}

/// Percentile iteration steps per halving of the distance to 100%: what HdrHistogram's own
/// `outputPercentileDistribution` uses by default.
const TICKS_PER_HALF: u32 = 5;

/// The quantile points of `h`, for the chart and the `.hgrm` file: one per iteration step,
/// with the running total count.
fn distribution(h: &Histogram<u64>) -> Vec<(Quantile, u64)> {
    let mut total = 0u64;
    h.iter_quantiles(TICKS_PER_HALF)
        .map(|v| {
            total = total.saturating_add(v.count_since_last_iteration());
            (
                Quantile {
                    quantile: v.quantile_iterated_to(),
                    value_us: v.value_iterated_to(),
                },
                total,
            )
        })
        .collect()
}

/// The `.hgrm` text, byte for byte the layout of HdrHistogram's
/// `outputPercentileDistribution` with values in milliseconds (the unit its plotter labels
/// its axis with): a header, a line per percentile step (value, percentile, total count,
/// `1/(1-percentile)`, which the last line, at 100%, leaves out), and the `#[...]` footer.
pub(crate) fn hgrm(h: &Histogram<u64>) -> String {
    let digits = usize::from(h.sigfig());
    let ms = |us: f64| us / 1000.0;
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for (p, total) in distribution(h) {
        // Display only: the float is the file format's, never fed back.
        let value = ms(p.value_us as f64);
        if p.quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.digits$} {:2.12} {total:10} {:14.2}",
                p.quantile,
                1.0 / (1.0 - p.quantile)
            );
        } else {
            let _ = writeln!(out, "{value:12.digits$} {:2.12} {total:10}", p.quantile);
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        ms(h.mean()),
        ms(h.stdev())
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        ms(h.max() as f64),
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets(h.sigfig())
    );
    out
}

/// The sub-bucket count of a histogram of `sigfig` digits: the smallest power of two that
/// holds `2 * 10^sigfig` (how HdrHistogram lays out its buckets; the crate keeps it private).
fn sub_buckets(sigfig: u8) -> u64 {
    10u64
        .checked_pow(u32::from(sigfig))
        .and_then(|p| p.checked_mul(2))
        .map_or(0, u64::next_power_of_two)
}

/// The `--html` page.
pub(crate) fn html(run: &LoadRun, asked: &Asked<'_>) -> String {
    let r = &run.report;
    let h = &run.latency;
    let shortfalls = r.shortfalls(asked.users);
    let passed = r.violations.is_empty() && shortfalls.is_empty();
    let mut body = format!(
        "<p>Target <code>{}</code>: <span class=\"{}\" id=\"verdict\">{}</span></p>\n",
        html::escape(asked.target),
        if passed { "pass" } else { "fail" },
        if passed {
            "passed"
        } else {
            "FOUND SOMETHING (below)"
        }
    );
    let lat = latency_figures(h);
    let us = |field: &str| lat.get(field).copied().unwrap_or(0).to_string();
    let mut rows = vec![
        (
            "users",
            "users (connected)",
            format!("{} ({})", asked.users, r.users_connected),
        ),
        ("duration", "duration (ms)", millis(r.elapsed).to_string()),
        ("connections", "connections", r.connections.to_string()),
        ("messages", "messages sent", r.messages_sent.to_string()),
        (
            "msgs_per_sec",
            "messages per second",
            per_sec(r.messages_sent, r.elapsed).to_string(),
        ),
        (
            "events",
            "stream events received",
            r.events_received.to_string(),
        ),
        ("runs", "runs finished", r.runs_completed.to_string()),
        ("count", "latency samples", us("count")),
    ];
    for (field, label, _) in PERCENTILES {
        rows.push((field, label, us(field)));
    }
    rows.push(("max", "max", us("max")));
    rows.push(("violations", "violations", r.violations.len().to_string()));
    // The percentile rows' labels name the unit once, in the heading.
    body.push_str("<h2>Figures (latencies in microseconds)</h2>\n");
    body.push_str(&html::figures(&rows));
    body.push_str(
        "<h2>Event delivery latency by percentile</h2>\n\
         <p>From the gateway's event timestamp to its arrival at the client, live events only. \
         The x axis gives the tail room: each step is ten times closer to 100%.</p>\n",
    );
    let points: Vec<Quantile> = distribution(h).into_iter().map(|(p, _)| p).collect();
    let marks: Vec<(&str, Quantile)> = if h.is_empty() {
        Vec::new()
    } else {
        PERCENTILES
            .iter()
            .map(|(_, label, q)| {
                (
                    *label,
                    Quantile {
                        quantile: *q,
                        value_us: h.value_at_quantile(*q),
                    },
                )
            })
            .collect()
    };
    body.push_str(&html::latency_chart(&points, &marks));
    body.push_str("<h2>Errors</h2>\n");
    let mut errors: Vec<(String, u64)> = r
        .refused_by_status
        .iter()
        .map(|(status, n)| (format!("refused: HTTP {status}"), *n))
        .collect();
    let forged = u64::from(asked.users).saturating_sub(r.forged_refused);
    if forged > 0 {
        errors.push(("forged token not refused".into(), forged));
    }
    if !r.violations.is_empty() {
        errors.push((
            "violations".into(),
            u64::try_from(r.violations.len()).unwrap_or(u64::MAX),
        ));
    }
    if errors.is_empty() {
        body.push_str("<p id=\"no-errors\">None.</p>\n");
    } else {
        body.push_str(&html::bar_chart("errors by kind", &errors));
    }
    for (heading, list) in [
        ("Violations", r.violations.as_slice()),
        ("Did not test what was asked", shortfalls.as_slice()),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(body, "<h2>{heading}</h2>\n<ul>");
        for item in list {
            let _ = writeln!(body, "<li><code>{}</code></li>", html::escape(item));
        }
        body.push_str("</ul>\n");
    }
    html::page("gauntlet load", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gauntlet_server::load::LoadReport;

    fn run(samples: &[u64]) -> LoadRun {
        let mut latency = Histogram::<u64>::new(3).unwrap();
        for s in samples {
            latency.record(*s).unwrap();
        }
        let report = LoadReport {
            users_connected: 2,
            forged_refused: 2,
            messages_sent: 300,
            elapsed: Duration::from_secs(3),
            violations: vec!["load-u1: received an event of <script>".into()],
            ..LoadReport::default()
        };
        LoadRun {
            report,
            latency,
            trace_dropped: 0,
        }
    }

    const ASKED: Asked<'static> = Asked {
        target: "ws://127.0.0.1:1/ws",
        users: 2,
        duration: Duration::from_secs(3),
    };

    #[test]
    fn json_has_the_figures_percentiles_and_errors() {
        let samples: Vec<u64> = (1..=1000).collect();
        let v: serde_json::Value =
            serde_json::from_str(&json(&run(&samples), &ASKED).unwrap()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["passed"], false);
        assert_eq!(v["users"], 2);
        assert_eq!(v["msgs_per_sec"], 100);
        assert_eq!(v["duration_ms"], 3000);
        let l = &v["latency_us"];
        assert_eq!(
            (l["count"].as_u64(), l["p50"].as_u64(), l["p90"].as_u64()),
            (Some(1000), Some(500), Some(900))
        );
        assert_eq!(
            (l["p99"].as_u64(), l["p99_9"].as_u64()),
            (Some(990), Some(999))
        );
        assert_eq!(
            (l["max"].as_u64(), l["mean"].as_u64()),
            (Some(1000), Some(501))
        );
        assert_eq!(v["errors"]["violations"], 1);
        assert_eq!(v["errors"]["forged_not_refused"], 0);
    }

    #[test]
    fn hgrm_has_the_plotters_layout_in_milliseconds() {
        let samples: Vec<u64> = (1..=1000).collect();
        let text = hgrm(&run(&samples).latency);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.next(),
            Some("       0.001 0.000000000000          1           1.00")
        );
        let last = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert_eq!(last, "       1.000 1.000000000000       1000");
        assert!(text.contains("#[Max     =        1.000, Total count    =         1000]"));
        assert!(
            text.contains("#[Mean    =        0.500, StdDeviation   =        0.289]"),
            "{text}"
        );
        assert!(text.contains("#[Buckets =            1, SubBuckets     =         2048]"));
        // Every data line: value, percentile, total count rising to the sample count.
        let counts: Vec<u64> = text
            .lines()
            .skip(2)
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert_eq!(counts.last(), Some(&1000));
    }

    #[test]
    fn html_shows_the_json_figures_and_escapes_violations() {
        let samples: Vec<u64> = (1..=1000).collect();
        let page = html(&run(&samples), &ASKED);
        assert!(page.contains("id=\"fig-p99\">990</td>"), "{page}");
        assert!(page.contains("id=\"fig-p99_9\">999</td>"));
        assert!(page.contains("received an event of &lt;script&gt;"));
        assert!(!page.contains("<script"));
        assert!(page.contains("<polyline"));
    }

    #[test]
    fn an_empty_run_still_renders_everything() {
        let r = run(&[]);
        assert!(hgrm(&r.latency).contains("Total count    =            0]"));
        assert!(html(&r, &ASKED).contains("no latency samples"));
        let v: serde_json::Value = serde_json::from_str(&json(&r, &ASKED).unwrap()).unwrap();
        assert_eq!(v["latency_us"]["p99"], 0);
    }
}
