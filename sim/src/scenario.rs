//! Scenarios: everything that defines one simulated run besides the code under test, as a
//! file the shrinker writes and `gauntlet sim --scenario FILE` replays.
//!
//! A scenario is the seed, the population, the duration, the fault plan and the operation
//! mix (how often each client operation is chosen). Zeroing a weight removes that operation
//! from the run, which is how the shrinker minimises a failing workload.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::faults::FaultPlan;

/// A client operation. Honest ones are what real users do; the others are attacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Send a `user_message` (starting an agent run).
    Message,
    /// Stop one of the client's own runs.
    StopOwnRun,
    /// Subscribe to one of the client's own threads.
    Subscribe,
    /// `ping` or `heartbeat`.
    Ping,
    /// Rotate the refresh token.
    Refresh,
    /// Two refreshes with the same token at once (exactly one may win).
    ConcurrentRefresh,
    /// `reauth` with the current access token.
    Reauth,
    /// Open more tabs, sometimes past the per-user cap.
    ExtraTabs,
    /// Close one connection.
    CloseTab,
    /// Revoke the access token and drop every connection.
    Logout,
    /// Revoke every token of the user.
    LogoutEverywhere,
    /// Log in through OAuth code + PKCE instead of the password path.
    OAuthLogin,
    /// A system broadcast (only the operator user holds the permission).
    Broadcast,
    /// The auth service rotates its signing key: usually once or twice, sometimes in a
    /// storm far past the ring's size. Each rotation replaces the gateway's key ring.
    RotateKeys,
    /// A password change: logout everywhere, then log in again at once (the new token is
    /// minted within the same second as the logout); an old tab reconnects later with the
    /// token from before the logout.
    PasswordChange,
    /// The operator retires the previous signing key ahead of its rotation (a suspected
    /// compromise): the ring keeps it, flagged, and its tokens fail with `key_retired`.
    RetireKey,
    /// Attack: a token with a tampered signature.
    Forged,
    /// Attack: `alg: none` in any case, with or without a signature.
    AlgNone,
    /// Attack: HS256 signed with the RSA public key's PEM as secret.
    KeyConfusion,
    /// Attack: a real but expired token.
    Expired,
    /// Attack: reuse a cached token after it expired.
    StaleCached,
    /// Attack: a token after its own logout.
    Revoked,
    /// Attack: a refresh token as an access token.
    RefreshAsAccess,
    /// Attack: stop other users' runs.
    CrossRun,
    /// Attack: post into or subscribe to other users' threads, or name a thread after a user.
    CrossThread,
    /// Attack: flood past the rate limit.
    Flood,
    /// Attack: oversized, binary, invalid UTF-8 and malformed frames.
    BadFrames,
    /// Attack: an OAuth flow with one thing wrong: a forged state, a replayed code, a wrong
    /// or malformed verifier, the `plain` method, another client or redirect URI, or a
    /// callback past the code's TTL.
    OAuthAttack,
    /// Attack: present an already-used refresh token.
    RefreshReuse,
    /// Attack: ask for more tickets than the per-user bound and redeem none.
    TicketFlood,
    /// Attack: reuse a used refresh token while an access token of the family is past its
    /// `exp` but inside the leeway, then present that access token.
    LateReuse,
    /// Attack: `reauth` with another user's valid access token (stolen), on an open
    /// connection of one's own.
    CrossReauth,
    /// Attack: `subscribe_thread` to a thread another user really owns.
    CrossSubscribe,
    /// Attack: present a ticket that a handshake already redeemed (one's own or another
    /// user's).
    TicketReplay,
    /// Attack: a valid token from an `Origin` that is not on the allow-list (missing, foreign,
    /// an allowed origin with a suffix, another scheme or letter case).
    OriginSpoof,
    /// Attack: flood WebSocket ping control frames past the rate limit.
    ControlFlood,
    /// Attack: one case of the shared token attack table (malformed structure, forbidden and
    /// critical headers, unknown `kid`, wrong `iss`/`aud`, missing and ill-typed claims, bad
    /// times and permissions, oversized), signed with the current key: each must be refused
    /// with the code the table names.
    TableAttack,
    /// Attack: an upgrade request the gateway must refuse before it judges any credential,
    /// though it carries the client's valid token: another path, too many or too large
    /// headers, a `?token=` while query tokens are off, a `jwt.<token>` subprotocol offered
    /// without `jwt` beside it.
    BadHandshake,
    /// Envelopes: `message_id`s (which direct replies must echo), one over the length bound,
    /// a `user_id` naming another user, a `broadcast` from a user without the permission, and
    /// the request bounds: content one byte over, one run more than may be in progress.
    EnvelopeAbuse,
    /// Attack: ask for a ticket and present it only after its lifetime is over.
    LateTicket,
    /// Ask the issuer for tokens at and past the claim bounds (`email`, `svc_id`): what it
    /// mints must validate with those claims, and what it refuses must break a claim rule.
    MintEdge,
    /// A client stuck in a refresh loop: one family rotated until the auth service refuses it
    /// as exhausted, which must happen exactly at the per-family token bound.
    RefreshStorm,
    /// Attack: a token minted 31 to 70 s ahead (its `nbf` past the leeway, for the later half
    /// its `iat` past the allowance too), presented at once (it must be refused
    /// `not_yet_valid` or `issued_in_future`) and again once valid (it must then be accepted:
    /// a rejection is never cached).
    EarlyToken,
    /// A token signed by another key of the published JWK Set: a partner issuer's (ES256,
    /// ES384, EdDSA or PS256) for one's own user, which must be accepted as that user, or a
    /// decoy's the ring must skip (`use: enc`, `key_ops` without `verify`), which must be
    /// refused `unknown_key`.
    PartnerToken,
}

impl Op {
    /// Whether the operation is an attack (drawn by adversaries only).
    pub fn is_attack(self) -> bool {
        self >= Op::Forged
    }
}

/// How often each operation is drawn (relative weights; 0 = never).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mix(pub BTreeMap<Op, u32>);

impl Default for Mix {
    fn default() -> Self {
        use Op::*;
        let w = [
            (Message, 40),
            (StopOwnRun, 4),
            (Subscribe, 4),
            (Ping, 8),
            (Refresh, 4),
            (ConcurrentRefresh, 1),
            (Reauth, 3),
            (ExtraTabs, 3),
            (CloseTab, 4),
            (Logout, 1),
            (LogoutEverywhere, 1),
            (OAuthLogin, 2),
            (Broadcast, 1),
            (Forged, 3),
            (AlgNone, 3),
            (KeyConfusion, 3),
            (Expired, 3),
            (StaleCached, 3),
            (Revoked, 4),
            (RefreshAsAccess, 2),
            (CrossRun, 4),
            (CrossThread, 4),
            (Flood, 2),
            (BadFrames, 3),
            // Eight attacks share it: each runs as often as each of the first three did at 3.
            (OAuthAttack, 8),
            (RefreshReuse, 3),
            (RotateKeys, 1),
            (PasswordChange, 1),
            (RetireKey, 1),
            (TicketFlood, 2),
            (LateReuse, 8),
            (CrossReauth, 3),
            (CrossSubscribe, 3),
            (TicketReplay, 3),
            (OriginSpoof, 3),
            (ControlFlood, 2),
            (TableAttack, 8),
            (BadHandshake, 3),
            (EnvelopeAbuse, 4),
            (LateTicket, 2),
            (MintEdge, 2),
            (RefreshStorm, 3),
            (EarlyToken, 3),
            (PartnerToken, 3),
        ];
        Mix(w.into_iter().collect())
    }
}

impl Mix {
    /// The weight of `op`.
    pub fn weight(&self, op: Op) -> u32 {
        self.0.get(&op).copied().unwrap_or(0)
    }

    /// The operations with a non-zero weight.
    pub fn active(&self) -> impl Iterator<Item = Op> + '_ {
        self.0.iter().filter(|(_, w)| **w > 0).map(|(op, _)| *op)
    }

    /// The operations whose weight each seed scales (swarm testing: different seeds stress
    /// different corners, and a seed that leaves one out tests the others harder). Not
    /// [`Op::LateReuse`]: the only workload for a family revoked inside the leeway, it needs
    /// a few tries per run (key rotations, outages and clock skew spoil some), so no seed
    /// leaves it out.
    pub const SWARMED: [Op; 13] = [
        Op::RotateKeys,
        Op::PasswordChange,
        Op::TicketFlood,
        Op::CrossReauth,
        Op::CrossSubscribe,
        Op::TicketReplay,
        Op::OriginSpoof,
        Op::ControlFlood,
        Op::TableAttack,
        Op::RetireKey,
        Op::BadHandshake,
        Op::EnvelopeAbuse,
        Op::LateTicket,
    ];

    /// This mix with the weight of each [`Mix::SWARMED`] operation scaled by 0, 1, 2 or 4,
    /// drawn from `seed` alone. A weight of 0 stays 0, so a shrunk mix stays shrunk.
    pub fn swarmed(&self, seed: u64) -> Mix {
        let mut rng = crate::rng::SimRng::new(seed).fork("mix");
        let mut mix = self.clone();
        for op in Self::SWARMED {
            let factor = [0, 1, 2, 4][rng.index(4)];
            if let Some(w) = mix.0.get_mut(&op) {
                *w = w.saturating_mul(factor);
            }
        }
        mix
    }
}

/// One run, fully specified.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The seed.
    pub seed: u64,
    /// Simulated users.
    pub users: u32,
    /// Length of the safety phase, in milliseconds.
    pub duration_ms: u64,
    /// Share of users that are adversaries, 0.0..=1.0.
    pub adversary_share: f64,
    /// The faults.
    pub faults: FaultPlan,
    /// The operation mix.
    pub mix: Mix,
    /// The planted bug switched on, by name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plant: Option<String>,
    /// Mean think time between a client's operations, in milliseconds.
    pub think_ms: u64,
}

impl Scenario {
    /// The safety phase's length.
    pub fn duration(&self) -> Duration {
        Duration::from_millis(self.duration_ms)
    }

    /// Parses a scenario file.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The scenario as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacks_are_the_ops_after_forged() {
        assert!(!Op::Broadcast.is_attack());
        assert!(Op::Forged.is_attack() && Op::RefreshReuse.is_attack());
        let mix = Mix::default();
        assert!(Op::CrossReauth.is_attack() && Op::TableAttack.is_attack());
        assert_eq!(mix.active().filter(|o| o.is_attack()).count(), 28);
        assert_eq!(mix.active().filter(|o| !o.is_attack()).count(), 16);
    }

    #[test]
    fn swarmed_mix_scales_new_ops_per_seed_and_keeps_zeros() {
        let base = Mix::default();
        let weights = |seed: u64| {
            let m = base.swarmed(seed);
            Mix::SWARMED.map(|op| m.weight(op))
        };
        assert_eq!(weights(3), weights(3));
        assert!((0..20).any(|s| weights(s) != weights(0)));
        assert_eq!(
            base.swarmed(5).weight(Op::Message),
            base.weight(Op::Message)
        );
        let mut off = base.clone();
        off.0.insert(Op::TicketFlood, 0);
        assert!((0..20).all(|s| off.swarmed(s).weight(Op::TicketFlood) == 0));
    }

    #[test]
    fn scenario_round_trips_and_rejects_unknown_fields() {
        let s = Scenario {
            seed: 3,
            users: 4,
            duration_ms: 1000,
            adversary_share: 0.5,
            faults: FaultPlan::none(),
            mix: Mix::default(),
            plant: Some("resume-skips".into()),
            think_ms: 500,
        };
        assert_eq!(Scenario::from_json(&s.to_json()).ok(), Some(s));
        assert!(Scenario::from_json(r#"{"seed":1,"bogus":2}"#).is_err());
    }

    /// A shrunk scenario file must replay the very run the shrinker saw, so its fault rates
    /// (17-digit floats under `--faults swarm`) must read back to the same bits.
    #[test]
    fn swarm_fault_plans_read_back_as_the_exact_numbers_written() {
        for seed in 0..300 {
            let s = Scenario {
                seed,
                users: 4,
                duration_ms: 1000,
                adversary_share: crate::rng::SimRng::new(seed).unit_f64(),
                faults: crate::faults::FaultPreset::Swarm.plan(seed),
                mix: Mix::default(),
                plant: None,
                think_ms: 500,
            };
            assert_eq!(
                Scenario::from_json(&s.to_json()).ok(),
                Some(s),
                "seed {seed}"
            );
        }
    }
}
