//! The `oauth_flow` harness: an arbitrary sequence of logins, OAuth authorize / callback
//! calls and refresh-token rotations by honest clients and attackers (wrong client,
//! redirect, state or verifier, replayed codes, reused refresh tokens, garbage), run against
//! a real `AuthService`. An independent model of docs/protocol.md sections 1 and 7 decides when
//! tokens may be issued and what a replay must revoke. It must never look inside the
//! service's stores; it sees only results and the public revocation feed.

use std::collections::BTreeMap;
use std::time::Duration;

use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::{OracleViolation, capped, fixtures};
use crate::auth_service::{AuthError, AuthService};
use crate::oauth::{AuthorizeRequest, CallbackRequest, OAuthConfig, OAuthError};
use crate::permissions::Permissions;
use crate::token::{
    Algorithm, Issuer, RefreshError, Revocation, SigningKey, TokenRules, TokenType, validate,
};
use crate::{Instant, Jti, Kid, Plants, UserId};

const MAX_STEPS: usize = 24;
/// docs/protocol.md section 7: codes live 60 s.
const CODE_TTL: Duration = Duration::from_secs(60);
const USERS: [&str; 2] = ["alice", "bob"];
const CLIENTS: [&str; 2] = ["app", "evil-app"];
const REDIRECTS: [&str; 2] = ["https://app.example/cb", "https://evil.example/cb"];
const STATES: [&str; 3] = ["state-1", "state-2", "state-3"];
/// RFC 7636 verifiers (43..=128 unreserved characters).
const VERIFIERS: [&str; 3] = [
    "dBjftJeZ4CVP-mJ0kQb6W4gN3kv-1b-JmMZOJjNW6jc",
    "another-verifier-that-is-long-enough-0123456789",
    "third.verifier~with_all-the-unreserved-characters-42",
];
const OAUTH_SECRET: &[u8] = b"gauntlet-fuzz-oauth-secret-0123456789";

/// One operation of an OAuth run.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Login(usize),
    Authorize {
        user: usize,
        client: usize,
        redirect: usize,
        verifier: usize,
        state: Text,
        plain: bool,
    },
    Callback {
        code: Pick,
        state: Text,
        verifier: Text,
        redirect: usize,
        client: usize,
    },
    Refresh(Pick),
    Advance(u16),
}

/// A string operand: one of the fixed values by index, or fuzzer text.
#[derive(Clone, Debug)]
pub(crate) enum Text {
    Known(usize),
    Raw(String),
}

/// An issued value (code or refresh token) by index, or fuzzer text.
#[derive(Clone, Debug)]
pub(crate) enum Pick {
    Issued(usize),
    Raw(String),
}

/// `oauth_flow` on the real, plant-free auth service (see [`oauth_flow_with`]).
pub fn oauth_flow(data: &[u8]) -> Result<(), OracleViolation> {
    oauth_flow_with(data, Plants::NONE)
}

/// `oauth_flow` on an auth service with `plants` switched on.
///
/// Oracle: a callback issues tokens only for a code this run's `authorize` issued, on its
/// first use, within 60 s, with the same client, redirect URI and state, and a verifier
/// whose S256 digest is the challenge; the tokens' `sub` is the authorizing user. Replaying
/// a redeemed code fails as a replay and puts the tokens it issued in the revocation feed.
/// A refresh token rotates only once and only while its family stands; presenting a used
/// one fails as a reuse and puts every live token of the family in the feed.
pub fn oauth_flow_with(data: &[u8], plants: Plants) -> Result<(), OracleViolation> {
    let mut u = Unstructured::new(capped(data));
    let n = u.int_in_range(0..=MAX_STEPS).unwrap_or(0);
    let ops: Vec<Op> = (0..n).map(|_| gen_op(&mut u)).collect();
    run_ops(&ops, plants)
}

struct CodeRec {
    code: String,
    user: usize,
    client: usize,
    redirect: usize,
    challenge: String,
    state: String,
    expires: Instant,
    attempted: bool,
    /// What redeeming the code issued, once it has been.
    issued: Option<Issued>,
}

/// The tokens a code's redemption issued, and the refresh family it started (read from the
/// issued token): a replay must revoke this family, whatever the service says it revoked.
struct Issued {
    jtis: Vec<Jti>,
    family: String,
}

struct RefreshRec {
    token: String,
    jti: Jti,
    family: String,
    user: String,
    used: bool,
}

struct Model {
    codes: Vec<CodeRec>,
    state_owner: BTreeMap<String, String>,
    refresh: Vec<RefreshRec>,
    /// Every token of each family: jti and expiry.
    family_tokens: BTreeMap<String, Vec<(Jti, Instant)>>,
    revoked_families: Vec<String>,
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn text(t: &Text, known: &[&str]) -> String {
    match t {
        Text::Known(i) => known
            .get(i % known.len())
            .copied()
            .unwrap_or("")
            .to_string(),
        Text::Raw(s) => s.clone(),
    }
}

fn violation(step: usize, why: String) -> OracleViolation {
    OracleViolation::AuthFlow { step, why }
}

/// The subject of an access or refresh token the service minted (validated with the ring).
fn subject(token: &str, ty: TokenType, now: Instant) -> Option<String> {
    let ring = fixtures::ring().ok()?;
    validate(token.as_bytes(), now, &ring, &TokenRules::default(), ty)
        .ok()
        .map(|c| c.sub().to_string())
}

fn service(plants: Plants) -> Result<AuthService, OracleViolation> {
    let fixture = |what| OracleViolation::Fixture { what };
    let kid = Kid::parse("hs256").ok_or(fixture("kid"))?;
    let key = SigningKey::hmac(Some(kid), Algorithm::HS256, fixtures::HS256_SECRET)
        .map_err(|_| fixture("signing key"))?;
    let rules = TokenRules::default();
    AuthService::new(
        Issuer::new(key, rules.clone()),
        fixtures::ring()?,
        rules,
        plants,
    )
    .with_oauth(OAUTH_SECRET, OAuthConfig::default())
    .map_err(|_| fixture("oauth"))
}

pub(crate) fn run_ops(ops: &[Op], plants: Plants) -> Result<(), OracleViolation> {
    let mut svc = service(plants)?;
    let mut now = fixtures::now();
    let mut m = Model {
        codes: Vec::new(),
        state_owner: BTreeMap::new(),
        refresh: Vec::new(),
        family_tokens: BTreeMap::new(),
        revoked_families: Vec::new(),
    };
    for (step, op) in ops.iter().take(MAX_STEPS).enumerate() {
        match op {
            Op::Login(user) => {
                let name = USERS.get(user % USERS.len()).copied().unwrap_or("alice");
                let uid = UserId::parse(name).ok_or(OracleViolation::Fixture { what: "user" })?;
                if let Ok(pair) = svc.login(now, &uid, Permissions::empty()) {
                    m.record_pair(&pair.family.to_string(), name, &pair);
                }
            }
            Op::Authorize {
                user,
                client,
                redirect,
                verifier,
                state,
                plain,
            } => {
                let name = USERS.get(user % USERS.len()).copied().unwrap_or("alice");
                let uid = UserId::parse(name).ok_or(OracleViolation::Fixture { what: "user" })?;
                let perms = Permissions::empty();
                let verifier = VERIFIERS
                    .get(verifier % VERIFIERS.len())
                    .copied()
                    .unwrap_or("");
                let challenge = s256(verifier);
                let state = text(state, &STATES);
                let req = AuthorizeRequest {
                    user: &uid,
                    permissions: &perms,
                    client_id: CLIENTS.get(client % CLIENTS.len()).copied().unwrap_or(""),
                    redirect_uri: REDIRECTS
                        .get(redirect % REDIRECTS.len())
                        .copied()
                        .unwrap_or(""),
                    code_challenge: &challenge,
                    method: if *plain { "plain" } else { "S256" },
                    state: &state,
                };
                if let Ok(code) = svc.authorize(now, &req) {
                    if *plain {
                        return Err(violation(step, "authorize accepted method plain".into()));
                    }
                    m.state_owner.insert(state.clone(), code.code.clone());
                    m.codes.push(CodeRec {
                        code: code.code,
                        user: user % USERS.len(),
                        client: client % CLIENTS.len(),
                        redirect: redirect % REDIRECTS.len(),
                        challenge,
                        state,
                        expires: now.saturating_add(CODE_TTL),
                        attempted: false,
                        issued: None,
                    });
                }
            }
            Op::Callback {
                code,
                state,
                verifier,
                redirect,
                client,
            } => m.callback(
                &mut svc, now, step, code, state, verifier, *redirect, *client,
            )?,
            Op::Refresh(pick) => m.refresh(&mut svc, now, step, pick)?,
            Op::Advance(secs) => now = now.saturating_add(Duration::from_secs(u64::from(*secs))),
        }
    }
    Ok(())
}

impl Model {
    fn record_pair(&mut self, family: &str, user: &str, pair: &crate::auth_service::TokenPair) {
        self.refresh.push(RefreshRec {
            token: pair.refresh.token.clone(),
            jti: pair.refresh.jti.clone(),
            family: family.to_string(),
            user: user.to_string(),
            used: false,
        });
        let tokens = self.family_tokens.entry(family.to_string()).or_default();
        tokens.push((pair.access.jti.clone(), pair.access.exp));
        tokens.push((pair.refresh.jti.clone(), pair.refresh.exp));
    }

    /// Every jti in `expected` that is still live at `now` must be in the feed.
    fn check_feed(
        svc: &AuthService,
        now: Instant,
        step: usize,
        expected: &[(Jti, Instant)],
        what: &str,
    ) -> Result<(), OracleViolation> {
        let feed = svc.feed_since(0);
        for (jti, exp) in expected {
            let listed = feed
                .iter()
                .any(|(_, r)| matches!(r, Revocation::Jti { jti: j, .. } if j == jti));
            if now < *exp && !listed {
                return Err(violation(step, format!("{what}: {jti} not revoked")));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn callback(
        &mut self,
        svc: &mut AuthService,
        now: Instant,
        step: usize,
        code: &Pick,
        state: &Text,
        verifier: &Text,
        redirect: usize,
        client: usize,
    ) -> Result<(), OracleViolation> {
        let (code_text, rec_index) = match code {
            Pick::Issued(i) if !self.codes.is_empty() => {
                let k = i % self.codes.len();
                (
                    self.codes
                        .get(k)
                        .map(|c| c.code.clone())
                        .unwrap_or_default(),
                    Some(k),
                )
            }
            Pick::Issued(_) => (String::new(), None),
            Pick::Raw(s) => (s.clone(), self.codes.iter().position(|c| c.code == *s)),
        };
        let state = text(state, &STATES);
        let verifier = text(verifier, &VERIFIERS);
        let (redirect, client) = (redirect % REDIRECTS.len(), client % CLIENTS.len());
        let req = CallbackRequest {
            code: &code_text,
            state: &state,
            code_verifier: &verifier,
            redirect_uri: REDIRECTS.get(redirect).copied().unwrap_or(""),
            client_id: CLIENTS.get(client).copied().unwrap_or(""),
        };
        let result = svc.callback(now, &req);
        let rec = rec_index.and_then(|k| self.codes.get_mut(k));
        let Some(rec) = rec else {
            if result.is_ok() {
                return Err(violation(step, "tokens for a code never issued".into()));
            }
            return Ok(());
        };
        let first_use = !rec.attempted;
        rec.attempted = true;
        match result {
            Ok(resp) => {
                let owner = self.state_owner.get(&state).map(String::as_str);
                let why = if !first_use {
                    Some("a code used before")
                } else if now >= rec.expires {
                    Some("an expired code")
                } else if client != rec.client {
                    Some("another client")
                } else if redirect != rec.redirect {
                    Some("another redirect uri")
                } else if state != rec.state || owner != Some(rec.code.as_str()) {
                    Some("a state not bound to the code")
                } else if s256(&verifier) != rec.challenge {
                    Some("a verifier not matching the challenge")
                } else {
                    None
                };
                if let Some(why) = why {
                    return Err(violation(step, format!("callback issued tokens for {why}")));
                }
                let user = USERS.get(rec.user).copied().unwrap_or("");
                let sub = subject(&resp.access_token, TokenType::Access, now);
                if sub.as_deref() != Some(user) {
                    return Err(violation(
                        step,
                        format!("tokens for {sub:?}, code of {user}"),
                    ));
                }
                let ring = fixtures::ring()?;
                let refresh = validate(
                    resp.refresh_token.as_bytes(),
                    now,
                    &ring,
                    &TokenRules::default(),
                    TokenType::Refresh,
                )
                .map_err(|e| violation(step, format!("issued refresh token invalid: {e}")))?;
                let access = validate(
                    resp.access_token.as_bytes(),
                    now,
                    &ring,
                    &TokenRules::default(),
                    TokenType::Access,
                )
                .map_err(|e| violation(step, format!("issued access token invalid: {e}")))?;
                let family = refresh
                    .family()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                rec.issued = Some(Issued {
                    jtis: vec![access.jti().clone(), refresh.jti().clone()],
                    family: family.clone(),
                });
                self.refresh.push(RefreshRec {
                    token: resp.refresh_token.clone(),
                    jti: refresh.jti().clone(),
                    family: family.clone(),
                    user: user.to_string(),
                    used: false,
                });
                let tokens = self.family_tokens.entry(family).or_default();
                tokens.push((access.jti().clone(), access.exp()));
                tokens.push((refresh.jti().clone(), refresh.exp()));
            }
            Err(AuthError::OAuth(OAuthError::CodeReplayed { family, .. })) => {
                let Some((jtis, own)) = rec
                    .issued
                    .as_ref()
                    .map(|i| (i.jtis.clone(), i.family.clone()))
                else {
                    return Err(violation(step, "a replay of a code never redeemed".into()));
                };
                if family.as_ref().map(ToString::to_string).as_ref() != Some(&own) {
                    return Err(violation(
                        step,
                        format!("code replay named family {family:?}, the code started {own}"),
                    ));
                }
                self.revoked_families.push(own.clone());
                let expected = self.family_tokens.get(&own).cloned().unwrap_or_default();
                let exps: Vec<(Jti, Instant)> = jtis
                    .into_iter()
                    .map(|j| (j, Instant::from_nanos(u64::MAX)))
                    .collect();
                Self::check_feed(svc, now, step, &expected, "code replay")?;
                Self::check_feed(svc, now, step, &exps, "code replay")?;
            }
            Err(e) => {
                if rec.issued.is_some() {
                    return Err(violation(step, format!("code replay answered {e}")));
                }
            }
        }
        Ok(())
    }

    fn refresh(
        &mut self,
        svc: &mut AuthService,
        now: Instant,
        step: usize,
        pick: &Pick,
    ) -> Result<(), OracleViolation> {
        let (token, index) = match pick {
            Pick::Issued(i) if !self.refresh.is_empty() => {
                let k = i % self.refresh.len();
                (
                    self.refresh
                        .get(k)
                        .map(|r| r.token.clone())
                        .unwrap_or_default(),
                    Some(k),
                )
            }
            Pick::Issued(_) => (String::new(), None),
            Pick::Raw(s) => (s.clone(), self.refresh.iter().position(|r| r.token == *s)),
        };
        let result = svc.refresh(now, token.as_bytes());
        let Some(k) = index else {
            if result.is_ok() {
                return Err(violation(
                    step,
                    "rotated a refresh token never issued".into(),
                ));
            }
            return Ok(());
        };
        let Some(rec) = self.refresh.get_mut(k) else {
            return Ok(());
        };
        let was_used = rec.used;
        rec.used = true;
        let (family, user, jti) = (rec.family.clone(), rec.user.clone(), rec.jti.clone());
        let family_revoked = self.revoked_families.contains(&family);
        match result {
            Ok(pair) => {
                if was_used || family_revoked {
                    let why = if was_used {
                        "a used"
                    } else {
                        "a revoked family's"
                    };
                    return Err(violation(
                        step,
                        format!("rotated {why} refresh token {jti}"),
                    ));
                }
                let sub = subject(&pair.access.token, TokenType::Access, now);
                if sub.as_deref() != Some(user.as_str()) {
                    return Err(violation(
                        step,
                        format!("rotation for {sub:?}, token of {user}"),
                    ));
                }
                self.record_pair(&family, &user, &pair);
            }
            Err(AuthError::Refresh(RefreshError::Reused { .. })) => {
                if !was_used {
                    return Err(violation(
                        step,
                        format!("first use of {jti} called a reuse"),
                    ));
                }
                self.revoked_families.push(family.clone());
                let tokens = self.family_tokens.get(&family).cloned().unwrap_or_default();
                Self::check_feed(svc, now, step, &tokens, "refresh reuse")?;
            }
            Err(e) => {
                let live = subject(&token, TokenType::Refresh, now).is_some();
                if was_used && !family_revoked && live {
                    return Err(violation(step, format!("reuse of {jti} answered {e}")));
                }
            }
        }
        Ok(())
    }
}

fn raw(u: &mut Unstructured<'_>) -> String {
    let s: &str = u.arbitrary().unwrap_or("");
    s.chars().take(160).collect()
}

fn gen_text(u: &mut Unstructured<'_>) -> Text {
    if u.ratio(7u8, 8u8).unwrap_or(true) {
        Text::Known(u.arbitrary().unwrap_or(0))
    } else {
        Text::Raw(raw(u))
    }
}

fn gen_pick(u: &mut Unstructured<'_>) -> Pick {
    if u.ratio(15u8, 16u8).unwrap_or(true) {
        Pick::Issued(u.arbitrary().unwrap_or(0))
    } else {
        Pick::Raw(raw(u))
    }
}

fn gen_op(u: &mut Unstructured<'_>) -> Op {
    let small = |u: &mut Unstructured<'_>| usize::from(u.arbitrary::<u8>().unwrap_or(0));
    match u.int_in_range(0u8..=9).unwrap_or(0) {
        0 => Op::Login(small(u)),
        1..=3 => Op::Authorize {
            user: small(u),
            client: usize::from(u.ratio(1u8, 8u8).unwrap_or(false)),
            redirect: usize::from(u.ratio(1u8, 8u8).unwrap_or(false)),
            verifier: small(u),
            state: gen_text(u),
            plain: u.ratio(1u8, 16u8).unwrap_or(false),
        },
        4..=6 => Op::Callback {
            code: gen_pick(u),
            state: gen_text(u),
            verifier: gen_text(u),
            redirect: usize::from(u.ratio(1u8, 8u8).unwrap_or(false)),
            client: usize::from(u.ratio(1u8, 8u8).unwrap_or(false)),
        },
        7 | 8 => Op::Refresh(gen_pick(u)),
        _ => Op::Advance(u.int_in_range(0u16..=90).unwrap_or(1)),
    }
}

#[cfg(test)]
mod tests;
