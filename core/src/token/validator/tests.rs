//! Tests of `validator.rs`, kept beside it because they outweigh the code.

use serde_json::{Value, json};

use super::*;
use crate::token::testkit::*;
use crate::{Jti, UserId};

fn validator() -> Validator {
    Validator::new(ring(), TokenRules::default())
}

fn secs(s: u64) -> Instant {
    Instant::from_unix_secs(s)
}

#[test]
fn validator_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Validator>();
    assert_send_sync::<Claims>();
}

#[test]
fn validator_second_call_hits_cache_with_same_claims() {
    let mut v = validator();
    let token = hs(&base_claims());
    let first = v
        .validate(token.as_bytes(), now(), TokenType::Access)
        .unwrap();
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 0,
            misses: 1,
            len: 1
        }
    );
    let second = v
        .validate(token.as_bytes(), now(), TokenType::Access)
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            len: 1
        }
    );
}

#[test]
fn validator_failures_not_cached() {
    let mut v = validator();
    let token = hs(&claims_with(&[("iss", json!("evil"))], &[]));
    for _ in 0..2 {
        assert_eq!(
            v.validate(token.as_bytes(), now(), TokenType::Access),
            Err(TokenError::WrongIssuer)
        );
    }
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 0,
            misses: 2,
            len: 0
        }
    );
}

#[test]
fn validator_cache_hit_rechecks_expiry() {
    let mut v = validator();
    let token = hs(&base_claims());
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    // exp = NOW + 600, leeway 30 s.
    assert!(
        v.validate(token.as_bytes(), secs(NOW + 629), TokenType::Access)
            .is_ok()
    );
    assert_eq!(
        v.validate(token.as_bytes(), secs(NOW + 630), TokenType::Access),
        Err(TokenError::Expired)
    );
    assert_eq!(v.cache_stats().len, 0);
}

#[test]
fn validator_cache_hit_not_yet_valid_at_an_earlier_now_is_refused_but_stays_cached() {
    // A caller that goes back in time (it must not) gets the start-of-life refusals from the
    // cache too; the entry is kept, since the token becomes valid again.
    let mut v = validator();
    let token = hs(&claims_with(&[("nbf", json!(NOW - 60))], &[]));
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    let earlier = secs(NOW - 3_600);
    assert_eq!(
        v.validate(token.as_bytes(), earlier, TokenType::Access),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        v.cache_stats().len,
        1,
        "a start-of-life refusal keeps the entry"
    );
    let hits = v.cache_stats().hits;
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(
        v.cache_stats().hits,
        hits + 1,
        "served from the cache again"
    );
}

#[test]
fn validator_cache_hit_rechecks_token_type() {
    let mut v = validator();
    let token = hs(&base_claims());
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(
        v.validate(token.as_bytes(), now(), TokenType::Refresh),
        Err(TokenError::WrongTokenType)
    );
    assert_eq!(v.cache_stats().hits, 1);
}

#[test]
fn validator_revoked_jti_rejected_even_when_cached() {
    let mut v = validator();
    let token = hs(&base_claims());
    let claims = v
        .validate(token.as_bytes(), now(), TokenType::Access)
        .unwrap();
    assert!(!v.is_revoked(&claims), "nothing revoked yet");
    v.apply(&Revocation::Jti {
        jti: Jti::parse("jti-1").unwrap(),
        exp: claims.exp(),
    });
    assert!(v.is_revoked(&claims));
    assert_eq!(
        v.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::Revoked)
    );
    // Not re-cached: a fresh validator-level miss still says revoked.
    assert_eq!(
        v.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::Revoked)
    );
    let other = hs(&claims_with(&[("jti", json!("jti-2"))], &[]));
    assert!(
        v.validate(other.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
}

#[test]
fn validator_user_cutoff_revokes_older_tokens_only() {
    let mut v = validator();
    let old = hs(&base_claims());
    let new = hs(&claims_with(
        &[("iat", json!(NOW)), ("jti", json!("jti-new"))],
        &[],
    ));
    assert!(v.validate(old.as_bytes(), now(), TokenType::Access).is_ok());
    v.apply(&Revocation::User {
        user: UserId::parse("user-1").unwrap(),
        not_before: secs(NOW),
    });
    assert_eq!(
        v.validate(old.as_bytes(), now(), TokenType::Access),
        Err(TokenError::Revoked)
    );
    assert!(v.validate(new.as_bytes(), now(), TokenType::Access).is_ok());
}

#[test]
fn validator_retired_key_stops_cached_tokens() {
    let mut v = validator();
    let token = hs(&base_claims());
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    v.ring_mut().retire(&kid("hs")).unwrap();
    assert_eq!(
        v.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::KeyRetired)
    );
}

/// Regression: ring {hs, rs, ec, ed} (4 changes) replaced by
/// {hs retired, rs, ec} (also 4 changes) kept the cached `hs` token valid.
#[test]
fn validator_ring_replaced_with_same_change_count_drops_cached_tokens() {
    let mut v = validator();
    let token = hs(&base_claims());
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    let mut replacement = KeyRing::new();
    replacement
        .add_hmac(
            Some(kid("hs")),
            crate::token::Algorithm::HS256,
            HS256_SECRET,
        )
        .unwrap();
    replacement
        .add_public_pem(Some(kid("rs")), crate::token::Algorithm::RS256, RS256_PUB)
        .unwrap();
    replacement
        .add_public_pem(Some(kid("ec")), crate::token::Algorithm::ES256, EC256_PUB)
        .unwrap();
    replacement.retire(&kid("hs")).unwrap();
    assert_eq!(replacement.generation(), v.ring().generation());
    *v.ring_mut() = replacement;
    assert_eq!(
        v.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::KeyRetired)
    );
}

#[test]
fn validator_cache_capacity_evicts_earliest_expiring() {
    let mut v = validator().with_cache_capacity(2);
    let t = |jti: &str, exp: u64| {
        hs(&claims_with(
            &[("jti", json!(jti)), ("exp", json!(exp))],
            &[],
        ))
    };
    let (late, early, mid) = (
        t("late", NOW + 500),
        t("early", NOW + 100),
        t("mid", NOW + 300),
    );
    for tok in [&late, &early, &mid] {
        assert!(v.validate(tok.as_bytes(), now(), TokenType::Access).is_ok());
    }
    assert_eq!(v.cache_stats().len, 2);
    let misses = v.cache_stats().misses;
    assert!(
        v.validate(late.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert!(v.validate(mid.as_bytes(), now(), TokenType::Access).is_ok());
    assert_eq!(v.cache_stats().misses, misses, "late and mid stay cached");
    assert!(
        v.validate(early.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(v.cache_stats().misses, misses + 1, "early was evicted");
}

/// Tokens minted in the same second share a deadline: each still gets its own place in the
/// eviction order (ties broken by insertion), so none is stranded past its deadline.
#[test]
fn validator_cache_entries_with_one_deadline_are_evicted_in_order_and_all_pruned() {
    let mut v = validator().with_cache_capacity(2);
    let t = |jti: &str| {
        hs(&claims_with(
            &[("jti", json!(jti)), ("exp", json!(NOW + 100))],
            &[],
        ))
    };
    let (first, second, third) = (t("first"), t("second"), t("third"));
    for tok in [&first, &second, &third] {
        assert!(v.validate(tok.as_bytes(), now(), TokenType::Access).is_ok());
    }
    assert_eq!(v.cache_stats().len, 2);
    let misses = v.cache_stats().misses;
    assert!(
        v.validate(third.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert!(
        v.validate(second.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(v.cache_stats().misses, misses, "the two latest stay cached");
    v.prune(secs(NOW + 100 + 60));
    assert_eq!(v.cache_stats().len, 0, "every entry leaves at its deadline");
}

#[test]
fn validator_prune_drops_expired_entries_and_revocations() {
    let mut v = validator();
    let token = hs(&base_claims());
    assert!(
        v.validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    v.apply(&Revocation::Jti {
        jti: Jti::parse("x").unwrap(),
        exp: secs(NOW + 100),
    });
    v.apply(&Revocation::User {
        user: UserId::parse("u").unwrap(),
        not_before: secs(NOW),
    });
    assert_eq!(v.revocation_count(), 2);
    v.prune(secs(NOW + 129));
    assert_eq!((v.revocation_count(), v.cache_stats().len), (2, 1));
    v.prune(secs(NOW + 130));
    assert_eq!((v.revocation_count(), v.cache_stats().len), (1, 1));
    v.prune(secs(NOW + 630));
    assert_eq!(v.cache_stats().len, 0);
    // The user cut-off outlives every token it could affect: 7 d refresh + 30 s + 60 s.
    v.prune(secs(NOW + 7 * 86_400 + 89));
    assert_eq!(v.revocation_count(), 1);
    v.prune(secs(NOW + 7 * 86_400 + 90));
    assert_eq!(v.revocation_count(), 0);
}

#[test]
fn validator_zero_capacity_never_caches() {
    let mut v = validator().with_cache_capacity(0);
    let token = hs(&base_claims());
    for _ in 0..2 {
        assert!(
            v.validate(token.as_bytes(), now(), TokenType::Access)
                .is_ok()
        );
    }
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 0,
            misses: 2,
            len: 0
        }
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn validator_cache_ignores_exp_plant_accepts_expired_hit() {
    use crate::plant::Plant;
    let token = hs(&base_claims());
    let late = secs(NOW + 700);
    let mut planted = validator().with_plants(Plants::only(Plant::CacheIgnoresExp));
    assert!(
        planted
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(
        planted
            .validate(token.as_bytes(), late, TokenType::Access)
            .map(|c| c.jti().as_str().to_string()),
        Ok("jti-1".to_string())
    );
    let mut clean = validator();
    assert!(
        clean
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    assert_eq!(
        clean.validate(token.as_bytes(), late, TokenType::Access),
        Err(TokenError::Expired)
    );
    // Uncached, the planted validator still rejects the expired token.
    let mut fresh = validator().with_plants(Plants::only(Plant::CacheIgnoresExp));
    assert_eq!(
        fresh.validate(token.as_bytes(), late, TokenType::Access),
        Err(TokenError::Expired)
    );
}

#[cfg(feature = "planted-bugs")]
#[test]
fn validator_ring_replace_keeps_cache_plant_accepts_removed_key() {
    use crate::plant::Plant;
    let token = hs(&base_claims());
    let replacement = || {
        let mut r = KeyRing::new();
        r.add_hmac(
            Some(kid("hs")),
            crate::token::Algorithm::HS256,
            HS256_SECRET,
        )
        .unwrap();
        r.add_public_pem(Some(kid("rs")), crate::token::Algorithm::RS256, RS256_PUB)
            .unwrap();
        r.add_public_pem(Some(kid("ec")), crate::token::Algorithm::ES256, EC256_PUB)
            .unwrap();
        r.retire(&kid("hs")).unwrap();
        r
    };
    let mut planted = validator().with_plants(Plants::only(Plant::RingReplaceKeepsCache));
    assert!(
        planted
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    *planted.ring_mut() = replacement();
    assert!(
        planted
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    let mut clean = validator();
    assert!(
        clean
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    *clean.ring_mut() = replacement();
    assert_eq!(
        clean.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::KeyRetired)
    );
    // The plant is the replaced-ring defect only: a change to the ring in place moves its
    // counter, so the planted cache still drops the token then.
    let mut in_place = validator().with_plants(Plants::only(Plant::RingReplaceKeepsCache));
    assert!(
        in_place
            .validate(token.as_bytes(), now(), TokenType::Access)
            .is_ok()
    );
    in_place.ring_mut().retire(&kid("hs")).unwrap();
    assert_eq!(
        in_place.validate(token.as_bytes(), now(), TokenType::Access),
        Err(TokenError::KeyRetired)
    );
}

#[test]
fn validator_uncached_refuses_revoked_and_removed_key_service_tokens_and_caches_nothing() {
    let mut v = validator();
    let service = hs(&claims_with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
            ("svc_id", json!("auth")),
            ("jti", json!("svc-1")),
        ],
        &[],
    ));
    let claims = v
        .validate_uncached(service.as_bytes(), now(), TokenType::Service)
        .unwrap();
    assert_eq!(claims.jti().as_str(), "svc-1");
    assert_eq!(v.cache_stats().len, 0, "nothing cached");
    v.apply(&Revocation::Jti {
        jti: Jti::parse("svc-1").unwrap(),
        exp: claims.exp(),
    });
    assert_eq!(
        v.validate_uncached(service.as_bytes(), now(), TokenType::Service),
        Err(TokenError::Revoked)
    );
    let other = hs(&claims_with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
            ("svc_id", json!("auth")),
            ("jti", json!("svc-2")),
        ],
        &[],
    ));
    assert!(
        v.validate_uncached(other.as_bytes(), now(), TokenType::Service)
            .is_ok()
    );
    v.ring_mut().remove(&kid("hs")).unwrap();
    assert_eq!(
        v.validate_uncached(other.as_bytes(), now(), TokenType::Service),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn validator_rules_are_the_ones_it_was_built_with() {
    // Not the defaults, which a validator that ignored its rules would also return.
    let rules = TokenRules {
        issuer: "other-issuer".to_string(),
        leeway_secs: 5,
        ..TokenRules::default()
    };
    assert_ne!(rules, TokenRules::default());
    let v = Validator::new(ring(), rules.clone());
    assert_eq!(v.rules(), &rules);
}

#[test]
fn claims_serialize_and_debug_show_the_validated_members() {
    let mut v = validator();
    let claims = v
        .validate(hs(&base_claims()).as_bytes(), now(), TokenType::Access)
        .unwrap();
    let json = serde_json::to_value(&claims).unwrap();
    assert_eq!(json["sub"], json!("user-1"));
    assert_eq!(json["jti"], json!("jti-1"));
    assert_eq!(json["email"], json!("u1@example.com"));
    assert_eq!(json["svc_id"], Value::Null);
    assert_eq!(json["kid"], json!("hs"));
    let debug = format!("{claims:?}");
    assert!(debug.starts_with("Claims { sub: "), "{debug}");
    assert!(debug.contains("u1@example.com"), "{debug}");
}

#[test]
fn verify_jws_returns_the_payload_bytes_or_the_signature_error() {
    let payload = base_claims().to_string();
    let token = hs(&base_claims());
    assert_eq!(
        crate::token::verify_jws(token.as_bytes(), &ring(), &TokenRules::default()),
        Ok(payload.clone().into_bytes())
    );
    let other_key =
        jsonwebtoken::EncodingKey::from_secret(b"not-the-ring-secret-0123456789abcdef").unwrap();
    let tampered = sign_raw(
        r#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#,
        &payload,
        crate::token::Algorithm::HS256,
        &other_key,
    );
    assert_eq!(
        crate::token::verify_jws(tampered.as_bytes(), &ring(), &TokenRules::default()),
        Err(TokenError::BadSignature)
    );
}
