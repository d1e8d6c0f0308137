//! Credentials the simulated adversaries present: tampered, `alg: none` and key-confused
//! tokens built from real ones. Honest clients only ever use what the auth service minted.
//!
//! Everything here is a pure function of its inputs (no RNG of its own), so the world's
//! seeded choices fully determine what is sent.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// The RSA public key the gateway's ring holds for service tokens (kid `rs-svc`): the
/// classic key-confusion attack signs HS256 with exactly these bytes.
pub(crate) const RS_PUBLIC_PEM: &[u8] = include_bytes!("../../corpora/tokens/keys/rs256.pub.pem");
/// The kid of that key in the ring.
pub(crate) const RS_KID: &str = "rs-svc";

/// The token with one signature character changed (staying canonical base64url).
pub(crate) fn tamper_signature(token: &str) -> String {
    let Some(dot) = token.rfind('.') else {
        return format!("{token}x");
    };
    let mut bytes = token.as_bytes().to_vec();
    let i = (dot + 4).min(bytes.len().saturating_sub(2));
    if let Some(b) = bytes.get_mut(i) {
        *b = if *b == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// The base64url-decoded bytes of part `index` of a compact JWS (0 the header, 1 the payload).
fn part(token: &str, index: usize) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(token.split('.').nth(index)?).ok()
}

/// The decoded payload of a compact JWS (empty object if it is not one).
pub(crate) fn payload_of(token: &str) -> Value {
    part(token, 1)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({}))
}

/// The claims of a token's payload the world reads, typed: a world mints and presents
/// hundreds of thousands of tokens, and a [`Value`] of each payload was a tenth of a run's
/// time. A payload that is not a JSON object of these types reads as no claims at all, which
/// every check of a claim then reports.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct TokenClaims {
    pub(crate) jti: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) fam: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) permissions: Option<Vec<String>>,
    pub(crate) token_type: Option<String>,
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
}

impl TokenClaims {
    /// The claims of the compact JWS `token` (none if it is not one).
    pub(crate) fn of(token: &str) -> Self {
        part(token, 1)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// The `kid` in the header of a compact JWS, if it has a valid one. Most headers read as a
/// typed one-member struct; one that does not (a duplicate or mistyped member, which the
/// attacks send) is read as a [`Value`], where the last duplicate wins.
pub(crate) fn kid_of(token: &str) -> Option<gauntlet_core::Kid> {
    #[derive(serde::Deserialize)]
    struct Header {
        kid: Option<String>,
    }
    let bytes = part(token, 0)?;
    let kid = match serde_json::from_slice::<Header>(&bytes) {
        Ok(header) => header.kid,
        Err(_) => {
            let header: Value = serde_json::from_slice(&bytes).ok()?;
            header["kid"].as_str().map(str::to_string)
        }
    };
    gauntlet_core::Kid::parse(&kid?)
}

/// The `nbf` and `iat` claims of a compact JWS, each when it has a whole-second one (one
/// parse for both: every minted token's truth carries them).
pub(crate) fn nbf_iat_of(
    token: &str,
) -> (
    Option<gauntlet_core::Instant>,
    Option<gauntlet_core::Instant>,
) {
    let p = TokenClaims::of(token);
    let at = |claim: Option<u64>| claim.map(gauntlet_core::Instant::from_unix_secs);
    (at(p.nbf), at(p.iat))
}

/// The `fam` claim of a compact JWS, if it has a valid one.
pub(crate) fn family_of(token: &str) -> Option<gauntlet_core::FamilyId> {
    gauntlet_core::FamilyId::parse(&TokenClaims::of(token).fam?)
}

/// `alg: none` (in one of four spellings) over the payload of a real token, with or
/// without the original signature.
pub(crate) fn alg_none(token: &str, variant: u64) -> String {
    let spelling = ["none", "None", "NONE", "nOnE"][(variant % 4) as usize];
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": spelling, "typ": "JWT" }).to_string());
    let mut parts = token.splitn(3, '.');
    let payload = parts.nth(1).unwrap_or("");
    let sig = if (variant / 4).is_multiple_of(2) {
        ""
    } else {
        parts.next().unwrap_or("")
    };
    format!("{header}.{payload}.{sig}")
}

/// HS256 over `claims`, keyed with the RSA public key's PEM, naming the RSA key's kid.
pub(crate) fn key_confusion(claims: &Value) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "HS256", "kid": RS_KID, "typ": "JWT" }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let sig = jsonwebtoken::EncodingKey::from_secret(RS_PUBLIC_PEM)
        .and_then(|k| {
            jsonwebtoken::crypto::sign(input.as_bytes(), &k, jsonwebtoken::Algorithm::HS256)
        })
        .unwrap_or_default();
    format!("{input}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMTIzNDU2Nzg5MA";

    #[test]
    fn tampering_changes_only_the_signature() {
        let t = tamper_signature(T);
        assert_ne!(t, T);
        assert_eq!(
            t.rsplit_once('.').map(|p| p.0),
            T.rsplit_once('.').map(|p| p.0)
        );
    }

    #[test]
    fn alg_none_keeps_payload_and_varies_spelling_and_signature() {
        let a = alg_none(T, 1);
        assert_eq!(payload_of(&a)["sub"], "u");
        assert!(a.ends_with('.'));
        let b = alg_none(T, 6);
        assert!(b.ends_with("MA"));
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(b.split('.').next().unwrap_or(""))
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(header["alg"], "NONE");
    }

    #[test]
    fn key_confusion_token_names_the_rsa_kid() {
        let t = key_confusion(&json!({"sub": "victim"}));
        assert_eq!(payload_of(&t)["sub"], "victim");
        assert_eq!(t.split('.').count(), 3);
        assert!(t.split('.').nth(2).is_some_and(|s| s.len() == 43));
    }
}
