//! The JWS compact layer (RFC 7515): length limit, the three-part split, canonical
//! base64url, strict JSON objects (no duplicate keys at any depth), the protected header
//! rules, key selection and the signature check. It owns `verify_signature`.
//!
//! It must never pick an algorithm or a key from the token: the ring's key decides the
//! algorithm and the header may only agree with it. It must never decode before the
//! length check, and never panic on input.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::Kid;
use crate::plant::{Plants, planted};

use super::error::{MalformedReason, TokenError, TokenPart};
use super::keys::{Algorithm, KeyEntry, KeyRing};
use super::rules::TokenRules;

/// Header parameters that would let the token choose its own key; never honoured.
const FORBIDDEN_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

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

const DUPLICATE: &str = "duplicate key";

/// An object key, borrowed when it has no escapes.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The error a visitor raises for a repeated key. Our visitors raise no other data error,
/// which is how `parse_json` tells duplicates from syntax errors.
pub(crate) fn duplicate<E: de::Error>() -> E {
    E::custom(DUPLICATE)
}

/// Keys of one object seen so far, apart from the ones a visitor tracks itself. The first
/// few are kept in a vector (nothing is allocated until an unknown key appears, and typical
/// tokens have none), the rest in a tree so an object with hundreds of keys costs
/// `n log n`, not `n^2`.
pub(crate) struct SeenKeys<'de> {
    few: Vec<Cow<'de, str>>,
    many: BTreeSet<Cow<'de, str>>,
}

impl<'de> SeenKeys<'de> {
    const FEW: usize = 8;

    pub(crate) fn new() -> Self {
        Self {
            few: Vec::new(),
            many: BTreeSet::new(),
        }
    }

    /// Records `k`; false if it was already seen.
    pub(crate) fn insert(&mut self, k: Cow<'de, str>) -> bool {
        if self.few.contains(&k) {
            return false;
        }
        if self.few.len() < Self::FEW {
            self.few.push(k);
            return true;
        }
        self.many.insert(k)
    }
}

/// Walks a value nobody needs, rejecting duplicate keys in any object inside it.
pub(crate) struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        let mut seen = SeenKeys::new();
        while let Some(Key(k)) = map.next_key()? {
            if !seen.insert(k) {
                return Err(duplicate());
            }
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

/// What a typed member accepts. Each method gets one JSON shape and returns `Some` if the
/// member may have that shape; every other shape is walked (for duplicate keys) and
/// reported as `None`, so a wrong type is a claim-level error, never a JSON error.
pub(crate) trait Accept<'de>: Sized {
    /// The parsed member.
    type Out;
    fn string(self, _: Cow<'de, str>) -> Option<Self::Out> {
        None
    }
    fn unsigned(self, _: u64) -> Option<Self::Out> {
        None
    }
    fn float(self, _: f64) -> Option<Self::Out> {
        None
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Self::Out>, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(None)
    }
}

/// Deserializes one member through an [`Accept`].
pub(crate) struct Accepting<T>(pub(crate) T);

impl<'de, T: Accept<'de>> DeserializeSeed<'de> for Accepting<T> {
    type Value = Option<T::Out>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T: Accept<'de>> Visitor<'de> for Accepting<T> {
    type Value = Option<T::Out>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any json value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(self.0.unsigned(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(self.0.float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(self.0.string(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.string(Cow::Owned(v.to_owned())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.array(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        SkipVisitor.visit_map(map).map(|_| None)
    }
}

/// Accepts a JSON string.
pub(crate) struct AStr;

impl<'de> Accept<'de> for AStr {
    type Out = Cow<'de, str>;
    fn string(self, s: Cow<'de, str>) -> Option<Cow<'de, str>> {
        Some(s)
    }
}

/// A member as parsed: absent, present with an acceptable value, or present but invalid.
#[derive(Debug, Default)]
pub(crate) enum Slot<T> {
    #[default]
    Absent,
    Valid(T),
    Invalid,
}

impl<T> Slot<T> {
    /// Stores the next map value through `accept`; a second value for the same key is a
    /// duplicate.
    pub(crate) fn fill<'de, A, M>(&mut self, map: &mut M, accept: A) -> Result<(), M::Error>
    where
        A: Accept<'de, Out = T>,
        M: MapAccess<'de>,
    {
        if !matches!(self, Slot::Absent) {
            return Err(duplicate());
        }
        *self = match map.next_value_seed(Accepting(accept))? {
            Some(v) => Slot::Valid(v),
            None => Slot::Invalid,
        };
        Ok(())
    }
}

/// Parses `json` (one JSON object and nothing else) with `seed`, mapping failures to
/// `Malformed` errors on `part`.
pub(crate) fn parse_json<'de, S: DeserializeSeed<'de>>(
    part: TokenPart,
    json: &'de [u8],
    seed: S,
) -> Result<S::Value, TokenError> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(TokenError::malformed(part, MalformedReason::NotObject));
    }
    // Valid UTF-8 throughout (the usual case) is checked once here rather than string by
    // string inside the parser. Anything else takes the byte parser, so a payload that is
    // not UTF-8 reports exactly the error it always did (a duplicate key before the bad
    // byte, say).
    let parsed = match std::str::from_utf8(json) {
        Ok(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v))
        }
        Err(_) => {
            let mut de = serde_json::Deserializer::from_slice(json);
            seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v))
        }
    };
    parsed.map_err(|e| {
        // Our visitors only raise data errors for duplicate keys; everything else is syntax.
        let reason = if e.is_data() {
            MalformedReason::DuplicateKey
        } else {
            MalformedReason::Json
        };
        TokenError::malformed(part, reason)
    })
}

/// The protected header members the rules look at.
#[derive(Default)]
struct Header<'de> {
    alg: Slot<Cow<'de, str>>,
    kid: Slot<Cow<'de, str>>,
    /// The first forbidden key-locating parameter present, if any.
    forbidden: Option<&'static str>,
    crit: bool,
}

struct HeaderSeed;

impl<'de> DeserializeSeed<'de> for HeaderSeed {
    type Value = Header<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed {
    type Value = Header<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut h = Header::default();
        let mut seen = SeenKeys::new();
        while let Some(Key(k)) = map.next_key()? {
            match k.as_ref() {
                "alg" => h.alg.fill(&mut map, AStr)?,
                "kid" => h.kid.fill(&mut map, AStr)?,
                other => {
                    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|n| **n == other) {
                        h.forbidden = h.forbidden.or(Some(name));
                    }
                    h.crit |= other == "crit";
                    if !seen.insert(k) {
                        return Err(duplicate());
                    }
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(h)
    }
}

/// The encoded header `jsonwebtoken::encode` writes for a key (`typ`, `alg`, `kid`), kept
/// only if the full header parser reads exactly that key's algorithm and kid from it (and
/// nothing forbidden). A token whose header segment equals it skips header decoding and
/// parsing, whose result is then already known; any other header takes the full path.
pub(crate) fn known_header(kid: &Kid, alg: Algorithm) -> Option<Box<[u8]>> {
    let mut header = jsonwebtoken::Header::new(alg.to_jsonwebtoken());
    header.kid = Some(kid.as_str().to_owned());
    let json = serde_json::to_vec(&header).ok()?;
    let parsed = parse_json(TokenPart::Header, &json, HeaderSeed).ok()?;
    let same = matches!(&parsed.alg, Slot::Valid(a) if a == alg.name())
        && matches!(&parsed.kid, Slot::Valid(k) if k == kid.as_str())
        && parsed.forbidden.is_none()
        && !parsed.crit;
    same.then(|| URL_SAFE_NO_PAD.encode(json).into_bytes().into_boxed_slice())
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
        None => check_header(ring, header)?,
    };
    if key.is_retired() {
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
/// and the header's `alg`.
fn check_header<'k, 'h>(
    ring: &'k KeyRing,
    header: &'h [u8],
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
    if header.crit {
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
        .parse::<Algorithm>()
        .map_err(|_| TokenError::AlgorithmMismatch)?;
    Ok(key.verify_as(alg, message, signature))
}

/// Without the `planted-bugs` feature `planted!` is the constant `false` and this is never
/// called; it exists so the planted branch still type-checks.
#[cfg(not(feature = "planted-bugs"))]
fn alg_from_header(_: &KeyEntry, _: &str, _: &[u8], _: &[u8]) -> Result<bool, TokenError> {
    Ok(false)
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
