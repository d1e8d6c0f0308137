//! Tests of `validate.rs`, kept beside it because they outweigh the code.

use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

use super::*;
use crate::token::Algorithm;
use crate::token::error::MalformedReason;
use crate::token::testkit::*;

fn check(token: &str) -> Result<Claims, TokenError> {
    validate(
        token.as_bytes(),
        now(),
        &ring(),
        &TokenRules::default(),
        TokenType::Access,
    )
}

fn code(token: &str) -> &'static str {
    match check(token) {
        Ok(_) => "accepted",
        Err(e) => e.code(),
    }
}

fn at(token: &str, secs: u64) -> Result<Claims, TokenError> {
    validate(
        token.as_bytes(),
        Instant::from_unix_secs(secs),
        &ring(),
        &TokenRules::default(),
        TokenType::Access,
    )
}

#[test]
fn validate_valid_hs256_returns_claims() {
    let c = check(&hs(&base_claims())).unwrap();
    assert_eq!(c.sub().as_str(), "user-1");
    assert_eq!(c.jti().as_str(), "jti-1");
    assert_eq!(c.token_type(), TokenType::Access);
    assert_eq!(c.exp(), Instant::from_unix_secs(NOW + 600));
    assert_eq!(c.iat(), Instant::from_unix_secs(NOW - 60));
    assert_eq!(c.nbf(), None);
    assert_eq!(c.email(), Some("u1@example.com"));
    assert_eq!(c.kid().map(|k| k.as_str()), Some("hs"));
    assert!(c.permissions().allows("threads:read"));
    assert!(c.permissions().allows("runs:cancel"));
    assert!(!c.permissions().allows("threads:write"));
    assert_eq!(c.family(), None);
    assert_eq!(c.svc_id(), None);
}

#[test]
fn validate_asymmetric_algorithms_accepted() {
    let payload = base_claims().to_string();
    let cases = [
        (
            "rs",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RS256_PRIV).unwrap(),
        ),
        (
            "ec",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC256_PRIV).unwrap(),
        ),
        (
            "ed",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIV).unwrap(),
        ),
    ];
    for (kid, alg, key) in cases {
        let header = format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#);
        let token = sign_raw(&header, &payload, alg, &key);
        let claims = check(&token);
        assert_eq!(
            claims.map(|c| c.kid().map(|k| k.as_str().to_string())),
            Ok(Some(kid.to_string())),
            "{alg}"
        );
    }
}

#[test]
fn validate_alg_none_any_case_rejected_even_with_signature() {
    let payload = base_claims().to_string();
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{none}","kid":"hs"}}"#);
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
        assert_eq!(code(&unsigned), "algorithm_none", "{none} unsigned");
        let signed = sign_raw(&header, &payload, Algorithm::HS256, &hs_key());
        assert_eq!(code(&signed), "algorithm_none", "{none} signed");
    }
}

#[test]
fn validate_hs256_with_rsa_public_pem_as_secret_algorithm_mismatch() {
    let key = EncodingKey::from_secret(RS256_PUB).unwrap();
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"rs"}"#,
        &base_claims().to_string(),
        Algorithm::HS256,
        &key,
    );
    assert_eq!(check(&token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn validate_header_alg_differs_from_key_algorithm_mismatch() {
    let token = sign_raw(
        r#"{"alg":"HS384","kid":"hs"}"#,
        &base_claims().to_string(),
        Algorithm::HS384,
        &hs_key(),
    );
    assert_eq!(check(&token), Err(TokenError::AlgorithmMismatch));
}

#[test]
fn validate_kid_selection_errors_are_typed() {
    let payload = base_claims().to_string();
    let sign = |h: &str| sign_raw(h, &payload, Algorithm::HS256, &hs_key());
    assert_eq!(
        code(&sign(r#"{"alg":"HS256","kid":"nope"}"#)),
        "unknown_key"
    );
    assert_eq!(
        code(&sign(r#"{"alg":"HS256","kid":"../../dev/null"}"#)),
        "unknown_key"
    );
    assert_eq!(code(&sign(r#"{"alg":"HS256","kid":""}"#)), "unknown_key");
    // Four keys in the ring: no kid means no key can be chosen.
    assert_eq!(code(&sign(r#"{"alg":"HS256"}"#)), "unknown_key");
    assert_eq!(
        check(&sign(r#"{"alg":"HS256","kid":7}"#)),
        Err(TokenError::malformed(
            TokenPart::Header,
            MalformedReason::BadKid
        ))
    );
}

#[test]
fn validate_no_kid_single_key_ring_uses_that_key() {
    let mut r = KeyRing::new();
    r.add_hmac(None, Algorithm::HS256, HS256_SECRET).unwrap();
    let token = sign_raw(
        r#"{"alg":"HS256"}"#,
        &base_claims().to_string(),
        Algorithm::HS256,
        &hs_key(),
    );
    let c = validate(
        token.as_bytes(),
        now(),
        &r,
        &TokenRules::default(),
        TokenType::Access,
    );
    assert_eq!(c.map(|c| c.kid().cloned()), Ok(None));
}

#[test]
fn validate_retired_key_rejected() {
    let mut r = ring();
    let token = hs(&base_claims());
    let rules = TokenRules::default();
    assert!(validate(token.as_bytes(), now(), &r, &rules, TokenType::Access).is_ok());
    r.retire(&kid("hs")).unwrap();
    assert_eq!(
        validate(token.as_bytes(), now(), &r, &rules, TokenType::Access),
        Err(TokenError::KeyRetired)
    );
}

#[test]
fn validate_forbidden_and_crit_headers_rejected() {
    let payload = base_claims().to_string();
    for name in ["jku", "x5u", "jwk", "x5c"] {
        let header = format!(r#"{{"alg":"HS256","kid":"hs","{name}":"https://evil"}}"#);
        let token = sign_raw(&header, &payload, Algorithm::HS256, &hs_key());
        assert_eq!(check(&token), Err(TokenError::ForbiddenHeader { name }));
    }
    let header = r#"{"alg":"HS256","kid":"hs","crit":["exp"],"exp":1}"#;
    let token = sign_raw(header, &payload, Algorithm::HS256, &hs_key());
    assert_eq!(check(&token), Err(TokenError::CriticalHeader));
}

#[test]
fn validate_structure_and_encoding_errors_malformed() {
    let good = hs(&base_claims());
    let mut parts = good.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let m = |part, reason| Err(TokenError::malformed(part, reason));
    assert_eq!(
        check(&format!("{h}.{p}")),
        m(TokenPart::Structure, MalformedReason::PartCount)
    );
    assert_eq!(
        check(&format!("{h}.{p}.{s}.{s}")),
        m(TokenPart::Structure, MalformedReason::PartCount)
    );
    assert_eq!(
        check(&format!("{h}=.{p}.{s}")),
        m(TokenPart::Header, MalformedReason::Base64)
    );
    assert_eq!(
        check(&format!("{h}.{p}.{s}=")),
        m(TokenPart::Signature, MalformedReason::Base64)
    );
    let slashed = p.replace('_', "/").replace('-', "+");
    if slashed != p {
        assert_eq!(
            check(&format!("{h}.{slashed}.{s}")),
            m(TokenPart::Payload, MalformedReason::Base64)
        );
    }
    assert_eq!(
        check(""),
        m(TokenPart::Structure, MalformedReason::PartCount)
    );
    assert_eq!(
        check(".."),
        m(TokenPart::Header, MalformedReason::NotObject)
    );
}

#[test]
fn validate_non_canonical_trailing_bits_malformed() {
    // "{}" encodes to "e30"; "e31" decodes to the same bytes with non-zero trailing bits.
    let token = format!("e31.{}.AAAA", b64(b"{}"));
    assert_eq!(
        check(&token),
        Err(TokenError::malformed(
            TokenPart::Header,
            MalformedReason::Base64
        ))
    );
}

#[test]
fn validate_too_long_rejected_before_decoding() {
    let token = "!".repeat(4097);
    assert_eq!(
        check(&token),
        Err(TokenError::TooLong {
            len: 4097,
            max: 4096
        })
    );
    let max = "!".repeat(4096);
    assert_eq!(check(&max).map_err(|e| e.code()), Err("malformed"));
}

#[test]
fn validate_duplicate_keys_anywhere_malformed() {
    let dup = |part| Err(TokenError::malformed(part, MalformedReason::DuplicateKey));
    let payload = base_claims().to_string();
    let sign = |h: &str, p: &str| sign_raw(h, p, Algorithm::HS256, &hs_key());
    assert_eq!(
        check(&sign(r#"{"alg":"HS256","kid":"hs","kid":"hs"}"#, &payload)),
        dup(TokenPart::Header)
    );
    assert_eq!(
        check(&sign(
            r#"{"alg":"HS256","kid":"hs","typ":"a","typ":"b"}"#,
            &payload
        )),
        dup(TokenPart::Header)
    );
    assert_eq!(
        check(&sign(
            r#"{"alg":"HS256","\u006bid":"x","kid":"hs"}"#,
            &payload
        )),
        dup(TokenPart::Header)
    );
    let p2 = payload.replacen('{', r#"{"sub":"admin","#, 1);
    assert_eq!(
        check(&sign(r#"{"alg":"HS256","kid":"hs"}"#, &p2)),
        dup(TokenPart::Payload)
    );
    let p3 = payload.replacen('{', r#"{"x":{"a":1,"a":2},"#, 1);
    assert_eq!(
        check(&sign(r#"{"alg":"HS256","kid":"hs"}"#, &p3)),
        dup(TokenPart::Payload)
    );
    let p4 = payload.replacen('{', r#"{"x":[{"a":1,"b":{"c":1,"c":1}}],"#, 1);
    assert_eq!(
        check(&sign(r#"{"alg":"HS256","kid":"hs"}"#, &p4)),
        dup(TokenPart::Payload)
    );
    let ok = payload.replacen('{', r#"{"x":[{"a":1},{"a":2}],"y":{"a":1},"#, 1);
    assert_eq!(
        code(&sign(r#"{"alg":"HS256","kid":"hs"}"#, &ok)),
        "accepted"
    );
}

#[test]
fn validate_duplicate_among_many_unknown_keys_malformed() {
    let h = r#"{"alg":"HS256","kid":"hs"}"#;
    let sign = |p: &str| sign_raw(h, p, Algorithm::HS256, &hs_key());
    let extra: String = (0..20).map(|i| format!(r#""x{i}":{i},"#)).collect();
    let distinct = base_claims()
        .to_string()
        .replacen('{', &format!("{{{extra}"), 1);
    assert_eq!(code(&sign(&distinct)), "accepted");
    for dup in ["x0", "x7", "x8", "x19"] {
        let p = distinct.replacen('{', &format!(r#"{{"{dup}":0,"#), 1);
        assert_eq!(
            check(&sign(&p)),
            Err(TokenError::malformed(
                TokenPart::Payload,
                MalformedReason::DuplicateKey
            )),
            "{dup}"
        );
    }
}

#[test]
fn validate_payload_not_utf8_keeps_first_error() {
    let sign = |payload: &[u8]| {
        let input = format!("{}.{}", b64(br#"{"alg":"HS256","kid":"hs"}"#), b64(payload));
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &hs_key(), jsonwebtoken::Algorithm::HS256)
                .unwrap();
        format!("{input}.{sig}")
    };
    let m = |reason| Err(TokenError::malformed(TokenPart::Payload, reason));
    let valid = base_claims().to_string();
    let rest = &valid.as_bytes()[1..];
    // A lone continuation byte (0xBF) is not UTF-8; the duplicate before it still wins.
    let dup_then_bad = [br#"{"a":1,"a":2,"b":""#.as_slice(), b"\xBF\",", rest].concat();
    assert_eq!(
        check(&sign(&dup_then_bad)),
        m(MalformedReason::DuplicateKey)
    );
    let bad_first = [b"{\"b\":\"\xBF\",".as_slice(), &valid.as_bytes()[1..]].concat();
    assert_eq!(check(&sign(&bad_first)), m(MalformedReason::Json));
    let accepted = valid.replacen('{', "{\"b\":\"\u{e9}\",", 1);
    assert_eq!(code(&sign(accepted.as_bytes())), "accepted");
}

#[test]
fn validate_non_json_or_non_object_malformed() {
    let h = r#"{"alg":"HS256","kid":"hs"}"#;
    let sign = |p: &str| sign_raw(h, p, Algorithm::HS256, &hs_key());
    let m = |reason| Err(TokenError::malformed(TokenPart::Payload, reason));
    assert_eq!(check(&sign("not json")), m(MalformedReason::NotObject));
    assert_eq!(check(&sign("[1,2]")), m(MalformedReason::NotObject));
    assert_eq!(check(&sign(r#"{"sub":"a""#)), m(MalformedReason::Json));
    assert_eq!(check(&sign(r#"{"sub":"a"} x"#)), m(MalformedReason::Json));
}

#[test]
fn validate_tampered_parts_bad_signature() {
    let token = hs(&base_claims());
    let other = hs(&claims_with(&[("sub", json!("admin"))], &[]));
    let (h, rest) = token.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let p_other = other.split('.').nth(1).unwrap();
    assert_eq!(
        check(&format!("{h}.{p_other}.{s}")),
        Err(TokenError::BadSignature)
    );
    assert_eq!(check(&format!("{h}.{p}.")), Err(TokenError::BadSignature));
    let h2 = b64(br#"{"kid":"hs","alg":"HS256"}"#);
    assert_eq!(
        check(&format!("{h2}.{p}.{s}")),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn validate_missing_required_claims_named() {
    for claim in ["iss", "sub", "jti", "aud", "exp", "iat", "token_type"] {
        let token = hs(&claims_with(&[], &[claim]));
        assert_eq!(
            check(&token),
            Err(TokenError::MissingClaim { claim }),
            "{claim}"
        );
    }
}

#[test]
fn validate_numeric_dates_strictly_typed() {
    for claim in ["exp", "iat", "nbf"] {
        for bad in [
            json!("1800000600"),
            json!(1_800_000_000.5),
            json!(-1),
            Value::Null,
            json!(1e308),
            json!(true),
        ] {
            let token = hs(&claims_with(&[(claim, bad.clone())], &[]));
            assert_eq!(
                check(&token),
                Err(TokenError::InvalidClaim { claim }),
                "{claim}={bad}"
            );
        }
    }
    let integral_float = hs(&claims_with(&[("exp", json!(1_800_000_600.0))], &[]));
    assert_eq!(
        check(&integral_float).map(|c| c.exp()),
        Ok(Instant::from_unix_secs(NOW + 600))
    );
    let huge = hs(&claims_with(
        &[("exp", json!(MAX_NUMERIC_DATE_PLUS_ONE))],
        &[],
    ));
    assert_eq!(check(&huge), Err(TokenError::InvalidClaim { claim: "exp" }));
}

const MAX_NUMERIC_DATE_PLUS_ONE: u64 = u64::MAX / 1_000_000_000 + 1;

#[test]
fn validate_exp_leeway_edges() {
    let token = hs(&claims_with(
        &[("exp", json!(NOW)), ("iat", json!(NOW - 100))],
        &[],
    ));
    // Rejected when now >= exp + 30 s.
    assert!(at(&token, NOW + 29).is_ok());
    assert_eq!(at(&token, NOW + 30).map(|_| ()), Err(TokenError::Expired));
    let just_before = validate(
        token.as_bytes(),
        Instant::from_nanos((NOW + 30) * 1_000_000_000 - 1),
        &ring(),
        &TokenRules::default(),
        TokenType::Access,
    );
    assert!(just_before.is_ok());
}

#[test]
fn validate_nbf_leeway_edges() {
    let token = hs(&claims_with(&[("nbf", json!(NOW + 100))], &[]));
    // Rejected when now + 30 s < nbf.
    assert_eq!(
        at(&token, NOW + 69).map(|_| ()),
        Err(TokenError::NotYetValid)
    );
    assert_eq!(
        at(&token, NOW + 70).map(|c| c.nbf()),
        Ok(Some(Instant::from_unix_secs(NOW + 100)))
    );
}

#[test]
fn validate_iat_future_and_age_limits() {
    let future = hs(&claims_with(&[("iat", json!(NOW + 61))], &[]));
    assert_eq!(check(&future).map(|_| ()), Err(TokenError::IssuedInFuture));
    let edge = hs(&claims_with(&[("iat", json!(NOW + 60))], &[]));
    assert!(check(&edge).is_ok());
    // Access lifetime in prod is 900 s; + 30 s leeway.
    let old = hs(&claims_with(
        &[("iat", json!(NOW - 931)), ("exp", json!(NOW + 600))],
        &[],
    ));
    assert_eq!(check(&old).map(|_| ()), Err(TokenError::TooOld));
    let oldest_ok = hs(&claims_with(
        &[("iat", json!(NOW - 930)), ("exp", json!(NOW + 600))],
        &[],
    ));
    assert!(check(&oldest_ok).is_ok());
}

#[test]
fn validate_issuer_and_audience_rules() {
    let wrong_iss = hs(&claims_with(&[("iss", json!("evil"))], &[]));
    assert_eq!(code(&wrong_iss), "wrong_issuer");
    let iss_num = hs(&claims_with(&[("iss", json!(1))], &[]));
    assert_eq!(
        check(&iss_num).map(|_| ()),
        Err(TokenError::InvalidClaim { claim: "iss" })
    );
    let cases = [
        (json!("gauntlet-services"), "wrong_audience"),
        (json!(["a", "gauntlet-gateway"]), "accepted"),
        (json!(["a", "b"]), "wrong_audience"),
        (json!([]), "wrong_audience"),
        (json!(["gauntlet-gateway", 3]), "invalid_claim"),
        (json!({"a": 1}), "invalid_claim"),
    ];
    for (aud, expected) in cases {
        let token = hs(&claims_with(&[("aud", aud.clone())], &[]));
        assert_eq!(code(&token), expected, "{aud}");
    }
}

#[test]
fn validate_token_type_rules() {
    let refresh = hs(&claims_with(&[("token_type", json!("refresh"))], &[]));
    assert_eq!(code(&refresh), "wrong_token_type");
    let as_refresh = validate(
        refresh.as_bytes(),
        now(),
        &ring(),
        &TokenRules::default(),
        TokenType::Refresh,
    );
    assert_eq!(as_refresh.map(|c| c.token_type()), Ok(TokenType::Refresh));
    let unknown = hs(&claims_with(&[("token_type", json!("root"))], &[]));
    assert_eq!(code(&unknown), "invalid_claim");
}

#[test]
fn validate_service_token_requires_svc_id() {
    let rules = TokenRules::default();
    let svc = |changes: &[(&str, Value)]| {
        let mut c = claims_with(
            &[
                ("token_type", json!("service")),
                ("aud", json!("gauntlet-services")),
            ],
            &[],
        );
        for (k, v) in changes {
            c[*k] = v.clone();
        }
        validate(
            hs(&c).as_bytes(),
            now(),
            &ring(),
            &rules,
            TokenType::Service,
        )
    };
    assert_eq!(
        svc(&[]).map(|_| ()),
        Err(TokenError::MissingClaim { claim: "svc_id" })
    );
    assert_eq!(
        svc(&[("svc_id", json!("billing"))]).map(|c| c.svc_id().map(str::to_string)),
        Ok(Some("billing".to_string()))
    );
    // 1..=128 characters (not bytes), no control characters.
    for bad in [
        json!(""),
        json!("s".repeat(129)),
        json!("svc\u{7}"),
        json!(7),
    ] {
        assert_eq!(
            svc(&[("svc_id", bad.clone())]).map(|_| ()),
            Err(TokenError::InvalidClaim { claim: "svc_id" }),
            "{bad}"
        );
    }
    assert_eq!(
        svc(&[("svc_id", json!("é".repeat(128)))]).map(|c| c.svc_id().map(str::len)),
        Ok(Some(256))
    );
}

#[test]
fn validate_claim_lengths_and_permissions() {
    let long = "a".repeat(129);
    assert_eq!(
        code(&hs(&claims_with(&[("sub", json!(long))], &[]))),
        "invalid_claim"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("jti", json!(""))], &[]))),
        "invalid_claim"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("sub", json!("a".repeat(128)))], &[]))),
        "accepted"
    );
    // 254 bytes is the longest email, counted in bytes: 127 two-byte characters fit.
    for (email, expected) in [
        (format!("{}@x.io", "e".repeat(250)), "invalid_claim"),
        (format!("{}@x.io", "e".repeat(249)), "accepted"),
        ("é".repeat(127), "accepted"),
        ("é".repeat(128), "invalid_claim"),
    ] {
        let token = hs(&claims_with(&[("email", json!(email))], &[]));
        assert_eq!(code(&token), expected, "{} bytes", email.len());
    }
    let fifty: Vec<String> = (0..50).map(|i| format!("p:{i}")).collect();
    assert_eq!(
        check(&hs(&claims_with(&[("permissions", json!(fifty))], &[])))
            .map(|c| c.permissions().len()),
        Ok(50)
    );
    let fifty_one: Vec<String> = (0..51).map(|i| format!("p:{i}")).collect();
    assert_eq!(
        code(&hs(&claims_with(&[("permissions", json!(fifty_one))], &[]))),
        "bad_permissions"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("permissions", json!(["a b"]))], &[]))),
        "bad_permissions"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("permissions", json!("admin"))], &[]))),
        "bad_permissions"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("permissions", json!([1]))], &[]))),
        "bad_permissions"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("fam", json!("f-1"))], &[]))),
        "accepted"
    );
    assert_eq!(
        code(&hs(&claims_with(&[("fam", json!(1))], &[]))),
        "invalid_claim"
    );
}

#[test]
fn verify_signature_returns_payload_without_claim_checks() {
    let expired = hs(&claims_with(
        &[("exp", json!(1)), ("iss", json!("other"))],
        &[],
    ));
    let payload = verify_signature(expired.as_bytes(), &ring(), &TokenRules::default()).unwrap();
    assert_eq!(payload["iss"], json!("other"));
    assert_eq!(payload["exp"], json!(1));
    let forged = sign_raw(
        r#"{"alg":"HS256","kid":"hs"}"#,
        &base_claims().to_string(),
        Algorithm::HS256,
        &EncodingKey::from_secret(&[7u8; 32]).unwrap(),
    );
    assert_eq!(
        verify_signature(forged.as_bytes(), &ring(), &TokenRules::default()),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn validate_jsonwebtoken_encoded_header_uses_known_header_same_rules() {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("hs".to_string());
    let token = jsonwebtoken::encode(&header, &base_claims(), &hs_key()).unwrap();
    let segment = token.split('.').next().unwrap();
    let r = ring();
    assert_eq!(
        r.by_known_header(segment.as_bytes()).and_then(|k| k.kid()),
        Some(&kid("hs"))
    );
    assert_eq!(check(&token).map(|c| c.kid().cloned()), Ok(Some(kid("hs"))));
    // Same header, wrong secret: the shortcut skips parsing, never the signature.
    let forged = jsonwebtoken::encode(
        &header,
        &base_claims(),
        &EncodingKey::from_secret(&[9u8; 32]).unwrap(),
    )
    .unwrap();
    assert_eq!(check(&forged), Err(TokenError::BadSignature));
    let mut retired = ring();
    retired.retire(&kid("hs")).unwrap();
    let got = validate(
        token.as_bytes(),
        now(),
        &retired,
        &TokenRules::default(),
        TokenType::Access,
    );
    assert_eq!(got, Err(TokenError::KeyRetired));
}

#[test]
fn known_header_parses_to_its_own_key_for_every_algorithm() {
    for alg in Algorithm::ALL {
        let encoded = crate::token::header::known_header(&kid("k1"), alg).unwrap();
        let json =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &encoded)
                .unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v, json!({"typ": "JWT", "alg": alg.name(), "kid": "k1"}));
    }
}

#[cfg(feature = "planted-bugs")]
#[test]
fn validate_alg_from_header_plant_accepts_key_confusion() {
    use crate::plant::Plant;
    let key = EncodingKey::from_secret(RS256_PUB).unwrap();
    let token = sign_raw(
        r#"{"alg":"HS256","kid":"rs"}"#,
        &base_claims().to_string(),
        Algorithm::HS256,
        &key,
    );
    let rules = TokenRules::default();
    let planted = validate_with(
        token.as_bytes(),
        now(),
        &ring(),
        &rules,
        TokenType::Access,
        Plants::only(Plant::AlgFromHeader),
    );
    assert_eq!(
        planted.map(|c| c.sub().as_str().to_string()),
        Ok("user-1".to_string())
    );
    let clean = validate_with(
        token.as_bytes(),
        now(),
        &ring(),
        &rules,
        TokenType::Access,
        Plants::NONE,
    );
    assert_eq!(clean, Err(TokenError::AlgorithmMismatch));
    // The plant still verifies an honest token with its key's own algorithm, and a header
    // naming another public-key algorithm gets no key material at all.
    let planted = |token: &str| {
        validate_with(
            token.as_bytes(),
            now(),
            &ring(),
            &rules,
            TokenType::Access,
            Plants::only(Plant::AlgFromHeader),
        )
    };
    let honest = sign_raw(
        r#"{"alg":"RS256","kid":"rs"}"#,
        &base_claims().to_string(),
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RS256_PRIV).unwrap(),
    );
    assert_eq!(
        planted(&honest).map(|c| c.sub().as_str().to_string()),
        Ok("user-1".to_string())
    );
    let es_on_rsa = sign_raw(
        r#"{"alg":"ES256","kid":"rs"}"#,
        &base_claims().to_string(),
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(EC256_PRIV).unwrap(),
    );
    assert_eq!(planted(&es_on_rsa), Err(TokenError::BadSignature));
}
