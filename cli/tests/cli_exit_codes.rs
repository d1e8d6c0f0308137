//! The exit-code contract of every command, run as the real binary (cli/mod.rs, "The
//! exit-code contract"): 0 passed (also on a closed stdout), 1 found something, 2 could not
//! run as asked, with the reason on stderr and nothing on stdout that reads as a result.
//!
//! The servers these tests start listen on 127.0.0.1 port 0, and every run is bounded: the
//! children are killed when a test ends, however it ends.
// This file drives real processes, not a simulation: each wait is bounded by the wall clock,
// and a child's two pipes are drained on threads so neither can fill and stall it.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Killed, Scratch, command};

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const SECRET: &[u8] = b"gauntlet-exit-code-test-secret-0123456789";
/// Longest any one command of these tests may run before it is killed and the test fails.
const BUDGET: Duration = Duration::from_secs(90);

impl Scratch {
    fn secret_file(&self) -> String {
        let path = self.path("secret.bin");
        std::fs::write(&path, SECRET).unwrap();
        path
    }
}

/// Runs `gauntlet args` in `dir` to completion within [`BUDGET`].
fn gauntlet(dir: &Path, args: &[&str]) -> Output {
    let mut child = Killed(command(dir, args).spawn().unwrap());
    let (mut out, mut err) = (
        child.0.stdout.take().unwrap(),
        child.0.stderr.take().unwrap(),
    );
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < BUDGET,
            "gauntlet {args:?} ran past {BUDGET:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit 2, nothing on stdout, and `reason` on stderr.
fn assert_usage(out: &Output, args: &[&str], reason: &str) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: stdout {} stderr {}",
        stdout(out),
        stderr(out)
    );
    assert!(
        stdout(out).is_empty(),
        "{args:?} printed a result: {}",
        stdout(out)
    );
    assert!(
        stderr(out).contains(reason),
        "{args:?}: stderr does not say {reason:?}: {}",
        stderr(out)
    );
}

/// A loopback port nothing listens on (just freed, so a connect is refused at once).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn config_and_usage_errors_exit_2_with_the_reason_on_stderr() {
    let dir = Scratch::new("config");
    let secret = dir.secret_file();
    let missing = dir.path("no-such-dir/file");
    let log = dir.path("run.jsonl");
    let target = format!("ws://127.0.0.1:{}/ws", closed_port());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["sim", "--seed", "1", "--users", "0"],
            "users must be in",
        ),
        (vec!["sim", "--seed", "1", "--jobs", "0"], "jobs must be in"),
        (
            vec!["sim", "--seeds", "0..3", "--users", "5", "--log", &log],
            "needs a {seed} placeholder",
        ),
        (vec!["sim", "--scenario", &missing], "scenario"),
        (
            vec!["sim", "--seed", "1", "--users", "5", "--log", &missing],
            "no directory",
        ),
        (vec!["sim", "--users", "many"], "invalid value"),
        (
            vec!["shrink", "--seed", "1", "--users", "0"],
            "users must be in",
        ),
        (vec!["replay", &missing], "reading"),
        (vec!["serve", "--addr", "127.0.0.1:0"], "no key"),
        (
            vec![
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--hs256-secret-file",
                &secret,
                "--config",
                &missing,
            ],
            "reading",
        ),
        (
            vec![
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--hs256-secret-file",
                &secret,
                "--trace",
                &missing,
            ],
            "trace",
        ),
        (
            vec!["serve", "--addr", "127.0.0.1:0", "--trace-max-events", "9"],
            "--trace",
        ),
        (vec!["load", "--target", &target], "no secret"),
        (
            vec!["load", "--target", "http://x", "--secret-file", &secret],
            "target must",
        ),
        (vec!["probe", "--target", &target], "cannot connect"),
        (
            vec![
                "token",
                "mint",
                "--hs256-secret-file",
                &secret,
                "--sub",
                "svc",
                "--type",
                "service",
            ],
            "svc_id",
        ),
        (
            vec!["token", "verify", "--hs256-secret-file", &missing, "a.b.c"],
            "reading",
        ),
    ];
    for (args, reason) in &cases {
        let out = gauntlet(&dir.0, args);
        assert_usage(&out, args, reason);
    }
    assert!(
        !Path::new(&dir.path("gauntlet-failures.txt")).exists(),
        "a config error was recorded as a failing seed"
    );
}

#[test]
fn plant_on_a_build_without_planted_bugs_is_a_usage_error_not_a_caught_bug() {
    let dir = Scratch::new("plant");
    let args = [
        "sim",
        "--plant",
        "broadcast-leak",
        "--seed",
        "1",
        "--users",
        "5",
        "--duration",
        "1s",
    ];
    let out = gauntlet(&dir.0, &args);
    if cfg!(feature = "planted-bugs") {
        // The plant is real here: whatever the seed shows, it ran (0 or 1), never a setup error.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            !stdout(&out).contains("invariant setup"),
            "{}",
            stdout(&out)
        );
    } else {
        assert_usage(&out, &args, "no planted bugs");
        assert!(!stdout(&out).contains("repro:"));
    }
    // An unknown plant is a usage error in either build.
    let args = [
        "sim",
        "--plant",
        "no-such-bug",
        "--seed",
        "1",
        "--users",
        "5",
    ];
    let out = gauntlet(&dir.0, &args);
    assert_usage(&out, &args, "no-such-bug");
    let args = ["shrink", "--plant", "no-such-bug", "--seed", "1"];
    let out = gauntlet(&dir.0, &args);
    assert_usage(&out, &args, "no-such-bug");
}

#[test]
fn plants_lists_on_stdout_or_exits_2_with_the_notice_on_stderr() {
    let dir = Scratch::new("plants");
    let out = gauntlet(&dir.0, &["plants"]);
    if cfg!(feature = "planted-bugs") {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("broadcast-leak"), "{}", stdout(&out));
        assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    } else {
        assert_usage(&out, &["plants"], "this build has no planted bugs");
    }
}

#[test]
fn probe_and_load_of_a_target_nothing_answers_at_exit_2_not_failed_checks() {
    let dir = Scratch::new("unreachable");
    let secret = dir.secret_file();
    let target = format!("ws://127.0.0.1:{}/ws", closed_port());
    let args = ["probe", "--target", &target, "--secret-file", &secret];
    let out = gauntlet(&dir.0, &args);
    assert_usage(&out, &args, &format!("cannot connect to {target}"));
    assert!(!stdout(&out).contains("FAIL"));
    let args = [
        "load",
        "--target",
        &target,
        "--secret-file",
        &secret,
        "--users",
        "3",
        "--duration",
        "2s",
    ];
    let out = gauntlet(&dir.0, &args);
    assert_usage(&out, &args, &format!("cannot connect to {target}"));
}

/// Starts `gauntlet serve` on a free loopback port; returns the child and its URL.
fn serve(dir: &Scratch, extra: &[&str]) -> (Killed, String) {
    let secret = dir.secret_file();
    let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--hs256-secret-file"];
    args.push(&secret);
    args.extend_from_slice(extra);
    common::serve(&dir.0, &args)
}

#[test]
fn load_against_the_default_per_ip_rate_fails_and_says_why() {
    let dir = Scratch::new("load-default");
    let secret = dir.secret_file();
    // The default config: 5 handshakes/s per IP, burst 10, and every user comes from 127.0.0.1.
    let (_server, url) = serve(&dir, &[]);
    let args = [
        "load",
        "--target",
        &url,
        "--secret-file",
        &secret,
        "--users",
        "50",
        "--duration",
        "3s",
    ];
    let out = gauntlet(&dir.0, &args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a run that did not test what was asked passed: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(err.contains("of 50 users ever connected"), "{err}");
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(err.contains("ip_handshake_rate"), "{err}");
    assert!(
        stdout(&out).contains("users          50 ("),
        "{}",
        stdout(&out)
    );
}

#[test]
fn load_with_a_rate_that_admits_every_user_passes() {
    let dir = Scratch::new("load-ok");
    let secret = dir.secret_file();
    let config = dir.path("load.json");
    std::fs::write(
        &config,
        r#"{"limits":{"ip_handshake_rate":{"per_second":100000,"burst":100000}}}"#,
    )
    .unwrap();
    let (_server, url) = serve(&dir, &["--config", &config]);
    let args = [
        "load",
        "--target",
        &url,
        "--secret-file",
        &secret,
        "--users",
        "5",
        "--duration",
        "2s",
    ];
    let out = gauntlet(&dir.0, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("users          5 (5 connected)"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_closed_stdout_still_exits_0_without_an_error() {
    let dir = Scratch::new("pipe");
    // Far more than a pipe buffer of per-seed lines, so the writes after the reader is gone
    // really fail with EPIPE.
    let mut child = Killed(
        command(
            &dir.0,
            &[
                "sim",
                "--seeds",
                "0..20000",
                "--users",
                "1",
                "--duration",
                "100ms",
                "--faults",
                "none",
                "--json",
            ],
        )
        .spawn()
        .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"type\":\"start\""), "{first}");
    drop(out);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < BUDGET,
            "sim kept running after stdout closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.0.stderr.take().unwrap().read_to_string(&mut err);
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("gauntlet:"), "{err}");
}

#[test]
fn require_marks_on_a_sweep_that_misses_rules_exits_1_naming_them() {
    let dir = Scratch::new("marks");
    let args = [
        "sim",
        "--seed",
        "0",
        "--users",
        "2",
        "--duration",
        "1s",
        "--faults",
        "none",
        "-q",
    ];
    let plain = gauntlet(&dir.0, &args);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(stdout(&plain).contains("marks: "), "{}", stdout(&plain));
    let mut required = args.to_vec();
    required.push("--require-marks");
    let out = gauntlet(&dir.0, &required);
    // Every invariant held, but two users for a second cannot run every marked rule's path.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(1 passed, 0 failed)"),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("never marked: ") && err.contains("RESUME-GAP"),
        "{err}"
    );
}

#[test]
fn replay_of_a_schema_3_journal_exits_1_naming_both_schemas() {
    let dir = Scratch::new("schema");
    let log = dir.path("run.jsonl");
    let args = [
        "sim",
        "--seed",
        "0",
        "--users",
        "2",
        "--duration",
        "1s",
        "--faults",
        "none",
        "-q",
        "--log",
        &log,
    ];
    let run = gauntlet(&dir.0, &args);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let replayed = gauntlet(&dir.0, &["replay", &log]);
    assert_eq!(replayed.status.code(), Some(0), "{}", stderr(&replayed));
    // The same journal, its header saying schema 3 (a broadcast as one append per user).
    let text = std::fs::read_to_string(&log).unwrap();
    let old_text = text.replacen(r#""schema":4,"#, r#""schema":3,"#, 1);
    assert_ne!(old_text, text, "the header names schema 4");
    let old = dir.path("old.jsonl");
    std::fs::write(&old, old_text).unwrap();
    let out = gauntlet(&dir.0, &["replay", &old]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("unsupported schema 3 (this build reads schema 4;"),
        "{err}"
    );
}
