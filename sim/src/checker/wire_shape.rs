//! The documented shape of two frames the gateway sends, read from the frame's text as a
//! client would, independently of the gateway's renderer (docs/protocol.md sections 8 and 11):
//!
//! - `WS-CONNECTION-ESTABLISHED`: the first frame of every session is `connection_established`
//!   with the session's `user_id`, its `connection_id`, the user's latest `seq` and the five
//!   critical event names;
//! - `OUT-ENVELOPE`: a stream event is `{"type","seq","user_id","thread_id"?,"run_id"?,
//!   "timestamp","payload"}` in exactly that key order, `timestamp` the event's Unix
//!   milliseconds, `thread_id`/`run_id` present exactly when the event has them.
//!
//! The delivery checker already compares every stream frame with the log's own rendering, so
//! a renderer that drifted from the protocol would agree with itself there; these functions
//! are the protocol's side. They only read: a frame they cannot parse is a fault, never
//! repaired.

use std::fmt;

use gauntlet_core::{ConnId, Seq, StreamEntry, UserId};
use serde::Deserializer;
use serde::de::{MapAccess, Visitor};
use serde_json::Value;

/// The names `critical_events` lists, in the protocol's order.
const CRITICAL_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// A JSON object's members in the order the frame has them.
fn members(frame: &str) -> Option<Vec<(String, Value)>> {
    struct Ordered;
    impl<'de> Visitor<'de> for Ordered {
        type Value = Vec<(String, Value)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, Value>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    serde_json::Deserializer::from_str(frame)
        .deserialize_map(Ordered)
        .ok()
}

fn keys(m: &[(String, Value)]) -> Vec<&str> {
    m.iter().map(|(k, _)| k.as_str()).collect()
}

/// What is wrong with `frame` as the first frame of `conn`, a session of `user` opened when
/// `user`'s stream was at `latest_seq`; `None` when nothing is.
pub(crate) fn welcome_fault(
    frame: &str,
    conn: ConnId,
    user: &UserId,
    latest_seq: u64,
) -> Option<String> {
    let Some(m) = members(frame) else {
        return Some("a first frame that is not a JSON object".into());
    };
    let get = |k: &str| m.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    if get("type").and_then(Value::as_str) != Some("connection_established") {
        return Some(format!("a first frame of type {:?}", get("type")));
    }
    let expected = [
        ("user_id", Value::from(user.as_str())),
        ("connection_id", Value::from(conn.get())),
        ("latest_seq", Value::from(latest_seq)),
        ("critical_events", Value::from(CRITICAL_EVENTS.to_vec())),
    ];
    for (k, want) in expected {
        if get(k) != Some(&want) {
            return Some(format!(
                "connection_established with {k} {:?}, not {want}",
                get(k)
            ));
        }
    }
    if m.len() != 5 {
        return Some(format!(
            "connection_established with members {:?}",
            keys(&m)
        ));
    }
    None
}

/// What is wrong with `frame` as `entry` at `seq` of `user`'s stream; `None` when nothing is.
pub(crate) fn envelope_fault(
    frame: &str,
    entry: &StreamEntry,
    seq: Seq,
    user: &UserId,
) -> Option<String> {
    let Some(m) = members(frame) else {
        return Some("a stream frame that is not a JSON object".into());
    };
    let mut want: Vec<(&str, Value)> = vec![
        ("type", Value::from(entry.kind().as_str())),
        ("seq", Value::from(seq.get())),
        ("user_id", Value::from(user.as_str())),
    ];
    if let Some(t) = entry.thread() {
        want.push(("thread_id", Value::from(t.to_string())));
    }
    if let Some(r) = entry.run() {
        want.push(("run_id", Value::from(r.to_string())));
    }
    want.push(("timestamp", Value::from(entry.at().unix_millis())));
    let payload = serde_json::from_str::<Value>(&entry.payload_json()).ok()?;
    want.push(("payload", payload));
    let want_keys: Vec<&str> = want.iter().map(|(k, _)| *k).collect();
    if keys(&m) != want_keys {
        return Some(format!(
            "stream frame members {:?}, not {want_keys:?}",
            keys(&m)
        ));
    }
    m.iter()
        .zip(&want)
        .find(|((_, got), (_, v))| got != v)
        .map(|((k, got), (_, v))| format!("stream frame {k} {got}, not {v}"))
}

#[cfg(test)]
mod tests {
    use gauntlet_core::{Instant, StreamKind, ThreadId};

    use super::*;

    fn user() -> UserId {
        UserId::parse("u1").unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn the_welcome_names_the_session_and_the_users_latest_seq() {
        let conn = ConnId::new(7);
        let good = r#"{"type":"connection_established","user_id":"u1","connection_id":7,"latest_seq":3,"critical_events":["agent_started","agent_thinking","tool_executing","tool_completed","agent_completed"]}"#;
        assert_eq!(welcome_fault(good, conn, &user(), 3), None);
        assert!(welcome_fault(good, conn, &user(), 4).is_some());
        assert!(welcome_fault(good, ConnId::new(8), &user(), 3).is_some());
        let other = UserId::parse("u2").unwrap_or_else(|| unreachable!());
        assert!(welcome_fault(good, conn, &other, 3).is_some());
        let pong = r#"{"type":"pong"}"#;
        assert!(welcome_fault(pong, conn, &user(), 3).is_some());
        let four = good.replace(r#","agent_completed""#, "");
        assert!(welcome_fault(&four, conn, &user(), 3).is_some());
    }

    #[test]
    fn a_stream_frame_has_the_documented_members_in_order() {
        let entry = StreamEntry::new(
            Instant::from_unix_millis(1_800_000_000_123),
            StreamKind::AgentStarted,
            ThreadId::parse("u1-t1"),
            None,
            serde_json::from_str::<gauntlet_core::Payload>(r#"{"n":1}"#)
                .unwrap_or_else(|e| unreachable!("{e}")),
        );
        let seq = Seq::new(5);
        let mut rendered = String::new();
        entry.write_frame(seq, &user(), &mut rendered);
        // The gateway's own rendering has the protocol's shape.
        assert_eq!(envelope_fault(&rendered, &entry, seq, &user()), None);
        let good = r#"{"type":"agent_started","seq":5,"user_id":"u1","thread_id":"u1-t1","timestamp":1800000000123,"payload":{"n":1}}"#;
        assert_eq!(envelope_fault(good, &entry, seq, &user()), None);
        // Keys reordered, seconds for milliseconds, a run id it does not have, no thread.
        let reordered = r#"{"seq":5,"type":"agent_started","user_id":"u1","thread_id":"u1-t1","timestamp":1800000000123,"payload":{"n":1}}"#;
        assert!(envelope_fault(reordered, &entry, seq, &user()).is_some());
        let seconds = good.replace("1800000000123", "1800000000");
        assert!(envelope_fault(&seconds, &entry, seq, &user()).is_some());
        let with_run = good.replace(r#""timestamp""#, r#""run_id":"run-1","timestamp""#);
        assert!(envelope_fault(&with_run, &entry, seq, &user()).is_some());
        let no_thread = good.replace(r#""thread_id":"u1-t1","#, "");
        assert!(envelope_fault(&no_thread, &entry, seq, &user()).is_some());
    }
}
