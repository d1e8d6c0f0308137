//! The simulation's only source of randomness.
//!
//! Everything random in a run derives from one `u64` seed through [`SimRng`], a ChaCha8
//! stream. Each area of the world takes its own named sub-stream with [`SimRng::fork`]
//! ("network", "workload", "keys", ...), so adding a draw in one area never shifts the draws
//! of another, and a failing seed stays a failing seed while unrelated code changes.
//!
//! Portability: every helper turns raw `u64` words into results with integer arithmetic or
//! with IEEE-754 basic operations (`+ - * /`, exactly rounded on every platform). Nothing
//! calls the platform `libm` (`ln`, `exp`, `powf` may differ in the last bit between
//! machines), so the same seed draws the same values everywhere.
//!
//! This module must never read the OS RNG or the wall clock.

use std::ops::Range;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Domain separator for the root stream, so a `SimRng` never equals a fork of another.
const ROOT_DOMAIN: &[u8] = b"gauntlet-sim/rng/root/v1";
/// Domain separator for named forks.
const FORK_DOMAIN: &[u8] = b"gauntlet-sim/rng/fork/v1";
/// Domain separator for indexed forks, so `fork_indexed(n, i)` never equals a `fork`.
const FORK_INDEXED_DOMAIN: &[u8] = b"gauntlet-sim/rng/fork-indexed/v1";
/// An exponential draw is capped at this many means: the tail beyond it (probability
/// e^-64) never happens in practice, and the cap keeps virtual time finite.
const EXP_CAP_MEANS: u64 = 64;
/// 2^53: `f64` holds every integer up to this exactly.
const TWO_POW_53: f64 = 9_007_199_254_740_992.0;

/// A seeded, portable random stream (ChaCha8) with named, independent sub-streams.
#[derive(Clone, Debug)]
pub struct SimRng {
    /// The key this stream was derived from; forks hash it, never the stream position, so a
    /// fork does not depend on how many values were drawn before it.
    key: [u8; 32],
    stream: ChaCha8Rng,
}

impl SimRng {
    /// The root stream of the run with this seed.
    pub fn new(seed: u64) -> Self {
        let key: [u8; 32] = Sha256::new()
            .chain_update(ROOT_DOMAIN)
            .chain_update(seed.to_le_bytes())
            .finalize()
            .into();
        Self::from_key(key)
    }

    fn from_key(key: [u8; 32]) -> Self {
        Self {
            key,
            stream: ChaCha8Rng::from_seed(key),
        }
    }

    /// An independent sub-stream named `name`, derived from this stream's key (not from its
    /// position): the same parent and name always give the same fork, whatever was drawn.
    pub fn fork(&self, name: &str) -> SimRng {
        let len = u64::try_from(name.len()).unwrap_or(u64::MAX);
        let key: [u8; 32] = Sha256::new()
            .chain_update(FORK_DOMAIN)
            .chain_update(self.key)
            .chain_update(len.to_le_bytes())
            .chain_update(name.as_bytes())
            .finalize()
            .into();
        Self::from_key(key)
    }

    /// The sub-stream `name` number `index` (e.g. one per client), without formatting a
    /// string per call: adding client 1001 never shifts the draws of client 7.
    pub fn fork_indexed(&self, name: &str, index: u64) -> SimRng {
        let len = u64::try_from(name.len()).unwrap_or(u64::MAX);
        let key: [u8; 32] = Sha256::new()
            .chain_update(FORK_INDEXED_DOMAIN)
            .chain_update(self.key)
            .chain_update(len.to_le_bytes())
            .chain_update(name.as_bytes())
            .chain_update(index.to_le_bytes())
            .finalize()
            .into();
        Self::from_key(key)
    }

    /// The next raw 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.stream.next_u64()
    }

    /// Fills `dest` with random bytes.
    pub fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.stream.fill_bytes(dest);
    }

    /// A uniform integer in `range` (half-open); an empty range yields `range.start`.
    ///
    /// Unbiased (Lemire's multiply-and-reject), integer-only, so portable.
    pub fn range(&mut self, range: Range<u64>) -> u64 {
        let Some(span) = range.end.checked_sub(range.start).filter(|s| *s > 0) else {
            return range.start;
        };
        // Reject the low products that would over-represent some outputs.
        let threshold = span.wrapping_neg() % span;
        loop {
            let wide = u128::from(self.next_u64()) * u128::from(span);
            // Truncation is the point: the low word decides rejection, the high word is the draw.
            let low = wide as u64;
            if low >= threshold {
                let high = (wide >> 64) as u64;
                return range.start + high;
            }
        }
    }

    /// A uniform index below `len` (0 when `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        let len64 = u64::try_from(len).unwrap_or(u64::MAX);
        usize::try_from(self.range(0..len64)).unwrap_or(0)
    }

    /// `true` with probability `p`. `p <= 0` or NaN is never, `p >= 1` is always.
    pub fn chance(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        // p * 2^53 is exact (a power-of-two scale), so the threshold is the same everywhere.
        let threshold = (p * TWO_POW_53) as u64;
        (self.next_u64() >> 11) < threshold
    }

    /// A uniformly chosen element, `None` for an empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.index(items.len()))
    }

    /// A uniform duration in `[lo, hi]` at nanosecond resolution (`lo` if `hi < lo`).
    pub fn uniform_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ns = duration_nanos(lo);
        let hi_ns = duration_nanos(hi);
        if hi_ns <= lo_ns {
            return lo;
        }
        Duration::from_nanos(self.range(lo_ns..hi_ns.saturating_add(1)))
    }

    /// An exponentially distributed duration with the given `mean` (nanosecond resolution),
    /// capped at 64 means.
    pub fn exp_duration(&mut self, mean: Duration) -> Duration {
        let mean_ns = duration_nanos(mean);
        if mean_ns == 0 {
            return Duration::ZERO;
        }
        // u in (0, 1]: never 0, so ln(u) is finite.
        let u = ((self.next_u64() >> 11) + 1) as f64 / TWO_POW_53;
        let draw = -portable_ln(u) * mean_ns as f64;
        let cap = mean_ns.saturating_mul(EXP_CAP_MEANS);
        // `as` saturates for floats; the cap bounds the tail.
        Duration::from_nanos((draw as u64).min(cap))
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / TWO_POW_53
    }
}

/// A duration as whole nanoseconds, saturating at `u64::MAX` (584 years).
pub(crate) fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Natural logarithm of `x` in `(0, 1]` using only exactly-rounded IEEE operations, so the
/// result is bit-identical on every platform (unlike `f64::ln`, which calls the local libm).
fn portable_ln(x: f64) -> f64 {
    const LN_2: f64 = std::f64::consts::LN_2;
    const EXP_MASK: u64 = 0x7ff;
    const MANTISSA_MASK: u64 = (1 << 52) - 1;
    const ONE_EXP_BITS: u64 = 1023 << 52;
    if x.is_nan() || x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let bits = x.to_bits();
    // x = m * 2^e with m in [1, 2); callers pass x >= 2^-53, so x is never subnormal.
    let exponent = ((bits >> 52) & EXP_MASK) as i64 - 1023;
    let mut m = f64::from_bits((bits & MANTISSA_MASK) | ONE_EXP_BITS);
    let mut e = exponent as f64;
    // Centre m on 1 (m in [0.707, 1.414)) so the series below converges fast.
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1.0;
    }
    // ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172: 12 odd terms reach 1e-19.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    for k in 0..12u32 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    e * LN_2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(rng: &mut SimRng, n: usize) -> Vec<u64> {
        (0..n).map(|_| rng.next_u64()).collect()
    }

    #[test]
    fn same_seed_same_draws() {
        assert_eq!(
            draws(&mut SimRng::new(7), 16),
            draws(&mut SimRng::new(7), 16)
        );
    }

    #[test]
    fn different_seeds_different_draws() {
        assert_ne!(draws(&mut SimRng::new(7), 4), draws(&mut SimRng::new(8), 4));
    }

    #[test]
    fn fork_unaffected_by_draws_on_parent_or_sibling() {
        let root = SimRng::new(42);
        let expected = draws(&mut root.fork("network"), 8);

        let mut busy_root = SimRng::new(42);
        let mut workload = busy_root.fork("workload");
        draws(&mut workload, 1000);
        draws(&mut busy_root, 1000);
        assert_eq!(draws(&mut busy_root.fork("network"), 8), expected);
    }

    #[test]
    fn forks_with_different_names_are_independent() {
        let root = SimRng::new(1);
        let a = draws(&mut root.fork("network"), 8);
        let b = draws(&mut root.fork("workload"), 8);
        let parent = draws(&mut SimRng::new(1), 8);
        assert_ne!(a, b);
        assert_ne!(a, parent);
        // Name framing: "ab" + "c" must not collide with "a" + "bc" across nesting levels.
        assert_ne!(
            draws(&mut root.fork("ab").fork("c"), 4),
            draws(&mut root.fork("a").fork("bc"), 4)
        );
    }

    #[test]
    fn fork_indexed_streams_are_distinct_and_stable() {
        let root = SimRng::new(77);
        let c7 = draws(&mut root.fork_indexed("client", 7), 4);
        assert_eq!(draws(&mut root.fork_indexed("client", 7), 4), c7);
        assert_ne!(draws(&mut root.fork_indexed("client", 8), 4), c7);
        assert_ne!(draws(&mut root.fork_indexed("server", 7), 4), c7);
        assert_ne!(draws(&mut root.fork("client"), 4), c7);
    }

    #[test]
    fn range_stays_in_bounds_and_covers_every_value() {
        let mut rng = SimRng::new(3);
        let mut seen = [0u32; 6];
        for _ in 0..6000 {
            let v = rng.range(10..16);
            assert!((10..16).contains(&v), "{v} out of range");
            seen[(v - 10) as usize] += 1;
        }
        // Each value expects 1000; 5 sigma of a binomial(6000, 1/6) is about 144.
        for count in seen {
            assert!((856..=1144).contains(&count), "count {count}");
        }
    }

    #[test]
    fn range_empty_returns_start() {
        let mut rng = SimRng::new(3);
        assert_eq!(rng.range(5..5), 5);
        #[allow(clippy::reversed_empty_ranges)] // the reversed range is the input under test
        let reversed = 9..2;
        assert_eq!(rng.range(reversed), 9);
        assert_eq!(rng.index(0), 0);
    }

    #[test]
    fn chance_matches_probability_within_tolerance() {
        let mut rng = SimRng::new(11);
        let n = 100_000u32;
        let hits = (0..n).filter(|_| rng.chance(0.25)).count();
        // mean 25_000, sd = sqrt(n p (1-p)) ~ 137; allow 5 sd.
        assert!((24_315..=25_685).contains(&hits), "hits {hits}");
    }

    #[test]
    fn chance_extremes_are_exact() {
        let mut rng = SimRng::new(11);
        assert!((0..1000).all(|_| !rng.chance(0.0)));
        assert!((0..1000).all(|_| !rng.chance(f64::NAN)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }

    #[test]
    fn pick_empty_is_none_and_nonempty_is_member() {
        let mut rng = SimRng::new(5);
        let empty: [u8; 0] = [];
        assert_eq!(rng.pick(&empty), None);
        let items = ["a", "b", "c"];
        for _ in 0..50 {
            let p = rng.pick(&items).copied();
            assert!(matches!(p, Some("a" | "b" | "c")));
        }
    }

    #[test]
    fn uniform_duration_inclusive_bounds() {
        let mut rng = SimRng::new(9);
        let lo = Duration::from_millis(5);
        let hi = Duration::from_millis(6);
        for _ in 0..1000 {
            let d = rng.uniform_duration(lo, hi);
            assert!(d >= lo && d <= hi, "{d:?}");
        }
        assert_eq!(rng.uniform_duration(hi, lo), hi);
    }

    #[test]
    fn exp_duration_mean_close_to_parameter() {
        let mut rng = SimRng::new(13);
        let mean = Duration::from_millis(10);
        let n = 50_000u32;
        let total: u128 = (0..n).map(|_| rng.exp_duration(mean).as_nanos()).sum();
        let avg = total / u128::from(n);
        // Exponential sd equals the mean: standard error 10ms / sqrt(50_000) ~ 45us; allow 5.
        assert!((9_775_000..=10_225_000).contains(&avg), "avg {avg}ns");
    }

    #[test]
    fn exp_duration_respects_cap_and_zero_mean() {
        let mut rng = SimRng::new(13);
        assert_eq!(rng.exp_duration(Duration::ZERO), Duration::ZERO);
        let mean = Duration::from_nanos(3);
        assert!((0..10_000).all(|_| rng.exp_duration(mean) <= mean * 64));
    }

    #[test]
    fn portable_ln_agrees_with_libm() {
        for x in [
            1.0,
            0.5,
            0.1,
            0.9999,
            1e-9,
            1.0 / TWO_POW_53,
            std::f64::consts::FRAC_1_SQRT_2,
            0.75,
        ] {
            let diff = (portable_ln(x) - x.ln()).abs();
            assert!(diff <= 1e-13 * x.ln().abs().max(1.0), "x {x}: diff {diff}");
        }
    }
}
