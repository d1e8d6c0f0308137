//! What every criterion bench file shares: a short default measurement (the whole suite runs
//! in a few minutes on 2 cores; pass `--measurement-time` for more) and a wall-clock timer for
//! `iter_custom` benches that exclude per-iteration cleanup from the measurement.
// Each bench target compiles this module and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;

/// 20 samples, 0.5 s warm-up, 2 s measurement.
pub(crate) fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Runs `f` and says how long it took.
// Benches measure wall-clock time by definition; the clock ban protects core and sim.
#[allow(clippy::disallowed_methods)]
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = std::time::Instant::now();
    let r = f();
    (r, start.elapsed())
}
