//! Real tokens for the benches: the committed keys of `corpora/tokens/keys/`, a key ring with
//! one key per benched algorithm, and `jsonwebtoken`-minted access tokens. Also the peer
//! the issue compares with: a bare `jsonwebtoken::decode` with `exp`/`iss`/`aud` checked.
//! Nothing here validates with the gateway's code; that is what the benches measure.

use gauntlet_core::token::{Algorithm, KeyRing};
use gauntlet_core::{Kid, token::TokenRules};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{FixtureError, NOW_SECS};

#[allow(dead_code)]
mod test_keys {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpora/tokens/keys/keys.rs"
    ));
}
use test_keys::{EC256_PRIV, EC256_PUB, ED_PRIV, ED_PUB, HS256_SECRET, RS256_PRIV, RS256_PUB};

/// `exp` of every bench token: 2100-01-01. Far enough that the wall-clock `exp` check of the
/// `jsonwebtoken` peer passes for decades, while the gateway checks it at [`NOW_SECS`].
const FAR_EXP: u64 = 4_102_444_800;

/// The algorithms the benches sign with, each under its own `kid` in [`TokenKit::ring`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchAlg {
    /// HMAC-SHA256, kid `hs`.
    Hs256,
    /// RSASSA-PKCS1-v1_5 SHA-256 (2048-bit), kid `rs`.
    Rs256,
    /// ECDSA P-256, kid `ec`.
    Es256,
    /// Ed25519, kid `ed`.
    EdDsa,
}

impl BenchAlg {
    fn kid(self) -> &'static str {
        match self {
            BenchAlg::Hs256 => "hs",
            BenchAlg::Rs256 => "rs",
            BenchAlg::Es256 => "ec",
            BenchAlg::EdDsa => "ed",
        }
    }

    fn algorithm(self) -> Algorithm {
        match self {
            BenchAlg::Hs256 => Algorithm::HS256,
            BenchAlg::Rs256 => Algorithm::RS256,
            BenchAlg::Es256 => Algorithm::ES256,
            BenchAlg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// The claims the benches mint: an access token shaped like production ones (about 370
/// bytes as HS256), also the typed target of the `jsonwebtoken` peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerClaims {
    /// Issuer.
    pub iss: String,
    /// Subject (the user).
    pub sub: String,
    /// Token id.
    pub jti: String,
    /// Audience.
    pub aud: String,
    /// Expiry (unix seconds).
    pub exp: u64,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Token type.
    pub token_type: String,
    /// Grants.
    pub permissions: Vec<String>,
    /// Email.
    pub email: String,
}

impl PeerClaims {
    /// An access token for `sub` with token id `jti`, issued a minute before [`NOW_SECS`].
    pub fn access(sub: &str, jti: &str, permissions: &[&str]) -> Self {
        Self {
            iss: "gauntlet-auth".into(),
            sub: sub.into(),
            jti: jti.into(),
            aud: "gauntlet-gateway".into(),
            exp: FAR_EXP,
            iat: NOW_SECS - 60,
            token_type: "access".into(),
            permissions: permissions.iter().map(|p| (*p).to_string()).collect(),
            email: format!("{sub}@example.com"),
        }
    }
}

/// Signing keys for every [`BenchAlg`] and the matching verification ring.
pub struct TokenKit {
    hs: EncodingKey,
    rs: EncodingKey,
    ec: EncodingKey,
    ed: EncodingKey,
}

fn key_err(name: &'static str) -> impl Fn(jsonwebtoken::errors::Error) -> FixtureError {
    move |e| FixtureError::Key {
        name,
        reason: e.to_string(),
    }
}

impl TokenKit {
    /// Loads the committed private keys.
    pub fn new() -> Result<Self, FixtureError> {
        Ok(Self {
            hs: EncodingKey::from_secret(HS256_SECRET).map_err(key_err("hs256.secret"))?,
            rs: EncodingKey::from_rsa_pem(RS256_PRIV).map_err(key_err("rs256.key.pem"))?,
            ec: EncodingKey::from_ec_pem(EC256_PRIV).map_err(key_err("ec256.key.pem"))?,
            ed: EncodingKey::from_ed_pem(ED_PRIV).map_err(key_err("ed25519.key.pem"))?,
        })
    }

    /// The gateway's key ring: `hs`, `rs`, `ec` and `ed`, public halves only.
    pub fn ring() -> Result<KeyRing, FixtureError> {
        let kid = |s: &str| Kid::parse(s).ok_or(FixtureError::BadUser(s.to_string()));
        let ring_err = |name| {
            move |e: gauntlet_core::token::KeyError| FixtureError::Key {
                name,
                reason: e.to_string(),
            }
        };
        let mut ring = KeyRing::new();
        ring.add_hmac(Some(kid("hs")?), Algorithm::HS256, HS256_SECRET)
            .map_err(ring_err("hs256.secret"))?;
        ring.add_public_pem(Some(kid("rs")?), Algorithm::RS256, RS256_PUB)
            .map_err(ring_err("rs256.pub.pem"))?;
        ring.add_public_pem(Some(kid("ec")?), Algorithm::ES256, EC256_PUB)
            .map_err(ring_err("ec256.pub.pem"))?;
        ring.add_public_pem(Some(kid("ed")?), Algorithm::EdDSA, ED_PUB)
            .map_err(ring_err("ed25519.pub.pem"))?;
        Ok(ring)
    }

    /// The HS256 secret (for the floor, which prepares its own HMAC key).
    pub fn hs256_secret() -> &'static [u8] {
        HS256_SECRET
    }

    /// Signs `claims` with `alg` under its `kid`.
    pub fn mint(&self, alg: BenchAlg, claims: &PeerClaims) -> Result<String, FixtureError> {
        let key = match alg {
            BenchAlg::Hs256 => &self.hs,
            BenchAlg::Rs256 => &self.rs,
            BenchAlg::Es256 => &self.ec,
            BenchAlg::EdDsa => &self.ed,
        };
        let mut header = Header::new(alg.algorithm().to_jsonwebtoken());
        header.kid = Some(alg.kid().to_string());
        jsonwebtoken::encode(&header, claims, key).map_err(|e| FixtureError::Mint(e.to_string()))
    }

    /// An HS256 access token for `sub`, token id `jti`.
    pub fn access_hs256(
        &self,
        sub: &str,
        jti: &str,
        permissions: &[&str],
    ) -> Result<String, FixtureError> {
        self.mint(BenchAlg::Hs256, &PeerClaims::access(sub, jti, permissions))
    }
}

/// The `jsonwebtoken` peer, prepared once: decoding key and a validation with `exp`, `iss`
/// and `aud` checked as the gateway's rules require (wall-clock `exp`: see `FAR_EXP`).
pub fn jsonwebtoken_peer() -> Result<(DecodingKey, Validation), FixtureError> {
    let rules = TokenRules::default();
    let key = DecodingKey::from_secret(HS256_SECRET).map_err(key_err("hs256.secret"))?;
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[rules.issuer.as_str()]);
    validation.set_audience(&[rules.user_audience.as_str()]);
    validation.leeway = rules.leeway_secs;
    Ok((key, validation))
}

#[cfg(test)]
mod tests {
    use gauntlet_core::token::{self, TokenType};

    use super::*;
    use crate::now;

    #[test]
    fn minted_tokens_every_alg_validate_with_core() {
        let kit = TokenKit::new().unwrap();
        let ring = TokenKit::ring().unwrap();
        for alg in [
            BenchAlg::Hs256,
            BenchAlg::Rs256,
            BenchAlg::Es256,
            BenchAlg::EdDsa,
        ] {
            let t = kit
                .mint(alg, &PeerClaims::access("u-1", "j-1", &["threads:read"]))
                .unwrap();
            let claims = token::validate(
                t.as_bytes(),
                now(),
                &ring,
                &TokenRules::default(),
                TokenType::Access,
            )
            .unwrap();
            assert_eq!(claims.sub().as_str(), "u-1", "{alg:?}");
        }
    }

    #[test]
    fn hs256_token_is_about_production_size() {
        let kit = TokenKit::new().unwrap();
        let t = kit
            .access_hs256("user-0001", "jti-0001", &["threads:read", "runs:*"])
            .unwrap();
        assert!((300..=420).contains(&t.len()), "{} bytes", t.len());
    }

    #[test]
    fn jsonwebtoken_peer_accepts_minted_and_rejects_wrong_audience() {
        let kit = TokenKit::new().unwrap();
        let (key, validation) = jsonwebtoken_peer().unwrap();
        let good = PeerClaims::access("u-1", "j-1", &[]);
        let t = kit.mint(BenchAlg::Hs256, &good).unwrap();
        let data = jsonwebtoken::decode::<PeerClaims>(&t, &key, &validation).unwrap();
        assert_eq!(data.claims, good);
        let bad = PeerClaims {
            aud: "elsewhere".into(),
            ..good
        };
        let t = kit.mint(BenchAlg::Hs256, &bad).unwrap();
        assert!(jsonwebtoken::decode::<PeerClaims>(&t, &key, &validation).is_err());
    }
}
