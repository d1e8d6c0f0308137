//! The strict JSON reader shared by the header and claims parsers: exactly one JSON object,
//! no duplicate key at any depth, each member taken through a typed [`Accept`] slot so an
//! ill-typed value is told apart from an absent one.
//!
//! It owns only syntax and duplicate detection; it must never interpret a member (that is
//! the header's and the claims' job), and never panic or allocate without bound on input.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::{MalformedReason, TokenError, TokenPart};

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
