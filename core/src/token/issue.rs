//! Token issuing: the signing key and the `Issuer` that mints tokens in the exact claim
//! layout the validator checks (docs/protocol.md section 1).
//!
//! This module owns the private side of the key ring (a [`SigningKey`]) and the claim
//! layout written at mint time. It must never read a clock or an RNG: `now` is a parameter
//! and `jti`s come from a counter, so a simulation run mints the same tokens every time (or
//! from the caller, who draws them at the edge: `Issuer::mint_with_jti`).
//! It must never mint a token the validator would refuse for a reason the caller controls
//! (zero or over-long lifetime, a service token without `svc_id`, an over-long `email`).

use std::fmt;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use super::claims::{email_fits, svc_id_fits};
use super::keys::{MIN_HMAC_SECRET_LEN, MIN_RSA_BITS};
use super::{Algorithm, KeyError, MAX_EMAIL_LEN, MAX_SVC_ID_LEN, TokenRules, TokenType};
use crate::permissions::Permissions;
use crate::{FamilyId, Instant, Jti, Kid, UserId};

/// A private signing key: the `kid` written to the header, the algorithm, and the key material.
#[derive(Clone)]
pub struct SigningKey {
    kid: Option<Kid>,
    alg: Algorithm,
    key: EncodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key (HS256/384/512) from a secret of at least 32 bytes.
    pub fn hmac(kid: Option<Kid>, alg: Algorithm, secret: &[u8]) -> Result<Self, KeyError> {
        if !alg.is_hmac() {
            return Err(KeyError::AlgorithmKeyMismatch { alg: alg.name() });
        }
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(KeyError::WeakSecret { len: secret.len() });
        }
        let key = EncodingKey::from_secret(secret).map_err(|_| KeyError::InvalidKey)?;
        Ok(Self { kid, alg, key })
    }

    /// An RSA (>= 2048-bit; PKCS#1 or PKCS#8), ECDSA (PKCS#8) or Ed25519 (PKCS#8) private key
    /// in PEM form. The key is tried once with a probe signature, so a key that does not fit
    /// `alg` (e.g. a P-384 key for ES256) fails here rather than at the first mint.
    pub fn from_private_pem(
        kid: Option<Kid>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, KeyError> {
        let mismatch = KeyError::AlgorithmKeyMismatch { alg: alg.name() };
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => return Err(mismatch),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => EncodingKey::from_rsa_pem(pem),
        }
        .map_err(|_| KeyError::InvalidKey)?;
        let probe = jsonwebtoken::crypto::sign(b"gauntlet-key-probe", &key, alg.to_jsonwebtoken())
            .map_err(|_| mismatch)?;
        if !matches!(alg, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA) {
            // An RSA signature is exactly as long as the modulus: 4 base64url chars per 3 bytes.
            let bits = probe.len() * 6 / 8 * 8;
            if bits < MIN_RSA_BITS {
                return Err(KeyError::WeakRsaKey { bits });
            }
        }
        Ok(Self { kid, alg, key })
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id written to the header, if any.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }
}

/// What to mint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintRequest {
    /// The subject (`sub`).
    pub sub: UserId,
    /// The `token_type`, which also picks the audience.
    pub token_type: TokenType,
    /// The `permissions` claim.
    pub permissions: Permissions,
    /// Lifetime: `exp = iat + ttl` (whole seconds); 1 s up to the type's lifetime in the rules.
    pub ttl: Duration,
    /// The refresh family (`fam`), for refresh tokens and the access tokens minted with them.
    pub family: Option<FamilyId>,
    /// The `email` claim, at most 254 bytes.
    pub email: Option<String>,
    /// The `svc_id` claim: 1..=128 characters without control characters; required for
    /// service tokens.
    pub svc_id: Option<String>,
}

/// A freshly minted token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minted {
    /// The compact JWS.
    pub token: String,
    /// Its `jti`, the unit of revocation.
    pub jti: Jti,
    /// Its `exp`.
    pub exp: Instant,
}

/// Why a token could not be minted. Nothing is minted; the caller's request was at fault,
/// except for [`IssueError::Signing`].
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The requested lifetime is under one second (the `exp` resolution).
    #[error("token lifetime must be at least one second")]
    ZeroTtl,
    /// The requested lifetime exceeds the type's lifetime: the validator would refuse it as too old.
    #[error("token lifetime {ttl:?} exceeds the {max:?} allowed for its type")]
    TtlTooLong {
        /// The requested lifetime.
        ttl: Duration,
        /// The type's lifetime in the rules.
        max: Duration,
    },
    /// A service token was requested without `svc_id`.
    #[error("service tokens require svc_id")]
    MissingSvcId,
    /// `svc_id` is empty, longer than 128 characters or holds a control character.
    #[error("svc_id must be 1..={MAX_SVC_ID_LEN} characters without control characters")]
    BadSvcId,
    /// `email` is longer than 254 bytes.
    #[error("email longer than {MAX_EMAIL_LEN} bytes")]
    EmailTooLong,
    /// `now` is so far in the future that `exp` does not fit a NumericDate.
    #[error("expiry out of range")]
    ExpiryOutOfRange,
    /// The signer refused the key (a key that passed `SigningKey`'s checks should never do this).
    #[error("signing failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// The claims written, in the names docs/protocol.md section 1 and RFC 7519 section 4.1 use.
#[derive(Serialize)]
struct OutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    iat: u64,
    nbf: u64,
    jti: &'a str,
    token_type: TokenType,
    permissions: &'a Permissions,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fam: Option<&'a str>,
}

/// Mints tokens with one signing key under one set of rules (issuer, audiences, lifetimes).
#[derive(Clone, Debug)]
pub struct Issuer {
    key: SigningKey,
    header: Header,
    rules: TokenRules,
    counter: u64,
}

impl Issuer {
    /// An issuer signing with `key` and writing `iss`/`aud` from `rules`.
    pub fn new(key: SigningKey, rules: TokenRules) -> Self {
        let header = header_for(&key);
        Self {
            key,
            header,
            rules,
            counter: 0,
        }
    }

    /// Mints a token as of `now`: `iat = nbf = now` (whole seconds), `exp = iat + ttl`, and a
    /// fresh `jti` from the issuer's counter.
    ///
    /// The counter makes ids unique per issuer instance, which is what a deterministic world
    /// needs; two issuer instances minting in the same second give the same ids. A caller
    /// without one long-lived issuer (the command line) uses [`Issuer::mint_with_jti`].
    pub fn mint(&mut self, now: Instant, req: &MintRequest) -> Result<Minted, IssueError> {
        let exp = self.checked_exp(now, req)?;
        let iat = now.unix_secs();
        // Counted only once the request is known to be valid, as before `mint_with_jti`
        // existed, so a world's ids (and state hashes) stay the same.
        self.counter = self.counter.wrapping_add(1);
        // Unique per issuer instance; the iat part keeps ids of a restarted issuer distinct.
        let Some(jti) = Jti::parse(&format!("j{iat:x}-{}", self.counter)) else {
            unreachable!("at most 38 ascii characters is always a valid jti")
        };
        self.sign(iat, exp, req, jti)
    }

    /// [`Issuer::mint`] with the caller's `jti`, which the caller must make unique (e.g. 128
    /// bits from the OS random number generator): revoking a `jti` revokes every token
    /// carrying it. The issuer's counter is left alone.
    pub fn mint_with_jti(
        &self,
        now: Instant,
        req: &MintRequest,
        jti: Jti,
    ) -> Result<Minted, IssueError> {
        let exp = self.checked_exp(now, req)?;
        self.sign(now.unix_secs(), exp, req, jti)
    }

    /// Checks the request against the rules and returns its `exp`.
    fn checked_exp(&self, now: Instant, req: &MintRequest) -> Result<u64, IssueError> {
        let max = self.rules.lifetime_for(req.token_type);
        let ttl_secs = req.ttl.as_secs();
        if ttl_secs == 0 {
            return Err(IssueError::ZeroTtl);
        }
        if req.ttl > max {
            return Err(IssueError::TtlTooLong { ttl: req.ttl, max });
        }
        let svc_id = req.svc_id.as_deref();
        if req.token_type == TokenType::Service && svc_id.is_none() {
            return Err(IssueError::MissingSvcId);
        }
        // The validator's own predicates: a token it would refuse is never minted.
        if svc_id.is_some_and(|s| !svc_id_fits(s)) {
            return Err(IssueError::BadSvcId);
        }
        if req.email.as_deref().is_some_and(|e| !email_fits(e)) {
            return Err(IssueError::EmailTooLong);
        }
        now.unix_secs()
            .checked_add(ttl_secs)
            .filter(|e| e.checked_mul(1_000_000_000).is_some())
            .ok_or(IssueError::ExpiryOutOfRange)
    }

    /// Signs a request [`Issuer::checked_exp`] accepted.
    fn sign(&self, iat: u64, exp: u64, req: &MintRequest, jti: Jti) -> Result<Minted, IssueError> {
        let claims = OutClaims {
            iss: &self.rules.issuer,
            sub: req.sub.as_str(),
            aud: self.rules.audience_for(req.token_type),
            exp,
            iat,
            nbf: iat,
            jti: jti.as_str(),
            token_type: req.token_type,
            permissions: &req.permissions,
            email: req.email.as_deref(),
            svc_id: req.svc_id.as_deref(),
            fam: req.family.as_ref().map(FamilyId::as_str),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.key.key)
            .map_err(IssueError::Signing)?;
        Ok(Minted {
            token,
            jti,
            exp: Instant::from_unix_secs(exp),
        })
    }

    /// The key currently signing.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The rules the issuer writes `iss`, `aud` and lifetimes from.
    pub fn rules(&self) -> &TokenRules {
        &self.rules
    }

    /// Switches to signing with `key` (key rotation) and returns the previous key.
    pub fn replace_key(&mut self, key: SigningKey) -> SigningKey {
        self.header = header_for(&key);
        std::mem::replace(&mut self.key, key)
    }
}

fn header_for(key: &SigningKey) -> Header {
    let mut header = Header::new(key.alg.to_jsonwebtoken());
    header.kid = key.kid.as_ref().map(|k| k.as_str().to_string());
    header
}
