//! Self-contained HTML pages for the reports people would rather look at than read
//! (`load --html`, `sim --html`): escaping, the page shell with its inline style, and the
//! charts, drawn as inline SVG by hand.
//!
//! A page fetches nothing: no scripts, fonts, images or stylesheets, so it opens the same
//! offline, from a CI artifact store or attached to a bug. Every piece of text that reaches a
//! page goes through [`escape`] (violation messages and targets carry user input). This
//! module draws; it never decides what a run found.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::Exit;

/// Why an HTML (or other picture) file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}")]
pub(crate) struct WriteError {
    /// The file.
    pub(crate) path: PathBuf,
    /// The cause.
    #[source]
    pub(crate) source: io::Error,
}

impl WriteError {
    /// The exit class: the output asked for could not be written, so the command did not
    /// do what it was asked (its findings are still on stdout).
    pub(crate) fn exit(&self) -> Exit {
        Exit::Usage
    }
}

/// Writes `contents` to `path`, naming the file in the error.
pub(crate) fn write_file(path: &Path, contents: &str) -> Result<(), WriteError> {
    std::fs::write(path, contents).map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    })
}

/// `s` as HTML text or attribute value: the five characters that can end either are escaped.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped here) and a `body` that is already HTML.
pub(crate) fn page(title: &str, body: &str) -> String {
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n\
         {body}</body>\n</html>\n"
    )
}

/// The one stylesheet, inline: system fonts only, so nothing is fetched.
const STYLE: &str = "\
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
.pass{color:#176f2c}.fail{color:#b3261e;font-weight:bold}\
pre,code{font-family:ui-monospace,monospace;font-size:.9em}\
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap}\
svg{display:block;margin:.5em 0}svg text{font-family:system-ui,sans-serif;font-size:12px}";

/// A two-column table of figures, each value cell with an `id` (`fig-NAME`) a test or a
/// script can find it by. Labels and values are escaped here.
pub(crate) fn figures(rows: &[(&str, &str, String)]) -> String {
    let mut out = String::from("<table class=\"figures\">\n");
    for (id, label, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td class=\"n\" id=\"fig-{}\">{}</td></tr>",
            escape(label),
            escape(id),
            escape(value)
        );
    }
    out.push_str("</table>\n");
    out
}

/// Horizontal bars, one per `(label, value)`, scaled to the largest; each bar is labelled
/// with its value, so the chart reads without an axis. Empty input draws nothing.
pub(crate) fn bar_chart(title: &str, bars: &[(String, u64)]) -> String {
    if bars.is_empty() {
        return String::new();
    }
    const LABEL_W: u64 = 180;
    const BAR_W: u64 = 480;
    const ROW_H: u64 = 22;
    let top = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let rows = u64::try_from(bars.len()).unwrap_or(u64::MAX);
    let height = rows.saturating_mul(ROW_H).saturating_add(30);
    let width = LABEL_W + BAR_W + 90;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{t}\">\n\
         <text x=\"0\" y=\"16\" font-weight=\"bold\">{t}</text>\n",
        t = escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 26 + u64::try_from(i).unwrap_or(u64::MAX).saturating_mul(ROW_H);
        // u128 so a huge count cannot overflow the scaling.
        let w = u64::try_from(u128::from(*value) * u128::from(BAR_W) / u128::from(top))
            .unwrap_or(BAR_W);
        let _ = writeln!(
            out,
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{w}\" height=\"{bh}\" fill=\"#4a7bb7\"/>\
             <text x=\"{vx}\" y=\"{ty}\">{value}</text>",
            lx = LABEL_W - 6,
            ty = y + 13,
            bh = ROW_H - 6,
            vx = LABEL_W + w + 6,
            label = escape(label),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// One point of a latency distribution: the share of samples at or below `value`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Quantile {
    /// In `[0, 1]`.
    pub(crate) quantile: f64,
    /// Microseconds.
    pub(crate) value_us: u64,
}

/// The percentiles marked on the x axis, as HdrHistogram's plotter does: each is ten times
/// closer to the tail than the last, so the tail gets as much room as the body.
const TICKS: [(f64, &str); 6] = [
    (0.0, "0%"),
    (0.9, "90%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (0.99999, "99.999%"),
];

/// The latency-by-percentile chart: x is `log10(1 / (1 - q))` (0% to 99.999%), y is the
/// latency in milliseconds from 0 to the largest value. `marks` label chosen points
/// (p50, p99, ...) on the curve. Empty input draws an empty frame saying so.
pub(crate) fn latency_chart(points: &[Quantile], marks: &[(&str, Quantile)]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 360.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 20.0;
    // The right margin leaves room for the last tick's label, centred on the frame's edge.
    let plot_w = W - LEFT - 40.0;
    let plot_h = H - TOP - BOTTOM;
    let x_max = TICKS.last().map_or(5.0, |(q, _)| tail(*q));
    let x = |q: f64| LEFT + plot_w * (tail(q) / x_max).min(1.0);
    let top_us = points.iter().map(|p| p.value_us).max().unwrap_or(0).max(1);
    // Display only: the float never feeds back into a figure.
    let y = |us: u64| TOP + plot_h * (1.0 - us as f64 / top_us as f64);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"latency by percentile\">\n\
         <rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" \
         stroke=\"#999\"/>\n"
    );
    for (q, label) in TICKS {
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{b}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{ty}\" text-anchor=\"middle\">{label}</text>",
            x = x(q),
            b = TOP + plot_h,
            ty = TOP + plot_h + 16.0
        );
    }
    for i in 0..=4u64 {
        let us = top_us.saturating_mul(i) / 4;
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{r}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
             <text x=\"{lx}\" y=\"{ty:.1}\" text-anchor=\"end\">{ms}</text>",
            yy = y(us),
            r = LEFT + plot_w,
            lx = LEFT - 6.0,
            ty = y(us) + 4.0,
            ms = millis(us)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"14\" y=\"{cy}\" transform=\"rotate(-90 14 {cy})\" \
         text-anchor=\"middle\">latency (ms)</text>\
         <text x=\"{cx}\" y=\"{by}\" text-anchor=\"middle\">percentile</text>",
        cy = TOP + plot_h / 2.0,
        cx = LEFT + plot_w / 2.0,
        by = H - 4.0
    );
    if points.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\">no latency samples</text>",
            cx = LEFT + plot_w / 2.0,
            cy = TOP + plot_h / 2.0
        );
    } else {
        out.push_str("<polyline fill=\"none\" stroke=\"#4a7bb7\" stroke-width=\"2\" points=\"");
        for p in points {
            let _ = write!(out, "{:.1},{:.1} ", x(p.quantile), y(p.value_us));
        }
        out.push_str("\"/>\n");
        for (label, p) in marks {
            let _ = writeln!(
                out,
                "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"#b3261e\"/>\
                 <text x=\"{tx:.1}\" y=\"{ty:.1}\" text-anchor=\"end\">{label} {ms} ms</text>",
                cx = x(p.quantile),
                cy = y(p.value_us),
                tx = x(p.quantile) - 5.0,
                ty = y(p.value_us) - 6.0,
                label = escape(label),
                ms = millis(p.value_us)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

/// `log10(1 / (1 - q))`, capped where `q` reaches 1 (the plotter's x axis).
fn tail(q: f64) -> f64 {
    let rest = (1.0 - q).max(1e-6);
    -rest.log10()
}

/// Microseconds as milliseconds with three decimals (integer arithmetic, exact).
pub(crate) fn millis(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>alert('x')</script> & "y""#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn page_escapes_its_title_and_fetches_nothing() {
        let p = page("a <b>", "<p>x</p>\n");
        assert!(p.contains("<title>a &lt;b&gt;</title>"));
        assert!(p.contains("<p>x</p>"));
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(!p.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn figures_give_each_value_an_id_and_escape_it() {
        let t = figures(&[("p99", "p99 (us)", "<1>".to_string())]);
        assert!(t.contains("<th>p99 (us)</th><td class=\"n\" id=\"fig-p99\">&lt;1&gt;</td>"));
    }

    #[test]
    fn bars_scale_to_the_largest_and_show_their_values() {
        let svg = bar_chart("t", &[("a".into(), 10), ("b<".into(), 5)]);
        assert!(svg.contains("width=\"480\""), "{svg}");
        assert!(svg.contains("width=\"240\""), "{svg}");
        assert!(svg.contains(">b&lt;</text>"));
        assert!(svg.contains(">10</text>") && svg.contains(">5</text>"));
        assert_eq!(bar_chart("t", &[]), "");
    }

    #[test]
    fn latency_chart_places_the_tail_to_the_right_and_labels_marks() {
        let p = |quantile, value_us| Quantile { quantile, value_us };
        let svg = latency_chart(
            &[p(0.0, 100), p(0.5, 200), p(0.99, 4_000)],
            &[("p99", p(0.99, 4_000))],
        );
        // x of 99% is 2/5 of the plot (610 wide from 70); the top value is the frame's top.
        assert!(svg.contains("314.0,20.0"), "{svg}");
        assert!(svg.contains(">p99 4.000 ms</text>"));
        assert!(latency_chart(&[], &[]).contains("no latency samples"));
    }

    #[test]
    fn millis_is_exact() {
        assert_eq!(millis(0), "0.000");
        assert_eq!(millis(12_345), "12.345");
    }
}
