//! The auth service: the separate node that logs users in, rotates refresh tokens, runs the
//! OAuth authorization-code + PKCE flow, rotates signing keys and publishes revocations
//! (docs/protocol.md sections 1 and 7).
//!
//! [`AuthService`] is a sans-IO model driven by the simulator and the server alike. It owns
//! an [`Issuer`], a [`Validator`] for the refresh tokens presented to it, the refresh
//! families, the OAuth model, and the revocation feed the gateway pulls. It must never read
//! a clock, an RNG or a socket: `now` is a parameter of every call, and the same calls give
//! the same tokens and the same feed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::oauth::{
    AuthorizationCode, AuthorizeRequest, CallbackRequest, OAuth, OAuthConfig, OAuthError,
};
use crate::permissions::Permissions;
use crate::plant::{Plants, planted};
use crate::token::{
    DEFAULT_MAX_FAMILIES, IssueError, Issuer, KeyError, KeyRing, MintRequest, Minted, RefreshError,
    RefreshFamilies, Revocation, SigningKey, TokenError, TokenRules, TokenType, Validator,
};
use crate::{FamilyId, Instant, Jti, Kid, UserId};

/// Initial capacity of the revocation feed. The feed only shrinks through [`AuthService::prune`]:
/// a revocation is never refused.
const FEED_RESERVE: usize = 1024;

/// An access token and a refresh token of one family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenPair {
    /// The access token (carries `fam`).
    pub access: Minted,
    /// The single-use refresh token.
    pub refresh: Minted,
    /// The family both belong to.
    pub family: FamilyId,
}

/// The OAuth token response (RFC 6749 section 5.1): tokens go in a response body, never in a URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token.
    pub refresh_token: String,
}

/// The verification side of a new signing key, added to the key ring on rotation.
#[derive(Clone, PartialEq, Eq)]
pub enum VerifyKey {
    /// The HMAC secret (the same bytes the [`SigningKey`] was made from).
    Hmac(Vec<u8>),
    /// The public key in PEM form.
    PublicPem(Vec<u8>),
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs.
        f.write_str(match self {
            VerifyKey::Hmac(_) => "VerifyKey::Hmac(..)",
            VerifyKey::PublicPem(_) => "VerifyKey::PublicPem(..)",
        })
    }
}

/// What a key rotation did, so the gateway's ring can mirror it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRotation {
    /// The kid now signing.
    pub current: Kid,
    /// The kid that signed until now; its tokens still validate.
    pub previous: Kid,
    /// The kid this rotation removed from the ring (the previous-but-one), if any: the ring
    /// holds current + previous, so its tokens now fail as `unknown_key`.
    pub retired: Option<Kid>,
}

/// Why an auth-service call failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The presented refresh token failed validation (expired, revoked, forged, not a refresh token, ...).
    #[error("refresh token rejected")]
    InvalidRefresh(#[source] TokenError),
    /// The refresh token has no `fam` claim, so it belongs to no family this service issued.
    #[error("refresh token has no family")]
    MissingFamily,
    /// The family store refused the token (unknown, revoked or exhausted family, a subject
    /// that does not own it, a full store, or a reuse). On a reuse the service has already
    /// published a revocation for every token [`RefreshError::Reused`] lists.
    #[error("refresh refused")]
    Refresh(#[from] RefreshError),
    /// Minting failed.
    #[error("minting failed")]
    Issue(#[from] IssueError),
    /// The key ring refused a rotation key.
    #[error("key rotation refused")]
    Key(#[from] KeyError),
    /// Key rotation needs a `kid` on both the current and the new key, so tokens pick their key.
    #[error("key rotation requires kids on the current and the new key")]
    RotationNeedsKid,
    /// An OAuth request failed (a code replay also revoked the tokens minted from the code).
    #[error("oauth request failed")]
    OAuth(#[from] OAuthError),
    /// The service was built without OAuth ([`AuthService::with_oauth`]).
    #[error("oauth is not configured")]
    OAuthDisabled,
}

/// The auth node: issuing, refresh rotation, OAuth, key rotation and the revocation feed.
#[derive(Debug)]
pub struct AuthService {
    issuer: Issuer,
    validator: Validator,
    rules: TokenRules,
    families: RefreshFamilies,
    oauth: Option<OAuth>,
    feed: Vec<(Instant, Revocation)>,
    /// Absolute index of `feed[0]`: cursors stay valid when dead entries are dropped.
    feed_base: usize,
    previous_kid: Option<Kid>,
    /// Per user, the whole second from which tokens are no longer cut by that user's
    /// latest logout-everywhere, and whether a token was already minted with it as `iat`;
    /// held only while that second is still ahead, since tokens minted before it must
    /// carry it as their `iat` (see [`AuthService::logout_everywhere`]).
    not_before: BTreeMap<UserId, (Instant, bool)>,
    plants: Plants,
}

impl AuthService {
    /// A service minting with `issuer` and checking presented refresh tokens against `ring`
    /// (which must hold the issuer's verification key) under `rules`.
    pub fn new(issuer: Issuer, ring: KeyRing, rules: TokenRules, plants: Plants) -> Self {
        let leeway = rules.leeway();
        Self {
            issuer,
            validator: Validator::new(ring, rules.clone()).with_plants(plants),
            rules,
            families: RefreshFamilies::new(DEFAULT_MAX_FAMILIES, leeway, plants),
            oauth: None,
            feed: Vec::with_capacity(FEED_RESERVE),
            feed_base: 0,
            previous_kid: None,
            not_before: BTreeMap::new(),
            plants,
        }
    }

    /// Enables OAuth with codes derived from `secret` (at least 32 bytes).
    pub fn with_oauth(mut self, secret: &[u8], config: OAuthConfig) -> Result<Self, AuthError> {
        self.oauth = Some(OAuth::new(secret, config, self.plants)?);
        Ok(self)
    }

    /// Logs `user` in: a new refresh family with a first access and refresh token.
    pub fn login(
        &mut self,
        now: Instant,
        user: &UserId,
        permissions: Permissions,
    ) -> Result<TokenPair, AuthError> {
        let ttl = self.rules.lifetime_for(TokenType::Access);
        self.login_for(now, user, permissions, ttl)
    }

    /// Logs `user` in like [`AuthService::login`], but the first access token lives
    /// `access_ttl` (at most the rules' access lifetime): a short session, such as a kiosk
    /// or a step-up sign-in. Its refreshes mint at the rules' lifetimes.
    pub fn login_for(
        &mut self,
        now: Instant,
        user: &UserId,
        permissions: Permissions,
        access_ttl: Duration,
    ) -> Result<TokenPair, AuthError> {
        let family = self.families.next_family(now)?;
        let ttl = access_ttl.min(self.rules.lifetime_for(TokenType::Access));
        let pair = self.mint_pair(now, user, permissions, None, family, ttl)?;
        self.families.start(
            pair.family.clone(),
            user.clone(),
            pair.refresh.jti.clone(),
            &issued(&pair),
        );
        Ok(pair)
    }

    /// Rotates a refresh token: a new access and refresh token of the same family. The
    /// presented token is single-use; presenting a used one revokes the whole family and
    /// fails with [`RefreshError::Reused`]. Of two refreshes with the same token, the
    /// first wins and the second is a reuse.
    pub fn refresh(&mut self, now: Instant, refresh_token: &[u8]) -> Result<TokenPair, AuthError> {
        let claims = self
            .validator
            .validate(refresh_token, now, TokenType::Refresh)
            .map_err(AuthError::InvalidRefresh)?;
        let family = claims.family().cloned().ok_or(AuthError::MissingFamily)?;
        match self
            .families
            .check(now, &family, claims.sub(), claims.jti())
        {
            Ok(()) => {}
            Err(RefreshError::Reused { revoke }) => {
                for (jti, exp) in &revoke {
                    let jti = jti.clone();
                    self.publish(now, Revocation::Jti { jti, exp: *exp });
                }
                return Err(AuthError::Refresh(RefreshError::Reused { revoke }));
            }
            Err(e) => return Err(AuthError::Refresh(e)),
        }
        let email = claims.email().map(str::to_string);
        let ttl = self.rules.lifetime_for(TokenType::Access);
        let pair = self.mint_pair(
            now,
            claims.sub(),
            claims.permissions().clone(),
            email,
            family,
            ttl,
        )?;
        self.families
            .rotated(&pair.family, pair.refresh.jti.clone(), &issued(&pair));
        Ok(pair)
    }

    /// Revokes one token until its `exp`.
    pub fn revoke(&mut self, now: Instant, jti: &Jti, exp: Instant) {
        self.publish(
            now,
            Revocation::Jti {
                jti: jti.clone(),
                exp,
            },
        );
    }

    /// Revokes every token of `user` issued up to `now` (logout everywhere, password change).
    ///
    /// `iat` is whole seconds, so a token's `iat` cannot tell whether it was minted before
    /// or after `now` within `now`'s second. The rule (`AUTH-REVOKE-NOT-BEFORE`,
    /// docs/protocol.md): the cut-off is the start of the next whole second, so every
    /// token with `iat` at or before `now`'s second is revoked; and tokens this service mints
    /// for `user` during the rest of that second carry the next second as `iat`, so a login
    /// right after the logout is not born revoked. A second logout before that second has
    /// come moves the cut-off one second further if a token was minted with the first
    /// cut-off as `iat` (that token predates it too).
    pub fn logout_everywhere(&mut self, now: Instant, user: &UserId) {
        let not_before = if planted!(self.plants, LogoutSameSecond) {
            now
        } else {
            let next = Instant::from_unix_secs(now.unix_secs().saturating_add(1));
            let cut = match self.not_before.get(user) {
                Some((held, minted)) if *held >= next => {
                    if *minted {
                        held.saturating_add(std::time::Duration::from_secs(1))
                    } else {
                        *held
                    }
                }
                _ => next,
            };
            self.not_before.insert(user.clone(), (cut, false));
            cut
        };
        self.publish(
            now,
            Revocation::User {
                user: user.clone(),
                not_before,
            },
        );
    }

    /// When a token minted for `user` at `now` is issued: `now`, or the start of the second
    /// after a logout-everywhere of `user` within `now`'s second (see
    /// [`AuthService::logout_everywhere`]). At most one second ahead, well inside the
    /// validators' `iat` allowance.
    fn issue_time(&mut self, now: Instant, user: &UserId) -> Instant {
        match self.not_before.get_mut(user) {
            Some((nb, minted)) if now < *nb => {
                *minted = true;
                *nb
            }
            _ => now,
        }
    }

    /// The revocations published at or after absolute position `cursor`, as
    /// `(issued_at, revocation)`. The gateway keeps `cursor + returned.len()` for its next
    /// pull. Entries dropped by [`AuthService::prune`] no longer matter to any validator.
    pub fn feed_since(&self, cursor: usize) -> &[(Instant, Revocation)] {
        let start = cursor.saturating_sub(self.feed_base);
        self.feed.get(start..).unwrap_or(&[])
    }

    /// The absolute position after the last published revocation.
    pub fn feed_end(&self) -> usize {
        self.feed_base + self.feed.len()
    }

    /// Rotates the signing key: `new` (with its `verify` half added to the ring) signs from
    /// now on; the key it replaces stays valid as the previous key; the previous-but-one is
    /// retired, so its tokens fail with `key_retired`. The ring thus holds current + previous.
    pub fn rotate_key(
        &mut self,
        new: SigningKey,
        verify: &VerifyKey,
    ) -> Result<KeyRotation, AuthError> {
        let current = new.kid().cloned().ok_or(AuthError::RotationNeedsKid)?;
        let previous = self
            .issuer
            .key()
            .kid()
            .cloned()
            .ok_or(AuthError::RotationNeedsKid)?;
        let ring = self.validator.ring_mut();
        match verify {
            VerifyKey::Hmac(secret) => ring.add_hmac(Some(current.clone()), new.alg(), secret)?,
            VerifyKey::PublicPem(pem) => {
                ring.add_public_pem(Some(current.clone()), new.alg(), pem)?;
            }
        }
        // The ring holds current + previous: the previous-but-one goes. Only flagging it
        // (the `RotationNeverPrunes` planted bug) fills the ring, and rotation then fails
        // for good once it holds `MAX_KEYS`.
        let retired = self.previous_kid.take();
        if let Some(kid) = &retired {
            if planted!(self.plants, RotationNeverPrunes) {
                self.validator.ring_mut().retire(kid)?;
            } else {
                self.validator.ring_mut().remove(kid)?;
            }
        }
        self.previous_kid = Some(previous.clone());
        self.issuer.replace_key(new);
        Ok(KeyRotation {
            current,
            previous,
            retired,
        })
    }

    /// Starts an OAuth authorization for the authenticated `req.user`.
    pub fn authorize(
        &mut self,
        now: Instant,
        req: &AuthorizeRequest<'_>,
    ) -> Result<AuthorizationCode, AuthError> {
        let oauth = self.oauth.as_mut().ok_or(AuthError::OAuthDisabled)?;
        Ok(oauth.authorize(now, req)?)
    }

    /// Redeems an authorization code: on success a new family is logged in and its tokens
    /// are returned in the response body. A replayed code fails and revokes every token
    /// minted from it (and the family it started).
    pub fn callback(
        &mut self,
        now: Instant,
        req: &CallbackRequest<'_>,
    ) -> Result<TokenResponse, AuthError> {
        let oauth = self.oauth.as_mut().ok_or(AuthError::OAuthDisabled)?;
        let grant = match oauth.callback(now, req) {
            Ok(grant) => grant,
            Err(OAuthError::CodeReplayed { revoke, family }) => {
                for (jti, exp) in &revoke {
                    self.revoke(now, jti, *exp);
                }
                if let Some(family) = &family {
                    for (jti, exp) in self.families.revoke(now, family) {
                        if !revoke.iter().any(|(j, _)| *j == jti) {
                            self.revoke(now, &jti, exp);
                        }
                    }
                }
                return Err(OAuthError::CodeReplayed { revoke, family }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let pair = self.login(now, &grant.user, grant.permissions)?;
        if let Some(oauth) = self.oauth.as_mut() {
            oauth.record_issued(&grant.code, &issued(&pair), Some(pair.family.clone()));
        }
        Ok(TokenResponse {
            access_token: pair.access.token,
            token_type: "Bearer",
            expires_in: pair.access.exp.saturating_since(now).as_secs(),
            refresh_token: pair.refresh.token,
        })
    }

    /// Drops dead state: expired families, OAuth entries, validator entries, and feed entries
    /// no validator can need any more (a revoked `jti` past its `exp` + leeway; a user epoch
    /// older than the longest token lifetime + leeway).
    pub fn prune(&mut self, now: Instant) {
        self.families.prune(now);
        if let Some(oauth) = self.oauth.as_mut() {
            oauth.prune(now);
        }
        self.validator.prune(now);
        let leeway = self.rules.leeway();
        let longest = self
            .rules
            .lifetime_for(TokenType::Refresh)
            .max(self.rules.lifetime_for(TokenType::Access))
            .max(self.rules.lifetime_for(TokenType::Service));
        let dead = self
            .feed
            .iter()
            .take_while(|(_, r)| match r {
                Revocation::Jti { exp, .. } => exp.saturating_add(leeway) <= now,
                Revocation::User { not_before, .. } => {
                    not_before.saturating_add(longest.saturating_add(leeway)) <= now
                }
            })
            .count();
        self.feed.drain(..dead);
        self.feed_base += dead;
        self.not_before.retain(|_, (nb, _)| now < *nb);
    }

    /// The validator checking presented refresh tokens (it applies every published revocation).
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// The issuer (current signing key and rules).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Number of refresh families held (bounded-memory checks).
    pub fn family_count(&self) -> usize {
        self.families.len()
    }

    fn publish(&mut self, now: Instant, revocation: Revocation) {
        self.validator.apply(&revocation);
        self.feed.push((now, revocation));
    }

    fn mint_pair(
        &mut self,
        now: Instant,
        user: &UserId,
        permissions: Permissions,
        email: Option<String>,
        family: FamilyId,
        access_ttl: Duration,
    ) -> Result<TokenPair, AuthError> {
        let now = self.issue_time(now, user);
        let mut request = MintRequest {
            sub: user.clone(),
            token_type: TokenType::Access,
            permissions,
            ttl: access_ttl,
            family: Some(family.clone()),
            email,
            svc_id: None,
        };
        let access = self.issuer.mint(now, &request)?;
        request.token_type = TokenType::Refresh;
        request.ttl = self.rules.lifetime_for(TokenType::Refresh);
        let refresh = self.issuer.mint(now, &request)?;
        Ok(TokenPair {
            access,
            refresh,
            family,
        })
    }
}

fn issued(pair: &TokenPair) -> [(Jti, Instant); 2] {
    [
        (pair.access.jti.clone(), pair.access.exp),
        (pair.refresh.jti.clone(), pair.refresh.exp),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::Algorithm;

    const SECRET: &[u8] = b"auth-service-test-secret-0123456789";

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_700_000_000 + secs)
    }

    fn kid(s: &str) -> Kid {
        Kid::parse(s).unwrap()
    }

    fn service(plants: Plants) -> AuthService {
        let key = SigningKey::hmac(Some(kid("k1")), Algorithm::HS256, SECRET).unwrap();
        let mut ring = KeyRing::new();
        ring.add_hmac(Some(kid("k1")), Algorithm::HS256, SECRET)
            .unwrap();
        let rules = TokenRules::default();
        AuthService::new(Issuer::new(key, rules.clone()), ring, rules, plants)
    }

    fn alice() -> UserId {
        UserId::parse("alice").unwrap()
    }

    #[test]
    fn refresh_same_token_twice_second_is_reuse_and_revokes_family() {
        let mut s = service(Plants::NONE);
        let first = s.login(t(0), &alice(), Permissions::empty()).unwrap();
        let second = s.refresh(t(10), first.refresh.token.as_bytes()).unwrap();
        assert_eq!(second.family, first.family);
        assert_ne!(second.refresh.jti, first.refresh.jti);
        let again = s.refresh(t(11), first.refresh.token.as_bytes());
        assert!(
            matches!(again, Err(AuthError::Refresh(RefreshError::Reused { .. }))),
            "{again:?}"
        );
        let revoked = feed_jtis(&s);
        for jti in [
            &first.access.jti,
            &first.refresh.jti,
            &second.access.jti,
            &second.refresh.jti,
        ] {
            assert!(revoked.contains(&jti), "{jti} not revoked");
        }
        // The thief's fresh refresh token is dead too.
        let stolen = s.refresh(t(12), second.refresh.token.as_bytes());
        assert!(
            matches!(stolen, Err(AuthError::InvalidRefresh(ref e)) if e.code() == "revoked"),
            "{stolen:?}"
        );
    }

    #[test]
    fn validator_applies_every_published_revocation() {
        let mut s = service(Plants::NONE);
        assert_eq!(s.validator().revocation_count(), 0);
        let pair = s.login(t(0), &alice(), Permissions::empty()).unwrap();
        s.revoke(t(1), &pair.access.jti, pair.access.exp);
        s.logout_everywhere(t(2), &alice());
        assert_eq!(s.validator().revocation_count(), 2);
        assert_eq!(s.validator().ring().len(), 1);
    }

    #[test]
    fn login_for_mints_a_short_access_token_capped_at_the_rules_lifetime() {
        let mut s = service(Plants::NONE);
        let access = TokenRules::default().lifetime_for(TokenType::Access);
        let short = s
            .login_for(t(0), &alice(), Permissions::empty(), Duration::from_secs(5))
            .unwrap();
        assert_eq!(short.access.exp, t(5));
        let long = s
            .login_for(t(0), &alice(), Permissions::empty(), access * 2)
            .unwrap();
        assert_eq!(long.access.exp, t(0).saturating_add(access));
        // Its refreshes are ordinary, and a reuse inside the leeway revokes the short token.
        let next = s.refresh(t(1), short.refresh.token.as_bytes()).unwrap();
        assert_eq!(next.access.exp, t(1).saturating_add(access));
        assert!(s.refresh(t(7), short.refresh.token.as_bytes()).is_err());
        assert!(feed_jtis(&s).contains(&&short.access.jti));
    }

    #[test]
    fn verify_key_debug_hides_the_key_bytes() {
        assert_eq!(
            format!("{:?}", VerifyKey::Hmac(SECRET.to_vec())),
            "VerifyKey::Hmac(..)"
        );
        assert_eq!(
            format!("{:?}", VerifyKey::PublicPem(b"-----BEGIN".to_vec())),
            "VerifyKey::PublicPem(..)"
        );
    }

    #[test]
    fn issuer_is_the_one_the_service_was_built_with() {
        let s = service(Plants::NONE);
        assert_eq!(s.issuer().key().kid(), Some(&kid("k1")));
        assert_eq!(s.issuer().key().alg(), Algorithm::HS256);
    }

    fn feed_jtis(s: &AuthService) -> Vec<&Jti> {
        s.feed_since(0)
            .iter()
            .filter_map(|(_, r)| match r {
                Revocation::Jti { jti, .. } => Some(jti),
                Revocation::User { .. } => None,
            })
            .collect()
    }

    fn user_cutoffs(s: &AuthService) -> Vec<Instant> {
        s.feed_since(0)
            .iter()
            .filter_map(|(_, r)| match r {
                Revocation::User { not_before, .. } => Some(*not_before),
                Revocation::Jti { .. } => None,
            })
            .collect()
    }

    /// A token minted in the second of a logout-everywhere is issued at the cut-off (so it
    /// is not born revoked); one minted once that second has passed is issued at its own
    /// time, whether or not the cut-off was pruned yet.
    #[test]
    fn only_a_login_inside_the_logout_second_is_issued_at_the_cutoff() {
        let mut s = service(Plants::NONE);
        let ttl = TokenRules::default().lifetime_for(TokenType::Access);
        let half = Duration::from_millis(500);
        s.logout_everywhere(t(5).saturating_add(half), &alice());
        let inside = s
            .login(t(5).saturating_add(half), &alice(), Permissions::empty())
            .unwrap();
        assert_eq!(inside.access.exp, t(6).saturating_add(ttl));
        let later = s.login(t(9), &alice(), Permissions::empty()).unwrap();
        assert_eq!(later.access.exp, t(9).saturating_add(ttl));
    }

    /// Housekeeping between a logout-everywhere and a login in the same second must keep
    /// the cut-off: dropped early, the login is issued at its own time, before the cut-off,
    /// and its tokens are born revoked.
    #[test]
    fn prune_keeps_a_cutoff_until_its_second_has_come() {
        let mut s = service(Plants::NONE);
        let ttl = TokenRules::default().lifetime_for(TokenType::Access);
        s.logout_everywhere(t(5).saturating_add(Duration::from_millis(500)), &alice());
        s.prune(t(5).saturating_add(Duration::from_millis(600)));
        let pair = s
            .login(
                t(5).saturating_add(Duration::from_millis(700)),
                &alice(),
                Permissions::empty(),
            )
            .unwrap();
        assert_eq!(pair.access.exp, t(6).saturating_add(ttl));
        assert!(
            s.validator()
                .clone()
                .validate(pair.access.token.as_bytes(), t(6), TokenType::Access)
                .is_ok(),
            "not born revoked"
        );
    }

    #[test]
    fn second_logout_in_the_same_second_without_a_mint_keeps_the_cutoff() {
        let mut s = service(Plants::NONE);
        s.logout_everywhere(t(5), &alice());
        s.logout_everywhere(t(5), &alice());
        assert_eq!(user_cutoffs(&s), vec![t(6), t(6)]);
    }

    #[test]
    fn prune_drops_a_user_cutoff_once_no_token_it_covers_can_validate() {
        let mut s = service(Plants::NONE);
        let jti = Jti::parse("j-1").unwrap();
        s.revoke(t(0), &jti, t(1));
        s.logout_everywhere(t(0), &alice());
        assert_eq!(feed_jtis(&s), vec![&jti]);
        assert_eq!(user_cutoffs(&s), vec![t(1)]);
        let rules = TokenRules::default();
        let longest = [TokenType::Access, TokenType::Refresh, TokenType::Service]
            .into_iter()
            .map(|ty| rules.lifetime_for(ty))
            .max()
            .unwrap_or_default();
        let dead_at = t(1).saturating_add(longest.saturating_add(rules.leeway()));
        s.prune(Instant::from_nanos(dead_at.as_nanos() - 1));
        assert_eq!(user_cutoffs(&s), vec![t(1)], "still needed just before");
        s.prune(dead_at);
        assert!(s.feed_since(0).is_empty(), "dropped at the bound");
        assert_eq!(s.feed_end(), 2, "the cursor position survives the drop");
    }
}

#[cfg(all(test, feature = "planted-bugs"))]
mod planted_tests {
    use super::*;
    use crate::plant::Plant;
    use crate::token::Algorithm;

    const SECRET: &[u8] = b"auth-service-test-secret-0123456789";

    #[test]
    fn planted_refresh_reusable_reuse_succeeds_and_revokes_nothing() {
        let t = |s: u64| Instant::from_unix_secs(1_700_000_000 + s);
        let alice = UserId::parse("alice").unwrap();
        let run = |plants: Plants| {
            let key = SigningKey::hmac(None, Algorithm::HS256, SECRET).unwrap();
            let mut ring = KeyRing::new();
            ring.add_hmac(None, Algorithm::HS256, SECRET).unwrap();
            let rules = TokenRules::default();
            let mut s = AuthService::new(Issuer::new(key, rules.clone()), ring, rules, plants);
            let first = s.login(t(0), &alice, Permissions::empty()).unwrap();
            s.refresh(t(1), first.refresh.token.as_bytes()).unwrap();
            let reuse = s
                .refresh(t(2), first.refresh.token.as_bytes())
                .map(|p| p.family);
            (reuse, s.feed_end(), first.family)
        };
        let (reuse, feed, _) = run(Plants::NONE);
        assert!(matches!(
            reuse,
            Err(AuthError::Refresh(RefreshError::Reused { .. }))
        ));
        assert_eq!(feed, 4);
        let (reuse, feed, family) = run(Plants::only(Plant::RefreshReusable));
        assert_eq!(reuse.ok(), Some(family));
        assert_eq!(feed, 0);
    }
}
