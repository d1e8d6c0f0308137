//! Fuzzing harnesses: the functions the `fuzz/` targets and the stable regression test
//! (`core/tests/fuzz_regressions.rs`) share, one per target, each running one input and
//! checking that target's oracle (see `fuzz/README.md`).
//!
//! A harness takes the fuzzer's bytes, builds everything else from committed fixtures (the
//! keys under `corpora/tokens/keys/`, a fixed clock), and returns `Err(OracleViolation)`
//! naming what broke, with evidence. Each also has a `_with` variant that takes the thing
//! under test (a validator closure, a replay function, or a set of planted bugs), so tests
//! can show every oracle bites. This module is compiled only with the `fuzzing` feature; it
//! must never be used by the gateway itself, read a clock or the OS RNG, or let an input
//! grow work past the caps below.

mod drive;
mod fixtures;
mod frame;
mod handshake;
mod journal;
mod oauth;
mod reference;
mod token;

use thiserror::Error;

pub use frame::{frame_route, frame_route_floor, frame_route_with};
pub use handshake::{handshake, handshake_floor, handshake_with};
pub use journal::{log_replay, log_replay_floor, log_replay_with};
pub use oauth::{oauth_flow, oauth_flow_floor, oauth_flow_with};
pub use token::{
    TokenCheck, TypedTokenCheck, token_bytes, token_bytes_floor, token_bytes_with, token_claims,
    token_claims_floor, token_claims_with,
};

/// Longest input any harness reads; the rest is ignored, so time and memory stay bounded.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The fixed "now" every harness starts from (unix seconds), the attack table's `now`.
pub const FUZZ_NOW_SECS: u64 = 1_800_000_000;

/// What an oracle caught. Each variant names the broken property and carries the evidence
/// needed to reproduce it without re-running the fuzzer.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum OracleViolation {
    /// A committed fixture (key, token, config) could not be built: the harness is broken,
    /// not the code under test. Fix the fixture before trusting any other result.
    #[error("fixture {what} could not be built")]
    Fixture {
        /// Which fixture.
        what: &'static str,
    },
    /// The validator accepted a token that a bare `jsonwebtoken::decode` with the same key
    /// and the same issuer/audience rules rejects: our validator is looser than the library.
    #[error("accepted a token jsonwebtoken rejects ({reason}): {token}")]
    LooserThanJsonwebtoken {
        /// The library's reason.
        reason: String,
        /// The token (at most 200 bytes of it, lossily decoded).
        token: String,
    },
    /// A rejection carried a code that is not one of the documented `TokenError` codes.
    #[error("undocumented token error code {code}")]
    UndocumentedTokenCode {
        /// The code.
        code: String,
    },
    /// The length limit was not applied first: an over-long token got another verdict, or
    /// a token within the limit was called too long.
    #[error("token of {len} bytes got {verdict}, breaking the length rule")]
    LengthRule {
        /// The token's length.
        len: usize,
        /// The verdict it got.
        verdict: String,
    },
    /// The validator under test disagrees with the uncached `token::validate` plus the
    /// revocation list (a cache, or a planted bug, changed the verdict).
    #[error("at unix {at} the validator said {actual}, token::validate says {expected}")]
    CacheDisagrees {
        /// The validation time, unix seconds.
        at: u64,
        /// The verdict under test.
        actual: String,
        /// The uncached verdict.
        expected: String,
    },
    /// The validator's verdict on a signed claim set differs from the reference check of
    /// docs/protocol.md section 1: it accepted what the reference rejects, rejected what it
    /// accepts, or rejected with a code the reference does not find.
    #[error("validator said {actual}, reference check allows {allowed} for payload {payload}")]
    ReferenceDisagrees {
        /// The validator's verdict (`accepted` or an error code).
        actual: String,
        /// What the reference allows (`accepted` or the codes of every rule broken).
        allowed: String,
        /// The signed payload.
        payload: String,
    },
    /// The issuer and the protocol disagree (`AUTH-MINT`): it minted a token the validator
    /// refuses or reads back with other claims, failed to sign, or refused an `email` or
    /// `svc_id` the claim rules allow.
    #[error("issuer {detail}; request {request}")]
    IssuerDisagrees {
        /// What the issuer did.
        detail: String,
        /// The mint request.
        request: String,
    },
    /// A frame reached a connection of a user it does not belong to.
    #[error("connection {conn} of {owner} was sent a frame that is not theirs: {frame}")]
    CrossUserDelivery {
        /// The receiving connection.
        conn: u64,
        /// Its user.
        owner: String,
        /// The frame.
        frame: String,
    },
    /// The gateway sent something that is not a documented frame (not JSON, no `type`, an
    /// undocumented error code, or a stream `seq` that is not gap-free).
    #[error("undocumented frame to connection {conn}: {frame}")]
    UndocumentedFrame {
        /// The receiving connection.
        conn: u64,
        /// The frame.
        frame: String,
    },
    /// A connection received the effect of another user's request: one user's `stop_agent`
    /// cancelled another user's run.
    #[error("connection {conn} got the effect of another user's request: {frame}")]
    ActedForAnotherUser {
        /// The receiving connection.
        conn: u64,
        /// The frame.
        frame: String,
    },
    /// A connection's stream broke docs/protocol.md section 14: a live `seq` with a gap, or a
    /// `resume` that did not re-send exactly the events after the client's `last_seq` (or
    /// from the `RESUME_GAP` oldest), in order, as many as its `resumed` reply counts.
    #[error("connection {conn}: {why}: {frame}")]
    StreamOrder {
        /// The receiving connection.
        conn: u64,
        /// What was wrong.
        why: String,
        /// The frame where it showed.
        frame: String,
    },
    /// A connection was closed when the protocol says it stays open, not closed when it says
    /// it closes, or closed with another code.
    #[error(
        "after frame {frame_index}, connection {conn} expected close {expected:?}, got {actual:?}"
    )]
    WrongClose {
        /// The connection.
        conn: u64,
        /// Which input frame (0-based) led to it.
        frame_index: usize,
        /// The close code the protocol requires, if any.
        expected: Option<u16>,
        /// The close code the gateway sent, if any.
        actual: Option<u16>,
    },
    /// A handshake was accepted although the credential it selected is not valid for a
    /// real user (or the request breaks a rule checked before authentication).
    #[error("handshake {step} accepted as {user} without a valid credential: {why}")]
    AcceptedWithoutCredential {
        /// Which request (0-based).
        step: usize,
        /// The identity it was accepted as.
        user: String,
        /// Why the model says it must be refused.
        why: String,
    },
    /// A handshake was accepted with an identity other than the credential's `sub`.
    #[error("handshake {step} accepted as {actual}, the credential belongs to {expected}")]
    WrongIdentity {
        /// Which request (0-based).
        step: usize,
        /// The credential's subject.
        expected: String,
        /// The identity the gateway chose.
        actual: String,
    },
    /// The auth service issued or rotated tokens for a flow that is not complete, matching and
    /// first-use, or a code replay or refresh reuse did not revoke what it must.
    #[error("auth flow step {step}: {why}")]
    AuthFlow {
        /// Which operation (0-based).
        step: usize,
        /// What the model says went wrong.
        why: String,
    },
    /// A journal the gateway wrote did not replay to the state it recorded.
    #[error("a journal of {entries} entries did not replay to its footer: {why}")]
    ReplayDiverged {
        /// How many entries the journal held.
        entries: usize,
        /// What went wrong.
        why: String,
    },
    /// Replay accepted a journal but its own result is inconsistent (a footer hash that is
    /// not the replayed state's, or more entries than lines).
    #[error("replay accepted an inconsistent journal: {why}")]
    ReplayInconsistent {
        /// What is inconsistent.
        why: String,
    },
}

/// The first `max` bytes of `bytes`, lossily decoded, for evidence in a violation.
pub(crate) fn evidence(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes)).into_owned()
}

/// Whether a run checks its oracle, or is the target's floor: the same input decoding and
/// calls of the code under test without the checks, which the timing command
/// (`benches/examples/fuzz_floors.rs`) compares the harness with. Bookkeeping that later
/// steps read to pick their inputs (issued tickets, codes, refresh tokens) runs in both.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Oracle,
    Floor,
}

/// The input capped at [`MAX_INPUT_BYTES`].
pub(crate) fn capped(data: &[u8]) -> &[u8] {
    data.get(..MAX_INPUT_BYTES).unwrap_or(data)
}
