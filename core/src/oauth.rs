//! OAuth 2.0 authorization code + PKCE, the auth-service side (docs/protocol.md section 7,
//! RFC 6749 section 4.1, RFC 7636).
//!
//! This module owns the pending `state`s and authorization codes and decides whether a
//! callback may be redeemed. It is sans-IO and deterministic: time is the injected `now`,
//! codes are derived from a counter through HMAC-SHA256 under a secret given to the
//! constructor. It must never mint tokens itself (the auth service does, then reports the
//! issued token ids back with [`OAuth::record_issued`] so a replayed code can revoke them),
//! never put a token in a URL, never accept any PKCE method but `S256`, and never let a
//! store grow past its capacity.
//!
//! Codes are held as the 32 MAC bytes they encode (`CodeKey`), not as their text: the
//! redeemed store keeps up to 100 000 tombstones that live as long as refresh tokens, and
//! each had three copies of its code on the heap (the map, its expiry index and the eviction
//! queue).

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::expiring_map::{Expiring, ExpiringMap};
use crate::permissions::Permissions;
use crate::plant::{Plants, planted};
use crate::{FamilyId, Instant, Jti, UserId};

/// How long a stored `state` stays usable (docs/protocol.md section 7).
pub const STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an authorization code stays redeemable (docs/protocol.md section 7; RFC 6749 4.1.2
/// recommends at most 10 minutes, we use one).
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// Shortest secret accepted for deriving codes: the HMAC-SHA256 output size.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest `client_id` accepted.
pub const MAX_CLIENT_ID_LEN: usize = 128;
/// Longest `redirect_uri` accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2048;
/// Longest `state` accepted.
pub const MAX_STATE_LEN: usize = 512;
/// Length of an S256 code challenge: base64url without padding of a 32-byte digest.
pub const CHALLENGE_LEN: usize = 43;
/// PKCE verifier length bounds (RFC 7636 section 4.1).
pub const VERIFIER_LEN: std::ops::RangeInclusive<usize> = 43..=128;
/// Most token ids remembered per redeemed code, so a replay can revoke them.
pub const MAX_ISSUED_PER_CODE: usize = 16;

/// A request parameter that failed its shape check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `client_id`: 1..=128 printable ASCII characters.
    ClientId,
    /// `redirect_uri`: 1..=2048 printable ASCII characters.
    RedirectUri,
    /// `code_challenge`: exactly 43 base64url characters.
    CodeChallenge,
    /// `state`: 1..=512 printable ASCII characters.
    State,
    /// `code`: 1..=128 printable ASCII characters.
    Code,
}

impl std::fmt::Display for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Param::ClientId => "client_id",
            Param::RedirectUri => "redirect_uri",
            Param::CodeChallenge => "code_challenge",
            Param::State => "state",
            Param::Code => "code",
        })
    }
}

/// Which bounded store is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// The pending `state`s.
    States,
    /// The unredeemed authorization codes.
    Codes,
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::States => "state",
            Store::Codes => "code",
        })
    }
}

/// Why an OAuth request failed. The client gets an OAuth error response; nothing is minted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The constructor was given a secret shorter than [`MIN_SECRET_LEN`]: a configuration bug.
    #[error("oauth secret is {len} bytes, at least {MIN_SECRET_LEN} required")]
    SecretTooShort {
        /// The length given.
        len: usize,
    },
    /// A request parameter is empty, too long or has characters outside its alphabet.
    #[error("invalid {0} parameter")]
    InvalidParameter(Param),
    /// `code_challenge_method` is not `S256` (`plain` is refused: it protects nothing).
    #[error("unsupported code challenge method")]
    UnsupportedMethod,
    /// `authorize` was called with a `state` that is still pending in another flow.
    #[error("state already in use")]
    StateInUse,
    /// A store is at capacity with live entries only; retry later.
    #[error("{0} store full")]
    StoreFull(Store),
    /// The code was never issued, or it was burnt or pruned.
    #[error("unknown authorization code")]
    CodeUnknown,
    /// The code expired before the callback.
    #[error("authorization code expired")]
    CodeExpired,
    /// The code was already redeemed: treat as theft. The caller must revoke `revoke` (the
    /// tokens minted from this code) and, when set, the whole refresh `family`.
    #[error("authorization code replayed")]
    CodeReplayed {
        /// Every token minted from the code, with its expiry.
        revoke: Vec<(Jti, Instant)>,
        /// The refresh family started by the code, if any.
        family: Option<FamilyId>,
    },
    /// The callback's `client_id` is not the one the code was issued to. The code is burnt.
    #[error("client mismatch")]
    ClientMismatch,
    /// The callback's `redirect_uri` is not the one the code was issued for. The code is burnt.
    #[error("redirect uri mismatch")]
    RedirectMismatch,
    /// The callback's `state` was never issued (or was already used). The code is burnt.
    #[error("unknown state")]
    StateUnknown,
    /// The callback's `state` is pending but belongs to another code (CSRF). The code is burnt.
    #[error("state mismatch")]
    StateMismatch,
    /// The callback's `state` expired. The code is burnt.
    #[error("state expired")]
    StateExpired,
    /// The verifier is not 43..=128 characters of the RFC 7636 unreserved set. The code is burnt.
    #[error("malformed code verifier")]
    VerifierMalformed,
    /// BASE64URL(SHA256(verifier)) is not the challenge. The code is burnt.
    #[error("code verifier does not match the challenge")]
    VerifierMismatch,
}

impl OAuthError {
    /// A stable snake_case code for logs and wire errors.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::SecretTooShort { .. } => "secret_too_short",
            OAuthError::InvalidParameter(_) => "invalid_parameter",
            OAuthError::UnsupportedMethod => "unsupported_method",
            OAuthError::StateInUse => "state_in_use",
            OAuthError::StoreFull(_) => "store_full",
            OAuthError::CodeUnknown => "code_unknown",
            OAuthError::CodeExpired => "code_expired",
            OAuthError::CodeReplayed { .. } => "code_replayed",
            OAuthError::ClientMismatch => "client_mismatch",
            OAuthError::RedirectMismatch => "redirect_mismatch",
            OAuthError::StateUnknown => "state_unknown",
            OAuthError::StateMismatch => "state_mismatch",
            OAuthError::StateExpired => "state_expired",
            OAuthError::VerifierMalformed => "verifier_malformed",
            OAuthError::VerifierMismatch => "verifier_mismatch",
        }
    }
}

/// Capacities and lifetimes. `Default` is docs/protocol.md section 7.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Lifetime of a pending `state`.
    pub state_ttl: Duration,
    /// Lifetime of an unredeemed code.
    pub code_ttl: Duration,
    /// Most pending states held at once.
    pub max_states: usize,
    /// Most unredeemed codes held at once.
    pub max_codes: usize,
    /// Most redeemed codes remembered to detect replay; past it the oldest is forgotten (a
    /// replay of a forgotten code is still refused, as unknown, but revokes nothing).
    pub max_redeemed: usize,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            state_ttl: STATE_TTL,
            code_ttl: CODE_TTL,
            max_states: 10_000,
            max_codes: 10_000,
            max_redeemed: 100_000,
        }
    }
}

/// An authorization request from an already authenticated `user` (login itself is out of scope).
#[derive(Clone, Copy, Debug)]
pub struct AuthorizeRequest<'a> {
    /// The user who consented; the tokens minted at the callback are theirs.
    pub user: &'a UserId,
    /// The permissions the user granted the client; the minted tokens carry them.
    pub permissions: &'a Permissions,
    /// The OAuth client.
    pub client_id: &'a str,
    /// Where the code is sent; must be repeated exactly at the callback.
    pub redirect_uri: &'a str,
    /// BASE64URL(SHA256(code_verifier)).
    pub code_challenge: &'a str,
    /// `code_challenge_method`; only `S256` is accepted.
    pub method: &'a str,
    /// The client's CSRF token, single-use.
    pub state: &'a str,
}

/// What `authorize` hands back: the redirect carries `code` and `state` (never a token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The single-use code.
    pub code: String,
    /// The state, echoed.
    pub state: String,
    /// When the code stops being redeemable.
    pub expires: Instant,
}

/// The token request that redeems a code.
#[derive(Clone, Copy, Debug)]
pub struct CallbackRequest<'a> {
    /// The code from the redirect.
    pub code: &'a str,
    /// The state from the redirect.
    pub state: &'a str,
    /// The PKCE verifier whose S256 digest is the challenge.
    pub code_verifier: &'a str,
    /// Must equal the one given to `authorize`.
    pub redirect_uri: &'a str,
    /// Must equal the one given to `authorize`.
    pub client_id: &'a str,
}

/// A redeemed code: the caller mints tokens for `user` and reports them with [`OAuth::record_issued`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The user who authorized.
    pub user: UserId,
    /// The permissions granted.
    pub permissions: Permissions,
    /// The client the tokens are for.
    pub client_id: String,
    /// The redeemed code, to pass to [`OAuth::record_issued`].
    pub code: String,
}

/// A code as the HMAC-SHA256 output it is the base64url text of. Base64url decoding without
/// padding refuses non-zero trailing bits, so every code text has at most one key and the
/// keys of two texts are equal exactly when the texts are: a look-up by key finds what one by
/// text did.
type CodeKey = [u8; 32];

/// The key of `code`, or `None` for a text no derived code has (which names no code).
fn code_key(code: &str) -> Option<CodeKey> {
    // 43 characters carry 258 bits: the 256 of a key and two that must be zero.
    if code.len() != CODE_LEN {
        return None;
    }
    let mut key = [0u8; 33];
    match URL_SAFE_NO_PAD.decode_slice(code, &mut key) {
        Ok(32) => key[..32].try_into().ok(),
        _ => None,
    }
}

/// Length of a code: base64url without padding of a 32-byte MAC.
const CODE_LEN: usize = 43;

#[derive(Clone, Debug)]
struct PendingCode {
    user: UserId,
    permissions: Permissions,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    state: String,
    expires: Instant,
}

/// A redeemed code kept as a tombstone until the tokens minted from it expire, so that a
/// replay can still revoke them.
#[derive(Clone, Debug)]
struct Redeemed {
    /// Boxed, not a `Vec`: tokens are recorded once per code (two, an access and a refresh
    /// token), and pushing them one by one left room for four.
    issued: Box<[(Jti, Instant)]>,
    family: Option<FamilyId>,
    keep_until: Instant,
}

#[derive(Clone, Debug)]
struct PendingState {
    code: CodeKey,
    expires: Instant,
}

impl Expiring for PendingCode {
    fn deadline(&self) -> Instant {
        self.expires
    }
}

impl Expiring for Redeemed {
    fn deadline(&self) -> Instant {
        self.keep_until
    }
}

impl Expiring for PendingState {
    fn deadline(&self) -> Instant {
        self.expires
    }
}

/// The authorization-code + PKCE model: pending states and codes, bounded, on injected time.
#[derive(Clone)]
pub struct OAuth {
    /// HMAC-SHA256 keyed with the secret, cloned per code so the secret is keyed once.
    code_mac: Hmac<Sha256>,
    config: OAuthConfig,
    counter: u64,
    /// Pending states and codes, indexed by when they expire: `authorize` prunes whenever a
    /// pending store is full, and scanning them made every later authorize of a user who keeps
    /// one full a walk of all 10 000 states and 10 000 codes.
    states: ExpiringMap<String, PendingState>,
    codes: ExpiringMap<CodeKey, PendingCode>,
    /// Redeemed codes, indexed by when each tombstone may go (`keep_until`): pruning runs on
    /// every callback once the store is full (100 000 tombstones that live as long as refresh
    /// tokens), and a scan made each sign-in at the cap a walk of all of them.
    redeemed: ExpiringMap<CodeKey, Redeemed>,
    /// Redeemed codes in redemption order, for evicting the oldest when full. A code pruned
    /// as dead stays here until it reaches the front or the queue is compacted, so pruning
    /// never walks the queue.
    redeemed_order: VecDeque<CodeKey>,
    plants: Plants,
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("OAuth")
            .field("counter", &self.counter)
            .field("states", &self.states.len())
            .field("codes", &self.codes.len())
            .field("redeemed", &self.redeemed.len())
            .finish_non_exhaustive()
    }
}

impl OAuth {
    /// A model deriving codes from `secret` (at least [`MIN_SECRET_LEN`] bytes).
    pub fn new(secret: &[u8], config: OAuthConfig, plants: Plants) -> Result<Self, OAuthError> {
        let too_short = OAuthError::SecretTooShort { len: secret.len() };
        if secret.len() < MIN_SECRET_LEN {
            return Err(too_short);
        }
        let code_mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| too_short)?;
        Ok(Self {
            code_mac,
            config,
            counter: 0,
            states: ExpiringMap::default(),
            codes: ExpiringMap::default(),
            redeemed: ExpiringMap::default(),
            redeemed_order: VecDeque::new(),
            plants,
        })
    }

    /// Stores `req.state` and issues a code bound to the user, client, redirect URI and challenge.
    pub fn authorize(
        &mut self,
        now: Instant,
        req: &AuthorizeRequest<'_>,
    ) -> Result<AuthorizationCode, OAuthError> {
        check_printable(req.client_id, MAX_CLIENT_ID_LEN, Param::ClientId)?;
        check_printable(req.redirect_uri, MAX_REDIRECT_URI_LEN, Param::RedirectUri)?;
        check_printable(req.state, MAX_STATE_LEN, Param::State)?;
        if req.method != "S256" {
            return Err(OAuthError::UnsupportedMethod);
        }
        if req.code_challenge.len() != CHALLENGE_LEN
            || !req.code_challenge.bytes().all(is_base64url)
        {
            return Err(OAuthError::InvalidParameter(Param::CodeChallenge));
        }
        if self.states.get(req.state).is_some_and(|s| now < s.expires) {
            return Err(OAuthError::StateInUse);
        }
        self.make_room(now)?;

        let key = self.derive_code();
        let expires = now.saturating_add(self.config.code_ttl);
        self.states.insert(
            req.state.to_string(),
            PendingState {
                code: key,
                expires: now.saturating_add(self.config.state_ttl),
            },
        );
        self.codes.insert(
            key,
            PendingCode {
                user: req.user.clone(),
                permissions: req.permissions.clone(),
                client_id: req.client_id.to_string(),
                redirect_uri: req.redirect_uri.to_string(),
                challenge: req.code_challenge.to_string(),
                state: req.state.to_string(),
                expires,
            },
        );
        Ok(AuthorizationCode {
            code: URL_SAFE_NO_PAD.encode(key),
            state: req.state.to_string(),
            expires,
        })
    }

    /// Redeems a code when every binding matches. A failed binding check burns the code, so a
    /// stolen code gets one guess at the verifier; a replay of a redeemed code returns
    /// [`OAuthError::CodeReplayed`] with the tokens to revoke.
    pub fn callback(
        &mut self,
        now: Instant,
        req: &CallbackRequest<'_>,
    ) -> Result<Grant, OAuthError> {
        check_printable(req.code, 128, Param::Code)?;
        let key = code_key(req.code).ok_or(OAuthError::CodeUnknown)?;
        if let Some(r) = self.redeemed.get(&key) {
            return Err(OAuthError::CodeReplayed {
                revoke: r.issued.to_vec(),
                family: r.family.clone(),
            });
        }
        let pending = self
            .codes
            .get(&key)
            .cloned()
            .ok_or(OAuthError::CodeUnknown)?;
        if now >= pending.expires {
            self.burn(&key, &pending);
            return Err(OAuthError::CodeExpired);
        }
        if let Err(e) = self.check_bindings(now, req, &key, &pending) {
            self.burn(&key, &pending);
            return Err(e);
        }
        self.states.remove(&pending.state);
        self.codes.remove(&key);
        if self.redeemed.len() >= self.config.max_redeemed {
            self.prune_redeemed(now);
        }
        // `redeemed_order` holds every key of `redeemed` (and maybe pruned ones), so it is
        // never empty here while `redeemed` is full; the `let` only ends the loop should that
        // ever not hold.
        while self.redeemed.len() >= self.config.max_redeemed.max(1)
            && let Some(oldest) = self.redeemed_order.pop_front()
        {
            self.redeemed.remove(&oldest);
        }
        self.redeemed.insert(
            key,
            Redeemed {
                issued: Box::default(),
                family: None,
                keep_until: pending.expires,
            },
        );
        self.redeemed_order.push_back(key);
        Ok(Grant {
            user: pending.user,
            permissions: pending.permissions,
            client_id: pending.client_id,
            code: req.code.to_string(),
        })
    }

    /// Records the tokens minted from a redeemed `code` (and the refresh family it started), so
    /// a later replay of the code revokes them. The tombstone is kept until the last one
    /// expires. Ids past [`MAX_ISSUED_PER_CODE`] are dropped (revoking the family covers them).
    /// Does nothing for a code that is not redeemed.
    pub fn record_issued(
        &mut self,
        code: &str,
        issued: &[(Jti, Instant)],
        family: Option<FamilyId>,
    ) {
        let Some(key) = code_key(code) else {
            return;
        };
        self.redeemed.update(&key, |r| {
            let room = MAX_ISSUED_PER_CODE.saturating_sub(r.issued.len());
            let added = issued.get(..room).unwrap_or(issued);
            if !added.is_empty() {
                r.issued = r.issued.iter().chain(added).cloned().collect();
            }
            for (_, exp) in added {
                r.keep_until = r.keep_until.max(*exp);
            }
            if family.is_some() {
                r.family = family;
            }
        });
    }

    /// Drops expired states, codes and tombstones.
    pub fn prune(&mut self, now: Instant) {
        self.prune_pending(now);
        self.prune_redeemed(now);
    }

    /// Drops expired states and codes: the fronts of their expiry indexes.
    fn prune_pending(&mut self, now: Instant) {
        self.states.remove_dead(|expires| now >= expires);
        self.codes.remove_dead(|expires| now >= expires);
    }

    /// Drops the tombstones whose tokens have all expired: the front of the expiry index.
    fn prune_redeemed(&mut self, now: Instant) {
        self.redeemed.remove_dead(|keep_until| now >= keep_until);
        // Pruned codes linger in the order queue; once they are most of it, one walk drops
        // them all (each walk follows as many removals as it costs, so it is paid for).
        if self.redeemed_order.len() > 2 * self.redeemed.len() + 64 {
            let redeemed = &self.redeemed;
            self.redeemed_order.retain(|key| redeemed.contains_key(key));
        }
    }

    /// Number of pending states held (bounded-memory checks).
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    /// Number of unredeemed codes held (bounded-memory checks).
    pub fn code_count(&self) -> usize {
        self.codes.len()
    }

    /// Number of redeemed codes remembered for replay detection (bounded-memory checks).
    pub fn redeemed_count(&self) -> usize {
        self.redeemed.len()
    }

    fn check_bindings(
        &self,
        now: Instant,
        req: &CallbackRequest<'_>,
        key: &CodeKey,
        pending: &PendingCode,
    ) -> Result<(), OAuthError> {
        if req.client_id != pending.client_id {
            return Err(OAuthError::ClientMismatch);
        }
        if req.redirect_uri != pending.redirect_uri {
            return Err(OAuthError::RedirectMismatch);
        }
        if !planted!(self.plants, OauthStateUnchecked) {
            match self.states.get(req.state) {
                None => return Err(OAuthError::StateUnknown),
                Some(s) if s.code != *key => return Err(OAuthError::StateMismatch),
                Some(s) if now >= s.expires => return Err(OAuthError::StateExpired),
                Some(_) => {}
            }
        }
        if !VERIFIER_LEN.contains(&req.code_verifier.len())
            || !req.code_verifier.bytes().all(is_unreserved)
        {
            return Err(OAuthError::VerifierMalformed);
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(req.code_verifier.as_bytes()));
        if bool::from(computed.as_bytes().ct_eq(pending.challenge.as_bytes())) {
            Ok(())
        } else {
            Err(OAuthError::VerifierMismatch)
        }
    }

    fn burn(&mut self, key: &CodeKey, pending: &PendingCode) {
        self.codes.remove(key);
        if self
            .states
            .get(&pending.state)
            .is_some_and(|s| s.code == *key)
        {
            self.states.remove(&pending.state);
        }
    }

    fn make_room(&mut self, now: Instant) -> Result<(), OAuthError> {
        if self.states.len() >= self.config.max_states || self.codes.len() >= self.config.max_codes
        {
            self.prune_pending(now);
        }
        if self.states.len() >= self.config.max_states {
            return Err(OAuthError::StoreFull(Store::States));
        }
        if self.codes.len() >= self.config.max_codes {
            return Err(OAuthError::StoreFull(Store::Codes));
        }
        Ok(())
    }

    /// The key of the next code, HMAC-SHA256(secret, "code" || counter) (the code is its
    /// base64url): unguessable without the secret, unique per counter value, and
    /// deterministic for the simulator.
    fn derive_code(&mut self) -> CodeKey {
        self.counter = self.counter.wrapping_add(1);
        let mut mac = self.code_mac.clone();
        mac.update(b"gauntlet-oauth-code");
        mac.update(&self.counter.to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn check_printable(value: &str, max: usize, param: Param) -> Result<(), OAuthError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OAuthError::InvalidParameter(param));
    }
    Ok(())
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// RFC 7636 section 4.1: `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The S256 challenge for `verifier`: BASE64URL(SHA256(verifier)) (RFC 7636 section 4.2).
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    // The challenge was computed independently with Python hashlib + base64.
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kQb6W4gN3kv-1b-JmMZOJjNW6jc";
    const CHALLENGE: &str = "PqMeFXZxqtxuMhS-MFDBn5vpTN6OB78gcNc_oEzF0gE";

    fn t(secs: u64) -> Instant {
        Instant::from_unix_secs(1_700_000_000 + secs)
    }

    fn user() -> UserId {
        UserId::parse("alice").unwrap()
    }

    fn oauth() -> OAuth {
        OAuth::new(SECRET, OAuthConfig::default(), Plants::NONE).unwrap()
    }

    static NO_PERMISSIONS: std::sync::LazyLock<Permissions> =
        std::sync::LazyLock::new(Permissions::empty);

    /// The request the tests send: no permissions, the `web` client and its redirect URI.
    pub(super) fn request<'a>(
        u: &'a UserId,
        challenge: &'a str,
        state: &'a str,
    ) -> AuthorizeRequest<'a> {
        AuthorizeRequest {
            user: u,
            permissions: &NO_PERMISSIONS,
            client_id: "web",
            redirect_uri: "https://app.example/cb",
            code_challenge: challenge,
            method: "S256",
            state,
        }
    }

    fn authorize(o: &mut OAuth, now: Instant, state: &str) -> AuthorizationCode {
        let u = user();
        o.authorize(now, &request(&u, CHALLENGE, state)).unwrap()
    }

    fn cb<'a>(code: &'a str, state: &'a str) -> CallbackRequest<'a> {
        CallbackRequest {
            code,
            state,
            code_verifier: VERIFIER,
            redirect_uri: "https://app.example/cb",
            client_id: "web",
        }
    }

    #[test]
    fn s256_challenge_independent_vector_matches() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
    }

    #[test]
    fn callback_all_bindings_match_grants_user() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "st-1");
        assert_eq!(a.expires, t(60));
        assert_eq!(a.state, "st-1");
        let g = o.callback(t(59), &cb(&a.code, "st-1")).unwrap();
        assert_eq!(g.user, user());
        assert_eq!(g.client_id, "web");
        assert_eq!(g.code, a.code);
        assert_eq!(o.state_count(), 0);
    }

    #[test]
    fn codes_same_secret_same_sequence_deterministic_and_distinct() {
        let mut a = oauth();
        let mut b = oauth();
        let a1 = authorize(&mut a, t(0), "s1").code;
        let a2 = authorize(&mut a, t(0), "s2").code;
        assert_eq!(a1, authorize(&mut b, t(5), "x1").code);
        assert_ne!(a1, a2);
        assert_eq!(a1.len(), 43);
        let mut other = OAuth::new(&[7u8; 32], OAuthConfig::default(), Plants::NONE).unwrap();
        assert_ne!(a1, authorize(&mut other, t(0), "s1").code);
    }

    #[test]
    fn new_short_secret_rejected() {
        assert_eq!(
            OAuth::new(&[1u8; 31], OAuthConfig::default(), Plants::NONE).err(),
            Some(OAuthError::SecretTooShort { len: 31 })
        );
    }

    #[test]
    fn authorize_plain_method_unsupported() {
        let mut o = oauth();
        let u = user();
        let r = o.authorize(
            t(0),
            &AuthorizeRequest {
                user: &u,
                permissions: &Permissions::empty(),
                client_id: "web",
                redirect_uri: "https://app.example/cb",
                code_challenge: VERIFIER,
                method: "plain",
                state: "s",
            },
        );
        assert_eq!(r, Err(OAuthError::UnsupportedMethod));
        assert_eq!(o.code_count(), 0);
    }

    #[test]
    fn authorize_bad_parameters_named() {
        let mut o = oauth();
        let u = user();
        let base = request(&u, CHALLENGE, "s");
        let long_state = "s".repeat(MAX_STATE_LEN + 1);
        let cases = [
            (
                AuthorizeRequest {
                    client_id: "",
                    ..base
                },
                Param::ClientId,
            ),
            (
                AuthorizeRequest {
                    redirect_uri: "a b",
                    ..base
                },
                Param::RedirectUri,
            ),
            (
                AuthorizeRequest {
                    state: &long_state,
                    ..base
                },
                Param::State,
            ),
            (
                AuthorizeRequest {
                    code_challenge: "short",
                    ..base
                },
                Param::CodeChallenge,
            ),
            (
                AuthorizeRequest {
                    code_challenge: &CHALLENGE.replace('E', "+"),
                    ..base
                },
                Param::CodeChallenge,
            ),
        ];
        for (req, param) in cases {
            assert_eq!(
                o.authorize(t(0), &req),
                Err(OAuthError::InvalidParameter(param))
            );
        }
    }

    /// Each bound is inclusive: a parameter of exactly its longest length is accepted.
    #[test]
    fn authorize_parameters_at_their_longest_accepted() {
        let mut o = oauth();
        let u = user();
        let (client, uri, state) = (
            "c".repeat(MAX_CLIENT_ID_LEN),
            format!(
                "https://app.example/{}",
                "p".repeat(MAX_REDIRECT_URI_LEN - 20)
            ),
            "s".repeat(MAX_STATE_LEN),
        );
        assert_eq!(uri.len(), MAX_REDIRECT_URI_LEN);
        let req = AuthorizeRequest {
            client_id: &client,
            redirect_uri: &uri,
            ..request(&u, CHALLENGE, &state)
        };
        assert!(o.authorize(t(0), &req).is_ok());
    }

    #[test]
    fn authorize_live_state_reused_rejected() {
        let mut o = oauth();
        authorize(&mut o, t(0), "dup");
        let u = user();
        let r = o.authorize(t(1), &request(&u, CHALLENGE, "dup"));
        assert_eq!(r, Err(OAuthError::StateInUse));
    }

    /// A state lives ten minutes (docs/protocol.md section 7): in use until then, free after.
    #[test]
    fn state_is_in_use_for_its_ten_minutes_and_free_after() {
        let mut o = oauth();
        authorize(&mut o, t(0), "dup");
        let u = user();
        let req = request(&u, CHALLENGE, "dup");
        assert_eq!(o.authorize(t(599), &req), Err(OAuthError::StateInUse));
        assert!(o.authorize(t(600), &req).is_ok());
    }

    #[test]
    fn callback_unknown_code_rejected() {
        let mut o = oauth();
        authorize(&mut o, t(0), "s");
        assert_eq!(
            o.callback(t(1), &cb("nope", "s")),
            Err(OAuthError::CodeUnknown)
        );
        assert_eq!(
            o.callback(t(1), &cb("", "s")),
            Err(OAuthError::InvalidParameter(Param::Code))
        );
        assert_eq!(
            o.callback(t(1), &cb(&"c".repeat(129), "s")),
            Err(OAuthError::InvalidParameter(Param::Code))
        );
    }

    #[test]
    fn error_codes_distinct_and_messages_lowercase() {
        let all = [
            OAuthError::SecretTooShort { len: 1 },
            OAuthError::InvalidParameter(Param::State),
            OAuthError::UnsupportedMethod,
            OAuthError::StateInUse,
            OAuthError::StoreFull(Store::Codes),
            OAuthError::CodeUnknown,
            OAuthError::CodeExpired,
            OAuthError::CodeReplayed {
                revoke: Vec::new(),
                family: None,
            },
            OAuthError::ClientMismatch,
            OAuthError::RedirectMismatch,
            OAuthError::StateUnknown,
            OAuthError::StateMismatch,
            OAuthError::StateExpired,
            OAuthError::VerifierMalformed,
            OAuthError::VerifierMismatch,
        ];
        let codes: std::collections::BTreeSet<&str> = all.iter().map(OAuthError::code).collect();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let msg = e.to_string();
            let lower = msg.chars().next().is_some_and(char::is_lowercase);
            assert!(lower && !msg.ends_with('.'), "{msg}");
        }
        assert_eq!(
            OAuthError::InvalidParameter(Param::State).to_string(),
            "invalid state parameter"
        );
    }

    #[test]
    fn callback_at_code_ttl_expired() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        assert_eq!(
            o.callback(t(60), &cb(&a.code, "s")),
            Err(OAuthError::CodeExpired)
        );
        assert_eq!(
            o.callback(t(60), &cb(&a.code, "s")),
            Err(OAuthError::CodeUnknown)
        );
    }

    #[test]
    fn callback_replayed_code_returns_issued_tokens_to_revoke() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        let g = o.callback(t(1), &cb(&a.code, "s")).unwrap();
        let jti = Jti::parse("j-1").unwrap();
        let fam = FamilyId::parse("fam-1").unwrap();
        o.record_issued(&g.code, &[(jti.clone(), t(900))], Some(fam.clone()));
        // Long after the code's own TTL, the tombstone lives as long as the tokens.
        let r = o.callback(t(600), &cb(&a.code, "s"));
        assert_eq!(
            r,
            Err(OAuthError::CodeReplayed {
                revoke: vec![(jti, t(900))],
                family: Some(fam),
            })
        );
        assert_eq!((o.code_count(), o.redeemed_count()), (0, 1));
        o.prune(t(899));
        assert_eq!(o.redeemed_count(), 1);
        o.prune(t(900));
        assert_eq!(o.redeemed_count(), 0);
    }

    /// Tombstones go when their tokens have all expired, whatever order they were redeemed
    /// in; at the cap the oldest redeemed still goes first; pruned codes do not pile up in the
    /// order queue.
    #[test]
    fn redeemed_tombstones_go_by_expiry_and_the_oldest_at_the_cap() {
        let config = OAuthConfig {
            max_redeemed: 3,
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        let redeem = |o: &mut OAuth, at: u64, state: &str, keep: u64| {
            let a = authorize(o, t(at), state);
            let g = o.callback(t(at), &cb(&a.code, state)).unwrap();
            let jti = Jti::parse(&format!("j-{state}")).unwrap();
            o.record_issued(&g.code, &[(jti, t(keep))], None);
            a.code
        };
        // Redeemed in this order, dying out of it: a at 500, b at 200, c at 900.
        let a = redeem(&mut o, 0, "a", 500);
        let b = redeem(&mut o, 1, "b", 200);
        let c = redeem(&mut o, 2, "c", 900);
        o.prune(t(199));
        assert_eq!(o.redeemed_count(), 3);
        o.prune(t(200));
        assert_eq!(o.redeemed_count(), 2, "b's tokens expired first");
        assert!(matches!(
            o.callback(t(201), &cb(&b, "b")),
            Err(OAuthError::CodeUnknown)
        ));
        // Full again (a, c, d): the next redemption forgets the oldest live one, a.
        let _d = redeem(&mut o, 300, "d", 950);
        let _e = redeem(&mut o, 301, "e", 960);
        assert_eq!(o.redeemed_count(), 3);
        assert!(matches!(
            o.callback(t(302), &cb(&a, "a")),
            Err(OAuthError::CodeUnknown)
        ));
        assert!(matches!(
            o.callback(t(302), &cb(&c, "c")),
            Err(OAuthError::CodeReplayed { .. })
        ));
        assert!(o.redeemed.index_matches());
        o.prune(t(960));
        assert!(o.redeemed.is_empty() && o.redeemed.index_matches());
    }

    #[test]
    fn pruned_codes_do_not_pile_up_in_the_order_queue() {
        let mut o = oauth();
        // Ten live tombstones (their tokens live long) beside the churn: the queue may hold
        // at most twice the live ones plus 64 pruned codes.
        for i in 0..10u64 {
            let state = format!("live{i}");
            let a = authorize(&mut o, t(0), &state);
            let g = o.callback(t(0), &cb(&a.code, &state)).unwrap();
            let jti = Jti::parse(&format!("j-{i}")).unwrap();
            o.record_issued(&g.code, &[(jti, t(1_000_000))], None);
        }
        // Two hundred tombstones dying together: the bound drops below the queue at once.
        for i in 0..200u64 {
            let state = format!("mass{i}");
            let a = authorize(&mut o, t(0), &state);
            o.callback(t(0), &cb(&a.code, &state)).unwrap();
        }
        o.prune(t(100));
        assert!(o.redeemed_order.len() <= 2 * 10 + 64, "compacted at once");
        // Each code's tombstone (no tokens recorded) lives as long as the code would have.
        let step = CODE_TTL.as_secs() + 1;
        for i in 0..1000u64 {
            let state = format!("s{i}");
            let a = authorize(&mut o, t(i * step), &state);
            o.callback(t(i * step), &cb(&a.code, &state)).unwrap();
            o.prune(t((i + 1) * step));
        }
        assert_eq!(o.redeemed_count(), 10);
        assert!(
            o.redeemed_order.len() <= 2 * 10 + 64 + 1,
            "{}",
            o.redeemed_order.len()
        );
    }

    #[test]
    fn callback_redeemed_store_full_forgets_oldest_code() {
        let config = OAuthConfig {
            max_redeemed: 1,
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        let first = authorize(&mut o, t(0), "s1");
        let second = authorize(&mut o, t(0), "s2");
        o.callback(t(1), &cb(&first.code, "s1")).unwrap();
        o.callback(t(2), &cb(&second.code, "s2")).unwrap();
        assert_eq!(o.redeemed_count(), 1);
        // The forgotten code is still refused, it just has nothing left to revoke.
        assert_eq!(
            o.callback(t(3), &cb(&first.code, "s1")),
            Err(OAuthError::CodeUnknown)
        );
        assert!(matches!(
            o.callback(t(3), &cb(&second.code, "s2")),
            Err(OAuthError::CodeReplayed { .. })
        ));
    }

    #[test]
    fn callback_client_mismatch_rejected_and_code_burnt() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        let req = CallbackRequest {
            client_id: "evil",
            ..cb(&a.code, "s")
        };
        assert_eq!(o.state_count(), 1);
        assert_eq!(o.callback(t(1), &req), Err(OAuthError::ClientMismatch));
        assert_eq!(
            o.callback(t(1), &cb(&a.code, "s")),
            Err(OAuthError::CodeUnknown)
        );
        assert_eq!(
            (o.state_count(), o.code_count()),
            (0, 0),
            "the burnt code's state went with it"
        );
    }

    #[test]
    fn callback_redirect_mismatch_rejected() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        let req = CallbackRequest {
            redirect_uri: "https://evil.example/cb",
            ..cb(&a.code, "s")
        };
        assert_eq!(o.callback(t(1), &req), Err(OAuthError::RedirectMismatch));
    }

    #[test]
    fn callback_unknown_state_rejected() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        assert_eq!(
            o.callback(t(1), &cb(&a.code, "forged")),
            Err(OAuthError::StateUnknown)
        );
    }

    #[test]
    fn callback_other_flows_state_mismatch() {
        let mut o = oauth();
        let attacker = authorize(&mut o, t(0), "attacker-state");
        authorize(&mut o, t(0), "victim-state");
        assert_eq!(
            o.callback(t(1), &cb(&attacker.code, "victim-state")),
            Err(OAuthError::StateMismatch)
        );
    }

    #[test]
    fn callback_state_past_ttl_expired() {
        let config = OAuthConfig {
            state_ttl: Duration::from_secs(30),
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        let a = authorize(&mut o, t(0), "s");
        assert_eq!(
            o.callback(t(30), &cb(&a.code, "s")),
            Err(OAuthError::StateExpired)
        );
    }

    #[test]
    fn callback_wrong_verifier_mismatch() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        let other = "A".repeat(43);
        let req = CallbackRequest {
            code_verifier: &other,
            ..cb(&a.code, "s")
        };
        assert_eq!(o.callback(t(1), &req), Err(OAuthError::VerifierMismatch));
    }

    #[test]
    fn callback_verifier_bad_length_or_charset_malformed() {
        for bad in [
            "A".repeat(42),
            "A".repeat(129),
            format!("{}+", "A".repeat(43)),
        ] {
            let mut o = oauth();
            let a = authorize(&mut o, t(0), "s");
            let req = CallbackRequest {
                code_verifier: &bad,
                ..cb(&a.code, "s")
            };
            assert_eq!(
                o.callback(t(1), &req),
                Err(OAuthError::VerifierMalformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn callback_verifier_at_length_bounds_accepted() {
        for len in [43, 128] {
            let verifier = "a~.-_".repeat(30)[..len].to_string();
            let challenge = s256_challenge(&verifier);
            let mut o = oauth();
            let u = user();
            let a = o.authorize(t(0), &request(&u, &challenge, "s")).unwrap();
            let req = CallbackRequest {
                code_verifier: &verifier,
                ..cb(&a.code, "s")
            };
            assert_eq!(o.callback(t(1), &req).map(|g| g.user), Ok(user()));
        }
    }

    #[test]
    fn authorize_full_of_live_codes_store_full_then_frees_after_expiry() {
        let config = OAuthConfig {
            max_codes: 2,
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        authorize(&mut o, t(0), "a");
        authorize(&mut o, t(0), "b");
        let u = user();
        let req = request(&u, CHALLENGE, "c");
        assert_eq!(
            o.authorize(t(1), &req),
            Err(OAuthError::StoreFull(Store::Codes))
        );
        assert!(o.authorize(t(60), &req).is_ok());
        assert_eq!(o.code_count(), 1);
    }

    /// The expiry indexes must drop exactly what the old scan (`retain` of the live) dropped,
    /// and hold one entry per stored state and code through reuse, redemption and burning.
    #[test]
    fn pending_prune_drops_exactly_the_expired_and_the_indexes_track_every_entry() {
        let mut o = oauth();
        let first = authorize(&mut o, t(0), "reused");
        authorize(&mut o, t(5), "kept");
        let burnt = authorize(&mut o, t(10), "burnt");
        let redeemed = authorize(&mut o, t(20), "redeemed");
        // "reused" expired at 600: a new authorize may take the name, replacing the entry.
        let again = authorize(&mut o, t(700), "reused");
        assert_ne!(first.code, again.code);
        let wrong = CallbackRequest {
            client_id: "other",
            ..cb(&burnt.code, "burnt")
        };
        assert_eq!(
            o.callback(t(11), &wrong).map(|g| g.user),
            Err(OAuthError::ClientMismatch)
        );
        assert_eq!(
            o.callback(t(21), &cb(&redeemed.code, "redeemed"))
                .map(|g| g.user),
            Ok(user())
        );
        let check = |o: &OAuth| {
            assert!(o.states.index_matches());
            assert!(o.codes.index_matches());
        };
        check(&o);
        for now in [t(604), t(605), t(760), t(1300), t(1301)] {
            let live_states: Vec<String> = o
                .states
                .iter()
                .filter(|(_, s)| now < s.expires)
                .map(|(k, _)| k.clone())
                .collect();
            let live_codes: Vec<CodeKey> = o
                .codes
                .iter()
                .filter(|(_, c)| now < c.expires)
                .map(|(k, _)| *k)
                .collect();
            o.prune(now);
            assert_eq!(o.states.keys().cloned().collect::<Vec<_>>(), live_states);
            assert_eq!(o.codes.keys().copied().collect::<Vec<_>>(), live_codes);
            check(&o);
        }
        assert_eq!((o.state_count(), o.code_count()), (0, 0));
    }

    #[test]
    fn authorize_full_of_live_states_store_full() {
        let config = OAuthConfig {
            max_states: 1,
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        authorize(&mut o, t(0), "a");
        let u = user();
        let req = request(&u, CHALLENGE, "b");
        assert_eq!(
            o.authorize(t(1), &req),
            Err(OAuthError::StoreFull(Store::States))
        );
        assert!(
            o.authorize(t(600), &req).is_ok(),
            "a state dead at exactly its ten minutes makes room"
        );
    }

    /// A callback at the redeemed cap first drops dead tombstones; only when none is dead does
    /// it forget the oldest, so a live one keeps revoking on replay.
    #[test]
    fn callback_at_the_cap_drops_a_dead_tombstone_before_the_oldest_live_one() {
        let config = OAuthConfig {
            max_redeemed: 2,
            ..OAuthConfig::default()
        };
        let mut o = OAuth::new(SECRET, config, Plants::NONE).unwrap();
        let a = authorize(&mut o, t(0), "a");
        let g = o.callback(t(0), &cb(&a.code, "a")).unwrap();
        let jti = Jti::parse("j-a").unwrap();
        o.record_issued(&g.code, &[(jti, t(1000))], None);
        let b = authorize(&mut o, t(1), "b");
        o.callback(t(1), &cb(&b.code, "b")).unwrap();
        // b's tombstone (no tokens recorded) died with its code at 61; a's lives to 1000.
        let c = authorize(&mut o, t(100), "c");
        o.callback(t(100), &cb(&c.code, "c")).unwrap();
        assert_eq!(o.redeemed_count(), 2);
        assert!(matches!(
            o.callback(t(101), &cb(&a.code, "a")),
            Err(OAuthError::CodeReplayed { ref revoke, .. }) if revoke.len() == 1
        ));
    }

    /// A code is looked up by the bytes it encodes, so another text of the same bytes would
    /// find it: the decoder must refuse every text but the one the code was issued as.
    #[test]
    fn callback_other_text_of_a_codes_bytes_unknown_not_replayed() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        o.callback(t(1), &cb(&a.code, "s")).unwrap();
        // The last character's two low bits are padding: flipping one keeps the 32 bytes.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let (head, last) = a.code.split_at(a.code.len() - 1);
        let at = ALPHABET
            .iter()
            .position(|c| last.as_bytes() == [*c])
            .unwrap();
        let twin = format!("{head}{}", char::from(ALPHABET[at ^ 1]));
        assert_ne!(twin, a.code);
        assert_eq!(code_key(&twin), None);
        for other in [twin.as_str(), &format!("{}=", a.code), &a.code[..42]] {
            assert_eq!(
                o.callback(t(2), &cb(other, "s")),
                Err(OAuthError::CodeUnknown),
                "{other}"
            );
        }
        assert!(matches!(
            o.callback(t(2), &cb(&a.code, "s")),
            Err(OAuthError::CodeReplayed { .. })
        ));
    }

    /// Tokens recorded in two reports are kept in report order, up to the cap, and the
    /// tombstone lives until the last recorded one expires.
    #[test]
    fn record_issued_twice_appends_in_order_up_to_the_cap() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        o.callback(t(1), &cb(&a.code, "s")).unwrap();
        let ids = |from: usize, to: usize, exp: u64| -> Vec<(Jti, Instant)> {
            (from..to)
                .map(|i| (Jti::parse(&format!("j{i}")).unwrap(), t(exp)))
                .collect()
        };
        o.record_issued(&a.code, &ids(0, 10, 500), None);
        o.record_issued(&a.code, &ids(10, 20, 900), None);
        o.prune(t(899));
        match o.callback(t(899), &cb(&a.code, "s")) {
            Err(OAuthError::CodeReplayed { revoke, .. }) => {
                let mut expected = ids(0, 10, 500);
                expected.extend(ids(10, MAX_ISSUED_PER_CODE, 900));
                assert_eq!(revoke, expected);
            }
            other => panic!("expected replay, got {other:?}"),
        }
        o.prune(t(900));
        assert_eq!(o.redeemed_count(), 0);
    }

    #[test]
    fn record_issued_caps_ids_per_code() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "s");
        o.callback(t(1), &cb(&a.code, "s")).unwrap();
        let many: Vec<(Jti, Instant)> = (0..40)
            .map(|i| (Jti::parse(&format!("j{i}")).unwrap(), t(100)))
            .collect();
        o.record_issued(&a.code, &many, None);
        match o.callback(t(2), &cb(&a.code, "s")) {
            Err(OAuthError::CodeReplayed { revoke, family }) => {
                assert_eq!(revoke.len(), MAX_ISSUED_PER_CODE);
                assert_eq!(family, None);
            }
            other => panic!("expected replay, got {other:?}"),
        }
    }

    #[test]
    fn param_and_store_display_as_the_request_field_names() {
        let params = [
            (Param::ClientId, "client_id"),
            (Param::RedirectUri, "redirect_uri"),
            (Param::CodeChallenge, "code_challenge"),
            (Param::State, "state"),
            (Param::Code, "code"),
        ];
        for (param, name) in params {
            assert_eq!(param.to_string(), name);
        }
        assert_eq!(Store::States.to_string(), "state");
        assert_eq!(Store::Codes.to_string(), "code");
    }

    #[test]
    fn oauth_debug_shows_counts_and_no_secret() {
        let mut o = oauth();
        let _ = authorize(&mut o, t(0), "st-1");
        let text = format!("{o:?}");
        assert_eq!(
            text,
            "OAuth { counter: 1, states: 1, codes: 1, redeemed: 0, .. }"
        );
        assert!(!text.contains("0123456789abcdef"), "{text}");
    }

    #[test]
    fn record_issued_for_a_code_never_redeemed_records_nothing() {
        let mut o = oauth();
        let a = authorize(&mut o, t(0), "st-1");
        let jti = Jti::parse("j-1").unwrap();
        o.record_issued(&a.code, &[(jti.clone(), t(100))], None);
        o.record_issued("no-such-code", &[(jti, t(100))], None);
        assert!(o.redeemed.is_empty(), "nothing was redeemed");
        // The code still redeems as a first use, not as a replay.
        assert!(o.callback(t(1), &cb(&a.code, "st-1")).is_ok());
    }
}

#[cfg(all(test, feature = "planted-bugs"))]
mod planted_tests {
    use super::tests::request;
    use super::*;
    use crate::plant::Plant;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kQb6W4gN3kv-1b-JmMZOJjNW6jc";

    #[test]
    fn planted_oauth_state_unchecked_forged_state_accepted() {
        let u = UserId::parse("mallory").unwrap();
        let challenge = s256_challenge(VERIFIER);
        let run = |plants: Plants| {
            let mut o = OAuth::new(SECRET, OAuthConfig::default(), plants).unwrap();
            let a = o
                .authorize(
                    Instant::from_unix_secs(10),
                    &request(&u, &challenge, "attacker-state"),
                )
                .unwrap();
            o.callback(
                Instant::from_unix_secs(11),
                &CallbackRequest {
                    code: &a.code,
                    state: "victim-state-never-issued",
                    code_verifier: VERIFIER,
                    redirect_uri: "https://app.example/cb",
                    client_id: "web",
                },
            )
            .map(|g| g.user)
        };
        assert_eq!(run(Plants::NONE), Err(OAuthError::StateUnknown));
        assert_eq!(run(Plants::only(Plant::OauthStateUnchecked)), Ok(u.clone()));
    }
}
