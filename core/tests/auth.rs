//! Public-API tests of issuing, refresh rotation, revocation publishing, key rotation and
//! the OAuth flow of the auth service, checked with the gateway's own validator and the
//! committed test keys in `corpora/tokens/keys/`.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gauntlet_core::auth_service::{AuthError, AuthService, KeyRotation, TokenResponse, VerifyKey};
use gauntlet_core::oauth::{
    AuthorizeRequest, CallbackRequest, OAuthConfig, OAuthError, s256_challenge,
};
use gauntlet_core::permissions::{Permission, Permissions};
use gauntlet_core::token::{
    Algorithm, IssueError, Issuer, KeyError, KeyRing, MintRequest, RefreshError, Revocation,
    SigningKey, TokenRules, TokenType, Validator, validate,
};
use gauntlet_core::{Instant, Kid, Plants, UserId};
use serde_json::Value;

#[allow(dead_code)]
mod test_keys {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpora/tokens/keys/keys.rs"
    ));
}
use test_keys::{
    EC256_PRIV, EC256_PUB, EC384_PRIV, EC384_PUB, ED_PRIV, ED_PUB, HS256_SECRET as HS256,
    HS384_SECRET as HS384, HS512_SECRET as HS512, RS256_PRIV as RS_PRIV, RS256_PUB as RS_PUB,
    RSA1024_PRIV,
};

const OAUTH_SECRET: &[u8] = b"oauth-code-secret-for-tests-0123456789";
const VERIFIER: &str = "a-pkce-verifier-of-forty-three-or-more-chars_~.";

fn t(secs: u64) -> Instant {
    Instant::from_unix_secs(1_800_000_000 + secs)
}

fn kid(s: &str) -> Kid {
    Kid::parse(s).unwrap()
}

fn alice() -> UserId {
    UserId::parse("alice").unwrap()
}

fn perms(list: &[&str]) -> Permissions {
    Permissions::new(list.iter().map(|p| Permission::parse(p).unwrap()).collect()).unwrap()
}

fn access_request(ttl: u64) -> MintRequest {
    MintRequest {
        sub: alice(),
        token_type: TokenType::Access,
        permissions: perms(&["threads:read", "runs:*"]),
        ttl: Duration::from_secs(ttl),
        family: None,
        email: Some("alice@example.com".into()),
        svc_id: None,
    }
}

/// The signing key and the matching verification key for every supported algorithm.
fn key_pairs() -> Vec<(Algorithm, SigningKey, VerifyKey)> {
    let k = || Some(kid("k"));
    let hmac = |alg, secret: &[u8]| {
        (
            alg,
            SigningKey::hmac(k(), alg, secret).unwrap(),
            VerifyKey::Hmac(secret.to_vec()),
        )
    };
    let pem = |alg, private: &[u8], public: &[u8]| {
        (
            alg,
            SigningKey::from_private_pem(k(), alg, private).unwrap(),
            VerifyKey::PublicPem(public.to_vec()),
        )
    };
    vec![
        hmac(Algorithm::HS256, HS256),
        hmac(Algorithm::HS384, HS384),
        hmac(Algorithm::HS512, HS512),
        pem(Algorithm::RS256, RS_PRIV, RS_PUB),
        pem(Algorithm::RS384, RS_PRIV, RS_PUB),
        pem(Algorithm::RS512, RS_PRIV, RS_PUB),
        pem(Algorithm::PS256, RS_PRIV, RS_PUB),
        pem(Algorithm::PS384, RS_PRIV, RS_PUB),
        pem(Algorithm::PS512, RS_PRIV, RS_PUB),
        pem(Algorithm::ES256, EC256_PRIV, EC256_PUB),
        pem(Algorithm::ES384, EC384_PRIV, EC384_PUB),
        pem(Algorithm::EdDSA, ED_PRIV, ED_PUB),
    ]
}

fn ring_with(kid_name: &str, alg: Algorithm, verify: &VerifyKey) -> KeyRing {
    let mut ring = KeyRing::new();
    match verify {
        VerifyKey::Hmac(s) => ring.add_hmac(Some(kid(kid_name)), alg, s).unwrap(),
        VerifyKey::PublicPem(p) => ring.add_public_pem(Some(kid(kid_name)), alg, p).unwrap(),
    }
    ring
}

fn hs256_service() -> AuthService {
    let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, HS256).unwrap();
    let rules = TokenRules::default();
    let ring = ring_with("k1", Algorithm::HS256, &VerifyKey::Hmac(HS256.to_vec()));
    AuthService::new(Issuer::new(key, rules.clone()), ring, rules, Plants::NONE)
        .with_oauth(OAUTH_SECRET, OAuthConfig::default())
        .unwrap()
}

/// The gateway's side: a validator with the service's key that applies the feed.
fn gateway() -> Validator {
    let ring = ring_with("k1", Algorithm::HS256, &VerifyKey::Hmac(HS256.to_vec()));
    Validator::new(ring, TokenRules::default())
}

fn pull_feed(gw: &mut Validator, service: &AuthService, cursor: &mut usize) {
    for (_, r) in service.feed_since(*cursor) {
        gw.apply(r);
    }
    *cursor = service.feed_end();
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[test]
fn mint_every_algorithm_validates_with_matching_public_ring() {
    let rules = TokenRules::default();
    for (alg, key, verify) in key_pairs() {
        let mut issuer = Issuer::new(key, rules.clone());
        let minted = issuer.mint(t(0), &access_request(600)).unwrap();
        let ring = ring_with("k", alg, &verify);
        let claims = validate(
            minted.token.as_bytes(),
            t(1),
            &ring,
            &rules,
            TokenType::Access,
        )
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(claims.sub(), &alice(), "{alg}");
        assert_eq!(claims.jti(), &minted.jti, "{alg}");
        assert_eq!(claims.exp(), t(600), "{alg}");
        assert_eq!(minted.exp, t(600), "{alg}");
        assert_eq!(claims.email(), Some("alice@example.com"), "{alg}");
        assert!(claims.permissions().allows("runs:start"), "{alg}");
        assert!(!claims.permissions().allows("threads:write"), "{alg}");
        assert_eq!(claims.kid(), Some(&kid("k")), "{alg}");
        assert_eq!(decode_part(&minted.token, 0)["alg"], alg.name(), "{alg}");
    }
}

#[test]
fn mint_token_under_other_algorithms_key_rejected() {
    let rules = TokenRules::default();
    let pairs = key_pairs();
    let (_, es_key, _) = &pairs[9];
    let (_, _, ed_verify) = &pairs[11];
    let minted = Issuer::new(es_key.clone(), rules.clone())
        .mint(t(0), &access_request(600))
        .unwrap();
    let ring = ring_with("k", Algorithm::EdDSA, ed_verify);
    let err = validate(
        minted.token.as_bytes(),
        t(1),
        &ring,
        &rules,
        TokenType::Access,
    )
    .unwrap_err();
    assert_eq!(err.code(), "algorithm_mismatch");
}

#[test]
fn mint_claim_layout_matches_protocol() {
    let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, HS256).unwrap();
    let mut issuer = Issuer::new(key, TokenRules::default());
    let mut req = access_request(300);
    req.token_type = TokenType::Refresh;
    req.family = Some(gauntlet_core::FamilyId::parse("fam-7").unwrap());
    let minted = issuer
        .mint(t(0).saturating_add(Duration::from_millis(900)), &req)
        .unwrap();
    let header = decode_part(&minted.token, 0);
    let payload = decode_part(&minted.token, 1);
    assert_eq!(header["kid"], "k1");
    assert_eq!(header["alg"], "HS256");
    assert_eq!(payload["iss"], "gauntlet-auth");
    assert_eq!(payload["aud"], "gauntlet-gateway");
    assert_eq!(payload["sub"], "alice");
    assert_eq!(payload["token_type"], "refresh");
    assert_eq!(payload["fam"], "fam-7");
    assert_eq!(payload["iat"], 1_800_000_000u64);
    assert_eq!(payload["nbf"], 1_800_000_000u64);
    assert_eq!(payload["exp"], 1_800_000_300u64);
    assert_eq!(payload["jti"], minted.jti.as_str());
    assert_eq!(
        payload["permissions"],
        serde_json::json!(["threads:read", "runs:*"])
    );
    assert!(payload.get("svc_id").is_none());
}

#[test]
fn mint_service_token_has_service_audience_and_svc_id() {
    let key = SigningKey::hmac(None, Algorithm::HS256, HS256).unwrap();
    let rules = TokenRules::default();
    let mut req = access_request(60);
    req.token_type = TokenType::Service;
    req.svc_id = Some("billing".into());
    let minted = Issuer::new(key, rules.clone()).mint(t(0), &req).unwrap();
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, HS256).unwrap();
    let claims = validate(
        minted.token.as_bytes(),
        t(1),
        &ring,
        &rules,
        TokenType::Service,
    )
    .unwrap();
    assert_eq!(claims.svc_id(), Some("billing"));
    assert_eq!(decode_part(&minted.token, 1)["aud"], "gauntlet-services");
}

#[test]
fn mint_with_jti_writes_the_callers_id_and_leaves_the_counter_alone() {
    let key = SigningKey::hmac(None, Algorithm::HS256, HS256).unwrap();
    let mut issuer = Issuer::new(key, TokenRules::default());
    let first = issuer.mint(t(0), &access_request(60)).unwrap();
    let jti = gauntlet_core::Jti::parse("0123456789abcdef0123456789abcdef").unwrap();
    let given = issuer
        .mint_with_jti(t(0), &access_request(60), jti.clone())
        .unwrap();
    assert_eq!(given.jti, jti);
    assert_eq!(decode_part(&given.token, 1)["jti"], jti.as_str());
    // The counter did not move: the next counted id follows the first one.
    let second = issuer.mint(t(0), &access_request(60)).unwrap();
    assert_eq!(first.jti.as_str().replace("-1", "-2"), second.jti.as_str());
    // The same request rules apply.
    assert!(matches!(
        issuer.mint_with_jti(t(0), &access_request(0), jti),
        Err(IssueError::ZeroTtl)
    ));
}

/// Mints `req` at `t(0)` with an HS256 issuer and validates it at once as its own type.
fn mint_and_validate(issuer: &mut Issuer, req: &MintRequest) -> gauntlet_core::token::Claims {
    let mut ring = KeyRing::new();
    ring.add_hmac(None, Algorithm::HS256, HS256).unwrap();
    let minted = issuer.mint(t(0), req).unwrap();
    let rules = TokenRules::default();
    validate(minted.token.as_bytes(), t(0), &ring, &rules, req.token_type).unwrap()
}

#[test]
fn mint_bad_requests_typed_errors() {
    let key = SigningKey::hmac(None, Algorithm::HS256, HS256).unwrap();
    let mut issuer = Issuer::new(key, TokenRules::default());
    let mut zero = access_request(0);
    zero.ttl = Duration::from_millis(999);
    assert!(matches!(issuer.mint(t(0), &zero), Err(IssueError::ZeroTtl)));
    let r = issuer.mint(t(0), &access_request(15 * 60 + 1));
    assert!(
        matches!(r, Err(IssueError::TtlTooLong { max, .. }) if max == Duration::from_secs(900))
    );
    let mut service = access_request(60);
    service.token_type = TokenType::Service;
    assert!(matches!(
        issuer.mint(t(0), &service),
        Err(IssueError::MissingSvcId)
    ));
    // The validator's svc_id rule: control characters are refused too.
    for bad in [
        String::new(),
        "s".repeat(129),
        "svc\u{7}".into(),
        "svc\nid".into(),
    ] {
        let mut svc = access_request(60);
        svc.token_type = TokenType::Service;
        svc.svc_id = Some(bad.clone());
        let err = issuer.mint(t(0), &svc).unwrap_err();
        assert!(matches!(err, IssueError::BadSvcId), "{bad:?}: {err:?}");
        assert_eq!(
            err.to_string(),
            "svc_id must be 1..=128 characters without control characters"
        );
    }
    // 128 characters (not bytes) is the svc_id limit, and the validator accepts it.
    let mut longest = access_request(60);
    longest.token_type = TokenType::Service;
    longest.svc_id = Some("é".repeat(128));
    let claims = mint_and_validate(&mut issuer, &longest);
    assert_eq!(claims.svc_id(), Some("é".repeat(128).as_str()));
    // 254 bytes (not characters) is the email limit: 127 two-byte characters are minted and
    // accepted, 128 of them (256 bytes, which the validator refuses) are not minted.
    let mut email = access_request(60);
    email.email = Some("é".repeat(127));
    let claims = mint_and_validate(&mut issuer, &email);
    assert_eq!(claims.email(), Some("é".repeat(127).as_str()));
    for bad in ["é".repeat(128), "e".repeat(255)] {
        email.email = Some(bad);
        let err = issuer.mint(t(0), &email).unwrap_err();
        assert!(matches!(err, IssueError::EmailTooLong), "{err:?}");
        assert_eq!(err.to_string(), "email longer than 254 bytes");
    }
}

#[test]
fn mint_same_inputs_same_tokens_and_fresh_jtis() {
    let mint_two = || {
        let key = SigningKey::from_private_pem(None, Algorithm::RS256, RS_PRIV).unwrap();
        let mut issuer = Issuer::new(key, TokenRules::default());
        let a = issuer.mint(t(0), &access_request(60)).unwrap();
        let b = issuer.mint(t(0), &access_request(60)).unwrap();
        (a, b)
    };
    let (a1, b1) = mint_two();
    let (a2, b2) = mint_two();
    assert_eq!(a1, a2);
    assert_eq!(b1, b2);
    assert_ne!(a1.jti, b1.jti);
}

#[test]
fn signing_key_weak_or_mismatched_material_refused() {
    assert!(matches!(
        SigningKey::hmac(None, Algorithm::HS256, &HS256[..31]),
        Err(KeyError::WeakSecret { len: 31 })
    ));
    // 32 bytes is the shortest secret, as the ring's own bound.
    let shortest = SigningKey::hmac(None, Algorithm::HS256, &HS256[..32]);
    assert_eq!(shortest.map(|k| k.alg()).ok(), Some(Algorithm::HS256));
    assert!(matches!(
        SigningKey::hmac(None, Algorithm::RS256, HS256),
        Err(KeyError::AlgorithmKeyMismatch { .. })
    ));
    assert!(matches!(
        SigningKey::from_private_pem(None, Algorithm::RS256, RSA1024_PRIV),
        Err(KeyError::WeakRsaKey { bits: 1024 })
    ));
    assert!(matches!(
        SigningKey::from_private_pem(None, Algorithm::ES256, EC384_PRIV),
        Err(KeyError::AlgorithmKeyMismatch { .. })
    ));
    assert!(SigningKey::from_private_pem(None, Algorithm::EdDSA, RS_PRIV).is_err());
    assert!(matches!(
        SigningKey::from_private_pem(None, Algorithm::HS256, HS256),
        Err(KeyError::AlgorithmKeyMismatch { .. })
    ));
    let key = SigningKey::from_private_pem(Some(kid("e")), Algorithm::ES256, EC256_PRIV).unwrap();
    assert_eq!((key.alg(), key.kid()), (Algorithm::ES256, Some(&kid("e"))));
}

#[test]
fn login_tokens_validate_at_gateway_with_family() {
    let mut service = hs256_service();
    let pair = service
        .login(t(0), &alice(), perms(&["chat:write"]))
        .unwrap();
    let claims = gateway()
        .validate(pair.access.token.as_bytes(), t(1), TokenType::Access)
        .unwrap();
    assert_eq!(claims.family(), Some(&pair.family));
    assert!(claims.permissions().allows("chat:write"));
    assert_eq!(pair.access.exp, t(15 * 60));
    assert_eq!(pair.refresh.exp, t(7 * 86_400));
    assert_eq!(service.family_count(), 1);
}

#[test]
fn refresh_rotates_within_family_and_keeps_claims() {
    let mut service = hs256_service();
    let first = service
        .login(t(0), &alice(), perms(&["chat:write"]))
        .unwrap();
    let second = service
        .refresh(t(60), first.refresh.token.as_bytes())
        .unwrap();
    assert_eq!(second.family, first.family);
    assert_ne!(second.refresh.jti, first.refresh.jti);
    let claims = gateway()
        .validate(second.access.token.as_bytes(), t(61), TokenType::Access)
        .unwrap();
    assert_eq!(claims.sub(), &alice());
    assert!(claims.permissions().allows("chat:write"));
    assert_eq!(claims.iat(), t(60));
}

#[test]
fn refresh_reused_token_revokes_whole_family_at_gateway() {
    let mut service = hs256_service();
    let mut gw = gateway();
    let mut cursor = 0;
    let first = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    let second = service
        .refresh(t(10), first.refresh.token.as_bytes())
        .unwrap();
    // Same token again (the "concurrent" refresh, in sans-IO order): exactly one wins.
    let reuse = service.refresh(t(11), first.refresh.token.as_bytes());
    assert!(
        matches!(reuse, Err(AuthError::Refresh(RefreshError::Reused { .. }))),
        "{reuse:?}"
    );
    pull_feed(&mut gw, &service, &mut cursor);
    assert_eq!(cursor, 4);
    for access in [&first.access, &second.access] {
        let err = gw
            .validate(access.token.as_bytes(), t(12), TokenType::Access)
            .unwrap_err();
        assert_eq!(err.code(), "revoked");
    }
    let again = service.refresh(t(13), second.refresh.token.as_bytes());
    assert!(
        matches!(again, Err(AuthError::InvalidRefresh(ref e)) if e.code() == "revoked"),
        "{again:?}"
    );
}

#[test]
fn refresh_with_access_token_rejected_as_wrong_type() {
    let mut service = hs256_service();
    let pair = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    let r = service.refresh(t(1), pair.access.token.as_bytes());
    assert!(
        matches!(r, Err(AuthError::InvalidRefresh(ref e)) if e.code() == "wrong_token_type"),
        "{r:?}"
    );
}

#[test]
fn refresh_token_without_family_rejected() {
    let mut service = hs256_service();
    let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, HS256).unwrap();
    let mut req = access_request(3600);
    req.token_type = TokenType::Refresh;
    let orphan = Issuer::new(key, TokenRules::default())
        .mint(t(0), &req)
        .unwrap();
    let r = service.refresh(t(1), orphan.token.as_bytes());
    assert!(matches!(r, Err(AuthError::MissingFamily)), "{r:?}");
    req.family = Some(gauntlet_core::FamilyId::parse("fam-404").unwrap());
    let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, HS256).unwrap();
    let stranger = Issuer::new(key, TokenRules::default())
        .mint(t(0), &req)
        .unwrap();
    let r = service.refresh(t(1), stranger.token.as_bytes());
    assert!(
        matches!(r, Err(AuthError::Refresh(RefreshError::UnknownFamily))),
        "{r:?}"
    );
}

#[test]
fn logout_everywhere_revokes_earlier_tokens_only() {
    let mut service = hs256_service();
    let mut gw = gateway();
    let mut cursor = 0;
    let before = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    service.logout_everywhere(t(100), &alice());
    pull_feed(&mut gw, &service, &mut cursor);
    // The cut-off is the start of the next whole second (AUTH-REVOKE-NOT-BEFORE).
    assert_eq!(
        service.feed_since(0),
        &[(
            t(100),
            Revocation::User {
                user: alice(),
                not_before: t(101)
            }
        )]
    );
    let err = gw
        .validate(before.access.token.as_bytes(), t(101), TokenType::Access)
        .unwrap_err();
    assert_eq!(err.code(), "revoked");
    let r = service.refresh(t(101), before.refresh.token.as_bytes());
    assert!(matches!(r, Err(AuthError::InvalidRefresh(ref e)) if e.code() == "revoked"));
    let after = service
        .login(t(102), &alice(), Permissions::empty())
        .unwrap();
    assert!(
        gw.validate(after.access.token.as_bytes(), t(103), TokenType::Access)
            .is_ok()
    );
}

#[test]
fn revoke_publishes_jti_and_prune_drops_it_after_exp_and_leeway() {
    let mut service = hs256_service();
    let pair = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    service.revoke(t(1), &pair.access.jti, pair.access.exp);
    assert_eq!(service.feed_since(0).len(), 1);
    assert_eq!(service.feed_since(1), &[]);
    service.prune(pair.access.exp.saturating_add(Duration::from_secs(29)));
    assert_eq!(service.feed_since(0).len(), 1);
    service.prune(pair.access.exp.saturating_add(Duration::from_secs(30)));
    assert_eq!(service.feed_since(0), &[]);
    assert_eq!(service.feed_end(), 1);
}

#[test]
fn rotate_key_keeps_previous_and_removes_the_one_before() {
    let mut service = hs256_service();
    let old = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    let k2 = SigningKey::from_private_pem(Some(kid("k2")), Algorithm::ES256, EC256_PRIV).unwrap();
    let rotation = service
        .rotate_key(k2, &VerifyKey::PublicPem(EC256_PUB.to_vec()))
        .unwrap();
    assert_eq!(
        rotation,
        KeyRotation {
            current: kid("k2"),
            previous: kid("k1"),
            retired: None
        }
    );
    // A k1 refresh token still works and the new pair is signed with k2.
    let mid = service
        .refresh(t(10), old.refresh.token.as_bytes())
        .unwrap();
    assert_eq!(decode_part(&mid.access.token, 0)["kid"], "k2");
    let k3 = SigningKey::from_private_pem(Some(kid("k3")), Algorithm::EdDSA, ED_PRIV).unwrap();
    let rotation = service
        .rotate_key(k3, &VerifyKey::PublicPem(ED_PUB.to_vec()))
        .unwrap();
    assert_eq!(rotation.retired, Some(kid("k1")));
    // The k2 token still rotates; k1 is gone from the ring (current + previous).
    let login_k3 = service
        .refresh(t(20), mid.refresh.token.as_bytes())
        .unwrap();
    assert_eq!(decode_part(&login_k3.access.token, 0)["kid"], "k3");
    let ring = service.validator().ring();
    assert_eq!(ring.len(), 2);
    assert!(!ring.contains(&kid("k1")));
    let mut check = Validator::new(ring.clone(), TokenRules::default());
    let err = check
        .validate(old.access.token.as_bytes(), t(21), TokenType::Access)
        .unwrap_err();
    assert_eq!(err.code(), "unknown_key");
}

/// Regression: retired keys were never removed, so rotation 64 failed for good.
#[test]
fn rotate_key_far_past_the_ring_size_keeps_succeeding() {
    let mut service = hs256_service();
    for n in 2..200 {
        let secret = format!("rotation-secret-{n:04}-0123456789abcdefghij");
        let key = SigningKey::hmac(
            Some(kid(&format!("k{n}"))),
            Algorithm::HS256,
            secret.as_bytes(),
        )
        .unwrap();
        let rotation = service.rotate_key(key, &VerifyKey::Hmac(secret.into_bytes()));
        assert!(rotation.is_ok(), "rotation {n}: {rotation:?}");
        assert!(service.validator().ring().len() <= 2, "rotation {n}");
    }
    let fresh = service.login(t(0), &alice(), Permissions::empty()).unwrap();
    assert_eq!(decode_part(&fresh.access.token, 0)["kid"], "k199");
    assert!(
        service
            .refresh(t(1), fresh.refresh.token.as_bytes())
            .is_ok()
    );
}

/// Regression: `iat` is whole seconds, so a logout-everywhere within a second must
/// revoke the tokens minted earlier in that second and spare the ones minted after it.
#[test]
fn logout_everywhere_same_second_revokes_before_and_spares_after() {
    let ms = |secs: u64, ms: u64| t(secs).saturating_add(Duration::from_millis(ms));
    let mut service = hs256_service();
    let mut gw = gateway();
    let mut cursor = 0;
    // Minted at 100.000 exactly and at 100.200, then a logout at 100.000 and 100.500.
    let at_start = service
        .login(ms(100, 0), &alice(), Permissions::empty())
        .unwrap();
    let before = service
        .login(ms(100, 200), &alice(), Permissions::empty())
        .unwrap();
    service.logout_everywhere(ms(100, 500), &alice());
    let after = service
        .login(ms(100, 700), &alice(), Permissions::empty())
        .unwrap();
    pull_feed(&mut gw, &service, &mut cursor);
    for old in [&at_start, &before] {
        let err = gw
            .validate(old.access.token.as_bytes(), ms(100, 800), TokenType::Access)
            .unwrap_err();
        assert_eq!(err.code(), "revoked");
    }
    assert!(
        gw.validate(
            after.access.token.as_bytes(),
            ms(100, 800),
            TokenType::Access
        )
        .is_ok()
    );
    assert!(
        service
            .refresh(ms(100, 900), after.refresh.token.as_bytes())
            .is_ok()
    );
    // A second logout in the same second also revokes the token minted between the two
    // (its iat is already the next second).
    service.logout_everywhere(ms(100, 900), &alice());
    pull_feed(&mut gw, &service, &mut cursor);
    assert_eq!(
        gw.validate(
            after.access.token.as_bytes(),
            ms(100, 950),
            TokenType::Access
        )
        .map_err(|e| e.code()),
        Err("revoked")
    );
    let last = service
        .login(ms(100, 990), &alice(), Permissions::empty())
        .unwrap();
    assert!(
        gw.validate(
            last.access.token.as_bytes(),
            ms(100, 995),
            TokenType::Access
        )
        .is_ok()
    );
    // A logout at a whole second revokes the tokens minted in that very second too.
    let mut service = hs256_service();
    let mut gw = gateway();
    let mut cursor = 0;
    let same = service
        .login(t(200), &alice(), Permissions::empty())
        .unwrap();
    service.logout_everywhere(t(200), &alice());
    pull_feed(&mut gw, &service, &mut cursor);
    assert_eq!(
        gw.validate(same.access.token.as_bytes(), t(201), TokenType::Access)
            .map_err(|e| e.code()),
        Err("revoked")
    );
}

#[test]
fn rotate_key_without_kid_refused() {
    let mut service = hs256_service();
    let new = SigningKey::hmac(None, Algorithm::HS256, HS384).unwrap();
    let r = service.rotate_key(new, &VerifyKey::Hmac(HS384.to_vec()));
    assert!(matches!(r, Err(AuthError::RotationNeedsKid)), "{r:?}");
}

fn oauth_authorize(service: &mut AuthService, now: Instant) -> String {
    let user = alice();
    let permissions = perms(&["chat:write"]);
    let challenge = s256_challenge(VERIFIER);
    service
        .authorize(
            now,
            &AuthorizeRequest {
                user: &user,
                permissions: &permissions,
                client_id: "web",
                redirect_uri: "https://app.example/cb",
                code_challenge: &challenge,
                method: "S256",
                state: "csrf-1",
            },
        )
        .unwrap()
        .code
}

fn oauth_callback<'a>(code: &'a str) -> CallbackRequest<'a> {
    CallbackRequest {
        code,
        state: "csrf-1",
        code_verifier: VERIFIER,
        redirect_uri: "https://app.example/cb",
        client_id: "web",
    }
}

#[test]
fn oauth_callback_returns_tokens_in_body_that_validate() {
    let mut service = hs256_service();
    let code = oauth_authorize(&mut service, t(0));
    let response: TokenResponse = service.callback(t(5), &oauth_callback(&code)).unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, 15 * 60);
    let claims = gateway()
        .validate(response.access_token.as_bytes(), t(6), TokenType::Access)
        .unwrap();
    assert!(claims.permissions().allows("chat:write"));
    let body = serde_json::to_value(&response).unwrap();
    assert_eq!(body["access_token"], response.access_token.as_str());
    assert!(
        service
            .refresh(t(7), response.refresh_token.as_bytes())
            .is_ok()
    );
}

#[test]
fn oauth_replayed_code_revokes_tokens_minted_from_it() {
    let mut service = hs256_service();
    let mut gw = gateway();
    let mut cursor = 0;
    let code = oauth_authorize(&mut service, t(0));
    let response = service.callback(t(5), &oauth_callback(&code)).unwrap();
    let replay = service.callback(t(6), &oauth_callback(&code));
    assert!(
        matches!(replay, Err(AuthError::OAuth(OAuthError::CodeReplayed { ref revoke, .. })) if revoke.len() == 2),
        "{replay:?}"
    );
    pull_feed(&mut gw, &service, &mut cursor);
    let err = gw
        .validate(response.access_token.as_bytes(), t(7), TokenType::Access)
        .unwrap_err();
    assert_eq!(err.code(), "revoked");
    let r = service.refresh(t(7), response.refresh_token.as_bytes());
    assert!(matches!(r, Err(AuthError::InvalidRefresh(ref e)) if e.code() == "revoked"));
}

#[test]
fn oauth_replay_of_a_code_whose_login_failed_revokes_nothing() {
    // The code is redeemed, then minting its tokens fails (their expiry would not fit a
    // NumericDate): no token and no family were recorded for it, so its replay has nothing
    // to revoke.
    let mut service = hs256_service();
    let last = u64::MAX / 1_000_000_000;
    let refresh_ttl = TokenRules::default()
        .lifetime_for(TokenType::Refresh)
        .as_secs();
    let at = Instant::from_unix_secs(last - refresh_ttl + 1);
    let code = oauth_authorize(&mut service, at);
    let failed = service.callback(at, &oauth_callback(&code));
    assert!(
        matches!(failed, Err(AuthError::Issue(IssueError::ExpiryOutOfRange))),
        "{failed:?}"
    );
    assert_eq!(service.family_count(), 0);
    let replay = service.callback(at, &oauth_callback(&code)).unwrap_err();
    assert!(
        matches!(
            replay,
            AuthError::OAuth(OAuthError::CodeReplayed { ref revoke, family: None }) if revoke.is_empty()
        ),
        "{replay:?}"
    );
    assert_eq!(replay.to_string(), "oauth request failed");
    assert_eq!(service.feed_end(), 0, "nothing was revoked");
}

#[test]
fn oauth_without_configuration_disabled() {
    let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, HS256).unwrap();
    let rules = TokenRules::default();
    let ring = ring_with("k1", Algorithm::HS256, &VerifyKey::Hmac(HS256.to_vec()));
    let mut service = AuthService::new(Issuer::new(key, rules.clone()), ring, rules, Plants::NONE);
    let r = service.callback(t(0), &oauth_callback("code"));
    assert!(matches!(r, Err(AuthError::OAuthDisabled)), "{r:?}");
}

#[test]
fn second_logout_in_the_same_second_without_a_mint_between_keeps_the_cutoff() {
    let mut service = hs256_service();
    let at = t(300).saturating_add(Duration::from_millis(100));
    service.logout_everywhere(at, &alice());
    service.logout_everywhere(at.saturating_add(Duration::from_millis(400)), &alice());
    let cutoffs: Vec<Instant> = service
        .feed_since(0)
        .iter()
        .filter_map(|(_, r)| match r {
            Revocation::User { not_before, .. } => Some(*not_before),
            Revocation::Jti { .. } => None,
        })
        .collect();
    // Nothing was minted with the first cut-off as iat, so the second logout keeps it.
    assert_eq!(cutoffs, [t(301), t(301)]);
}

#[test]
fn refresh_whose_successor_would_expire_out_of_range_fails_and_leaves_the_family_unrotated() {
    // The last second whose expiry still fits a NumericDate in nanoseconds.
    let last = u64::MAX / 1_000_000_000;
    let ttl = TokenRules::default()
        .lifetime_for(TokenType::Refresh)
        .as_secs();
    let mut service = hs256_service();
    let pair = service
        .login(
            Instant::from_unix_secs(last - ttl),
            &alice(),
            Permissions::empty(),
        )
        .unwrap();
    assert_eq!(pair.refresh.exp, Instant::from_unix_secs(last));
    // One second later the presented token is valid, but its successor would expire past
    // the range. The family is not rotated: the same token is still its current one, so
    // presenting it again is the same refusal, not a reuse that would revoke the family.
    let later = Instant::from_unix_secs(last - ttl + 1);
    for _ in 0..2 {
        let err = service
            .refresh(later, pair.refresh.token.as_bytes())
            .unwrap_err();
        assert!(
            matches!(err, AuthError::Issue(IssueError::ExpiryOutOfRange)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "minting failed");
    }
    assert_eq!(service.family_count(), 1);
    assert_eq!(service.feed_end(), 0, "nothing was revoked");
}
