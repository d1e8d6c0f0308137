//! Stream-event payloads, rendered to JSON once when they are made.
//!
//! A payload is built by the agent model or the router and then copied into every frame and
//! every replayed plan that carries it, so it is stored as its final compact JSON text (keys
//! in sorted order, exactly as `serde_json` renders an object) and spliced, never re-rendered.
//! The same writer encodes the frames simulated clients send (`ClientFrame::to_json`).
//! This module never decides what a payload says; it only writes what it is given.

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
        ObjectWriter {
            buf: Vec::with_capacity(96),
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
pub(crate) struct ObjectWriter {
    buf: Vec<u8>,
    last_key: Option<&'static str>,
}

impl ObjectWriter {
    fn key(&mut self, key: &'static str) {
        debug_assert!(
            self.last_key.is_none_or(|k| k < key),
            "payload keys out of order"
        );
        self.buf
            .push(if self.last_key.is_none() { b'{' } else { b',' });
        self.last_key = Some(key);
        write_json_str(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// Adds a string field.
    pub(crate) fn str(mut self, key: &'static str, value: &str) -> Self {
        self.key(key);
        write_json_str(&mut self.buf, value);
        self
    }

    /// Adds an unsigned integer field.
    pub(crate) fn u64(mut self, key: &'static str, value: u64) -> Self {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// Adds a boolean field.
    pub(crate) fn bool(mut self, key: &'static str, value: bool) -> Self {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// Adds a nested object field.
    pub(crate) fn object(mut self, key: &'static str, value: &Payload) -> Self {
        self.key(key);
        self.buf.extend_from_slice(value.as_json().as_bytes());
        self
    }

    /// The finished object.
    pub(crate) fn finish(self) -> Payload {
        Payload(Arc::from(self.finish_string()))
    }

    /// The finished object's text, for a caller that needs no shared [`Payload`].
    pub(crate) fn finish_string(mut self) -> String {
        if self.last_key.is_none() {
            self.buf.push(b'{');
        }
        self.buf.push(b'}');
        // Only whole UTF-8 strings were written, so this cannot fail: as in
        // `render_stream_frame`, a failure is a bug here and must not become a different object.
        match String::from_utf8(self.buf) {
            Ok(text) => text,
            Err(e) => unreachable!("an object written from UTF-8 strings is not UTF-8: {e}"),
        }
    }
}

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it.
pub(crate) fn write_json_str(buf: &mut Vec<u8>, s: &str) {
    let mut ser = serde_json::Serializer::new(buf);
    // Writing into a Vec cannot fail.
    let _ = ser.serialize_str(s);
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

    #[test]
    fn empty_payload_is_an_empty_object() {
        assert_eq!(Payload::object().finish().as_json(), "{}");
    }
}
