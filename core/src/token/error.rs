//! The token layer's error types: `TokenError` for a rejected token, `KeyError` for a
//! rejected key. Each rejection reason is its own variant with a stable snake_case code, so
//! the gateway, the simulator's checkers and the attack table can match on it. This module
//! must never carry secret material or the token itself in an error.

use std::fmt;

use thiserror::Error;

/// Which part of a JWS compact token was malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenPart {
    /// The overall `header.payload.signature` shape.
    Structure,
    /// The protected header (first part).
    Header,
    /// The claims payload (second part).
    Payload,
    /// The signature (third part).
    Signature,
}

impl fmt::Display for TokenPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenPart::Structure => "structure",
            TokenPart::Header => "header",
            TokenPart::Payload => "payload",
            TokenPart::Signature => "signature",
        })
    }
}

/// Why a part of a token was malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MalformedReason {
    /// Not exactly three `.`-separated parts.
    PartCount,
    /// Not canonical unpadded base64url (bad alphabet, padding, or non-zero trailing bits).
    Base64,
    /// Not valid UTF-8 JSON.
    Json,
    /// Valid JSON, but not an object.
    NotObject,
    /// An object key appears twice (at any nesting depth).
    DuplicateKey,
    /// The header has no `alg`, or it is not a string.
    MissingAlg,
    /// The header `kid` is not a string.
    BadKid,
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MalformedReason::PartCount => "not exactly three parts",
            MalformedReason::Base64 => "not canonical unpadded base64url",
            MalformedReason::Json => "not valid json",
            MalformedReason::NotObject => "not a json object",
            MalformedReason::DuplicateKey => "duplicate json key",
            MalformedReason::MissingAlg => "missing or non-string alg",
            MalformedReason::BadKid => "non-string kid",
        })
    }
}

/// Why a token was rejected. One variant per distinct reason; see [`TokenError::code`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TokenError {
    /// The token is longer than `TokenRules::max_len`; nothing was decoded.
    #[error("token is {len} bytes, over the {max} byte limit")]
    TooLong {
        /// The token's length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The token is not well-formed JWS compact serialization.
    #[error("malformed token {part}: {reason}")]
    Malformed {
        /// The part that failed to decode.
        part: TokenPart,
        /// What was wrong with it.
        reason: MalformedReason,
    },
    /// The header `alg` is `none` (in any letter case); unsigned tokens are never accepted.
    #[error("unsigned token (alg none)")]
    AlgorithmNone,
    /// The header `alg` differs from the algorithm of the key selected for the token.
    #[error("header alg does not match the key's algorithm")]
    AlgorithmMismatch,
    /// No key in the ring matches the token's `kid` (or there is no `kid` and the ring holds
    /// more than one key).
    #[error("no key for this token")]
    UnknownKey,
    /// The selected key has been retired.
    #[error("the token's key is retired")]
    KeyRetired,
    /// The header carries a key-locating parameter that is never honoured.
    #[error("forbidden header parameter {name}")]
    ForbiddenHeader {
        /// The parameter: `jku`, `x5u`, `jwk` or `x5c`.
        name: &'static str,
    },
    /// The header has a `crit` parameter; no extension is understood, so it is always rejected.
    #[error("critical header extension not understood")]
    CriticalHeader,
    /// The signature does not verify under the selected key.
    #[error("bad signature")]
    BadSignature,
    /// A required claim is absent.
    #[error("missing claim {claim}")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim is present but has the wrong type, length or range.
    #[error("invalid claim {claim}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the audience for the expected token type.
    #[error("wrong audience")]
    WrongAudience,
    /// `token_type` is not the expected type.
    #[error("wrong token type")]
    WrongTokenType,
    /// `now >= exp + leeway`.
    #[error("token expired")]
    Expired,
    /// `now + leeway < nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is more than `max_iat_future` after `now`.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the token type's lifetime plus leeway.
    #[error("token too old")]
    TooOld,
    /// `permissions` is not an array of at most 50 valid permission strings.
    #[error("bad permissions claim")]
    BadPermissions,
    /// The token (its `jti`, or every token of its user issued before a cut-off) is revoked.
    #[error("token revoked")]
    Revoked,
}

impl TokenError {
    /// Every code [`TokenError::code`] can return: what a refusal names when the token itself
    /// was judged (rather than, say, the connection cap or the Origin).
    pub const CODES: [&'static str; 20] = [
        "too_long",
        "malformed",
        "algorithm_none",
        "algorithm_mismatch",
        "unknown_key",
        "key_retired",
        "forbidden_header",
        "critical_header",
        "bad_signature",
        "missing_claim",
        "invalid_claim",
        "wrong_issuer",
        "wrong_audience",
        "wrong_token_type",
        "expired",
        "not_yet_valid",
        "issued_in_future",
        "too_old",
        "bad_permissions",
        "revoked",
    ];

    /// A stable snake_case code for logs, close reasons and the attack-table manifest.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::TooLong { .. } => "too_long",
            TokenError::Malformed { .. } => "malformed",
            TokenError::AlgorithmNone => "algorithm_none",
            TokenError::AlgorithmMismatch => "algorithm_mismatch",
            TokenError::UnknownKey => "unknown_key",
            TokenError::KeyRetired => "key_retired",
            TokenError::ForbiddenHeader { .. } => "forbidden_header",
            TokenError::CriticalHeader => "critical_header",
            TokenError::BadSignature => "bad_signature",
            TokenError::MissingClaim { .. } => "missing_claim",
            TokenError::InvalidClaim { .. } => "invalid_claim",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::WrongTokenType => "wrong_token_type",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::IssuedInFuture => "issued_in_future",
            TokenError::TooOld => "too_old",
            TokenError::BadPermissions => "bad_permissions",
            TokenError::Revoked => "revoked",
        }
    }

    pub(crate) const fn malformed(part: TokenPart, reason: MalformedReason) -> Self {
        TokenError::Malformed { part, reason }
    }
}

/// Why a key (or a JWKS) was refused by the key ring.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum KeyError {
    /// An HMAC secret shorter than 32 bytes.
    #[error("hmac secret is {len} bytes, at least 32 are required")]
    WeakSecret {
        /// The secret's length in bytes.
        len: usize,
    },
    /// An RSA modulus shorter than 2048 bits.
    #[error("rsa key is {bits} bits, at least 2048 are required")]
    WeakRsaKey {
        /// The modulus size in bits.
        bits: usize,
    },
    /// The key material does not fit the algorithm (e.g. an EC key for RS256, an HMAC
    /// algorithm for a public PEM, a P-384 key for ES256).
    #[error("key does not fit algorithm {alg}")]
    AlgorithmKeyMismatch {
        /// The algorithm the key was offered for.
        alg: &'static str,
    },
    /// The key material could not be parsed.
    #[error("invalid key material")]
    InvalidKey,
    /// A key with this `kid` (or a second key without `kid`) is already in the ring.
    #[error("duplicate key id")]
    DuplicateKid,
    /// The ring already holds its maximum number of keys.
    #[error("key ring is full ({max} keys)")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// `retire` named a kid the ring does not hold.
    #[error("no key with that id")]
    UnknownKid,
    /// The JWKS document is not valid JSON of the RFC 7517 shape, or is too large.
    #[error("invalid jwks document")]
    InvalidJwks,
    /// A JWK lacks a parameter needed to use it (`alg` for RSA and oct keys, `n`, `x`, ...).
    #[error("jwk missing parameter {param}")]
    MissingJwkParam {
        /// The missing parameter.
        param: &'static str,
    },
    /// A JWK names an algorithm or key type this ring does not support.
    #[error("unsupported jwk algorithm or key type")]
    UnsupportedJwk,
    /// No jsonwebtoken crypto provider is available (a build-configuration error).
    #[error("no jsonwebtoken crypto provider")]
    NoCryptoProvider,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_part_display_names_each_part() {
        let names: Vec<String> = [
            TokenPart::Structure,
            TokenPart::Header,
            TokenPart::Payload,
            TokenPart::Signature,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(names, ["structure", "header", "payload", "signature"]);
    }

    #[test]
    fn malformed_reason_display_describes_each_reason() {
        let cases = [
            (MalformedReason::PartCount, "not exactly three parts"),
            (MalformedReason::Base64, "not canonical unpadded base64url"),
            (MalformedReason::Json, "not valid json"),
            (MalformedReason::NotObject, "not a json object"),
            (MalformedReason::DuplicateKey, "duplicate json key"),
            (MalformedReason::MissingAlg, "missing or non-string alg"),
            (MalformedReason::BadKid, "non-string kid"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text, "{reason:?}");
        }
    }

    /// Every variant with its code and its message: the code is the stable contract, the
    /// message never names the token or key material.
    fn token_error_cases() -> Vec<(TokenError, &'static str, &'static str)> {
        vec![
            (
                TokenError::TooLong {
                    len: 9000,
                    max: 8192,
                },
                "too_long",
                "token is 9000 bytes, over the 8192 byte limit",
            ),
            (
                TokenError::malformed(TokenPart::Payload, MalformedReason::DuplicateKey),
                "malformed",
                "malformed token payload: duplicate json key",
            ),
            (
                TokenError::AlgorithmNone,
                "algorithm_none",
                "unsigned token (alg none)",
            ),
            (
                TokenError::AlgorithmMismatch,
                "algorithm_mismatch",
                "header alg does not match the key's algorithm",
            ),
            (
                TokenError::UnknownKey,
                "unknown_key",
                "no key for this token",
            ),
            (
                TokenError::KeyRetired,
                "key_retired",
                "the token's key is retired",
            ),
            (
                TokenError::ForbiddenHeader { name: "jku" },
                "forbidden_header",
                "forbidden header parameter jku",
            ),
            (
                TokenError::CriticalHeader,
                "critical_header",
                "critical header extension not understood",
            ),
            (TokenError::BadSignature, "bad_signature", "bad signature"),
            (
                TokenError::MissingClaim { claim: "exp" },
                "missing_claim",
                "missing claim exp",
            ),
            (
                TokenError::InvalidClaim { claim: "sub" },
                "invalid_claim",
                "invalid claim sub",
            ),
            (TokenError::WrongIssuer, "wrong_issuer", "wrong issuer"),
            (
                TokenError::WrongAudience,
                "wrong_audience",
                "wrong audience",
            ),
            (
                TokenError::WrongTokenType,
                "wrong_token_type",
                "wrong token type",
            ),
            (TokenError::Expired, "expired", "token expired"),
            (
                TokenError::NotYetValid,
                "not_yet_valid",
                "token not yet valid",
            ),
            (
                TokenError::IssuedInFuture,
                "issued_in_future",
                "token issued in the future",
            ),
            (TokenError::TooOld, "too_old", "token too old"),
            (
                TokenError::BadPermissions,
                "bad_permissions",
                "bad permissions claim",
            ),
            (TokenError::Revoked, "revoked", "token revoked"),
        ]
    }

    #[test]
    fn token_error_each_variant_has_its_code_and_message() {
        let cases = token_error_cases();
        assert_eq!(cases.len(), 20, "one case per TokenError variant");
        for (err, code, text) in &cases {
            assert_eq!(err.code(), *code, "{err:?}");
            assert_eq!(err.to_string(), *text, "{err:?}");
        }
    }

    #[test]
    fn token_error_codes_are_distinct_snake_case() {
        let mut codes: Vec<&str> = token_error_cases().iter().map(|(e, ..)| e.code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 20);
        let mut listed = TokenError::CODES.to_vec();
        listed.sort_unstable();
        assert_eq!(
            codes, listed,
            "TokenError::CODES lists exactly the variants' codes"
        );
    }

    #[test]
    fn key_error_display_describes_each_variant() {
        let cases = [
            (
                KeyError::WeakSecret { len: 16 },
                "hmac secret is 16 bytes, at least 32 are required",
            ),
            (
                KeyError::WeakRsaKey { bits: 1024 },
                "rsa key is 1024 bits, at least 2048 are required",
            ),
            (
                KeyError::AlgorithmKeyMismatch { alg: "RS256" },
                "key does not fit algorithm RS256",
            ),
            (KeyError::InvalidKey, "invalid key material"),
            (KeyError::DuplicateKid, "duplicate key id"),
            (
                KeyError::TooManyKeys { max: 16 },
                "key ring is full (16 keys)",
            ),
            (KeyError::UnknownKid, "no key with that id"),
            (KeyError::InvalidJwks, "invalid jwks document"),
            (
                KeyError::MissingJwkParam { param: "n" },
                "jwk missing parameter n",
            ),
            (
                KeyError::UnsupportedJwk,
                "unsupported jwk algorithm or key type",
            ),
            (
                KeyError::NoCryptoProvider,
                "no jsonwebtoken crypto provider",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text, "{err:?}");
        }
    }
}
