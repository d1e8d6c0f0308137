//! Authentication: forged, malformed, expired, revoked and wrong-type credentials never
//! authenticate (handshake or `reauth`), the accepted identity is the token's `sub`, and the
//! auth service never completes a flow it must refuse (refresh reuse, OAuth CSRF, replay).
//!
//! Ground truth comes from the world: it knows which tokens the auth service really minted
//! and when each revocation was issued. A revocation binds once `max_revocation_staleness`
//! has passed since it was issued (PROTOCOL.md section 1).

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::token::Revocation;
use gauntlet_core::{Instant, Jti, UserId};

use super::{Checker, EndState, Failure, Obs};
use crate::id_map::UserMap;

/// What the world knows about a credential it presented.
#[derive(Clone, Debug)]
pub(crate) enum CredTruth {
    /// A real access token minted by the auth service (times are in gateway time).
    Access {
        user: UserId,
        jti: Jti,
        iat_auth: Instant,
        exp: Instant,
    },
    /// Anything that must never authenticate, with why.
    Bad(&'static str),
    /// The attacker holds a real token of another kind (e.g. a refresh token as access).
    WrongType,
}

pub(crate) struct AuthChecker {
    leeway: Duration,
    staleness: Duration,
    /// jti -> (true time issued).
    revoked_jti: BTreeMap<Jti, Instant>,
    /// user -> list of (not_before in auth time, true time issued).
    revoked_user: UserMap<Vec<(Instant, Instant)>>,
}

const NAME: &str = "auth";

impl AuthChecker {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        Self {
            leeway: config.tokens.leeway(),
            staleness: Duration::from_millis(config.limits.max_revocation_staleness_ms),
            revoked_jti: BTreeMap::new(),
            revoked_user: UserMap::default(),
        }
    }

    /// Records a revocation issued at true time `at`.
    fn revoked(&mut self, at: Instant, r: &Revocation) {
        match r {
            Revocation::Jti { jti, .. } => {
                self.revoked_jti.entry(jti.clone()).or_insert(at);
            }
            Revocation::User { user, not_before } => {
                self.revoked_user
                    .entry(user.clone())
                    .or_default()
                    .push((*not_before, at));
            }
        }
    }

    fn check(
        &self,
        what: &str,
        at: Instant,
        truth: &CredTruth,
        accepted_as: &UserId,
    ) -> Result<(), Failure> {
        let fail = |m: String| Err(Failure::new(NAME, format!("{what} accepted {m}")));
        match truth {
            CredTruth::Bad(why) => fail(format!("a {why} credential as {accepted_as}")),
            CredTruth::WrongType => fail(format!("a non-access token as {accepted_as}")),
            CredTruth::Access {
                user,
                jti,
                iat_auth,
                exp,
            } => {
                if user != accepted_as {
                    return fail(format!("{user}'s token as {accepted_as}"));
                }
                if at >= exp.saturating_add(self.leeway) {
                    return fail(format!(
                        "{jti} of {user} {:?} after its exp + leeway",
                        at.saturating_since(exp.saturating_add(self.leeway))
                    ));
                }
                if let Some(issued) = self.revoked_jti.get(jti)
                    && at > issued.saturating_add(self.staleness)
                {
                    return fail(format!(
                        "{jti} of {user} {:?} after its revocation",
                        at.saturating_since(*issued)
                    ));
                }
                let user_cut = self.revoked_user.get(user).and_then(|v| {
                    v.iter().find(|(nb, issued)| {
                        iat_auth < nb && at > issued.saturating_add(self.staleness)
                    })
                });
                if let Some((_, issued)) = user_cut {
                    return fail(format!(
                        "{jti} of {user} {:?} after logout-everywhere",
                        at.saturating_since(*issued)
                    ));
                }
                Ok(())
            }
        }
    }
}

impl Checker for AuthChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match obs {
            Obs::Handshake {
                at,
                truth,
                accepted_as: Some(user),
                ..
            } => self.check("handshake", *at, truth, user),
            Obs::Reauthed { at, truth, .. } => match truth {
                CredTruth::Access { user, .. } => self.check("reauth", *at, truth, user),
                _ => Err(Failure::new(NAME, "reauth accepted a bad token")),
            },
            Obs::AuthServiceMisbehaved { what } => Err(Failure::new(NAME, what.clone())),
            Obs::Revocation { at, revocation } => {
                self.revoked(*at, revocation);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn finish(&mut self, _end: &EndState<'_>) -> Result<(), Failure> {
        Ok(())
    }
}
