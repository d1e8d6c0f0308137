//! The token harnesses. `token_bytes` runs arbitrary bytes through the validator and checks
//! it against the uncached `token::validate` and a bare `jsonwebtoken::decode`;
//! `token_claims` builds a header and claim set from the input, signs it with the real
//! HMAC keys so the claim rules are reached, and checks the verdict against the reference
//! in `reference.rs`; then it asks the real `Issuer` to mint a request built from the rest of
//! the input and checks the issuer against the validator and the reference (`AUTH-MINT`).
//! Neither may read a clock: every check runs at the fixed fuzz time.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Unstructured;

use super::fixtures;
use super::reference::{self, Json, render_object};
use super::{OracleViolation, capped, evidence};
use crate::permissions::{Permission, Permissions};
use crate::token::{
    Claims, IssueError, Issuer, MintRequest, Minted, SigningKey, TokenError, TokenRules, TokenType,
    Validator, validate,
};
use crate::{FamilyId, Instant, Jti, Kid, UserId};

/// Every `TokenError` code docs/protocol.md section 1 and `TokenError`'s docs name.
pub(crate) const DOCUMENTED_TOKEN_CODES: [&str; 20] = [
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

/// How long after the first check the second one runs: past an access token's lifetime,
/// so a cached positive that skipped the time rules shows up.
const LATER: Duration = Duration::from_secs(1000);

/// docs/protocol.md section 1: "max token length, checked before any decoding".
const MAX_TOKEN_LEN: usize = 4096;

/// A validator under test for `token_bytes`: token bytes and time in, verdict out.
pub type TokenCheck<'a> = dyn FnMut(&[u8], Instant) -> Result<Claims, TokenError> + 'a;

/// A validator under test for `token_claims`: token bytes, time and expected type in.
pub type TypedTokenCheck<'a> =
    dyn FnMut(&[u8], Instant, TokenType) -> Result<Claims, TokenError> + 'a;

fn verdict(r: &Result<Claims, TokenError>) -> String {
    match r {
        Ok(c) => format!("accepted({})", c.sub()),
        Err(e) => e.code().to_string(),
    }
}

/// A fresh gateway-configured validator (default rules, the fixture ring, a cache).
fn fresh_validator() -> Result<Validator, OracleViolation> {
    Ok(Validator::new(fixtures::ring()?, TokenRules::default()))
}

/// `token_bytes`: the input, as a token, through a fresh [`Validator`] (see [`token_bytes_with`]).
pub fn token_bytes(data: &[u8]) -> Result<(), OracleViolation> {
    let mut v = fresh_validator()?;
    token_bytes_with(data, &mut |t, now| v.validate(t, now, TokenType::Access))
}

/// The `token_bytes` floor: the same token through a fresh [`Validator`] at the same two
/// times as [`token_bytes`], with no oracle, so the harness's cost can be compared with it.
pub fn token_bytes_floor(data: &[u8]) -> Result<(), OracleViolation> {
    let token = capped(data);
    let mut v = fresh_validator()?;
    let t0 = fixtures::now();
    for at in [t0, t0.saturating_add(LATER)] {
        std::hint::black_box(v.validate(token, at, TokenType::Access)).ok();
    }
    Ok(())
}

/// `token_bytes` against the validator `check` (called with the token and the time).
///
/// Oracle: a rejection carries a documented code; a token over 4096 bytes is `too_long` and
/// nothing else is; the verdict equals the uncached `token::validate` at the fuzz time and
/// again 1000 s later (so the second call, a cache hit, must re-check time); and an
/// accepted token is also accepted by a bare `jsonwebtoken::decode` with the same key,
/// issuer and audience (ours is never looser than the library).
pub fn token_bytes_with(data: &[u8], check: &mut TokenCheck<'_>) -> Result<(), OracleViolation> {
    let token = capped(data);
    let ring = fixtures::ring_ref()?;
    let rules = TokenRules::default();
    let t0 = fixtures::now();
    for at in [t0, t0.saturating_add(LATER)] {
        let actual = check(token, at);
        if let Err(e) = &actual
            && !DOCUMENTED_TOKEN_CODES.contains(&e.code())
        {
            return Err(OracleViolation::UndocumentedTokenCode {
                code: e.code().to_string(),
            });
        }
        let too_long = matches!(actual, Err(TokenError::TooLong { .. }));
        if too_long != (token.len() > MAX_TOKEN_LEN) {
            return Err(OracleViolation::LengthRule {
                len: token.len(),
                verdict: verdict(&actual),
            });
        }
        if let Ok(claims) = &actual {
            library_accepts(token, claims)?;
        }
        let expected = validate(token, at, ring, &rules, TokenType::Access);
        if verdict(&actual) != verdict(&expected) {
            return Err(OracleViolation::CacheDisagrees {
                at: at.unix_secs(),
                actual: verdict(&actual),
                expected: verdict(&expected),
            });
        }
    }
    Ok(())
}

/// A bare `jsonwebtoken::decode` with the key our validator selected, the same algorithm,
/// issuer and audience. Time rules are left to our own check: the library reads the wall
/// clock, which the harness must not.
fn library_accepts(token: &[u8], claims: &Claims) -> Result<(), OracleViolation> {
    let looser = |reason: String| OracleViolation::LooserThanJsonwebtoken {
        reason,
        token: evidence(token, 200),
    };
    let kid = claims
        .kid()
        .ok_or_else(|| looser("accepted without a kid from a ring of many keys".into()))?;
    let (alg, key) =
        fixtures::decoding_key(kid.as_str()).ok_or_else(|| looser(format!("kid {kid}")))?;
    let mut validation = jsonwebtoken::Validation::new(alg.to_jsonwebtoken());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_issuer(&["gauntlet-auth"]);
    validation.set_audience(&["gauntlet-gateway"]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
        .map(|_| ())
        .map_err(|e| looser(e.to_string()))
}

/// A generated claim set: which HMAC key signs it, the type it is checked as, and its
/// payload members in order (names may repeat).
#[derive(Clone, Debug)]
pub(crate) struct ClaimsCase {
    pub(crate) kid: &'static str,
    pub(crate) expected: TokenType,
    pub(crate) payload: Vec<(String, Json)>,
}

/// `token_claims`: a claim set built from the input, signed with the real key, through a
/// fresh [`Validator`] (see [`token_claims_with`]).
pub fn token_claims(data: &[u8]) -> Result<(), OracleViolation> {
    let mut v = fresh_validator()?;
    token_claims_with(data, &mut |t, now, ty| v.validate(t, now, ty))
}

/// `token_claims` against the validator `check` (token, time, expected type).
///
/// Oracle: the verdict equals the reference check of docs/protocol.md section 1: accepted
/// exactly when the reference finds no broken rule, and otherwise rejected with the code of
/// one of the rules the reference finds broken. Then the mint round trip (`AUTH-MINT`): a
/// request built from the rest of the input, minted by the real [`Issuer`], must validate
/// with exactly the requested claims, and a refusal for its `email` or `svc_id` must break a
/// claim rule by the reference check.
pub fn token_claims_with(
    data: &[u8],
    check: &mut TypedTokenCheck<'_>,
) -> Result<(), OracleViolation> {
    let mut u = Unstructured::new(capped(data));
    let case = gen_case(&mut u);
    run_claims_case(&case, check)?;
    let mint = gen_mint(&mut u)?;
    run_mint_case(&mint, &mut fixture_mint, check)
}

/// The `token_claims` floor: the same generated claim set, signed the same way, and the same
/// mint request, minted, through a fresh [`Validator`] once each, with no oracle.
pub fn token_claims_floor(data: &[u8]) -> Result<(), OracleViolation> {
    let mut u = Unstructured::new(capped(data));
    let case = gen_case(&mut u);
    let (token, _) = sign_case(&case)?;
    let mut v = fresh_validator()?;
    std::hint::black_box(v.validate(token.as_bytes(), fixtures::now(), case.expected)).ok();
    let mint = gen_mint(&mut u)?;
    if let Ok(minted) = fixture_mint(&mint)? {
        let ty = mint.request.token_type;
        std::hint::black_box(v.validate(minted.token.as_bytes(), fixtures::now(), ty)).ok();
    }
    Ok(())
}

/// A generated mint request and the ring key (an HMAC key) that signs it.
#[derive(Clone, Debug)]
pub(crate) struct MintCase {
    pub(crate) kid: &'static str,
    pub(crate) request: MintRequest,
}

/// An issuer under test: the case in, the issuer's answer out (`Err` only for a broken fixture).
pub(crate) type MintFn<'a> =
    dyn FnMut(&MintCase) -> Result<Result<Minted, IssueError>, OracleViolation> + 'a;

/// The real [`Issuer`] of ring key `kid` (one of [`HMAC_KIDS`]), under the default rules.
/// Built once per process, like the ring: it depends on no input.
fn issuer(kid: &str) -> Result<&'static Issuer, OracleViolation> {
    static ISSUERS: OnceLock<Vec<(&'static str, Issuer)>> = OnceLock::new();
    let issuers = ISSUERS.get_or_init(|| {
        let build = |kid: &'static str| {
            let (alg, secret) = fixtures::hmac_secret(kid)?;
            let key = SigningKey::hmac(Kid::parse(kid), alg, secret).ok()?;
            Some((kid, Issuer::new(key, TokenRules::default())))
        };
        HMAC_KIDS.into_iter().filter_map(build).collect()
    });
    issuers
        .iter()
        .find(|(k, _)| *k == kid)
        .map(|(_, issuer)| issuer)
        .ok_or(OracleViolation::Fixture {
            what: "signing key",
        })
}

/// The real [`Issuer`] with the case's ring key, minting at the fuzz time. The `jti` is the
/// caller's, so the shared issuer needs no mutable counter.
fn fixture_mint(case: &MintCase) -> Result<Result<Minted, IssueError>, OracleViolation> {
    let jti = Jti::parse("jti-minted").ok_or(OracleViolation::Fixture { what: "jti" })?;
    Ok(issuer(case.kid)?.mint_with_jti(fixtures::now(), &case.request, jti))
}

/// The issuer round trip (`AUTH-MINT`), against the issuer `mint` and the validator `check`.
///
/// Oracle: a token the issuer mints is accepted by the validator at once, as the requested
/// type, with exactly the requested claims (`sub`, type, permissions, `email`, `svc_id`,
/// `fam`, and `exp = now + ttl`) and the minted `jti`; a signing failure is a defect; and a
/// request refused for its `email` or `svc_id` is one the reference check of the claim
/// rules also refuses (the issuer is not stricter than the protocol either).
pub(crate) fn run_mint_case(
    case: &MintCase,
    mint: &mut MintFn<'_>,
    check: &mut TypedTokenCheck<'_>,
) -> Result<(), OracleViolation> {
    let req = &case.request;
    let now = fixtures::now();
    let disagrees = |detail: String| OracleViolation::IssuerDisagrees {
        detail,
        request: evidence(format!("{req:?}").as_bytes(), 600),
    };
    let minted = match mint(case)? {
        Ok(minted) => minted,
        Err(e @ (IssueError::EmailTooLong | IssueError::BadSvcId)) => {
            let (name, value) = match e {
                IssueError::EmailTooLong => ("email", &req.email),
                _ => ("svc_id", &req.svc_id),
            };
            let mut payload = base_claims(req.token_type);
            payload.retain(|(k, _)| k != name);
            payload.push((
                name.to_string(),
                Json::Str(value.clone().unwrap_or_default()),
            ));
            let broken = reference::violations(&payload, req.token_type, now.unix_secs());
            return if broken.contains("invalid_claim") {
                Ok(())
            } else {
                Err(disagrees(format!(
                    "refused ({e}) a {name} the protocol allows"
                )))
            };
        }
        Err(e @ IssueError::Signing(_)) => return Err(disagrees(format!("failed: {e}"))),
        Err(_) => return Ok(()),
    };
    let actual = check(minted.token.as_bytes(), now, req.token_type);
    let faithful = actual.as_ref().is_ok_and(|c| {
        c.sub() == &req.sub
            && c.token_type() == req.token_type
            && c.permissions() == &req.permissions
            && c.email() == req.email.as_deref()
            && c.svc_id() == req.svc_id.as_deref()
            && c.family() == req.family.as_ref()
            && c.jti() == &minted.jti
            && c.exp() == now.saturating_add(Duration::from_secs(req.ttl.as_secs()))
    });
    if faithful {
        return Ok(());
    }
    Err(disagrees(match &actual {
        Ok(c) => format!("minted a token the validator reads back as {c:?}"),
        Err(e) => format!("minted a token the validator refuses: {}", e.code()),
    }))
}

/// `case` signed by its key: the token and the payload it carries.
fn sign_case(case: &ClaimsCase) -> Result<(String, String), OracleViolation> {
    let (alg, secret) =
        fixtures::hmac_secret(case.kid).ok_or(OracleViolation::Fixture { what: "hmac kid" })?;
    let header = format!(
        r#"{{"alg":"{}","kid":"{}","typ":"JWT"}}"#,
        alg.name(),
        case.kid
    );
    let mut payload = String::new();
    render_object(&case.payload, &mut payload);
    let token = fixtures::sign_raw(header.as_bytes(), payload.as_bytes(), alg, secret)?;
    Ok((token, payload))
}

pub(crate) fn run_claims_case(
    case: &ClaimsCase,
    check: &mut TypedTokenCheck<'_>,
) -> Result<(), OracleViolation> {
    let (token, payload) = sign_case(case)?;
    let now = fixtures::now();
    let allowed: BTreeSet<&str> = if token.len() > MAX_TOKEN_LEN {
        BTreeSet::from(["too_long"])
    } else {
        reference::violations(&case.payload, case.expected, now.unix_secs())
    };
    let actual = check(token.as_bytes(), now, case.expected);
    let agrees = match &actual {
        Ok(_) => allowed.is_empty(),
        Err(e) => allowed.contains(e.code()),
    };
    if agrees {
        return Ok(());
    }
    Err(OracleViolation::ReferenceDisagrees {
        actual: verdict(&actual),
        allowed: if allowed.is_empty() {
            "accepted".into()
        } else {
            allowed.into_iter().collect::<Vec<_>>().join("|")
        },
        payload: evidence(payload.as_bytes(), 600),
    })
}

/// The claim names the generator edits: the spec's, the gateway's `fam`, and a stranger.
const NAMES: [&str; 14] = [
    "iss",
    "sub",
    "jti",
    "aud",
    "exp",
    "iat",
    "nbf",
    "token_type",
    "permissions",
    "email",
    "svc_id",
    "fam",
    "user_id",
    "extra",
];

/// Strings that hit the rules' interesting values.
const STRINGS: [&str; 16] = [
    "gauntlet-auth",
    "gauntlet-gateway",
    "gauntlet-services",
    "access",
    "refresh",
    "service",
    "user-1",
    "admin:*",
    "system:broadcast",
    "threads:read",
    "",
    "*",
    "a b",
    "u1@example.com",
    "ACCESS",
    "svc-1",
];

const MAX_EDITS: usize = 12;
const MAX_ARRAY: usize = 56;
const MAX_NESTED: usize = 4;

fn gen_case(u: &mut Unstructured<'_>) -> ClaimsCase {
    let kid = pick_kid(u);
    let base_type = pick_type(u);
    let expected = if u.ratio(7u8, 8u8).unwrap_or(true) {
        base_type
    } else {
        pick_type(u)
    };
    let mut payload = base_claims(base_type);
    let edits = u.int_in_range(0..=MAX_EDITS).unwrap_or(0);
    for _ in 0..edits {
        let name = (*u.choose(&NAMES).unwrap_or(&"extra")).to_string();
        match u.int_in_range(0u8..=3).unwrap_or(0) {
            0 => payload.retain(|(k, _)| *k != name),
            1 => payload.push((name, gen_value(u, 0))),
            _ => match payload.iter_mut().find(|(k, _)| *k == name) {
                Some((_, v)) => *v = gen_value(u, 0),
                None => payload.push((name, gen_value(u, 0))),
            },
        }
    }
    ClaimsCase {
        kid,
        expected,
        payload,
    }
}

/// A claim set the reference accepts for `ty` at the fuzz time.
pub(crate) fn base_claims(ty: TokenType) -> Vec<(String, Json)> {
    let now = super::FUZZ_NOW_SECS;
    let aud = match ty {
        TokenType::Service => "gauntlet-services",
        TokenType::Access | TokenType::Refresh => "gauntlet-gateway",
    };
    let s = |v: &str| Json::Str(v.to_string());
    let mut c = vec![
        ("iss".to_string(), s("gauntlet-auth")),
        ("sub".to_string(), s("user-1")),
        ("jti".to_string(), s("jti-1")),
        ("aud".to_string(), s(aud)),
        ("exp".to_string(), Json::UInt(now + 600)),
        ("iat".to_string(), Json::UInt(now - 60)),
        ("token_type".to_string(), s(ty.as_str())),
    ];
    if ty == TokenType::Service {
        c.push(("svc_id".to_string(), s("svc-1")));
    }
    c
}

fn gen_value(u: &mut Unstructured<'_>, depth: u8) -> Json {
    let now = super::FUZZ_NOW_SECS;
    let kinds = if depth == 0 { 14u8 } else { 11 };
    match u.int_in_range(0..=kinds).unwrap_or(0) {
        0 => Json::Null,
        1 => Json::Bool(u.arbitrary().unwrap_or(false)),
        2 => Json::UInt(u.arbitrary().unwrap_or(0)),
        3 => Json::Int(i64::from(u.int_in_range(i32::MIN..=-1).unwrap_or(-1))),
        4 => match u.arbitrary::<f64>() {
            Ok(f) if f.is_finite() => Json::Float(f),
            _ => Json::Float(1.5),
        },
        5 | 6 => {
            let offset = i64::from(u.int_in_range(-100_000i32..=100_000).unwrap_or(0));
            Json::UInt(now.saturating_add_signed(offset))
        }
        7 => {
            let offset = i64::from(u.int_in_range(-2_000i32..=2_000).unwrap_or(0));
            #[allow(clippy::cast_precision_loss)]
            let f = now.saturating_add_signed(offset) as f64;
            Json::Float(if u.ratio(1u8, 2u8).unwrap_or(false) {
                f + 0.5
            } else {
                f
            })
        }
        8 | 9 => Json::Str(known_string(u)),
        10 => Json::Str(repeated_char(u)),
        11 => Json::Str(arbitrary_text(u)),
        12 => {
            let n = u.int_in_range(0..=MAX_ARRAY).unwrap_or(0);
            Json::Arr((0..n).map(|_| gen_value(u, depth + 1)).collect())
        }
        13 => {
            let n = u.int_in_range(0..=MAX_NESTED).unwrap_or(0);
            Json::Obj(
                (0..n)
                    .map(|_| {
                        let k = (*u.choose(&["a", "b", "sub"]).unwrap_or(&"a")).to_string();
                        (k, gen_value(u, depth + 1))
                    })
                    .collect(),
            )
        }
        _ => {
            let n = u.int_in_range(0..=52).unwrap_or(0);
            Json::Arr((0..n).map(|i| Json::Str(format!("res{i}:read"))).collect())
        }
    }
}

/// The HMAC ring keys harness-built tokens are signed with.
const HMAC_KIDS: [&str; 3] = ["hs256", "hs384", "hs512"];

fn pick_kid(u: &mut Unstructured<'_>) -> &'static str {
    u.choose(&HMAC_KIDS).unwrap_or(&"hs256")
}

fn pick_type(u: &mut Unstructured<'_>) -> TokenType {
    *u.choose(&[TokenType::Access, TokenType::Refresh, TokenType::Service])
        .unwrap_or(&TokenType::Access)
}

/// One of [`STRINGS`].
fn known_string(u: &mut Unstructured<'_>) -> String {
    (*u.choose(&STRINGS).unwrap_or(&"")).to_string()
}

/// Up to 300 copies of one character of 1 to 4 bytes (or a control character), so byte and
/// character limits both have an edge.
fn repeated_char(u: &mut Unstructured<'_>) -> String {
    let c = *u
        .choose(&['a', 'é', '\u{7}', '\u{1F600}', '-'])
        .unwrap_or(&'a');
    let n = u.int_in_range(0usize..=300).unwrap_or(0);
    std::iter::repeat_n(c, n).collect()
}

/// Up to 300 characters of the input itself.
fn arbitrary_text(u: &mut Unstructured<'_>) -> String {
    let s: &str = u.arbitrary().unwrap_or("");
    s.chars().take(300).collect()
}

/// A mint request from the input: any type, a lifetime at and around the type's limit, and
/// `email`/`svc_id` strings drawn like the claim generator's.
fn gen_mint(u: &mut Unstructured<'_>) -> Result<MintCase, OracleViolation> {
    let kid = pick_kid(u);
    let token_type = pick_type(u);
    let lifetime = issuer(kid)?.rules().lifetime_for(token_type).as_secs();
    let ttl = match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => lifetime,
        1 => lifetime.saturating_add(u.int_in_range(0..=1).unwrap_or(0)),
        2 => u.int_in_range(0..=1).unwrap_or(0),
        _ => u.int_in_range(1..=lifetime).unwrap_or(1),
    };
    let text = |u: &mut Unstructured<'_>| match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => None,
        1 => Some(known_string(u)),
        2 => Some(repeated_char(u)),
        _ => Some(arbitrary_text(u)),
    };
    let email = text(u);
    let svc_id = text(u);
    let sub = *u.choose(&["user-1", "u", "user-2"]).unwrap_or(&"user-1");
    let grants = ["threads:read", "admin:*", "system:broadcast"]
        .iter()
        .filter(|_| u.arbitrary().unwrap_or(false))
        .filter_map(|p| Permission::parse(p))
        .collect();
    let family = if u.arbitrary().unwrap_or(false) {
        FamilyId::parse("fam-1")
    } else {
        None
    };
    let request = MintRequest {
        sub: UserId::parse(sub).ok_or(OracleViolation::Fixture { what: "user id" })?,
        token_type,
        permissions: Permissions::new(grants).unwrap_or_else(Permissions::empty),
        ttl: Duration::from_secs(ttl),
        family,
        email,
        svc_id,
    };
    Ok(MintCase { kid, request })
}

#[cfg(test)]
mod tests;
