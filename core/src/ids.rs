//! Identifier newtypes.
//!
//! Every identifier the gateway handles has its own type so that a `RunId` can never be
//! passed where a `UserId` is expected (two of the planted bugs are exactly that mix-up).
//! The inner values are private: ids are created by parsing (with bounds) or by the
//! component that owns the counter, never by wrapping an arbitrary value at a call site.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest `sub` / user id accepted (docs/protocol.md section 1).
pub const MAX_USER_ID_LEN: usize = 128;
/// Longest `jti` accepted (docs/protocol.md section 1).
pub const MAX_JTI_LEN: usize = 128;
/// Longest client-chosen thread id accepted.
pub const MAX_THREAD_ID_LEN: usize = 128;

/// How many leading bytes of a string id are kept inline as its order key.
const KEY_BYTES: usize = 8;

/// The first (up to) [`KEY_BYTES`] bytes as a big-endian number, zero-padded: comparing these
/// first and the whole strings only on a tie is exactly byte-lexicographic order.
fn order_key(s: &str) -> u64 {
    let mut buf = [0u8; KEY_BYTES];
    for (dst, src) in buf.iter_mut().zip(s.as_bytes()) {
        *dst = *src;
    }
    u64::from_be_bytes(buf)
}

/// Orders two ids whose keys are equal. When both fit in the key, the zero-padded keys being
/// equal means the shorter is a prefix of the longer (its extra bytes are zeros), so the
/// lengths, which live in the fat pointer, decide without reading either string.
fn order_tie(a: &Arc<str>, b: &Arc<str>) -> std::cmp::Ordering {
    if a.len() <= KEY_BYTES && b.len() <= KEY_BYTES {
        a.len().cmp(&b.len())
    } else if Arc::ptr_eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        a.cmp(b)
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        ///
        /// Ordered exactly as its string. The id's first 8 bytes are kept inline beside the
        /// shared string, so comparisons in an ordered map rarely follow the pointer (with
        /// 10 000 users those pointer chases were a tenth of a simulation's time). Eight, not
        /// sixteen: the id stays 8-byte aligned and 24 bytes, which took 7 % off a 10 000-user
        /// world's memory (ids are in every map key and stream entry), and the simulator's
        /// ids (`u1234`, `u1234-t5`) still mostly fit.
        #[derive(Clone, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name {
            key: u64,
            text: Arc<str>,
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.key == other.key && order_tie(&self.text, &other.text).is_eq()
            }
        }

        impl Eq for $name {}

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.key
                    .cmp(&other.key)
                    .then_with(|| order_tie(&self.text, &other.text))
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.text.hash(state);
            }
        }

        // By hand: `serde(into = "String")` would copy the id into a new String on every
        // rendered frame and every hashed state.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.text)
            }
        }

        impl $name {
            /// Parses an id: 1 to the maximum length in chars, no control characters.
            pub fn parse(s: &str) -> Option<Self> {
                let n = s.chars().count();
                if n == 0 || n > $max || s.chars().any(char::is_control) {
                    return None;
                }
                Some(Self {
                    key: order_key(s),
                    text: Arc::from(s),
                })
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.text
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).ok_or_else(|| format!("invalid {}", stringify!($name)))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.text.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.text)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.text)
            }
        }
    };
}

string_id!(
    /// A user, as named by a validated token's `sub`. Identity only ever comes from a token.
    UserId,
    MAX_USER_ID_LEN
);
string_id!(
    /// A token's unique id (`jti`), the unit of revocation.
    Jti,
    MAX_JTI_LEN
);
string_id!(
    /// A conversation thread. Client-chosen; owned by the user who created it.
    ThreadId,
    MAX_THREAD_ID_LEN
);
string_id!(
    /// A refresh-token family: every refresh token descended from one login shares it.
    FamilyId,
    MAX_JTI_LEN
);
string_id!(
    /// A key id (`kid`) in the key ring.
    Kid,
    MAX_JTI_LEN
);

macro_rules! counter_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw counter value. Only the owner of the counter should call this.
            pub const fn new(v: u64) -> Self {
                Self(v)
            }

            /// The raw counter value.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The following id.
            #[must_use]
            pub const fn next(self) -> Self {
                Self(self.0 + 1)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

counter_id!(
    /// A WebSocket connection, assigned by the driver (simulator or server) before the handshake.
    ConnId,
    "conn-"
);
counter_id!(
    /// A per-user stream position: strictly increasing and gap-free over one user's outbox.
    Seq,
    "seq-"
);
counter_id!(
    /// A position in the gateway's global event log.
    LogSeq,
    "log-"
);
/// An agent run, assigned by the gateway. On the wire (and in logs) it is the string `run-<n>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RunId(u64);

impl RunId {
    /// What the wire form puts before the number. Writers that format a run id without
    /// `Display` (frames, the state hash, execution ids) spell it with this.
    pub(crate) const PREFIX: &str = "run-";

    /// Wraps a raw counter value. Only the gateway's run counter should call this.
    pub const fn new(v: u64) -> Self {
        Self(v)
    }

    /// The raw counter value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The following id.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Parses the wire form `run-<n>`.
    pub fn parse(s: &str) -> Option<Self> {
        let digits = s.strip_prefix(Self::PREFIX)?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(Self)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.0)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        RunId::parse(&s).ok_or_else(|| serde::de::Error::custom("run id must be run-<n>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('b'), Just(' '), Just('é')],
            1..20,
        )
        .prop_map(|c| c.into_iter().collect())
    }

    proptest! {
        #[test]
        fn id_order_is_string_order(a in bytes(), b in bytes(), shared in 0usize..40) {
            // Long shared prefixes (past the inline key) are the interesting case.
            let b: String = a.chars().take(shared).chain(b.chars()).collect();
            let (x, y) = (UserId::parse(&a).unwrap(), UserId::parse(&b).unwrap());
            prop_assert_eq!(x.cmp(&y), a.cmp(&b));
            prop_assert_eq!(y.cmp(&x), b.cmp(&a));
            prop_assert_eq!(x == y, a == b);
        }
    }

    #[test]
    fn id_order_handles_prefixes_and_the_key_boundary() {
        let cases = [
            ("a", "a "),
            ("user-000", "user-0001"),
            ("user-00042", "user-00042"),
            ("user-00042", "user-00041"),
            ("abcdefghij", "abcdefgi"),
            ("u9", "u10"),
            ("thread-run-1234", "thread-run-1234-1"),
            ("thread-run-12345", "thread-run-12345"),
            ("thread-run-123456", "thread-run-123457"),
            ("0123456789abcdef", "0123456789abcdef "),
            ("01234567", "01234567 "),
            ("01234567", "01234568"),
            ("u1234-t1", "u1234-t12"),
            ("u1234-t9", "u1234-t10"),
            ("u1234-t", "u1234-t1"),
        ];
        for (a, b) in cases {
            let (x, y) = (UserId::parse(a).unwrap(), UserId::parse(b).unwrap());
            assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
            assert_eq!(y.cmp(&x), b.cmp(a), "{b:?} vs {a:?}");
            assert_eq!(x == y, a == b);
        }
    }

    #[test]
    fn user_id_rejects_empty_long_and_control() {
        assert!(UserId::parse("").is_none());
        assert!(UserId::parse(&"a".repeat(129)).is_none());
        assert!(UserId::parse("a\nb").is_none());
        assert_eq!(
            UserId::parse(&"é".repeat(128)).map(|u| u.as_str().len()),
            Some(256)
        );
    }

    #[test]
    fn run_id_round_trips_through_wire_form() {
        let r = RunId::new(42);
        assert_eq!(RunId::parse(&r.to_string()), Some(r));
        assert_eq!(RunId::parse("run-"), None);
        assert_eq!(RunId::parse("run-+1"), None);
        assert_eq!(RunId::parse("user-1"), None);
        assert_eq!(RunId::parse("run-99999999999999999999999"), None);
    }

    #[test]
    fn run_id_serializes_as_wire_string() {
        assert_eq!(
            serde_json::to_string(&RunId::new(5)).ok().as_deref(),
            Some("\"run-5\"")
        );
        assert_eq!(
            serde_json::from_str::<RunId>("\"run-5\"").ok(),
            Some(RunId::new(5))
        );
        assert!(serde_json::from_str::<RunId>("5").is_err());
    }

    #[test]
    fn string_ids_deserialize_with_validation() {
        let ok: Result<ThreadId, _> = serde_json::from_str("\"t-1\"");
        assert_eq!(ok.map(|t| t.to_string()).ok(), Some("t-1".to_string()));
        let bad: Result<ThreadId, _> = serde_json::from_str("\"\"");
        assert!(bad.is_err());
    }
}
