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

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::plant::{Plants, planted};

use super::error::{MalformedReason, TokenError, TokenPart};
use super::keys::{KeyEntry, KeyRing};
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
    let mut it = token.splitn(4, |b| *b == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err(structure);
    };
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or(structure)?;
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

/// Decodes canonical unpadded base64url: the engine rejects `=`, `+`, `/`, impossible
/// lengths and non-zero trailing bits, so each byte string has exactly one accepted encoding.
fn b64(part: TokenPart, bytes: &[u8]) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(bytes)
        .map_err(|_| TokenError::malformed(part, MalformedReason::Base64))
}

/// A JSON value as the claim rules need it: strings borrowed from the decoded payload
/// where possible, objects checked for duplicate keys and then dropped.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val<'de> {
    Str(Cow<'de, str>),
    UInt(u64),
    Int(i64),
    Float(f64),
    Bool,
    Null,
    Array(Vec<Val<'de>>),
    Object,
}

const DUPLICATE: &str = "duplicate key";

/// An object key, borrowed when it has no escapes.
struct Key<'de>(Cow<'de, str>);

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

/// Walks an unneeded value, rejecting duplicate keys in any object inside it.
struct Skip;

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
        let mut seen = BTreeSet::new();
        while let Some(Key(k)) = map.next_key()? {
            if !seen.insert(k) {
                return Err(de::Error::custom(DUPLICATE));
            }
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValVisitor;
        impl<'de> Visitor<'de> for ValVisitor {
            type Value = Val<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any json value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Val<'de>, E> {
                Ok(Val::Bool)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val<'de>, E> {
                Ok(Val::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
                Ok(Val::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val<'de>, E> {
                Ok(Val::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
                Ok(Val::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
                Ok(Val::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<Val<'de>>()? {
                    items.push(v);
                }
                Ok(Val::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Val<'de>, A::Error> {
                SkipVisitor.visit_map(map).map(|_| Val::Object)
            }
        }
        d.deserialize_any(ValVisitor)
    }
}

/// Parses a JSON object, keeping the values of the `N` named members and checking every
/// other member only for duplicate keys.
struct Members<const N: usize> {
    names: [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Members<N> {
    type Value = [Option<Val<'de>>; N];
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Members<N> {
    type Value = [Option<Val<'de>>; N];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: [Option<Val<'de>>; N] = std::array::from_fn(|_| None);
        let mut others = BTreeSet::new();
        while let Some(Key(k)) = map.next_key()? {
            match self.names.iter().position(|n| *n == k) {
                Some(i) => {
                    let v = map.next_value::<Val<'de>>()?;
                    match slots.get_mut(i) {
                        Some(slot @ None) => *slot = Some(v),
                        _ => return Err(de::Error::custom(DUPLICATE)),
                    }
                }
                None => {
                    if !others.insert(k) {
                        return Err(de::Error::custom(DUPLICATE));
                    }
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(slots)
    }
}

/// Parses `json` as one object without duplicate keys, returning the named members.
pub(crate) fn parse_object<'de, const N: usize>(
    part: TokenPart,
    json: &'de [u8],
    names: [&'static str; N],
) -> Result<[Option<Val<'de>>; N], TokenError> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(TokenError::malformed(part, MalformedReason::NotObject));
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let parsed = Members { names }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
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

/// What the JWS layer established about a token whose signature verified.
pub(crate) struct Verified<'k> {
    /// The decoded payload bytes (JSON, not yet parsed).
    pub(crate) payload: Vec<u8>,
    /// The key that verified the signature.
    pub(crate) key: &'k KeyEntry,
}

/// The JWS layer: length, structure, encoding, header rules, key/algorithm binding and the
/// signature. Returns the still-unparsed payload.
pub(crate) fn verify<'k>(
    token: &[u8],
    ring: &'k KeyRing,
    rules: &TokenRules,
    plants: Plants,
) -> Result<Verified<'k>, TokenError> {
    if token.len() > rules.max_len {
        return Err(TokenError::TooLong {
            len: token.len(),
            max: rules.max_len,
        });
    }
    let parts = split(token)?;
    let header = b64(TokenPart::Header, parts.header)?;
    let payload = b64(TokenPart::Payload, parts.payload)?;
    let signature = b64(TokenPart::Signature, parts.signature)?;

    let [alg, kid, jku, x5u, jwk, x5c, crit] = parse_object(
        TokenPart::Header,
        &header,
        ["alg", "kid", "jku", "x5u", "jwk", "x5c", "crit"],
    )?;
    let Some(Val::Str(alg)) = alg else {
        return Err(TokenError::malformed(
            TokenPart::Header,
            MalformedReason::MissingAlg,
        ));
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNone);
    }
    for (name, present) in FORBIDDEN_HEADERS.into_iter().zip([
        jku.is_some(),
        x5u.is_some(),
        jwk.is_some(),
        x5c.is_some(),
    ]) {
        if present {
            return Err(TokenError::ForbiddenHeader { name });
        }
    }
    if crit.is_some() {
        return Err(TokenError::CriticalHeader);
    }
    let kid = match &kid {
        None => None,
        Some(Val::Str(k)) => Some(k.as_ref()),
        Some(_) => {
            return Err(TokenError::malformed(
                TokenPart::Header,
                MalformedReason::BadKid,
            ));
        }
    };
    let key = ring.select(kid).ok_or(TokenError::UnknownKey)?;
    if key.is_retired() {
        return Err(TokenError::KeyRetired);
    }
    let verified = if planted!(plants, AlgFromHeader) {
        alg_from_header(key, &alg, parts.signing_input, &signature)?
    } else {
        if alg != key.alg().name() {
            return Err(TokenError::AlgorithmMismatch);
        }
        key.verify(parts.signing_input, &signature)
    };
    if !verified {
        return Err(TokenError::BadSignature);
    }
    Ok(Verified { payload, key })
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
        .parse::<super::keys::Algorithm>()
        .map_err(|_| TokenError::AlgorithmMismatch)?;
    Ok(key.verify_as(alg, message, signature))
}

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
    let verified = verify(token, ring, rules, Plants::NONE)?;
    let [] = parse_object(TokenPart::Payload, &verified.payload, [])?;
    serde_json::from_slice(&verified.payload)
        .map_err(|_| TokenError::malformed(TokenPart::Payload, MalformedReason::Json))
}
