//! `Validator`: the gateway's stateful token checker. It owns the key ring, the rules, the
//! validation cache and the revocation list, and is the only place a cache hit is turned
//! back into a result: every hit re-checks the token type, the time rules and revocation.
//! It must never return a cached result that `validate` plus the revocation list would
//! reject (except under the `CacheIgnoresExp` planted bug).

use crate::plant::{Plants, planted};
use crate::{Instant, Jti, UserId};

use super::cache::{CacheStats, ValidationCache};
use super::claims::{Claims, TokenType};
use super::error::TokenError;
use super::keys::KeyRing;
use super::revocation::{Revocation, RevocationList};
use super::rules::TokenRules;
use super::validate::{check_start, check_times, validate_with};

/// Default number of cached validation results.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// Validates tokens against a key ring, the rules and the revocations received so far,
/// caching positive results. A clone is an independent validator in the same state.
#[derive(Clone, Debug)]
pub struct Validator {
    ring: KeyRing,
    rules: TokenRules,
    cache: ValidationCache,
    revocations: RevocationList,
    plants: Plants,
    /// Which ring the cache's entries were validated against: bumped on every
    /// [`Validator::ring_mut`], the only way to change or replace the ring. The ring's own
    /// change counter cannot serve: a replaced ring may have made as many changes.
    ring_epoch: u64,
    /// The `RejectionCached` planted bug's memory of refused tokens (at most
    /// [`PLANTED_REJECTIONS`]).
    #[cfg(feature = "planted-bugs")]
    rejected: std::collections::BTreeMap<Vec<u8>, TokenError>,
}

/// How many rejections the `RejectionCached` planted bug remembers.
#[cfg(feature = "planted-bugs")]
const PLANTED_REJECTIONS: usize = 1024;

impl Validator {
    /// A validator with a cache of [`DEFAULT_CACHE_CAPACITY`] entries and no plants.
    pub fn new(ring: KeyRing, rules: TokenRules) -> Self {
        Self {
            ring,
            rules,
            cache: ValidationCache::new(DEFAULT_CACHE_CAPACITY),
            revocations: RevocationList::default(),
            plants: Plants::NONE,
            ring_epoch: 0,
            #[cfg(feature = "planted-bugs")]
            rejected: std::collections::BTreeMap::new(),
        }
    }

    /// Replaces the cache with an empty one holding at most `n` entries (0 disables it).
    #[must_use]
    pub fn with_cache_capacity(mut self, n: usize) -> Self {
        self.cache = ValidationCache::new(n);
        self
    }

    /// Switches on planted bugs (a no-op set without the `planted-bugs` feature).
    #[must_use]
    pub fn with_plants(mut self, plants: Plants) -> Self {
        self.plants = plants;
        self
    }

    /// Validates `token` at `now` as type `expected`, then checks revocation.
    ///
    /// Gives the same result as [`validate`](super::validate) followed by
    /// [`is_revoked`](Self::is_revoked), cached or not. Callers pass non-decreasing `now`.
    pub fn validate(
        &mut self,
        token: &[u8],
        now: Instant,
        expected: TokenType,
    ) -> Result<Claims, TokenError> {
        // The planted bug keys the cache on the ring's own counter, which a replaced ring
        // can repeat.
        let ring_id = if planted!(self.plants, RingReplaceKeepsCache) {
            self.ring.generation()
        } else {
            self.ring_epoch
        };
        self.cache.sync_ring(ring_id);
        if let Some(entry) = self.cache.get(token) {
            let claims = &entry.claims;
            if claims.token_type() != expected {
                return Err(TokenError::WrongTokenType);
            }
            let timing = if planted!(self.plants, CacheIgnoresExp) {
                check_start(claims, now, &self.rules)
            } else {
                check_times(claims, now, &self.rules)
            };
            let revoked = entry.revocation_generation != self.revocations.generation()
                && self.revocations.is_revoked(claims);
            let result = match (timing, revoked) {
                (Err(e), _) => Err(e),
                (Ok(()), true) => Err(TokenError::Revoked),
                (Ok(()), false) => {
                    entry.revocation_generation = self.revocations.generation();
                    return Ok(claims.clone());
                }
            };
            if matches!(
                result,
                Err(TokenError::Expired | TokenError::TooOld | TokenError::Revoked)
            ) {
                self.cache.remove(token);
            }
            return result;
        }
        let claims = self.validate_miss(token, now, expected)?;
        if self.revocations.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        let deadline = claims.exp().saturating_add(self.rules.leeway());
        self.cache.insert(
            token,
            claims.clone(),
            deadline,
            self.revocations.generation(),
        );
        Ok(claims)
    }

    /// A cache miss: the full validation. Under the `RejectionCached` planted bug a token
    /// refused before is refused again, unvalidated.
    fn validate_miss(
        &mut self,
        token: &[u8],
        now: Instant,
        expected: TokenType,
    ) -> Result<Claims, TokenError> {
        #[cfg(feature = "planted-bugs")]
        if planted!(self.plants, RejectionCached) {
            if let Some(e) = self.rejected.get(token) {
                return Err(e.clone());
            }
            let result = validate_with(token, now, &self.ring, &self.rules, expected, self.plants);
            if let Err(e) = &result {
                if self.rejected.len() >= PLANTED_REJECTIONS {
                    self.rejected.clear();
                }
                self.rejected.insert(token.to_vec(), e.clone());
            }
            return result;
        }
        validate_with(token, now, &self.ring, &self.rules, expected, self.plants)
    }

    /// Validates `token` at `now` as type `expected` against the current ring, rules and
    /// revocations, without the cache: for rare callers (the admin endpoint's service
    /// tokens) that must not fill the cache with tokens the gateway never sees otherwise.
    pub fn validate_uncached(
        &self,
        token: &[u8],
        now: Instant,
        expected: TokenType,
    ) -> Result<Claims, TokenError> {
        let claims = validate_with(token, now, &self.ring, &self.rules, expected, self.plants)?;
        // The planted bug checks the caller's signature and claims but not its revocation.
        if !planted!(self.plants, ServiceTokenRevocationIgnored)
            && self.revocations.is_revoked(&claims)
        {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// Applies one revocation from the auth service's feed; it holds for every later
    /// validation, cached tokens included.
    pub fn apply(&mut self, revocation: &Revocation) {
        self.revocations.apply(revocation);
    }

    /// Whether `claims` are revoked now (for re-checking open connections).
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        self.revocations.is_revoked(claims)
    }

    /// Whether a token with these fields is revoked now: for sessions and tickets that keep
    /// the identity of a token validated earlier rather than the `Claims` themselves.
    pub fn is_revoked_identity(&self, jti: &Jti, user: &UserId, iat: Instant) -> bool {
        self.revocations.is_revoked_parts(jti, user, iat)
    }

    /// Drops revocations that can no longer matter and cache entries past their expiry.
    pub fn prune(&mut self, now: Instant) {
        let longest = [TokenType::Access, TokenType::Refresh, TokenType::Service]
            .into_iter()
            .map(|t| self.rules.lifetime_for(t))
            .max()
            .unwrap_or_default();
        let max_age = longest
            .saturating_add(self.rules.leeway())
            .saturating_add(self.rules.max_iat_future());
        self.revocations.prune(now, self.rules.leeway(), max_age);
        // The planted bug ignores `exp` everywhere in the cache: hits and expiry alike.
        if !planted!(self.plants, CacheIgnoresExp) {
            self.cache.prune(now);
        }
    }

    /// The key ring.
    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The key ring, for rotation or replacement (`*ring_mut() = new`). Any change
    /// invalidates every cached result, so a retired or removed key's tokens stop
    /// validating at once: the caller may do anything with the ring, so every call counts
    /// as a change.
    pub fn ring_mut(&mut self) -> &mut KeyRing {
        self.ring_epoch = self.ring_epoch.wrapping_add(1);
        &mut self.ring
    }

    /// The rules.
    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }

    /// Cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Takes over `other`'s revocations (a gateway restored from a checkpoint folded them
    /// from the log; the cache is not copied, it is a pure optimisation).
    pub(crate) fn copy_revocations_from(&mut self, other: &Validator) {
        self.revocations = other.revocations.clone();
    }

    /// Number of revocation entries held (jtis plus user cut-offs).
    pub fn revocation_count(&self) -> usize {
        self.revocations.len()
    }
}

#[cfg(test)]
mod tests;
