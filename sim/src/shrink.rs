//! The shrinker: turns a failing run into a small scenario that still fails the same way.
//!
//! Greedy and deterministic (like TigerBeetle's and Hypothesis's first pass): it tries
//! smaller candidates in a fixed order (fewer users, a shorter run, each fault switched off,
//! each operation removed, no adversaries) and keeps any candidate whose run still violates
//! the same invariant, until a full pass changes nothing or the budget of runs is spent. The
//! seed never changes, so the result replays with `gauntlet sim --scenario FILE`.

use serde_json::Value;

use crate::faults::FaultPlan;
use crate::scenario::Scenario;
use crate::simulate::{SimError, run_scenario};

/// Why shrinking could not start.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The starting scenario passes: there is nothing to shrink.
    #[error("seed {0} does not fail: nothing to shrink")]
    NotFailing(u64),
    /// Running a candidate failed to start.
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// A minimised failure.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest failing scenario found.
    pub scenario: Scenario,
    /// The invariant it violates.
    pub invariant: String,
    /// The violation's message in the smallest scenario.
    pub message: String,
    /// Client operations performed by the original failing run.
    pub ops_before: u64,
    /// Client operations performed by the shrunk run.
    pub ops_after: u64,
    /// Gateway log entries of the original and the shrunk run.
    pub log_before: usize,
    /// See `log_before`.
    pub log_after: usize,
    /// Runs spent.
    pub runs: u32,
}

/// Runs `sc` and returns (invariant, message, ops, log entries) if it fails.
fn failure(sc: &Scenario) -> Result<Option<(String, String, u64, usize)>, SimError> {
    let r = run_scenario(sc, None, None)?;
    Ok(r.violation
        .map(|v| (v.invariant, v.message, r.ops, r.log_entries)))
}

/// Every field of the fault plan that can be switched off, one candidate each.
fn fault_candidates(plan: &FaultPlan) -> Vec<FaultPlan> {
    let Ok(Value::Object(map)) = serde_json::to_value(plan) else {
        return Vec::new();
    };
    let none = serde_json::to_value(FaultPlan::none()).unwrap_or(Value::Null);
    map.keys()
        .filter_map(|k| {
            let off = none.get(k)?;
            if map.get(k) == Some(off) {
                return None;
            }
            let mut m = map.clone();
            m.insert(k.clone(), off.clone());
            serde_json::from_value::<FaultPlan>(Value::Object(m))
                .ok()
                .filter(|p| p.validate().is_ok())
        })
        .collect()
}

fn candidates(sc: &Scenario) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut with = |f: &dyn Fn(&mut Scenario)| {
        let mut c = sc.clone();
        f(&mut c);
        if c != *sc {
            out.push(c);
        }
    };
    with(&|c| c.users = (c.users / 2).max(2));
    with(&|c| c.users = c.users.saturating_sub(1).max(2));
    with(&|c| c.duration_ms = (c.duration_ms / 2).max(1000));
    with(&|c| c.adversary_share = 0.0);
    for plan in fault_candidates(&sc.faults) {
        with(&|c| c.faults = plan.clone());
    }
    for op in sc.mix.active().collect::<Vec<_>>() {
        with(&|c| {
            c.mix.0.insert(op, 0);
        });
    }
    out
}

/// Shrinks `start`, spending at most `budget` runs.
pub fn shrink(start: &Scenario, budget: u32) -> Result<Shrunk, ShrinkError> {
    let Some((invariant, mut message, ops_before, log_before)) = failure(start)? else {
        return Err(ShrinkError::NotFailing(start.seed));
    };
    let mut best = start.clone();
    let (mut ops_after, mut log_after) = (ops_before, log_before);
    let mut runs = 1;
    'pass: loop {
        for cand in candidates(&best) {
            if runs >= budget {
                break 'pass;
            }
            runs += 1;
            if let Some((inv, msg, ops, log)) = failure(&cand)?
                && inv == invariant
            {
                best = cand;
                (message, ops_after, log_after) = (msg, ops, log);
                continue 'pass;
            }
        }
        break;
    }
    Ok(Shrunk {
        scenario: best,
        invariant,
        message,
        ops_before,
        ops_after,
        log_before,
        log_after,
        runs,
    })
}
