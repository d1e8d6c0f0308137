//! The JWS protected header (RFC 7515 section 4): `alg` and `kid` read strictly, the
//! key-locating parameters (`jku`, `x5u`, `jwk`, `x5c`) and `crit` noticed so the JWS layer
//! can refuse them, and the pre-encoded header of each ring key that lets a token with
//! exactly that header skip parsing.
//!
//! It must never choose a key or an algorithm: it only reports what the header says.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::Kid;

use super::algorithm::Algorithm;
use super::error::TokenPart;
use super::strict_json::{AStr, Key, SeenKeys, Skip, Slot, duplicate, parse_json};

/// Header parameters that would let the token choose its own key; never honoured.
const FORBIDDEN_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// The protected header members the rules look at.
#[derive(Default)]
pub(super) struct Header<'de> {
    pub(super) alg: Slot<Cow<'de, str>>,
    pub(super) kid: Slot<Cow<'de, str>>,
    /// The first forbidden key-locating parameter present, if any.
    pub(super) forbidden: Option<&'static str>,
    pub(super) crit: bool,
}

pub(super) struct HeaderSeed;

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
