//! An independent reference check of the claim rules of docs/protocol.md section 1, written
//! from the spec for the `token_claims` oracle. It shares no code with `token::claims` or
//! `token::validate`: it works on the harness's own JSON tree (which can hold duplicate
//! keys) and returns the set of rules a claim set breaks. It must stay simple enough to
//! check by eye against the spec table, and never call into `crate::token`.

use std::collections::BTreeSet;

use crate::token::TokenType;

/// JSON as the harness writes it: objects are member lists, so keys can repeat.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A non-negative integer literal.
    UInt(u64),
    /// A negative integer literal.
    Int(i64),
    /// A finite number written with a fraction or exponent.
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Appends the JSON text of `self` to `out`.
    pub(crate) fn render(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::UInt(n) => out.push_str(&n.to_string()),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => out.push_str(&n.to_string()),
                None => out.push_str("null"),
            },
            Json::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            Json::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.render(out);
                }
                out.push(']');
            }
            Json::Obj(members) => render_object(members, out),
        }
    }
}

/// The JSON text of an object with these members, in this order.
pub(crate) fn render_object(members: &[(String, Json)], out: &mut String) {
    out.push('{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        v.render(out);
    }
    out.push('}');
}

/// The fixed rules the reference checks against: docs/protocol.md's defaults (environment `prod`).
const ISSUER: &str = "gauntlet-auth";
const USER_AUDIENCE: &str = "gauntlet-gateway";
const SERVICE_AUDIENCE: &str = "gauntlet-services";
const LEEWAY: u64 = 30;
const MAX_IAT_FUTURE: u64 = 60;
const ACCESS_LIFETIME: u64 = 15 * 60;
const REFRESH_LIFETIME: u64 = 7 * 24 * 3600;
/// The largest NumericDate the gateway can represent (its clock is u64 nanoseconds).
const MAX_DATE: u64 = u64::MAX / 1_000_000_000;

/// The codes of every rule `payload` breaks for a token of type `expected` checked at
/// `now` (unix seconds). Empty means the reference accepts it.
pub(crate) fn violations(
    payload: &[(String, Json)],
    expected: TokenType,
    now: u64,
) -> BTreeSet<&'static str> {
    let mut v = BTreeSet::new();
    if has_duplicate_key(payload) {
        v.insert("malformed");
        return v;
    }
    let get = |name: &str| payload.iter().find(|(k, _)| k == name).map(|(_, j)| j);

    match get("iss") {
        None => v.insert("missing_claim"),
        Some(Json::Str(s)) if s == ISSUER => false,
        Some(Json::Str(_)) => v.insert("wrong_issuer"),
        Some(_) => v.insert("invalid_claim"),
    };
    for id in ["sub", "jti"] {
        match get(id) {
            None => v.insert("missing_claim"),
            Some(Json::Str(s)) if is_id(s) => false,
            Some(_) => v.insert("invalid_claim"),
        };
    }
    let audience = match expected {
        TokenType::Service => SERVICE_AUDIENCE,
        TokenType::Access | TokenType::Refresh => USER_AUDIENCE,
    };
    match get("aud") {
        None => v.insert("missing_claim"),
        Some(Json::Str(s)) => s != audience && v.insert("wrong_audience"),
        Some(Json::Arr(items)) => {
            if items.iter().any(|i| !matches!(i, Json::Str(_))) {
                v.insert("invalid_claim")
            } else {
                !items.contains(&Json::Str(audience.to_string())) && v.insert("wrong_audience")
            }
        }
        Some(_) => v.insert("invalid_claim"),
    };
    let token_type = match get("token_type") {
        None => {
            v.insert("missing_claim");
            None
        }
        Some(Json::Str(s)) => match s.as_str() {
            "access" => Some(TokenType::Access),
            "refresh" => Some(TokenType::Refresh),
            "service" => Some(TokenType::Service),
            _ => {
                v.insert("invalid_claim");
                None
            }
        },
        Some(_) => {
            v.insert("invalid_claim");
            None
        }
    };
    if token_type.is_some_and(|t| t != expected) {
        v.insert("wrong_token_type");
    }
    let exp = required_date(get("exp"), &mut v);
    let iat = required_date(get("iat"), &mut v);
    if exp.is_some_and(|exp| u128::from(now) >= u128::from(exp) + u128::from(LEEWAY)) {
        v.insert("expired");
    }
    if let Some(iat) = iat {
        if u128::from(iat) > u128::from(now) + u128::from(MAX_IAT_FUTURE) {
            v.insert("issued_in_future");
        }
        let lifetime = match token_type {
            Some(TokenType::Refresh) => Some(REFRESH_LIFETIME),
            Some(TokenType::Access | TokenType::Service) => Some(ACCESS_LIFETIME),
            None => None,
        };
        if lifetime.is_some_and(|l| now.saturating_sub(iat) > l + LEEWAY) {
            v.insert("too_old");
        }
    }
    if let Some(nbf) = get("nbf") {
        match date(nbf) {
            None => v.insert("invalid_claim"),
            Some(nbf) => now + LEEWAY < nbf && v.insert("not_yet_valid"),
        };
    }
    if let Some(p) = get("permissions") {
        let ok = match p {
            Json::Arr(items) => {
                items.len() <= 50
                    && items
                        .iter()
                        .all(|i| matches!(i, Json::Str(s) if is_permission(s)))
            }
            _ => false,
        };
        if !ok {
            v.insert("bad_permissions");
        }
    }
    // docs/protocol.md says "<= 254 chars"; like RFC 5321 we count bytes (see fuzz/README.md).
    if get("email").is_some_and(|e| !matches!(e, Json::Str(s) if s.len() <= 254)) {
        v.insert("invalid_claim");
    }
    match get("svc_id") {
        None if expected == TokenType::Service => v.insert("missing_claim"),
        None => false,
        Some(Json::Str(s)) if is_id(s) => false,
        Some(_) => v.insert("invalid_claim"),
    };
    // `fam` (refresh-token family) is not in the spec table; the gateway treats it as an id.
    if get("fam").is_some_and(|f| !matches!(f, Json::Str(s) if is_id(s))) {
        v.insert("invalid_claim");
    }
    v
}

/// 1..=128 chars with no control character (the gateway's id rule; the spec gives the length).
fn is_id(s: &str) -> bool {
    let n = s.chars().count();
    (1..=128).contains(&n) && !s.chars().any(char::is_control)
}

/// `resource:action` of `[A-Za-z0-9_:.-]`, 1..=64 chars, optionally ending in the `:*`
/// wildcard of docs/protocol.md section 6.
fn is_permission(s: &str) -> bool {
    let body = s.strip_suffix(":*").unwrap_or(s);
    !s.is_empty()
        && s.len() <= 64
        && !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
}

/// A NumericDate: an integer of seconds >= 0 (a float only without a fraction), in range.
fn date(j: &Json) -> Option<u64> {
    let secs = match *j {
        Json::UInt(n) => n,
        Json::Float(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= MAX_DATE as f64 => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let n = f as u64;
            n
        }
        _ => return None,
    };
    (secs <= MAX_DATE).then_some(secs)
}

fn required_date(j: Option<&Json>, v: &mut BTreeSet<&'static str>) -> Option<u64> {
    match j {
        None => {
            v.insert("missing_claim");
            None
        }
        Some(j) => {
            let d = date(j);
            if d.is_none() {
                v.insert("invalid_claim");
            }
            d
        }
    }
}

fn has_duplicate_key(members: &[(String, Json)]) -> bool {
    let mut seen = BTreeSet::new();
    members
        .iter()
        .any(|(k, v)| !seen.insert(k.as_str()) || nested_duplicate(v))
}

fn nested_duplicate(j: &Json) -> bool {
    match j {
        Json::Obj(m) => has_duplicate_key(m),
        Json::Arr(items) => items.iter().any(nested_duplicate),
        _ => false,
    }
}
