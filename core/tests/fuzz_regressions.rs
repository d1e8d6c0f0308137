//! Regression replay of the fuzz corpora on stable: every file under `corpora/<target>/`
//! (seeds) and `corpora/regressions/<target>/` (saved crashes, minimised) goes through the
//! same harness function the cargo-fuzz target calls, and must satisfy its oracle. A crash
//! found once stays fixed. Runs with `cargo test --features fuzzing` (CI: `--all-features`).
#![cfg(feature = "fuzzing")]

use std::fs;
use std::path::{Path, PathBuf};

use gauntlet_core::fuzzing::{self, OracleViolation};

type Harness = fn(&[u8]) -> Result<(), OracleViolation>;

fn corpora() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora")
}

/// Every regular file under `dir`, sorted (a missing directory has none).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && !p.ends_with(".gitkeep"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs every seed and regression file of `target`; returns how many seeds ran.
fn replay(target: &str, harness: Harness) -> usize {
    let seeds = files(&corpora().join(target));
    let regressions = files(&corpora().join("regressions").join(target));
    let mut failures = Vec::new();
    for path in seeds.iter().chain(&regressions) {
        let data = fs::read(path).unwrap();
        if let Err(v) = harness(&data) {
            failures.push(format!("{}: {v}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "oracle violations:\n{}",
        failures.join("\n")
    );
    seeds.len()
}

#[test]
fn token_bytes_corpus_satisfies_oracle() {
    assert!(replay("token_bytes", fuzzing::token_bytes) >= 80);
}

#[test]
fn token_claims_corpus_satisfies_oracle() {
    assert!(replay("token_claims", fuzzing::token_claims) >= 20);
}

#[test]
fn frame_route_corpus_satisfies_oracle() {
    assert!(replay("frame_route", fuzzing::frame_route) >= 25);
}

#[test]
fn handshake_corpus_satisfies_oracle() {
    assert!(replay("handshake", fuzzing::handshake) >= 20);
}

#[test]
fn log_replay_corpus_satisfies_oracle() {
    assert!(replay("log_replay", fuzzing::log_replay) >= 10);
}

/// The seed corpus must contain every token of the attack table, so the fuzzer starts from
/// each known attack.
#[test]
fn token_bytes_corpus_holds_attack_table() {
    let seeds: Vec<_> = files(&corpora().join("token_bytes"))
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_owned()))
        .collect();
    for table in files(&corpora().join("tokens")) {
        if table.extension().is_some_and(|e| e == "jwt") {
            let name = table.file_name().unwrap().to_owned();
            assert!(
                seeds.contains(&name),
                "{name:?} missing from corpora/token_bytes"
            );
        }
    }
}

#[test]
fn oauth_flow_corpus_satisfies_oracle() {
    assert!(replay("oauth_flow", fuzzing::oauth_flow) >= 20);
}

/// libFuzzer refuses to start on a malformed dictionary, so check the syntax here: every
/// target has one, and each line is a comment or one quoted entry.
#[test]
fn dictionaries_exist_and_parse() {
    let targets = [
        "token_bytes",
        "token_claims",
        "frame_route",
        "handshake",
        "log_replay",
        "oauth_flow",
    ];
    for t in targets {
        let path = corpora().join("dict").join(format!("{t}.dict"));
        let text = fs::read_to_string(&path).unwrap();
        let entries = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .inspect(|l| {
                let inner = l.strip_prefix('"').and_then(|l| l.strip_suffix('"'));
                assert!(
                    inner.is_some_and(|i| !i.is_empty()),
                    "{}: bad entry {l:?}",
                    path.display()
                );
            })
            .count();
        assert!(entries >= 10, "{t}.dict has {entries} entries");
    }
}
