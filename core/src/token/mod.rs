//! Tokens: JWS compact parsing, the key ring, claim rules, revocation, the validation
//! cache, refresh rotation and issuing (docs/protocol.md section 1).
//!
//! Validation is split in layers: [`verify_signature`] (the JWS layer: size, encoding,
//! header rules, key and algorithm binding, signature), [`validate`] (plus every claim
//! rule, at an injected `now`), and [`Validator`] (plus revocation and a cache). Nothing here
//! reads a clock, the environment or the OS RNG, and no input can make it panic.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

mod algorithm;
pub mod attacks;
mod cache;
mod claims;
mod error;
mod header;
mod issue;
mod jws;
mod keys;
mod refresh;
mod revocation;
mod rules;
mod strict_json;
mod validate;
mod validator;

pub use algorithm::Algorithm;
pub use cache::CacheStats;
pub use claims::{
    Claims, MAX_EMAIL_LEN, MAX_NUMERIC_DATE, MAX_SVC_ID_LEN, TokenType, UnknownTokenType,
};
pub use error::{KeyError, MalformedReason, TokenError, TokenPart};
pub use issue::{IssueError, Issuer, MintRequest, Minted, SigningKey};
pub use jws::{verify_jws, verify_signature};
pub use keys::{KeyRing, MAX_JWKS_LEN, MAX_KEYS, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS};
pub use refresh::{DEFAULT_MAX_FAMILIES, MAX_TOKENS_PER_FAMILY, RefreshError, RefreshFamilies};
pub use revocation::Revocation;
pub use rules::{Environment, LifetimeTable, Lifetimes, TokenRules};
pub use validate::validate;
pub use validator::{DEFAULT_CACHE_CAPACITY, Validator};

/// Shared fixtures for the unit tests: the committed test keys and a signer that can put
/// arbitrary bytes in the header and payload (so malformed-but-signed tokens are real).
#[cfg(test)]
pub(crate) mod testkit {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};

    use super::{Algorithm, KeyRing};
    use crate::{Instant, Kid};

    #[allow(dead_code)]
    mod test_keys {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpora/tokens/keys/keys.rs"
        ));
    }
    pub(crate) use self::test_keys::{
        EC256_PRIV, EC256_PUB, EC384_PUB, ED_PRIV, ED_PUB, HS256_SECRET, RS256_PRIV, RS256_PUB,
        RSA1024_PUB,
    };

    /// The fixed "current time" of the tests, in unix seconds.
    pub(crate) const NOW: u64 = 1_800_000_000;

    pub(crate) fn now() -> Instant {
        Instant::from_unix_secs(NOW)
    }

    pub(crate) fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap()
    }

    pub(crate) fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `b64(header).b64(payload).signature` over exactly these header and payload bytes.
    pub(crate) fn sign_raw(
        header: &str,
        payload: &str,
        alg: Algorithm,
        key: &EncodingKey,
    ) -> String {
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg.to_jsonwebtoken()).unwrap();
        format!("{input}.{sig}")
    }

    /// Valid access-token claims at [`NOW`].
    pub(crate) fn base_claims() -> Value {
        json!({
            "iss": "gauntlet-auth",
            "sub": "user-1",
            "jti": "jti-1",
            "aud": "gauntlet-gateway",
            "exp": NOW + 600,
            "iat": NOW - 60,
            "token_type": "access",
            "permissions": ["threads:read", "runs:*"],
            "email": "u1@example.com",
        })
    }

    /// [`base_claims`] with `changes` applied (`Value::Null` is kept as JSON null; use
    /// `remove` to drop a claim).
    pub(crate) fn claims_with(changes: &[(&str, Value)], remove: &[&str]) -> Value {
        let mut c = base_claims();
        let obj = c.as_object_mut().unwrap();
        for (k, v) in changes {
            obj.insert((*k).to_string(), v.clone());
        }
        for k in remove {
            obj.remove(*k);
        }
        c
    }

    pub(crate) fn hs_key() -> EncodingKey {
        EncodingKey::from_secret(HS256_SECRET).unwrap()
    }

    /// An HS256 token with `kid: "hs"` and the given payload.
    pub(crate) fn hs(payload: &Value) -> String {
        sign_raw(
            r#"{"alg":"HS256","kid":"hs","typ":"JWT"}"#,
            &payload.to_string(),
            Algorithm::HS256,
            &hs_key(),
        )
    }

    /// A ring with `hs` (HS256), `rs` (RS256), `ec` (ES256) and `ed` (EdDSA).
    pub(crate) fn ring() -> KeyRing {
        let mut r = KeyRing::new();
        r.add_hmac(Some(kid("hs")), Algorithm::HS256, HS256_SECRET)
            .unwrap();
        r.add_public_pem(Some(kid("rs")), Algorithm::RS256, RS256_PUB)
            .unwrap();
        r.add_public_pem(Some(kid("ec")), Algorithm::ES256, EC256_PUB)
            .unwrap();
        r.add_public_pem(Some(kid("ed")), Algorithm::EdDSA, ED_PUB)
            .unwrap();
        r
    }
}
