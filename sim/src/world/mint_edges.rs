//! Tokens asked for at the claim bounds ([`crate::scenario::Op::MintEdge`]): the issuer
//! must mint what the validator accepts, with exactly the claims asked for, and refuse, with
//! the error that names the claim, what the validator would refuse (`AUTH-MINT`,
//! `AUTH-CLAIM-EMAIL`, `AUTH-CLAIM-SVC-ID`).
//!
//! The attacker's issuer (it holds the current signing key) is asked, and what it mints is
//! validated against the ring the auth service publishes at the same instant, so only the
//! claim rules can refuse it. A wrong answer is [`Obs::AuthServiceMisbehaved`]; a right one marks its rule.
//! This module draws no randomness: the caller's draw picks the request.

use std::time::Duration;

use gauntlet_core::UserId;
use gauntlet_core::permissions::Permissions;
use gauntlet_core::token::{IssueError, MintRequest, TokenType, validate};

use super::World;
use crate::checker::Obs;

/// One request at a claim bound, and what the protocol says of it.
struct Edge {
    what: &'static str,
    token_type: TokenType,
    email: Option<String>,
    svc_id: Option<String>,
    /// `None`: it must be minted and validate; else the error that must refuse it.
    refused: Option<IssueError>,
    rule: &'static str,
}

impl Edge {
    /// The mint request for `sub`: a one-minute token of the edge's type and claims.
    fn request(&self, sub: &UserId) -> MintRequest {
        MintRequest {
            sub: sub.clone(),
            token_type: self.token_type,
            permissions: Permissions::empty(),
            ttl: Duration::from_secs(60),
            family: None,
            email: self.email.clone(),
            svc_id: self.svc_id.clone(),
        }
    }
}

/// The request of draw `variant`: an email or `svc_id` at, and one past, its bound (in bytes
/// and in characters), a control character, a service token without `svc_id`.
fn edge(variant: u64) -> Edge {
    let access = |what, email: String, refused| Edge {
        what,
        token_type: TokenType::Access,
        email: Some(email),
        svc_id: None,
        refused,
        rule: "AUTH-CLAIM-EMAIL",
    };
    let service = |what, svc_id: Option<String>, refused| Edge {
        what,
        token_type: TokenType::Service,
        email: None,
        svc_id,
        refused,
        rule: "AUTH-CLAIM-SVC-ID",
    };
    match variant % 8 {
        0 => access("an email of 254 bytes", "e".repeat(254), None),
        1 => access(
            "an email of 255 bytes",
            "e".repeat(255),
            Some(IssueError::EmailTooLong),
        ),
        2 => access(
            "an email of 127 two-byte characters",
            "\u{e9}".repeat(127),
            None,
        ),
        3 => access(
            "an email of 128 two-byte characters",
            "\u{e9}".repeat(128),
            Some(IssueError::EmailTooLong),
        ),
        4 => service(
            "an svc_id of 128 characters",
            Some("\u{e9}".repeat(128)),
            None,
        ),
        5 => service(
            "an svc_id of 129 characters",
            Some("s".repeat(129)),
            Some(IssueError::BadSvcId),
        ),
        6 => service(
            "an svc_id with a control character",
            Some("svc\u{7}".into()),
            Some(IssueError::BadSvcId),
        ),
        _ => service(
            "a service token without svc_id",
            None,
            Some(IssueError::MissingSvcId),
        ),
    }
}

impl World<'_> {
    /// [`crate::scenario::Op::MintEdge`]: asks the issuer for the request of draw `variant`
    /// for `user` and judges the answer.
    pub(super) fn mint_edge(&mut self, user: &UserId, variant: u64) {
        let e = edge(variant);
        let now = self.auth_now();
        let req = e.request(user);
        let ring = self.auth.ring();
        let minted = self.auth.attacker_issuer.mint(now, &req);
        match judge(&e, minted, |token| {
            validate(
                token.as_bytes(),
                now,
                &ring,
                &self.config.tokens,
                e.token_type,
            )
        }) {
            Ok(()) => {
                self.observe(&Obs::AuthFlow { rule: "AUTH-MINT" });
                self.observe(&Obs::AuthFlow { rule: e.rule });
            }
            Err(what) => self.observe(&Obs::AuthServiceMisbehaved {
                what: format!("the issuer, asked for {}, {what}", e.what),
            }),
        }
    }
}

/// What is wrong with the issuer's answer `minted` to `e`, given how the validator judges a
/// token (`validate`), if anything.
fn judge(
    e: &Edge,
    minted: Result<gauntlet_core::token::Minted, IssueError>,
    validate: impl FnOnce(
        &str,
    ) -> Result<gauntlet_core::token::Claims, gauntlet_core::token::TokenError>,
) -> Result<(), String> {
    match (minted, &e.refused) {
        (Ok(m), None) => {
            let claims = validate(&m.token)
                .map_err(|err| format!("minted a token the validator refuses: {}", err.code()))?;
            let (email, svc_id) = (claims.email(), claims.svc_id());
            if email != e.email.as_deref() || svc_id != e.svc_id.as_deref() {
                return Err(format!(
                    "minted email {email:?} and svc_id {svc_id:?} instead of the ones asked for"
                ));
            }
            Ok(())
        }
        (Ok(_), Some(expected)) => Err(format!(
            "minted a token instead of refusing it ({expected})"
        )),
        (Err(got), Some(expected))
            if std::mem::discriminant(&got) == std::mem::discriminant(expected) =>
        {
            Ok(())
        }
        (Err(got), _) => Err(format!("refused it: {got}")),
    }
}

#[cfg(test)]
mod tests {
    use gauntlet_core::token::{Algorithm, Issuer, KeyRing, SigningKey, TokenRules};
    use gauntlet_core::{Instant, Kid, UserId};

    use super::*;

    const SECRET: &[u8] = b"mint-edges-test-secret-0123456789abcdef";

    fn issuer_and_ring() -> (Issuer, KeyRing, TokenRules) {
        let kid = Kid::parse("hs-0").unwrap_or_else(|| unreachable!());
        let rules = TokenRules::default();
        let key = SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, SECRET)
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut ring = KeyRing::new();
        ring.add_hmac(Some(kid), Algorithm::HS256, SECRET)
            .unwrap_or_else(|e| unreachable!("{e}"));
        (Issuer::new(key, rules.clone()), ring, rules)
    }

    fn answer(variant: u64) -> Result<(), String> {
        let (mut issuer, ring, rules) = issuer_and_ring();
        let e = edge(variant);
        let now = Instant::from_unix_secs(1_800_000_000);
        let req = e.request(&UserId::parse("u1").unwrap_or_else(|| unreachable!()));
        judge(&e, issuer.mint(now, &req), |t| {
            validate(t.as_bytes(), now, &ring, &rules, e.token_type)
        })
    }

    #[test]
    fn the_real_issuer_answers_every_edge_as_the_protocol_says() {
        for variant in 0..8 {
            assert_eq!(answer(variant), Ok(()), "{}", edge(variant).what);
        }
    }

    #[test]
    fn an_issuer_that_mints_past_a_bound_or_refuses_within_it_is_caught() {
        let e = edge(1);
        let (mut issuer, ring, rules) = issuer_and_ring();
        let now = Instant::from_unix_secs(1_800_000_000);
        let within = MintRequest {
            sub: UserId::parse("u1").unwrap_or_else(|| unreachable!()),
            token_type: TokenType::Access,
            permissions: Permissions::empty(),
            ttl: Duration::from_secs(60),
            family: None,
            email: None,
            svc_id: None,
        };
        // A token minted where a refusal was due.
        let minted = issuer.mint(now, &within);
        let got = judge(&e, minted, |t| {
            validate(t.as_bytes(), now, &ring, &rules, TokenType::Access)
        });
        assert!(got.is_err_and(|m| m.contains("instead of refusing")));
        // A refusal where a token was due, and a token without the email asked for.
        let e = edge(0);
        assert!(judge(&e, Err(IssueError::EmailTooLong), |_| unreachable!()).is_err());
        let minted = issuer.mint(now, &within);
        let got = judge(&e, minted, |t| {
            validate(t.as_bytes(), now, &ring, &rules, TokenType::Access)
        });
        assert!(got.is_err_and(|m| m.contains("instead of the ones asked for")));
    }
}
