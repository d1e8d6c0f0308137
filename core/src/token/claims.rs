//! `Claims`: the typed result of a validated token, and the conversion of a payload's
//! JSON members into it (types, lengths, ranges). Only the validator constructs a `Claims`,
//! so code holding one never re-checks it. This module must never accept a malformed claim
//! as absent: a present `null`, wrong type or out-of-range value is `invalid_claim`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::permissions::{MAX_PERMISSIONS, Permission, Permissions};
use crate::{FamilyId, Instant, Jti, Kid, UserId};

use super::error::TokenError;
use super::strict_json::{AStr, Accept, Accepting, Key, SeenKeys, Skip, Slot, duplicate};

/// Longest `email` claim, in bytes (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest `svc_id` claim, in characters.
pub const MAX_SVC_ID_LEN: usize = 128;
/// Largest NumericDate accepted: the last whole second an [`Instant`] can represent.
pub const MAX_NUMERIC_DATE: u64 = u64::MAX / 1_000_000_000;

/// The kind of token, from the `token_type` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// A short-lived user token for the gateway.
    Access,
    /// A long-lived, single-use user token for obtaining new access tokens.
    Refresh,
    /// A token for service-to-service calls.
    Service,
}

impl TokenType {
    /// The claim value: `access`, `refresh` or `service`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
            TokenType::Service => "service",
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown token type name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown token type")]
pub struct UnknownTokenType;

impl FromStr for TokenType {
    type Err = UnknownTokenType;
    fn from_str(s: &str) -> Result<Self, UnknownTokenType> {
        match s {
            "access" => Ok(TokenType::Access),
            "refresh" => Ok(TokenType::Refresh),
            "service" => Ok(TokenType::Service),
            _ => Err(UnknownTokenType),
        }
    }
}

/// The claims of a token that passed every rule. Only validation creates one.
///
/// Shared behind one `Arc`: a cache hit hands out a clone, and one reference-count update
/// (instead of one per string member) keeps the hit close to a bare map lookup.
#[derive(Clone, PartialEq, Eq)]
pub struct Claims(Arc<fields::Claims>);

/// The members themselves, named `Claims` so `Debug` and `Serialize` read as before.
mod fields {
    use std::sync::Arc;

    use serde::Serialize;

    use super::TokenType;
    use crate::permissions::Permissions;
    use crate::{FamilyId, Instant, Jti, Kid, UserId};

    #[derive(Debug, PartialEq, Eq, Serialize)]
    pub(super) struct Claims {
        pub(super) sub: UserId,
        pub(super) jti: Jti,
        pub(super) token_type: TokenType,
        pub(super) exp: Instant,
        pub(super) iat: Instant,
        pub(super) nbf: Option<Instant>,
        pub(super) permissions: Permissions,
        #[serde(serialize_with = "opt_str")]
        pub(super) email: Option<Arc<str>>,
        #[serde(serialize_with = "opt_str")]
        pub(super) svc_id: Option<Arc<str>>,
        #[serde(rename = "fam")]
        pub(super) family: Option<FamilyId>,
        pub(super) kid: Option<Kid>,
    }

    fn opt_str<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Claims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Claims {
    /// The user (`sub`).
    pub fn sub(&self) -> &UserId {
        &self.0.sub
    }
    /// The token id (`jti`).
    pub fn jti(&self) -> &Jti {
        &self.0.jti
    }
    /// The token type (`token_type`).
    pub fn token_type(&self) -> TokenType {
        self.0.token_type
    }
    /// Expiry (`exp`).
    pub fn exp(&self) -> Instant {
        self.0.exp
    }
    /// Issue time (`iat`).
    pub fn iat(&self) -> Instant {
        self.0.iat
    }
    /// Not-before (`nbf`), if the token has one.
    pub fn nbf(&self) -> Option<Instant> {
        self.0.nbf
    }
    /// Granted permissions (empty when the claim is absent).
    pub fn permissions(&self) -> &Permissions {
        &self.0.permissions
    }
    /// The user's email, if present.
    pub fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// The calling service (`svc_id`); always present on service tokens.
    pub fn svc_id(&self) -> Option<&str> {
        self.0.svc_id.as_deref()
    }
    /// The refresh family (`fam`): on refresh tokens and the access tokens minted with them.
    pub fn family(&self) -> Option<&FamilyId> {
        self.0.family.as_ref()
    }
    /// The id of the key that verified the token (header `kid`), if it had one.
    pub fn kid(&self) -> Option<&Kid> {
        self.0.kid.as_ref()
    }
}

/// Accepts a NumericDate as the protocol allows it: a non-negative integer number of
/// seconds that fits an [`Instant`]. A float is accepted only when it has no fractional
/// part (`1.0`), since some JSON encoders emit integral numbers that way; `1.5`,
/// negatives, strings, `null` and out-of-range values such as `1e308` are invalid.
struct ANumericDate;

impl<'de> Accept<'de> for ANumericDate {
    type Out = Instant;
    fn unsigned(self, n: u64) -> Option<Instant> {
        (n <= MAX_NUMERIC_DATE).then(|| Instant::from_unix_secs(n))
    }
    fn float(self, f: f64) -> Option<Instant> {
        // The range check comes first, so the cast below is exact.
        #[allow(clippy::cast_precision_loss)]
        let max = MAX_NUMERIC_DATE as f64;
        if !(f.is_finite() && f >= 0.0 && f <= max && f.fract() == 0.0) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.unsigned(f as u64)
    }
}

/// Accepts `aud` (a string or an array of strings) and reports whether it names the
/// audience the expected token type needs. Nothing is allocated.
struct AAudience<'a> {
    wanted: &'a str,
}

impl<'de> Accept<'de> for AAudience<'_> {
    type Out = bool;
    fn string(self, s: Cow<'de, str>) -> Option<bool> {
        Some(s == self.wanted)
    }
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<bool>, A::Error> {
        let (mut found, mut valid) = (false, true);
        while let Some(item) = seq.next_element_seed(Accepting(AStr))? {
            match item {
                Some(s) => found |= s == self.wanted,
                None => valid = false,
            }
        }
        Ok(valid.then_some(found))
    }
}

/// Accepts `permissions`: an array of at most 50 valid permission strings.
struct APermissions;

impl<'de> Accept<'de> for APermissions {
    type Out = Permissions;
    fn array<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Permissions>, A::Error> {
        let mut grants = Vec::new();
        let mut valid = true;
        while let Some(item) = seq.next_element_seed(Accepting(AStr))? {
            // Past the limit keep walking (the JSON must still be checked) but store nothing.
            match item.as_deref().and_then(Permission::parse) {
                Some(p) if valid && grants.len() < MAX_PERMISSIONS => grants.push(p),
                _ => valid = false,
            }
        }
        Ok(if valid {
            Permissions::new(grants)
        } else {
            None
        })
    }
}

/// Accepts `token_type`.
struct ATokenType;

impl<'de> Accept<'de> for ATokenType {
    type Out = TokenType;
    fn string(self, s: Cow<'de, str>) -> Option<TokenType> {
        s.parse().ok()
    }
}

/// The payload, parsed once: strings borrowed from the decoded payload where possible,
/// every member typed, unknown members only checked for duplicate keys.
#[derive(Default)]
pub(crate) struct Payload<'de> {
    iss: Slot<Cow<'de, str>>,
    sub: Slot<Cow<'de, str>>,
    jti: Slot<Cow<'de, str>>,
    /// Whether `aud` names the audience the seed was asked for.
    aud: Slot<bool>,
    exp: Slot<Instant>,
    iat: Slot<Instant>,
    nbf: Slot<Instant>,
    token_type: Slot<TokenType>,
    permissions: Slot<Permissions>,
    email: Slot<Cow<'de, str>>,
    svc_id: Slot<Cow<'de, str>>,
    fam: Slot<Cow<'de, str>>,
}

/// Parses a payload into `out`, checking `aud` against `audience`. Filled in place rather
/// than returned, so the members are not copied through every layer of the parser.
pub(crate) struct PayloadSeed<'a, 'de> {
    pub(crate) audience: &'a str,
    pub(crate) out: &'a mut Payload<'de>,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let p = self.out;
        let mut seen = SeenKeys::new();
        while let Some(Key(k)) = map.next_key()? {
            match k.as_ref() {
                "iss" => p.iss.fill(&mut map, AStr)?,
                "sub" => p.sub.fill(&mut map, AStr)?,
                "jti" => p.jti.fill(&mut map, AStr)?,
                "aud" => p.aud.fill(
                    &mut map,
                    AAudience {
                        wanted: self.audience,
                    },
                )?,
                "exp" => p.exp.fill(&mut map, ANumericDate)?,
                "iat" => p.iat.fill(&mut map, ANumericDate)?,
                "nbf" => p.nbf.fill(&mut map, ANumericDate)?,
                "token_type" => p.token_type.fill(&mut map, ATokenType)?,
                "permissions" => p.permissions.fill(&mut map, APermissions)?,
                "email" => p.email.fill(&mut map, AStr)?,
                "svc_id" => p.svc_id.fill(&mut map, AStr)?,
                "fam" => p.fam.fill(&mut map, AStr)?,
                _ => {
                    if !seen.insert(k) {
                        return Err(duplicate());
                    }
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(())
    }
}

fn missing(claim: &'static str) -> TokenError {
    TokenError::MissingClaim { claim }
}

fn invalid(claim: &'static str) -> TokenError {
    TokenError::InvalidClaim { claim }
}

fn required<T>(slot: Slot<T>, claim: &'static str) -> Result<T, TokenError> {
    match slot {
        Slot::Valid(v) => Ok(v),
        Slot::Absent => Err(missing(claim)),
        Slot::Invalid => Err(invalid(claim)),
    }
}

fn optional<T>(slot: Slot<T>, claim: &'static str) -> Result<Option<T>, TokenError> {
    match slot {
        Slot::Valid(v) => Ok(Some(v)),
        Slot::Absent => Ok(None),
        Slot::Invalid => Err(invalid(claim)),
    }
}

/// `svc_id`: 1..=128 characters, no control characters. The issuer refuses to mint what
/// this refuses, so the two cannot drift apart.
pub(crate) fn svc_id_fits(s: &str) -> bool {
    let n = s.chars().count();
    n > 0 && n <= MAX_SVC_ID_LEN && !s.chars().any(char::is_control)
}

/// `email`: at most 254 bytes (not characters: a non-ASCII address is longer in bytes).
pub(crate) fn email_fits(e: &str) -> bool {
    e.len() <= MAX_EMAIL_LEN
}

/// The rule-level facts of a payload, beyond the [`Claims`] themselves.
pub(crate) struct Checked {
    pub(crate) issuer_ok: bool,
    pub(crate) audience_ok: bool,
    pub(crate) claims: Claims,
}

impl Payload<'_> {
    /// Checks presence, types, lengths and ranges. Claims are checked in a fixed order
    /// (`iss`, `sub`, `jti`, `aud`, `exp`, `iat`, `token_type`, then the optional ones), so
    /// a token with several problems always reports the same one.
    pub(crate) fn check(self, issuer: &str, kid: Option<Kid>) -> Result<Checked, TokenError> {
        let issuer_ok = required(self.iss, "iss")? == issuer;
        let sub = required(self.sub, "sub")?;
        let sub = UserId::parse(&sub).ok_or(invalid("sub"))?;
        let jti = required(self.jti, "jti")?;
        let jti = Jti::parse(&jti).ok_or(invalid("jti"))?;
        let audience_ok = required(self.aud, "aud")?;
        let exp = required(self.exp, "exp")?;
        let iat = required(self.iat, "iat")?;
        let token_type = required(self.token_type, "token_type")?;
        let nbf = optional(self.nbf, "nbf")?;
        let permissions = match self.permissions {
            Slot::Valid(p) => p,
            Slot::Absent => Permissions::empty(),
            Slot::Invalid => return Err(TokenError::BadPermissions),
        };
        let email = match optional(self.email, "email")? {
            Some(e) if !email_fits(&e) => return Err(invalid("email")),
            e => e.map(|e| Arc::from(e.as_ref())),
        };
        let svc_id = match optional(self.svc_id, "svc_id")? {
            Some(s) if !svc_id_fits(&s) => return Err(invalid("svc_id")),
            s => s.map(|s| Arc::from(s.as_ref())),
        };
        let family = match optional(self.fam, "fam")? {
            Some(f) => Some(FamilyId::parse(&f).ok_or(invalid("fam"))?),
            None => None,
        };
        Ok(Checked {
            issuer_ok,
            audience_ok,
            claims: Claims(Arc::new(fields::Claims {
                sub,
                jti,
                token_type,
                exp,
                iat,
                nbf,
                permissions,
                email,
                svc_id,
                family,
                kid,
            })),
        })
    }
}
