//! Permission grants of the form `resource:action` and how they match (docs/protocol.md section 6).
//!
//! A grant matches a required permission exactly; `x:*` matches every `x:...`; `system:*`
//! matches everything; `admin` and `admin:*` make the holder an admin. Matching is plain
//! string logic: this module must never build a pattern or regex from input.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// Longest permission string, in bytes (all permitted characters are ASCII).
pub const MAX_PERMISSION_LEN: usize = 64;
/// Most permissions one token may carry.
pub const MAX_PERMISSIONS: usize = 50;

/// One validated permission string.
///
/// 1..=64 characters of `[A-Za-z0-9_:.-]`. A trailing `:*` is also accepted, because the
/// wildcard grants of docs/protocol.md section 6 (`x:*`, `system:*`) must be expressible; `*`
/// anywhere else is rejected. Stored inline (no allocation): tokens carry up to 50 of these
/// and every validation builds them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    len: u8,
    /// ASCII; zero after `len`.
    bytes: [u8; MAX_PERMISSION_LEN],
}

fn plain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-')
}

impl Permission {
    /// Parses a permission; `None` if it is empty, too long or has a forbidden character.
    pub fn parse(s: &str) -> Option<Self> {
        let len = u8::try_from(s.len()).ok()?;
        // An empty string has an empty body, so this also refuses it.
        let body = s.strip_suffix(":*").unwrap_or(s);
        if body.is_empty() || !body.bytes().all(plain_char) {
            return None;
        }
        let mut bytes = [0; MAX_PERMISSION_LEN];
        // Longer than MAX_PERMISSION_LEN: the buffer has no such range.
        bytes.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(Self { len, bytes })
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The permission string.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Whether this grant covers `required`.
    pub fn grants(&self, required: &str) -> bool {
        let (g, required) = (self.as_bytes(), required.as_bytes());
        if g == required || g == b"system:*" {
            return true;
        }
        // `x:*` covers `x:<anything>`: strip the `*`, keep the `:` so `x:*` does not cover `xy:a`.
        // `parse` admits a `*` only as a trailing `:*`, so a stripped prefix ends with `:`.
        match g.strip_suffix(b"*") {
            Some(prefix) => required.len() > prefix.len() && required.starts_with(prefix),
            None => false,
        }
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({:?})", self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The permissions of one token: at most 50 validated grants. Cheap to clone (shared).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions(Arc<[Permission]>);

impl Permissions {
    /// No permissions.
    pub fn empty() -> Self {
        Self(Arc::from([]))
    }

    /// Builds a set from grants; `None` if there are more than 50.
    pub fn new(grants: Vec<Permission>) -> Option<Self> {
        (grants.len() <= MAX_PERMISSIONS).then(|| Self(Arc::from(grants)))
    }

    /// Whether some grant covers `required`.
    pub fn allows(&self, required: &str) -> bool {
        self.0.iter().any(|p| p.grants(required))
    }

    /// Whether the holder is an admin (`admin` or `admin:*`).
    pub fn is_admin(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p.as_bytes(), b"admin" | b"admin:*"))
    }

    /// The grants, in token order.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    /// Number of grants.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no grants.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perms(list: &[&str]) -> Permissions {
        Permissions::new(list.iter().map(|s| Permission::parse(s).unwrap()).collect()).unwrap()
    }

    #[test]
    fn permission_parse_charset_and_length_enforced() {
        assert!(Permission::parse("threads:read").is_some());
        assert!(Permission::parse("a_b-c.d:E9").is_some());
        assert!(Permission::parse("threads:*").is_some());
        assert!(Permission::parse(&"a".repeat(64)).is_some());
        assert!(Permission::parse(&"a".repeat(65)).is_none());
        assert!(Permission::parse("").is_none());
        assert!(Permission::parse("*").is_none());
        assert!(Permission::parse(":*").is_none());
        assert!(Permission::parse("a*:b").is_none());
        assert!(Permission::parse("threads:read ").is_none());
        assert!(Permission::parse("thréads").is_none());
        assert!(Permission::parse("a/b").is_none());
    }

    #[test]
    fn allows_exact_match_only_without_wildcard() {
        let p = perms(&["threads:read"]);
        assert!(p.allows("threads:read"));
        assert!(!p.allows("threads:write"));
        assert!(!p.allows("threads:rea"));
        assert!(!p.allows("threads"));
    }

    #[test]
    fn allows_resource_wildcard_covers_that_resource_only() {
        let p = perms(&["threads:*"]);
        assert!(p.allows("threads:read"));
        assert!(p.allows("threads:write"));
        assert!(!p.allows("threads:"));
        assert!(!p.allows("threadsx:read"));
        assert!(!p.allows("runs:read"));
    }

    #[test]
    fn allows_system_wildcard_covers_everything() {
        let p = perms(&["system:*"]);
        assert!(p.allows("runs:cancel"));
        assert!(p.allows("admin"));
    }

    #[test]
    fn is_admin_admin_or_admin_wildcard_true() {
        assert!(perms(&["admin"]).is_admin());
        assert!(perms(&["x:y", "admin:*"]).is_admin());
        assert!(!perms(&["admin:read"]).is_admin());
        assert!(!perms(&["administrator"]).is_admin());
        assert!(!Permissions::empty().is_admin());
    }

    #[test]
    fn permissions_new_over_fifty_rejected() {
        let one = || Permission::parse("a:b").unwrap();
        assert_eq!(Permissions::new(vec![one(); 50]).map(|p| p.len()), Some(50));
        assert!(Permissions::new(vec![one(); 51]).is_none());
    }

    #[test]
    fn permission_display_debug_and_serialize_show_the_string() {
        let p = Permission::parse("threads:*").unwrap();
        assert_eq!(p.as_str(), "threads:*");
        assert_eq!(p.to_string(), "threads:*");
        assert_eq!(format!("{p:?}"), "Permission(\"threads:*\")");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"threads:*\"");
    }

    #[test]
    fn permission_parse_over_255_bytes_rejected() {
        assert!(Permission::parse(&"a".repeat(256)).is_none());
    }

    #[test]
    fn permissions_serialize_as_array_in_token_order() {
        let p = perms(&["runs:read", "admin"]);
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"["runs:read","admin"]"#
        );
        let listed: Vec<&str> = p.iter().map(Permission::as_str).collect();
        assert_eq!(listed, ["runs:read", "admin"]);
        assert!(!p.is_empty());
        assert!(Permissions::empty().is_empty());
        assert_eq!(Permissions::empty().len(), 0);
        assert_eq!(serde_json::to_string(&Permissions::empty()).unwrap(), "[]");
    }
}
