//! Authentication: forged, malformed, expired, revoked and wrong-type credentials never
//! authenticate (handshake or `reauth`), the accepted identity is the token's `sub`, and the
//! auth service never completes a flow it must refuse (refresh reuse, OAuth CSRF, replay).
//!
//! Ground truth comes from the world: it knows which tokens the auth service really minted
//! (when, with which key, in which refresh family) and when each revocation was issued. A
//! revocation binds once `max_revocation_staleness` has passed since it was issued
//! (docs/protocol.md section 1). From the spec, beside the token rules:
//! - a token signed by a key rotation removed from the ring is never accepted once removed;
//! - once a refresh reuse revokes a family, none of its tokens still valid on the issuer's
//!   clock is accepted (`exp + leeway` is what valid means);
//! - a logout-everywhere revokes every token minted before it, and no token minted after
//!   it is refused as revoked on its account (AUTH-REVOKE-NOT-BEFORE);
//! - a real token is refused only with a code naming a rule it breaks at the moment of the
//!   handshake (AUTH-ERRORS-TYPED): `expired` once past `exp + leeway`, `unknown_key` or
//!   `key_retired` once its key left the ring, `not_yet_valid` while its `nbf` is more than
//!   the leeway ahead, `issued_in_future` while its `iat` is more than the allowance ahead, `too_old` past its lifetime cap. Any other verdict on a
//!   valid token is a false refusal, and so is a refusal the same token earned earlier but
//!   no longer deserves (a cached rejection, which AUTH-CACHE-NO-NEGATIVE forbids).

use std::collections::BTreeMap;
use std::time::Duration;

use gauntlet_core::token::{Revocation, TokenError, TokenType};
use gauntlet_core::{FamilyId, Instant, Jti, Kid, UserId};

use super::{Checker, Failure, Obs};
use crate::id_map::UserMap;

/// Every partner issuer's key id starts with this (`sim/src/world/partner_keys.rs`): keys of
/// the published JWK Set, of the asymmetric algorithms beside the auth service's HMAC keys,
/// that no rotation or retirement ever takes out of the gateway's ring.
pub(crate) const PARTNER_KID_PREFIX: &str = "partner-";

/// What the world knows about a credential it presented.
#[derive(Clone, Debug)]
pub(crate) enum CredTruth {
    /// A real access token minted by the auth service (`exp` is its claim).
    Access {
        user: UserId,
        jti: Jti,
        /// When it was minted, on the issuer's clock, to the nanosecond (its `iat` claim
        /// is whole seconds, so it cannot order a mint and a logout within one second).
        minted: Instant,
        exp: Instant,
        /// The key that signed it; `None` for a credential no key signs (a ticket).
        kid: Option<Kid>,
        /// Its refresh family, if it has one.
        family: Option<FamilyId>,
        /// The `iat` of a token an attacker holding the key minted: no logout-everywhere
        /// cut-off moves it, as the auth service moves its own tokens' past the cut-off, so
        /// the token is revoked exactly when it is below a published cut-off. `None` for the
        /// auth service's own tokens.
        foreign_iat: Option<Instant>,
        /// Its `nbf` claim, if it has one.
        nbf: Option<Instant>,
        /// Its `iat` claim (what a logout-everywhere cut-off is compared with).
        iat: Option<Instant>,
    },
    /// Anything that must never authenticate, with why.
    Bad(&'static str),
    /// The attacker holds a real token of another kind (e.g. a refresh token as access).
    WrongType,
    /// A case of the shared attack table, signed by `kid`: it must be refused, and when the
    /// token itself is judged, with exactly the code the table names. Also a token of a
    /// decoy key of the published JWK Set, which the ring must skip (`unknown_key`).
    Table {
        case: String,
        expected: String,
        kid: Kid,
    },
    /// An upgrade request that breaks a handshake rule whatever its credential (another
    /// path, oversized headers, a disabled credential place, a ticket past its lifetime): it
    /// must be refused with one of `codes`, or by a check the protocol's order runs earlier.
    Refused {
        what: &'static str,
        codes: &'static [&'static str],
    },
}

pub(crate) struct AuthChecker {
    leeway: Duration,
    staleness: Duration,
    /// How far ahead an `iat` may be (`AUTH-IAT-FUTURE`).
    iat_future: Duration,
    /// The gateway's cap on an access token's age, beyond the leeway (`AUTH-IAT-MAX-AGE`).
    max_age: Duration,
    /// jti -> (true time issued).
    revoked_jti: BTreeMap<Jti, Instant>,
    /// user -> every logout-everywhere as (auth-service time, true time issued).
    revoked_user: UserMap<Vec<(Instant, Instant)>>,
    /// Keys removed from the gateway's ring -> true time removed.
    removed_kids: BTreeMap<Kid, Instant>,
    /// Revoked refresh families -> (true time, auth-service time) of the revocation.
    revoked_families: BTreeMap<FamilyId, (Instant, Instant)>,
    /// user -> the latest logout-everywhere cut-off (`not_before`) the auth service published.
    cutoffs: UserMap<Instant>,
}

const NAME: &str = "auth";

impl AuthChecker {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        Self {
            leeway: config.tokens.leeway(),
            staleness: Duration::from_millis(config.limits.max_revocation_staleness_ms),
            iat_future: config.tokens.max_iat_future(),
            max_age: config
                .tokens
                .lifetime_for(TokenType::Access)
                .saturating_add(config.tokens.leeway()),
            revoked_jti: BTreeMap::new(),
            revoked_user: UserMap::default(),
            removed_kids: BTreeMap::new(),
            revoked_families: BTreeMap::new(),
            cutoffs: UserMap::default(),
        }
    }

    /// Records a revocation issued at true time `at`. A user cut-off is recorded from the
    /// logout itself ([`Obs::LoggedOutEverywhere`]): its `not_before` is the gateway's
    /// encoding of the rule, not the truth the rule is checked against.
    fn revoked(&mut self, at: Instant, r: &Revocation) {
        match r {
            Revocation::Jti { jti, .. } => {
                self.revoked_jti.entry(jti.clone()).or_insert(at);
            }
            Revocation::User { user, not_before } => {
                let cut = self.cutoffs.entry(user.clone()).or_insert(*not_before);
                *cut = (*cut).max(*not_before);
            }
        }
    }

    /// A handshake refused a real token as `revoked`: something must have revoked it.
    fn check_refusal(&self, truth: &CredTruth) -> Result<(), Failure> {
        let CredTruth::Access {
            user,
            jti,
            minted,
            family,
            foreign_iat,
            ..
        } = truth
        else {
            return Ok(());
        };
        let by_jti = self.revoked_jti.contains_key(jti);
        let by_family = family
            .as_ref()
            .is_some_and(|f| self.revoked_families.contains_key(f));
        // A mint at the very instant of a logout cannot be ordered against it: either
        // answer is right.
        let by_user = self
            .revoked_user
            .get(user)
            .is_some_and(|cuts| cuts.iter().any(|(logout, _)| minted <= logout))
            || foreign_iat.is_some_and(|iat| {
                self.cutoffs
                    .get(user)
                    .is_some_and(|not_before| iat < *not_before)
            });
        if by_jti || by_family || by_user {
            return Ok(());
        }
        Err(Failure::new(
            NAME,
            format!(
                "handshake refused {jti} of {user} as revoked, but nothing revoked it \
                 (minted after every logout-everywhere of {user})"
            ),
        ))
    }

    /// A handshake refused a real token with the token error `code`: the token must break
    /// the rule `code` names at `at`, the gateway's decision time.
    fn check_token_refusal(
        &self,
        at: Instant,
        truth: &CredTruth,
        code: &str,
    ) -> Result<(), Failure> {
        let CredTruth::Access {
            user,
            jti,
            exp,
            kid,
            nbf,
            ..
        } = truth
        else {
            return Ok(());
        };
        let iat = iat_of(truth);
        let deserved = match code {
            "expired" => at >= exp.saturating_add(self.leeway),
            "not_yet_valid" => nbf.is_some_and(|n| n > at.saturating_add(self.leeway)),
            "unknown_key" | "key_retired" => kid
                .as_ref()
                .and_then(|k| self.removed_kids.get(k))
                .is_some_and(|removed| *removed <= at),
            "issued_in_future" => iat > at.saturating_add(self.iat_future),
            "too_old" => at.saturating_since(iat) > self.max_age,
            // Judged by `check_refusal`.
            "revoked" => true,
            _ => false,
        };
        if deserved {
            return Ok(());
        }
        Err(Failure::new(
            NAME,
            format!(
                "handshake refused {jti} of {user}, a token valid at {at} (exp {exp}, iat {iat}, \
                 key {}), as {code}",
                kid.as_ref().map_or("none", |k| k.as_str())
            ),
        ))
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
            CredTruth::Table { case, expected, .. } => fail(format!(
                "attack-table case {case} (must be refused {expected}) as {accepted_as}"
            )),
            CredTruth::Refused { what, codes } => fail(format!(
                "a {what} request (must be refused {}) as {accepted_as}",
                codes.join(" or ")
            )),
            CredTruth::Access {
                user,
                jti,
                minted,
                exp,
                kid,
                family,
                nbf,
                ..
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
                if let Some(nbf) = nbf
                    && *nbf > at.saturating_add(self.leeway)
                {
                    return fail(format!(
                        "{jti} of {user} {:?} before its nbf - leeway",
                        nbf.saturating_since(at.saturating_add(self.leeway))
                    ));
                }
                let iat = iat_of(truth);
                if iat > at.saturating_add(self.iat_future) {
                    return fail(format!(
                        "{jti} of {user} issued {:?} ahead, past the iat allowance",
                        iat.saturating_since(at)
                    ));
                }
                // Only a handshake's `at` is the gateway's decision time; a `reauth` is seen
                // when its answer arrives, which may be after a removal it preceded.
                if what == "handshake"
                    && let Some(kid) = kid
                    && let Some(removed) = self.removed_kids.get(kid)
                    && at >= *removed
                {
                    return fail(format!(
                        "{jti} of {user} signed by {kid}, {:?} after {kid} left the key ring",
                        at.saturating_since(*removed)
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
                // Valid on the issuer's clock when the family was revoked means revoked.
                if let Some(family) = family
                    && let Some((issued, auth_at)) = self.revoked_families.get(family)
                    && at > issued.saturating_add(self.staleness)
                    && exp.saturating_add(self.leeway) > *auth_at
                {
                    return fail(format!(
                        "{jti} of {user} {:?} after its family {family} was revoked \
                         (exp + leeway still {:?} ahead on the issuer's clock then)",
                        at.saturating_since(*issued),
                        exp.saturating_add(self.leeway).saturating_since(*auth_at)
                    ));
                }
                let user_cut = self.revoked_user.get(user).and_then(|v| {
                    v.iter().find(|(logout, issued)| {
                        minted < logout && at > issued.saturating_add(self.staleness)
                    })
                });
                if let Some((logout, issued)) = user_cut {
                    return fail(format!(
                        "{jti} of {user} {:?} after a logout-everywhere at {logout} that it \
                         predates (minted at {minted}, issuer clock)",
                        at.saturating_since(*issued)
                    ));
                }
                Ok(())
            }
        }
    }
}

/// The `iat` claim of a real token: whole seconds, on the clock of whoever minted it (its
/// mint time when the token's claim was not read).
pub(crate) fn iat_of(truth: &CredTruth) -> Instant {
    match truth {
        CredTruth::Access {
            minted,
            foreign_iat,
            iat,
            ..
        } => iat
            .or(*foreign_iat)
            .unwrap_or_else(|| Instant::from_unix_secs(minted.unix_secs())),
        _ => Instant::from_unix_secs(0),
    }
}

/// Where the check that answers `code` runs in the handshake's order (docs/protocol.md
/// section 8: path, size bounds, connection id, per-IP rate, origin, credential extraction,
/// revocation-view freshness, credential validity, per-user cap, global cap).
pub(crate) fn handshake_stage(code: &str) -> u8 {
    match code {
        "not_found" => 0,
        "handshake_too_large" => 1,
        "duplicate_connection_id" => 2,
        "ip_rate_limited" => 3,
        "origin_not_allowed" => 4,
        "missing_credential"
        | "bad_authorization"
        | "bad_subprotocol"
        | "jwt_subprotocol_required"
        | "query_token_disabled" => 5,
        "auth_unavailable" => 6,
        "too_many_connections" => 8,
        "server_full" => 9,
        // A token error code, or a ticket's (`unknown_ticket`, `ticket_expired`).
        _ => 7,
    }
}

/// `WS-HTTP-STATUS`: the status docs/protocol.md gives a refusal code, and whether the
/// refusal says when to retry. `None` for a code the protocol does not name.
fn spec_status(code: &str) -> Option<(u16, bool)> {
    Some(match code {
        "handshake_too_large" | "duplicate_connection_id" | "jwt_subprotocol_required" => {
            (400, false)
        }
        "missing_credential"
        | "bad_authorization"
        | "bad_subprotocol"
        | "query_token_disabled"
        | "unknown_ticket"
        | "ticket_expired" => (401, false),
        "origin_not_allowed" => (403, false),
        "not_found" => (404, false),
        "ip_rate_limited" | "too_many_connections" | "server_full" => (429, true),
        "auth_unavailable" => (503, true),
        _ if TokenError::CODES.contains(&code) => (401, false),
        _ => return None,
    })
}

/// A refusal as `code` answered with `status` and `retry_after_ms`: the protocol's status
/// for the code, a wait of at least 1 ms exactly when the status is 429 or 503, and `Retry-After: 1`
/// (1000 ms) for a stale revocation view.
fn check_status(code: &str, status: u16, retry_after_ms: Option<u64>) -> Result<(), Failure> {
    let fault = match spec_status(code) {
        None => format!("refusal code {code} that the protocol does not name"),
        Some((want, _)) if status != want => {
            format!("status {status} for {code}; the protocol says {want}")
        }
        Some((_, true)) if retry_after_ms.is_none_or(|ms| ms < 1) => {
            format!("no retry_after_ms on a {status} refusal ({code})")
        }
        Some((_, false)) if retry_after_ms.is_some() => {
            format!("retry_after_ms on a {status} refusal ({code})")
        }
        _ if code == "auth_unavailable" && retry_after_ms != Some(1000) => {
            format!("retry_after_ms {retry_after_ms:?} for auth_unavailable; the protocol says 1 s")
        }
        _ => return Ok(()),
    };
    Err(Failure::new(
        NAME,
        format!("handshake refused with {fault}"),
    ))
}

/// A [`CredTruth::Refused`] request refused as `code`: right when `code` is one of the
/// request's own `codes`, or answers a check the order runs before theirs.
fn check_early_refusal(what: &str, codes: &[&str], code: &str) -> Result<(), Failure> {
    let own = codes.iter().map(|c| handshake_stage(c)).min().unwrap_or(0);
    if codes.contains(&code) || handshake_stage(code) < own {
        return Ok(());
    }
    Err(Failure::new(
        NAME,
        format!(
            "handshake refused a {what} request as {code}; the protocol says {}",
            codes.join(" or ")
        ),
    ))
}

/// The subprotocol an accepted upgrade selected against the credential's place: `jwt`
/// exactly when the token came in a `jwt.<token>` entry offered beside `jwt`, else none
/// (`WS-SUBPROTO-SELECT`: never a value the client did not offer, never the token).
fn check_selected(selected: Option<&str>, token_in_subprotocol: bool) -> Result<(), Failure> {
    let expected = token_in_subprotocol.then_some(gauntlet_core::protocol::JWT_SUBPROTOCOL);
    if selected == expected {
        return Ok(());
    }
    Err(Failure::new(
        NAME,
        format!(
            "handshake selected subprotocol {selected:?} where the protocol says {expected:?} \
             (token in a subprotocol: {token_in_subprotocol})"
        ),
    ))
}

/// A handshake refused an attack-table case with `code`. A refusal that judged the token (a
/// token error code) must name the rule the case breaks (`AUTH-ERRORS-TYPED`); one that never
/// got to the token (the connection cap, the Origin, a stale revocation feed) says nothing of
/// it.
fn check_table_refusal(case: &str, expected: &str, code: &str) -> Result<(), Failure> {
    if code == expected || !TokenError::CODES.contains(&code) {
        return Ok(());
    }
    Err(Failure::new(
        NAME,
        format!(
            "handshake refused attack-table case {case} as {code}; the protocol says {expected}"
        ),
    ))
}

impl Checker for AuthChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        if let Obs::Handshake {
            reject_code: Some(code),
            status: Some((status, retry_after_ms)),
            ..
        } = obs
        {
            check_status(code, *status, *retry_after_ms)?;
        }
        match obs {
            Obs::Handshake {
                at,
                truth,
                accepted_as: Some(user),
                selected,
                token_in_subprotocol,
                ..
            } => {
                check_selected(*selected, *token_in_subprotocol)?;
                self.check("handshake", *at, truth, user)
            }
            Obs::Handshake {
                truth: CredTruth::Refused { what, codes },
                reject_code: Some(code),
                ..
            } => check_early_refusal(what, codes, code),
            Obs::Handshake {
                truth,
                reject_code: Some("revoked"),
                ..
            } => self.check_refusal(truth),
            Obs::Handshake {
                truth:
                    CredTruth::Table {
                        case,
                        expected,
                        kid,
                    },
                reject_code: Some(code),
                ..
            } => {
                // A rotation storm can take the signing key out of the ring while the
                // handshake is on its way: then no key is found before the case's own rule.
                if *code == "unknown_key" && self.removed_kids.contains_key(kid) {
                    return Ok(());
                }
                check_table_refusal(case, expected, code)
            }
            Obs::Handshake {
                at,
                truth: truth @ CredTruth::Access { .. },
                reject_code: Some(code),
                ..
            } if TokenError::CODES.contains(code) => self.check_token_refusal(*at, truth, code),
            Obs::KeyRemoved { at, kid } => {
                self.removed_kids.entry((*kid).clone()).or_insert(*at);
                Ok(())
            }
            Obs::FamilyRevoked {
                at,
                auth_at,
                family,
            } => {
                self.revoked_families
                    .entry((*family).clone())
                    .or_insert((*at, *auth_at));
                Ok(())
            }
            Obs::LoggedOutEverywhere { at, auth_at, user } => {
                self.revoked_user
                    .entry((*user).clone())
                    .or_default()
                    .push((*auth_at, *at));
                Ok(())
            }
            // The session's user, not the token's: a `reauth` with another user's token must
            // never succeed (`MSG-REAUTH-SAME-USER`).
            Obs::Reauthed {
                at,
                session_user,
                truth,
                ..
            } => match truth {
                CredTruth::Access { .. } => self.check("reauth", *at, truth, session_user),
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::test_fixtures::handshake;

    fn verdict(
        truth: &CredTruth,
        accepted_as: Option<&UserId>,
        reject_code: Option<&'static str>,
        selected: Option<&'static str>,
        token_in_subprotocol: bool,
    ) -> Result<(), Failure> {
        let mut c = AuthChecker::new(&gauntlet_core::Config::default());
        c.observe(&Obs::Handshake {
            conn: gauntlet_core::ConnId::new(1),
            peer: std::net::IpAddr::from([10, 0, 0, 1]),
            at: Instant::from_unix_secs(1_800_000_000),
            truth,
            accepted_as,
            reject_code,
            status: None,
            selected,
            token_in_subprotocol,
        })
    }

    #[test]
    fn a_refused_request_must_be_refused_by_its_rule_or_an_earlier_check() {
        let query = CredTruth::Refused {
            what: "query-token",
            codes: &["query_token_disabled"],
        };
        let refused = |code| verdict(&query, None, Some(code), None, false);
        assert!(refused("query_token_disabled").is_ok());
        // The per-IP rate and the origin run before credential extraction.
        assert!(refused("ip_rate_limited").is_ok());
        assert!(refused("origin_not_allowed").is_ok());
        // Another extraction code, or a later check, means the rule did not refuse it.
        assert!(refused("missing_credential").is_err());
        assert!(refused("auth_unavailable").is_err());
        assert!(refused("bad_signature").is_err());
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        assert!(verdict(&query, Some(&user), None, None, false).is_err());
        // Nothing runs before the path.
        let path = CredTruth::Refused {
            what: "wrong-path",
            codes: &["not_found"],
        };
        assert!(verdict(&path, None, Some("handshake_too_large"), None, false).is_err());
        let late = CredTruth::Refused {
            what: "expired-ticket",
            codes: &["ticket_expired", "unknown_ticket"],
        };
        assert!(verdict(&late, None, Some("unknown_ticket"), None, false).is_ok());
        assert!(verdict(&late, None, Some("auth_unavailable"), None, false).is_ok());
        assert!(verdict(&late, None, Some("too_many_connections"), None, false).is_err());
    }

    fn access(kid: &str) -> CredTruth {
        let at = Instant::from_unix_secs(1_800_000_000);
        CredTruth::Access {
            user: UserId::parse("u1").unwrap_or_else(|| unreachable!()),
            jti: Jti::parse("p1").unwrap_or_else(|| unreachable!()),
            minted: at,
            exp: at.saturating_add(Duration::from_secs(60)),
            kid: Kid::parse(kid),
            family: None,
            foreign_iat: Some(at),
            nbf: Some(at),
            iat: Some(at),
        }
    }

    #[test]
    fn a_partner_token_refused_for_its_key_or_signature_fails_and_for_its_claims_passes() {
        let partner = access("partner-es384");
        // The ring always holds a partner's key, of the algorithm it names.
        for code in [
            "unknown_key",
            "key_retired",
            "algorithm_mismatch",
            "bad_signature",
        ] {
            let refused = verdict(&partner, None, Some(code), None, false);
            assert!(
                refused.is_err_and(|f| f.message.contains("key partner-es384), as")),
                "{code}"
            );
        }
        // What the gateway's state earns a handshake says nothing of the token.
        for code in ["too_many_connections", "auth_unavailable"] {
            assert!(
                verdict(&partner, None, Some(code), None, false).is_ok(),
                "{code}"
            );
        }
    }

    #[test]
    fn a_decoy_key_token_must_be_refused_unknown_key() {
        let decoy = CredTruth::Table {
            case: "jwks_use_enc".into(),
            expected: "unknown_key".into(),
            kid: Kid::parse("decoy-enc").unwrap_or_else(|| unreachable!()),
        };
        assert!(verdict(&decoy, None, Some("unknown_key"), None, false).is_ok());
        assert!(verdict(&decoy, None, Some("bad_signature"), None, false).is_err());
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        assert!(verdict(&decoy, Some(&user), None, None, false).is_err());
    }

    /// `c`'s verdict on a handshake that refused `truth` at `at` with `code`.
    fn refuse(
        c: &mut AuthChecker,
        truth: &CredTruth,
        at: Instant,
        code: &'static str,
    ) -> Result<(), Failure> {
        c.observe(&handshake(
            gauntlet_core::ConnId::new(1),
            at,
            truth,
            None,
            Some(code),
        ))
    }

    #[test]
    fn a_real_token_is_refused_only_by_a_rule_it_breaks_at_the_handshake() {
        let t = |secs: u64| Instant::from_unix_secs(1_800_000_000 + secs);
        let kid = Kid::parse("hs-0").unwrap_or_else(|| unreachable!());
        let truth = CredTruth::Access {
            user: UserId::parse("u1").unwrap_or_else(|| unreachable!()),
            jti: Jti::parse("j1").unwrap_or_else(|| unreachable!()),
            minted: t(100),
            exp: t(400),
            kid: Some(kid.clone()),
            family: None,
            foreign_iat: Some(t(100)),
            nbf: Some(t(100)),
            iat: Some(t(100)),
        };
        let mut c = AuthChecker::new(&gauntlet_core::Config::default());
        let mut refused = |at, code| refuse(&mut c, &truth, at, code);
        // Inside its window every token error is a false refusal.
        for code in TokenError::CODES.iter().filter(|c| **c != "revoked") {
            assert!(refused(t(200), code).is_err(), "{code} at 200 s");
        }
        // `nbf` 30 s (the leeway) ahead is still valid; 31 s ahead is not.
        assert!(refused(t(70), "not_yet_valid").is_err());
        assert!(refused(t(69), "not_yet_valid").is_ok());
        // `iat` more than 60 s ahead.
        assert!(refused(t(40), "issued_in_future").is_err());
        assert!(refused(t(39), "issued_in_future").is_ok());
        // Expired exactly at `exp + leeway`.
        assert!(refused(t(429), "expired").is_err());
        assert!(refused(t(430), "expired").is_ok());
        // Older than the prod access lifetime (15 min) plus the leeway.
        assert!(refused(t(1030), "too_old").is_err());
        assert!(refused(t(1031), "too_old").is_ok());
        // A key is missing only once the world took it out of the ring.
        c.observe(&Obs::KeyRemoved {
            at: t(300),
            kid: &kid,
        })
        .unwrap_or_else(|f| unreachable!("{f:?}"));
        let mut refused = |at, code| refuse(&mut c, &truth, at, code);
        assert!(refused(t(299), "unknown_key").is_err());
        assert!(refused(t(300), "unknown_key").is_ok());
        assert!(refused(t(300), "key_retired").is_ok());
        // Not a token verdict: the connection cap says nothing of the token.
        assert!(refused(t(200), "too_many_connections").is_ok());
    }

    #[test]
    fn a_token_is_never_accepted_before_its_nbf_or_iat_allows() {
        let t = |secs: u64| Instant::from_unix_secs(1_800_000_000 + secs);
        let user = UserId::parse("u1").unwrap_or_else(|| unreachable!());
        let early = |nbf| CredTruth::Access {
            user: user.clone(),
            jti: Jti::parse("j1").unwrap_or_else(|| unreachable!()),
            minted: t(100),
            exp: t(160),
            kid: Kid::parse("hs-0"),
            family: None,
            foreign_iat: Some(t(100)),
            nbf,
            iat: Some(t(100)),
        };
        let c = AuthChecker::new(&gauntlet_core::Config::default());
        let with_nbf = early(Some(t(100)));
        assert!(c.check("handshake", t(69), &with_nbf, &user).is_err());
        assert!(c.check("handshake", t(70), &with_nbf, &user).is_ok());
        // Without `nbf`, the `iat` allowance alone.
        let without = early(None);
        assert!(c.check("handshake", t(39), &without, &user).is_err());
        assert!(c.check("handshake", t(40), &without, &user).is_ok());
    }

    #[test]
    fn each_refusal_code_has_the_protocols_status_and_retry_after() {
        assert!(check_status("origin_not_allowed", 403, None).is_ok());
        assert!(check_status("origin_not_allowed", 401, None).is_err());
        assert!(check_status("expired", 401, None).is_ok());
        assert!(check_status("unknown_ticket", 401, None).is_ok());
        assert!(check_status("jwt_subprotocol_required", 400, None).is_ok());
        assert!(check_status("not_found", 404, None).is_ok());
        // 429 and 503 say when to retry, others do not.
        assert!(check_status("ip_rate_limited", 429, Some(200)).is_ok());
        assert!(check_status("ip_rate_limited", 429, None).is_err());
        assert!(check_status("ip_rate_limited", 429, Some(0)).is_err());
        assert!(check_status("expired", 401, Some(1000)).is_err());
        assert!(check_status("auth_unavailable", 503, Some(1000)).is_ok());
        assert!(check_status("auth_unavailable", 503, Some(200)).is_err());
        // A code the protocol does not name.
        assert!(check_status("nope", 401, None).is_err());
    }

    #[test]
    fn an_accepted_upgrade_selects_jwt_exactly_when_the_token_came_in_a_subprotocol() {
        assert!(check_selected(Some("jwt"), true).is_ok());
        assert!(check_selected(None, false).is_ok());
        assert!(check_selected(None, true).is_err());
        assert!(check_selected(Some("jwt"), false).is_err());
        assert!(check_selected(Some("jwt.ZXlK"), true).is_err());
    }
}
