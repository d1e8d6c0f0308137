//! The committed fixtures every harness shares: the attack table's key ring (files under
//! `corpora/tokens/keys/`, compiled in), a signer for real tokens, and the fixed clock. It
//! must never generate keys or read files at run time, so every input sees the same world.

use std::sync::OnceLock;

use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

use super::{FUZZ_NOW_SECS, OracleViolation};
use crate::token::{Algorithm, KeyRing};
use crate::{Instant, Kid};

#[allow(dead_code)]
mod test_keys {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpora/tokens/keys/keys.rs"
    ));
}
pub(crate) use self::test_keys::{
    EC256_PUB, EC384_PUB, ED_PUB, HS256_SECRET, HS384_SECRET, HS512_SECRET, RS256_PUB,
};

/// How a ring key's material is given.
#[derive(Clone, Copy)]
pub(crate) enum Material {
    Secret(&'static [u8]),
    Pem(&'static [u8]),
}

/// One key of the ring: `(kid, algorithm, material, retired)`, as in `corpora/tokens/manifest.json`.
pub(crate) struct RingKey {
    pub(crate) kid: &'static str,
    pub(crate) alg: Algorithm,
    pub(crate) material: Material,
    pub(crate) retired: bool,
}

/// The attack table's ring (`corpora/tokens/manifest.json`), so its tokens seed the corpus.
pub(crate) const RING: [RingKey; 9] = [
    key(
        "hs256",
        Algorithm::HS256,
        Material::Secret(HS256_SECRET),
        false,
    ),
    key(
        "hs384",
        Algorithm::HS384,
        Material::Secret(HS384_SECRET),
        false,
    ),
    key(
        "hs512",
        Algorithm::HS512,
        Material::Secret(HS512_SECRET),
        false,
    ),
    key("rs256", Algorithm::RS256, Material::Pem(RS256_PUB), false),
    key("ps256", Algorithm::PS256, Material::Pem(RS256_PUB), false),
    key("es256", Algorithm::ES256, Material::Pem(EC256_PUB), false),
    key("es384", Algorithm::ES384, Material::Pem(EC384_PUB), false),
    key("eddsa", Algorithm::EdDSA, Material::Pem(ED_PUB), false),
    key(
        "hs256-old",
        Algorithm::HS256,
        Material::Secret(HS384_SECRET),
        true,
    ),
];

const fn key(kid: &'static str, alg: Algorithm, material: Material, retired: bool) -> RingKey {
    RingKey {
        kid,
        alg,
        material,
        retired,
    }
}

/// The fixed starting time.
pub(crate) fn now() -> Instant {
    Instant::from_unix_secs(FUZZ_NOW_SECS)
}

fn build_ring() -> Option<KeyRing> {
    let mut ring = KeyRing::new();
    for k in &RING {
        let kid = Kid::parse(k.kid)?;
        match k.material {
            Material::Secret(s) => ring.add_hmac(Some(kid.clone()), k.alg, s).ok()?,
            Material::Pem(p) => ring.add_public_pem(Some(kid.clone()), k.alg, p).ok()?,
        }
        if k.retired {
            ring.retire(&kid).ok()?;
        }
    }
    Some(ring)
}

/// The ring, parsed once per process (PEM parsing would dominate a fuzz iteration). Checks
/// that only read it borrow this one instead of paying for a copy per input.
pub(crate) fn ring_ref() -> Result<&'static KeyRing, OracleViolation> {
    static RING_CELL: OnceLock<Option<KeyRing>> = OnceLock::new();
    RING_CELL
        .get_or_init(build_ring)
        .as_ref()
        .ok_or(OracleViolation::Fixture { what: "key ring" })
}

/// A copy of the ring, for a gateway or validator that owns (and may change) its own.
pub(crate) fn ring() -> Result<KeyRing, OracleViolation> {
    ring_ref().cloned()
}

/// The ring key named `kid` as a bare `jsonwebtoken` key, for the library cross-check.
/// Decoded once per process, like the ring: every accepted token needs one.
pub(crate) fn decoding_key(kid: &str) -> Option<&'static DecodedKey> {
    static KEYS: OnceLock<Vec<(&'static str, Option<DecodedKey>)>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| RING.iter().map(|k| (k.kid, decode_key(k))).collect());
    keys.iter().find(|(k, _)| *k == kid)?.1.as_ref()
}

/// A ring key's algorithm and its material as a `jsonwebtoken` key.
type DecodedKey = (Algorithm, DecodingKey);

fn decode_key(k: &RingKey) -> Option<DecodedKey> {
    let key = match (k.material, k.alg) {
        (Material::Secret(s), _) => DecodingKey::from_secret(s),
        (Material::Pem(p), Algorithm::ES256 | Algorithm::ES384) => DecodingKey::from_ec_pem(p),
        (Material::Pem(p), Algorithm::EdDSA) => DecodingKey::from_ed_pem(p),
        (Material::Pem(p), _) => DecodingKey::from_rsa_pem(p),
    };
    Some((k.alg, key.ok()?))
}

/// The HMAC secret of ring key `kid`, for signing harness-built tokens.
pub(crate) fn hmac_secret(kid: &str) -> Option<(Algorithm, &'static [u8])> {
    RING.iter().find_map(|k| match k.material {
        Material::Secret(s) if k.kid == kid && !k.retired => Some((k.alg, s)),
        _ => None,
    })
}

/// `b64(header).b64(payload).signature` over exactly these bytes, HMAC-signed with `secret`.
pub(crate) fn sign_raw(
    header: &[u8],
    payload: &[u8],
    alg: Algorithm,
    secret: &[u8],
) -> Result<String, OracleViolation> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(header), b64.encode(payload));
    let fail = OracleViolation::Fixture { what: "signer" };
    let key = EncodingKey::from_secret(secret).map_err(|_| fail.clone())?;
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, alg.to_jsonwebtoken())
        .map_err(|_| fail)?;
    Ok(format!("{input}.{sig}"))
}

/// A real access token for `user`, HS256 with kid `hs256`, issued `age` seconds before
/// `at` and living `ttl` seconds from its issue, with `permissions`.
pub(crate) fn access_token(
    user: &str,
    jti: &str,
    at: u64,
    ttl: u64,
    permissions: &[&str],
) -> Result<String, OracleViolation> {
    let claims = json!({
        "iss": "gauntlet-auth", "aud": "gauntlet-gateway", "sub": user, "jti": jti,
        "iat": at, "exp": at + ttl, "token_type": "access", "permissions": permissions,
    });
    sign_claims(&claims, "hs256")
}

/// `claims` signed by ring key `kid` (an HMAC key) with a standard header.
pub(crate) fn sign_claims(claims: &Value, kid: &str) -> Result<String, OracleViolation> {
    let (alg, secret) = hmac_secret(kid).ok_or(OracleViolation::Fixture { what: "hmac kid" })?;
    let mut header = Header::new(alg.to_jsonwebtoken());
    header.kid = Some(kid.to_string());
    let fail = OracleViolation::Fixture { what: "token" };
    let key = EncodingKey::from_secret(secret).map_err(|_| fail.clone())?;
    jsonwebtoken::encode(&header, claims, &key).map_err(|_| fail)
}
