//! The other signers of the JWK Set the auth node publishes, and the weak keys a reload of it
//! must refuse (docs/protocol.md section 5).
//!
//! Beside the auth service's own HMAC keys, the identity provider publishes the keys of
//! partner issuers, one of each asymmetric family the ring accepts (`AUTH-ALGORITHMS`):
//! ES256 without `alg` (the curve fixes it), ES384, EdDSA (Ed25519) and PS256; and, as a
//! careless operator would, two decoys a ring must skip (`AUTH-KEY-RING`): a key for
//! encryption (`use: enc`) and one whose `key_ops` lack `verify`. The attacker holds the
//! decoys' private keys, so a ring that kept them would accept their tokens.
//!
//! This module owns those private keys and the entries published for them, built once per
//! run (parsing the PEMs and the probe signature are slow), and mints the tokens the world
//! presents with them. It never builds a ring (the auth node does, from the whole document),
//! never judges a verdict (the checkers do) and draws no randomness: the caller's draw picks
//! the key, and `jti`s come from a counter.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gauntlet_core::permissions::Permissions;
use gauntlet_core::token::{
    Algorithm, Issuer, KeyError, KeyRing, MIN_HMAC_SECRET_LEN, MintRequest, SigningKey, TokenRules,
    TokenType,
};
use gauntlet_core::{Instant, Jti, Kid, UserId};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

use crate::checker::{CredTruth, PARTNER_KID_PREFIX};

const EC256_PRIV: &[u8] = include_bytes!("../../../corpora/tokens/keys/ec256.key.pem");
const EC384_PRIV: &[u8] = include_bytes!("../../../corpora/tokens/keys/ec384.key.pem");
const ED_PRIV: &[u8] = include_bytes!("../../../corpora/tokens/keys/ed25519.key.pem");
const RS256_PRIV: &[u8] = include_bytes!("../../../corpora/tokens/keys/rs256.key.pem");
/// A 1024-bit RSA public key: below the 2048 bits the ring requires.
const RSA1024_PUB: &[u8] = include_bytes!("../../../corpora/tokens/keys/rsa1024.pub.pem");

/// The attack-table case a token of the `use: enc` decoy stands for.
pub(crate) const DECOY_USE_ENC: &str = "jwks_use_enc";
/// The attack-table case a token of the decoy whose `key_ops` lack `verify` stands for.
pub(crate) const DECOY_SIGN_ONLY: &str = "jwks_key_ops_without_verify";

/// How long a partner's access token lives: well inside the test environment's 5 minutes.
const PARTNER_TTL: Duration = Duration::from_secs(60);

/// How a signer's key appears in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// A usable signing key, naming its `alg` or, when `names_alg` is false, leaving the
    /// curve to fix it.
    Partner { names_alg: bool },
    /// A key the ring must skip, published as the decoy `case` says.
    Decoy { case: &'static str },
}

/// The signers, in the document's order: kid suffix, algorithm, private key, entry.
const SIGNERS: [(&str, Algorithm, &[u8], Entry); 6] = [
    (
        "es256",
        Algorithm::ES256,
        EC256_PRIV,
        Entry::Partner { names_alg: false },
    ),
    (
        "es384",
        Algorithm::ES384,
        EC384_PRIV,
        Entry::Partner { names_alg: true },
    ),
    (
        "eddsa",
        Algorithm::EdDSA,
        ED_PRIV,
        Entry::Partner { names_alg: true },
    ),
    (
        "ps256",
        Algorithm::PS256,
        RS256_PRIV,
        Entry::Partner { names_alg: true },
    ),
    (
        "enc",
        Algorithm::ES256,
        EC256_PRIV,
        Entry::Decoy {
            case: DECOY_USE_ENC,
        },
    ),
    (
        "sign-only",
        Algorithm::EdDSA,
        ED_PRIV,
        Entry::Decoy {
            case: DECOY_SIGN_ONLY,
        },
    ),
];

/// One signer: how it is published, its issuer, and its entry in the document.
struct Signer {
    entry: Entry,
    issuer: Issuer,
    jwk: Value,
}

/// A weak key a reload's document carries beside the good ones (`AUTH-KEY-STRENGTH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Weak {
    /// An HMAC secret one byte short of the minimum.
    Secret,
    /// The 1024-bit RSA key.
    Rsa,
}

/// The partner and decoy signers, the weak entries, and the partners' `jti` counter.
pub(super) struct PartnerKeys {
    signers: Vec<Signer>,
    weak_secret: Value,
    weak_rsa: Value,
    minted: u64,
}

impl PartnerKeys {
    /// The signers, minting under `rules` (the gateway's issuer and audiences).
    pub(super) fn new(rules: &TokenRules) -> Result<Self, String> {
        let signers = built_keys()?
            .iter()
            .map(|(entry, key, jwk)| Signer {
                entry: *entry,
                issuer: Issuer::new(key.clone(), rules.clone()),
                jwk: jwk.clone(),
            })
            .collect();
        let short = vec![b'w'; MIN_HMAC_SECRET_LEN - 1];
        let weak_secret = json!({
            "kty": "oct",
            "kid": "weak-hs256",
            "use": "sig",
            "alg": "HS256",
            "k": URL_SAFE_NO_PAD.encode(short),
        });
        let rsa = DecodingKey::from_rsa_pem(RSA1024_PUB).map_err(|e| e.to_string())?;
        let mut weak_rsa = Jwk::from_decoding_key(&rsa, None)
            .map_err(|e| e.to_string())
            .and_then(|j| serde_json::to_value(j).map_err(|e| e.to_string()))?;
        published(&mut weak_rsa, "weak-rs256", Some(Algorithm::RS256));
        Ok(Self {
            signers,
            weak_secret,
            weak_rsa,
            minted: 0,
        })
    }

    /// The entries published for the partners and decoys, in a fixed order.
    pub(super) fn entries(&self) -> impl Iterator<Item = &Value> {
        self.signers.iter().map(|s| &s.jwk)
    }

    /// The entry of `weak`.
    pub(super) fn weak_entry(&self, weak: Weak) -> &Value {
        match weak {
            Weak::Secret => &self.weak_secret,
            Weak::Rsa => &self.weak_rsa,
        }
    }

    /// A token for `user`, minted at `now` by signer `pick` (modulo the number of signers),
    /// and what it is: a partner's access token ([`CredTruth::Access`], to be accepted as
    /// `user`) or a decoy's ([`CredTruth::Table`], to be refused `unknown_key`). `None` when
    /// the issuer refuses (never, for these requests).
    pub(super) fn mint(
        &mut self,
        pick: u64,
        now: Instant,
        user: &UserId,
    ) -> Option<(String, CredTruth)> {
        let len = u64::try_from(self.signers.len()).ok()?;
        let signer = self
            .signers
            .get(usize::try_from(pick.checked_rem(len)?).ok()?)?;
        self.minted += 1;
        // Their own id space: never one the auth service or the attacker's issuer mints.
        let jti = Jti::parse(&format!("p{}", self.minted))?;
        let req = MintRequest {
            sub: user.clone(),
            token_type: TokenType::Access,
            permissions: Permissions::empty(),
            ttl: PARTNER_TTL,
            family: None,
            email: None,
            svc_id: None,
        };
        let m = signer.issuer.mint_with_jti(now, &req, jti).ok()?;
        let kid = signer.issuer.key().kid()?.clone();
        let truth = match signer.entry {
            Entry::Partner { .. } => {
                // Whole seconds, as its `iat`: no logout moves a partner's mint time, so a
                // cut-off above it revokes it (see `CredTruth::Access::foreign_iat`).
                let iat = Instant::from_unix_secs(now.unix_secs());
                let (nbf_claim, iat_claim) = crate::workload::nbf_iat_of(&m.token);
                CredTruth::Access {
                    user: user.clone(),
                    jti: m.jti,
                    minted: iat,
                    exp: m.exp,
                    kid: Some(kid),
                    family: None,
                    foreign_iat: Some(iat),
                    nbf: nbf_claim,
                    iat: iat_claim,
                }
            }
            Entry::Decoy { case } => CredTruth::Table {
                case: case.to_string(),
                expected: "unknown_key".to_string(),
                kid,
            },
        };
        Some((m.token, truth))
    }
}

/// What building a ring from a document that carries `weak` answered, judged: `Err` says
/// how it broke `AUTH-KEY-STRENGTH` (the ring was built, or refused for another reason).
pub(super) fn judge_weak(weak: Weak, built: Result<KeyRing, KeyError>) -> Result<(), String> {
    let what = match weak {
        Weak::Secret => format!("a {}-byte HMAC secret", MIN_HMAC_SECRET_LEN - 1),
        Weak::Rsa => "a 1024-bit RSA key".to_string(),
    };
    match (weak, built) {
        (Weak::Secret, Err(KeyError::WeakSecret { len })) if len == MIN_HMAC_SECRET_LEN - 1 => {
            Ok(())
        }
        (Weak::Rsa, Err(KeyError::WeakRsaKey { bits: 1024 })) => Ok(()),
        (_, Ok(ring)) => Err(format!(
            "a JWKS with {what} built a ring of {} keys; weak keys must be refused",
            ring.len()
        )),
        (_, Err(e)) => Err(format!(
            "a JWKS with {what} was refused as {e:?}, not as a weak key"
        )),
    }
}

/// A signer's entry kind, signing key and published entry.
type BuiltKey = (Entry, SigningKey, Value);

/// Every signer's entry kind, signing key and published entry, built once per process: the
/// keys are constants, and parsing their PEMs (an RSA key's with a probe signature) was
/// milliseconds of every seed's start.
fn built_keys() -> Result<&'static [BuiltKey], String> {
    static KEYS: OnceLock<Result<Vec<BuiltKey>, String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        SIGNERS
            .iter()
            .map(|&(suffix, alg, pem, entry)| signer(suffix, alg, pem, entry))
            .collect()
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// Signer `suffix`'s signing key and published entry, from its private key.
fn signer(suffix: &str, alg: Algorithm, pem: &[u8], entry: Entry) -> Result<BuiltKey, String> {
    let prefix = match entry {
        Entry::Partner { .. } => PARTNER_KID_PREFIX,
        Entry::Decoy { .. } => "decoy-",
    };
    let name = format!("{prefix}{suffix}");
    let kid = Kid::parse(&name).ok_or_else(|| format!("kid {name}"))?;
    let key = SigningKey::from_private_pem(Some(kid), alg, pem).map_err(|e| e.to_string())?;
    let encoding = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
        _ => EncodingKey::from_rsa_pem(pem),
    }
    .map_err(|e| e.to_string())?;
    let mut jwk = Jwk::from_encoding_key(&encoding, alg.to_jsonwebtoken())
        .map_err(|e| e.to_string())
        .and_then(|j| serde_json::to_value(j).map_err(|e| e.to_string()))?;
    match entry {
        Entry::Partner { names_alg } => {
            published(&mut jwk, &name, names_alg.then_some(alg));
        }
        Entry::Decoy { case } => {
            published(&mut jwk, &name, Some(alg));
            // Otherwise a good signing key: only what the case names makes it unusable.
            if case == DECOY_USE_ENC {
                jwk["use"] = json!("enc");
            } else {
                jwk["key_ops"] = json!(["sign"]);
            }
        }
    }
    Ok((entry, key, jwk))
}

/// Sets a public JWK's `kid`, `use: sig` and `alg` (none: left to the curve).
fn published(jwk: &mut Value, kid: &str, alg: Option<Algorithm>) {
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), json!(kid));
        o.insert("use".into(), json!("sig"));
        match alg {
            Some(alg) => o.insert("alg".into(), json!(alg.name())),
            None => o.remove("alg"),
        };
    }
}

#[cfg(test)]
mod tests {
    use gauntlet_core::token::{TokenError, validate};

    use super::*;

    fn rules() -> TokenRules {
        let mut config = gauntlet_core::Config::default();
        config.tokens.environment = gauntlet_core::token::Environment::Test;
        config.tokens
    }

    fn document(keys: &PartnerKeys, extra: Option<&Value>) -> Vec<u8> {
        let entries: Vec<&Value> = keys.entries().chain(extra).collect();
        serde_json::to_vec(&json!({ "keys": entries })).unwrap_or_default()
    }

    #[test]
    fn published_partners_validate_and_decoys_are_unknown_keys() {
        let rules = rules();
        let mut keys = PartnerKeys::new(&rules).unwrap_or_else(|e| unreachable!("{e}"));
        let ring =
            KeyRing::from_jwks(&document(&keys, None)).unwrap_or_else(|e| unreachable!("{e}"));
        // The four partners, not the two decoys.
        assert_eq!(ring.len(), 4);
        let now = Instant::from_unix_secs(1_800_000_000);
        let user = UserId::parse("u7").unwrap_or_else(|| unreachable!());
        let mut seen = Vec::new();
        for pick in 0..6 {
            let (token, truth) = keys
                .mint(pick, now, &user)
                .unwrap_or_else(|| unreachable!("signer {pick}"));
            let verdict = validate(token.as_bytes(), now, &ring, &rules, TokenType::Access);
            match truth {
                CredTruth::Access { kid, user: u, .. } => {
                    let claims = verdict.unwrap_or_else(|e| unreachable!("{kid:?}: {e:?}"));
                    assert_eq!(claims.sub(), &user);
                    assert_eq!(claims.jti().as_str(), format!("p{}", pick + 1));
                    assert_eq!(u, user);
                    let kid = kid.unwrap_or_else(|| unreachable!());
                    assert!(ring.contains(&kid));
                    seen.push(kid.as_str().to_string());
                }
                CredTruth::Table {
                    case,
                    expected,
                    kid,
                } => {
                    assert_eq!(expected, "unknown_key");
                    assert!(!ring.contains(&kid), "{case}");
                    assert_eq!(verdict.err(), Some(TokenError::UnknownKey), "{case}");
                    seen.push(case);
                }
                other => unreachable!("{other:?}"),
            }
        }
        assert_eq!(
            seen,
            [
                "partner-es256",
                "partner-es384",
                "partner-eddsa",
                "partner-ps256",
                DECOY_USE_ENC,
                DECOY_SIGN_ONLY,
            ]
        );
        // Each token its own id, from the partners' own space.
        let (_, again) = keys.mint(0, now, &user).unwrap_or_else(|| unreachable!());
        assert!(matches!(again, CredTruth::Access { jti, .. } if jti.as_str() == "p7"));
    }

    #[test]
    fn partner_entries_name_their_algorithm_except_where_the_curve_fixes_it() {
        let keys = PartnerKeys::new(&rules()).unwrap_or_else(|e| unreachable!("{e}"));
        let shape: Vec<(&str, &str, Option<&str>, Option<&str>)> = keys
            .entries()
            .map(|e| {
                (
                    e["kid"].as_str().unwrap_or(""),
                    e["kty"].as_str().unwrap_or(""),
                    e["alg"].as_str(),
                    e["use"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("partner-es256", "EC", None, Some("sig")),
                ("partner-es384", "EC", Some("ES384"), Some("sig")),
                ("partner-eddsa", "OKP", Some("EdDSA"), Some("sig")),
                ("partner-ps256", "RSA", Some("PS256"), Some("sig")),
                ("decoy-enc", "EC", Some("ES256"), Some("enc")),
                ("decoy-sign-only", "OKP", Some("EdDSA"), Some("sig")),
            ]
        );
        let sign_only = keys.entries().last().map(|e| e["key_ops"].clone());
        assert_eq!(sign_only, Some(json!(["sign"])));
    }

    #[test]
    fn a_document_with_a_weak_key_is_refused_with_its_typed_error() {
        let keys = PartnerKeys::new(&rules()).unwrap_or_else(|e| unreachable!("{e}"));
        for (weak, expected) in [
            (Weak::Secret, KeyError::WeakSecret { len: 31 }),
            (Weak::Rsa, KeyError::WeakRsaKey { bits: 1024 }),
        ] {
            let built = KeyRing::from_jwks(&document(&keys, Some(keys.weak_entry(weak))));
            assert_eq!(built.as_ref().err(), Some(&expected));
            assert_eq!(judge_weak(weak, built), Ok(()));
        }
        // A builder that let the weak key in, or refused the document for another reason,
        // is judged wrong.
        let good = KeyRing::from_jwks(&document(&keys, None));
        let built = judge_weak(Weak::Secret, good);
        assert!(built.is_err_and(|m| m.contains("built a ring of 4 keys")));
        let other = judge_weak(Weak::Rsa, Err(KeyError::InvalidJwks));
        assert!(other.is_err_and(|m| m.contains("InvalidJwks")));
        let swapped = judge_weak(Weak::Rsa, Err(KeyError::WeakSecret { len: 31 }));
        assert!(swapped.is_err());
    }
}
