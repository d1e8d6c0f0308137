//! JSON objects written field by field, exactly as `serde_json` renders them (keys in sorted
//! order, compact): stream-event payloads and the frames simulated clients send
//! (`ClientFrame::to_json`).
//!
//! A [`Payload`] is an object rendered once, kept as its final text and spliced into every
//! frame that carries it, never re-rendered: a broadcast's text, or a payload read back from a
//! journal. An agent step's payload is written by the same [`ObjectWriter`] straight into each
//! frame instead (`outbox::StreamEntry` keeps the step's facts), so a retained event keeps no
//! text.
//! This module never decides what a payload says; it only writes what it is given.

use std::borrow::BorrowMut;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON object, already rendered compactly (only `ObjectWriter` makes one, so the text
/// is always valid JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload(Arc<str>);

impl Payload {
    /// The compact JSON text of the object.
    pub fn as_json(&self) -> &str {
        &self.0
    }

    /// Starts an object; keys must be added in ascending order.
    pub(crate) fn object() -> ObjectWriter {
        Self::object_in(String::with_capacity(96))
    }

    /// [`Payload::object`] written in `buf` (emptied first), which
    /// [`ObjectWriter::finish_reusing`] hands back: a caller on a hot path keeps one buffer,
    /// and the payload then costs one allocation, its own, not a buffer besides.
    pub(crate) fn object_in(mut buf: String) -> ObjectWriter {
        buf.clear();
        ObjectWriter {
            buf,
            last_key: None,
        }
    }
}

impl Serialize for Payload {
    /// Embeds the object as JSON (for state hashing, which is rare: the copy is fine there).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(self.0.to_string())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Payload {
    /// Reads an embedded JSON object (a journal's stream entry) and keeps its compact
    /// rendering. Objects are read through `serde_json::Value`, whose keys come out sorted, so
    /// a payload this crate wrote reads back as the same bytes.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            v @ serde_json::Value::Object(_) => Ok(Payload(Arc::from(v.to_string()))),
            _ => Err(serde::de::Error::custom("a payload must be a JSON object")),
        }
    }
}

/// Writes one JSON object field by field, in the key order `serde_json` uses for objects.
/// Written into a `String`, so finishing it never re-validates the text as UTF-8: its own
/// (`ObjectWriter<String>`, which finishes into a [`Payload`]), or the end of a borrowed one
/// ([`ObjectWriter::appending`], for a payload written straight into a frame).
pub(crate) struct ObjectWriter<B: BorrowMut<String> = String> {
    buf: B,
    last_key: Option<&'static str>,
}

impl<'a> ObjectWriter<&'a mut String> {
    /// Starts an object at the end of `buf`; [`end`](Self::end) closes it.
    pub(crate) fn appending(buf: &'a mut String) -> Self {
        ObjectWriter {
            buf,
            last_key: None,
        }
    }

    /// Closes the object.
    pub(crate) fn end(mut self) {
        self.close();
    }
}

impl<B: BorrowMut<String>> ObjectWriter<B> {
    /// Keys are names in this crate's source, none needing an escape, so they are copied as
    /// they are: exactly what escaping them would write.
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            self.last_key.is_none_or(|k| k < key),
            "payload keys out of order"
        );
        debug_assert!(
            !key.bytes().any(needs_escape),
            "payload key {key:?} needs escaping"
        );
        let buf = self.buf.borrow_mut();
        buf.push(if self.last_key.is_none() { '{' } else { ',' });
        self.last_key = Some(key);
        buf.push('"');
        buf.push_str(key);
        buf.push_str("\":");
    }

    /// Adds a string field.
    pub(crate) fn str(mut self, key: &'static str, value: &str) -> Self {
        self.key(key);
        write_json_str(self.buf.borrow_mut(), value);
        self
    }

    /// Adds a string field whose value is `parts` joined, with no joined copy made, for parts
    /// that need no escape (this crate's constants and formatted numbers): copied without
    /// the escape scan. An agent step's payload is written into every frame of it, and the
    /// scan found nothing in all of it but the task.
    pub(crate) fn str_verbatim(mut self, key: &'static str, parts: &[&str]) -> Self {
        debug_assert!(
            parts.iter().all(|p| !p.bytes().any(needs_escape)),
            "{parts:?} needs escaping"
        );
        self.key(key);
        let buf = self.buf.borrow_mut();
        buf.push('"');
        for part in parts {
            buf.push_str(part);
        }
        buf.push('"');
        self
    }

    /// Adds an unsigned integer field.
    pub(crate) fn u64(mut self, key: &'static str, value: u64) -> Self {
        self.key(key);
        self.buf
            .borrow_mut()
            .push_str(itoa::Buffer::new().format(value));
        self
    }

    /// Adds a boolean field.
    pub(crate) fn bool(mut self, key: &'static str, value: bool) -> Self {
        self.key(key);
        self.buf
            .borrow_mut()
            .push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a nested object field.
    pub(crate) fn object(mut self, key: &'static str, value: &Payload) -> Self {
        self.key(key);
        self.buf.borrow_mut().push_str(value.as_json());
        self
    }

    /// Adds a nested object field written by `fill`, in place.
    pub(crate) fn object_with(
        mut self,
        key: &'static str,
        fill: impl FnOnce(ObjectWriter<&mut String>) -> ObjectWriter<&mut String>,
    ) -> Self {
        self.key(key);
        fill(ObjectWriter::appending(self.buf.borrow_mut())).end();
        self
    }

    fn close(&mut self) {
        let buf = self.buf.borrow_mut();
        if self.last_key.is_none() {
            buf.push('{');
        }
        buf.push('}');
    }
}

impl ObjectWriter {
    /// The finished object.
    pub(crate) fn finish(self) -> Payload {
        Payload(Arc::from(self.finish_string()))
    }

    /// The finished object, and the buffer it was written in for the next
    /// [`Payload::object_in`].
    pub(crate) fn finish_reusing(self) -> (Payload, String) {
        let buf = self.finish_string();
        (Payload(Arc::from(buf.as_str())), buf)
    }

    /// The finished object's text, for a caller that needs no shared [`Payload`].
    pub(crate) fn finish_string(mut self) -> String {
        self.close();
        self.buf
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as `serde_json` escapes it: `"`, `\\`
/// and the control characters below U+0020 (`\b`, `\t`, `\n`, `\f` and `\r` by name, the
/// rest as `\u00xx` in lower-case hex), nothing else. By hand rather than through
/// `serde_json::Serializer`, which goes byte by byte through a table and into a `Vec<u8>`: the
/// ids and texts in a frame almost never need an escape, so the plain runs between escapes are
/// found eight bytes at a time and copied whole.
pub(crate) fn write_json_str(buf: &mut String, s: &str) {
    buf.reserve(s.len() + 2);
    buf.push('"');
    let mut rest = s;
    loop {
        // The end of `rest` or an ASCII byte, so a char boundary: a failed split is a bug
        // here, never input, and must not go out as a different string.
        let Some((run, tail)) = rest.split_at_checked(first_escape(rest.as_bytes())) else {
            unreachable!("an escape split {rest:?} off a char boundary");
        };
        buf.push_str(run);
        let Some(b) = tail.bytes().next() else {
            break;
        };
        push_escape(buf, b);
        // The escaped byte is ASCII, so the rest starts at a char boundary.
        rest = tail.get(1..).unwrap_or_default();
    }
    buf.push('"');
}

/// Whether `serde_json` escapes this byte inside a string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The index of the first byte of `bytes` that [`needs_escape`], or its length when none does.
fn first_escape(bytes: &[u8]) -> usize {
    let (words, _) = bytes.as_chunks::<8>();
    let mut skipped = 0;
    for word in words {
        if word_needs_escape(u64::from_le_bytes(*word)) {
            break;
        }
        skipped += 8;
    }
    bytes
        .iter()
        .skip(skipped)
        .position(|b| needs_escape(*b))
        .map_or(bytes.len(), |i| skipped + i)
}

/// Whether any of the eight bytes of `w` [`needs_escape`]: the classic "has a byte less than
/// n" and "has a zero byte" word tests (exact about whether there is one, not where).
const fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = w ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

/// Appends the escape `serde_json` writes for `b`, a byte that [`needs_escape`].
fn push_escape(buf: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let named = match b {
        b'"' => "\\\"",
        b'\\' => "\\\\",
        0x08 => "\\b",
        0x0c => "\\f",
        b'\n' => "\\n",
        b'\r' => "\\r",
        b'\t' => "\\t",
        _ => {
            buf.push_str("\\u00");
            for nibble in [b >> 4, b & 0x0f] {
                buf.push(char::from(HEX[usize::from(nibble)]));
            }
            return;
        }
    };
    buf.push_str(named);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_reads_back_as_the_bytes_it_was_written_as() {
        let inner = Payload::object().str("query", "q\"1\n").finish();
        let p = Payload::object()
            .object("args", &inner)
            .bool("b", true)
            .u64("n", u64::MAX)
            .str("text", "é \u{1} </script>")
            .finish();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, p.as_json());
        let back: Payload = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        for not_object in ["[]", "\"{}\"", "7", "null"] {
            let err = serde_json::from_str::<Payload>(not_object).unwrap_err();
            assert!(
                err.to_string().contains("JSON object"),
                "{not_object}: {err}"
            );
        }
    }

    #[test]
    fn payload_bytes_equal_serde_json_rendering_of_the_same_object() {
        let inner = Payload::object().str("query", "q\"1\n").finish();
        let p = Payload::object()
            .object("args", &inner)
            .bool("b", false)
            .u64("duration_ms", 1234)
            .str("text", "é \u{1} \\ </script>")
            .finish();
        let expected = json!({
            "text": "é \u{1} \\ </script>",
            "duration_ms": 1234,
            "args": {"query": "q\"1\n"},
            "b": false,
        })
        .to_string();
        assert_eq!(p.as_json(), expected);
        assert!(
            serde_json::from_str::<serde_json::Value>(p.as_json()).is_ok_and(|v| v.is_object())
        );
        assert_eq!(serde_json::to_string(&p).ok().as_deref(), Some(&*expected));
    }

    fn escaped(s: &str) -> String {
        let mut buf = String::from("kept");
        write_json_str(&mut buf, s);
        buf.strip_prefix("kept").unwrap_or_default().to_owned()
    }

    #[test]
    fn write_json_str_escapes_every_ascii_byte_at_every_offset_as_serde_json_does() {
        // Every offset into the eight-byte words and the tail after them, for every ASCII
        // byte, alone and next to a second escape and a multi-byte char.
        for len in 0..=19 {
            for at in 0..len {
                for b in 0..=0x7fu8 {
                    let mut s: Vec<char> = "abcdefghijklmnopqrs".chars().take(len).collect();
                    s[at] = char::from(b);
                    let plain: String = s.iter().collect();
                    let mixed = format!("{plain}\"é✓{plain}\u{1f}");
                    for text in [plain, mixed] {
                        let via_serde = serde_json::to_string(&text).unwrap();
                        assert_eq!(escaped(&text), via_serde, "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn write_json_str_leaves_other_chars_as_serde_json_does() {
        let texts = [
            String::new(),
            "\u{7f}\u{80}\u{9f}\u{a0}\u{2028}\u{2029}\u{feff}".to_owned(),
            "é✓😀 </script> & ' `".repeat(5),
            "\"".repeat(17),
            "\\\n\r\t\u{8}\u{c}\u{0}".repeat(3),
            format!("{}\u{1}", "x".repeat(64)),
        ];
        for text in texts {
            let via_serde = serde_json::to_string(&text).unwrap();
            assert_eq!(escaped(&text), via_serde, "{text:?}");
        }
    }

    #[test]
    fn empty_payload_is_an_empty_object() {
        assert_eq!(Payload::object().finish().as_json(), "{}");
    }

    #[test]
    fn a_reused_buffer_writes_the_same_payload_and_comes_back() {
        let (first, buf) = Payload::object_in(String::from("left over"))
            .str("from", "u\"1")
            .str("text", "hi")
            .finish_reusing();
        let fresh = Payload::object()
            .str("from", "u\"1")
            .str("text", "hi")
            .finish();
        assert_eq!(first, fresh);
        assert_eq!(buf, fresh.as_json());
        let (empty, _) = Payload::object_in(buf).finish_reusing();
        assert_eq!(empty.as_json(), "{}");
    }

    #[test]
    fn an_appended_object_writes_after_what_the_buffer_holds_the_same_bytes() {
        let escaped = "a\"é\n\u{1f}z";
        let owned = Payload::object()
            .object("args", &Payload::object().str("q", escaped).finish())
            .str("joined", "run-12-exec-é")
            .u64("n", 7)
            .finish();
        let mut buf = String::from("[1,");
        ObjectWriter::appending(&mut buf)
            .object_with("args", |a| a.str("q", escaped))
            .str_verbatim("joined", &["run-", "12", "", "-exec-é"])
            .u64("n", 7)
            .end();
        assert_eq!(buf, format!("[1,{}", owned.as_json()));
        let mut empty = String::from("x");
        ObjectWriter::appending(&mut empty)
            .object_with("inner", |a| a)
            .end();
        assert_eq!(empty, r#"x{"inner":{}}"#);
    }
}
