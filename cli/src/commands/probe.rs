//! `gauntlet probe`: black-box conformance and attack checks against a running gateway
//! (`gauntlet_server::probe`), printed as a table or JSON Lines.
//!
//! This file owns the flags, reading the keys and rendering; every check is the server
//! crate's probe. The key flags are those of `serve` and `token mint`; with none (and no
//! `GAUNTLET_HS256_SECRET`) the probe runs only the keyless attacks, with `--jwks` once more
//! per key of the server's published JWK Set. Exit code 1 when any
//! check fails (an attack accepted, an expectation not met), 2 when the probe cannot run (a
//! bad key, a bad target, or nothing answering at the target: no check ran, so none is
//! reported failed).
//! `--junit` and `--sarif` write the same checks for CI test views and code-scanning views.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::Args;
use gauntlet_core::token::Algorithm;
use gauntlet_server::jwks::jwks_public_keys;
use gauntlet_server::probe::{Check, ProbeError, ProbeKey, ProbeOptions, probe};
use serde_json::json;

use super::junit::{self, JunitError};
use super::serve::{SECRET_ENV, ServeError, read_file};
use super::{Exit, Outcome, output_exit};

/// The SARIF version written, and its schema (`cli/tests/data/` holds the copy tests use).
const SARIF_VERSION: &str = "2.1.0";
const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// Where a probe result points a code-scanning view: the matrix naming every check.
const SARIF_LOCATION: &str = "docs/oracles.md";

/// `gauntlet probe`: check a running server against docs/protocol.md.
#[derive(Debug, Args)]
pub(crate) struct ProbeCommand {
    /// The gateway's WebSocket URL.
    #[arg(long, value_name = "ws://HOST:PORT/ws")]
    target: String,
    /// File holding the server's HS256 secret (default: the GAUNTLET_HS256_SECRET variable).
    #[arg(long, value_name = "FILE", alias = "secret-file")]
    hs256_secret_file: Option<PathBuf>,
    /// PEM file with the server's RSA private key (PKCS#1 or PKCS#8) for RS256.
    #[arg(long, value_name = "PEM")]
    rs256_private_key: Option<PathBuf>,
    /// PEM file with the server's P-256 private key (PKCS#8) for ES256.
    #[arg(long, value_name = "PEM")]
    es256_private_key: Option<PathBuf>,
    /// PEM file with the server's Ed25519 private key (PKCS#8) for EdDSA.
    #[arg(long, value_name = "PEM")]
    ed25519_private_key: Option<PathBuf>,
    /// The key id the server knows its keys by (as `serve --kid`); tokens then carry it.
    #[arg(long, value_name = "K")]
    kid: Option<String>,
    /// The server's public key (PEM), for the RS/EC -> HS key-confusion attacks; repeatable.
    #[arg(long, value_name = "PEM")]
    public_key: Vec<PathBuf>,
    /// The server's published JWK Set (RFC 7517 JSON file): the key-confusion attacks run
    /// once per RSA, EC or Ed25519 key, naming its kid (also the default --kid), and --token
    /// is verified against it. No private key needed.
    #[arg(long, value_name = "FILE")]
    jwks: Option<PathBuf>,
    /// A token the server issued: its HMAC secret is checked offline against a short list of
    /// weak secrets (nothing is sent to the server for it).
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// The server's largest accepted text frame in bytes.
    #[arg(long, default_value_t = 8192)]
    max_frame_bytes: usize,
    /// The server's clock leeway in seconds (for the cached-token expiry check).
    #[arg(long, default_value_t = 30)]
    leeway_secs: u64,
    /// Print JSON Lines (`{"schema":1,"type":"check",...}` per check, then a `summary`).
    #[arg(long)]
    json: bool,
    /// Also write JUnit XML: a test case per check, a failure carrying its evidence.
    #[arg(long, value_name = "FILE.xml")]
    junit: Option<PathBuf>,
    /// Also write SARIF 2.1.0 (code-scanning views): a rule per check, a result per failure.
    #[arg(long, value_name = "FILE.sarif")]
    sarif: Option<PathBuf>,
}

/// Why `gauntlet probe` could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeCliError {
    /// The secret could not be read.
    #[error(transparent)]
    Secret(#[from] ServeError),
    /// The probe could not start.
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The async runtime could not start.
    #[error("starting the tokio runtime")]
    Runtime(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing output")]
    Output(#[from] io::Error),
    /// The `--junit` file could not be written.
    #[error(transparent)]
    Junit(#[from] JunitError),
    /// The `--sarif` file could not be written.
    #[error("writing {path}")]
    Sarif {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl ProbeCliError {
    /// The exit class (the contract in the module doc of `cli`).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            ProbeCliError::Secret(e) => e.exit(),
            ProbeCliError::Runtime(_) => Exit::Usage,
            ProbeCliError::Probe(
                ProbeError::BadTarget(_)
                | ProbeError::BadKey { .. }
                | ProbeError::BadJwks(_)
                | ProbeError::Unreachable { .. },
            ) => Exit::Usage,
            ProbeCliError::Output(e) => output_exit(e),
            ProbeCliError::Junit(e) => e.exit(),
            ProbeCliError::Sarif { .. } => Exit::Usage,
        }
    }
}

impl ProbeCommand {
    /// Runs every check and prints the results.
    pub(crate) fn run(self, stdout: &mut dyn Write) -> Result<Outcome, ProbeCliError> {
        let mut keys = Vec::new();
        match &self.hs256_secret_file {
            Some(path) => keys.push(ProbeKey {
                alg: Algorithm::HS256,
                material: read_file(path)?,
            }),
            None => {
                // The environment is read here, at the CLI edge, so a secret never sits in argv.
                if let Some(s) = std::env::var_os(SECRET_ENV) {
                    keys.push(ProbeKey {
                        alg: Algorithm::HS256,
                        material: s.as_encoded_bytes().to_vec(),
                    });
                }
            }
        }
        for (path, alg) in [
            (&self.rs256_private_key, Algorithm::RS256),
            (&self.es256_private_key, Algorithm::ES256),
            (&self.ed25519_private_key, Algorithm::EdDSA),
        ] {
            if let Some(path) = path {
                keys.push(ProbeKey {
                    alg,
                    material: read_file(path)?,
                });
            }
        }
        let mut public_keys = Vec::new();
        for path in &self.public_key {
            public_keys.push(read_file(path)?);
        }
        let jwks = self.jwks.as_deref().map(read_file).transpose()?;
        // A JWKS names its keys: without --kid, tokens name its first kid, so the keyless
        // attacks reach a real key instead of stopping at `unknown_key`.
        let kid = match (&self.kid, &jwks) {
            (Some(kid), _) => Some(kid.clone()),
            (None, Some(doc)) => jwks_public_keys(doc)
                .ok()
                .and_then(|keys| keys.into_iter().find_map(|k| k.kid)),
            (None, None) => None,
        };
        let options = ProbeOptions {
            target: self.target.clone(),
            keys,
            kid,
            public_keys,
            jwks,
            token: self.token.clone(),
            max_frame_bytes: self.max_frame_bytes,
            leeway_secs: self.leeway_secs,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ProbeCliError::Runtime)?;
        let checks = runtime.block_on(probe(&options))?;
        render(&checks, self.json, stdout)?;
        if let Some(path) = &self.junit {
            let mut suite = quick_junit::TestSuite::new(format!("gauntlet probe {}", self.target));
            suite.add_test_cases(checks.iter().map(|c| {
                junit::verdict_case("gauntlet.probe", &c.name, c.passed, &c.evidence, None)
            }));
            junit::write(path, &junit::report([suite]))?;
        }
        if let Some(path) = &self.sarif {
            let doc = sarif(&checks, &self.target);
            serde_json::to_vec_pretty(&doc)
                .map_err(io::Error::from)
                .and_then(|text| std::fs::write(path, text))
                .map_err(|source| ProbeCliError::Sarif {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(if checks.iter().all(|c| c.passed) {
            Outcome::Success
        } else {
            Outcome::Failure
        })
    }
}

fn render(checks: &[Check], as_json: bool, out: &mut dyn Write) -> io::Result<()> {
    let failed = checks.iter().filter(|c| !c.passed).count();
    if as_json {
        for c in checks {
            let line = json!({"schema": 1, "type": "check", "check": c.name, "passed": c.passed, "evidence": c.evidence});
            writeln!(out, "{line}")?;
        }
        let summary =
            json!({"schema": 1, "type": "summary", "checks": checks.len(), "failed": failed});
        return writeln!(out, "{summary}");
    }
    let width = checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(out, "{:<width$}  {:<4}  evidence", "check", "pass")?;
    for c in checks {
        let verdict = if c.passed { "pass" } else { "FAIL" };
        writeln!(out, "{:<width$}  {verdict:<4}  {}", c.name, c.evidence)?;
    }
    writeln!(out, "{} checks, {failed} failed", checks.len())
}

/// The checks as one SARIF 2.1.0 run: every check a rule (so a view knows what was checked),
/// every failed check a result with its evidence. A black-box probe has no source line to
/// blame, so each result points at the rule matrix that names the check.
fn sarif(checks: &[Check], target: &str) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            json!({
                "id": c.name,
                "shortDescription": {"text": c.name.replace('_', " ")},
                "defaultConfiguration": {"level": "error"},
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = checks
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.passed)
        .map(|(i, c)| {
            json!({
                "ruleId": c.name,
                "ruleIndex": i,
                "kind": "fail",
                "level": "error",
                "message": {"text": format!("{} against {target}: {}", c.name, c.evidence)},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": SARIF_LOCATION}},
                }],
            })
        })
        .collect();
    json!({
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {
                "name": "gauntlet probe",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "automationDetails": {"id": format!("gauntlet-probe/{target}")},
            "invocations": [{
                "executionSuccessful": true,
                "commandLine": format!("gauntlet probe --target {target}"),
            }],
            "results": results,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, passed: bool) -> Check {
        Check {
            name: name.into(),
            passed,
            evidence: format!("saw {name}"),
        }
    }

    #[test]
    fn sarif_lists_every_check_as_rule_and_failures_as_results() {
        let checks = [
            check("alg_none_refused", true),
            check("forged_refused", false),
        ];
        let doc = sarif(&checks, "ws://127.0.0.1:1/ws");
        assert_eq!(doc["version"], "2.1.0");
        let run = &doc["runs"][0];
        assert_eq!(
            run["tool"]["driver"]["rules"].as_array().map(Vec::len),
            Some(2)
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["ruleId"], "forged_refused");
        assert_eq!(results[0]["ruleIndex"], 1);
    }
}
