//! Shared fixtures for the Gauntlet benches (issue 6): the committed test keys, real tokens
//! minted with `jsonwebtoken`, a gateway driven through [`Gateway::handle`](gauntlet_core::Gateway::handle)
//! on a manual clock, and the floors each bench is compared with.
//!
//! Everything here is deterministic (fixed keys, fixed clock, seeded RNG) so criterion, the
//! instruction-count gate and the tests all measure the same work. It never reads the wall
//! clock: the benches own timing. Fixture failures are a typed [`FixtureError`], never a panic.

mod fixture;
mod floors;
mod tokens;

pub use fixture::{ACK_EVERY, GatewayFixture, bench_config, frame_field};
pub use floors::{
    FloorClaims, FloorEnvelope, FloorError, FloorKind, FloorQueues, FloorRender, HmacFloor,
    floor_map, floor_parse_render_enqueue, floor_serde_typed,
};
pub use tokens::{BenchAlg, PeerClaims, TokenKit, jsonwebtoken_peer};

use gauntlet_core::Instant;

/// The fixed "now" of every bench, in unix seconds (the same as the core tests').
pub const NOW_SECS: u64 = 1_800_000_000;

/// [`NOW_SECS`] as an [`Instant`].
pub fn now() -> Instant {
    Instant::from_unix_secs(NOW_SECS)
}

/// Why a fixture could not be built. Benches treat any of these as a broken setup.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A committed test key did not load.
    #[error("test key {name} does not load: {reason}")]
    Key {
        /// Which key.
        name: &'static str,
        /// The loader's message.
        reason: String,
    },
    /// `jsonwebtoken` refused to sign.
    #[error("token minting failed: {0}")]
    Mint(String),
    /// The gateway config was refused.
    #[error("gateway config refused: {0}")]
    Config(#[from] gauntlet_core::ConfigError),
    /// A handshake the fixture expected to pass was refused.
    #[error("handshake for {user} refused: {decision}")]
    Refused {
        /// The user.
        user: String,
        /// The gateway's verdict.
        decision: String,
    },
    /// A user name the gateway's id rules reject.
    #[error("bad user id {0:?}")]
    BadUser(String),
}
