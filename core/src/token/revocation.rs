//! Revocation state as learned from the auth service's feed: revoked `jti`s (each kept
//! only until that token's `exp`, so the set stays bounded) and per-user `not_before`
//! cut-offs (logout everywhere). It must never forget a revocation while the token it
//! covers could still validate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Instant, Jti, UserId};

use super::claims::Claims;

/// One revocation from the auth service's feed (also stored in the event log).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revocation {
    /// One token, by id; `exp` is that token's expiry, after which the entry is dropped.
    Jti {
        /// The revoked token id.
        jti: Jti,
        /// The token's expiry.
        exp: Instant,
    },
    /// Every token of `user` issued before `not_before`.
    User {
        /// The user.
        user: UserId,
        /// Tokens with `iat < not_before` are revoked.
        not_before: Instant,
    },
}

/// The revocations currently in force.
#[derive(Clone, Debug, Default)]
pub(crate) struct RevocationList {
    jtis: BTreeMap<Jti, Instant>,
    users: BTreeMap<UserId, Instant>,
    /// Bumped on every applied revocation, so cached results know when to re-check.
    generation: u64,
}

impl RevocationList {
    pub(crate) fn apply(&mut self, revocation: &Revocation) {
        match revocation {
            Revocation::Jti { jti, exp } => {
                let e = self.jtis.entry(jti.clone()).or_insert(*exp);
                *e = (*e).max(*exp);
            }
            Revocation::User { user, not_before } => {
                let nb = self.users.entry(user.clone()).or_insert(*not_before);
                *nb = (*nb).max(*not_before);
            }
        }
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn is_revoked(&self, claims: &Claims) -> bool {
        self.jtis.contains_key(claims.jti())
            || self
                .users
                .get(claims.sub())
                .is_some_and(|nb| claims.iat() < *nb)
    }

    /// Drops jti entries whose token can no longer validate (`exp + leeway` has passed) and
    /// user cut-offs older than every token that could still validate (`max_age` covers the
    /// longest lifetime plus leeway and the allowed `iat` skew).
    pub(crate) fn prune(
        &mut self,
        now: Instant,
        leeway: std::time::Duration,
        max_age: std::time::Duration,
    ) {
        self.jtis.retain(|_, exp| exp.saturating_add(leeway) > now);
        self.users.retain(|_, nb| nb.saturating_add(max_age) > now);
    }

    pub(crate) fn len(&self) -> usize {
        self.jtis.len() + self.users.len()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}
