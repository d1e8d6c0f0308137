use super::*;

/// Bytes that drive a run with connects, messages and time.
fn busy() -> Vec<u8> {
    let mut v = vec![24];
    for i in 0u8..24 {
        v.extend([i % 5, i, i.wrapping_mul(7), 3]);
    }
    v
}

#[test]
fn log_replay_real_run_replays_to_its_footer() {
    let (journal, hash, entries) = record_run(&mut Unstructured::new(&busy())).unwrap();
    assert!(entries > 3, "the run should do something: {entries}");
    assert!(journal.contains(&hash));
    assert_eq!(log_replay(&busy()), Ok(()));
    assert_eq!(log_replay(journal.as_bytes()), Ok(()));
    assert_eq!(log_replay(b"{\"kind\":\"footer\"}\n\xff"), Ok(()));
}

#[test]
fn log_replay_replay_dropping_footer_is_caught() {
    let drop_footer = |text: &str| {
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"footer\"")).collect();
        replay_journal(&kept.join("\n"))
    };
    let r = log_replay_with(&busy(), &drop_footer);
    assert!(
        matches!(&r, Err(OracleViolation::ReplayDiverged { why, .. }) if why.starts_with("recorded hash None")),
        "{r:?}"
    );
}

#[test]
fn log_replay_replay_reporting_wrong_hash_is_caught() {
    let (journal, _, _) = record_run(&mut Unstructured::new(&busy())).unwrap();
    let lie = |text: &str| {
        replay_journal(text).map(|r| Replayed {
            recorded_hash: Some("0".repeat(64)),
            ..r
        })
    };
    let r = log_replay_with(journal.as_bytes(), &lie);
    assert!(
        matches!(&r, Err(OracleViolation::ReplayInconsistent { why }) if why.starts_with("footer hash 000")),
        "{r:?}"
    );
}
