//! The token attack table: every case in `corpora/tokens/manifest.json` is validated
//! against the ring the manifest describes and must give exactly the expected result.
//!
//! `regenerate_attack_table` (ignored) rewrites the corpus from the committed test keys:
//! `cargo test -p gauntlet-core --test attack_table -- --ignored regenerate_attack_table`.
//! RSA PKCS#1 v1.5, ECDSA (RFC 6979) and Ed25519 signatures come out byte-identical;
//! PS256 uses a random salt, so only that file changes on regeneration.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gauntlet_core::Kid;
use gauntlet_core::token::{Algorithm, KeyRing, TokenRules, TokenType, validate};
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The instant every case is validated at unless it says otherwise.
const NOW: u64 = 1_800_000_000;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpora/tokens")
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    description: String,
    rules: String,
    keys: Vec<KeySpec>,
    cases: Vec<Case>,
}

#[derive(Serialize, Deserialize, Clone)]
struct KeySpec {
    kid: String,
    alg: Algorithm,
    /// `hmac` (raw secret bytes) or `public_pem`.
    kind: String,
    file: String,
    retired: bool,
}

#[derive(Serialize, Deserialize)]
struct Case {
    name: String,
    file: String,
    description: String,
    /// `accepted` or a `TokenError::code`.
    expected: String,
    token_type: TokenType,
    /// Unix seconds to validate at.
    now: u64,
}

fn key_specs() -> Vec<KeySpec> {
    let k = |kid: &str, alg, kind: &str, file: &str, retired| KeySpec {
        kid: kid.into(),
        alg,
        kind: kind.into(),
        file: format!("keys/{file}"),
        retired,
    };
    vec![
        k("hs256", Algorithm::HS256, "hmac", "hs256.secret", false),
        k("hs384", Algorithm::HS384, "hmac", "hs384.secret", false),
        k("hs512", Algorithm::HS512, "hmac", "hs512.secret", false),
        k(
            "rs256",
            Algorithm::RS256,
            "public_pem",
            "rs256.pub.pem",
            false,
        ),
        k(
            "ps256",
            Algorithm::PS256,
            "public_pem",
            "rs256.pub.pem",
            false,
        ),
        k(
            "es256",
            Algorithm::ES256,
            "public_pem",
            "ec256.pub.pem",
            false,
        ),
        k(
            "es384",
            Algorithm::ES384,
            "public_pem",
            "ec384.pub.pem",
            false,
        ),
        k(
            "eddsa",
            Algorithm::EdDSA,
            "public_pem",
            "ed25519.pub.pem",
            false,
        ),
        k("hs256-old", Algorithm::HS256, "hmac", "hs384.secret", true),
    ]
}

fn read(rel: &str) -> Vec<u8> {
    fs::read(corpus_dir().join(rel)).unwrap()
}

fn build_ring(specs: &[KeySpec]) -> KeyRing {
    let mut ring = KeyRing::new();
    for s in specs {
        let kid = Some(Kid::parse(&s.kid).unwrap());
        let bytes = read(&s.file);
        match s.kind.as_str() {
            "hmac" => ring.add_hmac(kid, s.alg, &bytes).unwrap(),
            "public_pem" => ring.add_public_pem(kid, s.alg, &bytes).unwrap(),
            other => panic!("unknown key kind {other}"),
        }
    }
    for s in specs.iter().filter(|s| s.retired) {
        ring.retire(&Kid::parse(&s.kid).unwrap()).unwrap();
    }
    ring
}

#[test]
fn attack_table_every_case_gives_expected_result() {
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    assert!(
        manifest.cases.len() >= 40,
        "only {} cases",
        manifest.cases.len()
    );
    let ring = build_ring(&manifest.keys);
    let rules = TokenRules::default();
    let mut failures = Vec::new();
    for case in &manifest.cases {
        let token = read(&case.file);
        let got = match validate(
            &token,
            gauntlet_core::Instant::from_unix_secs(case.now),
            &ring,
            &rules,
            case.token_type,
        ) {
            Ok(_) => "accepted".to_string(),
            Err(e) => e.code().to_string(),
        };
        if got != case.expected {
            failures.push(format!(
                "{}: expected {}, got {got}",
                case.name, case.expected
            ));
        }
    }
    for f in &failures {
        eprintln!("FAILED {f}");
    }
    assert!(
        failures.is_empty(),
        "{} failing cases: {failures:#?}",
        failures.len()
    );
}

#[test]
fn attack_table_files_match_manifest() {
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let mut listed: Vec<String> = manifest.cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    let mut on_disk: Vec<String> = fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jwt"))
        .collect();
    on_disk.sort();
    assert_eq!(listed, on_disk);
}

// ---- generator ----

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

struct Signer {
    kid: &'static str,
    alg: Algorithm,
    key: EncodingKey,
}

fn signers() -> Vec<Signer> {
    let hmac = |kid, alg, file: &str| Signer {
        kid,
        alg,
        key: EncodingKey::from_secret(&read(&format!("keys/{file}"))).unwrap(),
    };
    vec![
        hmac("hs256", Algorithm::HS256, "hs256.secret"),
        hmac("hs384", Algorithm::HS384, "hs384.secret"),
        hmac("hs512", Algorithm::HS512, "hs512.secret"),
        Signer {
            kid: "rs256",
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_pem(&read("keys/rs256.key.pem")).unwrap(),
        },
        Signer {
            kid: "ps256",
            alg: Algorithm::PS256,
            key: EncodingKey::from_rsa_pem(&read("keys/rs256.key.pem")).unwrap(),
        },
        Signer {
            kid: "es256",
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_pem(&read("keys/ec256.key.pem")).unwrap(),
        },
        Signer {
            kid: "es384",
            alg: Algorithm::ES384,
            key: EncodingKey::from_ec_pem(&read("keys/ec384.key.pem")).unwrap(),
        },
        Signer {
            kid: "eddsa",
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_pem(&read("keys/ed25519.key.pem")).unwrap(),
        },
    ]
}

/// Signs exactly the given encoded header and payload text with `key` under `alg`.
fn sign_encoded(h: &str, p: &str, alg: Algorithm, key: &EncodingKey) -> String {
    let input = format!("{h}.{p}");
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, alg.to_jsonwebtoken()).unwrap();
    format!("{input}.{sig}")
}

fn sign_text(header: &str, payload: &str, alg: Algorithm, key: &EncodingKey) -> String {
    sign_encoded(&b64(header.as_bytes()), &b64(payload.as_bytes()), alg, key)
}

fn claims() -> Value {
    json!({
        "iss": "gauntlet-auth",
        "sub": "user-42",
        "jti": "jti-42",
        "aud": "gauntlet-gateway",
        "exp": NOW + 600,
        "iat": NOW - 60,
        "token_type": "access",
        "permissions": ["threads:read", "threads:write", "runs:*"],
        "email": "user42@example.com",
    })
}

fn with(changes: &[(&str, Value)], remove: &[&str]) -> Value {
    let mut c = claims();
    for (k, v) in changes {
        c[*k] = v.clone();
    }
    for k in remove {
        c.as_object_mut().unwrap().remove(*k);
    }
    c
}

struct Gen {
    signers: Vec<Signer>,
    cases: Vec<(Case, String)>,
}

impl Gen {
    fn signer(&self, kid: &str) -> &Signer {
        self.signers.iter().find(|s| s.kid == kid).unwrap()
    }

    fn header(&self, kid: &str) -> String {
        let s = self.signer(kid);
        format!(r#"{{"alg":"{}","kid":"{kid}","typ":"JWT"}}"#, s.alg)
    }

    /// A token signed by key `kid` with its own algorithm.
    fn signed(&self, kid: &str, payload: &Value) -> String {
        let s = self.signer(kid);
        sign_text(&self.header(kid), &payload.to_string(), s.alg, &s.key)
    }

    fn hs(&self, payload: &Value) -> String {
        self.signed("hs256", payload)
    }

    fn hs_header(&self, header: &str, payload: &str) -> String {
        let s = self.signer("hs256");
        sign_text(header, payload, s.alg, &s.key)
    }

    fn hs_sign_encoded(&self, h: &str, p: &str) -> String {
        let s = self.signer("hs256");
        sign_encoded(h, p, s.alg, &s.key)
    }

    fn add_at(
        &mut self,
        name: &str,
        description: &str,
        token: String,
        expected: &str,
        ty: TokenType,
        now: u64,
    ) {
        assert!(
            !self.cases.iter().any(|(c, _)| c.name == name),
            "duplicate case {name}"
        );
        let case = Case {
            name: name.into(),
            file: format!("{name}.jwt"),
            description: description.into(),
            expected: expected.into(),
            token_type: ty,
            now,
        };
        self.cases.push((case, token));
    }

    fn add(&mut self, name: &str, description: &str, token: String, expected: &str) {
        self.add_at(name, description, token, expected, TokenType::Access, NOW);
    }
}

/// Flips the low bit of the last character's 6-bit value, keeping it in the alphabet.
fn flip_trailing_bit(part: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (head, last) = part.split_at(part.len() - 1);
    let i = ALPHABET
        .iter()
        .position(|c| *c == last.as_bytes()[0])
        .unwrap();
    format!("{head}{}", ALPHABET[i ^ 1] as char)
}

/// Replaces the first character of `part` with a different alphabet character.
fn change_first(part: &str) -> String {
    let first = if part.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", &part[1..])
}

/// Adds `=` padding to whichever of header and payload needs it (at least one does).
fn pad_some_part(h: &str, p: &str) -> (String, String) {
    let pad = |s: &str| format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
    let (ph, pp) = (pad(h), pad(p));
    assert!(ph != h || pp != p, "neither part needs padding");
    (ph, pp)
}

/// A payload whose base64url encoding contains `-` or `_`, re-encoded in the standard
/// alphabet and signed as is.
fn standard_alphabet_payload(g: &Gen) -> String {
    for n in 0..200 {
        let payload = with(&[("pad", json!("~".repeat(n)))], &[]).to_string();
        let url = b64(payload.as_bytes());
        if url.contains('-') || url.contains('_') {
            let std = url.replace('-', "+").replace('_', "/");
            let h = b64(g.header("hs256").as_bytes());
            return g.hs_sign_encoded(&h, &std);
        }
    }
    panic!("no payload produced - or _");
}

/// A validly signed HS256 token of exactly `len` bytes (a filler claim sets the size).
fn sized_token(g: &Gen, len: usize) -> String {
    for typ in ["", r#","typ":"JWT""#, r#","typ":"JWT1""#] {
        let header = format!(r#"{{"alg":"HS256","kid":"hs256"{typ}}}"#);
        for n in 0..4096 {
            let payload = with(&[("filler", json!("f".repeat(n)))], &[]).to_string();
            let t = g.hs_header(&header, &payload);
            if t.len() == len {
                return t;
            }
            if t.len() > len {
                break;
            }
        }
    }
    panic!("no token of exactly {len} bytes");
}

fn build_cases() -> Gen {
    let mut g = Gen {
        signers: signers(),
        cases: Vec::new(),
    };
    let base = claims();
    let payload = base.to_string();

    // Valid tokens, one per algorithm, and one per token type.
    for kid in [
        "hs256", "hs384", "hs512", "rs256", "ps256", "es256", "es384", "eddsa",
    ] {
        let alg = g.signer(kid).alg;
        let t = g.signed(kid, &base);
        g.add(
            &format!("valid_{kid}"),
            &format!("valid {alg} access token"),
            t,
            "accepted",
        );
    }
    let refresh = with(
        &[("token_type", json!("refresh")), ("fam", json!("fam-1"))],
        &[],
    );
    let t = g.hs(&refresh);
    g.add_at(
        "valid_refresh",
        "valid refresh token validated as refresh",
        t,
        "accepted",
        TokenType::Refresh,
        NOW,
    );
    let service = with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
            ("svc_id", json!("billing")),
        ],
        &[],
    );
    let t = g.hs(&service);
    g.add_at(
        "valid_service",
        "valid service token with svc_id",
        t,
        "accepted",
        TokenType::Service,
        NOW,
    );

    // alg none, with and without a signature.
    for none in ["none", "None", "NONE", "nOnE"] {
        let header = format!(r#"{{"alg":"{none}","kid":"hs256","typ":"JWT"}}"#);
        let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(payload.as_bytes()));
        g.add(
            &format!("alg_{none}_unsigned"),
            &format!("alg {none:?}, empty signature"),
            unsigned,
            "algorithm_none",
        );
        let signed = g.hs_header(&header, &payload);
        g.add(
            &format!("alg_{none}_signed"),
            &format!("alg {none:?} with an HS256 signature"),
            signed,
            "algorithm_none",
        );
    }

    // Key confusion and algorithm binding.
    let rsa_pem = read("keys/rs256.pub.pem");
    let t = sign_text(
        r#"{"alg":"HS256","kid":"rs256","typ":"JWT"}"#,
        &payload,
        Algorithm::HS256,
        &EncodingKey::from_secret(&rsa_pem).unwrap(),
    );
    g.add(
        "key_confusion_rsa_pem",
        "HS256 signed with the RSA public PEM as secret, kid of the RSA key",
        t,
        "algorithm_mismatch",
    );
    let ec_der = read("keys/ec256.pub.der");
    let t = sign_text(
        r#"{"alg":"HS256","kid":"es256","typ":"JWT"}"#,
        &payload,
        Algorithm::HS256,
        &EncodingKey::from_secret(&ec_der).unwrap(),
    );
    g.add(
        "key_confusion_ec_der",
        "HS256 signed with the EC public key DER as secret, kid of the EC key",
        t,
        "algorithm_mismatch",
    );
    let t = sign_text(
        r#"{"alg":"HS512","kid":"hs256"}"#,
        &payload,
        Algorithm::HS512,
        &g.signer("hs256").key,
    );
    g.add(
        "alg_differs_from_key",
        "HS512 header on the HS256 key, signed with its secret",
        t,
        "algorithm_mismatch",
    );

    // Key selection.
    let t = g.hs_header(r#"{"alg":"HS256","kid":"no-such-key"}"#, &payload);
    g.add("unknown_kid", "kid not in the ring", t, "unknown_key");
    let t = g.hs_header(r#"{"alg":"HS256","kid":"../../dev/null"}"#, &payload);
    g.add(
        "kid_path_traversal",
        "kid is a path; never used as one",
        t,
        "unknown_key",
    );
    let t = g.hs_header(r#"{"alg":"HS256"}"#, &payload);
    g.add(
        "no_kid_many_keys",
        "no kid while the ring holds several keys",
        t,
        "unknown_key",
    );
    let old = EncodingKey::from_secret(&read("keys/hs384.secret")).unwrap();
    let t = sign_text(
        r#"{"alg":"HS256","kid":"hs256-old"}"#,
        &payload,
        Algorithm::HS256,
        &old,
    );
    g.add(
        "retired_key",
        "correctly signed with a retired key",
        t,
        "key_retired",
    );

    // Forbidden and critical headers.
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", json!({"kty": "oct", "k": "AAAA"})),
        ("x5c", json!(["MIIB"])),
    ] {
        let header = json!({"alg": "HS256", "kid": "hs256", name: value}).to_string();
        let t = g.hs_header(&header, &payload);
        g.add(
            &format!("header_{name}"),
            &format!("header carries {name}"),
            t,
            "forbidden_header",
        );
    }
    let t = g.hs_header(
        r#"{"alg":"HS256","kid":"hs256","crit":["exp"],"exp":1}"#,
        &payload,
    );
    g.add(
        "header_crit",
        "crit header naming an extension",
        t,
        "critical_header",
    );

    // Tampering and structure.
    let good = g.hs(&base);
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, s) = (parts[0], parts[1], parts[2]);
    let other_header = b64(br#"{"alg":"HS256","kid":"hs256","typ":"JWS"}"#);
    g.add(
        "tampered_header",
        "header replaced after signing",
        format!("{other_header}.{p}.{s}"),
        "bad_signature",
    );
    let admin = b64(with(&[("sub", json!("admin"))], &[]).to_string().as_bytes());
    g.add(
        "tampered_payload",
        "payload replaced (sub admin) after signing",
        format!("{h}.{admin}.{s}"),
        "bad_signature",
    );
    g.add(
        "tampered_signature",
        "first signature character changed",
        format!("{h}.{p}.{}", change_first(s)),
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
    let padded_sig = format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4));
    assert_ne!(padded_sig, s, "an HS256 signature always needs padding");
    g.add(
        "padded_signature",
        "signature with = padding",
        format!("{h}.{p}.{padded_sig}"),
        "malformed",
    );
    let (ph, pp) = pad_some_part(h, p);
    let t = g.hs_sign_encoded(&ph, &pp);
    g.add(
        "padded_header_or_payload",
        "= padding inside the signed input (signed as is)",
        t,
        "malformed",
    );
    g.add(
        "noncanonical_signature",
        "signature's last character has non-zero trailing bits",
        format!("{h}.{p}.{}", flip_trailing_bit(s)),
        "malformed",
    );
    let t = standard_alphabet_payload(&g);
    g.add(
        "standard_alphabet_payload",
        "payload in standard base64 (+ or /), signed as is",
        t,
        "malformed",
    );
    let t = g.hs_header("not json at all", &payload);
    g.add("non_json_header", "header is not JSON", t, "malformed");
    let t = g.hs_header(r#"{"alg":"HS256","kid":"hs256"}"#, "definitely not json");
    g.add("non_json_payload", "payload is not JSON", t, "malformed");
    let t = g.hs_header(r#"["alg","HS256"]"#, &payload);
    g.add(
        "header_not_object",
        "header is a JSON array",
        t,
        "malformed",
    );
    let t = g.hs_header(r#"{"alg":"HS256","kid":"hs256","kid":"hs384"}"#, &payload);
    g.add(
        "duplicate_key_header",
        "kid appears twice in the header",
        t,
        "malformed",
    );
    let dup = payload.replacen('{', r#"{"sub":"admin","#, 1);
    let t = g.hs_header(&g.header("hs256"), &dup);
    g.add(
        "duplicate_key_payload",
        "sub appears twice in the payload",
        t,
        "malformed",
    );

    // Expiry and time.
    let t = g.hs(&with(
        &[("exp", json!(NOW - 31)), ("iat", json!(NOW - 300))],
        &[],
    ));
    g.add(
        "expired_by_1s",
        "exp + leeway is 1 s before now",
        t,
        "expired",
    );
    let edge = g.hs(&with(
        &[("exp", json!(NOW)), ("iat", json!(NOW - 300))],
        &[],
    ));
    g.add_at(
        "leeway_edge_rejected",
        "now == exp + leeway",
        edge.clone(),
        "expired",
        TokenType::Access,
        NOW + 30,
    );
    g.add_at(
        "leeway_edge_accepted",
        "now == exp + leeway - 1 s",
        edge,
        "accepted",
        TokenType::Access,
        NOW + 29,
    );
    let bad_dates = [
        ("string", json!("1800000600")),
        ("float", json!(1_800_000_600.5)),
        ("negative", json!(-1)),
        ("null", Value::Null),
        ("1e308", json!(1e308)),
    ];
    for claim in ["exp", "nbf", "iat"] {
        for (label, v) in &bad_dates {
            let t = g.hs(&with(&[(claim, v.clone())], &[]));
            g.add(
                &format!("{claim}_{label}"),
                &format!("{claim} is {v}"),
                t,
                "invalid_claim",
            );
        }
    }
    let t = g.hs(&with(&[("exp", json!(1_800_000_600.0))], &[]));
    g.add(
        "exp_integral_float",
        "exp is 1800000600.0: an integral float is accepted",
        t,
        "accepted",
    );
    let t = g.hs(&with(&[("nbf", json!(NOW + 31))], &[]));
    g.add("nbf_future", "nbf beyond now + leeway", t, "not_yet_valid");
    let t = g.hs(&with(&[("nbf", json!(NOW + 30))], &[]));
    g.add("nbf_within_leeway", "nbf == now + leeway", t, "accepted");
    let t = g.hs(&with(&[("iat", json!(NOW + 61))], &[]));
    g.add(
        "iat_future",
        "iat 61 s in the future",
        t,
        "issued_in_future",
    );
    let t = g.hs(&with(&[("iat", json!(NOW - 931))], &[]));
    g.add(
        "iat_too_old",
        "iat older than the 15 min access lifetime + 30 s leeway",
        t,
        "too_old",
    );

    // Issuer and audience.
    let t = g.hs(&with(&[("iss", json!("evil-auth"))], &[]));
    g.add("wrong_iss", "iss is not gauntlet-auth", t, "wrong_issuer");
    let t = g.hs(&base);
    g.add(
        "aud_string_match",
        "aud string equal to the gateway audience",
        t,
        "accepted",
    );
    let t = g.hs(&with(&[("aud", json!("gauntlet-services"))], &[]));
    g.add(
        "aud_string_mismatch",
        "aud string for another audience",
        t,
        "wrong_audience",
    );
    let t = g.hs(&with(&[("aud", json!(["other", "gauntlet-gateway"]))], &[]));
    g.add(
        "aud_array_match",
        "aud array containing the gateway audience",
        t,
        "accepted",
    );
    let t = g.hs(&with(
        &[("aud", json!(["other", "gauntlet-services"]))],
        &[],
    ));
    g.add(
        "aud_array_mismatch",
        "aud array without the gateway audience",
        t,
        "wrong_audience",
    );

    // Required claims.
    for claim in ["sub", "jti", "exp", "iat", "iss", "aud", "token_type"] {
        let t = g.hs(&with(&[], &[claim]));
        g.add(
            &format!("missing_{claim}"),
            &format!("no {claim} claim"),
            t,
            "missing_claim",
        );
    }
    let t = g.hs(&with(&[("sub", json!("u".repeat(129)))], &[]));
    g.add("sub_too_long", "sub of 129 characters", t, "invalid_claim");

    // Size.
    let t = sized_token(&g, 4097);
    g.add("oversize_4097", "4097-byte signed token", t, "too_long");
    let t = sized_token(&g, 4096);
    g.add("max_size_4096", "4096-byte signed token", t, "accepted");

    // Permissions.
    let many: Vec<String> = (0..51).map(|i| format!("perm:{i}")).collect();
    let t = g.hs(&with(&[("permissions", json!(many))], &[]));
    g.add("permissions_51", "51 permissions", t, "bad_permissions");
    let t = g.hs(&with(
        &[("permissions", json!(["threads:read", "threads;drop"]))],
        &[],
    ));
    g.add(
        "permission_forbidden_char",
        "a permission containing ';'",
        t,
        "bad_permissions",
    );

    // Token types.
    let t = g.hs(&refresh);
    g.add(
        "refresh_as_access",
        "refresh token presented as an access token",
        t,
        "wrong_token_type",
    );
    let no_svc = with(
        &[
            ("token_type", json!("service")),
            ("aud", json!("gauntlet-services")),
        ],
        &[],
    );
    let t = g.hs(&no_svc);
    g.add_at(
        "service_without_svc_id",
        "service token lacking svc_id",
        t,
        "missing_claim",
        TokenType::Service,
        NOW,
    );
    g
}

#[test]
#[ignore = "rewrites corpora/tokens; run explicitly after changing the cases or keys"]
fn regenerate_attack_table() {
    let g = build_cases();
    let dir = corpus_dir();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jwt") {
            fs::remove_file(path).unwrap();
        }
    }
    let mut cases = Vec::new();
    for (case, token) in g.cases {
        fs::write(dir.join(&case.file), token).unwrap();
        cases.push(case);
    }
    let manifest = Manifest {
        description: "JWT attack table: each case is one token file, validated at `now` (unix \
                      seconds) as `token_type` against the `keys` ring (files relative to this \
                      directory) with TokenRules::default() (prod); `expected` is `accepted` or \
                      the TokenError code. Regenerate with `cargo test -p gauntlet-core --test \
                      attack_table -- --ignored regenerate_attack_table`."
            .into(),
        rules: "TokenRules::default()".into(),
        keys: key_specs(),
        cases,
    };
    let mut json = serde_json::to_string_pretty(&manifest).unwrap();
    json.push('\n');
    fs::write(dir.join("manifest.json"), json).unwrap();
}
