//! Coverage marks: every rule id of `docs/protocol.md` is exactly one of: a rule the CI sweep
//! must mark (`MARKED_RULES`), a rule the CI's probe run marks (listed with its probe checks
//! under "Rules the probe sweep marks" in `docs/oracles.md`), or a rule listed, with its
//! reason, under "Rules without a coverage mark in the sweep"; and marks are observations
//! only, the same whichever thread runs the checks, changing no journal or state hash.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gauntlet_sim::{
    FaultPreset, MARKED_RULES, Mix, Offload, Scenario, gateway_config, run_scenario_ticking,
};

/// The heading of the list of rules the sweep does not mark, in `oracles.md`.
const UNMARKED_HEADING: &str = "## Rules without a coverage mark in the sweep";
/// The heading of the list of rules the CI's probe run marks, each with its probe checks.
const PROBE_HEADING: &str = "## Rules the probe sweep marks";

fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Whether `s` is a rule id: `[A-Z]+(-[A-Z0-9]+)+`.
fn is_rule_id(s: &str) -> bool {
    let mut parts = s.split('-');
    let head = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_uppercase()));
    let rest: Vec<&str> = parts.collect();
    head && !rest.is_empty()
        && rest.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        })
}

/// The rule id a list item or table row starts with, if any (as `protocol.md` defines them).
fn leading_id(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t
        .strip_prefix("- ")
        .or_else(|| t.strip_prefix("* "))
        .or_else(|| t.strip_prefix('|'))?
        .trim_start()
        .strip_prefix('`')?;
    let id = rest.get(..rest.find('`')?)?;
    is_rule_id(id).then_some(id)
}

fn protocol_ids() -> BTreeSet<String> {
    doc("protocol.md")
        .lines()
        .filter_map(leading_id)
        .map(str::to_string)
        .collect()
}

/// The ids listed under `heading` in `oracles.md`, each with the text after it (a reason,
/// or probe checks), in listed order.
fn listed_under(heading: &str) -> Vec<(String, String)> {
    doc("oracles.md")
        .lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| {
            let id = leading_id(l)?;
            let reason = l.split_once("`:").map_or("", |(_, r)| r.trim());
            Some((id.to_string(), reason.to_string()))
        })
        .collect()
}

/// Every check the probe list names is one `gauntlet probe` runs, so the CI step that reads
/// the list cannot wait for a check that does not exist.
#[test]
fn probe_marks_name_checks_the_probe_has() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src/probe.rs");
    let probe = std::fs::read_to_string(&path).expect("server/src/probe.rs");
    for (rule, checks) in listed_under(PROBE_HEADING) {
        let names: Vec<&str> = checks.split('`').skip(1).step_by(2).collect();
        assert!(!names.is_empty(), "{rule}: no probe check named");
        for name in names {
            assert!(
                probe.contains(&format!("\"{name}\"")),
                "{rule}: the probe has no check {name:?}"
            );
        }
    }
}

#[test]
fn every_rule_is_marked_by_the_sweep_or_listed_with_a_reason_never_both() {
    let protocol = protocol_ids();
    assert!(protocol.len() > 100, "only {} rule ids", protocol.len());
    let marked: BTreeSet<String> = MARKED_RULES.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        marked.len(),
        MARKED_RULES.len(),
        "MARKED_RULES repeats a rule"
    );
    let listed = listed_under(UNMARKED_HEADING);
    let probe_listed = listed_under(PROBE_HEADING);
    assert!(!probe_listed.is_empty(), "no {PROBE_HEADING:?} list");
    // The probe's marks count as the sweep's: a rule is in one of the three lists.
    let marked: BTreeSet<String> = marked
        .into_iter()
        .chain(probe_listed.iter().map(|(id, _)| id.clone()))
        .collect();
    assert_eq!(
        marked.len(),
        MARKED_RULES.len() + probe_listed.len(),
        "a rule is in MARKED_RULES and in {PROBE_HEADING:?}, or listed there twice"
    );
    let unmarked: BTreeSet<String> = listed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(unmarked.len(), listed.len(), "a rule is listed twice");

    let unknown: Vec<&String> = marked
        .union(&unmarked)
        .filter(|id| !protocol.contains(*id))
        .collect();
    assert!(
        unknown.is_empty(),
        "not rule ids of protocol.md: {unknown:?}"
    );
    let both: Vec<&String> = marked.intersection(&unmarked).collect();
    assert!(
        both.is_empty(),
        "in MARKED_RULES and in {UNMARKED_HEADING:?}: {both:?}"
    );
    let neither: Vec<&String> = protocol
        .iter()
        .filter(|id| !marked.contains(*id) && !unmarked.contains(*id))
        .collect();
    assert!(
        neither.is_empty(),
        "neither in MARKED_RULES nor in {UNMARKED_HEADING:?} of oracles.md: {neither:?}"
    );
    let no_reason: Vec<&String> = listed
        .iter()
        .filter(|(_, reason)| reason.is_empty())
        .map(|(id, _)| id)
        .collect();
    assert!(
        no_reason.is_empty(),
        "listed without a reason: {no_reason:?}"
    );
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-marks-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The first seed from 0 whose gateway keeps a small outbox.
fn small_outbox_seed() -> u64 {
    (0..1000)
        .find(|s| gateway_config(*s).limits.outbox_max_events < 100)
        .expect("some seed draws a small outbox")
}

#[test]
fn marks_are_the_same_on_either_thread_and_change_no_journal() {
    let seed = small_outbox_seed();
    let sc = Scenario {
        seed,
        users: 40,
        duration_ms: 60_000,
        adversary_share: 0.1,
        faults: FaultPreset::Chaos.plan(seed),
        mix: Mix::default(),
        plant: None,
        think_ms: gauntlet_sim::DEFAULT_THINK_MS,
    };
    let ticker = gauntlet_sim::Ticker::none();
    let (a, b) = (temp("inline.jsonl"), temp("background.jsonl"));
    let inline =
        run_scenario_ticking(&sc, Some(&a), None, &ticker, Offload::Inline).expect("inline");
    let background = run_scenario_ticking(&sc, Some(&b), None, &ticker, Offload::Background)
        .expect("background");
    assert!(inline.violation.is_none(), "{:?}", inline.violation);
    assert_eq!(inline.marks, background.marks);
    assert_eq!(inline.state_hash, background.state_hash);
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    for rule in [
        "LOG-FOLD",
        "AGENT-ORDER",
        "WS-CONNECTION-ESTABLISHED",
        "OUT-SEQ-PER-USER",
    ] {
        assert!(
            inline.marks.get(rule).is_some_and(|n| *n > 0),
            "{rule} unmarked: {:?}",
            inline.marks
        );
    }
    let unknown: Vec<&&str> = inline
        .marks
        .keys()
        .filter(|r| !protocol_ids().contains(**r))
        .collect();
    assert!(unknown.is_empty(), "marks of unknown rules: {unknown:?}");
}
