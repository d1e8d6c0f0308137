//! Which seeds a run covers: a seed range `A..B`, a shard `I/N` of it (`seed % N == I`, so
//! CI matrix jobs or Kubernetes Indexed Jobs split one range without overlap), and the
//! options [`crate::run_seeds`] takes.
//!
//! It owns the parsing of `--seeds` and `--shard` and must never run anything.

use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;

use serde::Serialize;

/// Longest `A..B` or `I/N` argument accepted (two u64s and a separator fit easily).
const MAX_ARG_LEN: usize = 64;
/// Largest `--jobs`.
pub const MAX_JOBS: usize = 1024;

/// Why a `--seeds A..B` or `--shard I/N` argument was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The argument is longer than any valid one.
    #[error("argument too long ({len} bytes, max {MAX_ARG_LEN})")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// `--seeds` is not of the form `A..B`.
    #[error("expected a seed range A..B (B exclusive), got {0:?}")]
    SeedSyntax(String),
    /// `--shard` is not of the form `I/N`.
    #[error("expected a shard I/N, got {0:?}")]
    ShardSyntax(String),
    /// A number does not parse as a `u64` (or `u32` for shards).
    #[error("invalid number {0:?}")]
    Number(String),
    /// `A..B` with `B <= A` contains no seed.
    #[error("empty seed range {start}..{end}")]
    EmptySeeds {
        /// Start (inclusive).
        start: u64,
        /// End (exclusive).
        end: u64,
    },
    /// `I/0`: there is no shard of zero.
    #[error("shard count must be at least 1")]
    ZeroShards,
    /// `I/N` with `I >= N`.
    #[error("shard index {index} out of range for {count} shards")]
    ShardIndex {
        /// The index.
        index: u32,
        /// The shard count.
        count: u32,
    },
}

/// A non-empty range of seeds, inclusive at both ends internally (so any `u64` can be a
/// single seed) and written `A..B` with `B` exclusive, like a Rust range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    first: u64,
    last: u64,
}

impl SeedRange {
    /// Just `seed`.
    pub const fn single(seed: u64) -> Self {
        Self {
            first: seed,
            last: seed,
        }
    }

    /// `start..end` (end exclusive); empty ranges are an error.
    pub fn new(start: u64, end: u64) -> Result<Self, RangeError> {
        if end <= start {
            return Err(RangeError::EmptySeeds { start, end });
        }
        Ok(Self {
            first: start,
            last: end - 1,
        })
    }

    /// The first seed.
    pub const fn first(&self) -> u64 {
        self.first
    }

    /// The last seed (inclusive).
    pub const fn last(&self) -> u64 {
        self.last
    }

    /// Number of seeds (saturating at `u64::MAX` for the full range).
    pub const fn len(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    /// Always false: a range holds at least one seed.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Whether this is a single seed.
    pub const fn is_single(&self) -> bool {
        self.first == self.last
    }

    /// The seeds of this range that belong to `shard`, ascending.
    pub fn shard_seeds(&self, shard: Shard) -> impl Iterator<Item = u64> + use<> {
        let count = u64::from(shard.count);
        let index = u64::from(shard.index);
        // First seed >= `first` with seed % count == index.
        let offset = (index + count - self.first % count) % count;
        let last = self.last;
        let start = self.first.checked_add(offset);
        let step = usize::try_from(count).unwrap_or(usize::MAX);
        start
            .into_iter()
            .flat_map(move |s| (s..=last).step_by(step))
    }

    /// Number of seeds of this range in `shard`.
    pub fn shard_len(&self, shard: Shard) -> u64 {
        let count = u64::from(shard.count);
        let index = u64::from(shard.index);
        let offset = (index + count - self.first % count) % count;
        match self.first.checked_add(offset) {
            Some(s) if s <= self.last => (self.last - s) / count + 1,
            _ => 0,
        }
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first, u128::from(self.last) + 1)
    }
}

impl Serialize for SeedRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn parse_num<T: FromStr>(s: &str) -> Result<T, RangeError> {
    // `u64::from_str` accepts a leading '+'; a seed is written plainly.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RangeError::Number(s.to_owned()));
    }
    s.parse().map_err(|_| RangeError::Number(s.to_owned()))
}

impl FromStr for SeedRange {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ARG_LEN {
            return Err(RangeError::TooLong { len: s.len() });
        }
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| RangeError::SeedSyntax(s.to_owned()))?;
        Self::new(parse_num(a)?, parse_num(b)?)
    }
}

/// Shard `index` of `count`: seed `s` belongs to it when `s % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// The whole range (`0/1`).
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, RangeError> {
        if count == 0 {
            return Err(RangeError::ZeroShards);
        }
        if index >= count {
            return Err(RangeError::ShardIndex { index, count });
        }
        Ok(Self { index, count })
    }

    /// How many shards the range is split into.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether `seed` belongs to this shard.
    pub fn contains(&self, seed: u64) -> bool {
        seed % u64::from(self.count) == u64::from(self.index)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Shard {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_ARG_LEN {
            return Err(RangeError::TooLong { len: s.len() });
        }
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| RangeError::ShardSyntax(s.to_owned()))?;
        Self::new(parse_num(i)?, parse_num(n)?)
    }
}

/// How to run a seed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Seeds to consider.
    pub seeds: SeedRange,
    /// Which of them this process runs.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: NonZeroUsize,
    /// Stop after the lowest failing seed.
    pub stop_on_failure: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_range_parse_valid_and_display_round_trips() {
        let r: SeedRange = "3..10".parse().unwrap();
        assert_eq!((r.first(), r.last(), r.len()), (3, 9, 7));
        assert_eq!(r.to_string(), "3..10");
        assert_eq!(
            SeedRange::single(u64::MAX).to_string(),
            "18446744073709551615..18446744073709551616"
        );
    }

    #[test]
    fn seed_range_parse_errors_are_typed() {
        assert_eq!(
            "5..5".parse::<SeedRange>(),
            Err(RangeError::EmptySeeds { start: 5, end: 5 })
        );
        assert_eq!(
            "9..2".parse::<SeedRange>(),
            Err(RangeError::EmptySeeds { start: 9, end: 2 })
        );
        assert_eq!(
            "12".parse::<SeedRange>(),
            Err(RangeError::SeedSyntax("12".into()))
        );
        assert_eq!(
            "1..x".parse::<SeedRange>(),
            Err(RangeError::Number("x".into()))
        );
        assert_eq!(
            "+1..4".parse::<SeedRange>(),
            Err(RangeError::Number("+1".into()))
        );
        assert_eq!(
            "0..18446744073709551616".parse::<SeedRange>(),
            Err(RangeError::Number("18446744073709551616".into()))
        );
        assert_eq!(
            "1".repeat(65).parse::<SeedRange>(),
            Err(RangeError::TooLong { len: 65 })
        );
    }

    #[test]
    fn shard_parse_errors_are_typed() {
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        assert_eq!("0/0".parse::<Shard>(), Err(RangeError::ZeroShards));
        assert_eq!(
            "4/4".parse::<Shard>(),
            Err(RangeError::ShardIndex { index: 4, count: 4 })
        );
        assert_eq!(
            "1-4".parse::<Shard>(),
            Err(RangeError::ShardSyntax("1-4".into()))
        );
        assert_eq!("a/4".parse::<Shard>(), Err(RangeError::Number("a".into())));
    }

    #[test]
    fn shard_seeds_are_exactly_the_matching_residues() {
        let range: SeedRange = "5..40".parse().unwrap();
        for count in 1..6u32 {
            let mut union = Vec::new();
            for index in 0..count {
                let shard = Shard::new(index, count).unwrap();
                let seeds: Vec<u64> = range.shard_seeds(shard).collect();
                let expected: Vec<u64> = (5..40)
                    .filter(|s| s % u64::from(count) == u64::from(index))
                    .collect();
                assert_eq!(seeds, expected);
                assert_eq!(range.shard_len(shard), expected.len() as u64);
                union.extend(seeds);
            }
            union.sort_unstable();
            assert_eq!(union, (5..40).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn shard_range_near_u64_max_does_not_overflow() {
        let range = SeedRange::single(u64::MAX);
        let seeds: Vec<u64> = range.shard_seeds(Shard::new(0, 5).unwrap()).collect();
        assert_eq!(seeds, [u64::MAX]);
    }
}
