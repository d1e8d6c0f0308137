//! The token attack table as code, shared by the offline table (`core/tests/attack_table.rs`
//! writes `corpora/tokens/` from [`attack_cases`] and checks the committed files against it)
//! and by `gauntlet probe`, which re-signs the same cases with a live server's keys, re-timed
//! to the wall clock, and sends them as handshake credentials. One generator, so a case added
//! here is checked offline and live.
//!
//! Also the keyless attacks a reviewer aims at any server ([`blackbox_cases`]: `alg: none`,
//! key confusion with a public key, attacker-supplied key headers, `kid` injection, null and
//! "psychic" signatures, an empty HMAC secret) and the offline weak-secret check
//! ([`weak_secret`]). Nothing here reads a clock or does I/O: the caller passes `now` and
//! the keys.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

use super::{Algorithm, TokenType};

/// One key the generator signs with.
pub struct AttackSigner {
    /// The `kid` the server knows the key by (`None`: tokens carry no `kid`).
    pub kid: Option<String>,
    /// The key's algorithm.
    pub alg: Algorithm,
    /// The signing key.
    pub key: EncodingKey,
}

/// What the generator may sign with and what it knows about the target's ring.
pub struct AttackKeys {
    /// The key most cases are signed with (the table's `hs256`).
    pub primary: AttackSigner,
    /// More keys of the ring: one `valid_*` case each.
    pub others: Vec<AttackSigner>,
    /// The `kid` and PEM of the ring's RSA public key: HS256 signed with the PEM as secret.
    pub rsa_public_pem: Option<(Option<String>, Vec<u8>)>,
    /// The `kid` and DER of the ring's EC public key: HS256 signed with the DER as secret.
    pub ec_public_der: Option<(Option<String>, Vec<u8>)>,
    /// A retired key of the ring (kid and secret), for `retired_key`.
    pub retired: Option<AttackSigner>,
    /// Whether the ring holds several keys (so a token without `kid` selects none).
    pub several_keys: bool,
}

/// One case: a token and what validating it must give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackCase {
    /// Stable name (the corpus file is `<name>.jwt`).
    pub name: String,
    /// What the case does.
    pub description: String,
    /// `accepted` or a `TokenError` code.
    pub expected: String,
    /// The type the token is validated as.
    pub token_type: TokenType,
    /// Unix seconds to validate at.
    pub now: u64,
    /// The token.
    pub token: String,
    /// The expectation holds only at exactly `now` (a one-second boundary), so a live server,
    /// whose clock and network move on, cannot be judged by it.
    pub timing_edge: bool,
}

impl AttackCase {
    /// Whether the case can be sent live as a handshake credential: an access token whose
    /// verdict does not hang on a one-second boundary.
    pub fn live(&self) -> bool {
        self.token_type == TokenType::Access && !self.timing_edge
    }
}

/// A case the generator could not build with the given keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttackError {
    /// `jsonwebtoken` refused to sign with a key for an algorithm (a key of the wrong type).
    #[error("cannot sign {alg} with the key of kid {kid:?}")]
    Sign {
        /// The algorithm asked for.
        alg: Algorithm,
        /// The key's kid.
        kid: Option<String>,
    },
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign_encoded(h: &str, p: &str, alg: Algorithm, s: &AttackSigner) -> Result<String, AttackError> {
    let input = format!("{h}.{p}");
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &s.key, alg.to_jsonwebtoken()).map_err(
        |_| AttackError::Sign {
            alg,
            kid: s.kid.clone(),
        },
    )?;
    Ok(format!("{input}.{sig}"))
}

fn sign_text(
    header: &str,
    payload: &str,
    alg: Algorithm,
    s: &AttackSigner,
) -> Result<String, AttackError> {
    sign_encoded(&b64(header.as_bytes()), &b64(payload.as_bytes()), alg, s)
}

/// `"kid":"<kid>",` or nothing, for hand-written headers.
/// `payload` as an HS256 token whose secret is a public key's bytes, under that key's `kid`:
/// what a validator that takes the algorithm from the header would accept.
fn key_confused(kid: &Option<String>, public: &[u8], payload: &str) -> Result<String, AttackError> {
    let confused = AttackSigner {
        kid: kid.clone(),
        alg: Algorithm::HS256,
        key: EncodingKey::from_secret(public).map_err(|_| AttackError::Sign {
            alg: Algorithm::HS256,
            kid: kid.clone(),
        })?,
    };
    let header = format!(
        r#"{{"alg":"HS256"{},"typ":"JWT"}}"#,
        kid_member(kid.as_deref())
    );
    sign_text(&header, payload, Algorithm::HS256, &confused)
}

fn kid_member(kid: Option<&str>) -> String {
    kid.map(|k| format!(r#","kid":"{k}""#)).unwrap_or_default()
}

/// The claim set every case starts from, timed around `now`.
pub fn base_claims(now: u64, sub: &str, jti: &str) -> Value {
    json!({
        "iss": "gauntlet-auth",
        "sub": sub,
        "jti": jti,
        "aud": "gauntlet-gateway",
        "exp": now + 600,
        "iat": now.saturating_sub(60),
        "token_type": "access",
        "permissions": ["threads:read", "threads:write", "runs:*"],
        "email": "user42@example.com",
    })
}

/// Flips the low bit of the last character's 6-bit value, keeping it in the alphabet.
fn flip_trailing_bit(part: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let head = part.get(..part.len().checked_sub(1)?)?;
    let last = *part.as_bytes().last()?;
    let i = ALPHABET.iter().position(|c| *c == last)?;
    let flipped = *ALPHABET.get(i ^ 1)?;
    Some(format!("{head}{}", char::from(flipped)))
}

/// Replaces the first character of `part` with a different alphabet character.
fn change_first(part: &str) -> String {
    let first = if part.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", part.get(1..).unwrap_or_default())
}

fn pad(s: &str) -> String {
    format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4))
}

struct Gen<'k> {
    keys: &'k AttackKeys,
    now: u64,
    base: Value,
    cases: Vec<AttackCase>,
}

impl Gen<'_> {
    fn p(&self) -> &AttackSigner {
        &self.keys.primary
    }

    fn kid(&self) -> Option<&str> {
        self.p().kid.as_deref()
    }

    /// The primary key's usual header: alg, kid, typ.
    fn header(&self) -> String {
        format!(
            r#"{{"alg":"{}"{},"typ":"JWT"}}"#,
            self.p().alg,
            kid_member(self.kid())
        )
    }

    fn with(&self, changes: &[(&str, Value)], remove: &[&str]) -> Value {
        let mut c = self.base.clone();
        if let Some(o) = c.as_object_mut() {
            for (k, v) in changes {
                o.insert((*k).to_string(), v.clone());
            }
            for k in remove {
                o.remove(*k);
            }
        }
        c
    }

    /// Signed by the primary key with its own algorithm and usual header.
    fn signed(&self, payload: &Value) -> Result<String, AttackError> {
        sign_text(&self.header(), &payload.to_string(), self.p().alg, self.p())
    }

    fn signed_header(&self, header: &str, payload: &str) -> Result<String, AttackError> {
        sign_text(header, payload, self.p().alg, self.p())
    }

    fn add_full(&mut self, name: &str, description: &str, token: String, expected: &str) {
        self.add_at(name, description, token, expected, TokenType::Access, 0);
    }

    fn add_at(
        &mut self,
        name: &str,
        description: &str,
        token: String,
        expected: &str,
        token_type: TokenType,
        offset: i64,
    ) {
        self.cases.push(AttackCase {
            name: name.into(),
            description: description.into(),
            expected: expected.into(),
            token_type,
            now: self.now.saturating_add_signed(offset),
            token,
            timing_edge: offset != 0,
        });
    }

    fn add(&mut self, name: &str, description: &str, token: String, expected: &str) {
        self.add_full(name, description, token, expected);
    }

    fn edge(&mut self) {
        if let Some(last) = self.cases.last_mut() {
            last.timing_edge = true;
        }
    }
}

/// A name for a signer in case names: its kid, or its algorithm in lower case.
fn label(s: &AttackSigner) -> String {
    s.kid
        .clone()
        .unwrap_or_else(|| s.alg.to_string().to_ascii_lowercase())
}

/// Every case of the attack table that `keys` can produce, timed at `now` (unix seconds),
/// for subject `sub`. Cases needing a key or a public key that is not given are left out.
/// With the committed test keys and `now = 1_800_000_000` this is exactly
/// `corpora/tokens/` (PS256 signatures aside, which are salted).
pub fn attack_cases(
    keys: &AttackKeys,
    now: u64,
    sub: &str,
) -> Result<Vec<AttackCase>, AttackError> {
    let mut g = Gen {
        keys,
        now,
        base: base_claims(now, sub, "jti-42"),
        cases: Vec::new(),
    };
    let base = g.base.clone();
    let payload = base.to_string();
    let palg = g.p().alg;

    // Valid tokens, one per key, and one per token type.
    for s in std::iter::once(&keys.primary).chain(&keys.others) {
        let header = format!(
            r#"{{"alg":"{}"{},"typ":"JWT"}}"#,
            s.alg,
            kid_member(s.kid.as_deref())
        );
        let t = sign_text(&header, &payload, s.alg, s)?;
        g.add(
            &format!("valid_{}", label(s)),
            &format!("valid {} access token", s.alg),
            t,
            "accepted",
        );
    }
    let refresh = g.with(
        &[("token_type", json!("refresh")), ("fam", json!("fam-1"))],
        &[],
    );
    let t = g.signed(&refresh)?;
    g.add_at(
        "valid_refresh",
        "valid refresh token validated as refresh",
        t,
        "accepted",
        TokenType::Refresh,
        0,
    );
    let service = g.with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
            ("svc_id", json!("billing")),
        ],
        &[],
    );
    let t = g.signed(&service)?;
    g.add_at(
        "valid_service",
        "valid service token with svc_id",
        t,
        "accepted",
        TokenType::Service,
        0,
    );

    // alg none, with and without a signature.
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{none}"{},"typ":"JWT"}}"#, kid_member(g.kid()));
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
        g.add(
            &format!("alg_{none}_unsigned"),
            &format!("alg {none:?}, empty signature"),
            unsigned,
            "algorithm_none",
        );
        let signed = g.signed_header(&header, &payload)?;
        g.add(
            &format!("alg_{none}_signed"),
            &format!("alg {none:?} with an HS256 signature"),
            signed,
            "algorithm_none",
        );
    }

    // Key confusion and algorithm binding.
    if let Some((kid, pem)) = &keys.rsa_public_pem {
        let t = key_confused(kid, pem, &payload)?;
        g.add(
            "key_confusion_rsa_pem",
            "HS256 signed with the RSA public PEM as secret, kid of the RSA key",
            t,
            "algorithm_mismatch",
        );
    }
    if let Some((kid, der)) = &keys.ec_public_der {
        let t = key_confused(kid, der, &payload)?;
        g.add(
            "key_confusion_ec_der",
            "HS256 signed with the EC public key DER as secret, kid of the EC key",
            t,
            "algorithm_mismatch",
        );
    }
    // Another algorithm the same key material can sign: the key, not the header, decides.
    let sibling = match palg {
        Algorithm::HS256 | Algorithm::HS384 => Some(Algorithm::HS512),
        Algorithm::HS512 => Some(Algorithm::HS256),
        Algorithm::RS256 | Algorithm::PS256 => Some(Algorithm::RS512),
        _ => None,
    };
    if let Some(other) = sibling {
        let header = format!(r#"{{"alg":"{other}"{}}}"#, kid_member(g.kid()));
        let t = sign_text(&header, &payload, other, g.p())?;
        g.add(
            "alg_differs_from_key",
            &format!("{other} header on the {palg} key, signed with its secret"),
            t,
            "algorithm_mismatch",
        );
    }

    // Key selection.
    let t = g.signed_header(
        &format!(r#"{{"alg":"{palg}","kid":"no-such-key"}}"#),
        &payload,
    )?;
    g.add("unknown_kid", "kid not in the ring", t, "unknown_key");
    let t = g.signed_header(
        &format!(r#"{{"alg":"{palg}","kid":"../../dev/null"}}"#),
        &payload,
    )?;
    g.add(
        "kid_path_traversal",
        "kid is a path; never used as one",
        t,
        "unknown_key",
    );
    if keys.several_keys {
        let t = g.signed_header(&format!(r#"{{"alg":"{palg}"}}"#), &payload)?;
        g.add(
            "no_kid_many_keys",
            "no kid while the ring holds several keys",
            t,
            "unknown_key",
        );
    }
    if let Some(old) = &keys.retired {
        let header = format!(
            r#"{{"alg":"{}"{}}}"#,
            old.alg,
            kid_member(old.kid.as_deref())
        );
        let t = sign_text(&header, &payload, old.alg, old)?;
        g.add(
            "retired_key",
            "correctly signed with a retired key",
            t,
            "key_retired",
        );
    }

    // Forbidden and critical headers.
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5c", json!(["MIIB"])),
    ] {
        // Built in the table's member order (alg, kid, then the header under test).
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), json!(palg.to_string()));
        if let Some(kid) = g.kid() {
            header.insert("kid".into(), json!(kid));
        }
        header.insert(name.into(), value);
        let header = Value::Object(header);
        let t = g.signed_header(&header.to_string(), &payload)?;
        g.add(
            &format!("header_{name}"),
            &format!("header carries {name}"),
            t,
            "forbidden_header",
        );
    }
    let t = g.signed_header(
        &format!(
            r#"{{"alg":"{palg}"{},"crit":["exp"],"exp":1}}"#,
            kid_member(g.kid())
        ),
        &payload,
    )?;
    g.add(
        "header_crit",
        "crit header naming an extension",
        t,
        "critical_header",
    );

    // Tampering and structure.
    let good = g.signed(&base)?;
    let mut parts = good.split('.');
    let (h, p, s) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let other_header =
        b64(format!(r#"{{"alg":"{palg}"{},"typ":"JWS"}}"#, kid_member(g.kid())).as_bytes());
    g.add(
        "tampered_header",
        "header replaced after signing",
        format!("{other_header}.{p}.{s}"),
        "bad_signature",
    );
    let admin = b64(g
        .with(&[("sub", json!("admin"))], &[])
        .to_string()
        .as_bytes());
    g.add(
        "tampered_payload",
        "payload replaced (sub admin) after signing",
        format!("{h}.{admin}.{s}"),
        "bad_signature",
    );
    g.add(
        "tampered_signature",
        "first signature character changed",
        format!("{h}.{p}.{}", change_first(&s)),
        "bad_signature",
    );
    g.add(
        "empty_signature",
        "signature part empty",
        format!("{h}.{p}."),
        "bad_signature",
    );
    g.add(
        "two_parts",
        "header.payload only",
        format!("{h}.{p}"),
        "malformed",
    );
    g.add(
        "four_parts",
        "an extra part",
        format!("{h}.{p}.{s}.{s}"),
        "malformed",
    );

    // Encoding.
    let padded_sig = pad(&s);
    if padded_sig != s {
        g.add(
            "padded_signature",
            "signature with = padding",
            format!("{h}.{p}.{padded_sig}"),
            "malformed",
        );
    }
    let (ph, pp) = (pad(&h), pad(&p));
    if ph != h || pp != p {
        let t = sign_encoded(&ph, &pp, palg, g.p())?;
        g.add(
            "padded_header_or_payload",
            "= padding inside the signed input (signed as is)",
            t,
            "malformed",
        );
    }
    if let Some(flipped) = flip_trailing_bit(&s).filter(|_| s.len() % 4 != 0) {
        g.add(
            "noncanonical_signature",
            "signature's last character has non-zero trailing bits",
            format!("{h}.{p}.{flipped}"),
            "malformed",
        );
    }
    if let Some(t) = standard_alphabet_payload(&g)? {
        g.add(
            "standard_alphabet_payload",
            "payload in standard base64 (+ or /), signed as is",
            t,
            "malformed",
        );
    }
    let t = g.signed_header("not json at all", &payload)?;
    g.add("non_json_header", "header is not JSON", t, "malformed");
    let t = g.signed_header(
        &format!(r#"{{"alg":"{palg}"{}}}"#, kid_member(g.kid())),
        "definitely not json",
    )?;
    g.add("non_json_payload", "payload is not JSON", t, "malformed");
    let t = g.signed_header(&format!(r#"["alg","{palg}"]"#), &payload)?;
    g.add(
        "header_not_object",
        "header is a JSON array",
        t,
        "malformed",
    );
    let t = g.signed_header(
        &format!(
            r#"{{"alg":"{palg}","kid":"{}","kid":"hs384"}}"#,
            g.kid().unwrap_or("hs256")
        ),
        &payload,
    )?;
    g.add(
        "duplicate_key_header",
        "kid appears twice in the header",
        t,
        "malformed",
    );
    let dup = payload.replacen('{', r#"{"sub":"admin","#, 1);
    let t = g.signed_header(&g.header(), &dup)?;
    g.add(
        "duplicate_key_payload",
        "sub appears twice in the payload",
        t,
        "malformed",
    );

    // Expiry and time.
    let t = g.signed(&g.with(
        &[
            ("exp", json!(now.saturating_sub(31))),
            ("iat", json!(now.saturating_sub(300))),
        ],
        &[],
    ))?;
    g.add(
        "expired_by_1s",
        "exp + leeway is 1 s before now",
        t,
        "expired",
    );
    let edge = g.signed(&g.with(
        &[("exp", json!(now)), ("iat", json!(now.saturating_sub(300)))],
        &[],
    ))?;
    g.add_at(
        "leeway_edge_rejected",
        "now == exp + leeway",
        edge.clone(),
        "expired",
        TokenType::Access,
        30,
    );
    g.add_at(
        "leeway_edge_accepted",
        "now == exp + leeway - 1 s",
        edge,
        "accepted",
        TokenType::Access,
        29,
    );
    let future = now + 600;
    let bad_dates = [
        ("string", json!(future.to_string())),
        ("float", json!(future as f64 + 0.5)),
        ("negative", json!(-1)),
        ("null", Value::Null),
        ("1e308", json!(1e308)),
    ];
    for claim in ["exp", "nbf", "iat"] {
        for (lbl, v) in &bad_dates {
            let t = g.signed(&g.with(&[(claim, v.clone())], &[]))?;
            g.add(
                &format!("{claim}_{lbl}"),
                &format!("{claim} is {v}"),
                t,
                "invalid_claim",
            );
        }
    }
    let t = g.signed(&g.with(&[("exp", json!(future as f64))], &[]))?;
    g.add(
        "exp_integral_float",
        &format!("exp is {future}.0: an integral float is accepted"),
        t,
        "accepted",
    );
    let t = g.signed(&g.with(&[("nbf", json!(now + 31))], &[]))?;
    g.add("nbf_future", "nbf beyond now + leeway", t, "not_yet_valid");
    g.edge();
    let t = g.signed(&g.with(&[("nbf", json!(now + 30))], &[]))?;
    g.add("nbf_within_leeway", "nbf == now + leeway", t, "accepted");
    let t = g.signed(&g.with(&[("iat", json!(now + 61))], &[]))?;
    g.add(
        "iat_future",
        "iat 61 s in the future",
        t,
        "issued_in_future",
    );
    g.edge();
    let t = g.signed(&g.with(&[("iat", json!(now.saturating_sub(931)))], &[]))?;
    g.add(
        "iat_too_old",
        "iat older than the 15 min access lifetime + 30 s leeway",
        t,
        "too_old",
    );
    // The same two time rules far from their boundary, so a live sender whose clock and
    // network move on (a probe, the simulator's attackers) can judge them too.
    let t = g.signed(&g.with(&[("nbf", json!(now + 300))], &[]))?;
    g.add(
        "nbf_far_future",
        "nbf 5 min ahead, far beyond the leeway",
        t,
        "not_yet_valid",
    );
    let t = g.signed(&g.with(&[("iat", json!(now + 300))], &[]))?;
    g.add(
        "iat_far_future",
        "iat 5 min in the future, far beyond the 60 s allowance",
        t,
        "issued_in_future",
    );

    // Issuer and audience.
    let t = g.signed(&g.with(&[("iss", json!("evil-auth"))], &[]))?;
    g.add("wrong_iss", "iss is not gauntlet-auth", t, "wrong_issuer");
    let t = g.signed(&base)?;
    g.add(
        "aud_string_match",
        "aud string equal to the gateway audience",
        t,
        "accepted",
    );
    let t = g.signed(&g.with(&[("aud", json!("gauntlet-services"))], &[]))?;
    g.add(
        "aud_string_mismatch",
        "aud string for another audience",
        t,
        "wrong_audience",
    );
    let t = g.signed(&g.with(&[("aud", json!(["other", "gauntlet-gateway"]))], &[]))?;
    g.add(
        "aud_array_match",
        "aud array containing the gateway audience",
        t,
        "accepted",
    );
    let t = g.signed(&g.with(&[("aud", json!(["other", "gauntlet-services"]))], &[]))?;
    g.add(
        "aud_array_mismatch",
        "aud array without the gateway audience",
        t,
        "wrong_audience",
    );

    // Required claims.
    for claim in ["sub", "jti", "exp", "iat", "iss", "aud", "token_type"] {
        let t = g.signed(&g.with(&[], &[claim]))?;
        g.add(
            &format!("missing_{claim}"),
            &format!("no {claim} claim"),
            t,
            "missing_claim",
        );
    }
    let t = g.signed(&g.with(&[("sub", json!("u".repeat(129)))], &[]))?;
    g.add("sub_too_long", "sub of 129 characters", t, "invalid_claim");

    // Optional claims, present but ill-formed.
    let t = g.signed(&g.with(&[("email", json!("e".repeat(255)))], &[]))?;
    g.add("email_too_long", "email of 255 bytes", t, "invalid_claim");
    // 128 characters, 256 bytes: a bound counted in characters lets it through.
    let t = g.signed(&g.with(&[("email", json!("\u{e9}".repeat(128)))], &[]))?;
    g.add(
        "email_multibyte_too_long",
        "email of 128 two-byte characters (256 bytes)",
        t,
        "invalid_claim",
    );
    let t = g.signed(&g.with(&[("fam", json!("fam\u{7}1"))], &[]))?;
    g.add(
        "fam_control_char",
        "fam with a control character",
        t,
        "invalid_claim",
    );

    // Size.
    if let Some(t) = sized_token(&g, 4097)? {
        g.add("oversize_4097", "4097-byte signed token", t, "too_long");
    }
    if let Some(t) = sized_token(&g, 4096)? {
        g.add("max_size_4096", "4096-byte signed token", t, "accepted");
    }

    // Permissions.
    let many: Vec<String> = (0..51).map(|i| format!("perm:{i}")).collect();
    let t = g.signed(&g.with(&[("permissions", json!(many))], &[]))?;
    g.add("permissions_51", "51 permissions", t, "bad_permissions");
    let t = g.signed(&g.with(
        &[("permissions", json!(["threads:read", "threads;drop"]))],
        &[],
    ))?;
    g.add(
        "permission_forbidden_char",
        "a permission containing ';'",
        t,
        "bad_permissions",
    );

    // Token types.
    let t = g.signed(&refresh)?;
    g.add(
        "refresh_as_access",
        "refresh token presented as an access token",
        t,
        "wrong_token_type",
    );
    let no_svc = g.with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
        ],
        &[],
    );
    let t = g.signed(&no_svc)?;
    g.add_at(
        "service_without_svc_id",
        "service token lacking svc_id",
        t,
        "missing_claim",
        TokenType::Service,
        0,
    );
    Ok(g.cases)
}

/// A payload whose base64url encoding contains `-` or `_`, re-encoded in the standard
/// alphabet and signed as is.
fn standard_alphabet_payload(g: &Gen<'_>) -> Result<Option<String>, AttackError> {
    for n in 0..200 {
        let payload = g.with(&[("pad", json!("~".repeat(n)))], &[]).to_string();
        let url = b64(payload.as_bytes());
        if url.contains('-') || url.contains('_') {
            let std = url.replace('-', "+").replace('_', "/");
            let h = b64(g.header().as_bytes());
            return sign_encoded(&h, &std, g.p().alg, g.p()).map(Some);
        }
    }
    Ok(None)
}

/// A validly signed token of exactly `len` bytes (a filler claim sets the size).
fn sized_token(g: &Gen<'_>, len: usize) -> Result<Option<String>, AttackError> {
    let alg = g.p().alg;
    // Every signature of one algorithm and key has the same length, so one signature tells
    // the size of them all and only the token that fits is signed (RSA is slow).
    let sig_len = g
        .signed_header("{}", "{}")?
        .rsplit('.')
        .next()
        .map_or(0, str::len);
    let payload = |n: usize| g.with(&[("filler", json!("f".repeat(n)))], &[]).to_string();
    // Each filler byte is one payload byte ('f' needs no escaping), so the payload's length is
    // `empty + n` and the search below is arithmetic; building and encoding every candidate
    // made this quadratic, and the simulator's attack table spent most of its time here.
    let empty = payload(0).len();
    for typ in ["", r#","typ":"JWT""#, r#","typ":"JWT1""#] {
        let header = format!(r#"{{"alg":"{alg}"{}{typ}}}"#, kid_member(g.kid()));
        let h = b64(header.as_bytes()).len();
        for n in 0..4096 {
            let size = h + 1 + b64_len(empty + n) + 1 + sig_len;
            if size == len {
                return g.signed_header(&header, &payload(n)).map(Some);
            }
            if size > len {
                break;
            }
        }
    }
    Ok(None)
}

/// The length of `len` bytes in unpadded base64.
fn b64_len(len: usize) -> usize {
    // A trailing group of r bytes (0, 1 or 2) encodes to r + 1 characters, or none.
    let rest = len % 3;
    len / 3 * 4 + if rest == 0 { 0 } else { rest + 1 }
}

// ---- keyless attacks ------------------------------------------------------------------

/// A keyless attack: a token no correct server accepts, whatever its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlackboxCase {
    /// Stable name.
    pub name: String,
    /// What it tries.
    pub description: String,
    /// The token.
    pub token: String,
}

/// What the keyless attacks may use: the time, a subject, the `kid` the server's key goes by
/// (if known) and the server's public keys (PEM files, for key confusion).
pub struct BlackboxInput<'a> {
    /// Unix seconds the tokens are timed around.
    pub now: u64,
    /// The subject every token claims.
    pub sub: &'a str,
    /// The server's `kid`, if the operator knows it.
    pub kid: Option<&'a str>,
    /// The server's public keys as PEM.
    pub public_pems: &'a [Vec<u8>],
}

fn hmac_b64(alg: Algorithm, key: &[u8], input: &[u8]) -> Option<String> {
    fn mac<M: Mac + KeyInit>(key: &[u8], input: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(key).ok()?;
        m.update(input);
        Some(m.finalize().into_bytes().to_vec())
    }
    let tag = match alg {
        Algorithm::HS256 => mac::<Hmac<Sha256>>(key, input)?,
        Algorithm::HS384 => mac::<Hmac<Sha384>>(key, input)?,
        Algorithm::HS512 => mac::<Hmac<Sha512>>(key, input)?,
        _ => return None,
    };
    Some(b64(&tag))
}

/// `header.payload` signed by HMAC under `key` (any length, empty included: `jsonwebtoken`
/// would refuse an empty secret, an attacker does not).
fn hmac_token(alg: Algorithm, key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = hmac_b64(alg, key, input.as_bytes()).unwrap_or_default();
    format!("{input}.{sig}")
}

/// The body of a PEM file (its base64 between the armour lines), decoded: the DER.
pub fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    STANDARD.decode(body).ok()
}

/// The keyless attacks: every token here must be refused by any server, whatever its keys.
pub fn blackbox_cases(input: &BlackboxInput<'_>) -> Vec<BlackboxCase> {
    let claims = base_claims(input.now, input.sub, &format!("bb-{}", input.now));
    let with_kid = |mut h: Value| {
        if let (Some(o), Some(kid)) = (h.as_object_mut(), input.kid) {
            o.insert("kid".into(), json!(kid));
        }
        h
    };
    let payload = b64(claims.to_string().as_bytes());
    let mut out = Vec::new();
    let mut add = |name: &str, description: &str, token: String| {
        out.push(BlackboxCase {
            name: name.into(),
            description: description.into(),
            token,
        });
    };
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = with_kid(json!({"alg": none, "typ": "JWT"}));
        add(
            &format!("alg_{none}"),
            &format!("alg {none:?} with an empty signature"),
            format!("{}.{payload}.", b64(h.to_string().as_bytes())),
        );
    }
    for (i, pem) in input.public_pems.iter().enumerate() {
        let n = i + 1;
        let h = with_kid(json!({"alg": "HS256", "typ": "JWT"}));
        add(
            &format!("key_confusion_pem_{n}"),
            "HS256 signed with the server's public key PEM as the HMAC secret (RS/EC -> HS)",
            hmac_token(Algorithm::HS256, pem, &h, &claims),
        );
        let trimmed = pem.trim_ascii_end();
        if trimmed.len() != pem.len() {
            add(
                &format!("key_confusion_pem_no_newline_{n}"),
                "as above, the PEM without its final newline",
                hmac_token(Algorithm::HS256, trimmed, &h, &claims),
            );
        }
        if let Some(der) = pem_to_der(pem) {
            add(
                &format!("key_confusion_der_{n}"),
                "HS256 signed with the server's public key DER as the HMAC secret",
                hmac_token(Algorithm::HS256, &der, &h, &claims),
            );
        }
    }
    let attacker = b"attacker-chosen-secret-0123456789abcdef";
    let jwk = json!({"kty": "oct", "k": b64(attacker)});
    add(
        "embedded_jwk",
        "HS256 signed with an attacker key the header carries as jwk",
        hmac_token(
            Algorithm::HS256,
            attacker,
            &with_kid(json!({"alg": "HS256", "jwk": jwk})),
            &claims,
        ),
    );
    for (name, url) in [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
    ] {
        add(
            &format!("header_{name}_elsewhere"),
            &format!("{name} points at an attacker's host; signed with the attacker's key"),
            hmac_token(
                Algorithm::HS256,
                attacker,
                &with_kid(json!({"alg": "HS256", name: url})),
                &claims,
            ),
        );
    }
    // kid injection: each kid with the secret the injected lookup would yield.
    for (name, kid, secret) in [
        (
            "kid_path_traversal",
            "../../../../../../../dev/null",
            &b""[..],
        ),
        (
            "kid_sql_injection",
            "x' UNION SELECT 'attacker' -- ",
            &b"attacker"[..],
        ),
        ("kid_nul_byte", "key\u{0}../../dev/null", &b""[..]),
    ] {
        add(
            name,
            &format!("kid {kid:?}, signed with the secret that lookup would yield"),
            hmac_token(
                Algorithm::HS256,
                secret,
                &json!({"alg": "HS256", "kid": kid}),
                &claims,
            ),
        );
    }
    let hs = |alg: &str| {
        b64(with_kid(json!({"alg": alg, "typ": "JWT"}))
            .to_string()
            .as_bytes())
    };
    for alg in ["HS256", "RS256", "ES256", "EdDSA"] {
        add(
            &format!("empty_signature_{}", alg.to_ascii_lowercase()),
            &format!("{alg} header, signature part empty"),
            format!("{}.{payload}.", hs(alg)),
        );
    }
    let zero = |n: usize| b64(&vec![0u8; n]);
    for (alg, len) in [("HS256", 32), ("RS256", 256), ("EdDSA", 64)] {
        add(
            &format!("null_signature_{}", alg.to_ascii_lowercase()),
            &format!("{alg} header, a signature of {len} zero bytes"),
            format!("{}.{payload}.{}", hs(alg), zero(len)),
        );
    }
    add(
        "psychic_signature_es256",
        "ES256 with r = s = 0 (CVE-2022-21449)",
        format!("{}.{payload}.{}", hs("ES256"), zero(64)),
    );
    add(
        "psychic_signature_es256_der",
        "ES256 with r = s = 0 in DER form",
        format!(
            "{}.{payload}.{}",
            hs("ES256"),
            b64(&[0x30, 6, 2, 1, 0, 2, 1, 0])
        ),
    );
    add(
        "hs256_empty_secret",
        "HS256 signed with an empty secret",
        hmac_token(
            Algorithm::HS256,
            b"",
            &with_kid(json!({"alg": "HS256", "typ": "JWT"})),
            &claims,
        ),
    );
    out
}

/// Secrets people leave in HMAC deployments; [`weak_secret`] tries each offline.
pub const WEAK_SECRETS: &[&str] = &[
    "",
    "secret",
    "secretkey",
    "secret-key",
    "secret_key",
    "your-256-bit-secret",
    "your-secret-key",
    "jwt",
    "jwtsecret",
    "jwt-secret",
    "jwt_secret",
    "changeme",
    "change-me",
    "changeit",
    "password",
    "passw0rd",
    "admin",
    "key",
    "private",
    "test",
    "testing",
    "default",
    "1234567890",
    "123456",
    "qwerty",
    "supersecret",
    "mysecret",
    "s3cr3t",
    "gauntlet",
    "gauntlet-secret",
];

/// Which of [`WEAK_SECRETS`] (if any) signs `token`, an HS256/384/512 JWS: checked offline,
/// without the server. `None` also for a token that is not HMAC-signed.
pub fn weak_secret(token: &str) -> Option<&'static str> {
    let (input, sig) = token.rsplit_once('.')?;
    let header = input.split('.').next()?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    let alg: Algorithm = header.get("alg")?.as_str()?.parse().ok()?;
    WEAK_SECRETS
        .iter()
        .copied()
        .find(|s| hmac_b64(alg, s.as_bytes(), input.as_bytes()).as_deref() == Some(sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64_len_is_the_encoded_length() {
        for n in 0..64 {
            assert_eq!(b64_len(n), b64(&vec![0xA5; n]).len(), "{n} bytes");
        }
    }

    #[test]
    fn weak_secret_found_offline_and_strong_one_not() {
        let claims = base_claims(1_800_000_000, "u", "j");
        let h = json!({"alg": "HS256", "typ": "JWT"});
        let t = hmac_token(Algorithm::HS256, b"changeme", &h, &claims);
        assert_eq!(weak_secret(&t), Some("changeme"));
        let t = hmac_token(Algorithm::HS256, b"", &h, &claims);
        assert_eq!(weak_secret(&t), Some(""));
        let t = hmac_token(
            Algorithm::HS256,
            b"a-long-random-secret-nobody-guesses-0123",
            &h,
            &claims,
        );
        assert_eq!(weak_secret(&t), None);
        assert_eq!(weak_secret("not a token"), None);
        for alg in [Algorithm::HS384, Algorithm::HS512] {
            let h = json!({"alg": alg.name()});
            let t = hmac_token(alg, b"secret", &h, &claims);
            assert_eq!(weak_secret(&t), Some("secret"), "{alg}");
        }
        // An RS256 header: no HMAC to try, whatever the signature.
        let h = json!({"alg": "RS256"});
        let t = hmac_token(Algorithm::HS256, b"secret", &h, &claims);
        assert_eq!(weak_secret(&t), None);
        assert_eq!(hmac_b64(Algorithm::RS256, b"secret", b"input"), None);
    }

    /// Every case of `keys` validated against `ring`: its name with the verdict it got, and
    /// its name with the verdict it expects.
    #[allow(clippy::type_complexity)]
    fn verdicts(
        keys: &AttackKeys,
        ring: &super::super::KeyRing,
    ) -> (Vec<(String, String)>, Vec<(String, String)>) {
        let cases = attack_cases(keys, 1_800_000_000, "user-42").unwrap();
        assert!(cases.len() >= 30, "{}", cases.len());
        let mut got = Vec::new();
        let mut want = Vec::new();
        for c in &cases {
            let verdict = match super::super::validate(
                c.token.as_bytes(),
                crate::Instant::from_unix_secs(c.now),
                ring,
                &super::super::TokenRules::default(),
                c.token_type,
            ) {
                Ok(_) => "accepted".to_string(),
                Err(e) => e.code().to_string(),
            };
            got.push((c.name.clone(), verdict));
            want.push((c.name.clone(), c.expected.clone()));
        }
        (got, want)
    }

    #[test]
    fn attack_cases_with_a_lone_public_key_primary_give_their_expected_verdicts() {
        use crate::token::testkit::{
            EC256_PRIV, EC256_PUB, ED_PRIV, ED_PUB, RS256_PRIV, RS256_PUB, kid,
        };
        let cases = [
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(RS256_PRIV),
                RS256_PUB,
            ),
            (
                Algorithm::PS256,
                EncodingKey::from_rsa_pem(RS256_PRIV),
                RS256_PUB,
            ),
            (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(EC256_PRIV),
                EC256_PUB,
            ),
            (Algorithm::EdDSA, EncodingKey::from_ed_pem(ED_PRIV), ED_PUB),
        ];
        for (alg, key, public) in cases {
            // A lone key without a kid: no key-confusion, retired or several-key cases.
            let keys = AttackKeys {
                primary: AttackSigner {
                    kid: None,
                    alg,
                    key: key.unwrap(),
                },
                others: Vec::new(),
                rsa_public_pem: None,
                ec_public_der: None,
                retired: None,
                several_keys: false,
            };
            let mut ring = super::super::KeyRing::new();
            ring.add_public_pem(None, alg, public).unwrap();
            let (got, want) = verdicts(&keys, &ring);
            assert_eq!(got, want, "{alg}");
            // An RSA key also signs RS512: that header on it is the sibling-algorithm case.
            let sibling = attack_cases(&keys, 1_800_000_000, "u")
                .unwrap()
                .into_iter()
                .find(|c| c.name == "alg_differs_from_key")
                .map(|c| c.description);
            let rsa = matches!(alg, Algorithm::RS256 | Algorithm::PS256);
            assert_eq!(
                sibling,
                rsa.then(|| format!("RS512 header on the {alg} key, signed with its secret")),
                "{alg}"
            );
            // The same key under a kid.
            let mut keys = keys;
            keys.primary.kid = Some("k1".into());
            let mut ring = super::super::KeyRing::new();
            ring.add_public_pem(Some(kid("k1")), alg, public).unwrap();
            let (got, want) = verdicts(&keys, &ring);
            assert_eq!(got, want, "{alg} kid");
        }
    }

    #[test]
    fn attack_cases_with_an_hs512_primary_sign_their_sibling_with_hs256() {
        use crate::token::testkit::{HS256_SECRET, kid};
        let keys = AttackKeys {
            primary: AttackSigner {
                kid: Some("h5".into()),
                alg: Algorithm::HS512,
                key: EncodingKey::from_secret(HS256_SECRET).unwrap(),
            },
            others: Vec::new(),
            rsa_public_pem: None,
            ec_public_der: None,
            retired: None,
            several_keys: false,
        };
        let mut ring = super::super::KeyRing::new();
        ring.add_hmac(Some(kid("h5")), Algorithm::HS512, HS256_SECRET)
            .unwrap();
        let (got, want) = verdicts(&keys, &ring);
        assert_eq!(got, want);
        let cases = attack_cases(&keys, 1_800_000_000, "user-42").unwrap();
        let sibling = cases
            .iter()
            .find(|c| c.name == "alg_differs_from_key")
            .map(|c| c.description.as_str());
        assert_eq!(
            sibling,
            Some("HS256 header on the HS512 key, signed with its secret")
        );
    }

    #[test]
    fn attack_case_live_only_for_access_tokens_off_a_second_boundary() {
        use crate::token::testkit::HS256_SECRET;
        let keys = AttackKeys {
            primary: AttackSigner {
                kid: None,
                alg: Algorithm::HS256,
                key: EncodingKey::from_secret(HS256_SECRET).unwrap(),
            },
            others: Vec::new(),
            rsa_public_pem: None,
            ec_public_der: None,
            retired: None,
            several_keys: false,
        };
        let cases = attack_cases(&keys, 1_800_000_000, "user-42").unwrap();
        for c in &cases {
            assert_eq!(
                c.live(),
                c.token_type == TokenType::Access && !c.timing_edge,
                "{}",
                c.name
            );
        }
        assert!(cases.iter().any(AttackCase::live));
        assert!(cases.iter().any(|c| !c.live() && c.timing_edge));
        assert!(
            cases
                .iter()
                .any(|c| !c.live() && c.token_type != TokenType::Access)
        );
    }

    fn hs256_keys(kid: Option<&str>) -> AttackKeys {
        AttackKeys {
            primary: AttackSigner {
                kid: kid.map(String::from),
                alg: Algorithm::HS256,
                key: EncodingKey::from_secret(crate::token::testkit::HS256_SECRET).unwrap(),
            },
            others: Vec::new(),
            rsa_public_pem: None,
            ec_public_der: None,
            retired: None,
            several_keys: false,
        }
    }

    #[test]
    fn attack_cases_with_a_key_that_cannot_sign_its_algorithm_is_a_sign_error() {
        let mut keys = hs256_keys(Some("k"));
        keys.primary.alg = Algorithm::RS256;
        let err = attack_cases(&keys, 1_800_000_000, "u").unwrap_err();
        assert_eq!(
            err,
            AttackError::Sign {
                alg: Algorithm::RS256,
                kid: Some("k".into())
            }
        );
        assert_eq!(
            err.to_string(),
            r#"cannot sign RS256 with the key of kid Some("k")"#
        );
        // An empty public key cannot be an HMAC secret either.
        let mut keys = hs256_keys(None);
        keys.rsa_public_pem = Some((Some("rs".into()), Vec::new()));
        assert_eq!(
            attack_cases(&keys, 1_800_000_000, "u").unwrap_err(),
            AttackError::Sign {
                alg: Algorithm::HS256,
                kid: Some("rs".into())
            }
        );
    }

    #[test]
    fn attack_cases_pad_the_signed_input_only_when_a_part_is_not_a_multiple_of_four() {
        let mut seen = (false, false);
        // Header and payload lengths step through every residue mod 3 (so mod 4 once
        // encoded) as the kid and sub grow by one character.
        for kid in ["k", "kk", "kkk"] {
            for sub in ["u", "uu", "uuu"] {
                let cases = attack_cases(&hs256_keys(Some(kid)), 1_800_000_000, sub).unwrap();
                let valid = cases
                    .iter()
                    .find(|c| c.name == format!("valid_{kid}"))
                    .map(|c| c.token.clone())
                    .unwrap_or_default();
                let aligned = valid.split('.').take(2).all(|part| part.len() % 4 == 0);
                let padded = cases.iter().any(|c| c.name == "padded_header_or_payload");
                assert_eq!(padded, !aligned, "kid {kid}, sub {sub}: {valid}");
                if aligned {
                    seen.0 = true;
                } else {
                    seen.1 = true;
                }
            }
        }
        assert_eq!(seen, (true, true));
    }

    #[test]
    fn flip_trailing_bit_changes_the_last_character_within_the_alphabet_and_undoes_itself() {
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for c in ALPHABET.chars() {
            let part = format!("xy{c}");
            let flipped = flip_trailing_bit(&part).unwrap();
            assert_ne!(flipped, part, "{c}");
            assert_eq!(&flipped[..2], "xy");
            assert!(
                flipped[2..].chars().all(|f| ALPHABET.contains(f)),
                "{flipped}"
            );
            assert_eq!(flip_trailing_bit(&flipped).as_deref(), Some(part.as_str()));
        }
        assert_eq!(flip_trailing_bit(""), None);
        assert_eq!(flip_trailing_bit("a="), None, "not base64url");
    }

    /// A signature whose length is a multiple of four has no trailing bits to set, so there is
    /// no non-canonical variant of it: HS256's (43 characters) has one, HS384's (64) none.
    #[test]
    fn attack_cases_flip_trailing_bits_only_of_a_signature_that_has_them() {
        for (alg, expected) in [(Algorithm::HS256, true), (Algorithm::HS384, false)] {
            let mut keys = hs256_keys(Some("k"));
            keys.primary.alg = alg;
            let cases = attack_cases(&keys, 1_800_000_000, "u").unwrap();
            let valid = cases
                .iter()
                .find(|c| c.name == "valid_k")
                .map(|c| c.token.clone());
            let sig_len = valid
                .as_deref()
                .and_then(|t| t.rsplit('.').next())
                .map(str::len);
            assert_eq!(sig_len.map(|n| n % 4 != 0), Some(expected), "{alg}");
            let flipped = cases.iter().any(|c| c.name == "noncanonical_signature");
            assert_eq!(flipped, expected, "{alg}");
        }
    }

    #[test]
    fn pem_to_der_decodes_the_body_between_the_armour_lines() {
        use crate::token::testkit::RS256_PUB;
        let der = pem_to_der(RS256_PUB).unwrap();
        let body: String = std::str::from_utf8(RS256_PUB)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----") && !l.is_empty())
            .collect();
        assert_eq!(STANDARD.encode(&der), body);
        assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");
        let spaced = b"-----BEGIN PUBLIC KEY-----\n\n  AAEC  \n-----END PUBLIC KEY-----\n";
        assert_eq!(pem_to_der(spaced), Some(vec![0, 1, 2]));
        assert_eq!(
            pem_to_der(b"-----BEGIN X-----\n!!\n-----END X-----\n"),
            None
        );
    }

    /// Each PEM's cases are numbered from 1; the no-final-newline variant exists only for a
    /// PEM that ends in one, and the DER variant only for a PEM whose body decodes.
    #[test]
    fn blackbox_cases_number_each_pem_and_vary_only_what_it_allows() {
        use crate::token::testkit::RS256_PUB;
        let trimmed = RS256_PUB.trim_ascii_end().to_vec();
        let pems = vec![RS256_PUB.to_vec(), trimmed, b"not a pem\n".to_vec()];
        let cases = blackbox_cases(&BlackboxInput {
            now: 1_800_000_000,
            sub: "u",
            kid: None,
            public_pems: &pems,
        });
        let mut names: Vec<&str> = cases
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| n.starts_with("key_confusion"))
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "key_confusion_der_1",
                "key_confusion_der_2",
                "key_confusion_pem_1",
                "key_confusion_pem_2",
                "key_confusion_pem_3",
                "key_confusion_pem_no_newline_1",
                "key_confusion_pem_no_newline_3",
            ]
        );
    }

    #[test]
    fn blackbox_cases_have_unique_names() {
        let pems = vec![b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".to_vec()];
        let cases = blackbox_cases(&BlackboxInput {
            now: 1_800_000_000,
            sub: "u",
            kid: Some("k"),
            public_pems: &pems,
        });
        let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(n >= 20, "{n}");
    }
}
