//! The phases of a run, in the only order they happen: safety, liveness, draining.
//! Owns nothing but the name of where a run is; it never decides when a phase ends (the
//! scheduled `SafetyEnds` and `LivenessEnds` events do).

/// Where a run is. One enum rather than two flags, so a run can never be both in its safety
/// phase and draining.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Faults on, adversaries active, invariants checked after every step.
    Safety,
    /// Faults off, network healed: honest clients only recover.
    Liveness,
    /// Timers and wake-ups are dropped: only traffic already in flight moves.
    Draining,
}
