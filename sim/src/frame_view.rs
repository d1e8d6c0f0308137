//! The few top-level fields of a gateway frame that the simulated clients and the checkers
//! read, parsed in one pass without building a `serde_json::Value` tree.
//!
//! Parsing every received frame into a `Value` was one of the simulator's top costs (one
//! allocation per key, string and nested object). This view borrows strings from the frame
//! where they have no escapes and skips every other field. It must give exactly what
//! `serde_json::from_str::<Value>(frame).unwrap_or_default().get(key)` gave: a frame that is
//! not one JSON object yields no fields, a repeated key keeps its last value, and a field of
//! an unexpected type reads as absent for that field only. It must never reject or repair a
//! frame, so that checkers see what the clients saw.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

/// One field's value, reduced to what the readers ask of it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
enum Scalar<'a> {
    /// Absent, or of a type no reader asks for (null, bool, negative, float, array, object).
    #[default]
    Other,
    /// A non-negative integer that fits a `u64`.
    U64(u64),
    /// A string, borrowed from the frame unless it had escapes.
    Str(Cow<'a, str>),
}

impl Scalar<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::U64(n) => Some(*n),
            _ => None,
        }
    }
}

/// The fields of a frame that clients and checkers read; see the module docs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FrameView<'a> {
    kind: Scalar<'a>,
    code: Scalar<'a>,
    user_id: Scalar<'a>,
    run_id: Scalar<'a>,
    thread_id: Scalar<'a>,
    message_id: Scalar<'a>,
    seq: Scalar<'a>,
    oldest_seq: Scalar<'a>,
    from_seq: Scalar<'a>,
    exp: Scalar<'a>,
}

impl<'a> FrameView<'a> {
    /// Reads `frame`; anything that is not one JSON object gives a view with no fields.
    pub(crate) fn parse(frame: &'a str) -> Self {
        let mut de = serde_json::Deserializer::from_str(frame);
        let Ok(view) = de.deserialize_map(ViewVisitor) else {
            return Self::default();
        };
        if de.end().is_err() {
            return Self::default();
        }
        view
    }

    /// `type`, or `""` when absent or not a string.
    pub(crate) fn kind(&self) -> &str {
        self.kind.as_str().unwrap_or("")
    }

    /// `type`, when it is a string.
    pub(crate) fn kind_opt(&self) -> Option<&str> {
        self.kind.as_str()
    }

    /// `code`, when it is a string.
    pub(crate) fn code(&self) -> Option<&str> {
        self.code.as_str()
    }

    /// `user_id`, when it is a string.
    pub(crate) fn user_id(&self) -> Option<&str> {
        self.user_id.as_str()
    }

    /// `run_id`, when it is a string.
    pub(crate) fn run_id(&self) -> Option<&str> {
        self.run_id.as_str()
    }

    /// `thread_id`, when it is a string.
    pub(crate) fn thread_id(&self) -> Option<&str> {
        self.thread_id.as_str()
    }

    /// `message_id`, when it is a string (the echo of a request's id in a direct reply).
    pub(crate) fn message_id(&self) -> Option<&str> {
        self.message_id.as_str()
    }

    /// `seq`, when it is a non-negative integer.
    pub(crate) fn seq(&self) -> Option<u64> {
        self.seq.as_u64()
    }

    /// `oldest_seq`, when it is a non-negative integer.
    pub(crate) fn oldest_seq(&self) -> Option<u64> {
        self.oldest_seq.as_u64()
    }

    /// `from_seq`, when it is a non-negative integer.
    pub(crate) fn resumed_from(&self) -> Option<u64> {
        self.from_seq.as_u64()
    }

    /// `exp` (of `reauthenticated`), when it is a non-negative integer.
    pub(crate) fn exp(&self) -> Option<u64> {
        self.exp.as_u64()
    }
}

/// The keys the readers ask for; every other key's value is skipped.
enum Key {
    Kind,
    Code,
    UserId,
    RunId,
    ThreadId,
    MessageId,
    Seq,
    OldestSeq,
    FromSeq,
    Exp,
    /// Read only inside a stream entry's payload ([`payload_execution_id`]).
    ExecutionId,
    Other,
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "type" => Key::Kind,
            "code" => Key::Code,
            "user_id" => Key::UserId,
            "run_id" => Key::RunId,
            "thread_id" => Key::ThreadId,
            "message_id" => Key::MessageId,
            "seq" => Key::Seq,
            "oldest_seq" => Key::OldestSeq,
            "from_seq" => Key::FromSeq,
            "exp" => Key::Exp,
            "execution_id" => Key::ExecutionId,
            _ => Key::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(u64::try_from(v).map_or(Scalar::Other, Scalar::U64))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Other)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The `execution_id` of a payload object on its own (a stream entry's payload): what
/// `serde_json::from_str::<Value>(payload)` gives for that key when it is a string (a
/// repeated key keeps its last value), and `None` for anything that is not one JSON object.
pub(crate) fn payload_execution_id(payload: &str) -> Option<Cow<'_, str>> {
    let mut de = serde_json::Deserializer::from_str(payload);
    let Ok(Payload(exec)) = <Payload<'_> as de::Deserialize>::deserialize(&mut de) else {
        return None;
    };
    if de.end().is_err() {
        return None;
    }
    match exec {
        Scalar::Str(s) => Some(s),
        _ => None,
    }
}

/// A payload, reduced to its `execution_id` (absent unless it is an object).
struct Payload<'a>(Scalar<'a>);

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Payload<'de>, E> {
        Ok(Payload(Scalar::Other))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Payload<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Payload(Scalar::Other))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload<'de>, A::Error> {
        let mut exec = Scalar::Other;
        // Repeated keys overwrite, as `serde_json::Value` does.
        while let Some(key) = map.next_key::<Key>()? {
            if matches!(key, Key::ExecutionId) {
                exec = map.next_value::<Scalar<'de>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Payload(exec))
    }
}

impl<'de> de::Deserialize<'de> for Payload<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PayloadVisitor)
    }
}

struct ViewVisitor;

impl<'de> Visitor<'de> for ViewVisitor {
    type Value = FrameView<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FrameView<'de>, A::Error> {
        let mut v = FrameView::default();
        // Repeated keys overwrite, as `serde_json::Value` does.
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Kind => &mut v.kind,
                Key::Code => &mut v.code,
                Key::UserId => &mut v.user_id,
                Key::RunId => &mut v.run_id,
                Key::ThreadId => &mut v.thread_id,
                Key::MessageId => &mut v.message_id,
                Key::Seq => &mut v.seq,
                Key::OldestSeq => &mut v.oldest_seq,
                Key::FromSeq => &mut v.from_seq,
                Key::Exp => &mut v.exp,
                Key::ExecutionId | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map.next_value::<Scalar<'de>>()?;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The reference: what the readers got from a full `Value` parse.
    fn reference(frame: &str) -> Value {
        serde_json::from_str(frame).unwrap_or_default()
    }

    fn assert_matches_value(frame: &str) {
        let v = FrameView::parse(frame);
        let r = reference(frame);
        let get_str = |k: &str| r.get(k).and_then(Value::as_str);
        let get_u64 = |k: &str| r.get(k).and_then(Value::as_u64);
        assert_eq!(v.kind_opt(), get_str("type"), "type of {frame}");
        assert_eq!(v.code(), get_str("code"), "code of {frame}");
        assert_eq!(v.user_id(), get_str("user_id"), "user_id of {frame}");
        assert_eq!(v.run_id(), get_str("run_id"), "run_id of {frame}");
        assert_eq!(v.thread_id(), get_str("thread_id"), "thread_id of {frame}");
        assert_eq!(
            v.message_id(),
            get_str("message_id"),
            "message_id of {frame}"
        );
        assert_eq!(v.seq(), get_u64("seq"), "seq of {frame}");
        assert_eq!(
            v.oldest_seq(),
            get_u64("oldest_seq"),
            "oldest_seq of {frame}"
        );
        assert_eq!(v.resumed_from(), get_u64("from_seq"), "from_seq of {frame}");
        assert_eq!(v.exp(), get_u64("exp"), "exp of {frame}");
    }

    #[test]
    fn parse_reply_reads_message_id() {
        let f = r#"{"message_id":"ping.7.1","type":"pong"}"#;
        assert_eq!(FrameView::parse(f).message_id(), Some("ping.7.1"));
        assert_matches_value(f);
        assert_matches_value(r#"{"message_id":7,"type":"pong"}"#);
    }

    #[test]
    fn parse_reauthenticated_reads_exp() {
        let f = r#"{"type":"reauthenticated","exp":1800000300}"#;
        assert_eq!(FrameView::parse(f).exp(), Some(1_800_000_300));
        assert_matches_value(f);
        assert_matches_value(r#"{"type":"reauthenticated","exp":"soon"}"#);
    }

    #[test]
    fn payload_execution_id_reads_a_payload_alone_as_value_does() {
        for payload in [
            r#"{"args":{"execution_id":"inner"},"execution_id":"run-2-exec-1"}"#,
            r#"{"execution_id":"a","execution_id":"b"}"#,
            r#"{"execution_id":"e\u0073c"}"#,
            r#"{"execution_id":7}"#,
            r#"{"tool_name":"x"}"#,
            r#"["execution_id"]"#,
            r#"{"execution_id":"a"} trailing"#,
            "",
        ] {
            let expected = serde_json::from_str::<Value>(payload)
                .ok()
                .and_then(|v| v.get("execution_id")?.as_str().map(str::to_string));
            assert_eq!(
                payload_execution_id(payload).map(Cow::into_owned),
                expected,
                "{payload}"
            );
        }
    }

    #[test]
    fn parse_event_frame_reads_fields_and_skips_payload() {
        let f = r#"{"type":"agent_delta","seq":7,"user_id":"u-1","run_id":"r-2","payload":{"text":"a\"b","n":[1,2,{"x":null}]},"thread_id":"t-3"}"#;
        let v = FrameView::parse(f);
        assert_eq!(v.kind(), "agent_delta");
        assert_eq!(v.seq(), Some(7));
        assert_eq!(v.user_id(), Some("u-1"));
        assert_eq!(v.run_id(), Some("r-2"));
        assert_eq!(v.thread_id(), Some("t-3"));
        assert_eq!(v.code(), None);
        assert_matches_value(f);
    }

    #[test]
    fn parse_escaped_string_unescapes_like_value() {
        let f = r#"{"type":"err\u006fr","code":"RESUME_\u0047AP","oldest_seq":3}"#;
        let v = FrameView::parse(f);
        assert_eq!(v.kind(), "error");
        assert_eq!(v.code(), Some("RESUME_GAP"));
        assert_eq!(v.oldest_seq(), Some(3));
        assert_matches_value(f);
    }

    #[test]
    fn parse_repeated_key_keeps_last_like_value() {
        let f = r#"{"seq":1,"seq":9,"type":"a","type":5}"#;
        let v = FrameView::parse(f);
        assert_eq!(v.seq(), Some(9));
        assert_eq!(v.kind_opt(), None);
        assert_eq!(v.kind(), "");
        assert_matches_value(f);
    }

    #[test]
    fn parse_wrong_types_reads_absent_per_field() {
        let f = r#"{"seq":-1,"from_seq":2.0,"oldest_seq":"3","type":"resumed","user_id":null,"run_id":[1],"thread_id":{"a":1},"code":true}"#;
        let v = FrameView::parse(f);
        assert_eq!(v.seq(), None);
        assert_eq!(v.resumed_from(), None);
        assert_eq!(v.oldest_seq(), None);
        assert_eq!(v.kind(), "resumed");
        assert_eq!(v.user_id(), None);
        assert_matches_value(f);
    }

    #[test]
    fn parse_not_one_object_gives_no_fields() {
        for f in [
            "",
            "not json",
            r#"{"type":"x","seq":1"#,
            r#"{"type":"x","seq":1} trailing"#,
            r#"["type","x"]"#,
            "42",
            r#"{"type":"x","seq":1}{"seq":2}"#,
            "{\"type\":\"x\u{1}\"}",
        ] {
            let v = FrameView::parse(f);
            assert_eq!(v, FrameView::default(), "{f:?}");
            assert_matches_value(f);
        }
    }

    #[test]
    fn parse_huge_seq_matches_value() {
        let f = r#"{"seq":18446744073709551615,"from_seq":18446744073709551616}"#;
        let v = FrameView::parse(f);
        assert_eq!(v.seq(), Some(u64::MAX));
        assert_eq!(v.resumed_from(), None);
        assert_matches_value(f);
    }
}
