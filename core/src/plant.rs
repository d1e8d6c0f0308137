//! Planted bugs: real defects of the production backend, re-created on demand so the
//! simulator and fuzzers can prove they catch them (docs/design.md, "Planted bugs").
//!
//! The set of switched-on plants (`Plants`) is part of every component's config. Without
//! the `planted-bugs` feature the `Plant` enum does not exist, `Plants` is an empty
//! zero-sized type, and every `planted!` check is the constant `false`, so no planted code
//! path is compiled into the binary. Each plant must change exactly the behaviour its name
//! says and nothing else.

#[cfg(feature = "planted-bugs")]
mod enabled {
    use std::fmt;
    use std::str::FromStr;

    use serde::{Deserialize, Serialize};

    /// One planted bug. The kebab-case name is stable: CLIs, tests and scenario files use it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    pub enum Plant {
        /// A user's events are sent to every connected user, not only the owner.
        BroadcastLeak,
        /// The run id is taken where the owner's user id belongs: `stop_agent` cancels any run.
        RunIdAsUserId,
        /// The thread id is used where the owner's user id belongs: a thread's events are
        /// routed to the user whose id equals the thread id.
        ThreadIdAsUserId,
        /// Events are appended to the outbox (acknowledged) but never forwarded to live connections.
        AckWithoutForward,
        /// `resume` skips the first missed event.
        ResumeSkips,
        /// A stale revocation view fails open: handshakes and reauth are accepted anyway.
        RevocationFailOpen,
        /// The validation cache ignores `exp`: a hit skips the expiry check and entries are
        /// never expired.
        CacheIgnoresExp,
        /// The header's `alg` picks the verification algorithm instead of the key.
        AlgFromHeader,
        /// The OAuth callback does not check `state`.
        OauthStateUnchecked,
        /// A used refresh token can be used again, and reuse does not revoke the family.
        RefreshReusable,
        /// A closed connection does not release its slot in the per-user connection cap.
        CapNotReleased,
        /// Per-connection send queues are unbounded: slow consumers are never closed.
        UnboundedQueue,
        /// The validation cache is kept while the key ring's own change counter is unchanged,
        /// so a replaced ring with as many changes keeps cached tokens of removed keys.
        RingReplaceKeepsCache,
        /// Key rotation only flags the previous-but-one key retired and never removes it, so
        /// the ring fills up and rotation fails for good.
        RotationNeverPrunes,
        /// Family revocation skips tokens past `exp` but still inside the leeway.
        FamilyRevokeSkipsLeeway,
        /// Logout-everywhere cuts at the exact instant while `iat` is whole seconds: a token
        /// minted just after the logout, in the same second, is refused as revoked.
        LogoutSameSecond,
        /// `POST /tickets` has no per-user bound: one user can take the whole ticket store.
        TicketsUnboundedPerUser,
        /// A caller's service token is checked for signature and claims but not against
        /// the revocation list.
        ServiceTokenRevocationIgnored,
        /// `reauth` skips the same-user check: another user's valid token is accepted and
        /// the connection is rebound to that user.
        ReauthAnyUser,
        /// `subscribe_thread` skips the owner check: anyone may subscribe to any existing
        /// thread.
        SubscribeAnyThread,
        /// A redeemed ticket is not consumed: it opens a session again and again.
        TicketReusable,
        /// The Origin allow-list matches by prefix: an allowed origin followed by anything
        /// (`https://app.example.evil`) passes.
        OriginPrefixMatch,
        /// Ping and pong control frames are not charged to the user's rate bucket.
        ControlFramesUncharged,
        /// A `crit` header parameter is ignored instead of refused, so a token that demands an
        /// extension the gateway does not implement is accepted.
        CritHeaderIgnored,
        /// A retired key still verifies: the validator checks that the token's key is in the
        /// ring, not that it is live.
        RetiredKeyAccepted,
        /// The validator remembers its rejections too: a token refused once (e.g. not yet
        /// valid) is refused with the same error when presented again, valid or not.
        RejectionCached,
    }

    impl Plant {
        /// Every plant, in a stable order.
        pub const ALL: [Plant; 26] = [
            Plant::BroadcastLeak,
            Plant::RunIdAsUserId,
            Plant::ThreadIdAsUserId,
            Plant::AckWithoutForward,
            Plant::ResumeSkips,
            Plant::RevocationFailOpen,
            Plant::CacheIgnoresExp,
            Plant::AlgFromHeader,
            Plant::OauthStateUnchecked,
            Plant::RefreshReusable,
            Plant::CapNotReleased,
            Plant::UnboundedQueue,
            Plant::RingReplaceKeepsCache,
            Plant::RotationNeverPrunes,
            Plant::FamilyRevokeSkipsLeeway,
            Plant::LogoutSameSecond,
            Plant::TicketsUnboundedPerUser,
            Plant::ServiceTokenRevocationIgnored,
            Plant::ReauthAnyUser,
            Plant::SubscribeAnyThread,
            Plant::TicketReusable,
            Plant::OriginPrefixMatch,
            Plant::ControlFramesUncharged,
            Plant::CritHeaderIgnored,
            Plant::RetiredKeyAccepted,
            Plant::RejectionCached,
        ];

        /// The stable kebab-case name.
        pub const fn name(self) -> &'static str {
            match self {
                Plant::BroadcastLeak => "broadcast-leak",
                Plant::RunIdAsUserId => "run-id-as-user-id",
                Plant::ThreadIdAsUserId => "thread-id-as-user-id",
                Plant::AckWithoutForward => "ack-without-forward",
                Plant::ResumeSkips => "resume-skips",
                Plant::RevocationFailOpen => "revocation-fail-open",
                Plant::CacheIgnoresExp => "cache-ignores-exp",
                Plant::AlgFromHeader => "alg-from-header",
                Plant::OauthStateUnchecked => "oauth-state-unchecked",
                Plant::RefreshReusable => "refresh-reusable",
                Plant::CapNotReleased => "cap-not-released",
                Plant::UnboundedQueue => "unbounded-queue",
                Plant::RingReplaceKeepsCache => "ring-replace-keeps-cache",
                Plant::RotationNeverPrunes => "rotation-never-prunes",
                Plant::FamilyRevokeSkipsLeeway => "family-revoke-skips-leeway",
                Plant::LogoutSameSecond => "logout-same-second",
                Plant::TicketsUnboundedPerUser => "tickets-unbounded-per-user",
                Plant::ServiceTokenRevocationIgnored => "service-token-revocation-ignored",
                Plant::ReauthAnyUser => "reauth-any-user",
                Plant::SubscribeAnyThread => "subscribe-any-thread",
                Plant::TicketReusable => "ticket-reusable",
                Plant::OriginPrefixMatch => "origin-prefix-match",
                Plant::ControlFramesUncharged => "control-frames-uncharged",
                Plant::CritHeaderIgnored => "crit-header-ignored",
                Plant::RetiredKeyAccepted => "retired-key-accepted",
                Plant::RejectionCached => "rejection-cached",
            }
        }

        /// What the plant breaks, for `gauntlet plants`.
        pub const fn description(self) -> &'static str {
            match self {
                Plant::BroadcastLeak => "user events are delivered to every connected user",
                Plant::RunIdAsUserId => {
                    "run ownership is checked against the run id instead of the owner"
                }
                Plant::ThreadIdAsUserId => {
                    "thread ownership is checked against the thread id instead of the owner"
                }
                Plant::AckWithoutForward => {
                    "events are stored in the outbox but not forwarded to live connections"
                }
                Plant::ResumeSkips => "resume skips the first missed event",
                Plant::RevocationFailOpen => {
                    "a stale revocation view accepts new handshakes and reauth"
                }
                Plant::CacheIgnoresExp => {
                    "the validation cache ignores exp: hits skip the expiry check, entries never expire"
                }
                Plant::AlgFromHeader => "the token header's alg selects the verification algorithm",
                Plant::OauthStateUnchecked => "the OAuth callback does not check state",
                Plant::RefreshReusable => {
                    "refresh tokens can be reused and reuse does not revoke the family"
                }
                Plant::CapNotReleased => "closed connections keep their slot in the per-user cap",
                Plant::UnboundedQueue => "per-connection send queues are unbounded",
                Plant::RingReplaceKeepsCache => {
                    "a replaced key ring with the same change count keeps the validation cache"
                }
                Plant::RotationNeverPrunes => {
                    "key rotation never removes old keys, so rotation 64 fails for good"
                }
                Plant::FamilyRevokeSkipsLeeway => {
                    "family revocation skips tokens past exp but inside the leeway"
                }
                Plant::LogoutSameSecond => {
                    "logout-everywhere refuses tokens minted just after it in the same second"
                }
                Plant::TicketsUnboundedPerUser => "POST /tickets has no per-user bound",
                Plant::ServiceTokenRevocationIgnored => {
                    "POST /revocations accepts a revoked service token"
                }
                Plant::ReauthAnyUser => {
                    "reauth accepts another user's token and rebinds the connection to that user"
                }
                Plant::SubscribeAnyThread => "subscribe_thread does not check the thread's owner",
                Plant::TicketReusable => "a redeemed ticket is not consumed and works again",
                Plant::OriginPrefixMatch => {
                    "the Origin allow-list matches by prefix, so an allowed origin plus a suffix passes"
                }
                Plant::ControlFramesUncharged => {
                    "ping and pong control frames are not charged to the user's rate bucket"
                }
                Plant::CritHeaderIgnored => "a token's crit header is ignored instead of refused",
                Plant::RetiredKeyAccepted => "tokens of a retired key still validate",
                Plant::RejectionCached => {
                    "the validator caches rejections: a token refused once is refused again"
                }
            }
        }

        /// The `gauntlet probe` check that catches the plant against `gauntlet serve`, for
        /// the plants the simulator cannot reach (its world has no admin endpoint); `None`
        /// for the rest, which the simulator catches.
        pub const fn probe_check(self) -> Option<&'static str> {
            match self {
                Plant::ServiceTokenRevocationIgnored => {
                    Some("revocations_revoked_service_token_401")
                }
                _ => None,
            }
        }

        const fn bit(self) -> u32 {
            1 << (self as u32)
        }
    }

    impl fmt::Display for Plant {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name())
        }
    }

    /// The error for an unknown plant name.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("unknown planted bug {0:?} (see `gauntlet plants`)")]
    pub struct UnknownPlant(pub String);

    impl FromStr for Plant {
        type Err = UnknownPlant;
        fn from_str(s: &str) -> Result<Self, Self::Err> {
            Plant::ALL
                .into_iter()
                .find(|p| p.name() == s)
                .ok_or_else(|| UnknownPlant(s.to_string()))
        }
    }

    /// The set of switched-on plants.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
    pub struct Plants(u32);

    impl Plants {
        /// No plant switched on.
        pub const NONE: Plants = Plants(0);

        /// A set with exactly `p` switched on.
        pub const fn only(p: Plant) -> Self {
            Plants(p.bit())
        }

        /// This set plus `p`.
        #[must_use]
        pub const fn with(self, p: Plant) -> Self {
            Plants(self.0 | p.bit())
        }

        /// Whether `p` is switched on.
        pub const fn is_on(self, p: Plant) -> bool {
            self.0 & p.bit() != 0
        }

        /// The switched-on plants in stable order.
        pub fn iter(self) -> impl Iterator<Item = Plant> {
            Plant::ALL.into_iter().filter(move |p| self.is_on(*p))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_round_trip_and_are_unique() {
            for p in Plant::ALL {
                assert_eq!(p.name().parse::<Plant>(), Ok(p));
                let json = serde_json::to_string(&p).unwrap_or_default();
                assert_eq!(json, format!("\"{}\"", p.name()));
            }
            assert_eq!("nope".parse::<Plant>(), Err(UnknownPlant("nope".into())));
        }

        #[test]
        fn plants_set_is_exact() {
            let s = Plants::only(Plant::ResumeSkips).with(Plant::UnboundedQueue);
            assert!(s.is_on(Plant::ResumeSkips) && s.is_on(Plant::UnboundedQueue));
            assert!(!s.is_on(Plant::BroadcastLeak));
            assert_eq!(s.iter().count(), 2);
        }
    }
}

#[cfg(feature = "planted-bugs")]
pub use enabled::{Plant, Plants, UnknownPlant};

/// Without the `planted-bugs` feature there are no plants: this set is always empty.
///
/// It is written as the empty set's number, `0`, as a build with the feature writes it, so a
/// journal replays under either build; a journal recorded with plants on is refused here.
#[cfg(not(feature = "planted-bugs"))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Plants;

#[cfg(not(feature = "planted-bugs"))]
impl serde::Serialize for Plants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(0)
    }
}

#[cfg(not(feature = "planted-bugs"))]
impl<'de> serde::Deserialize<'de> for Plants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match <u32 as serde::Deserialize>::deserialize(d)? {
            0 => Ok(Plants),
            set => Err(serde::de::Error::custom(format!(
                "recorded with planted bugs on (set {set}); this build has none \
                 (build with --features planted-bugs)"
            ))),
        }
    }
}

#[cfg(not(feature = "planted-bugs"))]
impl Plants {
    /// No plant switched on (the only value without the feature).
    pub const NONE: Plants = Plants;
}

/// `planted!(plants, Name)`: whether the plant `Name` is on. The constant `false` without the
/// `planted-bugs` feature, so the planted branch is compiled out.
#[cfg(feature = "planted-bugs")]
macro_rules! planted {
    ($plants:expr, $name:ident) => {
        $plants.is_on($crate::plant::Plant::$name)
    };
}

/// `planted!(plants, Name)`: whether the plant `Name` is on. The constant `false` without the
/// `planted-bugs` feature, so the planted branch is compiled out.
#[cfg(not(feature = "planted-bugs"))]
macro_rules! planted {
    ($plants:expr, $name:ident) => {{
        let _ = &$plants;
        false
    }};
}

pub(crate) use planted;

#[cfg(test)]
mod wire_tests {
    use super::Plants;

    /// Builds with and without the feature write the empty set alike, so a journal of one
    /// replays under the other (the fuzz targets, built without plants, read the same corpus).
    #[test]
    fn the_empty_set_is_written_as_zero_by_every_build() {
        assert_eq!(
            serde_json::to_string(&Plants::NONE).ok().as_deref(),
            Some("0")
        );
        assert_eq!(serde_json::from_str::<Plants>("0").ok(), Some(Plants::NONE));
        assert!(serde_json::from_str::<Plants>("null").is_err());
    }

    #[cfg(not(feature = "planted-bugs"))]
    #[test]
    fn a_set_with_plants_is_refused_without_the_feature() {
        let err = serde_json::from_str::<Plants>("3")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("planted bugs on (set 3)")),
            "{err:?}"
        );
    }
}
