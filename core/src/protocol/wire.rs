//! [`WireFrame`]: a server frame rendered to its text, as drivers write it.
//!
//! Stream events are rendered once and shared (`Arc<str>`) by the outbox and every connection
//! they fan out to. Direct replies (pong, heartbeat_ack, short acks) go to one connection
//! once; they are held inline, so answering a keep-alive allocates nothing. This type only
//! carries text the gateway rendered; it never parses or validates anything.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arrayvec::ArrayString;

/// The longest frame held inline: a pong or heartbeat_ack with a `message_id` of up to 24
/// or 15 bytes. Bigger inline storage would make every queued stream frame bigger too.
const INLINE_BYTES: usize = 56;

/// A rendered server frame: the text to send, shared or held inline. Frames compare by text.
#[derive(Clone)]
pub struct WireFrame(Repr);

#[derive(Clone)]
enum Repr {
    Inline(ArrayString<INLINE_BYTES>),
    Shared(Arc<str>),
}

impl WireFrame {
    /// The frame's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s.as_str(),
            Repr::Shared(s) => s,
        }
    }

    /// The text as a shared string, for drivers that keep frames beyond the call (a shared
    /// frame is returned as is; an inline one is copied into one allocation).
    pub fn into_shared(self) -> Arc<str> {
        match self.0 {
            Repr::Inline(s) => Arc::from(s.as_str()),
            Repr::Shared(s) => s,
        }
    }

    /// An empty frame, held inline: a slot for [`WireFrame::set_concat`] to fill in place.
    pub(crate) const EMPTY: Self = Self(Repr::Inline(ArrayString::new_const()));

    /// Makes this frame the pieces joined, writing them in place when they fit inline: a
    /// reply rendered straight into its send slot is never copied (a 64-byte frame built
    /// piecewise and then moved stalls on store forwarding).
    pub(crate) fn set_concat(&mut self, pieces: &[&str]) {
        if matches!(self.0, Repr::Shared(_)) {
            *self = Self::EMPTY;
        }
        if let Repr::Inline(inline) = &mut self.0 {
            inline.clear();
            if pieces.iter().all(|p| inline.try_push_str(p).is_ok()) {
                return;
            }
        }
        self.0 = Repr::Shared(Arc::from(pieces.concat()));
    }
}

impl Deref for WireFrame {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<Arc<str>> for WireFrame {
    fn from(s: Arc<str>) -> Self {
        Self(Repr::Shared(s))
    }
}

impl From<&str> for WireFrame {
    /// Inline when it fits, else copied into one shared allocation.
    fn from(s: &str) -> Self {
        match ArrayString::from(s) {
            Ok(inline) => Self(Repr::Inline(inline)),
            Err(_) => Self(Repr::Shared(Arc::from(s))),
        }
    }
}

impl From<String> for WireFrame {
    /// As for `&str`: an `Arc<str>` copies the text out of the `String` either way.
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl PartialEq for WireFrame {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for WireFrame {}

impl fmt::Debug for WireFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for WireFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(pieces: &[&str]) -> WireFrame {
        let mut frame = WireFrame::EMPTY;
        frame.set_concat(pieces);
        frame
    }

    #[test]
    fn short_frames_are_inline_and_long_ones_shared() {
        let short = concat(&[r#"{"type":"pong""#, "}"]);
        assert!(matches!(short.0, Repr::Inline(_)));
        assert_eq!(&*short, r#"{"type":"pong"}"#);
        let id = "x".repeat(INLINE_BYTES);
        let long = concat(&[r#"{"id":""#, &id, r#""}"#]);
        assert!(matches!(long.0, Repr::Shared(_)));
        assert_eq!(long.as_str(), format!(r#"{{"id":"{id}"}}"#));
    }

    #[test]
    fn wire_frame_display_is_the_text_and_debug_is_it_quoted() {
        let inline = WireFrame::from(r#"{"type":"pong"}"#);
        assert_eq!(inline.to_string(), r#"{"type":"pong"}"#);
        assert_eq!(format!("{inline:?}"), r#""{\"type\":\"pong\"}""#);
        let long = "z".repeat(INLINE_BYTES + 1);
        let shared = WireFrame::from(long.as_str());
        assert_eq!(shared.to_string(), long);
        assert_eq!(format!("{shared:?}"), format!("{long:?}"));
    }

    #[test]
    fn exactly_full_inline_storage_still_fits() {
        let full = "a".repeat(INLINE_BYTES);
        assert!(matches!(concat(&[&full]).0, Repr::Inline(_)));
        assert!(matches!(WireFrame::from(full.clone()).0, Repr::Inline(_)));
        let over = format!("{full}b");
        assert!(matches!(WireFrame::from(over.clone()).0, Repr::Shared(_)));
        assert_eq!(WireFrame::from(over.clone()).into_shared().as_ref(), over);
    }

    #[test]
    fn set_concat_rewrites_a_used_slot_whatever_it_held() {
        let mut slot = concat(&["x".repeat(INLINE_BYTES + 1).as_str()]);
        assert!(matches!(slot.0, Repr::Shared(_)));
        slot.set_concat(&["ab", "c"]);
        assert!(
            matches!(slot.0, Repr::Inline(_)),
            "short text goes back inline"
        );
        assert_eq!(slot.as_str(), "abc");
        slot.set_concat(&["d"]);
        assert_eq!(slot.as_str(), "d", "nothing of the earlier text is left");
        let long = "y".repeat(INLINE_BYTES);
        slot.set_concat(&[&long, "z"]);
        assert!(matches!(slot.0, Repr::Shared(_)));
        assert_eq!(slot.as_str(), format!("{long}z"));
    }

    #[test]
    fn shared_frames_keep_their_allocation() {
        let arc: Arc<str> = Arc::from("frame");
        let wire = WireFrame::from(Arc::clone(&arc));
        assert!(Arc::ptr_eq(&wire.into_shared(), &arc));
    }

    #[test]
    fn inline_frame_into_shared_copies_its_text() {
        let inline = concat(&[r#"{"type":"heartbeat_ack"}"#]);
        assert!(matches!(inline.0, Repr::Inline(_)));
        let shared = inline.into_shared();
        assert_eq!(shared.as_ref(), r#"{"type":"heartbeat_ack"}"#);
        assert!(matches!(WireFrame::from(shared).0, Repr::Shared(_)));
    }

    #[test]
    fn equality_is_by_text_across_representations() {
        let inline = concat(&["a", "b"]);
        assert_eq!(inline, WireFrame::from(Arc::<str>::from("ab")));
        assert_ne!(inline, WireFrame::from(Arc::<str>::from("ba")));
    }
}
