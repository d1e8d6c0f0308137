//! `gauntlet token mint|verify`, run as the real binary: round trips, exit codes, the
//! `--json` shape, stdin input, and tokens produced by an independent JWS implementation
//! (the `openssl` command line) verifying.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn key(name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "corpora",
        "tokens",
        "keys",
        name,
    ]
    .iter()
    .collect();
    path.to_string_lossy().into_owned()
}

fn gauntlet(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// Mints with the given key flag and extra arguments; returns the token.
fn mint(key_flag: &str, key_file: &str, extra: &[&str]) -> String {
    let now = NOW.to_string();
    let mut args = vec!["token", "mint", key_flag, key_file, "--now", &now];
    args.extend_from_slice(extra);
    let out = gauntlet(&args, None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn verify(key_flag: &str, key_file: &str, at: u64, extra: &[&str], token: &str) -> Output {
    let now = at.to_string();
    let mut args = vec!["token", "verify", key_flag, key_file, "--now", &now];
    args.extend_from_slice(extra);
    args.push(token);
    gauntlet(&args, None)
}

#[test]
fn mint_then_verify_hs256_round_trip_prints_claims() {
    let secret = key("hs256.secret");
    let token = mint(
        "--hs256-secret-file",
        &secret,
        &[
            "--sub",
            "alice",
            "--permissions",
            "chat:write,runs:*",
            "--ttl",
            "600",
            "--email",
            "a@example.com",
        ],
    );
    let out = verify("--hs256-secret-file", &secret, NOW + 599, &[], &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let claims = json_out(&out);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["token_type"], "access");
    assert_eq!(claims["exp"], NOW + 600);
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["email"], "a@example.com");
    assert_eq!(claims["permissions"], json!(["chat:write", "runs:*"]));
}

#[test]
fn mint_then_verify_asymmetric_keys_round_trip_with_kid() {
    let cases = [
        (
            "--es256-private-key",
            "ec256.key.pem",
            "--es256-public-key",
            "ec256.pub.pem",
        ),
        (
            "--rs256-private-key",
            "rs256.key.pem",
            "--rs256-public-key",
            "rs256.pub.pem",
        ),
        (
            "--ed25519-private-key",
            "ed25519.key.pem",
            "--ed25519-public-key",
            "ed25519.pub.pem",
        ),
    ];
    for (sign_flag, private, verify_flag, public) in cases {
        let token = mint(sign_flag, &key(private), &["--sub", "bob", "--kid", "k-7"]);
        let out = verify(
            verify_flag,
            &key(public),
            NOW + 1,
            &["--kid", "k-7"],
            &token,
        );
        assert_eq!(out.status.code(), Some(0), "{sign_flag}: {}", stderr(&out));
        let claims = json_out(&out);
        assert_eq!(claims["sub"], "bob", "{sign_flag}");
        assert_eq!(claims["kid"], "k-7", "{sign_flag}");
        let out = verify(
            verify_flag,
            &key(public),
            NOW + 1,
            &["--kid", "other"],
            &token,
        );
        assert_eq!(out.status.code(), Some(1), "{sign_flag}");
        assert!(
            stderr(&out).contains("unknown_key"),
            "{sign_flag}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn verify_expired_token_exits_1_with_expired() {
    let secret = key("hs256.secret");
    let token = mint(
        "--hs256-secret-file",
        &secret,
        &["--sub", "alice", "--ttl", "60"],
    );
    // exp + 30 s leeway is the first rejected instant.
    let ok = verify("--hs256-secret-file", &secret, NOW + 89, &[], &token);
    assert_eq!(ok.status.code(), Some(0));
    let out = verify("--hs256-secret-file", &secret, NOW + 90, &[], &token);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
}

#[test]
fn verify_json_flag_shape_for_valid_and_invalid() {
    let secret = key("hs256.secret");
    let token = mint(
        "--hs256-secret-file",
        &secret,
        &["--sub", "carol", "--ttl", "60"],
    );
    let ok = verify("--hs256-secret-file", &secret, NOW, &["--json"], &token);
    assert_eq!(ok.status.code(), Some(0));
    let body = json_out(&ok);
    assert_eq!(body["valid"], true);
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["claims"]["sub"], "carol");
    let bad = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--json", "--type", "refresh"],
        &token,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        json_out(&bad),
        json!({"valid": false, "error": "wrong_token_type", "claims": null})
    );
}

/// The `jti` claim of a compact JWS, read without verifying.
fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

#[test]
fn mint_gives_every_token_its_own_128_bit_jti_even_in_the_same_second() {
    let secret = key("hs256.secret");
    // The same `--now`, so the same second, as two mints in one second of a script.
    let jtis: Vec<String> = (0..2)
        .map(|_| jti_of(&mint("--hs256-secret-file", &secret, &["--sub", "ivy"])))
        .collect();
    assert_ne!(
        jtis[0], jtis[1],
        "two tokens share a jti: revoking one revokes both"
    );
    for jti in &jtis {
        // 32 hex digits: 128 bits from the OS RNG.
        assert_eq!(jti.len(), 32, "{jti}");
        assert!(
            jti.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{jti}"
        );
    }
    // And it verifies: the validator accepts the id.
    let token = mint("--hs256-secret-file", &secret, &["--sub", "ivy"]);
    let out = verify("--hs256-secret-file", &secret, NOW, &[], &token);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["jti"], jti_of(&token));
}

#[test]
fn verify_dash_reads_token_from_stdin_trimmed() {
    let secret = key("hs256.secret");
    let token = mint("--hs256-secret-file", &secret, &["--sub", "dave"]);
    let now = NOW.to_string();
    let args = [
        "token",
        "verify",
        "--hs256-secret-file",
        &secret,
        "--now",
        &now,
        "-",
    ];
    let out = gauntlet(&args, Some(&format!("\n  {token} \r\n")));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["sub"], "dave");
}

#[test]
fn verify_signature_only_ignores_claims_but_not_signature() {
    let secret = key("hs256.secret");
    let token = mint(
        "--hs256-secret-file",
        &secret,
        &["--sub", "erin", "--ttl", "60"],
    );
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW + 10_000,
        &["--signature-only"],
        &token,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let payload = json_out(&out);
    assert_eq!(payload["sub"], "erin");
    assert_eq!(payload["iss"], "gauntlet-auth");
    // Change the signature's first character: every one of its 6 bits is significant, so
    // the result is still canonical base64url (the last character's low bits are not, and
    // the signature, with a random jti, is different on every run).
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let first = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{signed}.{first}{}", &signature[1..]);
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--signature-only"],
        &tampered,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad_signature"), "{}", stderr(&out));
}

#[test]
fn verify_issuer_and_audience_flags_override_rules() {
    let secret = key("hs256.secret");
    let token = mint("--hs256-secret-file", &secret, &["--sub", "frank"]);
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--issuer", "other"],
        &token,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("wrong_issuer"), "{}", stderr(&out));
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--audience", "elsewhere"],
        &token,
    );
    assert!(stderr(&out).contains("wrong_audience"), "{}", stderr(&out));
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--audience", "gauntlet-gateway"],
        &token,
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn mint_service_token_needs_svc_id_and_verifies_as_service() {
    let secret = key("hs256.secret");
    let args = [
        "token",
        "mint",
        "--hs256-secret-file",
        &secret,
        "--sub",
        "svc",
        "--type",
        "service",
    ];
    let out = gauntlet(&args, None);
    // A request the issuer refuses is a usage error (2), not an invalid token (1).
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("svc_id"), "{}", stderr(&out));
    let token = mint(
        "--hs256-secret-file",
        &secret,
        &["--sub", "svc", "--type", "service", "--svc-id", "billing"],
    );
    let out = verify(
        "--hs256-secret-file",
        &secret,
        NOW,
        &["--type", "service"],
        &token,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["svc_id"], "billing");
}

#[test]
fn bad_usage_exits_2() {
    let secret = key("hs256.secret");
    let ec = key("ec256.key.pem");
    let usage_errors: [&[&str]; 5] = [
        &["token", "verify", "some.token.here"],
        &[
            "token",
            "mint",
            "--sub",
            "a",
            "--hs256-secret-file",
            &secret,
            "--es256-private-key",
            &ec,
        ],
        &["token", "mint", "--hs256-secret-file", &secret],
        &[
            "token",
            "verify",
            "--hs256-secret-file",
            &secret,
            "--type",
            "bogus",
            "t",
        ],
        &[
            "token",
            "verify",
            "--hs256-secret-file",
            &secret,
            "--jwks",
            &secret,
            "t",
        ],
    ];
    for args in usage_errors {
        let out = gauntlet(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn unreadable_key_file_exits_2_naming_the_file() {
    let out = gauntlet(
        &[
            "token",
            "verify",
            "--hs256-secret-file",
            "/nonexistent/gauntlet.secret",
            "a.b.c",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/gauntlet.secret"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn verify_with_jwks_file_selects_key_by_kid() {
    let secret = std::fs::read(key("hs256.secret")).unwrap();
    let jwks = json!({"keys": [
        {"kty": "oct", "kid": "j1", "alg": "HS256", "use": "sig", "k": URL_SAFE_NO_PAD.encode(&secret)},
    ]});
    let path = std::env::temp_dir().join(format!("gauntlet-cli-jwks-{}.json", std::process::id()));
    std::fs::write(&path, jwks.to_string()).unwrap();
    let jwks_path = path.to_string_lossy().into_owned();
    let token = mint(
        "--hs256-secret-file",
        &key("hs256.secret"),
        &["--sub", "gina", "--kid", "j1"],
    );
    let out = verify("--jwks", &jwks_path, NOW, &[], &token);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["kid"], "j1");
}

// ---- tokens from an independent JWS implementation: the openssl command line ----

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One DER INTEGER from the front of `der`, as a big-endian unsigned value left-padded to `width`.
fn der_integer(der: &[u8], width: usize) -> (Vec<u8>, &[u8]) {
    assert_eq!(der[0], 0x02, "expected an INTEGER");
    let len = usize::from(der[1]);
    let value = &der[2..2 + len];
    let trimmed: Vec<u8> = value.iter().copied().skip_while(|b| *b == 0).collect();
    let mut out = vec![0u8; width - trimmed.len()];
    out.extend_from_slice(&trimmed);
    (out, &der[2 + len..])
}

/// ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } (RFC 3279) to JWS r || s (RFC 7518 3.4).
fn ecdsa_der_to_raw(der: &[u8], width: usize) -> Vec<u8> {
    assert_eq!(der[0], 0x30, "expected a SEQUENCE");
    let body = &der[2..];
    let (mut r, rest) = der_integer(body, width);
    let (s, _) = der_integer(rest, width);
    r.extend_from_slice(&s);
    r
}

fn external_claims() -> String {
    json!({
        "iss": "gauntlet-auth",
        "sub": "outsider",
        "aud": ["gauntlet-gateway", "someone-else"],
        "exp": NOW + 300,
        "iat": NOW - 10,
        "jti": "openssl-1",
        "token_type": "access",
        "permissions": ["chat:read"],
    })
    .to_string()
}

fn signing_input(alg: &str) -> String {
    let header = json!({"alg": alg, "typ": "JWT"}).to_string();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(external_claims())
    )
}

#[test]
fn tokens_signed_by_openssl_verify() {
    if !openssl_available() {
        println!("skipped: the `openssl` command line is not installed");
        return;
    }
    let secret = std::fs::read(key("hs256.secret")).unwrap();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let input = signing_input("HS256");
    let mac_key = format!("hexkey:{hex}");
    let mac = openssl(
        &[
            "dgst", "-sha256", "-mac", "HMAC", "-macopt", &mac_key, "-binary",
        ],
        input.as_bytes(),
    );
    assert_eq!(mac.len(), 32);
    let hs_token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));

    let input = signing_input("RS256");
    let rs_key = key("rs256.key.pem");
    let sig = openssl(
        &["dgst", "-sha256", "-sign", &rs_key, "-binary"],
        input.as_bytes(),
    );
    let rs_token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));

    let input = signing_input("ES256");
    let ec_key = key("ec256.key.pem");
    let der = openssl(
        &["dgst", "-sha256", "-sign", &ec_key, "-binary"],
        input.as_bytes(),
    );
    let es_token = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(ecdsa_der_to_raw(&der, 32))
    );

    let cases = [
        ("--hs256-secret-file", key("hs256.secret"), hs_token),
        ("--rs256-public-key", key("rs256.pub.pem"), rs_token),
        ("--es256-public-key", key("ec256.pub.pem"), es_token),
    ];
    for (flag, verify_key, token) in cases {
        let out = verify(flag, &verify_key, NOW, &[], &token);
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", stderr(&out));
        let claims = json_out(&out);
        assert_eq!(claims["sub"], "outsider", "{flag}");
        assert_eq!(claims["jti"], "openssl-1", "{flag}");
        assert_eq!(claims["permissions"], json!(["chat:read"]), "{flag}");
    }
}

// ---- `--signature-only` on published JWS examples ----------------------------------------

/// RFC 7515 appendix A.1: HS256 over a JSON payload with CRLF line breaks, and its key.
const RFC7515_A1_JWK: &str = r#"{"kty":"oct","alg":"HS256","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const RFC7515_A1_JWS: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// RFC 7515 appendix A.3: ES256 over the same payload, and the public half of its key.
const RFC7515_A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const RFC7515_A3_JWS: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// RFC 7520 section 4.4: HS256 with a `kid` over a plain-text (not JSON) payload, and the
/// symmetric key of its section 3.5.
const RFC7520_44_JWK: &str = r#"{"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037","alg":"HS256","k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"}"#;
const RFC7520_44_JWS: &str = "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9.SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5kIGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4.s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";

/// Writes `{"keys":[jwk]}` to a temp file and verifies `token` with `--signature-only --json`.
fn verify_rfc(name: &str, jwk: &str, token: &str) -> Output {
    let path = std::env::temp_dir().join(format!(
        "gauntlet-cli-rfc-{name}-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, format!(r#"{{"keys":[{jwk}]}}"#)).unwrap();
    let jwks = path.to_string_lossy().into_owned();
    let out = verify("--jwks", &jwks, NOW, &["--signature-only", "--json"], token);
    std::fs::remove_file(&path).unwrap();
    out
}

/// Every single-byte change of `token` that keeps it printable ASCII: one per position,
/// the byte replaced by another of the base64url alphabet (or `.` by `A`).
fn one_byte_changes(token: &str) -> Vec<String> {
    (0..token.len())
        .map(|i| {
            let mut b = token.as_bytes().to_vec();
            b[i] = match b[i] {
                b'A' => b'B',
                b'.' => b'A',
                _ => b'A',
            };
            String::from_utf8(b).unwrap()
        })
        .collect()
}

#[test]
fn signature_only_accepts_rfc_examples_and_rejects_every_one_byte_change() {
    let cases = [
        ("a1", RFC7515_A1_JWK, RFC7515_A1_JWS),
        ("a3", RFC7515_A3_JWK, RFC7515_A3_JWS),
        ("7520-44", RFC7520_44_JWK, RFC7520_44_JWS),
    ];
    for (name, jwk, token) in cases {
        let out = verify_rfc(name, jwk, token);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let v = json_out(&out);
        assert_eq!(v["valid"], true, "{name}");
        if name == "7520-44" {
            // Not JSON: printed as base64url, exactly the token's payload part.
            assert_eq!(v["payload_encoding"], "base64url");
            let payload = token.split('.').nth(1).unwrap();
            assert_eq!(v["payload"], payload);
            let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
            assert!(text.starts_with("It\u{2019}s a dangerous business, Frodo"));
        } else {
            assert_eq!(v["payload_encoding"], "json");
            assert_eq!(v["payload"]["iss"], "joe");
            assert_eq!(v["payload"]["exp"], 1_300_819_380);
            assert_eq!(v["payload"]["http://example.com/is_root"], true);
        }
        for (i, changed) in one_byte_changes(token).iter().enumerate() {
            if changed == token {
                continue;
            }
            let out = verify_rfc(name, jwk, changed);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{name}: byte {i} changed was accepted: {}",
                stdout(&out)
            );
            assert_eq!(json_out(&out)["valid"], false);
        }
    }
}
