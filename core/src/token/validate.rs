//! `validate`: the full check of one token against a key ring and the rules, with time
//! passed in. Runs the JWS layer, parses the payload once into borrowed members, then
//! applies the claim rules in a fixed order. It must never read a clock, consult
//! revocations (that is the `Validator`'s job) or cache anything.

use crate::Instant;
use crate::plant::Plants;

use super::claims::{Claims, Payload, PayloadSeed, TokenType};
use super::error::{TokenError, TokenPart};
#[cfg(test)]
use super::jws::verify_signature;
use super::jws::{self, Scratch};
use super::keys::KeyRing;
use super::rules::TokenRules;
use super::strict_json::parse_json;

/// Validates `token` at `now` as a token of type `expected`.
///
/// Checks, in order: length, structure and encoding, header rules (`alg` not `none`, no
/// `jku`/`x5u`/`jwk`/`x5c`, no `crit`), key selection and retirement, `alg` equal to the
/// key's algorithm, the signature, then the claims (presence and types, `iss`,
/// `token_type`, `aud`, `exp`, `nbf`, `iat`, `svc_id`). Revocation is not checked here.
pub fn validate(
    token: &[u8],
    now: Instant,
    ring: &KeyRing,
    rules: &TokenRules,
    expected: TokenType,
) -> Result<Claims, TokenError> {
    validate_with(token, now, ring, rules, expected, Plants::NONE)
}

pub(crate) fn validate_with(
    token: &[u8],
    now: Instant,
    ring: &KeyRing,
    rules: &TokenRules,
    expected: TokenType,
    plants: Plants,
) -> Result<Claims, TokenError> {
    let mut scratch = Scratch::new();
    let verified = jws::verify(token, ring, rules, plants, &mut scratch)?;
    let audience = rules.audience_for(expected);
    let mut payload = Payload::default();
    parse_json(
        TokenPart::Payload,
        verified.payload,
        PayloadSeed {
            audience,
            out: &mut payload,
        },
    )?;
    let checked = payload.check(&rules.issuer, verified.key.kid().cloned())?;
    if !checked.issuer_ok {
        return Err(TokenError::WrongIssuer);
    }
    let claims = checked.claims;
    if claims.token_type() != expected {
        return Err(TokenError::WrongTokenType);
    }
    if !checked.audience_ok {
        return Err(TokenError::WrongAudience);
    }
    check_times(&claims, now, rules)?;
    if expected == TokenType::Service && claims.svc_id().is_none() {
        return Err(TokenError::MissingClaim { claim: "svc_id" });
    }
    Ok(claims)
}

/// The time rules: also re-run on every cache hit, since they are the ones `now` changes.
pub(crate) fn check_times(
    claims: &Claims,
    now: Instant,
    rules: &TokenRules,
) -> Result<(), TokenError> {
    check_expiry(claims, now, rules)?;
    check_start(claims, now, rules)
}

/// The start-of-life rules: `nbf` (with leeway) and `iat` not too far in the future.
pub(crate) fn check_start(
    claims: &Claims,
    now: Instant,
    rules: &TokenRules,
) -> Result<(), TokenError> {
    if claims
        .nbf()
        .is_some_and(|nbf| now.saturating_add(rules.leeway()) < nbf)
    {
        return Err(TokenError::NotYetValid);
    }
    if claims.iat() > now.saturating_add(rules.max_iat_future()) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(())
}

/// The end-of-life rules: `exp` (with leeway) and the type's lifetime cap on `iat`.
pub(crate) fn check_expiry(
    claims: &Claims,
    now: Instant,
    rules: &TokenRules,
) -> Result<(), TokenError> {
    if now >= claims.exp().saturating_add(rules.leeway()) {
        return Err(TokenError::Expired);
    }
    let max_age = rules
        .lifetime_for(claims.token_type())
        .saturating_add(rules.leeway());
    if now.saturating_since(claims.iat()) > max_age {
        return Err(TokenError::TooOld);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
