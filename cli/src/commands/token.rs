//! `gauntlet token verify|mint`: the token layer of `gauntlet-core` on the command line.
//!
//! This file owns the flags, reading keys and tokens from files/stdin, and rendering the
//! result. Every check is `gauntlet_core::token`'s (`validate`, `verify_signature`,
//! `Issuer::mint_with_jti`): nothing here inspects a token itself. Secrets are only ever read
//! from files, never taken from argv. The wall clock is read here, at the CLI edge, only when
//! `--now` is not given; each minted `jti` is 128 bits from the OS random number generator.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::{Args, Subcommand};
use gauntlet_core::permissions::{Permission, Permissions};
use gauntlet_core::token::{
    self, Algorithm, Claims, Issuer, KeyError, KeyRing, MintRequest, SigningKey, TokenRules,
    TokenType,
};
use gauntlet_core::{FamilyId, Instant, Jti, Kid, UserId};
use serde_json::json;

use super::{Exit, Outcome, output_exit};

/// Longest key or secret file read, so a mistaken path to a huge file fails fast.
const MAX_KEY_FILE: u64 = 1 << 20;
/// Longest token read from stdin; anything longer is rejected by the length rule anyway.
const MAX_STDIN_TOKEN: u64 = 1 << 16;

/// `gauntlet token`: mint and verify JWTs.
#[derive(Debug, Args)]
pub(crate) struct TokenCommand {
    /// What to do.
    #[command(subcommand)]
    action: TokenAction,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Validate a token with every rule of docs/protocol.md section 1 and print its claims as JSON.
    Verify(VerifyArgs),
    /// Sign a token with the gateway's claim layout and print it.
    Mint(MintArgs),
}

/// Verification keys: one or more PEM/secret files (with one optional `--kid`), or a JWKS.
#[derive(Debug, Args)]
#[group(id = "verify_key", required = true, multiple = true)]
struct VerifyKeys {
    /// File holding an HS256 secret (the file's exact bytes, at least 32).
    #[arg(long, value_name = "FILE")]
    hs256_secret_file: Option<PathBuf>,
    /// File holding an HS384 secret (the file's exact bytes, at least 32).
    #[arg(long, value_name = "FILE")]
    hs384_secret_file: Option<PathBuf>,
    /// File holding an HS512 secret (the file's exact bytes, at least 32).
    #[arg(long, value_name = "FILE")]
    hs512_secret_file: Option<PathBuf>,
    /// PEM file with an RSA public key (>= 2048 bits) for RS256.
    #[arg(long, value_name = "PEM")]
    rs256_public_key: Option<PathBuf>,
    /// PEM file with a P-256 public key for ES256.
    #[arg(long, value_name = "PEM")]
    es256_public_key: Option<PathBuf>,
    /// PEM file with an Ed25519 public key for EdDSA.
    #[arg(long, value_name = "PEM")]
    ed25519_public_key: Option<PathBuf>,
    /// RFC 7517 JWK Set file (each key's own kid and alg are used; not combinable with the other key flags).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["hs256_secret_file", "hs384_secret_file", "hs512_secret_file",
            "rs256_public_key", "es256_public_key", "ed25519_public_key", "kid"]
    )]
    jwks: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    keys: VerifyKeys,
    /// Key id given to the key(s) above; tokens must then name it in their header `kid`.
    #[arg(long, value_name = "K")]
    kid: Option<String>,
    /// Required `iss` (default `gauntlet-auth`).
    #[arg(long, value_name = "I")]
    issuer: Option<String>,
    /// Required audience for the expected type (default `gauntlet-gateway`, or `gauntlet-services` for service tokens).
    #[arg(long, value_name = "A")]
    audience: Option<String>,
    /// Expected `token_type`.
    #[arg(long = "type", value_name = "TYPE", default_value = "access")]
    token_type: TokenType,
    /// Validate as of this Unix time in seconds (default: the system clock).
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
    /// Check only the JWS layer (header rules, key/alg binding, signature) over any payload, and
    /// print the payload: as JSON when it is JSON, else base64url (RFC 7515 allows any bytes).
    #[arg(long)]
    signature_only: bool,
    /// Print `{"valid":bool,"error":code|null,"claims":{...}|null}` on stdout, also when invalid.
    #[arg(long)]
    json: bool,
    /// The token, or `-` to read it from stdin (surrounding whitespace is trimmed).
    #[arg(value_name = "TOKEN|-")]
    token: String,
}

/// The signing key: exactly one private key or secret file.
#[derive(Debug, Args)]
#[group(id = "mint_key", required = true, multiple = false)]
struct MintKey {
    /// File holding an HS256 secret (the file's exact bytes, at least 32).
    #[arg(long, value_name = "FILE")]
    hs256_secret_file: Option<PathBuf>,
    /// PEM file with an RSA private key (PKCS#1 or PKCS#8) for RS256.
    #[arg(long, value_name = "PEM")]
    rs256_private_key: Option<PathBuf>,
    /// PEM file with a P-256 private key (PKCS#8) for ES256.
    #[arg(long, value_name = "PEM")]
    es256_private_key: Option<PathBuf>,
    /// PEM file with an Ed25519 private key (PKCS#8) for EdDSA.
    #[arg(long, value_name = "PEM")]
    ed25519_private_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MintArgs {
    #[command(flatten)]
    key: MintKey,
    /// Key id written to the header `kid`.
    #[arg(long, value_name = "K")]
    kid: Option<String>,
    /// The subject (`sub`), 1..=128 characters.
    #[arg(long, value_name = "S")]
    sub: String,
    /// The `token_type`.
    #[arg(long = "type", value_name = "TYPE", default_value = "access")]
    token_type: TokenType,
    /// Comma-separated permissions, e.g. `chat:write,thread:*`.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    permissions: Vec<String>,
    /// Lifetime in seconds (default: the type's production lifetime).
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u64>,
    /// Issue as of this Unix time in seconds (default: the system clock).
    #[arg(long, value_name = "UNIX")]
    now: Option<u64>,
    /// The `email` claim.
    #[arg(long, value_name = "E")]
    email: Option<String>,
    /// The `svc_id` claim (required for service tokens).
    #[arg(long, value_name = "S")]
    svc_id: Option<String>,
}

/// Why `gauntlet token` could not run (as opposed to a token being invalid, which is an outcome).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenCliError {
    /// A key, secret or JWKS file could not be read.
    #[error("reading {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A key, secret or JWKS file is larger than any key.
    #[error("{} is larger than {MAX_KEY_FILE} bytes", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
    },
    /// A key file's content was refused by the key ring or the signer.
    #[error("key in {}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        #[source]
        source: KeyError,
    },
    /// No signing key flag was given (clap normally refuses this first).
    #[error("no signing key given")]
    NoKey,
    /// `--kid` is not a valid key id.
    #[error("invalid --kid (1..=128 characters, no control characters)")]
    BadKid,
    /// `--sub` is not a valid user id.
    #[error("invalid --sub (1..=128 characters, no control characters)")]
    BadSub,
    /// `--permissions` has an entry outside 1..=64 chars of `[A-Za-z0-9_:.-]`, or too many.
    #[error("invalid --permissions (at most 50, each 1..=64 of [A-Za-z0-9_:.-])")]
    BadPermissions,
    /// The token read from stdin is not UTF-8 or could not be read.
    #[error("reading the token from stdin")]
    Stdin(#[source] io::Error),
    /// Minting failed.
    #[error("minting")]
    Mint(#[source] token::IssueError),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// The system clock is before the Unix epoch.
    #[error("the system clock is before 1970")]
    Clock,
    /// The OS random number generator failed, so no unique `jti` could be drawn.
    #[error("reading the OS random number generator: {0}")]
    Rng(String),
}

impl TokenCliError {
    /// The exit class (the contract in the module doc of `cli`). An invalid token is not an
    /// error but an [`Outcome::Failure`] (exit 1).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            // A key that passed `SigningKey`'s checks is never refused by the signer.
            TokenCliError::Mint(token::IssueError::Signing(_)) => Exit::Bug,
            TokenCliError::Mint(_)
            | TokenCliError::ReadFile { .. }
            | TokenCliError::FileTooLarge { .. }
            | TokenCliError::Key { .. }
            | TokenCliError::NoKey
            | TokenCliError::BadKid
            | TokenCliError::BadSub
            | TokenCliError::BadPermissions
            | TokenCliError::Stdin(_)
            | TokenCliError::Clock
            | TokenCliError::Rng(_) => Exit::Usage,
            TokenCliError::Output(e) => output_exit(e),
        }
    }
}

impl TokenCommand {
    /// Runs `verify` or `mint`.
    pub(crate) fn run(
        self,
        stdin: &mut dyn Read,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<Outcome, TokenCliError> {
        match self.action {
            TokenAction::Verify(args) => verify(args, stdin, stdout, stderr),
            TokenAction::Mint(args) => mint(args, stdout),
        }
    }
}

fn verify(
    args: VerifyArgs,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, TokenCliError> {
    let token = if args.token == "-" {
        let mut buf = String::new();
        stdin
            .take(MAX_STDIN_TOKEN)
            .read_to_string(&mut buf)
            .map_err(TokenCliError::Stdin)?;
        buf.trim().to_string()
    } else {
        args.token.clone()
    };
    let ring = verify_ring(&args)?;
    let mut rules = TokenRules::default();
    if let Some(issuer) = &args.issuer {
        rules.issuer.clone_from(issuer);
    }
    if let Some(audience) = &args.audience {
        match args.token_type {
            TokenType::Service => rules.service_audience.clone_from(audience),
            TokenType::Access | TokenType::Refresh => rules.user_audience.clone_from(audience),
        }
    }
    if args.signature_only {
        return verify_payload(token.as_bytes(), &ring, &rules, args.json, stdout, stderr);
    }
    let result = {
        let now = now_or_clock(args.now)?;
        match token::validate(token.as_bytes(), now, &ring, &rules, args.token_type) {
            Ok(claims) => Ok(render_claims(&claims)),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(claims) => {
            let body = if args.json {
                json!({"valid": true, "error": null, "claims": claims})
            } else {
                claims
            };
            writeln!(stdout, "{body}")?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(stderr, "invalid token: {}: {e}", e.code())?;
            if args.json {
                let body = json!({"valid": false, "error": e.code(), "claims": null});
                writeln!(stdout, "{body}")?;
            }
            Ok(Outcome::Failure)
        }
    }
}

/// `--signature-only`: the JWS layer over any payload. The payload is printed as JSON when
/// it is JSON, else as base64url (`payload_encoding` says which).
fn verify_payload(
    token: &[u8],
    ring: &KeyRing,
    rules: &TokenRules,
    as_json: bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> Result<Outcome, TokenCliError> {
    match token::verify_jws(token, ring, rules) {
        Ok(bytes) => {
            let (payload, encoding) = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) => (v, "json"),
                Err(_) => (json!(URL_SAFE_NO_PAD.encode(&bytes)), "base64url"),
            };
            let body = if as_json {
                json!({"valid": true, "error": null, "payload": payload,
                       "payload_encoding": encoding})
            } else {
                payload
            };
            writeln!(stdout, "{body}")?;
            Ok(Outcome::Success)
        }
        Err(e) => {
            writeln!(stderr, "invalid token: {}: {e}", e.code())?;
            if as_json {
                let body = json!({"valid": false, "error": e.code(), "payload": null});
                writeln!(stdout, "{body}")?;
            }
            Ok(Outcome::Failure)
        }
    }
}

/// The validated claims as JSON, with NumericDates in Unix seconds like the token itself.
fn render_claims(claims: &Claims) -> serde_json::Value {
    json!({
        "sub": claims.sub().as_str(),
        "jti": claims.jti().as_str(),
        "token_type": claims.token_type(),
        "exp": claims.exp().unix_secs(),
        "iat": claims.iat().unix_secs(),
        "nbf": claims.nbf().map(Instant::unix_secs),
        "permissions": claims.permissions(),
        "email": claims.email(),
        "svc_id": claims.svc_id(),
        "fam": claims.family().map(FamilyId::as_str),
        "kid": claims.kid().map(Kid::as_str),
    })
}

fn verify_ring(args: &VerifyArgs) -> Result<KeyRing, TokenCliError> {
    let k = &args.keys;
    if let Some(path) = &k.jwks {
        let json = read_file(path)?;
        return KeyRing::from_jwks(&json).map_err(|source| TokenCliError::Key {
            path: path.clone(),
            source,
        });
    }
    let kid = parse_kid(args.kid.as_deref())?;
    let mut ring = KeyRing::new();
    let secrets = [
        (&k.hs256_secret_file, Algorithm::HS256),
        (&k.hs384_secret_file, Algorithm::HS384),
        (&k.hs512_secret_file, Algorithm::HS512),
    ];
    for (path, alg) in secrets {
        if let Some(path) = path {
            let secret = read_file(path)?;
            ring.add_hmac(kid.clone(), alg, &secret)
                .map_err(|source| key_error(path, source))?;
        }
    }
    let publics = [
        (&k.rs256_public_key, Algorithm::RS256),
        (&k.es256_public_key, Algorithm::ES256),
        (&k.ed25519_public_key, Algorithm::EdDSA),
    ];
    for (path, alg) in publics {
        if let Some(path) = path {
            let pem = read_file(path)?;
            ring.add_public_pem(kid.clone(), alg, &pem)
                .map_err(|source| key_error(path, source))?;
        }
    }
    Ok(ring)
}

fn mint(args: MintArgs, stdout: &mut dyn Write) -> Result<Outcome, TokenCliError> {
    let kid = parse_kid(args.kid.as_deref())?;
    let k = &args.key;
    let (path, alg) = match (
        &k.hs256_secret_file,
        &k.rs256_private_key,
        &k.es256_private_key,
        &k.ed25519_private_key,
    ) {
        (Some(p), _, _, _) => (p, Algorithm::HS256),
        (_, Some(p), _, _) => (p, Algorithm::RS256),
        (_, _, Some(p), _) => (p, Algorithm::ES256),
        (_, _, _, Some(p)) => (p, Algorithm::EdDSA),
        // clap's required group guarantees one; a missing key is still not a panic.
        (None, None, None, None) => return Err(TokenCliError::NoKey),
    };
    let material = read_file(path)?;
    let key = if alg.is_hmac() {
        SigningKey::hmac(kid, alg, &material)
    } else {
        SigningKey::from_private_pem(kid, alg, &material)
    }
    .map_err(|source| key_error(path, source))?;
    let rules = TokenRules::default();
    let sub = UserId::parse(&args.sub).ok_or(TokenCliError::BadSub)?;
    let grants = args
        .permissions
        .iter()
        .map(|p| Permission::parse(p))
        .collect::<Option<Vec<_>>>()
        .ok_or(TokenCliError::BadPermissions)?;
    let permissions = Permissions::new(grants).ok_or(TokenCliError::BadPermissions)?;
    let ttl = args
        .ttl
        .map_or_else(|| rules.lifetime_for(args.token_type), Duration::from_secs);
    let now = now_or_clock(args.now)?;
    let request = MintRequest {
        sub,
        token_type: args.token_type,
        permissions,
        ttl,
        family: None,
        email: args.email,
        svc_id: args.svc_id,
    };
    let minted = Issuer::new(key, rules)
        .mint_with_jti(now, &request, random_jti()?)
        .map_err(TokenCliError::Mint)?;
    writeln!(stdout, "{}", minted.token)?;
    Ok(Outcome::Success)
}

/// A fresh `jti`: 128 bits from the OS random number generator, as 32 hex digits. Each run
/// of the command is a new issuer, so the issuer's counter would give every token minted in
/// the same second the same id, and revoking one would revoke them all. The OS RNG is right
/// here, at the CLI edge; core and the simulation never read it (docs/contributing.md).
fn random_jti() -> Result<Jti, TokenCliError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TokenCliError::Rng(e.to_string()))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Jti::parse(&hex).ok_or_else(|| TokenCliError::Rng("not a valid jti".into()))
}

fn parse_kid(kid: Option<&str>) -> Result<Option<Kid>, TokenCliError> {
    kid.map(|k| Kid::parse(k).ok_or(TokenCliError::BadKid))
        .transpose()
}

fn key_error(path: &Path, source: KeyError) -> TokenCliError {
    TokenCliError::Key {
        path: path.to_path_buf(),
        source,
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TokenCliError> {
    super::files::read_bounded(path, MAX_KEY_FILE).map_err(|e| match e {
        Some(source) => TokenCliError::ReadFile {
            path: path.to_path_buf(),
            source,
        },
        None => TokenCliError::FileTooLarge {
            path: path.to_path_buf(),
        },
    })
}

/// `--now`, or the system clock: the CLI is a driver at the edge, the one place where reading
/// the wall clock is right (core never does; docs/contributing.md).
#[allow(clippy::disallowed_methods)]
fn now_or_clock(now: Option<u64>) -> Result<Instant, TokenCliError> {
    match now {
        Some(secs) => Ok(Instant::from_unix_secs(secs)),
        None => {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| TokenCliError::Clock)?;
            Ok(Instant::from_nanos(
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
            ))
        }
    }
}
