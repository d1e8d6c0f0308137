//! The auth node: the `AuthService` (login, refresh, OAuth, revocation feed), the HMAC keys
//! it publishes and rotates, its skewed clock and its outages, and the attacker's issuer that
//! knows the same keys. It owns the identity provider's state; it never talks to the gateway
//! or the clients itself (the world carries its answers, its feed and its key ring over the
//! network) and never judges what it does (the checkers do).

use std::collections::BTreeSet;
use std::time::Duration;

use gauntlet_core::auth_service::{AuthService, VerifyKey};
use gauntlet_core::oauth::OAuthConfig;
use gauntlet_core::token::attacks::{AttackKeys, AttackSigner};
use gauntlet_core::token::{Algorithm, Issuer, KeyRing, Revocation, SigningKey, TokenRules};
use gauntlet_core::{Instant, Kid, Plants};

use jsonwebtoken::EncodingKey;

use crate::faults::FaultPlan;
use crate::rng::SimRng;
use crate::workload;

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
    /// An attacker who holds the signing keys: mints expired and short-lived tokens.
    pub(super) attacker_issuer: Issuer,
    /// Refresh tokens presented so far: one accepted a second time is a misbehaving service.
    pub(super) refreshed: BTreeSet<String>,
}

/// What a key rotation did.
pub(super) enum Rotation {
    /// The new key could not be built (never, for the generated ids and secrets).
    Skipped,
    /// The auth service refused it: a violation, since current + previous always fit.
    Refused(String),
    /// Rotated: the key retired to make room, if any, and the ring the gateway gets now.
    Rotated {
        retired: Option<Kid>,
        ring: Result<KeyRing, String>,
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
        let ring = ring_of(&keys, None)?;

        // The issuer's own access lifetime, drawn per seed: half the seeds keep the
        // environment's 5 min, the others mint 30 s to 60 s tokens, so expiry, refresh and
        // tokens inside the leeway all happen within a one-minute run. The gateway's rules
        // (the cap on any token's age) stay the environment's.
        let mut auth_rules = rules.clone();
        let mut lifetime_rng = root.fork("lifetimes");
        if lifetime_rng.chance(0.5) {
            auth_rules.lifetimes.test.access_secs = lifetime_rng.range(30..60);
        }
        let service = AuthService::new(
            Issuer::new(key, auth_rules.clone()),
            ring.clone(),
            auth_rules,
            plants,
        )
        .with_oauth(&seed.to_le_bytes().repeat(4), OAuthConfig::default())
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
            attacker_issuer: Issuer::new(attacker_key, rules.clone()),
            refreshed: BTreeSet::new(),
        };
        Ok((node, ring))
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
    pub(super) fn ring(&self) -> Result<KeyRing, String> {
        ring_of(&self.keys, self.retired.as_ref())
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
        Some((previous, self.ring()))
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
                Rotation::Rotated {
                    retired: rotation.retired,
                    ring: self.ring(),
                }
            }
            Err(e) => Rotation::Refused(format!("key rotation {n} refused: {e:?}")),
        }
    }
}

fn hs_secret(n: u32) -> Vec<u8> {
    format!("gauntlet-sim-hs256-key-{n:04}-0123456789abcdef").into_bytes()
}

/// The gateway's ring as a JWKS reload would build it: a new ring, not an edit of the old,
/// with `retired` flagged.
fn ring_of(keys: &[(Kid, Vec<u8>)], retired: Option<&Kid>) -> Result<KeyRing, String> {
    let mut ring = KeyRing::new();
    for (kid, secret) in keys {
        ring.add_hmac(Some(kid.clone()), Algorithm::HS256, secret)
            .map_err(|e| e.to_string())?;
    }
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
