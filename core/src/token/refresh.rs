//! Refresh-token rotation: the families of refresh tokens and the single-use rule
//! (docs/protocol.md section 1, RFC 6819 5.2.2.3, OAuth 2.1 refresh-token rotation).
//!
//! This module owns the per-family bookkeeping: which refresh token is current, every token
//! ever minted in the family (until it expires, so theft can revoke them all), and whether
//! the family is revoked. It decides "rotate" or "reuse"; it must never mint or validate a
//! token itself (the auth service does both) and never grow without bound: families and
//! tokens per family are capped, and expired entries are dropped first.
//!
//! Families are held by the number in their id (`fam-<n>`, the only spelling
//! [`RefreshFamilies::next_family`] hands out), not by the id string: the store holds up to
//! 100 000 families that live as long as refresh tokens, and the string's allocation and its
//! copies in the map and the expiry index cost several times the number.

use std::time::Duration;

use crate::expiring_map::{Expiring, ExpiringMap};
use crate::plant::{Plants, planted};
use crate::{FamilyId, Instant, Jti, UserId};

/// Most families held at once (the default).
pub const DEFAULT_MAX_FAMILIES: usize = 100_000;
/// Most live tokens remembered per family; past it the family must log in again.
pub const MAX_TOKENS_PER_FAMILY: usize = 1024;
/// What every family id starts with; the rest is the family's number.
const FAMILY_PREFIX: &str = "fam-";

/// Why a presented refresh token does not rotate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The family is not (or no longer) known: log in again.
    #[error("unknown refresh family")]
    UnknownFamily,
    /// The token's `sub` is not the family's user.
    #[error("refresh token subject does not match its family")]
    SubjectMismatch,
    /// The family was revoked (an earlier reuse, or an OAuth code replay): log in again.
    #[error("refresh family revoked")]
    FamilyRevoked,
    /// The token was already used: theft. The family has just been revoked; the caller must
    /// publish revocations for `revoke`.
    #[error("refresh token reused")]
    Reused {
        /// Every live token of the family, with its expiry.
        revoke: Vec<(Jti, Instant)>,
    },
    /// The family holds [`MAX_TOKENS_PER_FAMILY`] live tokens: log in again.
    #[error("refresh family exhausted")]
    FamilyExhausted,
    /// The store holds its maximum of live families: retry later.
    #[error("refresh family store full")]
    StoreFull,
}

#[derive(Clone, Debug)]
struct Family {
    user: UserId,
    current: Jti,
    issued: Vec<(Jti, Instant)>,
    revoked: bool,
    /// The latest `exp` of any token in the family: past it the entry is dead.
    expires: Instant,
}

impl Expiring for Family {
    fn deadline(&self) -> Instant {
        self.expires
    }
}

/// The refresh families of one auth service.
#[derive(Clone, Debug)]
pub struct RefreshFamilies {
    /// Indexed by when each family dies: pruning takes the dead from the front instead of
    /// scanning every family, so a sign-in at the cap costs a few tree steps, not one step per
    /// family (a full store of 100 000 families made every sign-in a scan of all of them, and
    /// a 10 000-user run crawl).
    ///
    /// Boxed: numbers are handed out in order, so each node of the map splits at its right
    /// edge and stays about half full, and a half-empty slot for a whole family (88 bytes)
    /// cost more than a pointer beside an exactly sized allocation.
    families: ExpiringMap<u64, Box<Family>>,
    max_families: usize,
    counter: u64,
    /// The validators' leeway: a token still validates until `exp + leeway`, so it stays
    /// in its family (and is revoked with it) until then.
    leeway: Duration,
    plants: Plants,
}

impl RefreshFamilies {
    /// An empty store holding at most `max_families` live families, for validators that
    /// accept tokens until `exp + leeway`.
    pub fn new(max_families: usize, leeway: Duration, plants: Plants) -> Self {
        Self {
            families: ExpiringMap::default(),
            max_families,
            counter: 0,
            leeway,
            plants,
        }
    }

    /// Whether a token expiring at `exp` can still validate at `now`: until `exp + leeway`
    /// (docs/protocol.md section 1). The `FamilyRevokeSkipsLeeway` planted bug forgets the leeway,
    /// so a revoked family leaves its just-expired tokens valid.
    fn live(now: Instant, exp: Instant, leeway: Duration, plants: Plants) -> bool {
        if planted!(plants, FamilyRevokeSkipsLeeway) {
            now < exp
        } else {
            now < exp.saturating_add(leeway)
        }
    }

    /// The number `id` was minted from, if it is spelled exactly as
    /// [`RefreshFamilies::next_family`] spells one (`fam-` and the number in decimal: no sign,
    /// no leading zero), so an id is found by its number exactly when it is found by its
    /// string. Any other id, e.g. one a forged token carries, names no family.
    fn number(id: &FamilyId) -> Option<u64> {
        let digits = id.as_str().strip_prefix(FAMILY_PREFIX)?;
        let canonical = digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if canonical { digits.parse().ok() } else { None }
    }

    /// Reserves an id for a new family, making room by dropping dead families if needed.
    pub fn next_family(&mut self, now: Instant) -> Result<FamilyId, RefreshError> {
        if self.families.len() >= self.max_families {
            self.prune(now);
            if self.families.len() >= self.max_families {
                return Err(RefreshError::StoreFull);
            }
        }
        self.counter = self.counter.wrapping_add(1);
        let Some(id) = FamilyId::parse(&format!("{FAMILY_PREFIX}{}", self.counter)) else {
            unreachable!("fam- and a u64 is always a valid family id")
        };
        Ok(id)
    }

    /// Records a new family for `user` whose current refresh token is `refresh` and whose
    /// first tokens are `issued`. `family` must come from [`RefreshFamilies::next_family`]; an
    /// id spelled otherwise is not recorded (no look-up could find it).
    pub fn start(
        &mut self,
        family: FamilyId,
        user: UserId,
        refresh: Jti,
        issued: &[(Jti, Instant)],
    ) {
        let Some(family) = Self::number(&family) else {
            return;
        };
        let expires = issued.iter().map(|(_, e)| *e).max().unwrap_or_default();
        self.families.insert(
            family,
            Box::new(Family {
                user,
                current: refresh,
                issued: issued.to_vec(),
                revoked: false,
                expires,
            }),
        );
    }

    /// Checks a validated refresh token `jti` of `family` for `user` before rotation.
    /// The current token may rotate; any other token of the family is a reuse, which revokes
    /// the family (with the `RefreshReusable` plant on, it may rotate too and revokes nothing).
    pub fn check(
        &mut self,
        now: Instant,
        family: &FamilyId,
        user: &UserId,
        jti: &Jti,
    ) -> Result<(), RefreshError> {
        let (leeway, plants) = (self.leeway, self.plants);
        let Some(family) = Self::number(family) else {
            return Err(RefreshError::UnknownFamily);
        };
        self.families
            .update(&family, |f| {
                if &f.user != user {
                    return Err(RefreshError::SubjectMismatch);
                }
                if f.revoked {
                    return Err(RefreshError::FamilyRevoked);
                }
                if &f.current != jti && !planted!(plants, RefreshReusable) {
                    f.revoked = true;
                    f.issued
                        .retain(|(_, exp)| Self::live(now, *exp, leeway, plants));
                    return Err(RefreshError::Reused {
                        revoke: f.issued.clone(),
                    });
                }
                f.issued
                    .retain(|(_, exp)| Self::live(now, *exp, leeway, plants));
                if f.issued.len() + 2 > MAX_TOKENS_PER_FAMILY {
                    return Err(RefreshError::FamilyExhausted);
                }
                Ok(())
            })
            .unwrap_or(Err(RefreshError::UnknownFamily))
    }

    /// Completes a rotation that [`RefreshFamilies::check`] allowed: `refresh` becomes current
    /// and `issued` joins the family.
    pub fn rotated(&mut self, family: &FamilyId, refresh: Jti, issued: &[(Jti, Instant)]) {
        let Some(family) = Self::number(family) else {
            return;
        };
        self.families.update(&family, |f| {
            f.current = refresh;
            // Exactly: the list lives as long as a refresh token and grows two tokens a
            // rotation, so doubling would leave up to half of it empty for that long.
            f.issued.reserve_exact(issued.len());
            for (jti, exp) in issued {
                f.issued.push((jti.clone(), *exp));
                f.expires = f.expires.max(*exp);
            }
        });
    }

    /// Revokes `family` (OAuth code replay) and returns its live tokens to revoke; empty if it
    /// is unknown or already revoked.
    pub fn revoke(&mut self, now: Instant, family: &FamilyId) -> Vec<(Jti, Instant)> {
        let (leeway, plants) = (self.leeway, self.plants);
        let Some(family) = Self::number(family) else {
            return Vec::new();
        };
        self.families
            .update(&family, |f| {
                if f.revoked {
                    return Vec::new();
                }
                f.revoked = true;
                f.issued
                    .retain(|(_, exp)| Self::live(now, *exp, leeway, plants));
                f.issued.clone()
            })
            .unwrap_or_default()
    }

    /// Drops families whose every token has expired, leeway included: until then a reuse
    /// must still find the family to revoke what is left of it.
    pub fn prune(&mut self, now: Instant) {
        let (leeway, plants) = (self.leeway, self.plants);
        self.families
            .remove_dead(|expires| !Self::live(now, expires, leeway, plants));
    }

    /// Number of families held (bounded-memory checks).
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no family is held.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_000 + secs)
    }

    fn jti(s: &str) -> Jti {
        Jti::parse(s).unwrap()
    }

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    fn started(plants: Plants) -> (RefreshFamilies, FamilyId) {
        let mut f = RefreshFamilies::new(4, Duration::ZERO, plants);
        let fam = f.next_family(t(0)).unwrap();
        f.start(
            fam.clone(),
            alice(),
            jti("r1"),
            &[(jti("a1"), t(900)), (jti("r1"), t(9000))],
        );
        (f, fam)
    }

    #[test]
    fn check_current_token_rotates_then_old_one_is_reuse() {
        let (mut f, fam) = started(Plants::NONE);
        assert_eq!(f.check(t(1), &fam, &alice(), &jti("r1")), Ok(()));
        f.rotated(
            &fam,
            jti("r2"),
            &[(jti("a2"), t(901)), (jti("r2"), t(9001))],
        );
        assert_eq!(f.check(t(2), &fam, &alice(), &jti("r2")), Ok(()));
        // r1 is used: presenting it again revokes every live token of the family.
        let r = f.check(t(950), &fam, &alice(), &jti("r1"));
        assert_eq!(
            r,
            Err(RefreshError::Reused {
                revoke: vec![(jti("r1"), t(9000)), (jti("r2"), t(9001))],
            })
        );
        assert_eq!(
            f.check(t(951), &fam, &alice(), &jti("r2")),
            Err(RefreshError::FamilyRevoked)
        );
    }

    #[test]
    fn check_other_users_token_subject_mismatch() {
        let (mut f, fam) = started(Plants::NONE);
        let bob = UserId::parse("bob").unwrap();
        assert_eq!(
            f.check(t(1), &fam, &bob, &jti("r1")),
            Err(RefreshError::SubjectMismatch)
        );
        assert_eq!(f.check(t(1), &fam, &alice(), &jti("r1")), Ok(()));
    }

    #[test]
    fn rotated_for_a_family_that_is_gone_records_nothing() {
        // The family expires (and is pruned) between `check` and `rotated`.
        let (mut f, fam) = started(Plants::NONE);
        assert_eq!(f.check(t(1), &fam, &alice(), &jti("r1")), Ok(()));
        f.prune(t(9001));
        assert!(f.is_empty());
        f.rotated(&fam, jti("r2"), &[(jti("r2"), t(20_000))]);
        assert_eq!(f.len(), 0, "rotating a gone family must not resurrect it");
        assert_eq!(
            f.check(t(9002), &fam, &alice(), &jti("r2")),
            Err(RefreshError::UnknownFamily)
        );
    }

    #[test]
    fn check_unknown_family_rejected() {
        let (mut f, _) = started(Plants::NONE);
        let other = FamilyId::parse("fam-99").unwrap();
        assert_eq!(
            f.check(t(1), &other, &alice(), &jti("r1")),
            Err(RefreshError::UnknownFamily)
        );
    }

    /// A family is found by its number, so another spelling of the same number (which a
    /// forged token could carry) must name no family, as it named none when the id string was
    /// the key; and such an id is never recorded.
    #[test]
    fn check_other_spellings_of_a_held_familys_number_unknown() {
        let (mut f, fam) = started(Plants::NONE);
        assert_eq!(fam.as_str(), "fam-1");
        for other in [
            "fam-01", "fam-+1", "fam- 1", "fam-1 ", "FAM-1", "fam-", "1", "fam-1.0",
        ] {
            let other = FamilyId::parse(other).unwrap();
            assert_eq!(
                f.check(t(1), &other, &alice(), &jti("r1")),
                Err(RefreshError::UnknownFamily),
                "{other}"
            );
            assert_eq!(f.revoke(t(1), &other), Vec::new(), "{other}");
            f.start(other, alice(), jti("r9"), &[(jti("r9"), t(9000))]);
        }
        // Past u64::MAX: no number, not the family whose number it wraps to.
        let huge = FamilyId::parse("fam-18446744073709551617").unwrap();
        assert_eq!(
            f.check(t(1), &huge, &alice(), &jti("r1")),
            Err(RefreshError::UnknownFamily)
        );
        assert_eq!(f.len(), 1, "no other spelling was recorded");
        assert_eq!(f.check(t(1), &fam, &alice(), &jti("r1")), Ok(()));
    }

    /// Pruning keeps exactly the families a scan of every family would keep, with rotations
    /// moving a family's death later and a restart of an id moving it earlier.
    #[test]
    fn prune_drops_exactly_the_dead_families_whatever_their_order() {
        let leeway = Duration::from_secs(10);
        let mut f = RefreshFamilies::new(64, leeway, Plants::NONE);
        let mut ids = Vec::new();
        for i in 0..12u64 {
            let fam = f.next_family(t(0)).unwrap();
            // Deaths out of id order: 500, 100, 900, 300, ...
            let exp = t(100 + (i * 7 % 12) * 100);
            f.start(fam.clone(), alice(), jti("r"), &[(jti("r"), exp)]);
            ids.push((fam, exp));
        }
        // Family 1 (dies at 100) rotates to a token living until 5000.
        f.rotated(&ids[1].0, jti("r2"), &[(jti("r2"), t(5000))]);
        ids[1].1 = t(5000);
        // Family 2 (dies at 900) is started again with a shorter life.
        f.start(ids[2].0.clone(), alice(), jti("r3"), &[(jti("r3"), t(150))]);
        ids[2].1 = t(150);
        for now in [
            t(0),
            t(109),
            t(110),
            t(160),
            t(615),
            t(1300),
            t(5009),
            t(5010),
        ] {
            f.prune(now);
            let mut expected: Vec<String> = ids
                .iter()
                .filter(|(_, exp)| now < exp.saturating_add(leeway))
                .map(|(id, _)| id.to_string())
                .collect();
            expected.sort();
            let mut kept: Vec<String> = f.families.keys().map(|n| format!("fam-{n}")).collect();
            kept.sort();
            assert_eq!(kept, expected, "at {now:?}");
            assert!(f.families.index_matches(), "one index entry per family");
        }
        assert!(f.is_empty());
    }

    #[test]
    fn next_family_full_of_live_families_store_full_until_they_expire() {
        let mut f = RefreshFamilies::new(2, Duration::ZERO, Plants::NONE);
        for _ in 0..2 {
            let fam = f.next_family(t(0)).unwrap();
            f.start(fam, alice(), jti("r"), &[(jti("r"), t(100))]);
        }
        assert_eq!(f.next_family(t(99)), Err(RefreshError::StoreFull));
        assert_eq!(
            f.next_family(t(100)).map(|id| id.to_string()).ok(),
            Some("fam-3".into())
        );
        assert!(f.is_empty());
    }

    #[test]
    fn check_family_at_token_cap_exhausted() {
        let (mut f, fam) = started(Plants::NONE);
        let many: Vec<(Jti, Instant)> = (0..MAX_TOKENS_PER_FAMILY - 3)
            .map(|i| (jti(&format!("x{i}")), t(5000)))
            .collect();
        f.rotated(&fam, jti("r1"), &many);
        assert_eq!(
            f.check(t(1), &fam, &alice(), &jti("r1")),
            Err(RefreshError::FamilyExhausted)
        );
        // Once the filler tokens expire there is room again.
        assert_eq!(f.check(t(5000), &fam, &alice(), &jti("r1")), Ok(()));
    }

    /// A rotation adds two tokens: a family two short of the cap still rotates, filling it
    /// exactly.
    #[test]
    fn check_family_two_short_of_the_cap_rotates_to_exactly_the_cap() {
        let (mut f, fam) = started(Plants::NONE);
        // `started` issued two tokens; these bring the family to the cap minus two.
        let many: Vec<(Jti, Instant)> = (0..MAX_TOKENS_PER_FAMILY - 4)
            .map(|i| (jti(&format!("x{i}")), t(5000)))
            .collect();
        f.rotated(&fam, jti("r1"), &many);
        assert_eq!(f.check(t(1), &fam, &alice(), &jti("r1")), Ok(()));
        f.rotated(
            &fam,
            jti("r2"),
            &[(jti("a2"), t(900)), (jti("r2"), t(9000))],
        );
        assert_eq!(
            f.check(t(2), &fam, &alice(), &jti("r2")),
            Err(RefreshError::FamilyExhausted)
        );
    }

    /// Regression: an access token that expired 10 s before the reuse still
    /// validates for another 20 s of leeway, so the reuse must revoke it too.
    #[test]
    fn check_reuse_inside_leeway_revokes_just_expired_tokens() {
        let mut f = RefreshFamilies::new(4, Duration::from_secs(30), Plants::NONE);
        let fam = f.next_family(t(0)).unwrap();
        f.start(
            fam.clone(),
            alice(),
            jti("r1"),
            &[(jti("a1"), t(900)), (jti("r1"), t(9000))],
        );
        f.check(t(1), &fam, &alice(), &jti("r1")).unwrap();
        f.rotated(&fam, jti("r2"), &[(jti("r2"), t(9001))]);
        let r = f.check(t(910), &fam, &alice(), &jti("r1"));
        assert_eq!(
            r,
            Err(RefreshError::Reused {
                revoke: vec![
                    (jti("a1"), t(900)),
                    (jti("r1"), t(9000)),
                    (jti("r2"), t(9001))
                ],
            })
        );
    }

    #[test]
    fn revoke_returns_live_tokens_once() {
        let (mut f, fam) = started(Plants::NONE);
        assert_eq!(f.revoke(t(900), &fam), vec![(jti("r1"), t(9000))]);
        assert_eq!(f.revoke(t(901), &fam), Vec::new());
        assert_eq!(
            f.check(t(902), &fam, &alice(), &jti("r1")),
            Err(RefreshError::FamilyRevoked)
        );
    }
}

#[cfg(all(test, feature = "planted-bugs"))]
mod planted_tests {
    use super::*;
    use crate::plant::Plant;

    #[test]
    fn planted_refresh_reusable_old_token_rotates_and_family_survives() {
        let t = Instant::from_unix_secs;
        let alice = UserId::parse("alice").unwrap();
        let (r1, r2) = (Jti::parse("r1").unwrap(), Jti::parse("r2").unwrap());
        let run = |plants: Plants| {
            let mut f = RefreshFamilies::new(4, Duration::ZERO, plants);
            let fam = f.next_family(t(0)).unwrap();
            f.start(
                fam.clone(),
                alice.clone(),
                r1.clone(),
                &[(r1.clone(), t(100))],
            );
            f.check(t(1), &fam, &alice, &r1).unwrap();
            f.rotated(&fam, r2.clone(), &[(r2.clone(), t(101))]);
            let reuse = f.check(t(2), &fam, &alice, &r1);
            let current = f.check(t(3), &fam, &alice, &r2);
            (reuse, current)
        };
        let (reuse, current) = run(Plants::NONE);
        assert!(matches!(reuse, Err(RefreshError::Reused { .. })));
        assert_eq!(current, Err(RefreshError::FamilyRevoked));
        let (reuse, current) = run(Plants::only(Plant::RefreshReusable));
        assert_eq!(reuse, Ok(()));
        assert_eq!(current, Ok(()));
    }

    #[test]
    fn planted_family_revoke_skips_leeway_misses_just_expired_token() {
        let t = Instant::from_unix_secs;
        let alice = UserId::parse("alice").unwrap();
        let (a1, r1, r2) = (
            Jti::parse("a1").unwrap(),
            Jti::parse("r1").unwrap(),
            Jti::parse("r2").unwrap(),
        );
        let revoked = |plants: Plants| {
            let mut f = RefreshFamilies::new(4, Duration::from_secs(30), plants);
            let fam = f.next_family(t(0)).unwrap();
            f.start(
                fam.clone(),
                alice.clone(),
                r1.clone(),
                &[(a1.clone(), t(100)), (r1.clone(), t(1000))],
            );
            f.check(t(1), &fam, &alice, &r1).unwrap();
            f.rotated(&fam, r2.clone(), &[(r2.clone(), t(1001))]);
            match f.check(t(110), &fam, &alice, &r1) {
                Err(RefreshError::Reused { revoke }) => revoke.iter().any(|(j, _)| *j == a1),
                other => panic!("{other:?}"),
            }
        };
        assert!(revoked(Plants::NONE));
        assert!(!revoked(Plants::only(Plant::FamilyRevokeSkipsLeeway)));
    }
}
