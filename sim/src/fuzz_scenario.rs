//! The `scenario` fuzz target's harness: fuzzer bytes become a short scenario (seed, a few
//! users, a fault plan, an operation mix), run through the whole simulator with every
//! invariant on. The oracle is the simulator's own: no invariant may fail on the real gateway,
//! and the run must be reproducible (the same bytes give the same state hash).
//!
//! The fuzz target (`fuzz/fuzz_targets/scenario.rs`) and the regression test
//! (`sim/tests/fuzz_scenario.rs`) both call [`fuzz_scenario`], so nothing is duplicated.

use crate::faults::FaultPlan;
use crate::scenario::{Mix, Scenario};
use crate::simulate::run_scenario;

/// Users in a fuzzed scenario, at most.
pub const FUZZ_MAX_USERS: u32 = 8;
/// Safety-phase length of a fuzzed scenario, at most (ms).
pub const FUZZ_MAX_DURATION_MS: u64 = 20_000;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let Some((first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        *first
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }
}

/// The scenario the bytes describe (total: any input is a valid scenario).
pub fn scenario_from_bytes(data: &[u8]) -> Scenario {
    let mut b = Bytes(data);
    let seed = b.u64();
    let users = 2 + u32::from(b.byte()) % (FUZZ_MAX_USERS - 1);
    let duration_ms = 2_000 + u64::from(b.byte()) * (FUZZ_MAX_DURATION_MS - 2_000) / 255;
    let adversary_share = f64::from(b.byte()) / 255.0;
    let think_ms = 100 + u64::from(b.byte()) * 8;
    // Start from chaos and switch faults off by the bits of the next bytes.
    let mut faults = FaultPlan::chaos();
    let mask = u32::from(b.byte()) | (u32::from(b.byte()) << 8) | (u32::from(b.byte()) << 16);
    if let (Ok(serde_json::Value::Object(mut map)), Ok(serde_json::Value::Object(none))) = (
        serde_json::to_value(&faults),
        serde_json::to_value(FaultPlan::none()),
    ) {
        for (i, (k, off)) in none.iter().enumerate() {
            if mask & (1 << (i % 24)) != 0 {
                map.insert(k.clone(), off.clone());
            }
        }
        if let Ok(plan) = serde_json::from_value::<FaultPlan>(serde_json::Value::Object(map))
            && plan.validate().is_ok()
        {
            faults = plan;
        }
    }
    let mut mix = Mix::default();
    for w in mix.0.values_mut() {
        *w = u32::from(b.byte() % 8);
    }
    Scenario {
        seed,
        users,
        duration_ms,
        adversary_share,
        faults,
        mix,
        plant: None,
        think_ms,
    }
}

/// Runs the scenario the bytes describe; `Err` names the violated invariant with evidence.
pub fn fuzz_scenario(data: &[u8]) -> Result<(), String> {
    let sc = scenario_from_bytes(data);
    let first = run_scenario(&sc, None, None).map_err(|e| format!("setup: {e}"))?;
    if let Some(v) = first.violation {
        return Err(format!(
            "invariant {} at step {}: {} (scenario {})",
            v.invariant,
            v.step,
            v.message,
            sc.to_json()
        ));
    }
    let again = run_scenario(&sc, None, None).map_err(|e| format!("setup: {e}"))?;
    if again.state_hash != first.state_hash || again.events != first.events {
        return Err(format!(
            "not reproducible: {} then {}",
            first.state_hash, again.state_hash
        ));
    }
    Ok(())
}

/// The `scenario` floor: the same scenario run once, without checking its invariants or
/// its reproducibility.
pub fn fuzz_scenario_floor(data: &[u8]) -> Result<(), String> {
    let sc = scenario_from_bytes(data);
    let run = run_scenario(&sc, None, None).map_err(|e| format!("setup: {e}"))?;
    std::hint::black_box(run);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_make_a_bounded_valid_scenario() {
        for data in [
            &b""[..],
            &[0xff; 64][..],
            b"gauntlet scenario bytes 0123456789",
        ] {
            let sc = scenario_from_bytes(data);
            assert!((2..=FUZZ_MAX_USERS).contains(&sc.users));
            assert!(sc.duration_ms <= FUZZ_MAX_DURATION_MS);
            assert!(sc.faults.validate().is_ok());
            assert!((0.0..=1.0).contains(&sc.adversary_share));
        }
        assert_ne!(scenario_from_bytes(&[1; 40]), scenario_from_bytes(&[2; 40]));
    }

    #[cfg(feature = "planted-bugs")]
    #[test]
    fn the_oracle_bites_on_a_planted_bug() {
        // The harness itself runs plant-free; with a plant the same run must report.
        let mut sc = scenario_from_bytes(&[7; 40]);
        sc.users = 6;
        sc.duration_ms = 20_000;
        sc.mix = Mix::default();
        sc.plant = Some("broadcast-leak".into());
        let r = run_scenario(&sc, None, None).expect("runs");
        assert_eq!(
            r.violation.map(|v| v.invariant).as_deref(),
            Some("isolation")
        );
    }
}
