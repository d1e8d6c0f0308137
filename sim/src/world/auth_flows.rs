//! The auth-service flows whose answers the world judges itself: refresh rotation, a used
//! refresh token presented again, two refreshes of one token at once, the family revocation
//! of the late reuse, and the OAuth code flow with its attacks (docs/protocol.md sections 4
//! and 7).
//!
//! The checkers see the tokens a flow mints and the revocations it publishes, never what the
//! auth service answered a call it refused; that answer is judged here, where it is known.
//! Each flow drives the service down one rule's path and compares the answer with what the
//! protocol says: a wrong answer is [`Obs::AuthServiceMisbehaved`] (a failure of the auth
//! checker), a right one [`Obs::AuthFlow`] (that rule's coverage mark). An answer the protocol
//! allows for another reason (a full store, a forgotten tombstone) is neither.
//!
//! Every call of a flow runs at the auth-service time of the event that carries it and draws
//! no randomness: which attack runs was drawn from the client's RNG when the call was sent.

use std::time::Duration;

use gauntlet_core::auth_service::{AuthError, TokenPair, TokenResponse};
use gauntlet_core::oauth::{
    AuthorizationCode, AuthorizeRequest, CODE_TTL, CallbackRequest, OAuthError, s256_challenge,
};
use gauntlet_core::permissions::Permissions;
use gauntlet_core::token::{MAX_TOKENS_PER_FAMILY, Minted, RefreshError, Revocation};
use gauntlet_core::{FamilyId, Instant, Jti, UserId};

use super::World;
use super::population::ClientId;
use crate::checker::Obs;
use crate::workload::{self, TokenClaims};

const OAUTH_CLIENT: &str = "gauntlet-web";
const OAUTH_REDIRECT: &str = "https://app.example/callback";
const VERIFIER: &str = "gauntlet-pkce-verifier-0123456789-abcdefghijklmnop";
/// Well-formed (51 unreserved characters), but its S256 is not the challenge.
const WRONG_VERIFIER: &str = "gauntlet-pkce-verifier-0123456789-WRONGWRONGWRONGWRO";
/// Outside RFC 7636's verifier shape twice over: 12 characters, one of them a space.
const MALFORMED_VERIFIER: &str = "short verify";
/// A client other than the one the code was issued to.
const OTHER_CLIENT: &str = "gauntlet-evil";
/// A redirect other than the one the code was issued for (a prefix match would take it).
const OTHER_REDIRECT: &str = "https://app.example/callback.evil";

/// An attack on the OAuth code flow ([`crate::scenario::Op::OAuthAttack`]): an honest flow
/// with one thing wrong, so exactly one check can refuse it, whatever order the service
/// checks in, and the refusal must name that check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OAuthAttack {
    /// The callback carries a state the service never issued (`OAUTH-STATE`).
    ForgedState,
    /// The code is redeemed twice (`OAUTH-CODE-SINGLE-USE`, `OAUTH-REPLAY-REVOKES`).
    ReplayedCode,
    /// A well-formed verifier whose S256 is not the challenge (`OAUTH-PKCE-S256`).
    WrongVerifier,
    /// `authorize` with the `plain` challenge method (`OAUTH-PKCE-S256`).
    PlainMethod,
    /// A verifier outside RFC 7636's length and alphabet (`OAUTH-PKCE-S256`).
    MalformedVerifier,
    /// The callback names another `client_id` (`OAUTH-CODE-BINDINGS`).
    OtherClient,
    /// The callback names another `redirect_uri` (`OAUTH-CODE-BINDINGS`).
    OtherRedirect,
    /// The callback comes a second after the code's 60 s (`OAUTH-CODE-TTL`).
    ExpiredCode,
    /// Flows started and abandoned, [`FLOOD_FLOWS`] in a row: their states stay pending,
    /// so a small store fills and refuses (`OAUTH-STORES-BOUNDED`).
    Flood,
}

/// Flows one [`OAuthAttack::Flood`] starts: past the tight seeds' stores (at most 15).
const FLOOD_FLOWS: usize = 16;

impl OAuthAttack {
    const ALL: [OAuthAttack; 9] = [
        OAuthAttack::ForgedState,
        OAuthAttack::ReplayedCode,
        OAuthAttack::WrongVerifier,
        OAuthAttack::PlainMethod,
        OAuthAttack::MalformedVerifier,
        OAuthAttack::OtherClient,
        OAuthAttack::OtherRedirect,
        OAuthAttack::ExpiredCode,
        OAuthAttack::Flood,
    ];

    /// The attack a client's draw `variant` picks, each as likely as the others.
    pub(super) fn of(variant: u64) -> Self {
        let n = Self::ALL.len() as u64;
        Self::ALL[usize::try_from(variant % n).unwrap_or(0)]
    }

    /// What the flow got wrong, as a violation names it.
    fn what(self) -> &'static str {
        match self {
            OAuthAttack::ForgedState => "forged state",
            OAuthAttack::ReplayedCode => "replayed code",
            OAuthAttack::WrongVerifier => "wrong verifier",
            OAuthAttack::PlainMethod => "plain challenge method",
            OAuthAttack::MalformedVerifier => "malformed verifier",
            OAuthAttack::OtherClient => "client_id other than the code's",
            OAuthAttack::OtherRedirect => "redirect_uri other than the code's",
            OAuthAttack::ExpiredCode => "code past its 60 s",
            OAuthAttack::Flood => "flood of abandoned flows",
        }
    }

    /// The rule whose check must refuse the attack.
    fn rule(self) -> &'static str {
        match self {
            OAuthAttack::ForgedState => "OAUTH-STATE",
            OAuthAttack::ReplayedCode => "OAUTH-CODE-SINGLE-USE",
            OAuthAttack::WrongVerifier
            | OAuthAttack::PlainMethod
            | OAuthAttack::MalformedVerifier => "OAUTH-PKCE-S256",
            OAuthAttack::OtherClient | OAuthAttack::OtherRedirect => "OAUTH-CODE-BINDINGS",
            OAuthAttack::ExpiredCode => "OAUTH-CODE-TTL",
            OAuthAttack::Flood => "OAUTH-STORES-BOUNDED",
        }
    }

    /// The refusal that check gives, as its code.
    fn expected(self) -> &'static str {
        match self {
            OAuthAttack::ForgedState => "state_unknown",
            OAuthAttack::ReplayedCode => "code_replayed",
            OAuthAttack::WrongVerifier => "verifier_mismatch",
            OAuthAttack::PlainMethod => "unsupported_method",
            OAuthAttack::MalformedVerifier => "verifier_malformed",
            OAuthAttack::OtherClient => "client_mismatch",
            OAuthAttack::OtherRedirect => "redirect_mismatch",
            OAuthAttack::ExpiredCode => "code_expired",
            OAuthAttack::Flood => "store_full",
        }
    }

    /// Whether `e` is the refusal of the check this attack must trip. A forged state is
    /// unknown; one bound to another flow would be a mismatch, which is as right.
    fn refused_by_its_check(self, e: &OAuthError) -> bool {
        e.code() == self.expected()
            || (self == OAuthAttack::ForgedState && *e == OAuthError::StateMismatch)
    }

    /// Whether `e`, not the expected refusal, is still one the protocol allows for another
    /// reason: a full store refuses any `authorize`, and an expired code may be pruned
    /// before its callback (then it is unknown).
    fn refused_otherwise_allowed(self, e: &AuthError) -> bool {
        match e {
            AuthError::OAuth(OAuthError::StoreFull(_)) => self == OAuthAttack::PlainMethod,
            AuthError::OAuth(OAuthError::CodeUnknown) => self == OAuthAttack::ExpiredCode,
            _ => false,
        }
    }
}

impl World<'_> {
    /// Reports that the auth service answered a flow against the protocol.
    fn misbehaved(&mut self, what: String) {
        self.observe(&Obs::AuthServiceMisbehaved { what });
    }

    /// Reports that `rule`'s path ran and the auth service answered it as the protocol says.
    fn auth_flow(&mut self, rule: &'static str) {
        self.observe(&Obs::AuthFlow { rule });
    }

    /// Tells the auth checker that presenting `refresh_token` at auth time `auth_at` revoked
    /// its family, when the refusal says so.
    pub(super) fn family_revoked(
        &mut self,
        auth_at: Instant,
        refresh_token: &str,
        error: &AuthError,
    ) {
        if matches!(error, AuthError::Refresh(RefreshError::Reused { .. }))
            && let Some(family) = workload::family_of(refresh_token)
        {
            self.observe(&Obs::FamilyRevoked {
                at: self.now,
                auth_at,
                family: &family,
            });
        }
    }

    /// Tells the auth checker about revocations the auth service just issued (true time),
    /// and returns them: every call ends by telling them, so what a call finds here after
    /// one of its own steps is what that step published.
    pub(super) fn publish_revocations(&mut self) -> Vec<Revocation> {
        let new = self.auth.untold_revocations();
        for r in &new {
            self.observe(&Obs::Revocation {
                at: self.now,
                revocation: r,
            });
        }
        new
    }

    /// A refresh of `token` by client `i` at auth time `now`, judged: a token presented
    /// before must not rotate again, and a rotation must keep the presented token's family,
    /// subject, permissions and email under new ids (`AUTH-REFRESH-ROTATE`).
    pub(super) fn judged_refresh(
        &mut self,
        now: Instant,
        i: ClientId,
        token: &str,
    ) -> Result<TokenPair, AuthError> {
        let user = self.clients[i].user.clone();
        let reused = self.auth.refreshed.contains(token);
        let result = self.auth.service.refresh(now, token.as_bytes());
        match &result {
            Ok(pair) => {
                if reused {
                    self.misbehaved(format!("refresh token of {user} accepted a second time"));
                } else {
                    let claims = PairClaims::of(pair);
                    match rotation_fault(token, pair, &claims) {
                        Some(fault) => {
                            self.misbehaved(format!("refresh of {user}'s token answered {fault}"));
                        }
                        None => self.auth_flow("AUTH-REFRESH-ROTATE"),
                    }
                    self.judge_lifetimes("refresh", &user, &claims);
                }
                self.clients[i].used_refresh = Some(token.to_string());
            }
            Err(e) => self.family_revoked(now, token, e),
        }
        self.auth.refreshed.insert(token);
        result
    }

    /// [`crate::scenario::Op::RefreshStorm`] at auth time `now`: a new family of `user`
    /// rotated again and again at one instant. Every token it mints is still live, so the
    /// family holds exactly the tokens minted in it: the refresh that would take it past
    /// [`MAX_TOKENS_PER_FAMILY`] must be refused `FamilyExhausted`, and no earlier one
    /// (`AUTH-REFRESH-BOUNDS`).
    pub(super) fn refresh_storm(&mut self, now: Instant, user: &UserId, perms: Permissions) {
        let Ok(pair) = self.auth.service.login(now, user, perms) else {
            return;
        };
        let mut held = 2;
        let mut token = pair.refresh.token;
        loop {
            let over = held + 2 > MAX_TOKENS_PER_FAMILY;
            match self.auth.service.refresh(now, token.as_bytes()) {
                Ok(_) if over => {
                    return self.misbehaved(format!(
                        "a refresh took a family of {user} to {} live tokens (bound \
                         {MAX_TOKENS_PER_FAMILY})",
                        held + 2
                    ));
                }
                Ok(next) => {
                    held += 2;
                    token = next.refresh.token;
                }
                Err(AuthError::Refresh(RefreshError::FamilyExhausted)) if over => {
                    return self.auth_flow("AUTH-REFRESH-BOUNDS");
                }
                Err(AuthError::Refresh(RefreshError::FamilyExhausted)) => {
                    return self.misbehaved(format!(
                        "a refresh of a family of {user} holding {held} live tokens was refused \
                         as exhausted (bound {MAX_TOKENS_PER_FAMILY})"
                    ));
                }
                // Refused for another reason (a full family store): nothing to judge.
                Err(_) => return,
            }
        }
    }

    /// Two refreshes of `token` by client `i` that reach the auth service together (two tabs
    /// at once): it answers them one after the other at one instant, as a service that
    /// serialises its store sees a race. Exactly one may rotate, and the other is a reuse
    /// (`AUTH-REFRESH-CONCURRENT`). The winner's tokens, if one won.
    pub(super) fn concurrent_refresh(
        &mut self,
        now: Instant,
        i: ClientId,
        token: &str,
    ) -> Option<TokenPair> {
        let first = self.judged_refresh(now, i, token);
        // A second success is reported by its own judgment (accepted a second time), and
        // so is a success after a refusal.
        let second = self.judged_refresh(now, i, token);
        let pair = first.ok()?;
        match second {
            Err(AuthError::Refresh(RefreshError::Reused { .. })) => {
                self.auth_flow("AUTH-REFRESH-CONCURRENT");
            }
            Err(e) => {
                let user = self.clients[i].user.clone();
                self.misbehaved(format!(
                    "the second of two concurrent refreshes of {user}'s token was refused \
                     as {}, not as a reuse",
                    refusal(&e)
                ));
            }
            Ok(_) => {}
        }
        Some(pair)
    }

    /// A used refresh token of `user` presented again at auth time `now`: it must be refused
    /// as a reuse (`AUTH-REFRESH-SINGLE-USE`), which revokes its family. `stolen` is an
    /// access token of that family (its id and `exp`) that the revocation must cover while
    /// the gateway could still accept it, past `exp` but inside the leeway included
    /// (`AUTH-FAMILY-REVOKE-LEEWAY`).
    pub(super) fn refresh_reuse(
        &mut self,
        now: Instant,
        user: &UserId,
        token: &str,
        stolen: Option<&(Jti, Instant)>,
    ) {
        let e = match self.auth.service.refresh(now, token.as_bytes()) {
            Ok(_) => {
                return self.misbehaved(format!("used refresh token of {user} accepted again"));
            }
            Err(e) => e,
        };
        self.family_revoked(now, token, &e);
        // Refused otherwise (expired, its key rotated away, its family already revoked):
        // not the reuse path.
        if !matches!(e, AuthError::Refresh(RefreshError::Reused { .. })) {
            return;
        }
        self.auth_flow("AUTH-REFRESH-SINGLE-USE");
        let Some((jti, exp)) = stolen else {
            return;
        };
        let revoked = self.publish_revocations();
        let until = exp.saturating_add(self.config.tokens.leeway());
        // Past `exp + leeway` the gateway refuses the token anyway: nothing to revoke.
        if now >= until {
            return;
        }
        if revoked
            .iter()
            .any(|r| matches!(r, Revocation::Jti { jti: j, .. } if j == jti))
        {
            if now >= *exp {
                self.auth_flow("AUTH-FAMILY-REVOKE-LEEWAY");
            }
        } else {
            let family = workload::family_of(token).map_or_else(String::new, |f| f.to_string());
            self.misbehaved(format!(
                "a refresh reuse revoked family {family} of {user} without its access token \
                 {jti}, which the gateway accepts for {:?} more (exp + leeway)",
                until.saturating_since(now)
            ));
        }
    }

    /// A password login of `user` at auth time `now`, its tokens' lifetimes judged.
    pub(super) fn judged_login(
        &mut self,
        now: Instant,
        user: &UserId,
        perms: Permissions,
    ) -> Option<TokenPair> {
        let pair = self.auth.service.login(now, user, perms).ok()?;
        self.judge_lifetimes("login", user, &PairClaims::of(&pair));
        Some(pair)
    }

    /// `AUTH-LIFETIMES`: the pair a login, refresh or OAuth callback minted for `user` lives
    /// exactly the protocol's lifetimes, each token from its own `iat`.
    fn judge_lifetimes(&mut self, what: &str, user: &UserId, claims: &PairClaims) {
        let (access, refresh) = self.auth.lifetimes;
        for (kind, p, lifetime) in [
            ("access", &claims.access, access),
            ("refresh", &claims.refresh, refresh),
        ] {
            let lived = p.exp.zip(p.iat).and_then(|(exp, iat)| exp.checked_sub(iat));
            if lived != Some(lifetime.as_secs()) {
                return self.misbehaved(format!(
                    "{what} of {user} minted a {kind} token living {lived:?} s; the protocol \
                     says {} s",
                    lifetime.as_secs()
                ));
            }
        }
        self.auth_flow("AUTH-LIFETIMES");
    }

    /// `OAUTH-TOKENS-IN-BODY`: a callback's answer carries the access token, `token_type`
    /// `Bearer`, the seconds until that token's `exp` and the refresh token, each of its own
    /// type, and the redirect's code is no token. `None` when nothing is wrong.
    /// `claims` are the response's tokens' payloads.
    fn body_fault(
        now: Instant,
        code: &str,
        resp: &TokenResponse,
        claims: &PairClaims,
    ) -> Option<String> {
        if resp.token_type != "Bearer" {
            return Some(format!("token_type {:?}", resp.token_type));
        }
        for (kind, p) in [("access", &claims.access), ("refresh", &claims.refresh)] {
            if p.token_type.as_deref() != Some(kind) {
                return Some(format!("a {kind}_token of type {:?}", p.token_type));
            }
        }
        let Some(exp) = claims.access.exp.map(Instant::from_unix_secs) else {
            return Some("an access_token without a whole-second exp".into());
        };
        // Whole seconds: the time to `exp`, rounded down.
        let left = exp.saturating_since(now).as_secs();
        if resp.expires_in != left {
            return Some(format!(
                "expires_in {} for an access token expiring in {left} s",
                resp.expires_in
            ));
        }
        if workload::payload_of(code)["sub"].is_string() {
            return Some("a token as the redirect's code".into());
        }
        None
    }

    /// Runs an honest OAuth code flow for `user` at auth time `now`: the tokens, when the
    /// callback succeeded.
    pub(super) fn oauth_flow(
        &mut self,
        now: Instant,
        user: &UserId,
        perms: &Permissions,
    ) -> Option<TokenPair> {
        let state = format!("state-{}-{}", user, self.steps);
        let challenge = s256_challenge(VERIFIER);
        let req = authorize_request(user, perms, &challenge, "S256", &state);
        let code = self.judged_authorize(now, &req).ok()?.code;
        let resp = self
            .auth
            .callback(now, &honest_callback(&code, &state))
            .ok()?;
        let claims = PairClaims::parse(&resp.access_token, &resp.refresh_token);
        match Self::body_fault(now, &code, &resp, &claims) {
            Some(fault) => self.misbehaved(format!("OAuth callback of {user} answered {fault}")),
            None => self.auth_flow("OAUTH-TOKENS-IN-BODY"),
        }
        let pair = TokenPair {
            family: claims.refresh.fam.as_deref().and_then(FamilyId::parse)?,
            access: minted(resp.access_token, &claims.access)?,
            refresh: minted(resp.refresh_token, &claims.refresh)?,
        };
        self.judge_lifetimes("OAuth callback", user, &claims);
        Some(pair)
    }

    /// Runs an OAuth code flow for `user` at auth time `now` with `attack`'s one thing wrong,
    /// and judges every answer: the attack must be refused by its check; a code refused at
    /// a check is burnt, so the honest callback after it fails too (`OAUTH-CODE-BURN`).
    pub(super) fn oauth_attack(
        &mut self,
        now: Instant,
        user: &UserId,
        perms: &Permissions,
        attack: OAuthAttack,
    ) {
        let state = format!("state-{}-{}", user, self.steps);
        let challenge = s256_challenge(VERIFIER);
        if attack == OAuthAttack::Flood {
            // Each is judged as it is answered; the first refusal ends the flood.
            for k in 0..FLOOD_FLOWS {
                let state = format!("{state}-abandoned-{k}");
                let req = authorize_request(user, perms, &challenge, "S256", &state);
                if self.judged_authorize(now, &req).is_err() {
                    break;
                }
            }
            return;
        }
        let method = if attack == OAuthAttack::PlainMethod {
            "plain"
        } else {
            "S256"
        };
        let req = authorize_request(user, perms, &challenge, method, &state);
        let authorized = self.judged_authorize(now, &req);
        if attack == OAuthAttack::PlainMethod {
            return match authorized {
                Ok(_) => self.misbehaved(format!(
                    "oauth authorize for {user} accepted code challenge method plain"
                )),
                Err(e) => self.judge_refusal(user, attack, &e),
            };
        }
        // An honest authorize refused (a full store): nothing to attack.
        let Ok(code) = authorized else {
            return;
        };
        let honest = honest_callback(&code.code, &state);
        if attack == OAuthAttack::ReplayedCode {
            return self.oauth_replay(now, user, &honest);
        }
        let forged_state = format!("{state}-forged");
        let (at, bad) = match attack {
            OAuthAttack::ForgedState => (
                now,
                CallbackRequest {
                    state: &forged_state,
                    ..honest
                },
            ),
            OAuthAttack::WrongVerifier => (
                now,
                CallbackRequest {
                    code_verifier: WRONG_VERIFIER,
                    ..honest
                },
            ),
            OAuthAttack::MalformedVerifier => (
                now,
                CallbackRequest {
                    code_verifier: MALFORMED_VERIFIER,
                    ..honest
                },
            ),
            OAuthAttack::OtherClient => (
                now,
                CallbackRequest {
                    client_id: OTHER_CLIENT,
                    ..honest
                },
            ),
            OAuthAttack::OtherRedirect => (
                now,
                CallbackRequest {
                    redirect_uri: OTHER_REDIRECT,
                    ..honest
                },
            ),
            // The callback a second after the code's TTL. The OAuth store keeps nothing
            // stamped with a callback's time (an expired code is only removed), so a later
            // call at `now` finds the service as if its clock had never moved.
            OAuthAttack::ExpiredCode => (
                now.saturating_add(CODE_TTL)
                    .saturating_add(Duration::from_secs(1)),
                honest,
            ),
            OAuthAttack::PlainMethod | OAuthAttack::ReplayedCode | OAuthAttack::Flood => return,
        };
        match self.auth.callback(at, &bad) {
            Ok(_) => self.misbehaved(format!(
                "oauth callback with a {} issued tokens",
                attack.what()
            )),
            Err(AuthError::OAuth(e)) if attack.refused_by_its_check(&e) => {
                self.auth_flow(attack.rule());
                // Past its TTL a code is dead whether burnt or not: no burn to show.
                if attack != OAuthAttack::ExpiredCode {
                    self.oauth_burnt(now, user, &honest, attack);
                }
            }
            Err(e) => self.judge_refusal(user, attack, &e),
        }
    }

    /// `attack` was refused with `e`, not by its own check: a misbehaviour unless the
    /// protocol allows that refusal for another reason.
    fn judge_refusal(&mut self, user: &UserId, attack: OAuthAttack, e: &AuthError) {
        match e {
            AuthError::OAuth(o) if attack.refused_by_its_check(o) => self.auth_flow(attack.rule()),
            e if attack.refused_otherwise_allowed(e) => {}
            e => self.misbehaved(format!(
                "oauth flow of {user} with a {} refused as {}, not {}",
                attack.what(),
                refusal(e),
                attack.expected()
            )),
        }
    }

    /// `authorize` at auth time `now`, judged: a store refuses as full only when it holds as
    /// many live entries as its capacity (`OAUTH-STORES-BOUNDED`), counted from every flow
    /// the world started (see [`super::auth_node::Pending`]).
    fn judged_authorize(
        &mut self,
        now: Instant,
        req: &AuthorizeRequest<'_>,
    ) -> Result<AuthorizationCode, AuthError> {
        let result = self.auth.authorize(now, req);
        if let Err(AuthError::OAuth(OAuthError::StoreFull(store))) = &result {
            let (live, cap) = self.auth.pending(now, *store);
            if live < cap {
                self.misbehaved(format!(
                    "oauth authorize refused a full {store} store holding at most {live} live \
                     entries (capacity {cap})"
                ));
            } else {
                self.auth_flow("OAUTH-STORES-BOUNDED");
            }
        }
        result
    }

    /// After `attack` was refused at the callback, the honest callback with the same code:
    /// the code is burnt, so it must be unknown now.
    fn oauth_burnt(
        &mut self,
        now: Instant,
        user: &UserId,
        honest: &CallbackRequest<'_>,
        attack: OAuthAttack,
    ) {
        match self.auth.callback(now, honest) {
            Ok(_) => self.misbehaved(format!(
                "oauth callback issued tokens to {user} for a code burnt by a callback with a {}",
                attack.what()
            )),
            Err(AuthError::OAuth(OAuthError::CodeUnknown)) => self.auth_flow("OAUTH-CODE-BURN"),
            // Refused by another check: the burn is not shown, nor broken.
            Err(_) => {}
        }
    }

    /// The honest callback `honest` twice: the replay must fail as a replay, and revoke the
    /// tokens the first minted and the family it started (`OAUTH-REPLAY-REVOKES`).
    fn oauth_replay(&mut self, now: Instant, user: &UserId, honest: &CallbackRequest<'_>) {
        let Ok(first) = self.auth.callback(now, honest) else {
            return;
        };
        // Told now, so what the next call finds untold is what the replay published.
        self.publish_revocations();
        match self.auth.callback(now, honest) {
            Ok(_) => {
                return self.misbehaved("oauth callback with a replayed code issued tokens".into());
            }
            Err(AuthError::OAuth(OAuthError::CodeReplayed { .. })) => {
                self.auth_flow(OAuthAttack::ReplayedCode.rule());
            }
            // A tombstone forgotten past its store's capacity: refused as unknown, and it
            // revokes nothing (docs/protocol.md section 7).
            Err(AuthError::OAuth(OAuthError::CodeUnknown)) => return,
            Err(e) => return self.judge_refusal(user, OAuthAttack::ReplayedCode, &e),
        }
        let revoked = self.publish_revocations();
        for (kind, token) in [
            ("access", &first.access_token),
            ("refresh", &first.refresh_token),
        ] {
            let jti = workload::payload_of(token)["jti"]
                .as_str()
                .and_then(Jti::parse);
            let in_feed = jti.as_ref().is_some_and(|jti| {
                revoked
                    .iter()
                    .any(|r| matches!(r, Revocation::Jti { jti: j, .. } if j == jti))
            });
            if !in_feed {
                let jti = jti.map_or_else(|| "(no jti)".to_string(), |j| j.to_string());
                return self.misbehaved(format!(
                    "oauth code replay left the {kind} token {jti} of {user} unrevoked"
                ));
            }
        }
        // The family the code started is revoked: its refresh token rotates no more.
        if self
            .auth
            .service
            .refresh(now, first.refresh_token.as_bytes())
            .is_ok()
        {
            return self.misbehaved(format!(
                "oauth code replay left the refresh family of {user}'s code rotating"
            ));
        }
        self.auth_flow("OAUTH-REPLAY-REVOKES");
    }
}

/// The authorization request of the world's web app for `user`.
fn authorize_request<'a>(
    user: &'a UserId,
    permissions: &'a Permissions,
    challenge: &'a str,
    method: &'a str,
    state: &'a str,
) -> AuthorizeRequest<'a> {
    AuthorizeRequest {
        user,
        permissions,
        client_id: OAUTH_CLIENT,
        redirect_uri: OAUTH_REDIRECT,
        code_challenge: challenge,
        method,
        state,
    }
}

/// The web app's callback for `code` and `state`, every binding right.
fn honest_callback<'a>(code: &'a str, state: &'a str) -> CallbackRequest<'a> {
    CallbackRequest {
        code,
        state,
        code_verifier: VERIFIER,
        redirect_uri: OAUTH_REDIRECT,
        client_id: OAUTH_CLIENT,
    }
}

/// The payloads of a minted pair's two tokens, read once for every judgement of them.
struct PairClaims {
    access: TokenClaims,
    refresh: TokenClaims,
}

impl PairClaims {
    fn parse(access: &str, refresh: &str) -> Self {
        PairClaims {
            access: TokenClaims::of(access),
            refresh: TokenClaims::of(refresh),
        }
    }

    fn of(pair: &TokenPair) -> Self {
        Self::parse(&pair.access.token, &pair.refresh.token)
    }
}

/// A token of an OAuth response, with the id and expiry its payload `p` names.
fn minted(token: String, p: &TokenClaims) -> Option<Minted> {
    Some(Minted {
        jti: Jti::parse(p.jti.as_deref()?)?,
        exp: Instant::from_unix_secs(p.exp?),
        token,
    })
}

/// A refusal as its stable code where it has one.
fn refusal(e: &AuthError) -> String {
    match e {
        AuthError::OAuth(o) => o.code().to_string(),
        AuthError::Refresh(RefreshError::Reused { .. }) => "reused".to_string(),
        AuthError::InvalidRefresh(t) => format!("invalid refresh token ({})", t.code()),
        other => other.to_string(),
    }
}

/// What is wrong with `pair` as the answer to a refresh of `presented`
/// (`AUTH-REFRESH-ROTATE`): both new tokens must be of the presented token's family, subject,
/// permissions and email, of their own types, under ids new to the family and named as the
/// pair names them. `None` when nothing is.
fn rotation_fault(presented: &str, pair: &TokenPair, claims: &PairClaims) -> Option<String> {
    let old = TokenClaims::of(presented);
    if pair.access.jti == pair.refresh.jti {
        return Some(format!("one jti {} for both tokens", pair.access.jti));
    }
    for (kind, token, new) in [
        ("access", &pair.access, &claims.access),
        ("refresh", &pair.refresh, &claims.refresh),
    ] {
        let jti = new.jti.as_deref();
        if jti != Some(token.jti.as_str()) {
            return Some(format!("a {kind} token whose jti is not {}", token.jti));
        }
        if jti == old.jti.as_deref() {
            return Some(format!(
                "a {kind} token under the presented jti {}",
                token.jti
            ));
        }
        if new.token_type.as_deref() != Some(kind) {
            return Some(format!("a {kind} token of type {:?}", new.token_type));
        }
        let kept = [
            ("fam", &new.fam, &old.fam),
            ("sub", &new.sub, &old.sub),
            ("email", &new.email, &old.email),
        ];
        for (claim, got, had) in kept {
            if got != had {
                return Some(format!(
                    "a {kind} token with {claim} {got:?} (the presented token's is {had:?})"
                ));
            }
        }
        if new.permissions != old.permissions {
            return Some(format!(
                "a {kind} token with permissions {:?} (the presented token's are {:?})",
                new.permissions, old.permissions
            ));
        }
        if new.fam.as_deref().and_then(FamilyId::parse).as_ref() != Some(&pair.family) {
            return Some(format!(
                "a {kind} token outside its pair's family {}",
                pair.family
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gauntlet_core::Plants;
    use gauntlet_core::auth_service::AuthService;
    use gauntlet_core::permissions::Permission;
    use gauntlet_core::token::{Algorithm, Issuer, KeyRing, SigningKey, TokenRules};

    use super::*;

    const SECRET: &[u8] = b"auth-flows-test-secret-0123456789abcdef";

    fn service() -> AuthService {
        let key = SigningKey::hmac(None, Algorithm::HS256, SECRET).unwrap();
        let mut ring = KeyRing::new();
        ring.add_hmac(None, Algorithm::HS256, SECRET).unwrap();
        let rules = TokenRules::default();
        AuthService::new(Issuer::new(key, rules.clone()), ring, rules, Plants::NONE)
    }

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap()
    }

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_800_000_000 + secs)
    }

    fn oauth_service() -> AuthService {
        service()
            .with_oauth(&[7; 32], gauntlet_core::oauth::OAuthConfig::default())
            .unwrap()
    }

    /// An honest `authorize` of alice's flow `state` at `now`, with S256 and no permissions.
    fn alices_code(s: &mut AuthService, now: Instant, state: &str) -> AuthorizationCode {
        let (alice, perms) = (user("alice"), Permissions::empty());
        let challenge = s256_challenge(VERIFIER);
        let req = authorize_request(&alice, &perms, &challenge, "S256", state);
        s.authorize(now, &req).unwrap()
    }

    fn broadcaster() -> Permissions {
        Permissions::new(vec![Permission::parse("system:broadcast").unwrap()]).unwrap()
    }

    #[test]
    fn a_real_rotation_has_no_fault() {
        let mut s = service();
        let first = s.login(t(0), &user("alice"), broadcaster()).unwrap();
        let second = s.refresh(t(5), first.refresh.token.as_bytes()).unwrap();
        assert_eq!(
            rotation_fault(&first.refresh.token, &second, &PairClaims::of(&second)),
            None
        );
    }

    #[test]
    fn a_rotation_into_another_family_or_user_or_grant_or_under_old_ids_is_a_fault() {
        let mut s = service();
        let first = s.login(t(0), &user("alice"), broadcaster()).unwrap();
        let presented = first.refresh.token.clone();
        // Another family of the same user: `fam` differs.
        let other = s.login(t(0), &user("alice"), broadcaster()).unwrap();
        let fault = rotation_fault(&presented, &other, &PairClaims::of(&other)).unwrap();
        assert!(fault.contains("with fam"), "{fault}");
        // Another user.
        let bob = s.login(t(0), &user("bob"), broadcaster()).unwrap();
        assert!(rotation_fault(&presented, &bob, &PairClaims::of(&bob)).is_some());
        // The same family, without the granted permission.
        let rotated = s.refresh(t(1), presented.as_bytes()).unwrap();
        let mut narrower = rotated.clone();
        narrower.access = s
            .login(t(1), &user("alice"), Permissions::empty())
            .unwrap()
            .access;
        assert!(rotation_fault(&presented, &narrower, &PairClaims::of(&narrower)).is_some());
        // The presented pair handed back.
        let fault = rotation_fault(&presented, &first, &PairClaims::of(&first)).unwrap();
        assert!(fault.contains("presented jti"), "{fault}");
        // Access and refresh swapped: each has the other's type.
        let swapped = TokenPair {
            access: rotated.refresh.clone(),
            refresh: rotated.access.clone(),
            family: rotated.family.clone(),
        };
        let fault = rotation_fault(&presented, &swapped, &PairClaims::of(&swapped)).unwrap();
        assert!(fault.contains("of type"), "{fault}");
    }

    #[test]
    fn every_attack_is_drawn_and_refused_by_the_check_its_rule_names() {
        let drawn: Vec<OAuthAttack> = (0..9).map(OAuthAttack::of).collect();
        assert_eq!(drawn, OAuthAttack::ALL);
        assert_eq!(OAuthAttack::of(9), OAuthAttack::ForgedState);
        assert!(OAuthAttack::ForgedState.refused_by_its_check(&OAuthError::StateMismatch));
        assert!(!OAuthAttack::ForgedState.refused_by_its_check(&OAuthError::VerifierMismatch));
        assert!(OAuthAttack::OtherRedirect.refused_by_its_check(&OAuthError::RedirectMismatch));
        assert!(!OAuthAttack::OtherRedirect.refused_by_its_check(&OAuthError::ClientMismatch));
    }

    #[test]
    fn a_real_callback_answers_in_its_body_and_anything_else_is_a_fault() {
        let mut s = oauth_service();
        let now = t(0).saturating_add(Duration::from_millis(500));
        let code = alices_code(&mut s, now, "s1").code;
        let resp = s.callback(now, &honest_callback(&code, "s1")).unwrap();
        let claims = PairClaims::parse(&resp.access_token, &resp.refresh_token);
        assert_eq!(World::body_fault(now, &code, &resp, &claims), None);
        // 15 min from a whole-second `iat` half a second ago: 899 s left, not 900.
        assert_eq!(resp.expires_in, 899);

        let fault = |edit: &dyn Fn(&mut TokenResponse)| {
            let mut r = resp.clone();
            edit(&mut r);
            World::body_fault(
                now,
                &code,
                &r,
                &PairClaims::parse(&r.access_token, &r.refresh_token),
            )
        };
        assert!(fault(&|r| r.token_type = "bearer").is_some());
        assert!(fault(&|r| r.expires_in += 1).is_some());
        assert!(fault(&|r| std::mem::swap(&mut r.access_token, &mut r.refresh_token)).is_some());
        let token = resp.access_token.clone();
        assert!(World::body_fault(now, &token, &resp, &claims).is_some());
    }

    /// The code-TTL attack calls back a second past the TTL, ahead of the service's `now`:
    /// the store keeps nothing of that call's time, so an honest flow at `now` right after
    /// it still succeeds.
    #[test]
    fn a_callback_past_the_code_ttl_is_refused_and_leaves_the_clock_where_it_was() {
        let mut s = oauth_service();
        let late = alices_code(&mut s, t(0), "s1");
        let past = t(0)
            .saturating_add(CODE_TTL)
            .saturating_add(Duration::from_secs(1));
        let e = s
            .callback(past, &honest_callback(&late.code, "s1"))
            .unwrap_err();
        assert!(
            matches!(e, AuthError::OAuth(OAuthError::CodeExpired)),
            "{e:?}"
        );
        let on_time = alices_code(&mut s, t(0), "s2");
        assert!(
            s.callback(t(0), &honest_callback(&on_time.code, "s2"))
                .is_ok()
        );
    }
}
