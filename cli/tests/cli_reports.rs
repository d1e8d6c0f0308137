//! The reports CI systems read, from the real binary: `sim --junit`, `probe --junit` and
//! `--sarif`, `fuzz-report --junit`, and `merge` over real shard outputs.
//!
//! JUnit files are validated with `xmllint --schema` against `tests/data/junit.xsd`, SARIF
//! files with `check-jsonschema` against the OASIS SARIF 2.1.0 schema in
//! `tests/data/sarif-schema-2.1.0.json`. Where a validator is not installed the validation
//! is skipped with a note, unless `GAUNTLET_REQUIRE_VALIDATORS` is set (`.ci/run` installs
//! both and sets it), so the gate can never pass without having validated.
// This file drives real processes: waits are bounded by the wall clock, and the pipe of a
// server is drained on a thread.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{Scratch, command, text};

use std::path::Path;
use std::process::{Command, Output, Stdio};

const SECRET: &[u8] = b"gauntlet-report-test-secret-0123456789abcdef";

fn gauntlet(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
}

fn data(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// Whether `tool` can run; when it cannot, skips (with a note) or, under
/// `GAUNTLET_REQUIRE_VALIDATORS`, fails.
fn have(tool: &str, install: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("GAUNTLET_REQUIRE_VALIDATORS").is_none(),
            "{tool} is required (GAUNTLET_REQUIRE_VALIDATORS is set): {install}"
        );
        eprintln!("note: {tool} not installed ({install}): schema validation skipped");
    }
    found
}

/// Validates a JUnit file against the vendored XSD; returns xmllint's verdict.
fn junit_valid(file: &str) -> Option<Result<(), String>> {
    if !have("xmllint", "apt-get install libxml2-utils") {
        return None;
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", &data("junit.xsd"), file])
        .output()
        .unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    })
}

fn assert_junit_valid(file: &str) {
    if let Some(Err(e)) = junit_valid(file) {
        panic!(
            "{file} does not validate against junit.xsd: {e}\n{}",
            std::fs::read_to_string(file).unwrap_or_default()
        );
    }
}

/// Validates a SARIF file against the vendored OASIS schema.
fn sarif_valid(file: &str) -> Option<Result<(), String>> {
    if !have("check-jsonschema", "pip install check-jsonschema") {
        return None;
    }
    let out = Command::new("check-jsonschema")
        .args(["--schemafile", &data("sarif-schema-2.1.0.json"), file])
        .output()
        .unwrap();
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    })
}

/// A small sharded run: `sim --seeds 0..N --shard i/K --json --junit` per shard.
fn run_shards(dir: &Scratch, seeds: &str, count: u32, extra: &[&str]) -> Vec<String> {
    (0..count)
        .map(|i| {
            let shard = format!("{i}/{count}");
            let junit = dir.path(&format!("shard-{i}.xml"));
            let failures = dir.path(&format!("failures-{i}.txt"));
            let mut args = vec![
                "sim",
                "--seeds",
                seeds,
                "--shard",
                &shard,
                "--json",
                "--junit",
                &junit,
                "--failures",
                &failures,
            ];
            args.extend_from_slice(extra);
            let out = gauntlet(&dir.0, &args);
            assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
            assert_junit_valid(&junit);
            let jsonl = dir.path(&format!("shard-{i}.jsonl"));
            std::fs::write(&jsonl, &out.stdout).unwrap();
            jsonl
        })
        .collect()
}

const SMALL: &[&str] = &["--users", "10", "--duration", "5s"];

#[test]
fn junit_schema_rejects_a_suite_without_counts() {
    let dir = Scratch::new("xsd-bites");
    let bad = dir.path("bad.xml");
    std::fs::write(
        &bad,
        r#"<testsuites><testsuite name="x"><testcase name="a"/></testsuite></testsuites>"#,
    )
    .unwrap();
    if let Some(verdict) = junit_valid(&bad) {
        assert!(
            verdict.is_err(),
            "the XSD accepted a suite without tests/failures/errors"
        );
    }
}

#[test]
fn sarif_schema_rejects_a_wrong_version() {
    let dir = Scratch::new("sarif-bites");
    let bad = dir.path("bad.sarif");
    std::fs::write(&bad, r#"{"version": "2.0.0", "runs": []}"#).unwrap();
    if let Some(verdict) = sarif_valid(&bad) {
        assert!(verdict.is_err(), "the SARIF schema accepted version 2.0.0");
    }
}

#[test]
fn sim_junit_has_a_case_per_seed_and_validates() {
    let dir = Scratch::new("sim-junit");
    let junit = dir.path("sim.xml");
    let failures = dir.path("f.txt");
    let mut args = vec!["sim", "--seeds", "0..4", "-q", "--junit", &junit];
    args.extend_from_slice(&["--failures", &failures]);
    args.extend_from_slice(SMALL);
    let out = gauntlet(&dir.0, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    for seed in 0..4 {
        assert!(xml.contains(&format!(r#"name="seed {seed}""#)), "{xml}");
    }
    assert!(
        xml.contains(r#"tests="4""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
    assert_junit_valid(&junit);
}

#[test]
fn sim_flags_read_gauntlet_environment_variables() {
    let dir = Scratch::new("sim-env");
    let junit = dir.path("env.xml");
    let failures = dir.path("f.txt");
    let out = command(&dir.0, &["sim", "--json"])
        .env("GAUNTLET_SEEDS", "0..6")
        .env("GAUNTLET_SHARD", "1/3")
        .env("GAUNTLET_USERS", "10")
        .env("GAUNTLET_DURATION", "5s")
        .env("GAUNTLET_JUNIT", &junit)
        .env("GAUNTLET_FAILURES", &failures)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let start = stdout.lines().next().unwrap_or_default();
    assert!(
        start.contains(r#""seeds":"0..6""#)
            && start.contains(r#""shard":"1/3""#)
            && start.contains(r#""users":10"#),
        "{start}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"name="seed 1""#) && xml.contains(r#"name="seed 4""#),
        "{xml}"
    );
    // A flag on the command line wins over its variable.
    let out = command(&dir.0, &["sim", "--json", "--seeds", "0..2", "-q"])
        .env("GAUNTLET_SEEDS", "0..6")
        .env("GAUNTLET_USERS", "10")
        .env("GAUNTLET_DURATION", "5s")
        .env("GAUNTLET_FAILURES", &failures)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""seeds":"0..2""#),
        "{}",
        text(&out)
    );
}

#[test]
fn merge_of_passing_shards_exits_0_and_writes_junit_that_validates() {
    let dir = Scratch::new("merge-pass");
    let files = run_shards(&dir, "0..9", 3, SMALL);
    let junit = dir.path("merged.xml");
    let mut args = vec!["merge", "--junit", &junit];
    // Any order: the merge sorts by shard.
    args.extend(files.iter().rev().map(String::as_str));
    let out = gauntlet(&dir.0, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("over 3 shards"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..4] == ["total", "9", "9", "0"]),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 3, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 9, "{xml}");
    assert_junit_valid(&junit);

    let out = gauntlet(
        &dir.0,
        &["merge", "--json", &files[0], &files[1], &files[2]],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_owned)
        .unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["seeds_run"], 9);
    assert_eq!(summary["failed"], 0);
}

/// The last line of a JSON Lines output, which must be its `summary`.
fn summary_of(jsonl: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(jsonl);
    let last = text.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["type"], "summary", "{text}");
    v
}

/// Fault counts as `kind -> n`, from a `faults` object.
fn fault_counts(v: &serde_json::Value) -> std::collections::BTreeMap<String, u64> {
    v["faults"]
        .as_object()
        .unwrap_or_else(|| panic!("no faults object: {v}"))
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect()
}

#[test]
fn merge_sums_faults_by_kind_to_the_shards_total_and_the_unsharded_runs() {
    let dir = Scratch::new("merge-faults");
    let chaos = ["--users", "10", "--duration", "20s", "--faults", "chaos"];
    let files = run_shards(&dir, "0..6", 2, &chaos);
    let mut shard_sum = std::collections::BTreeMap::<String, u64>::new();
    for f in &files {
        for (kind, n) in fault_counts(&summary_of(&std::fs::read(f).unwrap())) {
            *shard_sum.entry(kind).or_default() += n;
        }
    }
    assert!(
        shard_sum.values().sum::<u64>() > 0,
        "chaos injected no timed fault in seeds 0..6: {shard_sum:?}"
    );
    let mut args = vec!["sim", "--seeds", "0..6", "--json", "--failures"];
    let failures = dir.path("failures-whole.txt");
    args.push(&failures);
    args.extend_from_slice(&chaos);
    let whole = gauntlet(&dir.0, &args);
    assert_eq!(whole.status.code(), Some(0), "{}", text(&whole));
    assert_eq!(fault_counts(&summary_of(&whole.stdout)), shard_sum);

    let out = gauntlet(&dir.0, &["merge", "--json", &files[0], &files[1]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        fault_counts(&summary_of(&out.stdout)),
        shard_sum,
        "{stdout}"
    );
    // Each `shard` line carries its own shard's totals.
    let shard_lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "shard")
        .collect();
    assert_eq!(shard_lines.len(), 2, "{stdout}");
    for (line, file) in shard_lines.iter().zip(&files) {
        let own = fault_counts(&summary_of(&std::fs::read(file).unwrap()));
        assert_eq!(fault_counts(line), own, "{line}");
    }

    let out = gauntlet(&dir.0, &["merge", &files[1], &files[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: Vec<String> = shard_sum.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let expected = format!("\nfaults: {}\n", listed.join(", "));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&expected),
        "no {expected:?} in {}",
        text(&out)
    );

    // A shard whose summary disagrees with its seeds' faults does not make a whole run.
    let tampered = dir.path("tampered-1.jsonl");
    let original = std::fs::read_to_string(&files[1]).unwrap();
    let bumped: Vec<String> = original
        .lines()
        .map(|l| {
            if l.contains(r#""type":"summary""#) {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["faults"]["partition"] = serde_json::json!(1_000_000);
                v.to_string()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&tampered, bumped.join("\n")).unwrap();
    let out = gauntlet(&dir.0, &["merge", &files[0], &tampered]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sums up faults"),
        "{}",
        text(&out)
    );
}

#[test]
fn merge_of_missing_duplicate_foreign_or_truncated_shards_exits_2_naming_the_problem() {
    let dir = Scratch::new("merge-bad");
    let files = run_shards(&dir, "0..6", 2, SMALL);
    let other = {
        let sub = Scratch::new("merge-bad-other");
        let f = run_shards(&sub, "0..6", 2, &["--users", "11", "--duration", "5s"]);
        let text = std::fs::read(&f[1]).unwrap();
        let path = dir.path("other-1.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    };
    let truncated = {
        let text = std::fs::read_to_string(&files[1]).unwrap();
        let cut: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains(r#""summary""#))
            .collect();
        let path = dir.path("cut-1.jsonl");
        std::fs::write(&path, cut.join("\n")).unwrap();
        path
    };
    let garbage = dir.path("garbage.jsonl");
    std::fs::write(&garbage, "not json\n").unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec![&files[0]], "shards missing: 1/2"),
        (
            vec![&files[0], &files[1], &files[1]],
            "shard 1/2 given twice",
        ),
        (vec![&files[0], &other], "is from another run"),
        (vec![&files[0], &truncated], "has no `summary` line"),
        (vec![&files[0], &garbage], "not a sim --json line"),
    ];
    for (inputs, reason) in cases {
        let mut args = vec!["merge"];
        args.extend(inputs);
        let out = gauntlet(&dir.0, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(reason),
            "{args:?}: stderr does not say {reason:?}: {}",
            text(&out)
        );
    }
    let out = gauntlet(&dir.0, &["merge", &dir.path("absent.jsonl")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// A planted bug caught within a few small seeds, so the merge has real failures to report.
#[cfg(feature = "planted-bugs")]
#[test]
fn merge_of_shards_with_failures_exits_1_listing_every_repro_line() {
    let dir = Scratch::new("merge-fail");
    let plant = [
        "--plant",
        "broadcast-leak",
        "--users",
        "20",
        "--duration",
        "10s",
        "--faults",
        "none",
    ];
    let files = run_shards(&dir, "0..6", 2, &plant);
    let expected: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| l.contains(r#""type":"violation""#))
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["repro"].as_str().unwrap().to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !expected.is_empty(),
        "the plant was not caught in seeds 0..6"
    );
    let junit = dir.path("merged.xml");
    let failures: Vec<String> = (0..2)
        .map(|i| dir.path(&format!("failures-{i}.txt")))
        .collect();
    let args = [
        "merge",
        "--junit",
        &junit,
        "--failures",
        &failures[0],
        "--failures",
        &failures[1],
        &files[0],
        &files[1],
    ];
    let out = gauntlet(&dir.0, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let repros: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("repro: "))
        .collect();
    assert_eq!(repros.len(), expected.len(), "{stdout}");
    for r in &expected {
        assert!(repros.contains(&r.as_str()), "{r} missing from {stdout}");
        assert!(r.contains("--plant broadcast-leak"), "{r}");
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<failure ").count(), expected.len(), "{xml}");
    assert!(xml.contains("repro: gauntlet sim --seed"), "{xml}");
    assert_junit_valid(&junit);
}

#[test]
fn fuzz_report_has_a_case_per_target_and_fails_on_a_crash() {
    let dir = Scratch::new("fuzz-report");
    let ok = dir.path("token_bytes.smoke.log");
    std::fs::write(
        &ok,
        "INFO: Seed: 1\nDone 4096 runs in 2 second(s)\nfuzz-smoke: exit 0\n",
    )
    .unwrap();
    let crash = dir.path("handshake.smoke.log");
    std::fs::write(
        &crash,
        "oracle violated: handshake 3 accepted as oscar\n\
         ==7== ERROR: libFuzzer: deadly signal\n\
         Test unit written to fuzz/artifacts/handshake/crash-ab12\n\
         fuzz-smoke: exit 77\n",
    )
    .unwrap();
    let junit = dir.path("fuzz.xml");
    let out = gauntlet(&dir.0, &["fuzz-report", "--junit", &junit, &ok]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_junit_valid(&junit);
    let out = gauntlet(&dir.0, &["fuzz-report", "--junit", &junit, &ok, &crash]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(r#"name="token_bytes""#) && xml.contains(r#"name="handshake""#));
    assert!(xml.contains("oracle violated: handshake 3"), "{xml}");
    assert!(xml.contains("crash-ab12"), "{xml}");
    assert_junit_valid(&junit);
    let out = gauntlet(&dir.0, &["fuzz-report", &dir.path("absent.smoke.log")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// Probes a fresh `gauntlet serve` (with `serve_extra` flags) writing JUnit and SARIF,
/// validates both, and returns the exit code and the SARIF document.
fn probe_reports(name: &str, serve_extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let dir = Scratch::new(name);
    let secret = dir.path("secret.bin");
    std::fs::write(&secret, SECRET).unwrap();
    // One client address makes every handshake: at the default per-IP rate the probe spent
    // most of its 27 s waiting out 429s, which this test is not about.
    let config = dir.path("config.json");
    std::fs::write(
        &config,
        r#"{"limits":{"ip_handshake_rate":{"per_second":1000,"burst":1000}}}"#,
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
    serve.extend_from_slice(serve_extra);
    let (_server, target) = common::serve(&dir.0, &serve);
    let (junit, sarif) = (dir.path("probe.xml"), dir.path("probe.sarif"));
    let args = [
        "probe",
        "--json",
        "--target",
        &target,
        "--secret-file",
        &secret,
        "--junit",
        &junit,
        "--sarif",
        &sarif,
    ];
    let out = gauntlet(&dir.0, &args);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let checks = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""type":"check""#))
        .count();
    assert!(checks > 10, "{}", text(&out));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), checks, "{xml}");
    assert_junit_valid(&junit);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(
        doc["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .map(Vec::len),
        Some(checks)
    );
    if let Some(Err(e)) = sarif_valid(&sarif) {
        panic!("{sarif} does not validate against the SARIF 2.1.0 schema: {e}");
    }
    let failed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(r#""passed":false"#))
        .count();
    assert_eq!(xml.matches("<failure").count(), failed, "{xml}");
    assert_eq!(
        doc["runs"][0]["results"].as_array().map(Vec::len),
        Some(failed)
    );
    (out.status.code(), doc)
}

#[test]
fn probe_junit_and_sarif_validate_against_their_schemas() {
    // Our own server passes every check (the probe's loopback test says so).
    let (code, doc) = probe_reports("probe-reports", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(doc["runs"][0]["results"].as_array().map(Vec::len), Some(0));
}

/// A server that trusts the token header's `alg` fails a probe check: the SARIF then has a
/// result, which must validate too.
#[cfg(feature = "planted-bugs")]
#[test]
fn probe_sarif_with_failed_checks_validates() {
    let (code, doc) = probe_reports("probe-reports-plant", &["--plant", "alg-from-header"]);
    assert_eq!(code, Some(1));
    let results = doc["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!results.is_empty());
    assert_eq!(results[0]["level"], "error");
}

/// `probe --jwks` with nothing but the JWKS `gauntlet serve --jwks` serves: the key-confusion
/// attacks run once per key of the set, naming its kid, and our server refuses every one.
#[test]
fn probe_with_only_the_served_jwks_attacks_each_key_and_passes() {
    let dir = Scratch::new("probe-jwks");
    let jwks = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpora/tokens/keys/jwks.json")
        .to_string_lossy()
        .into_owned();
    let config = dir.path("config.json");
    // One client address: the keyless attacks are many handshakes.
    std::fs::write(
        &config,
        r#"{"limits":{"ip_handshake_rate":{"per_second":1000,"burst":1000}}}"#,
    )
    .unwrap();
    let serve = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--jwks",
        &jwks,
        "--config",
        &config,
    ];
    let (_server, target) = common::serve(&dir.0, &serve);
    let out = gauntlet(
        &dir.0,
        &["probe", "--json", "--target", &target, "--jwks", &jwks],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let checks: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["type"] == "check")
        .collect();
    let jwks_checks: Vec<&str> = checks
        .iter()
        .filter_map(|c| c["check"].as_str())
        .filter(|n| n.starts_with("attack_jwks_"))
        .collect();
    assert_eq!(
        jwks_checks,
        vec![
            "attack_jwks_1_key_confusion_pem_refused",
            "attack_jwks_1_key_confusion_pem_no_newline_refused",
            "attack_jwks_1_key_confusion_der_refused",
            "attack_jwks_2_key_confusion_pem_refused",
            "attack_jwks_2_key_confusion_pem_no_newline_refused",
            "attack_jwks_2_key_confusion_der_refused",
        ]
    );
    // Without --kid the keyless attacks name the set's first kid, so they reach a real key.
    let none = checks
        .iter()
        .find(|c| c["check"] == "attack_alg_none_refused")
        .map(|c| c["evidence"].to_string())
        .unwrap_or_default();
    assert!(none.contains("algorithm_none"), "{none}");
    let bad = gauntlet(&dir.0, &["probe", "--target", &target, "--jwks", &config]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("the JWKS"),
        "{}",
        text(&bad)
    );
}
