//! The JWS compact layer (RFC 7515): length limit, the three-part split, canonical
//! base64url, the protected header rules (read by `header`, with `strict_json`'s reader),
//! key selection and the signature check. It owns `verify_signature`.
//!
//! It must never pick an algorithm or a key from the token: the ring's key decides the
//! algorithm and the header may only agree with it. It must never decode before the
//! length check, and never panic on input.

use std::borrow::Cow;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::plant::{Plants, planted};

use super::error::{MalformedReason, TokenError, TokenPart};
use super::header::HeaderSeed;
use super::keys::{KeyEntry, KeyRing};
use super::rules::TokenRules;
use super::strict_json::{Skip, Slot, parse_json};

/// A token split into its three base64url parts.
struct Parts<'a> {
    header: &'a [u8],
    payload: &'a [u8],
    signature: &'a [u8],
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a [u8],
}

fn split(token: &[u8]) -> Result<Parts<'_>, TokenError> {
    let structure = TokenError::malformed(TokenPart::Structure, MalformedReason::PartCount);
    let mut dots = memchr::memchr_iter(b'.', token);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(structure);
    };
    let (Some(header), Some(payload), Some(signature), Some(signing_input)) = (
        token.get(..first),
        token.get(first + 1..second),
        token.get(second + 1..),
        token.get(..second),
    ) else {
        return Err(structure);
    };
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Decoded bytes kept on the stack: enough for tokens of about 1 KB (an RS256 token with a
/// usual payload included), above the usual few hundred bytes. Zeroing it is part of every
/// validation, so it is not sized for the 4 KB worst case.
const STACK_SCRATCH: usize = 768;

/// Room for a token's decoded parts: on the stack for usual tokens (no allocation on the
/// hot path), on the heap for larger ones.
pub(crate) struct Scratch {
    stack: [u8; STACK_SCRATCH],
    heap: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Self {
            stack: [0; STACK_SCRATCH],
            heap: Vec::new(),
        }
    }

    fn buf(&mut self, len: usize) -> &mut [u8] {
        if len <= STACK_SCRATCH {
            self.stack.get_mut(..len).unwrap_or_default()
        } else {
            self.heap.resize(len, 0);
            &mut self.heap
        }
    }
}

/// Upper bound of the decoded size of `n` base64 characters, as the decoder requires.
fn decoded_bound(n: usize) -> usize {
    n.div_ceil(4) * 3
}

/// Decodes canonical unpadded base64url into the front of `buf`, returning the decoded
/// bytes and the rest of `buf`. The engine rejects `=`, `+`, `/`, impossible lengths and
/// non-zero trailing bits, so each byte string has exactly one accepted encoding.
fn b64<'b>(
    part: TokenPart,
    input: &[u8],
    buf: &'b mut [u8],
) -> Result<(&'b [u8], &'b mut [u8]), TokenError> {
    let bad = || TokenError::malformed(part, MalformedReason::Base64);
    let n = URL_SAFE_NO_PAD
        .decode_slice(input, &mut *buf)
        .map_err(|_| bad())?;
    let (done, rest) = buf.split_at_mut_checked(n).ok_or_else(bad)?;
    Ok((done, rest))
}

/// What the JWS layer established about a token whose signature verified.
pub(crate) struct Verified<'k, 'b> {
    /// The decoded payload bytes (JSON, not yet parsed).
    pub(crate) payload: &'b [u8],
    /// The key that verified the signature.
    pub(crate) key: &'k KeyEntry,
}

/// The JWS layer: length, structure, encoding, header rules, key/algorithm binding and the
/// signature. Returns the still-unparsed payload.
pub(crate) fn verify<'k, 'b>(
    token: &[u8],
    ring: &'k KeyRing,
    rules: &TokenRules,
    plants: Plants,
    scratch: &'b mut Scratch,
) -> Result<Verified<'k, 'b>, TokenError> {
    if token.len() > rules.max_len {
        return Err(TokenError::TooLong {
            len: token.len(),
            max: rules.max_len,
        });
    }
    let parts = split(token)?;
    let known = ring.by_known_header(parts.header);
    let header_len = if known.is_some() {
        0
    } else {
        parts.header.len()
    };
    let buf = scratch.buf(
        decoded_bound(header_len)
            + decoded_bound(parts.payload.len())
            + decoded_bound(parts.signature.len()),
    );
    let (header, buf) = match known {
        Some(_) => (&[][..], buf),
        None => b64(TokenPart::Header, parts.header, buf)?,
    };
    let (payload, buf) = b64(TokenPart::Payload, parts.payload, buf)?;
    let (signature, _) = b64(TokenPart::Signature, parts.signature, buf)?;
    let (key, alg) = match known {
        Some(key) => (key, Cow::Borrowed(key.alg().name())),
        None => check_header(ring, header, plants)?,
    };
    // The `RetiredKeyAccepted` planted bug checks that the key exists, not that it is live.
    if key.is_retired() && !planted!(plants, RetiredKeyAccepted) {
        return Err(TokenError::KeyRetired);
    }
    let verified = if planted!(plants, AlgFromHeader) {
        alg_from_header(key, &alg, parts.signing_input, signature)?
    } else {
        if alg != key.alg().name() {
            return Err(TokenError::AlgorithmMismatch);
        }
        key.verify(parts.signing_input, signature)
    };
    if !verified {
        return Err(TokenError::BadSignature);
    }
    Ok(Verified { payload, key })
}

/// The header rules on a decoded header (JSON object, `alg` present and not `none`, no
/// key-locating parameters, no `crit`, a string `kid`); returns the key the header selects
/// and the header's `alg`. The `CritHeaderIgnored` planted bug lets `crit` through, as a
/// library that does not know the extension would.
fn check_header<'k, 'h>(
    ring: &'k KeyRing,
    header: &'h [u8],
    plants: Plants,
) -> Result<(&'k KeyEntry, Cow<'h, str>), TokenError> {
    let header = parse_json(TokenPart::Header, header, HeaderSeed)?;
    let Slot::Valid(alg) = header.alg else {
        return Err(TokenError::malformed(
            TokenPart::Header,
            MalformedReason::MissingAlg,
        ));
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNone);
    }
    if let Some(name) = header.forbidden {
        return Err(TokenError::ForbiddenHeader { name });
    }
    if header.crit && !planted!(plants, CritHeaderIgnored) {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match &header.kid {
        Slot::Absent => None,
        Slot::Valid(k) => Some(k.as_ref()),
        Slot::Invalid => {
            return Err(TokenError::malformed(
                TokenPart::Header,
                MalformedReason::BadKid,
            ));
        }
    };
    let key = ring.select(kid).ok_or(TokenError::UnknownKey)?;
    Ok((key, alg))
}

/// The planted `AlgFromHeader` defect: the header's `alg` picks the algorithm.
#[cfg(feature = "planted-bugs")]
fn alg_from_header(
    key: &KeyEntry,
    alg: &str,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, TokenError> {
    let alg = alg
        .parse::<super::algorithm::Algorithm>()
        .map_err(|_| TokenError::AlgorithmMismatch)?;
    Ok(key.verify_as(alg, message, signature))
}

/// Without the `planted-bugs` feature `planted!` is the constant `false` and this is never
/// called; it exists so the planted branch still type-checks.
#[cfg(not(feature = "planted-bugs"))]
fn alg_from_header(_: &KeyEntry, _: &str, _: &[u8], _: &[u8]) -> Result<bool, TokenError> {
    Ok(false)
}

/// The JWS layer alone over any payload (RFC 7515: the payload is arbitrary bytes): size,
/// encoding, header rules, key/algorithm binding and the signature. Returns the decoded
/// payload bytes, whatever they are; nothing about them is checked.
pub fn verify_jws(token: &[u8], ring: &KeyRing, rules: &TokenRules) -> Result<Vec<u8>, TokenError> {
    let mut scratch = Scratch::new();
    let verified = verify(token, ring, rules, Plants::NONE, &mut scratch)?;
    Ok(verified.payload.to_vec())
}

/// The JWS layer alone: header rules, key/algorithm binding and the signature. Returns the
/// payload as JSON (checked to be an object without duplicate keys); no claim is checked.
pub fn verify_signature(
    token: &[u8],
    ring: &KeyRing,
    rules: &TokenRules,
) -> Result<serde_json::Value, TokenError> {
    let mut scratch = Scratch::new();
    let verified = verify(token, ring, rules, Plants::NONE, &mut scratch)?;
    parse_json(TokenPart::Payload, verified.payload, PhantomData::<Skip>)?;
    serde_json::from_slice(verified.payload)
        .map_err(|_| TokenError::malformed(TokenPart::Payload, MalformedReason::Json))
}
