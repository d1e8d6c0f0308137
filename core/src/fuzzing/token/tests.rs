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
