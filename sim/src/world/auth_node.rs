//! The auth node: the `AuthService` (login, refresh, OAuth, revocation feed), the HMAC keys
//! it rotates, the JWK Set it publishes them in beside the partner issuers' keys
//! (`partner_keys`), its skewed clock and its outages, and the attacker's issuer that knows
//! the same keys. It owns the identity provider's state; it never talks to the gateway or the
//! clients itself (the world carries its answers, its feed and its key ring over the network)
//! and never judges what it does (the checkers do), beyond the one build only it sees: a
//! reload whose document carries a weak key (`AUTH-KEY-STRENGTH`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gauntlet_core::auth_service::{AuthError, AuthService, TokenResponse, VerifyKey};
use gauntlet_core::oauth::{
    AuthorizationCode, AuthorizeRequest, CallbackRequest, OAuthConfig, Store,
};
use gauntlet_core::token::attacks::{AttackKeys, AttackSigner};
use gauntlet_core::token::{
    Algorithm, Environment, Issuer, KeyRing, Revocation, SigningKey, TokenRules,
};
use gauntlet_core::{Instant, Kid, Plants};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::faults::FaultPlan;
use crate::rng::SimRng;
use crate::workload;

use super::partner_keys::{self, PartnerKeys, Weak};

/// One rotation in this many (the first, the fifth, ...) is published first with a weak key
/// beside the good ones, which the gateway's loader must refuse: a reload of a storm of
/// rotations, or the first single rotation of a run, runs `AUTH-KEY-STRENGTH`'s path.
const WEAK_RELOAD_EVERY: u32 = 4;

pub(super) struct AuthNode {
    pub(super) service: AuthService,
    /// How much of the revocation feed the checkers have been told of.
    told: usize,
    /// In an outage: calls fail and the feed is not pushed.
    pub(super) down: bool,
    /// The auth service's clock is `skew` ahead of (or behind) true time.
    skew: Duration,
    skew_ahead: bool,
    /// The keys the auth service publishes (current + previous), oldest first.
    keys: Vec<(Kid, Vec<u8>)>,
    /// The previous key, when the operator retired it early (a suspected compromise): it stays
    /// in the published ring, flagged, so its tokens fail with `key_retired`, until the next
    /// rotation removes it.
    retired: Option<Kid>,
    next_key: u32,
    /// The partner issuers and decoys of the published JWK Set.
    pub(super) partners: PartnerKeys,
    /// The ring built from the document published last (what a restarted gateway loads).
    published: KeyRing,
    /// An attacker who holds the signing keys: mints expired and short-lived tokens.
    pub(super) attacker_issuer: Issuer,
    /// Refresh tokens presented so far: one accepted a second time is a misbehaving service.
    pub(super) refreshed: Presented,
    /// The access and refresh lifetimes the protocol gives this run's issuer
    /// (`AUTH-LIFETIMES`): the environment's, or the seed's shorter access lifetime.
    pub(super) lifetimes: (Duration, Duration),
    /// The OAuth stores' lifetimes and capacities the service runs with.
    oauth: OAuthConfig,
    /// The OAuth flows started and not yet ended, as the service must still hold them.
    pending: Pending,
}

/// The states and codes of the flows the world started, by when: an entry leaves when its
/// lifetime is over, and a callback that reaches a live code ends what the protocol says it
/// ends. A redeemed code consumes its state (`OAUTH-STATE`); a failed check burns the code
/// (`OAUTH-CODE-BURN`), and the protocol says nothing of that code's state, so the service may
/// drop it or hold it to the end of its lifetime. The count therefore keeps such states
/// among the ones the service may hold, and a "full" refusal with fewer entries than it
/// counts is wrong.
#[derive(Default)]
pub(super) struct Pending {
    /// Each state with its flow's code.
    states: Started,
    /// Each code with its flow's state.
    codes: Started,
    /// States whose code was burnt, counted by the whole second their flow started in.
    /// Nothing the world sees ends one before its lifetime does, so a count per second is
    /// all they need: at most one entry per second of a state's lifetime, where one entry
    /// each held 590 000 by the end of a 10 000-user run.
    burnt: BTreeMap<u64, usize>,
}

/// One store's entries by key digest, each with the digest of its flow's other half, and
/// the same entries by start time, so that dropping the ones past their lifetime visits
/// only those: a 10 000-user run starts flows by the hundred thousand, and a scan of every
/// entry per start made it quadratic. Keys are kept as 16-byte digests ([`digest`]), not
/// strings, since a store's lifetime holds that many.
#[derive(Default)]
struct Started {
    at: BTreeMap<[u8; 16], (Instant, [u8; 16])>,
    by_time: BTreeSet<(Instant, [u8; 16])>,
}

impl Started {
    fn insert(&mut self, key: [u8; 16], other: [u8; 16], now: Instant) {
        if let Some((old, _)) = self.at.insert(key, (now, other)) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((now, key));
    }

    /// Removes `key` when its other half is `other` (any, when `None`); when it started and
    /// the other half it had.
    fn remove(&mut self, key: &[u8; 16], other: Option<&[u8; 16]>) -> Option<(Instant, [u8; 16])> {
        let (at, had) = *self.at.get(key)?;
        if other.is_some_and(|o| *o != had) {
            return None;
        }
        self.at.remove(key);
        self.by_time.remove(&(at, *key));
        Some((at, had))
    }

    /// Drops the entries started more than `ttl` before `now`.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some((at, _)) = self.by_time.first() {
            if now.saturating_since(*at) <= ttl {
                break;
            }
            if let Some((_, key)) = self.by_time.pop_first() {
                self.at.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.at.len()
    }
}

impl Pending {
    /// A flow started at `now` with `state` and `code`; entries past their lifetime go.
    fn started(&mut self, now: Instant, state: &str, code: &str, oauth: &OAuthConfig) {
        self.expire(now, oauth);
        let (state, code) = (digest(state), digest(code));
        self.states.insert(state, code, now);
        self.codes.insert(code, state, now);
    }

    fn expire(&mut self, now: Instant, oauth: &OAuthConfig) {
        self.states.expire(now, oauth.state_ttl);
        self.codes.expire(now, oauth.code_ttl);
        // A second's count goes once its last instant is past the lifetime: never early.
        while let Some((&second, _)) = self.burnt.first_key_value() {
            let last = Instant::from_unix_secs(second.saturating_add(1));
            if now.saturating_since(last) <= oauth.state_ttl {
                break;
            }
            self.burnt.pop_first();
        }
    }

    /// A callback presented `code`, and `redeemed` it or not. A live code is redeemed or
    /// burnt either way. Its flow's state is consumed by a redemption; a burnt code's state
    /// is one the service may still hold. A state a later flow took over stays as it is.
    fn ended(&mut self, code: &str, redeemed: bool) {
        let code = digest(code);
        let Some((_, state)) = self.codes.remove(&code, None) else {
            return;
        };
        if let Some((started, _)) = self.states.remove(&state, Some(&code))
            && !redeemed
        {
            *self.burnt.entry(started.unix_secs()).or_default() += 1;
        }
    }

    /// The entries of `store` still within their lifetime at `now`.
    fn live(&mut self, now: Instant, store: Store, oauth: &OAuthConfig) -> usize {
        self.expire(now, oauth);
        match store {
            Store::States => self.states.len() + self.burnt.values().sum::<usize>(),
            Store::Codes => self.codes.len(),
        }
    }
}

/// The first 16 bytes of `key`'s SHA-256: what the world's sets of OAuth entries and
/// presented tokens keep of each. Two keys of one run meeting in 128 bits is not a thing to
/// plan for.
fn digest(key: &str) -> [u8; 16] {
    let full = Sha256::digest(key.as_bytes());
    let mut d = [0; 16];
    d.copy_from_slice(&full[..16]);
    d
}

/// A set of tokens by [`digest`]. A run presents hundreds of thousands of refresh tokens, and
/// the set never shrinks (a refresh token outlives the run), so it keeps 16 bytes of each
/// instead of the token.
#[derive(Default)]
pub(super) struct Presented(BTreeSet<[u8; 16]>);

impl Presented {
    pub(super) fn insert(&mut self, token: &str) {
        self.0.insert(digest(token));
    }

    pub(super) fn contains(&self, token: &str) -> bool {
        self.0.contains(&digest(token))
    }
}

/// What a key rotation did.
pub(super) enum Rotation {
    /// The new key could not be built (never, for the generated ids and secrets).
    Skipped,
    /// The auth service refused it: a violation, since current + previous always fit.
    Refused(String),
    /// Rotated: the key retired to make room, if any, the ring the gateway gets now, and,
    /// when the rotation was first published with a weak key, how building a ring from that
    /// document was judged (`Err` says how it broke `AUTH-KEY-STRENGTH`).
    Rotated {
        retired: Option<Kid>,
        ring: Result<KeyRing, String>,
        strength: Option<Result<(), String>>,
    },
}

impl AuthNode {
    /// The auth service of a run of `seed`, and the ring the gateway starts with.
    pub(super) fn new(
        seed: u64,
        faults: &FaultPlan,
        rules: &TokenRules,
        root: &SimRng,
        plants: Plants,
    ) -> Result<(Self, KeyRing), String> {
        let kid = Kid::parse("hs-0").ok_or("kid")?;
        let key = SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, &hs_secret(0))
            .map_err(|e| e.to_string())?;
        let attacker_key = SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, &hs_secret(0))
            .map_err(|e| e.to_string())?;
        let keys = vec![(kid, hs_secret(0))];
        let partners = PartnerKeys::new(rules)?;
        let ring = ring_of(&document(&keys, &partners, None), None)?;

        // The issuer's own access lifetime, drawn per seed: half the seeds keep the
        // environment's 5 min, the others mint 30 s to 60 s tokens, so expiry, refresh and
        // tokens inside the leeway all happen within a one-minute run. The gateway's rules
        // (the cap on any token's age) stay the environment's.
        let mut oauth = OAuthConfig::default();
        if let Some(t) = super::tight_bounds(seed) {
            oauth.max_states = t.oauth_entries;
            oauth.max_codes = t.oauth_entries;
        }
        let mut auth_rules = rules.clone();
        let mut lifetime_rng = root.fork("lifetimes");
        let (mut access, refresh) = spec_lifetimes(rules.environment);
        if lifetime_rng.chance(0.5) {
            let secs = lifetime_rng.range(30..60);
            auth_rules.lifetimes.test.access_secs = secs;
            access = Duration::from_secs(secs);
        }
        let service = AuthService::new(
            Issuer::new(key, auth_rules.clone()),
            ring.clone(),
            auth_rules,
            plants,
        )
        .with_oauth(&seed.to_le_bytes().repeat(4), oauth.clone())
        .map_err(|e| e.to_string())?;
        let skew_ms = faults.draw_clock_skew_ms(&mut root.fork("skew"));
        let node = AuthNode {
            service,
            told: 0,
            down: false,
            skew: Duration::from_millis(skew_ms.unsigned_abs()),
            skew_ahead: skew_ms >= 0,
            keys,
            retired: None,
            next_key: 1,
            partners,
            published: ring.clone(),
            attacker_issuer: Issuer::new(attacker_key, rules.clone()),
            refreshed: Presented::default(),
            lifetimes: (access, refresh),
            oauth,
            pending: Pending::default(),
        };
        Ok((node, ring))
    }

    /// `authorize` on the service, remembering the flow it starts.
    pub(super) fn authorize(
        &mut self,
        now: Instant,
        req: &AuthorizeRequest<'_>,
    ) -> Result<AuthorizationCode, AuthError> {
        let result = self.service.authorize(now, req);
        if let Ok(code) = &result {
            self.pending
                .started(now, req.state, &code.code, &self.oauth);
        }
        result
    }

    /// `callback` on the service, forgetting what it ends: its code (redeemed, or burnt by a
    /// failed check), and the code's state when it redeemed it.
    pub(super) fn callback(
        &mut self,
        now: Instant,
        req: &CallbackRequest<'_>,
    ) -> Result<TokenResponse, AuthError> {
        let result = self.service.callback(now, req);
        self.pending.ended(req.code, result.is_ok());
        result
    }

    /// At most how many live entries `store` holds at `now`, and its capacity.
    pub(super) fn pending(&mut self, now: Instant, store: Store) -> (usize, usize) {
        let cap = match store {
            Store::States => self.oauth.max_states,
            Store::Codes => self.oauth.max_codes,
        };
        (self.pending.live(now, store, &self.oauth), cap)
    }

    /// The auth service's clock when true time is `now`.
    pub(super) fn now(&self, now: Instant) -> Instant {
        if self.skew_ahead {
            now.saturating_add(self.skew)
        } else {
            now.saturating_sub(self.skew)
        }
    }

    /// The ring the auth service publishes now (what a restarted gateway loads).
    pub(super) fn ring(&self) -> KeyRing {
        self.published.clone()
    }

    /// Builds the ring of the document the keys now make, as a JWKS reload would, and keeps
    /// it as the published one.
    fn publish(&mut self) -> Result<KeyRing, String> {
        let doc = document(&self.keys, &self.partners, None);
        let ring = ring_of(&doc, self.retired.as_ref())?;
        self.published = ring.clone();
        Ok(ring)
    }

    /// The document the keys now make with the weak key `weak` beside the good ones, built
    /// into a ring and judged: it must be refused as weak.
    fn weak_reload(&self, weak: Weak) -> Result<(), String> {
        let doc = document(
            &self.keys,
            &self.partners,
            Some(self.partners.weak_entry(weak)),
        );
        partner_keys::judge_weak(weak, KeyRing::from_jwks(&doc))
    }

    /// Retires the previous key ahead of its rotation (`AUTH-KEY-RETIRED`): the kid retired
    /// and the ring the gateway gets now. `None` when there is no previous key, or it is
    /// retired already.
    pub(super) fn retire_previous(&mut self) -> Option<(Kid, Result<KeyRing, String>)> {
        let [(previous, _), _] = self.keys.as_slice() else {
            return None;
        };
        if self.retired.as_ref() == Some(previous) {
            return None;
        }
        let previous = previous.clone();
        self.retired = Some(previous.clone());
        Some((previous, self.publish()))
    }

    /// The current signing key's kid, and the retired key's while the ring still holds it:
    /// what the attack table's cases depend on.
    pub(super) fn attack_ring(&self) -> Option<(&Kid, Option<&Kid>)> {
        let (kid, _) = self.keys.last()?;
        let retired = self
            .retired
            .as_ref()
            .filter(|r| self.keys.iter().any(|(k, _)| k == *r));
        Some((kid, retired))
    }

    /// What an attacker holding the current signing key knows for the attack table: that
    /// key, the ring's RSA public key (for key confusion) and that the ring holds several keys.
    pub(super) fn attack_keys(&self) -> Option<AttackKeys> {
        let (kid, secret) = self.keys.last()?;
        Some(AttackKeys {
            primary: AttackSigner {
                kid: Some(kid.as_str().to_string()),
                alg: Algorithm::HS256,
                key: EncodingKey::from_secret(secret).ok()?,
            },
            others: Vec::new(),
            rsa_public_pem: Some((
                Some(workload::RS_KID.to_string()),
                workload::RS_PUBLIC_PEM.to_vec(),
            )),
            ec_public_der: None,
            retired: self.retired_signer(),
            several_keys: true,
        })
    }

    /// The retired key as the attack table signs with it (its `retired_key` case).
    fn retired_signer(&self) -> Option<AttackSigner> {
        let retired = self.retired.as_ref()?;
        let (kid, secret) = self.keys.iter().find(|(k, _)| k == retired)?;
        Some(AttackSigner {
            kid: Some(kid.as_str().to_string()),
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret).ok()?,
        })
    }

    /// Revocations issued since the checkers were last told, now counted as told.
    pub(super) fn untold_revocations(&mut self) -> Vec<Revocation> {
        let end = self.service.feed_end();
        if end == self.told {
            return Vec::new();
        }
        let new = self
            .service
            .feed_since(self.told)
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        self.told = end;
        new
    }

    /// Rotates the signing key (the attacker learns the new one too) and builds the ring it
    /// now publishes (current + previous, afresh, as a JWKS reload would).
    pub(super) fn rotate_key(&mut self) -> Rotation {
        let n = self.next_key;
        self.next_key += 1;
        let Some(kid) = Kid::parse(&format!("hs-{n}")) else {
            return Rotation::Skipped;
        };
        let secret = hs_secret(n);
        let (Ok(key), Ok(attacker)) = (
            SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, &secret),
            SigningKey::hmac(Some(kid.clone()), Algorithm::HS256, &secret),
        ) else {
            return Rotation::Skipped;
        };
        match self
            .service
            .rotate_key(key, &VerifyKey::Hmac(secret.clone()))
        {
            Ok(rotation) => {
                if let Some(removed) = &rotation.retired {
                    self.keys.retain(|k| k.0 != *removed);
                }
                self.keys.push((kid, secret));
                self.retired = self
                    .retired
                    .take()
                    .filter(|r| self.keys.iter().any(|(k, _)| k == r));
                self.attacker_issuer.replace_key(attacker);
                let strength = (n % WEAK_RELOAD_EVERY == 1).then(|| {
                    self.weak_reload(if (n / WEAK_RELOAD_EVERY).is_multiple_of(2) {
                        Weak::Secret
                    } else {
                        Weak::Rsa
                    })
                });
                Rotation::Rotated {
                    retired: rotation.retired,
                    ring: self.publish(),
                    strength,
                }
            }
            Err(e) => Rotation::Refused(format!("key rotation {n} refused: {e:?}")),
        }
    }
}

/// docs/protocol.md's lifetimes table (`AUTH-LIFETIMES`), written out here rather than read
/// from the configuration it judges: (access, refresh) per environment.
fn spec_lifetimes(env: Environment) -> (Duration, Duration) {
    let (minutes, days) = match env {
        Environment::Prod => (15, 7),
        Environment::Staging => (30, 14),
        Environment::Dev => (120, 30),
        Environment::Test => (5, 1),
    };
    (
        Duration::from_secs(minutes * 60),
        Duration::from_secs(days * 24 * 60 * 60),
    )
}

fn hs_secret(n: u32) -> Vec<u8> {
    format!("gauntlet-sim-hs256-key-{n:04}-0123456789abcdef").into_bytes()
}

/// The JWK Set (RFC 7517) the auth node publishes: its HMAC keys (`oct`, oldest first), the
/// partners' and decoys' keys, and `extra` last.
fn document(keys: &[(Kid, Vec<u8>)], partners: &PartnerKeys, extra: Option<&Value>) -> Vec<u8> {
    let own = keys.iter().map(|(kid, secret)| {
        json!({
            "kty": "oct",
            "kid": kid.as_str(),
            "use": "sig",
            "alg": Algorithm::HS256.name(),
            "k": URL_SAFE_NO_PAD.encode(secret),
        })
    });
    let entries: Vec<Value> = own
        .chain(partners.entries().cloned())
        .chain(extra.cloned())
        .collect();
    // A document of plain values always serialises; an empty one would fail to load.
    serde_json::to_vec(&json!({ "keys": entries })).unwrap_or_default()
}

/// The gateway's ring as a JWKS reload builds it from `doc`: a new ring, not an edit of the
/// old, with `retired` flagged, and the gateway's own service key (its PEM, from its
/// configuration rather than the document: the key-confusion attack signs with those bytes).
fn ring_of(doc: &[u8], retired: Option<&Kid>) -> Result<KeyRing, String> {
    let mut ring = KeyRing::from_jwks(doc).map_err(|e| format!("published JWKS: {e}"))?;
    if let Some(kid) = retired {
        ring.retire(kid).map_err(|e| e.to_string())?;
    }
    ring.add_public_pem(
        Kid::parse(workload::RS_KID),
        Algorithm::RS256,
        workload::RS_PUBLIC_PEM,
    )
    .map_err(|e| e.to_string())?;
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_protocols_lifetimes_are_what_each_environment_mints() {
        use gauntlet_core::UserId;
        use gauntlet_core::auth_service::AuthService;
        use gauntlet_core::permissions::Permissions;

        let secret = hs_secret(0);
        let t0 = Instant::from_unix_secs(1_800_000_000);
        for env in [
            Environment::Prod,
            Environment::Staging,
            Environment::Dev,
            Environment::Test,
        ] {
            let rules = TokenRules {
                environment: env,
                ..TokenRules::default()
            };
            let key = SigningKey::hmac(None, Algorithm::HS256, &secret)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let mut ring = KeyRing::new();
            ring.add_hmac(None, Algorithm::HS256, &secret)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let mut s =
                AuthService::new(Issuer::new(key, rules.clone()), ring, rules, Plants::NONE);
            let alice = UserId::parse("alice").unwrap_or_else(|| unreachable!());
            let pair = s
                .login(t0, &alice, Permissions::empty())
                .unwrap_or_else(|e| unreachable!("{e}"));
            let (access, refresh) = spec_lifetimes(env);
            assert_eq!(pair.access.exp, t0.saturating_add(access), "{env:?}");
            assert_eq!(pair.refresh.exp, t0.saturating_add(refresh), "{env:?}");
        }
        assert_eq!(
            spec_lifetimes(Environment::Test),
            (Duration::from_secs(300), Duration::from_secs(86_400))
        );
    }

    #[test]
    fn the_published_document_builds_the_gateways_ring_with_the_retired_key_flagged() {
        let rules = {
            let mut config = gauntlet_core::Config::default();
            config.tokens.environment = gauntlet_core::token::Environment::Test;
            config.tokens
        };
        let partners = PartnerKeys::new(&rules).unwrap_or_else(|e| unreachable!("{e}"));
        let kid = |n: u32| Kid::parse(&format!("hs-{n}")).unwrap_or_else(|| unreachable!());
        let keys = vec![(kid(1), hs_secret(1)), (kid(2), hs_secret(2))];
        let ring = ring_of(&document(&keys, &partners, None), Some(&kid(1)))
            .unwrap_or_else(|e| unreachable!("{e}"));
        // Two HMAC keys, four partners, the service key; no decoy.
        assert_eq!(ring.len(), 7);
        let rs = Kid::parse(workload::RS_KID).unwrap_or_else(|| unreachable!());
        assert!(ring.contains(&kid(1)) && ring.contains(&kid(2)) && ring.contains(&rs));
        let now = Instant::from_unix_secs(1_800_000_000);
        let req = gauntlet_core::token::MintRequest {
            sub: gauntlet_core::UserId::parse("u1").unwrap_or_else(|| unreachable!()),
            token_type: gauntlet_core::token::TokenType::Access,
            permissions: gauntlet_core::permissions::Permissions::empty(),
            ttl: Duration::from_secs(60),
            family: None,
            email: None,
            svc_id: None,
        };
        let verdict = |n: u32| {
            let key = SigningKey::hmac(Some(kid(n)), Algorithm::HS256, &hs_secret(n))
                .unwrap_or_else(|e| unreachable!("{e}"));
            let m = Issuer::new(key, rules.clone())
                .mint(now, &req)
                .unwrap_or_else(|e| unreachable!("{e}"));
            let access = gauntlet_core::token::TokenType::Access;
            gauntlet_core::token::validate(m.token.as_bytes(), now, &ring, &rules, access)
                .map(|c| c.sub().clone())
        };
        assert_eq!(verdict(2), Ok(req.sub.clone()));
        assert_eq!(
            verdict(1),
            Err(gauntlet_core::token::TokenError::KeyRetired)
        );
        // A weak key beside them: the whole document is refused.
        let weak = document(&keys, &partners, Some(partners.weak_entry(Weak::Secret)));
        assert_eq!(
            KeyRing::from_jwks(&weak).err(),
            Some(gauntlet_core::token::KeyError::WeakSecret { len: 31 })
        );
    }

    #[test]
    fn pending_flows_end_at_a_callback_or_their_lifetime() {
        let oauth = OAuthConfig::default();
        let t0 = Instant::from_unix_secs(1_800_000_000);
        let mut p = Pending::default();
        for k in 1..=4 {
            p.started(t0, &format!("s{k}"), &format!("c{k}"), &oauth);
        }
        // A redemption ends its flow, code and state.
        p.ended("c1", true);
        // A code nobody issued, or one already ended, ends nothing.
        p.ended("c9", false);
        p.ended("c1", true);
        // A burnt code goes; its state is one the service may still hold.
        p.ended("c3", false);
        // A flow that took over s2's state keeps it when the older flow's code is redeemed.
        p.started(t0, "s2", "c5", &oauth);
        p.ended("c2", true);
        assert_eq!(p.live(t0, Store::States, &oauth), 3);
        assert_eq!(p.live(t0, Store::Codes, &oauth), 2);
        // Codes live 60 s, states 10 min, a burnt code's state too.
        let later = t0.saturating_add(oauth.code_ttl + Duration::from_secs(1));
        assert_eq!(p.live(later, Store::Codes, &oauth), 0);
        assert_eq!(p.live(later, Store::States, &oauth), 3);
        // At the lifetime's last instant the burnt state may still be held; a second after
        // its flow's second ends, it is gone with the rest.
        let end = t0.saturating_add(oauth.state_ttl);
        assert_eq!(p.live(end, Store::States, &oauth), 3);
        let gone = t0.saturating_add(oauth.state_ttl + Duration::from_secs(2));
        assert_eq!(p.live(gone, Store::States, &oauth), 0);
        // A new flow drops what its lifetime ended.
        p.started(gone, "s6", "c6", &oauth);
        assert_eq!((p.states.len(), p.codes.len(), p.burnt.len()), (1, 1, 0));
        assert_eq!((p.states.by_time.len(), p.codes.by_time.len()), (1, 1));
    }
}
