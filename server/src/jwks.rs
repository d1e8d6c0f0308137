//! The public keys of a JWK Set (RFC 7517) as `gauntlet probe --jwks` uses them: each RSA, EC
//! (P-256, P-384) or Ed25519 signing key with its `kid`, re-encoded as the SubjectPublicKeyInfo
//! PEM a server would hold (`-----BEGIN PUBLIC KEY-----`, 64-column base64, final newline).
//!
//! A black-box probe of a server that publishes its keys as a JWKS has no private key, but
//! the key-confusion attacks (HS256 signed with the public key's bytes as the HMAC secret)
//! need exactly those bytes and the key's `kid`. Parsing is lenient about what the probe does
//! not use (unknown members, unknown `alg` names) and strict about what it does: a usable
//! key's parameters must decode, or the document is refused with the key named. Symmetric
//! (`oct`) keys are skipped: a secret has no public form to attack with.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;

use gauntlet_core::token::MAX_JWKS_LEN;

/// One public signing key of the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksKey {
    /// The key's `kid`, which the probe's tokens name so the server selects this key.
    pub kid: Option<String>,
    /// The key type (`RSA`, `EC`, `OKP`), for reports.
    pub kty: String,
    /// The key as SubjectPublicKeyInfo PEM.
    pub pem: Vec<u8>,
}

/// Why a JWKS document gives the probe nothing to use.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The document is larger than any JWKS the gateway accepts ([`MAX_JWKS_LEN`]).
    #[error("the JWKS is larger than {MAX_JWKS_LEN} bytes")]
    TooLarge,
    /// Not a JSON object with a `keys` array of objects with a string `kty`.
    #[error("not a JWK Set: {0}")]
    NotJwks(String),
    /// A signing key whose parameters do not decode; fix or remove it.
    #[error("key {index} (kty {kty}): {reason}")]
    BadKey {
        /// Its 1-based position in `keys`.
        index: usize,
        /// Its key type.
        kty: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// No RSA, EC P-256/P-384 or Ed25519 signing key: nothing to attack with.
    #[error("no public signing key (RSA, EC P-256/P-384 or Ed25519) in the JWKS")]
    NoPublicKey,
}

#[derive(Deserialize)]
struct Set {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// ASN.1 object identifiers, DER-encoded without tag and length.
const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x2B, 0x65, 0x70];

/// The public signing keys of `json`, in document order.
pub fn jwks_public_keys(json: &[u8]) -> Result<Vec<JwksKey>, JwksError> {
    if json.len() > MAX_JWKS_LEN {
        return Err(JwksError::TooLarge);
    }
    let set: Set = serde_json::from_slice(json).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        // As the gateway's own ring reads a JWKS (`AUTH-KEY-RING`): only signature keys.
        let not_for_signing = jwk.key_use.as_deref().is_some_and(|u| u != "sig")
            || jwk
                .key_ops
                .as_ref()
                .is_some_and(|ops| !ops.iter().any(|op| op == "verify"));
        if not_for_signing {
            continue;
        }
        let bad = |reason| JwksError::BadKey {
            index: i + 1,
            kty: jwk.kty.clone(),
            reason,
        };
        let der = match jwk.kty.as_str() {
            "RSA" => {
                let n = decode(jwk.n.as_deref()).ok_or(bad("n is missing or not base64url"))?;
                let e = decode(jwk.e.as_deref()).ok_or(bad("e is missing or not base64url"))?;
                let rsa_key = sequence(&[integer(&n), integer(&e)].concat());
                spki(
                    &[tlv(0x06, RSA_ENCRYPTION), tlv(0x05, &[])].concat(),
                    &rsa_key,
                )
            }
            "EC" => {
                let (curve, len) = match jwk.crv.as_deref() {
                    Some("P-256") => (P256, 32),
                    Some("P-384") => (P384, 48),
                    _ => return Err(bad("crv is not P-256 or P-384")),
                };
                let x = decode(jwk.x.as_deref()).filter(|x| x.len() == len);
                let y = decode(jwk.y.as_deref()).filter(|y| y.len() == len);
                let (Some(x), Some(y)) = (x, y) else {
                    return Err(bad(
                        "x or y is missing or not a coordinate of the curve's size",
                    ));
                };
                let point = [&[0x04][..], &x, &y].concat();
                spki(
                    &[tlv(0x06, EC_PUBLIC_KEY), tlv(0x06, curve)].concat(),
                    &point,
                )
            }
            "OKP" => {
                if jwk.crv.as_deref() != Some("Ed25519") {
                    return Err(bad("crv is not Ed25519"));
                }
                let x = decode(jwk.x.as_deref())
                    .filter(|x| x.len() == 32)
                    .ok_or(bad("x is missing or not 32 bytes"))?;
                spki(&tlv(0x06, ED25519), &x)
            }
            // Secrets and key types the gateway does not use.
            _ => continue,
        };
        keys.push(JwksKey {
            kid: jwk.kid.clone(),
            kty: jwk.kty.clone(),
            pem: pem(&der),
        });
    }
    if keys.is_empty() {
        return Err(JwksError::NoPublicKey);
    }
    Ok(keys)
}

fn decode(v: Option<&str>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(v?).ok().filter(|b| !b.is_empty())
}

/// A DER tag-length-value with a definite length.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(value);
    out
}

fn sequence(content: &[u8]) -> Vec<u8> {
    tlv(0x30, content)
}

/// A non-negative DER INTEGER: leading zeros dropped, one added when the high bit is set.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(magnitude.len().saturating_sub(1));
    let digits = magnitude.get(skip..).unwrap_or_default();
    if digits.first().is_some_and(|b| b & 0x80 != 0) {
        tlv(0x02, &[&[0][..], digits].concat())
    } else {
        tlv(0x02, digits)
    }
}

/// SubjectPublicKeyInfo: the algorithm identifier's content and the key as a BIT STRING.
fn spki(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let bits = tlv(0x03, &[&[0][..], key].concat());
    sequence(&[sequence(algorithm), bits].concat())
}

fn pem(der: &[u8]) -> Vec<u8> {
    let body = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../corpora/tokens/keys")
                .join(name),
        )
        .unwrap()
    }

    /// The public JWK jsonwebtoken derives from a private key, with a `kid`.
    fn jwk_of(private: &str, alg: jsonwebtoken::Algorithm, kid: &str) -> serde_json::Value {
        let key = match alg {
            jsonwebtoken::Algorithm::RS256 => {
                jsonwebtoken::EncodingKey::from_rsa_pem(&key_file(private))
            }
            _ => jsonwebtoken::EncodingKey::from_ec_pem(&key_file(private)),
        }
        .unwrap();
        let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        serde_json::to_value(jwk).unwrap()
    }

    #[test]
    fn rsa_and_ec_keys_give_the_pem_files_byte_for_byte() {
        let set = serde_json::json!({"keys": [
            jwk_of("rs256.key.pem", jsonwebtoken::Algorithm::RS256, "rsa-1"),
            jwk_of("ec256.key.pem", jsonwebtoken::Algorithm::ES256, "ec-1"),
            {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "secret"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = jwks_public_keys(set.to_string().as_bytes()).unwrap();
        assert_eq!(
            keys.len(),
            2,
            "the secret and the encryption key are skipped"
        );
        assert_eq!(keys[0].kid.as_deref(), Some("rsa-1"));
        assert_eq!(
            String::from_utf8(keys[0].pem.clone()).unwrap(),
            String::from_utf8(key_file("rs256.pub.pem")).unwrap()
        );
        assert_eq!(keys[1].kty, "EC");
        assert_eq!(
            String::from_utf8(keys[1].pem.clone()).unwrap(),
            String::from_utf8(key_file("ec256.pub.pem")).unwrap()
        );
    }

    #[test]
    fn unusable_documents_are_typed_errors() {
        assert!(matches!(
            jwks_public_keys(b"[1, 2]"),
            Err(JwksError::NotJwks(_))
        ));
        assert_eq!(
            jwks_public_keys(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#),
            Err(JwksError::NoPublicKey)
        );
        assert_eq!(
            jwks_public_keys(br#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}"#),
            Err(JwksError::BadKey {
                index: 1,
                kty: "EC".into(),
                reason: "x or y is missing or not a coordinate of the curve's size"
            })
        );
        assert_eq!(
            jwks_public_keys(&vec![b' '; MAX_JWKS_LEN + 1]),
            Err(JwksError::TooLarge)
        );
    }
}
