//! Property tests of token validation: forgery by any single-byte change fails, no input
//! panics (raw bytes, or well-formed JWS around arbitrary JSON, signed or not), and the
//! caching `Validator` always agrees with the stateless `validate`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gauntlet_core::token::{Algorithm, KeyRing, TokenRules, TokenType, Validator, validate};
use gauntlet_core::{Instant, Kid};
use jsonwebtoken::EncodingKey;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const NOW: u64 = 1_800_000_000;
const HS256_SECRET: &[u8] = include_bytes!("../../corpora/tokens/keys/hs256.secret");
const EC256_PRIV: &[u8] = include_bytes!("../../corpora/tokens/keys/ec256.key.pem");
const EC256_PUB: &[u8] = include_bytes!("../../corpora/tokens/keys/ec256.pub.pem");
const ED_PRIV: &[u8] = include_bytes!("../../corpora/tokens/keys/ed25519.key.pem");
const ED_PUB: &[u8] = include_bytes!("../../corpora/tokens/keys/ed25519.pub.pem");

const TYPES: [TokenType; 3] = [TokenType::Access, TokenType::Refresh, TokenType::Service];

fn ring() -> KeyRing {
    let mut r = KeyRing::new();
    let kid = |s: &str| Some(Kid::parse(s).unwrap());
    r.add_hmac(kid("hs"), Algorithm::HS256, HS256_SECRET)
        .unwrap();
    r.add_public_pem(kid("ec"), Algorithm::ES256, EC256_PUB)
        .unwrap();
    r.add_public_pem(kid("ed"), Algorithm::EdDSA, ED_PUB)
        .unwrap();
    r
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign(kid: &str, header: &str, payload: &str) -> String {
    let (alg, key) = match kid {
        "ec" => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC256_PRIV).unwrap(),
        ),
        "ed" => (Algorithm::EdDSA, EncodingKey::from_ed_pem(ED_PRIV).unwrap()),
        _ => (
            Algorithm::HS256,
            EncodingKey::from_secret(HS256_SECRET).unwrap(),
        ),
    };
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg.to_jsonwebtoken()).unwrap();
    format!("{input}.{sig}")
}

fn header(kid: &str) -> String {
    let alg = match kid {
        "ec" => "ES256",
        "ed" => "EdDSA",
        _ => "HS256",
    };
    format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#)
}

/// Claims that are valid at `NOW` for `ty`.
fn claims(ty: TokenType, jti: &str, exp_offset: i64, iat_offset: i64) -> Value {
    let aud = if ty == TokenType::Service {
        "gauntlet-services"
    } else {
        "gauntlet-gateway"
    };
    let at = |off: i64| NOW.checked_add_signed(off).unwrap();
    let mut c = json!({
        "iss": "gauntlet-auth",
        "sub": "user-7",
        "jti": jti,
        "aud": [aud],
        "exp": at(exp_offset),
        "iat": at(iat_offset),
        "token_type": ty.to_string(),
        "permissions": ["threads:read"],
    });
    if ty == TokenType::Service {
        c["svc_id"] = json!("search");
    }
    c
}

/// A valid access token; `"hs-encode"` is minted by `jsonwebtoken::encode`, whose header
/// takes the ring's known-header shortcut.
fn valid_token(kid: &str) -> String {
    let payload = claims(TokenType::Access, "jti-p", 600, -60);
    if kid == "hs-encode" {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some("hs".into());
        let key = EncodingKey::from_secret(HS256_SECRET).unwrap();
        return jsonwebtoken::encode(&h, &payload, &key).unwrap();
    }
    sign(kid, &header(kid), &payload.to_string())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (NOW - 2000..NOW + 2000).prop_map(Value::from),
        "[a-z:*._-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "gauntlet-auth",
            "gauntlet-gateway",
            "gauntlet-services",
            "access",
            "refresh",
            "service",
            "HS256",
            "none",
            "hs",
            "ec",
            "ed",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((member_name(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn member_name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "iss",
        "sub",
        "jti",
        "aud",
        "exp",
        "nbf",
        "iat",
        "token_type",
        "permissions",
        "email",
        "svc_id",
        "fam",
        "alg",
        "kid",
        "typ",
        "crit",
        "jku",
        "x",
        "y",
    ])
    .prop_map(str::to_string)
}

/// A JSON object mixing claim/header names with arbitrary values.
fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((member_name(), json_value()), 0..12)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn single_byte_change_rejected(
        kid in prop::sample::select(vec!["hs", "hs-encode", "ec", "ed"]),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let token = valid_token(kid);
        let ring = ring();
        let rules = TokenRules::default();
        let now = Instant::from_unix_secs(NOW);
        prop_assert!(validate(token.as_bytes(), now, &ring, &rules, TokenType::Access).is_ok());
        let mut bytes = token.into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        prop_assert!(validate(&bytes, now, &ring, &rules, TokenType::Access).is_err());
    }

    #[test]
    fn arbitrary_bytes_rejected_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let result = validate(&bytes, Instant::from_unix_secs(NOW), &ring(), &TokenRules::default(), TokenType::Access);
        prop_assert!(result.is_err());
        if bytes.len() > 4096 {
            prop_assert_eq!(result.map_err(|e| e.code()), Err("too_long"));
        }
    }

    #[test]
    fn arbitrary_json_jws_never_panics(
        h in json_object(),
        p in json_object(),
        sig in prop::collection::vec(any::<u8>(), 0..80),
        ty in prop::sample::select(TYPES.to_vec()),
    ) {
        let token = format!("{}.{}.{}", b64(h.to_string().as_bytes()), b64(p.to_string().as_bytes()), b64(&sig));
        let now = Instant::from_unix_secs(NOW);
        // Random signature bytes never verify.
        prop_assert!(validate(token.as_bytes(), now, &ring(), &TokenRules::default(), ty).is_err());
    }

    #[test]
    fn arbitrary_signed_payload_accepted_only_when_rules_hold(
        p in json_object(),
        ty in prop::sample::select(TYPES.to_vec()),
    ) {
        let token = sign("hs", &header("hs"), &p.to_string());
        let rules = TokenRules::default();
        let now = Instant::from_unix_secs(NOW);
        if let Ok(c) = validate(token.as_bytes(), now, &ring(), &rules, ty) {
            prop_assert_eq!(c.token_type(), ty);
            prop_assert_eq!(&p["iss"], &json!("gauntlet-auth"));
            prop_assert!(now < c.exp().saturating_add(rules.leeway()));
            prop_assert_eq!(c.sub().as_str(), p["sub"].as_str().unwrap());
        }
    }

    #[test]
    fn validator_agrees_with_validate_on_miss_and_hit(
        kid in prop::sample::select(vec!["hs", "ec", "ed"]),
        token_ty in prop::sample::select(TYPES.to_vec()),
        expected in prop::sample::select(TYPES.to_vec()),
        exp_offset in -100i64..1200,
        iat_offset in -1300i64..100,
        later in 0u64..2000,
        corrupt in any::<bool>(),
    ) {
        let mut token = sign(kid, &header(kid), &claims(token_ty, "jti-v", exp_offset, iat_offset).to_string());
        if corrupt {
            token.push('A');
        }
        let rules = TokenRules::default();
        let ring = ring();
        let mut v = Validator::new(ring.clone(), rules.clone());
        let now = Instant::from_unix_secs(NOW);
        let then = Instant::from_unix_secs(NOW + later);
        let fresh = validate(token.as_bytes(), now, &ring, &rules, expected);
        prop_assert_eq!(&v.validate(token.as_bytes(), now, expected), &fresh);
        prop_assert_eq!(&v.validate(token.as_bytes(), now, expected), &fresh);
        let fresh_then = validate(token.as_bytes(), then, &ring, &rules, expected);
        prop_assert_eq!(&v.validate(token.as_bytes(), then, expected), &fresh_then);
        let hits = v.cache_stats().hits;
        prop_assert_eq!(hits > 0, fresh.is_ok());
    }
}
