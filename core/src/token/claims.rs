//! `Claims`: the typed result of a validated token, and the conversion of a payload's
//! JSON members into it (types, lengths, ranges). Only the validator constructs a `Claims`,
//! so code holding one never re-checks it. This module must never accept a malformed claim
//! as absent: a present `null`, wrong type or out-of-range value is `invalid_claim`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::permissions::{MAX_PERMISSIONS, Permission, Permissions};
use crate::{FamilyId, Instant, Jti, Kid, UserId};

use super::error::TokenError;
use super::jws::Val;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    sub: UserId,
    jti: Jti,
    token_type: TokenType,
    exp: Instant,
    iat: Instant,
    nbf: Option<Instant>,
    permissions: Permissions,
    #[serde(serialize_with = "opt_str")]
    email: Option<Arc<str>>,
    #[serde(serialize_with = "opt_str")]
    svc_id: Option<Arc<str>>,
    #[serde(rename = "fam")]
    family: Option<FamilyId>,
    kid: Option<Kid>,
}

fn opt_str<S: serde::Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
    v.as_deref().serialize(s)
}

impl Claims {
    /// The user (`sub`).
    pub fn sub(&self) -> &UserId {
        &self.sub
    }
    /// The token id (`jti`).
    pub fn jti(&self) -> &Jti {
        &self.jti
    }
    /// The token type (`token_type`).
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }
    /// Expiry (`exp`).
    pub fn exp(&self) -> Instant {
        self.exp
    }
    /// Issue time (`iat`).
    pub fn iat(&self) -> Instant {
        self.iat
    }
    /// Not-before (`nbf`), if the token has one.
    pub fn nbf(&self) -> Option<Instant> {
        self.nbf
    }
    /// Granted permissions (empty when the claim is absent).
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }
    /// The user's email, if present.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// The calling service (`svc_id`); always present on service tokens.
    pub fn svc_id(&self) -> Option<&str> {
        self.svc_id.as_deref()
    }
    /// The refresh family (`fam`): on refresh tokens and the access tokens minted with them.
    pub fn family(&self) -> Option<&FamilyId> {
        self.family.as_ref()
    }
    /// The id of the key that verified the token (header `kid`), if it had one.
    pub fn kid(&self) -> Option<&Kid> {
        self.kid.as_ref()
    }
}

/// The payload members validation reads, in the order `RawClaims::from_members` takes them.
pub(crate) const MEMBERS: [&str; 12] = [
    "iss",
    "sub",
    "jti",
    "aud",
    "exp",
    "iat",
    "token_type",
    "nbf",
    "permissions",
    "email",
    "svc_id",
    "fam",
];

/// Claims with every type, length and range checked, but not yet compared against the
/// rules (issuer, audience, times).
pub(crate) struct RawClaims<'de> {
    pub(crate) iss: std::borrow::Cow<'de, str>,
    pub(crate) aud: Vec<std::borrow::Cow<'de, str>>,
    pub(crate) claims: Claims,
}

fn missing(claim: &'static str) -> TokenError {
    TokenError::MissingClaim { claim }
}

fn invalid(claim: &'static str) -> TokenError {
    TokenError::InvalidClaim { claim }
}

fn required<'a, 'de>(
    v: &'a Option<Val<'de>>,
    claim: &'static str,
) -> Result<&'a Val<'de>, TokenError> {
    v.as_ref().ok_or(missing(claim))
}

fn string<'a, 'de>(v: &'a Val<'de>, claim: &'static str) -> Result<&'a str, TokenError> {
    match v {
        Val::Str(s) => Ok(s),
        _ => Err(invalid(claim)),
    }
}

/// A JWT NumericDate as the protocol allows it: a non-negative integer number of seconds
/// that fits an [`Instant`]. A float is accepted only when it has no fractional part
/// (`1.0`), since some JSON encoders emit integral numbers that way; `1.5`, negatives,
/// strings, `null` and out-of-range values such as `1e308` are invalid.
fn numeric_date(v: &Val<'_>, claim: &'static str) -> Result<Instant, TokenError> {
    let secs = match *v {
        Val::UInt(n) => n,
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Val::Float(f)
            if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= MAX_NUMERIC_DATE as f64 =>
        {
            f as u64
        }
        _ => return Err(invalid(claim)),
    };
    if secs > MAX_NUMERIC_DATE {
        return Err(invalid(claim));
    }
    Ok(Instant::from_unix_secs(secs))
}

fn permissions(v: &Val<'_>) -> Result<Permissions, TokenError> {
    let Val::Array(items) = v else {
        return Err(TokenError::BadPermissions);
    };
    if items.len() > MAX_PERMISSIONS {
        return Err(TokenError::BadPermissions);
    }
    let grants = items
        .iter()
        .map(|item| match item {
            Val::Str(s) => Permission::parse(s).ok_or(TokenError::BadPermissions),
            _ => Err(TokenError::BadPermissions),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Permissions::new(grants).ok_or(TokenError::BadPermissions)
}

impl<'de> RawClaims<'de> {
    /// Type-checks the members named by [`MEMBERS`]. Required claims are checked in a fixed
    /// order, so a token with several problems always reports the same one.
    pub(crate) fn from_members(
        members: [Option<Val<'de>>; MEMBERS.len()],
        kid: Option<Kid>,
    ) -> Result<Self, TokenError> {
        let [
            iss,
            sub,
            jti,
            aud,
            exp,
            iat,
            token_type,
            nbf,
            perms,
            email,
            svc_id,
            fam,
        ] = members;
        let iss = match required(&iss, "iss")? {
            Val::Str(s) => s.clone(),
            _ => return Err(invalid("iss")),
        };
        let sub = UserId::parse(string(required(&sub, "sub")?, "sub")?).ok_or(invalid("sub"))?;
        let jti = Jti::parse(string(required(&jti, "jti")?, "jti")?).ok_or(invalid("jti"))?;
        let aud = match aud {
            None => return Err(missing("aud")),
            Some(Val::Str(s)) => vec![s],
            Some(Val::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Val::Str(s) => Ok(s),
                    _ => Err(invalid("aud")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(invalid("aud")),
        };
        let exp = numeric_date(required(&exp, "exp")?, "exp")?;
        let iat = numeric_date(required(&iat, "iat")?, "iat")?;
        let token_type = string(required(&token_type, "token_type")?, "token_type")?
            .parse::<TokenType>()
            .map_err(|_| invalid("token_type"))?;
        let nbf = nbf.as_ref().map(|v| numeric_date(v, "nbf")).transpose()?;
        let permissions = match &perms {
            None => Permissions::empty(),
            Some(v) => permissions(v)?,
        };
        let email = match &email {
            None => None,
            Some(Val::Str(s)) if s.len() <= MAX_EMAIL_LEN => Some(Arc::from(s.as_ref())),
            Some(_) => return Err(invalid("email")),
        };
        let svc_id = match &svc_id {
            None => None,
            Some(Val::Str(s))
                if !s.is_empty()
                    && s.chars().count() <= MAX_SVC_ID_LEN
                    && !s.chars().any(char::is_control) =>
            {
                Some(Arc::from(s.as_ref()))
            }
            Some(_) => return Err(invalid("svc_id")),
        };
        let family = match &fam {
            None => None,
            Some(v) => Some(FamilyId::parse(string(v, "fam")?).ok_or(invalid("fam"))?),
        };
        Ok(RawClaims {
            iss,
            aud,
            claims: Claims {
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
            },
        })
    }
}
