use super::*;
use crate::token::{Algorithm, KeyRing};

const VALID_HS256: &[u8] = include_bytes!("../../../../corpora/tokens/valid_hs256.jwt");
const KEY_CONFUSION: &[u8] = include_bytes!("../../../../corpora/tokens/key_confusion_rsa_pem.jwt");

fn trimmed(t: &[u8]) -> &[u8] {
    t.strip_suffix(b"\n").unwrap_or(t)
}

#[test]
fn token_bytes_valid_token_passes_every_check() {
    let mut v = fresh_validator().unwrap();
    let first = v.validate(trimmed(VALID_HS256), fixtures::now(), TokenType::Access);
    assert_eq!(
        first.map(|c| c.sub().to_string()).ok().as_deref(),
        Some("user-42")
    );
    assert_eq!(token_bytes(trimmed(VALID_HS256)), Ok(()));
}

#[test]
fn token_bytes_key_confusion_token_passes_real_validator() {
    assert_eq!(token_bytes(trimmed(KEY_CONFUSION)), Ok(()));
}

#[test]
fn token_bytes_validator_without_length_limit_breaks_length_rule() {
    let ring = fixtures::ring().unwrap();
    let lenient = TokenRules {
        max_len: 1 << 20,
        ..TokenRules::default()
    };
    let long = vec![b'a'; 5000];
    let r = token_bytes_with(&long, &mut |t, now| {
        validate(t, now, &ring, &lenient, TokenType::Access)
    });
    assert_eq!(
        r,
        Err(OracleViolation::LengthRule {
            len: 5000,
            verdict: "malformed".into()
        })
    );
}

#[test]
fn token_bytes_validator_with_attacker_key_disagrees_with_validate() {
    let mut attacker = KeyRing::new();
    let secret = b"an-attacker-secret-that-is-32-bytes-long";
    attacker
        .add_hmac(crate::Kid::parse("hs256"), Algorithm::HS256, secret)
        .unwrap();
    let forged = fixtures::sign_raw(
        br#"{"alg":"HS256","kid":"hs256"}"#,
        crate::fuzzing::token::tests::payload().as_bytes(),
        Algorithm::HS256,
        secret,
    )
    .unwrap();
    let rules = TokenRules::default();
    let r = token_bytes_with(forged.as_bytes(), &mut |t, now| {
        validate(t, now, &attacker, &rules, TokenType::Access)
    });
    // The library check runs first and already refuses the forged signature.
    assert!(
        matches!(&r, Err(OracleViolation::LooserThanJsonwebtoken { reason, .. }) if reason.contains("InvalidSignature")),
        "{r:?}"
    );
}

fn payload() -> String {
    let mut s = String::new();
    render_object(&base_claims(TokenType::Access), &mut s);
    s
}

#[test]
fn token_claims_base_case_accepted_by_both() {
    let case = ClaimsCase {
        kid: "hs256",
        expected: TokenType::Access,
        payload: base_claims(TokenType::Access),
    };
    let mut v = fresh_validator().unwrap();
    assert_eq!(
        run_claims_case(&case, &mut |t, now, ty| v.validate(t, now, ty)),
        Ok(())
    );
}

#[test]
fn token_claims_rejections_agree_with_reference() {
    let mut cases = Vec::new();
    let mut missing_sub = base_claims(TokenType::Access);
    missing_sub.retain(|(k, _)| k != "sub");
    cases.push(missing_sub);
    let mut dup = base_claims(TokenType::Access);
    dup.push(("sub".into(), Json::Str("admin".into())));
    cases.push(dup);
    let mut float_exp = base_claims(TokenType::Access);
    float_exp.push(("nbf".into(), Json::Float(1.5)));
    cases.push(float_exp);
    for payload in cases {
        let case = ClaimsCase {
            kid: "hs512",
            expected: TokenType::Access,
            payload,
        };
        let mut v = fresh_validator().unwrap();
        assert_eq!(
            run_claims_case(&case, &mut |t, now, ty| v.validate(t, now, ty)),
            Ok(()),
            "{case:?}"
        );
    }
}

#[test]
fn token_claims_validator_with_huge_leeway_accepts_expired_and_is_caught() {
    let ring = fixtures::ring().unwrap();
    let lenient = TokenRules {
        leeway_secs: 100_000,
        ..TokenRules::default()
    };
    let mut payload = base_claims(TokenType::Access);
    for (k, v) in &mut payload {
        if k == "exp" {
            *v = Json::UInt(crate::fuzzing::FUZZ_NOW_SECS - 100);
        }
    }
    let case = ClaimsCase {
        kid: "hs256",
        expected: TokenType::Access,
        payload,
    };
    let r = run_claims_case(&case, &mut |t, now, ty| {
        validate(t, now, &ring, &lenient, ty)
    });
    assert!(
        matches!(&r, Err(OracleViolation::ReferenceDisagrees { actual, allowed, .. })
            if actual == "accepted(user-1)" && allowed == "expired"),
        "{r:?}"
    );
}

#[test]
fn token_claims_validator_ignoring_type_accepts_refresh_and_is_caught() {
    let ring = fixtures::ring().unwrap();
    let rules = TokenRules::default();
    let case = ClaimsCase {
        kid: "hs384",
        expected: TokenType::Access,
        payload: base_claims(TokenType::Refresh),
    };
    let r = run_claims_case(&case, &mut |t, now, _| {
        validate(t, now, &ring, &rules, TokenType::Refresh)
    });
    assert!(
        matches!(&r, Err(OracleViolation::ReferenceDisagrees { allowed, .. }) if allowed == "wrong_token_type"),
        "{r:?}"
    );
}

#[test]
fn reference_flags_each_broken_rule() {
    let now = crate::fuzzing::FUZZ_NOW_SECS;
    let set = |edits: &[(&str, Json)]| {
        let mut p = base_claims(TokenType::Access);
        for (k, v) in edits {
            p.retain(|(n, _)| n != k);
            p.push(((*k).to_string(), v.clone()));
        }
        reference::violations(&p, TokenType::Access, now)
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(set(&[]), Vec::<&str>::new());
    assert_eq!(set(&[("exp", Json::UInt(now - 30))]), ["expired"]);
    assert_eq!(set(&[("exp", Json::UInt(now - 29))]), Vec::<&str>::new());
    assert_eq!(set(&[("iat", Json::UInt(now + 61))]), ["issued_in_future"]);
    assert_eq!(set(&[("iat", Json::UInt(now - 931))]), ["too_old"]);
    assert_eq!(set(&[("nbf", Json::UInt(now + 31))]), ["not_yet_valid"]);
    assert_eq!(set(&[("exp", Json::Float(1.0e308))]), ["invalid_claim"]);
    assert_eq!(
        set(&[("email", Json::Str("é".repeat(128)))]),
        ["invalid_claim"]
    );
    assert_eq!(
        set(&[("permissions", Json::Arr(vec![Json::Str("a:*".into())]))]),
        Vec::<&str>::new()
    );
    assert_eq!(
        set(&[("permissions", Json::Arr(vec![Json::Str("*".into())]))]),
        ["bad_permissions"]
    );
    assert_eq!(
        set(&[
            ("aud", Json::Arr(vec![Json::Str("x".into())])),
            ("iss", Json::Null)
        ]),
        ["invalid_claim", "wrong_audience"]
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn token_bytes_cache_ignores_exp_plant_is_caught() {
    let mut v = fresh_validator()
        .unwrap()
        .with_plants(crate::Plants::only(crate::Plant::CacheIgnoresExp));
    let r = token_bytes_with(trimmed(VALID_HS256), &mut |t, now| {
        v.validate(t, now, TokenType::Access)
    });
    let later = crate::fuzzing::FUZZ_NOW_SECS + 1000;
    assert!(
        matches!(&r, Err(OracleViolation::CacheDisagrees { at, actual, .. })
            if *at == later && actual == "accepted(user-42)"),
        "{r:?}"
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn token_bytes_alg_from_header_plant_is_looser_than_jsonwebtoken() {
    let mut v = fresh_validator()
        .unwrap()
        .with_plants(crate::Plants::only(crate::Plant::AlgFromHeader));
    let r = token_bytes_with(trimmed(KEY_CONFUSION), &mut |t, now| {
        v.validate(t, now, TokenType::Access)
    });
    assert!(
        matches!(&r, Err(OracleViolation::LooserThanJsonwebtoken { .. })),
        "{r:?}"
    );
}

/// The harness's list is written from the documents, `TokenError::CODES` from the code: a code
/// added to one and not the other is either undocumented or a refusal the oracle would flag.
#[test]
fn documented_token_codes_are_the_validators_codes() {
    let mut documented = DOCUMENTED_TOKEN_CODES.to_vec();
    let mut coded = TokenError::CODES.to_vec();
    documented.sort_unstable();
    coded.sort_unstable();
    assert_eq!(documented, coded);
}

fn mint_case(ty: TokenType, email: Option<String>, svc_id: Option<String>) -> MintCase {
    MintCase {
        kid: "hs256",
        request: MintRequest {
            sub: UserId::parse("user-1").unwrap(),
            token_type: ty,
            permissions: Permissions::empty(),
            ttl: Duration::from_secs(60),
            family: None,
            email,
            svc_id,
        },
    }
}

/// An issuer that writes the requested claims without checking them, as the real one did
/// with `email` and `svc_id` before it shared the validator's predicates; `drop_email` also
/// leaves the `email` claim out.
fn unchecked_mint(
    drop_email: bool,
) -> impl FnMut(&MintCase) -> Result<Result<Minted, IssueError>, OracleViolation> {
    move |case| {
        let r = &case.request;
        let now = fixtures::now().unix_secs();
        let exp = now + r.ttl.as_secs();
        let aud = match r.token_type {
            TokenType::Service => "gauntlet-services",
            TokenType::Access | TokenType::Refresh => "gauntlet-gateway",
        };
        let mut claims = serde_json::json!({
            "iss": "gauntlet-auth", "aud": aud, "sub": r.sub.as_str(), "jti": "jti-1",
            "iat": now, "exp": exp, "token_type": r.token_type.as_str(),
        });
        if let (Some(e), false) = (&r.email, drop_email) {
            claims["email"] = e.as_str().into();
        }
        if let Some(s) = &r.svc_id {
            claims["svc_id"] = s.as_str().into();
        }
        Ok(Ok(Minted {
            token: fixtures::sign_claims(&claims, case.kid)?,
            jti: crate::Jti::parse("jti-1").unwrap(),
            exp: Instant::from_unix_secs(exp),
        }))
    }
}

#[test]
fn token_claims_mint_round_trip_holds_at_the_claim_limits() {
    let service = |s: &str| mint_case(TokenType::Service, None, Some(s.to_string()));
    let email = |e: String| mint_case(TokenType::Access, Some(e), None);
    // (case, whether the issuer mints it): each limit from both sides.
    let cases = [
        (email("é".repeat(127)), true),
        (email("e".repeat(254)), true),
        (email("é".repeat(128)), false),
        (email("e".repeat(255)), false),
        (service(&"é".repeat(128)), true),
        (service(&"s".repeat(129)), false),
        (service("svc\u{7}"), false),
        (service(""), false),
    ];
    let mut v = fresh_validator().unwrap();
    for (case, minted) in &cases {
        assert_eq!(fixture_mint(case).unwrap().is_ok(), *minted, "{case:?}");
        let r = run_mint_case(case, &mut fixture_mint, &mut |t, now, ty| {
            v.validate(t, now, ty)
        });
        assert_eq!(r, Ok(()), "{case:?}");
    }
}

#[test]
fn token_claims_issuer_that_skips_the_claim_checks_is_caught() {
    let mut v = fresh_validator().unwrap();
    let mut check = |t: &[u8], now, ty| v.validate(t, now, ty);
    let too_long = mint_case(TokenType::Access, Some("é".repeat(128)), None);
    let control = mint_case(TokenType::Service, None, Some("svc\u{7}".into()));
    for case in [&too_long, &control] {
        let r = run_mint_case(case, &mut unchecked_mint(false), &mut check);
        assert!(
            matches!(&r, Err(OracleViolation::IssuerDisagrees { detail, .. })
                if detail == "minted a token the validator refuses: invalid_claim"),
            "{r:?}"
        );
    }
    // The same issuer with a claim the protocol allows passes; leaving the claim out does not.
    let fine = mint_case(TokenType::Access, Some("a@example.com".into()), None);
    assert_eq!(
        run_mint_case(&fine, &mut unchecked_mint(false), &mut check),
        Ok(())
    );
    let r = run_mint_case(&fine, &mut unchecked_mint(true), &mut check);
    assert!(
        matches!(&r, Err(OracleViolation::IssuerDisagrees { detail, .. })
            if detail.starts_with("minted a token the validator reads back as")),
        "{r:?}"
    );
}

#[test]
fn token_claims_issuer_stricter_than_the_protocol_is_caught() {
    let mut v = fresh_validator().unwrap();
    let mut check = |t: &[u8], now, ty| v.validate(t, now, ty);
    // 254 bytes of two-byte characters and 128 of them as svc_id are within the rules.
    let email = mint_case(TokenType::Access, Some("é".repeat(127)), None);
    let svc = mint_case(TokenType::Service, None, Some("é".repeat(128)));
    for (case, refusal) in [
        (email, IssueError::EmailTooLong),
        (svc, IssueError::BadSvcId),
    ] {
        let name = if case.request.email.is_some() {
            "email"
        } else {
            "svc_id"
        };
        let message = refusal.to_string();
        let mut refusal = Some(refusal);
        let mut strict = |_: &MintCase| Ok(Err(refusal.take().unwrap()));
        let r = run_mint_case(&case, &mut strict, &mut check);
        assert_eq!(
            r.map_err(|e| match e {
                OracleViolation::IssuerDisagrees { detail, .. } => detail,
                other => other.to_string(),
            }),
            Err(format!("refused ({message}) a {name} the protocol allows"))
        );
    }
}

/// The generator reaches every side of the issuer's claim checks (minted and refused, for
/// each claim and type), so the round trip is exercised, not only present; and the real
/// issuer passes the round trip on every generated request.
#[test]
fn gen_mint_reaches_both_sides_of_each_claim_check() {
    let mut v = fresh_validator().unwrap();
    let mut check = |t: &[u8], now, ty| v.validate(t, now, ty);
    let mut seen = BTreeSet::new();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4000 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect();
        let case = gen_mint(&mut Unstructured::new(&bytes)).unwrap();
        assert_eq!(
            run_mint_case(&case, &mut fixture_mint, &mut check),
            Ok(()),
            "{case:?}"
        );
        let r = &case.request;
        let outcome = match fixture_mint(&case).unwrap() {
            Ok(_)
                if r.email
                    .as_deref()
                    .is_some_and(|e| e.len() > e.chars().count()) =>
            {
                "minted non-ascii email"
            }
            Ok(_) if r.token_type == TokenType::Service => "minted service",
            Ok(_) => "minted",
            Err(IssueError::EmailTooLong) => "email refused",
            Err(IssueError::BadSvcId) => "svc_id refused",
            Err(IssueError::MissingSvcId) => "svc_id missing",
            Err(IssueError::ZeroTtl) => "zero ttl",
            Err(IssueError::TtlTooLong { .. }) => "ttl too long",
            Err(e) => panic!("{e}"),
        };
        seen.insert(outcome);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            "email refused",
            "minted",
            "minted non-ascii email",
            "minted service",
            "svc_id missing",
            "svc_id refused",
            "ttl too long",
            "zero ttl",
        ]
    );
}
