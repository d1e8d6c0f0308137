//! The key ring: verification keys, each bound to exactly one algorithm, prepared once
//! (HMAC states keyed, public keys parsed and checked) so validation does no key parsing.
//! Keys come from raw secrets, public PEMs or an RFC 7517 JWKS. The ring decides the
//! algorithm of a token; it must never take an algorithm or a key from the token itself.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::CryptoProvider;
use serde::Deserialize;
use sha2::{Sha256, Sha384, Sha512};

use crate::Kid;

use super::algorithm::Algorithm;
use super::error::KeyError;
use super::header::known_header;

/// Shortest HMAC secret accepted (docs/protocol.md section 1).
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Most keys a ring holds (current + previous keys of a few issuers is far below this).
pub const MAX_KEYS: usize = 64;
/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_LEN: usize = 1 << 20;

/// A keyed HMAC state, cloned per verification so the key schedule runs once per key.
#[derive(Clone)]
enum HmacKey {
    Sha256(Hmac<Sha256>),
    Sha384(Hmac<Sha384>),
    Sha512(Hmac<Sha512>),
}

impl HmacKey {
    fn new(alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        let bad = |_| KeyError::InvalidKey;
        Ok(match alg {
            Algorithm::HS256 => HmacKey::Sha256(Hmac::new_from_slice(secret).map_err(bad)?),
            Algorithm::HS384 => HmacKey::Sha384(Hmac::new_from_slice(secret).map_err(bad)?),
            Algorithm::HS512 => HmacKey::Sha512(Hmac::new_from_slice(secret).map_err(bad)?),
            _ => return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() }),
        })
    }

    /// Constant-time comparison (the `hmac` crate's `verify_slice`).
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            HmacKey::Sha256(k) => {
                let mut m = k.clone();
                m.update(message);
                m.verify_slice(signature).is_ok()
            }
            HmacKey::Sha384(k) => {
                let mut m = k.clone();
                m.update(message);
                m.verify_slice(signature).is_ok()
            }
            HmacKey::Sha512(k) => {
                let mut m = k.clone();
                m.update(message);
                m.verify_slice(signature).is_ok()
            }
        }
    }
}

/// The verification material of one key.
// A ring holds at most `MAX_KEYS` of these, so the inline HMAC state costs little memory
// and saves a pointer chase on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Material {
    Hmac(HmacKey),
    /// A public key already checked against its algorithm when it was added.
    Public(DecodingKey),
}

/// One key of the ring: its algorithm is fixed when it is added.
#[derive(Clone)]
pub(crate) struct KeyEntry {
    kid: Option<Kid>,
    alg: Algorithm,
    material: Material,
    /// The bytes the key was configured from (secret or PEM). Only the `AlgFromHeader`
    /// planted bug reads them, to re-create the classic key-confusion defect.
    #[cfg(feature = "planted-bugs")]
    source: Vec<u8>,
    retired: bool,
    /// The encoded header `jsonwebtoken` writes for this key, if it has a kid (see
    /// `header::known_header`).
    known_header: Option<Box<[u8]>>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("retired", &self.retired)
            .finish_non_exhaustive()
    }
}

impl KeyEntry {
    pub(crate) fn alg(&self) -> Algorithm {
        self.alg
    }

    pub(crate) fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }

    pub(crate) fn is_retired(&self) -> bool {
        self.retired
    }

    /// Verifies `signature` over `message` with this key's own algorithm.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.material {
            Material::Hmac(k) => k.verify(message, signature),
            Material::Public(key) => verify_public(self.alg, key, message, signature),
        }
    }

    /// The planted `AlgFromHeader` defect: verify with the header's algorithm, using this
    /// key's configured bytes (for a public key: its PEM) as whatever that algorithm needs.
    #[cfg(feature = "planted-bugs")]
    pub(crate) fn verify_as(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if alg == self.alg {
            return self.verify(message, signature);
        }
        // A non-HMAC header algorithm gets no key: `HmacKey::new` refuses it.
        HmacKey::new(alg, &self.source).is_ok_and(|k| k.verify(message, signature))
    }
}

fn provider() -> Result<&'static CryptoProvider, KeyError> {
    CryptoProvider::try_get_default().ok_or(KeyError::NoCryptoProvider)
}

fn verify_public(alg: Algorithm, key: &DecodingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(provider) = provider() else {
        return false;
    };
    // The verifier object is not `Send`, so it is rebuilt per call from the already-checked
    // key; for public-key algorithms the signature arithmetic dwarfs this.
    let Ok(verifier) = (provider.verifier_factory)(&alg.to_jsonwebtoken(), key) else {
        return false;
    };
    verifier.verify(message, &signature.to_vec()).is_ok()
}

/// The verification keys a validator trusts, each bound to one algorithm.
///
/// A token selects its key by `kid`; a token without `kid` is accepted only when the ring
/// holds exactly one key. The key's algorithm is then the only one its `alg` may name.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<KeyEntry>,
    /// Bumped on every change of this ring. Only a count of this ring's own changes: a
    /// different ring can have the same count, so caches must not key on it (the
    /// `Validator` invalidates on every ring change instead); only the
    /// `RingReplaceKeepsCache` planted bug still does.
    generation: u64,
}

impl KeyRing {
    /// An empty ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an HMAC secret (at least 32 bytes) for `alg` (HS256/384/512).
    pub fn add_hmac(
        &mut self,
        kid: Option<Kid>,
        alg: Algorithm,
        secret: &[u8],
    ) -> Result<(), KeyError> {
        // `HmacKey::new` refuses a non-HMAC algorithm, which is checked before the length.
        let key = HmacKey::new(alg, secret)?;
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::WeakSecret { len: secret.len() });
        }
        self.insert(kid, alg, Material::Hmac(key), secret)
    }

    /// Adds a public key in PEM form for an RSA (>= 2048-bit), ECDSA or EdDSA algorithm.
    pub fn add_public_pem(
        &mut self,
        kid: Option<Kid>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<(), KeyError> {
        let key = match alg {
            _ if alg.is_hmac() => return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() }),
            _ if alg.is_rsa() => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            _ => DecodingKey::from_ed_pem(pem),
        }
        .map_err(|_| KeyError::AlgorithmKeyMismatch { alg: alg.name() })?;
        let key = check_public(alg, key)?;
        self.insert(kid, alg, Material::Public(key), pem)
    }

    /// Builds a ring from an RFC 7517 JWK Set.
    ///
    /// Keys whose `use` is not `sig`, or whose `key_ops` do not include `verify`, are not for
    /// verifying signatures and are skipped. A usable key must name its algorithm (`alg`),
    /// except EC and OKP keys whose curve fixes it. Duplicate kids and weak keys are errors.
    pub fn from_jwks(json: &[u8]) -> Result<KeyRing, KeyError> {
        if json.len() > MAX_JWKS_LEN {
            return Err(KeyError::InvalidJwks);
        }
        let set: JwkSet = serde_json::from_slice(json).map_err(|_| KeyError::InvalidJwks)?;
        let mut ring = KeyRing::new();
        for jwk in set.keys {
            if jwk.key_use.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            if jwk
                .key_ops
                .as_ref()
                .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
            {
                continue;
            }
            let kid = match jwk.kid.as_deref() {
                Some(k) => Some(Kid::parse(k).ok_or(KeyError::InvalidKey)?),
                None => None,
            };
            ring.add_jwk(kid, &jwk)?;
        }
        Ok(ring)
    }

    fn add_jwk(&mut self, kid: Option<Kid>, jwk: &Jwk) -> Result<(), KeyError> {
        let named = match jwk.alg.as_deref() {
            Some(a) => Some(a.parse::<Algorithm>()?),
            None => None,
        };
        let param = |v: &Option<String>, param: &'static str| {
            v.clone().ok_or(KeyError::MissingJwkParam { param })
        };
        match jwk.kty.as_str() {
            "oct" => {
                let alg = named.ok_or(KeyError::MissingJwkParam { param: "alg" })?;
                let secret = URL_SAFE_NO_PAD
                    .decode(param(&jwk.k, "k")?)
                    .map_err(|_| KeyError::InvalidKey)?;
                self.add_hmac(kid, alg, &secret)
            }
            "RSA" => {
                let alg = named.ok_or(KeyError::MissingJwkParam { param: "alg" })?;
                if !alg.is_rsa() {
                    return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() });
                }
                let key =
                    DecodingKey::from_rsa_components(&param(&jwk.n, "n")?, &param(&jwk.e, "e")?)
                        .map_err(|_| KeyError::InvalidKey)?;
                let key = check_public(alg, key)?;
                self.insert(kid, alg, Material::Public(key), &[])
            }
            "EC" => {
                let curve_alg = match jwk.crv.as_deref() {
                    Some("P-256") => Algorithm::ES256,
                    Some("P-384") => Algorithm::ES384,
                    Some(_) => return Err(KeyError::UnsupportedJwk),
                    None => return Err(KeyError::MissingJwkParam { param: "crv" }),
                };
                let alg = named.unwrap_or(curve_alg);
                if alg != curve_alg {
                    return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() });
                }
                let key =
                    DecodingKey::from_ec_components(&param(&jwk.x, "x")?, &param(&jwk.y, "y")?)
                        .map_err(|_| KeyError::InvalidKey)?;
                let key = check_public(alg, key)?;
                self.insert(kid, alg, Material::Public(key), &[])
            }
            "OKP" => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(KeyError::UnsupportedJwk);
                }
                let alg = named.unwrap_or(Algorithm::EdDSA);
                if alg != Algorithm::EdDSA {
                    return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() });
                }
                let key = DecodingKey::from_ed_components(&param(&jwk.x, "x")?)
                    .map_err(|_| KeyError::InvalidKey)?;
                let key = check_public(alg, key)?;
                self.insert(kid, alg, Material::Public(key), &[])
            }
            _ => Err(KeyError::UnsupportedJwk),
        }
    }

    fn insert(
        &mut self,
        kid: Option<Kid>,
        alg: Algorithm,
        material: Material,
        // Kept only for the `AlgFromHeader` planted bug; unused (and not stored) without it.
        _source: &[u8],
    ) -> Result<(), KeyError> {
        if self.keys.len() >= MAX_KEYS {
            return Err(KeyError::TooManyKeys { max: MAX_KEYS });
        }
        // Also at most one key without a kid: such a key is only usable as the ring's
        // only key, and two would be indistinguishable.
        if self.keys.iter().any(|e| e.kid == kid) {
            return Err(KeyError::DuplicateKid);
        }
        let known_header = kid.as_ref().and_then(|k| known_header(k, alg));
        self.keys.push(KeyEntry {
            known_header,
            kid,
            alg,
            material,
            #[cfg(feature = "planted-bugs")]
            source: _source.to_vec(),
            retired: false,
        });
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Retires the key `kid`: from now on its tokens fail with `key_retired`, including
    /// tokens already in a validator's cache.
    pub fn retire(&mut self, kid: &Kid) -> Result<(), KeyError> {
        let entry = self
            .keys
            .iter_mut()
            .find(|e| e.kid.as_ref() == Some(kid))
            .ok_or(KeyError::UnknownKid)?;
        entry.retired = true;
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Removes the key `kid`: from now on its tokens fail with `unknown_key`. Key rotation
    /// uses it to keep the ring at current + previous (docs/protocol.md section 1), so rotating
    /// never runs into [`MAX_KEYS`].
    pub fn remove(&mut self, kid: &Kid) -> Result<(), KeyError> {
        let at = self
            .keys
            .iter()
            .position(|e| e.kid.as_ref() == Some(kid))
            .ok_or(KeyError::UnknownKid)?;
        self.keys.remove(at);
        self.generation = self.generation.wrapping_add(1);
        Ok(())
    }

    /// Whether the ring holds a key with id `kid`.
    pub fn contains(&self, kid: &Kid) -> bool {
        self.keys.iter().any(|e| e.kid.as_ref() == Some(kid))
    }

    /// Number of keys, retired ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key for a token's `kid`: by id, or the ring's only key when there is no `kid`.
    pub(crate) fn select(&self, kid: Option<&str>) -> Option<&KeyEntry> {
        match kid {
            // A linear scan over at most `MAX_KEYS` keys: no allocation for the lookup key.
            Some(k) => self
                .keys
                .iter()
                .find(|e| e.kid.as_ref().is_some_and(|kid| kid.as_str() == k)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }

    /// The key whose known header segment is exactly `segment`, if any.
    pub(crate) fn by_known_header(&self, segment: &[u8]) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .find(|e| e.known_header.as_deref() == Some(segment))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

/// Checks a parsed public key fits `alg`: curve, size, and that the crypto backend accepts it.
fn check_public(alg: Algorithm, key: DecodingKey) -> Result<DecodingKey, KeyError> {
    let mismatch = KeyError::AlgorithmKeyMismatch { alg: alg.name() };
    let provider = provider()?;
    match alg {
        _ if alg.is_rsa() => {
            let n = match key.kind() {
                jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, .. } => n.clone(),
                jsonwebtoken::DecodingKeyKind::SecretOrDer(der) => {
                    (provider.key_utils.rsa_pub_components_from_public_key)(der)
                        .map_err(|_| KeyError::InvalidKey)?
                        .0
                }
            };
            let bits = bit_len(&n);
            if bits < MIN_RSA_BITS {
                return Err(KeyError::WeakRsaKey { bits });
            }
        }
        Algorithm::ES256 | Algorithm::ES384 => {
            let point_len = key
                .try_get_as_bytes()
                .map_err(|_| KeyError::InvalidKey)?
                .len();
            let fits = match alg {
                Algorithm::ES256 => matches!(point_len, 33 | 65),
                _ => matches!(point_len, 49 | 97),
            };
            if !fits {
                return Err(mismatch);
            }
        }
        _ => {
            if key
                .try_get_as_bytes()
                .map_err(|_| KeyError::InvalidKey)?
                .len()
                != 32
            {
                return Err(mismatch);
            }
        }
    }
    (provider.verifier_factory)(&alg.to_jsonwebtoken(), &key).map_err(|_| KeyError::InvalidKey)?;
    Ok(key)
}

/// Bit length of a big-endian unsigned integer.
fn bit_len(n: &[u8]) -> usize {
    let mut rest = n.iter().skip_while(|b| **b == 0);
    match rest.next() {
        Some(first) => {
            let lead = 8 - first.leading_zeros() as usize;
            lead + 8 * rest.count()
        }
        None => 0,
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::testkit::*;

    #[test]
    fn add_hmac_short_secret_rejected() {
        let mut r = KeyRing::new();
        assert_eq!(
            r.add_hmac(None, Algorithm::HS256, &[1u8; 31]),
            Err(KeyError::WeakSecret { len: 31 })
        );
        assert!(r.is_empty(), "a refused key is not added");
        assert_eq!(r.add_hmac(None, Algorithm::HS256, &[1u8; 32]), Ok(()));
        assert_eq!(r.len(), 1);
        assert!(!r.is_empty());
    }

    #[test]
    fn add_hmac_non_hmac_algorithm_rejected() {
        let mut r = KeyRing::new();
        assert_eq!(
            r.add_hmac(None, Algorithm::RS256, HS256_SECRET),
            Err(KeyError::AlgorithmKeyMismatch { alg: "RS256" })
        );
        assert!(r.is_empty());
    }

    #[test]
    fn add_public_pem_weak_rsa_rejected() {
        let mut r = KeyRing::new();
        assert_eq!(
            r.add_public_pem(None, Algorithm::RS256, RSA1024_PUB),
            Err(KeyError::WeakRsaKey { bits: 1024 })
        );
        assert_eq!(r.add_public_pem(None, Algorithm::PS256, RS256_PUB), Ok(()));
    }

    #[test]
    fn add_public_pem_key_algorithm_mismatch_rejected() {
        let mut r = KeyRing::new();
        let mismatch = |alg: Algorithm| Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() });
        assert_eq!(
            r.add_public_pem(None, Algorithm::ES256, EC384_PUB),
            mismatch(Algorithm::ES256)
        );
        assert_eq!(
            r.add_public_pem(None, Algorithm::ES384, EC256_PUB),
            mismatch(Algorithm::ES384)
        );
        assert_eq!(
            r.add_public_pem(None, Algorithm::HS256, RS256_PUB),
            mismatch(Algorithm::HS256)
        );
        assert_eq!(
            r.add_public_pem(None, Algorithm::RS256, EC256_PUB),
            mismatch(Algorithm::RS256)
        );
        assert_eq!(
            r.add_public_pem(None, Algorithm::EdDSA, EC256_PUB),
            mismatch(Algorithm::EdDSA)
        );
        // An HMAC algorithm never takes a public key, whatever the PEM, and the refusal names
        // the algorithm (an Ed25519 PEM parses, so without the check it was "invalid key").
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for pem in [RS256_PUB, EC256_PUB, EC384_PUB, ED_PUB] {
                assert_eq!(r.add_public_pem(None, alg, pem), mismatch(alg));
            }
        }
        assert!(r.is_empty());
        assert_eq!(r.add_public_pem(None, Algorithm::ES384, EC384_PUB), Ok(()));
    }

    #[test]
    fn ring_duplicate_kids_rejected() {
        let mut r = KeyRing::new();
        r.add_hmac(Some(kid("a")), Algorithm::HS256, HS256_SECRET)
            .unwrap();
        assert_eq!(
            r.add_public_pem(Some(kid("a")), Algorithm::RS256, RS256_PUB),
            Err(KeyError::DuplicateKid)
        );
        r.add_hmac(None, Algorithm::HS256, HS256_SECRET).unwrap();
        assert_eq!(
            r.add_hmac(None, Algorithm::HS512, HS256_SECRET),
            Err(KeyError::DuplicateKid)
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn ring_key_count_bounded() {
        let mut r = KeyRing::new();
        for i in 0..MAX_KEYS {
            r.add_hmac(Some(kid(&format!("k{i}"))), Algorithm::HS256, HS256_SECRET)
                .unwrap();
        }
        assert_eq!(
            r.add_hmac(Some(kid("one-more")), Algorithm::HS256, HS256_SECRET),
            Err(KeyError::TooManyKeys { max: MAX_KEYS })
        );
    }

    #[test]
    fn remove_unknown_kid_rejected_and_known_kid_gone() {
        let mut r = ring();
        let before = r.len();
        assert_eq!(r.remove(&kid("nope")), Err(KeyError::UnknownKid));
        assert_eq!(r.remove(&kid("rs")), Ok(()));
        assert_eq!(r.len(), before - 1);
        assert!(!r.contains(&kid("rs")) && r.contains(&kid("hs")));
        assert!(r.select(Some("rs")).is_none());
    }

    #[test]
    fn retire_unknown_kid_rejected() {
        let mut r = ring();
        assert_eq!(r.retire(&kid("nope")), Err(KeyError::UnknownKid));
        assert_eq!(r.retire(&kid("rs")), Ok(()));
        assert_eq!(r.select(Some("rs")).map(KeyEntry::is_retired), Some(true));
        assert_eq!(r.select(Some("hs")).map(KeyEntry::is_retired), Some(false));
    }

    fn jwk_oct(kid: &str, extra: &str) -> String {
        format!(
            r#"{{"kty":"oct","kid":"{kid}","alg":"HS256","k":"{}"{extra}}}"#,
            b64(HS256_SECRET)
        )
    }

    #[test]
    fn from_jwks_honours_use_and_key_ops() {
        let jwks = format!(
            r#"{{"keys":[{},{},{},{},{}]}}"#,
            jwk_oct("plain", ""),
            jwk_oct("sig", r#","use":"sig""#),
            jwk_oct("enc", r#","use":"enc""#),
            jwk_oct("sign-only", r#","key_ops":["sign"]"#),
            jwk_oct("verify", r#","key_ops":["sign","verify"]"#),
        );
        let r = KeyRing::from_jwks(jwks.as_bytes()).unwrap();
        assert_eq!(r.len(), 3);
        for (k, present) in [
            ("plain", true),
            ("sig", true),
            ("enc", false),
            ("sign-only", false),
            ("verify", true),
        ] {
            assert_eq!(r.select(Some(k)).is_some(), present, "{k}");
        }
    }

    #[test]
    fn from_jwks_rejects_duplicates_weak_and_unnamed_keys() {
        let dup = format!(r#"{{"keys":[{},{}]}}"#, jwk_oct("a", ""), jwk_oct("a", ""));
        assert_eq!(
            KeyRing::from_jwks(dup.as_bytes()).err(),
            Some(KeyError::DuplicateKid)
        );
        let weak = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"w","alg":"HS256","k":"{}"}}]}}"#,
            b64(&[1u8; 16])
        );
        assert_eq!(
            KeyRing::from_jwks(weak.as_bytes()).err(),
            Some(KeyError::WeakSecret { len: 16 })
        );
        let no_alg = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"n","k":"{}"}}]}}"#,
            b64(HS256_SECRET)
        );
        assert_eq!(
            KeyRing::from_jwks(no_alg.as_bytes()).err(),
            Some(KeyError::MissingJwkParam { param: "alg" })
        );
        assert_eq!(
            KeyRing::from_jwks(b"{\"keys\":7}").err(),
            Some(KeyError::InvalidJwks)
        );
        assert_eq!(KeyRing::from_jwks(b"[]").err(), Some(KeyError::InvalidJwks));
    }

    /// `from_jwks` of a set holding just `jwk`.
    fn one_jwk(jwk: serde_json::Value) -> Result<KeyRing, KeyError> {
        KeyRing::from_jwks(serde_json::json!({ "keys": [jwk] }).to_string().as_bytes())
    }

    /// The public JWK of a committed key, as `jsonwebtoken` writes it.
    fn public_jwk(alg: jsonwebtoken::Algorithm) -> serde_json::Value {
        use jsonwebtoken::{EncodingKey, jwk::Jwk};
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => EncodingKey::from_rsa_pem(RS256_PRIV),
            jsonwebtoken::Algorithm::ES256 => EncodingKey::from_ec_pem(EC256_PRIV),
            _ => EncodingKey::from_ed_pem(ED_PRIV),
        }
        .unwrap();
        serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap()
    }

    #[test]
    fn from_jwks_over_one_mebibyte_refused_before_parsing() {
        // A valid set padded with whitespace: one mebibyte exactly is read, one byte more is not.
        let mut big = format!(r#"{{"keys":[{}]}}"#, jwk_oct("a", "")).into_bytes();
        big.resize(MAX_JWKS_LEN, b' ');
        assert_eq!(KeyRing::from_jwks(&big).map(|r| r.len()), Ok(1));
        big.push(b' ');
        let got = KeyRing::from_jwks(&big).err();
        assert_eq!(got, Some(KeyError::InvalidJwks));
        assert_eq!(
            got.as_ref().map(ToString::to_string).unwrap_or_default(),
            "invalid jwks document",
            "the refusal names the document"
        );
    }

    #[test]
    fn from_jwks_key_without_kid_is_the_rings_only_key_and_bad_kid_refused() {
        let r = one_jwk(serde_json::json!({"kty": "oct", "alg": "HS384", "k": b64(HS256_SECRET)}))
            .unwrap();
        assert_eq!(r.select(None).map(KeyEntry::alg), Some(Algorithm::HS384));
        assert_eq!(r.select(None).and_then(KeyEntry::kid), None);
        for bad in ["", "bell\u{7}"] {
            let jwk = serde_json::json!({"kty": "oct", "kid": bad, "alg": "HS256", "k": b64(HS256_SECRET)});
            assert_eq!(
                one_jwk(jwk).err(),
                Some(KeyError::InvalidKey),
                "kid {bad:?}"
            );
        }
    }

    #[test]
    fn from_jwks_oct_and_unknown_kty_or_alg_refusals() {
        use serde_json::json;
        let cases = [
            (
                json!({"kty": "oct", "kid": "a", "alg": "HS256"}),
                KeyError::MissingJwkParam { param: "k" },
                "jwk missing parameter k",
            ),
            (
                json!({"kty": "oct", "kid": "a", "alg": "HS256", "k": "not base64!"}),
                KeyError::InvalidKey,
                "invalid key material",
            ),
            (
                json!({"kty": "oct", "kid": "a", "alg": "none", "k": b64(HS256_SECRET)}),
                KeyError::UnsupportedJwk,
                "unsupported jwk algorithm or key type",
            ),
            (
                json!({"kty": "oct", "kid": "a", "alg": "RS256", "k": b64(HS256_SECRET)}),
                KeyError::AlgorithmKeyMismatch { alg: "RS256" },
                "key does not fit algorithm RS256",
            ),
            (
                json!({"kty": "DH", "kid": "a", "alg": "HS256"}),
                KeyError::UnsupportedJwk,
                "unsupported jwk algorithm or key type",
            ),
        ];
        for (jwk, want, text) in cases {
            let got = one_jwk(jwk.clone()).err();
            assert_eq!(got, Some(want), "{jwk}");
            assert_eq!(
                got.as_ref().map(ToString::to_string).unwrap_or_default(),
                text,
                "{jwk}"
            );
        }
    }

    #[test]
    fn from_jwks_rsa_refusals_name_the_fault() {
        let good = public_jwk(jsonwebtoken::Algorithm::RS256);
        let with = |changes: &[(&str, serde_json::Value)], remove: &[&str]| {
            let mut j = good.clone();
            for (k, v) in changes {
                j[*k] = v.clone();
            }
            for k in remove {
                j.as_object_mut().unwrap().remove(*k);
            }
            one_jwk(j).map(|r| r.len())
        };
        assert_eq!(with(&[], &[]), Ok(1));
        assert_eq!(
            with(&[], &["alg"]),
            Err(KeyError::MissingJwkParam { param: "alg" })
        );
        assert_eq!(
            with(&[("alg", "ES256".into())], &[]),
            Err(KeyError::AlgorithmKeyMismatch { alg: "ES256" })
        );
        assert_eq!(
            with(&[], &["n"]),
            Err(KeyError::MissingJwkParam { param: "n" })
        );
        assert_eq!(
            with(&[], &["e"]),
            Err(KeyError::MissingJwkParam { param: "e" })
        );
        assert_eq!(with(&[("n", "***".into())], &[]), Err(KeyError::InvalidKey));
        // A 1024-bit modulus: 128 bytes with the top bit set.
        let mut small = vec![0xc5u8; 128];
        small[127] |= 1;
        assert_eq!(
            with(&[("n", b64(&small).into())], &[]),
            Err(KeyError::WeakRsaKey { bits: 1024 })
        );
    }

    #[test]
    fn from_jwks_ec_refusals_name_the_fault() {
        let good = public_jwk(jsonwebtoken::Algorithm::ES256);
        let with = |changes: &[(&str, serde_json::Value)], remove: &[&str]| {
            let mut j = good.clone();
            for (k, v) in changes {
                j[*k] = v.clone();
            }
            for k in remove {
                j.as_object_mut().unwrap().remove(*k);
            }
            one_jwk(j).map(|r| r.len())
        };
        assert_eq!(with(&[], &["alg"]), Ok(1), "P-256 names ES256 by itself");
        assert_eq!(
            with(&[("crv", "P-521".into())], &[]),
            Err(KeyError::UnsupportedJwk)
        );
        assert_eq!(
            with(&[], &["crv"]),
            Err(KeyError::MissingJwkParam { param: "crv" })
        );
        assert_eq!(
            with(&[("crv", "P-384".into())], &[]),
            Err(KeyError::AlgorithmKeyMismatch { alg: "ES256" }),
            "a P-384 key named ES256"
        );
        assert_eq!(
            with(&[("alg", "ES384".into())], &[]),
            Err(KeyError::AlgorithmKeyMismatch { alg: "ES384" })
        );
        assert_eq!(
            with(&[], &["x"]),
            Err(KeyError::MissingJwkParam { param: "x" })
        );
        assert_eq!(
            with(&[], &["y"]),
            Err(KeyError::MissingJwkParam { param: "y" })
        );
        assert_eq!(with(&[("y", "@@".into())], &[]), Err(KeyError::InvalidKey));
        // A point of the right length for P-256 that is not on the curve.
        assert_eq!(
            with(
                &[("x", b64(&[0u8; 32]).into()), ("y", b64(&[0u8; 32]).into())],
                &[]
            ),
            Err(KeyError::InvalidKey)
        );
        assert_eq!(
            with(&[("y", b64(&[1u8; 8]).into())], &[]),
            Err(KeyError::AlgorithmKeyMismatch { alg: "ES256" }),
            "a point too short for P-256"
        );
    }

    #[test]
    fn from_jwks_okp_refusals_name_the_fault() {
        let good = public_jwk(jsonwebtoken::Algorithm::EdDSA);
        let with = |changes: &[(&str, serde_json::Value)], remove: &[&str]| {
            let mut j = good.clone();
            for (k, v) in changes {
                j[*k] = v.clone();
            }
            for k in remove {
                j.as_object_mut().unwrap().remove(*k);
            }
            one_jwk(j).map(|r| r.len())
        };
        assert_eq!(with(&[], &["alg"]), Ok(1), "Ed25519 names EdDSA by itself");
        assert_eq!(
            with(&[("crv", "X25519".into())], &[]),
            Err(KeyError::UnsupportedJwk)
        );
        assert_eq!(with(&[], &["crv"]), Err(KeyError::UnsupportedJwk));
        assert_eq!(
            with(&[("alg", "ES256".into())], &[]),
            Err(KeyError::AlgorithmKeyMismatch { alg: "ES256" })
        );
        assert_eq!(
            with(&[], &["x"]),
            Err(KeyError::MissingJwkParam { param: "x" })
        );
        assert_eq!(with(&[("x", "%".into())], &[]), Err(KeyError::InvalidKey));
        let short = with(&[("x", b64(&[7u8; 31]).into())], &[]);
        assert_eq!(short, Err(KeyError::AlgorithmKeyMismatch { alg: "EdDSA" }));
        assert_eq!(
            short.unwrap_err().to_string(),
            "key does not fit algorithm EdDSA"
        );
    }

    #[test]
    fn add_public_pem_garbage_refused_as_mismatch() {
        let mut r = KeyRing::new();
        for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
            assert_eq!(
                r.add_public_pem(
                    None,
                    alg,
                    b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
                ),
                Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() }),
                "{alg}"
            );
        }
        assert!(r.is_empty());
    }

    #[test]
    fn from_jwks_public_keys_verify_real_tokens() {
        use jsonwebtoken::{EncodingKey, jwk::Jwk};
        let rs = Jwk::from_encoding_key(
            &EncodingKey::from_rsa_pem(RS256_PRIV).unwrap(),
            jsonwebtoken::Algorithm::RS256,
        )
        .unwrap();
        let ec = Jwk::from_encoding_key(
            &EncodingKey::from_ec_pem(EC256_PRIV).unwrap(),
            jsonwebtoken::Algorithm::ES256,
        )
        .unwrap();
        let ed = Jwk::from_encoding_key(
            &EncodingKey::from_ed_pem(ED_PRIV).unwrap(),
            jsonwebtoken::Algorithm::EdDSA,
        )
        .unwrap();
        let mut set = serde_json::json!({ "keys": [rs, ec, ed] });
        for (i, k) in ["rs", "ec", "ed"].into_iter().enumerate() {
            set["keys"][i]["kid"] = serde_json::json!(k);
        }
        let r = KeyRing::from_jwks(set.to_string().as_bytes()).unwrap();
        assert_eq!(r.len(), 3);
        let payload = base_claims().to_string();
        for (k, alg, key) in [
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
        ] {
            assert_eq!(r.select(Some(k)).map(KeyEntry::alg), Some(alg));
            let token = sign_raw(
                &format!(r#"{{"alg":"{alg}","kid":"{k}"}}"#,),
                &payload,
                alg,
                &key,
            );
            let got = crate::token::validate(
                token.as_bytes(),
                now(),
                &r,
                &crate::token::TokenRules::default(),
                crate::token::TokenType::Access,
            );
            assert_eq!(
                got.map(|c| c.sub().as_str().to_string()),
                Ok("user-1".to_string()),
                "{k}"
            );
        }
    }

    #[test]
    fn bit_len_counts_from_first_set_bit() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[0, 0x7f, 0xff]), 15);
    }

    #[test]
    fn key_entry_and_signing_key_debug_show_kid_and_alg_but_no_key() {
        let r = ring();
        let entry = r.keys.first().expect("the ring has keys");
        let text = format!("{entry:?}");
        assert!(text.starts_with("KeyEntry { kid: Some("), "{text}");
        assert!(text.contains("retired: false"), "{text}");
        assert!(text.ends_with(", .. }"), "{text}");
        let signing =
            crate::token::SigningKey::hmac(Some(kid("hs")), Algorithm::HS256, HS256_SECRET)
                .unwrap();
        assert_eq!(
            format!("{signing:?}"),
            format!(
                "SigningKey {{ kid: Some({:?}), alg: HS256, .. }}",
                kid("hs")
            )
        );
        // Rules other than the defaults, so handing back defaults is told apart.
        let rules = crate::token::TokenRules {
            issuer: "another-issuer".into(),
            ..crate::token::TokenRules::default()
        };
        let issuer = crate::token::Issuer::new(signing, rules.clone());
        assert_eq!(issuer.rules(), &rules);
    }
}
