//! The shared token attack table (`gauntlet_core::token::attacks`, the cases `gauntlet probe`
//! sends a live server and `corpora/tokens/` holds) as a simulated adversary: an attacker who
//! holds the current signing key presents one case of the table as a handshake credential.
//!
//! The table is generated against the gateway's own clock and re-generated when the signing
//! key rotates or the table grows older than [`MAX_AGE`]; only the cases that must be refused
//! and whose verdict does not hang on a one-second boundary are kept ([`AttackCase::live`]),
//! so the verdict the table names is the protocol's answer whenever the token arrives.
//!
//! This module only builds credentials. It never judges a verdict (the auth checker does, from
//! the case's expected code) and draws no randomness of its own: the caller's seeded draw picks
//! the case.

use std::time::Duration;

use gauntlet_core::token::attacks::{AttackCase, AttackKeys, attack_cases};
use gauntlet_core::{Instant, Kid};

/// How long a generated table is used before it is re-generated at the gateway's new time.
/// Every kept case stays refused with its named code far longer: the table's tokens expire 10
/// minutes after generation, and every time rule it breaks (`exp` passed, `iat` too old) only
/// gets more broken as time goes on.
const MAX_AGE: Duration = Duration::from_secs(20);

/// The table the world's attackers present, in turn.
pub(super) struct AttackTable {
    /// The signing key it was generated with, the retired key it knew of, when, and its
    /// cases that must be refused.
    current: Option<(Kid, Option<Kid>, Instant, Vec<AttackCase>)>,
    /// The number of the next case to present. The attackers go through the table in order
    /// (from a point the seed picks) rather than drawing at random, so a run with as many
    /// table attacks as the table has cases presents every one of them.
    next: u64,
}

impl AttackTable {
    /// A table whose first case presented is number `start` (modulo its size).
    pub(super) fn new(start: u64) -> Self {
        AttackTable {
            current: None,
            next: start,
        }
    }

    /// The next case of a table fresh for `now`, naming `sub`, for a ring whose signing key is
    /// `kid` and whose retired key (still in the ring) is `retired`. `keys` builds what the
    /// attacker signs with; it is called only when the table is generated again (signing
    /// keys are parsed once per table, not once per attack). `None` when the table cannot be
    /// built (a key the generator cannot sign with: never for the simulator's HMAC keys).
    pub(super) fn next(
        &mut self,
        kid: &Kid,
        retired: Option<&Kid>,
        keys: impl FnOnce() -> Option<AttackKeys>,
        now: Instant,
        sub: &str,
    ) -> Option<&AttackCase> {
        // A new signing key, a newly retired one or age: the table no longer fits the ring.
        let stale = match &self.current {
            Some((k, r, at, _)) => {
                k != kid || r.as_ref() != retired || now.saturating_since(*at) > MAX_AGE
            }
            None => true,
        };
        if stale {
            let cases = attack_cases(&keys()?, now.unix_secs(), sub).ok()?;
            let refused = cases
                .into_iter()
                .filter(|c| c.live() && c.expected != "accepted")
                .collect();
            self.current = Some((kid.clone(), retired.cloned(), now, refused));
        }
        let cases = &self.current.as_ref()?.3;
        let n = u64::try_from(cases.len()).ok().filter(|n| *n > 0)?;
        let i = self.next % n;
        self.next = self.next.wrapping_add(1);
        cases.get(usize::try_from(i).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use gauntlet_core::token::Algorithm;
    use gauntlet_core::token::attacks::AttackSigner;
    use jsonwebtoken::EncodingKey;

    use super::*;

    fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap_or_else(|| unreachable!("a valid kid"))
    }

    fn keys() -> AttackKeys {
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        AttackKeys {
            primary: AttackSigner {
                kid: Some("hs-0".into()),
                alg: Algorithm::HS256,
                key: key.unwrap_or_else(|e| unreachable!("an HMAC key: {e}")),
            },
            others: Vec::new(),
            rsa_public_pem: None,
            ec_public_der: None,
            retired: None,
            several_keys: true,
        }
    }

    #[test]
    fn attack_table_presents_every_refused_live_case_in_turn() {
        let mut t = AttackTable::new(5);
        let now = Instant::from_unix_secs(1_800_000_000);
        let first = t
            .next(&kid("hs-0"), None, || Some(keys()), now, "u1")
            .cloned();
        let cases = t.current.as_ref().map(|c| c.3.clone()).unwrap_or_default();
        let n = cases.len();
        assert!(n > 30, "the table has its many refused cases, got {n}");
        assert!(cases.iter().all(|c| c.live() && c.expected != "accepted"));
        assert_eq!(
            first.as_ref(),
            cases.get(5),
            "the first case is the start's"
        );
        let mut names: BTreeSet<String> = first.iter().map(|c| c.name.clone()).collect();
        for _ in 1..n {
            if let Some(c) = t.next(&kid("hs-0"), None, || Some(keys()), now, "u1") {
                names.insert(c.name.clone());
            }
        }
        assert_eq!(names.len(), n, "n turns present n different cases");
        for shape in [
            "two_parts",
            "header_crit",
            "header_jku",
            "unknown_kid",
            "iat_too_old",
            "nbf_far_future",
        ] {
            assert!(names.contains(shape), "{shape} is presented");
        }
        assert_eq!(
            t.next(&kid("hs-0"), None, || Some(keys()), now, "u1")
                .cloned(),
            first,
            "turn n starts over"
        );
    }

    #[test]
    fn attack_table_is_regenerated_on_rotation_and_when_old() {
        let now = Instant::from_unix_secs(1_800_000_000);
        let mut t = AttackTable::new(0);
        // Back to case 0 before each call, so the calls compare the same case.
        let token = |t: &mut AttackTable, k: &str, at: Instant| {
            t.next = 0;
            t.next(&kid(k), None, || Some(keys()), at, "u1")
                .map(|c| c.token.clone())
        };
        let a = token(&mut t, "hs-0", now);
        assert!(a.is_some());
        assert_eq!(token(&mut t, "hs-0", now.saturating_add(MAX_AGE)), a);
        let later = now.saturating_add(MAX_AGE + Duration::from_secs(1));
        assert_ne!(token(&mut t, "hs-0", later), a, "re-timed after MAX_AGE");
        assert_eq!(t.current.as_ref().map(|c| c.2), Some(later));
        token(&mut t, "hs-1", later);
        assert_eq!(
            t.current.as_ref().map(|c| c.0.as_str().to_string()),
            Some("hs-1".to_string()),
            "re-generated for the new signing key"
        );
    }
}
