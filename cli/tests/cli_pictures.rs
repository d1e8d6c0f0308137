//! The pictures, from the real binary: `load --json/--hgrm/--html` against a real
//! `gauntlet serve` on 127.0.0.1, `sim --html` beside `sim --json`, and both pages loaded in
//! headless Chromium, with the rendered figures checked against the JSON.
//!
//! Where no Chromium is installed the browser test is skipped with a note, unless
//! `GAUNTLET_REQUIRE_CHROMIUM` is set (`.ci/run interop` installs Chromium and sets it), so
//! the gate never passes without a browser having rendered the pages.
// This file drives real processes: waits are bounded by the wall clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Killed, Scratch, command, text};

use std::io::BufReader;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &[u8] = b"gauntlet-pictures-test-secret-0123456789abcdef";

/// Runs `gauntlet serve` on an ephemeral loopback port, then `gauntlet load` against it for
/// a few seconds writing all three files into `dir`; returns the load's output.
fn load_with_files(dir: &Scratch) -> Output {
    let secret = dir.path("secret.bin");
    std::fs::write(&secret, SECRET).unwrap();
    // One load generator is one IP: the per-IP handshake limit would refuse its reconnects.
    let config = dir.path("config.json");
    std::fs::write(
        &config,
        r#"{"limits":{"ip_handshake_rate":{"per_second":100000,"burst":100000}},
            "agent":{"min_step_ms":5,"max_step_ms":40}}"#,
    )
    .unwrap();
    let serve = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--hs256-secret-file",
        &secret,
        "--config",
        &config,
    ];
    let (_server, target) = common::serve(&dir.0, &serve);
    let (json, hgrm, html) = (
        dir.path("load.json"),
        dir.path("load.hgrm"),
        dir.path("load.html"),
    );
    let load = [
        "load",
        "--target",
        &target,
        "--secret-file",
        &secret,
        "--users",
        "5",
        "--duration",
        "3s",
        "--message-every",
        "200ms",
        "--reconnect-every",
        "1s",
        "--json",
        &json,
        "--hgrm",
        &hgrm,
        "--html",
        &html,
    ];
    command(&dir.0, &load).output().unwrap()
}

/// The `.hgrm` lines that carry data (not the header, the blank line or the `#[` footer).
fn hgrm_rows(hgrm: &str) -> Vec<Vec<String>> {
    hgrm.lines()
        .skip(2)
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Microseconds as the `.hgrm` file prints them: milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

#[test]
fn load_json_hgrm_and_html_carry_the_same_figures() {
    let dir = Scratch::new("load");
    let out = load_with_files(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_str(&dir.read("load.json")).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["passed"], true);
    assert_eq!(
        (v["users"].as_u64(), v["users_connected"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(v["duration_ms"], 3000);
    assert!(v["elapsed_ms"].as_u64().unwrap() >= 3000, "{v}");
    assert!(v["messages_sent"].as_u64().unwrap() >= 5 * 10, "{v}");
    assert!(v["msgs_per_sec"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["errors"]["violations"], 0);
    assert_eq!(v["errors"]["forged_not_refused"], 0);
    assert_eq!(v["violations"], serde_json::json!([]));
    let l = &v["latency_us"];
    let f = |k: &str| {
        l[k].as_u64()
            .unwrap_or_else(|| panic!("latency_us.{k}: {l}"))
    };
    assert!(f("count") > 0, "no latency samples: {l}");
    assert!(
        f("p50") <= f("p90") && f("p90") <= f("p99") && f("p99") <= f("p99_9"),
        "{l}"
    );
    assert!(f("p99_9") <= f("max"), "{l}");
    // The stdout report prints the same run's p99.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("p99 {} us", f("p99"))), "{stdout}");

    // .hgrm: the data lines run from percentile 0 to 1 with the total count rising to the
    // sample count, and the footer's max and count are the JSON's.
    let hgrm = dir.read("load.hgrm");
    assert!(
        hgrm.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"),
        "{hgrm}"
    );
    let rows = hgrm_rows(&hgrm);
    assert!(rows.len() > 2, "{hgrm}");
    assert_eq!(rows[0][1], "0.000000000000");
    let last = rows.last().unwrap();
    assert_eq!(
        last.len(),
        3,
        "the 100% line has no 1/(1-p) column: {last:?}"
    );
    assert_eq!(last[1], "1.000000000000");
    assert_eq!(last[2], f("count").to_string());
    assert_eq!(last[0], ms(f("max")));
    let counts: Vec<u64> = rows.iter().map(|r| r[2].parse().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert!(
        hgrm.contains(&format!(
            "#[Max     = {:>12}, Total count    = {:>12}]",
            ms(f("max")),
            f("count")
        )),
        "{hgrm}"
    );

    // The page shows the JSON's figures.
    let html = dir.read("load.html");
    for key in ["p50", "p90", "p99", "p99_9", "max", "count"] {
        assert!(
            html.contains(&format!("id=\"fig-{key}\">{}</td>", f(key))),
            "{key}: {html}"
        );
    }
    assert!(html.contains("<polyline"), "the distribution is drawn");
}

/// `sim --json --html` over three seeds under chaos; returns the JSON summary line.
fn sim_with_html(dir: &Scratch) -> Value {
    let html = dir.path("sim.html");
    let failures = dir.path("failures.txt");
    let args = [
        "sim",
        "--seeds",
        "0..3",
        "--users",
        "20",
        "--duration",
        "30s",
        "--faults",
        "chaos",
        "--json",
        "--failures",
        &failures,
        "--html",
        &html,
    ];
    let out = command(&dir.0, &args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {stdout}"))
}

fn fault_total(summary: &Value) -> u64 {
    summary["faults"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum()
}

#[test]
fn sim_html_carries_the_json_summary() {
    let dir = Scratch::new("sim");
    let summary = sim_with_html(&dir);
    let html = dir.read("sim.html");
    assert_eq!(summary["seeds"], 3);
    assert!(html.contains("id=\"fig-seeds\">3</td>"), "{html}");
    assert!(html.contains(&format!("id=\"fig-events\">{}</td>", summary["events"])));
    let total = fault_total(&summary);
    assert!(total > 0, "chaos injects timed faults: {summary}");
    assert!(html.contains(&format!("id=\"fig-faults\">{total}</td>")));
    for (kind, n) in summary["faults"].as_object().unwrap() {
        assert!(
            html.contains(&format!("id=\"fig-fault-{kind}\">{n}</td>")),
            "{kind}"
        );
    }
    assert_eq!(html.matches("<td class=\"pass\">PASS</td>").count(), 3);
    assert!(html.contains("id=\"no-violations\""));
}

/// The Chromium binary to use, or `None` (with a note) to skip; under
/// `GAUNTLET_REQUIRE_CHROMIUM` a missing browser fails the test instead.
fn chromium() -> Option<String> {
    let candidates = ["chromium", "chromium-browser", "google-chrome"];
    let found = candidates.iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("GAUNTLET_REQUIRE_CHROMIUM").is_none(),
            "no chromium found (GAUNTLET_REQUIRE_CHROMIUM is set): install chromium"
        );
        eprintln!(
            "SKIPPED: the headless-chromium check of the HTML reports: no chromium, \
             chromium-browser or google-chrome on PATH (.ci/run interop installs one and runs \
             these tests)"
        );
    }
    found.map(|c| (*c).to_owned())
}

/// The DOM of `file` after Chromium has loaded and rendered it, bounded by a minute.
fn render(browser: &str, dir: &Scratch, file: &str) -> String {
    let url = format!("file://{}", dir.path(file));
    let profile = format!("--user-data-dir={}", dir.path("chromium-profile"));
    let mut child = Killed(
        Command::new(browser)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                &profile,
                "--dump-dom",
                &url,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Drained on a thread, so a large DOM cannot fill the pipe while we wait.
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.0.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "{browser} --dump-dom {url}: {status}");
                break;
            }
            None if Instant::now() > deadline => panic!("{browser} did not finish in 60 s"),
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    reader.join().unwrap()
}

#[test]
fn html_reports_render_in_headless_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = Scratch::new("chromium");
    let summary = sim_with_html(&dir);
    let dom = render(&browser, &dir, "sim.html");
    assert!(dom.contains("<title>gauntlet sim</title>"), "{dom}");
    assert!(dom.contains("id=\"fig-seeds\">3</td>"), "{dom}");
    assert!(
        dom.contains(&format!("id=\"fig-faults\">{}</td>", fault_total(&summary))),
        "{dom}"
    );
    assert!(dom.contains("<svg"), "the charts are in the rendered DOM");

    let out = load_with_files(&dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_str(&dir.read("load.json")).unwrap();
    let dom = render(&browser, &dir, "load.html");
    for key in ["p50", "p99", "p99_9"] {
        let figure = &v["latency_us"][key];
        assert!(
            dom.contains(&format!("id=\"fig-{key}\">{figure}</td>")),
            "{key} = {figure}: {dom}"
        );
    }
    assert!(dom.contains("<polyline"), "{dom}");
}

/// `s` as Chromium serialises a text node: only `&`, `<` and `>` escaped.
#[cfg(feature = "planted-bugs")]
fn as_dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A planted bug's violation reaches the page with its message and repro line, the same as
/// `--json` says, and (where Chromium runs) the rendered page shows them.
#[cfg(feature = "planted-bugs")]
#[test]
fn sim_html_shows_a_violation_with_its_repro_line() {
    let dir = Scratch::new("violation");
    let (html, failures) = (dir.path("v.html"), dir.path("failures.txt"));
    let args = [
        "sim",
        "--plant",
        "broadcast-leak",
        "--users",
        "50",
        "--seeds",
        "0..50",
        "--faults",
        "chaos",
        "--stop-on-failure",
        "--json",
        "--failures",
        &failures,
        "--html",
        &html,
    ];
    let out = command(&dir.0, &args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let violation: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "violation")
        .unwrap_or_else(|| panic!("no violation line: {stdout}"));
    let (repro, message) = (
        violation["repro"].as_str().unwrap(),
        violation["message"].as_str().unwrap(),
    );
    let page = dir.read("v.html");
    assert!(
        page.contains(&format!("<pre class=\"repro\"><code>{repro}</code></pre>")),
        "{page}"
    );
    assert!(page.contains("<td class=\"fail\">FAIL</td>"));
    let Some(browser) = chromium() else {
        return;
    };
    let dom = render(&browser, &dir, "v.html");
    assert!(dom.contains(&as_dom_text(repro)), "{dom}");
    assert!(dom.contains(&as_dom_text(message)), "{dom}");
    assert!(dom.contains(&format!(
        "id=\"violation-{}\"",
        violation["seed"].as_u64().unwrap()
    )));
}
