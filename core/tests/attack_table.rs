//! The token attack table: every case in `corpora/tokens/manifest.json` is validated
//! against the ring the manifest describes and must give exactly the expected result.
//!
//! The cases come from `gauntlet_core::token::attacks::attack_cases`, the generator
//! `gauntlet probe` also sends live; `attack_table_generator_reproduces_corpus` checks that
//! the committed files are exactly what it makes from the committed keys.
//! `regenerate_attack_table` (ignored) rewrites the corpus from the committed test keys:
//! `cargo test -p gauntlet-core --test attack_table -- --ignored regenerate_attack_table`.
//! RSA PKCS#1 v1.5, ECDSA (RFC 6979) and Ed25519 signatures come out byte-identical;
//! PS256 uses a random salt, so only that file changes on regeneration.

use std::fs;
use std::path::{Path, PathBuf};

use gauntlet_core::Kid;
use gauntlet_core::token::attacks::{AttackCase, AttackKeys, AttackSigner, attack_cases};
use gauntlet_core::token::{Algorithm, KeyRing, TokenRules, TokenType, validate};
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};

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

fn signer(kid: &str, alg: Algorithm, key: EncodingKey) -> AttackSigner {
    AttackSigner {
        kid: Some(kid.into()),
        alg,
        key,
    }
}

/// The committed test keys as the shared generator takes them.
fn attack_keys() -> AttackKeys {
    let hmac = |kid, alg, file: &str| {
        signer(
            kid,
            alg,
            EncodingKey::from_secret(&read(&format!("keys/{file}"))).unwrap(),
        )
    };
    let rsa = || EncodingKey::from_rsa_pem(&read("keys/rs256.key.pem")).unwrap();
    AttackKeys {
        primary: hmac("hs256", Algorithm::HS256, "hs256.secret"),
        others: vec![
            hmac("hs384", Algorithm::HS384, "hs384.secret"),
            hmac("hs512", Algorithm::HS512, "hs512.secret"),
            signer("rs256", Algorithm::RS256, rsa()),
            signer("ps256", Algorithm::PS256, rsa()),
            signer(
                "es256",
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&read("keys/ec256.key.pem")).unwrap(),
            ),
            signer(
                "es384",
                Algorithm::ES384,
                EncodingKey::from_ec_pem(&read("keys/ec384.key.pem")).unwrap(),
            ),
            signer(
                "eddsa",
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&read("keys/ed25519.key.pem")).unwrap(),
            ),
        ],
        rsa_public_pem: Some((Some("rs256".into()), read("keys/rs256.pub.pem"))),
        ec_public_der: Some((Some("es256".into()), read("keys/ec256.pub.der"))),
        retired: Some(hmac("hs256-old", Algorithm::HS256, "hs384.secret")),
        several_keys: true,
    }
}

fn build_cases() -> Vec<AttackCase> {
    attack_cases(&attack_keys(), NOW, "user-42").unwrap()
}

#[test]
fn attack_table_generator_reproduces_corpus() {
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")).unwrap();
    let generated = build_cases();
    let names = |v: Vec<&str>| v.join(" ");
    assert_eq!(
        names(generated.iter().map(|c| c.name.as_str()).collect()),
        names(manifest.cases.iter().map(|c| c.name.as_str()).collect())
    );
    for (g, m) in generated.iter().zip(&manifest.cases) {
        assert_eq!(
            (&g.expected, g.token_type, g.now, &g.description),
            (&m.expected, m.token_type, m.now, &m.description),
            "{}",
            g.name
        );
        // PS256 signatures are salted, so only that file differs from run to run.
        if g.name != "valid_ps256" {
            assert_eq!(g.token.as_bytes(), read(&m.file), "{}", g.name);
        }
    }
}

#[test]
#[ignore = "rewrites corpora/tokens; run explicitly after changing the cases or keys"]
fn regenerate_attack_table() {
    let dir = corpus_dir();
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jwt") {
            fs::remove_file(path).unwrap();
        }
    }
    let mut cases = Vec::new();
    for c in build_cases() {
        let case = Case {
            file: format!("{}.jwt", c.name),
            name: c.name,
            description: c.description,
            expected: c.expected,
            token_type: c.token_type,
            now: c.now,
        };
        fs::write(dir.join(&case.file), c.token).unwrap();
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
