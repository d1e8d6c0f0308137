//! The pictures, from the real binary: `load --json/--hgrm/--html` against a real
//! `gauntlet serve` on 127.0.0.1, `sim --html` beside `sim --json`, and both pages loaded in
//! headless Chromium, with the rendered figures checked against the JSON; and the Chrome
//! traces `serve --trace` and `load --trace` write of one loopback run, checked against the
//! load's figures.
//!
//! Where no Chromium is installed the browser test is skipped with a note, unless
//! `GAUNTLET_REQUIRE_CHROMIUM` is set (`.ci/run interop` installs Chromium and sets it), so
//! the gate never passes without a browser having rendered the pages.
// This file drives real processes: waits are bounded by the wall clock.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Killed, Scratch, command, terminate, text};

use std::io::BufReader;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &[u8] = b"gauntlet-pictures-test-secret-0123456789abcdef";

/// Starts `gauntlet serve` on an ephemeral loopback port, configured for one load generator,
/// with `extra` flags; returns the server, its target URL and the secret file.
fn serve_for_load(dir: &Scratch, extra: &[&str]) -> (Killed, String, String) {
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
    let mut serve = vec![
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--hs256-secret-file",
        &secret,
        "--config",
        &config,
    ];
    serve.extend_from_slice(extra);
    let (server, target) = common::serve(&dir.0, &serve);
    (server, target, secret)
}

/// `gauntlet load` against `target` with `users` users for `duration`, with `extra` flags.
fn run_load(
    dir: &Scratch,
    (target, secret): (&str, &str),
    (users, duration): (&str, &str),
    extra: &[&str],
) -> Output {
    let mut load = vec![
        "load",
        "--target",
        target,
        "--secret-file",
        secret,
        "--users",
        users,
        "--duration",
        duration,
        "--message-every",
        "200ms",
        "--reconnect-every",
        "1s",
    ];
    load.extend_from_slice(extra);
    command(&dir.0, &load).output().unwrap()
}

/// Runs `gauntlet serve`, then `gauntlet load` against it for a few seconds writing all
/// three files into `dir`; returns the load's output.
fn load_with_files(dir: &Scratch) -> Output {
    let (_server, target, secret) = serve_for_load(dir, &[]);
    let (json, hgrm, html) = (
        dir.path("load.json"),
        dir.path("load.hgrm"),
        dir.path("load.html"),
    );
    let files = ["--json", &json, "--hgrm", &hgrm, "--html", &html];
    run_load(dir, (&target, &secret), ("5", "3s"), &files)
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

/// A Chrome trace file's events (a JSON array), each checked to be an object of pid 1.
fn trace_events(dir: &Scratch, file: &str) -> Vec<Value> {
    let text = dir.read(file);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let events = v
        .as_array()
        .unwrap_or_else(|| panic!("{file} is not an array"))
        .clone();
    assert!(
        events.iter().all(|e| e["pid"] == 1 && e["ph"].is_string()),
        "{file}"
    );
    events
}

/// The events of phase `ph` named `name`.
fn named<'a>(events: &'a [Value], ph: &str, name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["ph"] == ph && e["name"] == name)
        .collect()
}

/// The names given to tracks (`thread_name` metadata), and the process's name.
fn track_names(events: &[Value]) -> (Vec<String>, String) {
    let names = named(events, "M", "thread_name")
        .iter()
        .map(|e| e["args"]["name"].as_str().unwrap().to_owned())
        .collect();
    let process = named(events, "M", "process_name")[0]["args"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    (names, process)
}

#[test]
fn serve_and_load_traces_have_a_track_per_user_and_a_span_per_connection() {
    let dir = Scratch::new("traces");
    let (serve_trace, load_trace, json) = (
        dir.path("serve-trace.json"),
        dir.path("load-trace.json"),
        dir.path("load.json"),
    );
    let (mut server, target, secret) = serve_for_load(&dir, &["--trace", &serve_trace]);
    let users = 5;
    let traced = ["--json", &json, "--trace", &load_trace];
    let out = run_load(&dir, (&target, &secret), ("5", "3s"), &traced);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = terminate(&mut server);
    assert!(status.success(), "serve exited {status}");
    // A tiny load whose trace hits its cap, against a server of its own: the load's users
    // expect a fresh stream, and the first load's server has theirs.
    let (_other, fresh, _) = serve_for_load(&dir, &[]);
    let capped = dir.path("capped-trace.json");
    let tiny = ["--trace", &capped, "--trace-max-events", "20"];
    let out = run_load(&dir, (&fresh, &secret), ("2", "1s"), &tiny);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reached --trace-max-events"),
        "{}",
        text(&out)
    );

    let figures: Value = serde_json::from_str(&dir.read("load.json")).unwrap();
    let connections = figures["connections"].as_u64().unwrap() as usize;
    let sent = figures["messages_sent"].as_u64().unwrap() as usize;
    assert!(connections >= users, "{figures}");

    // The load's trace: a track per user, a connection span per connection accepted, a
    // handshake span per attempt (the forged token's included), round trips.
    let load = trace_events(&dir, "load-trace.json");
    let (names, process) = track_names(&load);
    assert!(
        process.starts_with("gauntlet load ws://127.0.0.1:"),
        "{process}"
    );
    for i in 0..users {
        assert!(names.contains(&format!("load-u{i}")), "{names:?}");
    }
    assert_eq!(named(&load, "X", "connection").len(), connections);
    let handshakes = named(&load, "X", "handshake");
    let forged = handshakes
        .iter()
        .filter(|e| e["args"]["credential"] == "forged bearer")
        .count();
    assert_eq!(forged, users);
    assert_eq!(handshakes.len(), connections + users);
    let trips = named(&load, "X", "round trip").len();
    assert!(
        trips > 0 && trips <= sent,
        "{trips} round trips of {sent} messages"
    );
    assert!(
        load.iter()
            .filter(|e| e["ph"] == "X")
            .all(|e| e["ts"].as_f64() >= Some(0.0) && e["dur"].as_f64() >= Some(0.0))
    );
    assert!(named(&load, "i", "trace truncated").is_empty());

    // The server's: a session span per connection, each named track its user's, the verdict
    // of every handshake (the forged tokens refused 401), a close per session, counters.
    let serve = trace_events(&dir, "serve-trace.json");
    let (names, process) = track_names(&serve);
    assert!(
        process.starts_with("gauntlet serve 127.0.0.1:"),
        "{process}"
    );
    assert!(names.contains(&"server".to_owned()), "{names:?}");
    assert_eq!(named(&serve, "X", "session").len(), connections);
    assert_eq!(named(&serve, "i", "handshake accepted").len(), connections);
    assert_eq!(named(&serve, "i", "auth").len(), connections);
    let refused = named(&serve, "i", "handshake refused");
    assert_eq!(refused.len(), users, "the forged token of each user");
    assert!(refused.iter().all(|e| e["args"]["status"] == "401"));
    let closes = serve
        .iter()
        .filter(|e| e["ph"] == "i" && e["name"].as_str().is_some_and(|n| n.starts_with("close ")))
        .count();
    assert_eq!(closes, connections);
    for i in 0..users {
        let user = format!("load-u{i}");
        assert!(
            names
                .iter()
                .any(|n| n.contains(&format!(" {user} (127.0.0.1:"))),
            "no track named for {user}: {names:?}"
        );
    }
    for counter in ["sessions and runs", "send queue depth (peak so far)"] {
        assert!(
            !named(&serve, "C", counter).is_empty(),
            "no {counter} counter"
        );
    }

    // The capped trace stops at its cap with the note.
    let capped = trace_events(&dir, "capped-trace.json");
    assert_eq!(capped.len(), 20);
    assert_eq!(named(&capped, "i", "trace truncated").len(), 1);
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
