//! Inbound and outbound frames: what a client may send, what the gateway sends back.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::WireFrame;
use crate::error::ErrorCode;
use crate::ids::{ConnId, RunId, Seq, ThreadId, UserId};
use crate::payload::Payload;

/// The five critical agent events a client must see for every run, in protocol order
/// (the three terminal kinds share the last slot; `agent_completed` names it).
pub const CRITICAL_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// Why an inbound text frame could not be decoded. Each maps to one error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The frame is not a JSON object of the envelope's shape.
    #[error("invalid json: {0}")]
    Json(String),
    /// The envelope is fine but the `type` is not one the gateway knows.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The `type` is known but its payload does not match the schema.
    #[error("bad {kind} payload: {reason}")]
    Schema {
        /// The inbound type whose payload failed.
        kind: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl ProtocolError {
    /// The error code this maps to on the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::Json(_) | ProtocolError::Schema { .. } => ErrorCode::BadMessage,
        }
    }
}

/// A decoded inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound<'a> {
    /// The client's optional correlation id, echoed in direct replies (borrowed from the
    /// frame unless it had escapes).
    pub message_id: Option<Cow<'a, str>>,
    /// What the client asked for.
    pub frame: ClientFrame<'a>,
}

/// Every inbound message type of docs/protocol.md section 9. A broadcast's text is borrowed
/// from the frame unless it had escapes: the gateway only copies it into the notice's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// `ping`: answered with `pong`.
    Ping,
    /// `heartbeat`: answered with `heartbeat_ack`.
    Heartbeat,
    /// `user_message`: creates the thread if new and starts an agent run.
    UserMessage {
        /// The user's text.
        content: String,
        /// The thread (payload first, then envelope); a new thread is created when absent.
        thread_id: Option<ThreadId>,
    },
    /// `stop_agent`: cancels the sender's own run.
    StopAgent {
        /// The run to stop.
        run_id: RunId,
    },
    /// `subscribe_thread`: only the owner may subscribe.
    SubscribeThread {
        /// The thread.
        thread_id: ThreadId,
    },
    /// `resume`: re-send every retained event with a greater seq.
    Resume {
        /// The last seq the client has.
        last_seq: Seq,
    },
    /// `reauth`: replace the connection's access token (same `sub`).
    Reauth {
        /// The new access token.
        token: String,
    },
    /// `broadcast`: a system notice to every connected user (needs `system:broadcast`).
    Broadcast {
        /// The notice text.
        text: Cow<'a, str>,
    },
}

impl ClientFrame<'_> {
    /// The wire `type`.
    pub const fn kind(&self) -> &'static str {
        match self {
            ClientFrame::Ping => "ping",
            ClientFrame::Heartbeat => "heartbeat",
            ClientFrame::UserMessage { .. } => "user_message",
            ClientFrame::StopAgent { .. } => "stop_agent",
            ClientFrame::SubscribeThread { .. } => "subscribe_thread",
            ClientFrame::Resume { .. } => "resume",
            ClientFrame::Reauth { .. } => "reauth",
            ClientFrame::Broadcast { .. } => "broadcast",
        }
    }

    /// Encodes this frame as a client would send it (for simulated and real clients): keys in
    /// sorted order, as `serde_json` renders an object, written without building one.
    pub fn to_json(&self, message_id: Option<&str>) -> String {
        let body = Payload::object();
        let payload = match self {
            ClientFrame::Ping | ClientFrame::Heartbeat => body,
            ClientFrame::UserMessage { content, thread_id } => {
                let body = body.str("content", content);
                match thread_id {
                    Some(t) => body.str("thread_id", t.as_str()),
                    None => body,
                }
            }
            ClientFrame::StopAgent { run_id } => body.str("run_id", &run_id.to_string()),
            ClientFrame::SubscribeThread { thread_id } => body.str("thread_id", thread_id.as_str()),
            ClientFrame::Resume { last_seq } => body.u64("last_seq", last_seq.get()),
            ClientFrame::Reauth { token } => body.str("token", token),
            ClientFrame::Broadcast { text } => body.str("text", text),
        }
        .finish();
        let env = Payload::object();
        let env = match message_id {
            Some(id) => env.str("message_id", id),
            None => env,
        };
        env.object("payload", &payload)
            .str("type", self.kind())
            .finish_string()
    }
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Ping,
    Heartbeat,
    UserMessage,
    StopAgent,
    SubscribeThread,
    Resume,
    Reauth,
    Broadcast,
    #[serde(other)]
    Unknown,
}

/// The envelope, borrowed from the frame. Unknown fields (including any `user_id`) are ignored.
///
/// As serde derives it, the payload is kept raw and parsed again once the type is known: the
/// reference reading of a frame, which [`OnePass`] must agree with.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    message_id: Option<FrameStr<'a>>,
    #[serde(borrow, default)]
    thread_id: Option<FrameStr<'a>>,
}

/// Reads an [`Envelope`] in one pass: when `type` comes before `payload`, the payload is
/// parsed straight into that type's body (into `body`, leaving the envelope's `payload` out)
/// instead of being scanned as a raw value and then parsed again, a third of decoding a
/// broadcast. Only an object with plain (unescaped) keys is read this way; a frame it cannot
/// read is read again the derived way, so each frame decodes, or is refused, exactly as that
/// reading says: a body parsed in place is the very tokens the second parse would read, with
/// the same derived `Deserialize`.
struct OnePass<'b, 'a> {
    body: &'b mut Option<Body<'a>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for OnePass<'_, 'de> {
    type Value = Envelope<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for OnePass<'_, 'de> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an envelope object")
    }

    /// What the derived `Envelope` accepts from an object, refusing a repeated field as it
    /// does (the refusal's wording is then the derived reading's, not this one's). Inlined
    /// into serde_json's reading of the map, as a derived visitor is: called, it cost a
    /// keep-alive some 25 instructions more than the derived reading.
    #[inline]
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        fn once<T, E: serde::de::Error>(
            slot: &mut Option<T>,
            name: &'static str,
            value: T,
        ) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::duplicate_field(name));
            }
            *slot = Some(value);
            Ok(())
        }
        let (mut kind, mut payload, mut message_id, mut thread_id) = (None, None, None, None);
        // Borrowed keys: a key with an escape is not one, and the frame is read again.
        while let Some(field) = map.next_key::<&'de str>()? {
            match field {
                "type" => once(&mut kind, "type", map.next_value()?)?,
                "payload" => {
                    let raw = match kind {
                        Some(kind) => Body::in_place(kind, &mut map, self.body)?,
                        None => map.next_value()?,
                    };
                    once(&mut payload, "payload", raw)?;
                }
                "message_id" => once(&mut message_id, "message_id", map.next_value()?)?,
                "thread_id" => once(&mut thread_id, "thread_id", map.next_value()?)?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            kind: kind.ok_or_else(|| serde::de::Error::missing_field("type"))?,
            payload: payload.flatten(),
            message_id: message_id.flatten(),
            thread_id: thread_id.flatten(),
        })
    }
}

/// A string field of the envelope, borrowed from the frame unless it has escapes. serde's
/// `borrow` does not reach through `Option<Cow<str>>` (that form always copies), and a
/// keep-alive's `message_id` must not cost an allocation.
struct FrameStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for FrameStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> serde::de::Visitor<'de> for StrVisitor {
            type Value = FrameStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(FrameStr(Cow::Borrowed(s)))
            }
            // Also serde's default for an owned `String`, which `decode_inbound` (parsing
            // from a `&str`) never produces.
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(FrameStr(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

#[derive(Deserialize)]
struct UserMessageBody {
    content: String,
    #[serde(default)]
    thread_id: Option<String>,
}

#[derive(Deserialize)]
struct RunBody {
    run_id: String,
}

#[derive(Deserialize)]
struct ThreadBody {
    thread_id: String,
}

#[derive(Deserialize)]
struct ResumeBody {
    last_seq: u64,
}

#[derive(Deserialize)]
struct ReauthBody {
    token: String,
}

#[derive(Deserialize)]
struct BroadcastBody<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The payload of a type that has one, parsed.
enum Body<'a> {
    UserMessage(UserMessageBody),
    StopAgent(RunBody),
    SubscribeThread(ThreadBody),
    Resume(ResumeBody),
    Reauth(ReauthBody),
    Broadcast(BroadcastBody<'a>),
}

impl<'a> Body<'a> {
    /// Parses `payload` as the body of `kind`; `None` for the types without one.
    fn parse(kind: Kind, payload: &'a str) -> Result<Option<Self>, ProtocolError> {
        Ok(Some(match kind {
            Kind::UserMessage => Body::UserMessage(body("user_message", payload)?),
            Kind::StopAgent => Body::StopAgent(body("stop_agent", payload)?),
            Kind::SubscribeThread => Body::SubscribeThread(body("subscribe_thread", payload)?),
            Kind::Resume => Body::Resume(body("resume", payload)?),
            Kind::Reauth => Body::Reauth(body("reauth", payload)?),
            Kind::Broadcast => Body::Broadcast(body("broadcast", payload)?),
            Kind::Ping | Kind::Heartbeat | Kind::Unknown => return Ok(None),
        }))
    }

    /// Reads the envelope's next value, the payload of a frame of type `kind`, as
    /// [`Body::parse`] would read it, into `body`: as that type's body, or raw (returned) for
    /// the types without one. A `null` payload is neither, to be parsed as `{}` like an absent
    /// one.
    fn in_place<'de: 'a, A: serde::de::MapAccess<'de>>(
        kind: Kind,
        map: &mut A,
        body: &mut Option<Self>,
    ) -> Result<Option<&'de RawValue>, A::Error> {
        *body = match kind {
            Kind::UserMessage => map.next_value::<Option<_>>()?.map(Body::UserMessage),
            Kind::StopAgent => map.next_value::<Option<_>>()?.map(Body::StopAgent),
            Kind::SubscribeThread => map.next_value::<Option<_>>()?.map(Body::SubscribeThread),
            Kind::Resume => map.next_value::<Option<_>>()?.map(Body::Resume),
            Kind::Reauth => map.next_value::<Option<_>>()?.map(Body::Reauth),
            Kind::Broadcast => map.next_value::<Option<_>>()?.map(Body::Broadcast),
            Kind::Ping | Kind::Heartbeat | Kind::Unknown => return map.next_value(),
        };
        Ok(None)
    }

    /// The frame this body asks for; `thread` is the envelope's `thread_id`.
    fn into_frame(self, thread: Option<FrameStr<'a>>) -> Result<ClientFrame<'a>, ProtocolError> {
        Ok(match self {
            Body::UserMessage(b) => {
                let thread = b.thread_id.or(thread.map(|t| t.0.into_owned()));
                let thread_id = thread.map(|t| thread_id("user_message", &t)).transpose()?;
                ClientFrame::UserMessage {
                    content: b.content,
                    thread_id,
                }
            }
            Body::StopAgent(b) => {
                let run_id = RunId::parse(&b.run_id).ok_or_else(|| ProtocolError::Schema {
                    kind: "stop_agent",
                    reason: "run_id is not run-<n>".into(),
                })?;
                ClientFrame::StopAgent { run_id }
            }
            Body::SubscribeThread(b) => ClientFrame::SubscribeThread {
                thread_id: thread_id("subscribe_thread", &b.thread_id)?,
            },
            Body::Resume(b) => ClientFrame::Resume {
                last_seq: Seq::new(b.last_seq),
            },
            Body::Reauth(b) => ClientFrame::Reauth { token: b.token },
            Body::Broadcast(b) => ClientFrame::Broadcast { text: b.text },
        })
    }
}

/// The longest `message_id` echoed back; longer ones are a schema error.
const MAX_MESSAGE_ID_LEN: usize = 128;

/// Decodes one inbound text frame. The caller has already checked size and UTF-8.
pub fn decode_inbound(text: &str) -> Result<Inbound<'_>, ProtocolError> {
    decode_with(text, true)
}

/// [`decode_inbound`], reading the envelope in one pass first when `one_pass` is set; unset,
/// every frame is read the reference way only (the tests compare the two).
fn decode_with(text: &str, one_pass: bool) -> Result<Inbound<'_>, ProtocolError> {
    let mut body = None;
    let read = one_pass.then(|| {
        let mut de = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(OnePass { body: &mut body }, &mut de)
            .and_then(|env| de.end().map(|()| env))
    });
    // A frame the one pass cannot read (a refusal, or a shape only the derived reading takes)
    // is read again the derived way, whose answer is then the frame's.
    let env = match read {
        Some(Ok(env)) => env,
        _ => {
            body = None;
            serde_json::from_str::<Envelope<'_>>(text)
                .map_err(|e| ProtocolError::Json(e.to_string()))?
        }
    };
    if env
        .message_id
        .as_ref()
        .is_some_and(|m| m.0.len() > MAX_MESSAGE_ID_LEN)
    {
        return Err(ProtocolError::Schema {
            kind: "envelope",
            reason: "message_id too long".into(),
        });
    }
    let body = match body {
        Some(body) => Some(body),
        None => Body::parse(env.kind, env.payload.map_or("{}", RawValue::get))?,
    };
    let frame = match (body, env.kind) {
        (Some(body), _) => body.into_frame(env.thread_id)?,
        (None, Kind::Ping) => ClientFrame::Ping,
        (None, Kind::Heartbeat) => ClientFrame::Heartbeat,
        // Every other type has a body, so this is `Kind::Unknown`.
        (None, _) => return Err(ProtocolError::UnknownType(unknown_type_name(text))),
    };
    Ok(Inbound {
        message_id: env.message_id.map(|m| m.0),
        frame,
    })
}

fn body<'a, T: Deserialize<'a>>(kind: &'static str, payload: &'a str) -> Result<T, ProtocolError> {
    serde_json::from_str(payload).map_err(|e| ProtocolError::Schema {
        kind,
        reason: e.to_string(),
    })
}

fn thread_id(kind: &'static str, s: &str) -> Result<ThreadId, ProtocolError> {
    ThreadId::parse(s).ok_or_else(|| ProtocolError::Schema {
        kind,
        reason: "thread_id must be 1..=128 chars".into(),
    })
}

/// Re-reads the `type` string for the error message only (the fast path never needs it).
fn unknown_type_name(text: &str) -> String {
    #[derive(Deserialize)]
    struct TypeOnly {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<TypeOnly>(text)
        .map(|t| t.kind.chars().take(64).collect())
        .unwrap_or_default()
}

/// The kinds of stream events: everything that goes through a user's outbox and carries a `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// A run began.
    AgentStarted,
    /// The agent reasoned.
    AgentThinking,
    /// A tool call began.
    ToolExecuting,
    /// A tool call ended.
    ToolCompleted,
    /// Terminal: the run finished.
    AgentCompleted,
    /// Terminal: the run failed.
    AgentFailed,
    /// Terminal: the run was stopped by its owner.
    AgentCancelled,
    /// A system notice from an inbound `broadcast`.
    SystemNotice,
}

impl StreamKind {
    /// Whether this kind ends a run.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            StreamKind::AgentCompleted | StreamKind::AgentFailed | StreamKind::AgentCancelled
        )
    }

    /// The wire `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamKind::AgentStarted => "agent_started",
            StreamKind::AgentThinking => "agent_thinking",
            StreamKind::ToolExecuting => "tool_executing",
            StreamKind::ToolCompleted => "tool_completed",
            StreamKind::AgentCompleted => "agent_completed",
            StreamKind::AgentFailed => "agent_failed",
            StreamKind::AgentCancelled => "agent_cancelled",
            StreamKind::SystemNotice => "system_notice",
        }
    }
}

/// A frame the gateway sends: direct replies (no `seq`, not stored) and stream events
/// (rendered once, shared by every connection they fan out to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Sent right after the upgrade.
    ConnectionEstablished {
        /// The authenticated user.
        user_id: UserId,
        /// This connection.
        connection_id: ConnId,
        /// The user's latest seq, so a reconnecting client knows whether to `resume`.
        latest_seq: Seq,
        /// The five critical event names.
        critical_events: [&'static str; 5],
    },
    /// Reply to `ping`.
    Pong {
        /// Echo of the request's `message_id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// Reply to `heartbeat`.
    HeartbeatAck {
        /// Echo of the request's `message_id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
    },
    /// A `user_message` was accepted and started this run.
    MessageAccepted {
        /// Echo of the request's `message_id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The thread (new or existing).
        thread_id: ThreadId,
        /// The run started.
        run_id: RunId,
    },
    /// A `subscribe_thread` succeeded.
    Subscribed {
        /// The thread.
        thread_id: ThreadId,
    },
    /// A `reauth` succeeded; the connection now expires with the new token.
    Reauthenticated {
        /// The new token's `exp`, Unix seconds.
        exp: u64,
    },
    /// A `resume` finished sending its backlog.
    Resumed {
        /// The first seq re-sent (or the next seq when nothing was missing).
        from_seq: Seq,
        /// How many events were re-sent.
        count: u64,
    },
    /// An error; the connection stays open unless a close follows.
    Error {
        /// The machine-readable code.
        code: ErrorCode,
        /// A human message.
        message: String,
        /// Whether the same request may be retried.
        retryable: bool,
        /// When to retry, for `RATE_LIMITED`.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// For `RESUME_GAP`: the oldest seq the outbox still holds.
        #[serde(skip_serializing_if = "Option::is_none")]
        oldest_seq: Option<Seq>,
    },
}

impl ServerFrame {
    /// An `error` frame with the code's default retryability.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            retryable: code.retryable(),
            retry_after_ms: None,
            oldest_seq: None,
        }
    }

    /// Renders the frame as the JSON text sent on the wire.
    pub fn render(&self) -> WireFrame {
        // The two replies to keep-alives are the hottest frames and have a fixed shape, so they
        // are written directly; the bytes are exactly what serde_json writes for them.
        match self {
            ServerFrame::Pong { message_id } => return render_ack("pong", message_id.as_deref()),
            ServerFrame::HeartbeatAck { message_id } => {
                return render_ack("heartbeat_ack", message_id.as_deref());
            }
            _ => {}
        }
        // Serializing these plain structs cannot fail; fall back to an internal error frame
        // rather than panicking if a future variant ever could.
        serde_json::to_string(self)
            .map(WireFrame::from)
            .unwrap_or_else(|_| {
                WireFrame::from(
                    r#"{"type":"error","code":"BAD_MESSAGE","message":"encode","retryable":false}"#,
                )
            })
    }
}

/// Renders `{"type":"<kind>"}` or `{"type":"<kind>","message_id":<id>}` without serde; inline
/// (no allocation) when it is short and the id needs no escaping, as keep-alive replies are.
pub(crate) fn render_ack(kind: &str, message_id: Option<&str>) -> WireFrame {
    let mut frame = WireFrame::EMPTY;
    render_ack_into(&mut frame, kind, message_id);
    frame
}

/// [`render_ack`] into an existing frame (a send slot), in place when it fits inline.
pub(crate) fn render_ack_into(frame: &mut WireFrame, kind: &str, message_id: Option<&str>) {
    let Some(id) = message_id else {
        return frame.set_concat(&[r#"{"type":""#, kind, r#""}"#]);
    };
    if !id.bytes().any(needs_escape) {
        return frame.set_concat(&[r#"{"type":""#, kind, r#"","message_id":""#, id, r#""}"#]);
    }
    // Rare: the id needs escapes, in serde_json's exact forms. Serializing a str cannot fail.
    let id = serde_json::to_string(id).unwrap_or_else(|_| String::from("\"\""));
    frame.set_concat(&[r#"{"type":""#, kind, r#"","message_id":"#, &id, "}"]);
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<ClientFrame<'_>, ProtocolError> {
        decode_inbound(s).map(|i| i.frame)
    }

    #[test]
    fn render_ack_any_message_id_matches_serde() {
        let ids = [
            None,
            Some(""),
            Some("m-1"),
            Some("quote\" back\\ slash"),
            Some("ctl\n\t\u{1}\u{1f}"),
            Some("uni é ✓ / </script>"),
        ];
        for id in ids {
            for frame in [
                ServerFrame::Pong {
                    message_id: id.map(String::from),
                },
                ServerFrame::HeartbeatAck {
                    message_id: id.map(String::from),
                },
            ] {
                let via_serde = serde_json::to_string(&frame).unwrap();
                assert_eq!(&*frame.render(), via_serde.as_str(), "{id:?}");
            }
        }
        assert_eq!(
            &*ServerFrame::Pong {
                message_id: Some("m\"1".into())
            }
            .render(),
            r#"{"type":"pong","message_id":"m\"1"}"#
        );
    }

    #[test]
    fn decode_every_inbound_type() {
        assert_eq!(decode(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(
            decode(r#"{"type":"heartbeat","payload":{}}"#),
            Ok(ClientFrame::Heartbeat)
        );
        assert_eq!(
            decode(r#"{"type":"user_message","payload":{"content":"hi","thread_id":"t1"}}"#),
            Ok(ClientFrame::UserMessage {
                content: "hi".into(),
                thread_id: ThreadId::parse("t1")
            })
        );
        assert_eq!(
            decode(r#"{"type":"user_message","thread_id":"t2","payload":{"content":"hi"}}"#),
            Ok(ClientFrame::UserMessage {
                content: "hi".into(),
                thread_id: ThreadId::parse("t2")
            })
        );
        assert_eq!(
            decode(r#"{"type":"stop_agent","payload":{"run_id":"run-7"}}"#),
            Ok(ClientFrame::StopAgent {
                run_id: RunId::new(7)
            })
        );
        assert_eq!(
            decode(r#"{"type":"subscribe_thread","payload":{"thread_id":"t"}}"#),
            Ok(ClientFrame::SubscribeThread {
                thread_id: ThreadId::parse("t").expect("a valid thread id")
            })
        );
        assert_eq!(
            decode(r#"{"type":"resume","payload":{"last_seq":12}}"#),
            Ok(ClientFrame::Resume {
                last_seq: Seq::new(12)
            })
        );
        assert_eq!(
            decode(r#"{"type":"reauth","payload":{"token":"a.b.c"}}"#),
            Ok(ClientFrame::Reauth {
                token: "a.b.c".into()
            })
        );
        assert_eq!(
            decode(r#"{"type":"broadcast","payload":{"text":"hello"}}"#),
            Ok(ClientFrame::Broadcast {
                text: "hello".into()
            })
        );
    }

    #[test]
    fn one_pass_decodes_every_frame_as_the_two_pass_reading_does() {
        let kinds = [
            "ping",
            "heartbeat",
            "user_message",
            "stop_agent",
            "subscribe_thread",
            "resume",
            "reauth",
            "broadcast",
            "launch",
        ];
        let payloads = [
            None,
            Some("null"),
            Some("{}"),
            Some(r#"{"text":"hi \"q\" \u00e9"}"#),
            Some(r#"{"text":"a","text":"b"}"#),
            Some(r#"{"text":5}"#),
            Some(r#"{"content":"c","thread_id":"t1","extra":[1,{"x":null}]}"#),
            Some(r#"{"content":"c","thread_id":""}"#),
            Some(r#"{"run_id":"run-3"}"#),
            Some(r#"{"run_id":"3"}"#),
            Some(r#"{"thread_id":"t\u002d1"}"#),
            Some(r#"{"last_seq":12}"#),
            Some(r#"{"last_seq":-1}"#),
            Some(r#"{"token":"a.b.c"}"#),
            Some("[1,2]"),
            Some(r#""text""#),
            Some(r#"{"text":"x""#),
        ];
        let others = [
            "",
            r#","message_id":"m-1""#,
            r#","message_id":"m\"1""#,
            r#","message_id":null"#,
            r#","message_id":7"#,
            r#","thread_id":"t9""#,
            r#","user_id":"victim","extra":{"a":[true]}"#,
            r#","type":"ping""#,
            r#","payload":{}"#,
        ];
        let long_id = format!(r#","message_id":"{}""#, "x".repeat(MAX_MESSAGE_ID_LEN + 1));
        let mut frames = vec![
            String::new(),
            "null".into(),
            "[]".into(),
            r#"["ping"]"#.into(),
            r#"["broadcast",{"text":"x"}]"#.into(),
            r#"{"payload":{"text":"x"}}"#.into(),
            r#"{"type":"broadcast","payload":{"text":"x"}} trailing"#.into(),
            format!(r#"{{"type":"ping"{long_id}}}"#),
        ];
        for kind in kinds {
            for payload in payloads {
                for other in others {
                    let ty = format!(r#""type":"{kind}""#);
                    let Some(p) = payload else {
                        frames.push(format!("{{{ty}{other}}}"));
                        continue;
                    };
                    let p = format!(r#""payload":{p}"#);
                    frames.push(format!("{{{ty},{p}{other}}}"));
                    frames.push(format!("{{{p},{ty}{other}}}"));
                    frames.push(format!("{{{p}{other},{ty}}}"));
                }
            }
        }
        for text in &frames {
            assert_eq!(decode_inbound(text), decode_with(text, false), "{text}");
        }
        // The sweep reaches both readings: frames the one pass decodes and ones it leaves.
        let one_pass = |t: &str| {
            let mut de = serde_json::Deserializer::from_str(t);
            serde::de::DeserializeSeed::deserialize(OnePass { body: &mut None }, &mut de).is_ok()
        };
        assert!(one_pass(r#"{"type":"broadcast","payload":{"text":"x"}}"#));
        assert!(!one_pass(r#"["ping"]"#));
    }

    #[test]
    fn envelope_strings_borrow_unless_escaped() {
        let plain = decode_inbound(r#"{"type":"ping","message_id":"m-1"}"#).unwrap();
        assert!(matches!(plain.message_id, Some(Cow::Borrowed("m-1"))));
        let escaped = decode_inbound(r#"{"type":"ping","message_id":"m\"1"}"#).unwrap();
        assert!(matches!(&escaped.message_id, Some(Cow::Owned(m)) if m == "m\"1"));
        let thread =
            decode(r#"{"type":"user_message","thread_id":"t\u002d1","payload":{"content":"x"}}"#);
        assert!(
            matches!(&thread, Ok(ClientFrame::UserMessage { thread_id: Some(t), .. }) if t.as_str() == "t-1"),
            "{thread:?}"
        );
        let Err(ProtocolError::Json(e)) = decode(r#"{"type":"ping","message_id":5}"#) else {
            panic!("a numeric message_id is refused");
        };
        assert!(e.contains("expected a string"), "{e}");
    }

    #[test]
    fn decode_errors_map_to_codes() {
        let unknown = decode(r#"{"type":"launch_missiles"}"#);
        assert_eq!(
            unknown,
            Err(ProtocolError::UnknownType("launch_missiles".into()))
        );
        assert_eq!(unknown.map_err(|e| e.code()), Err(ErrorCode::UnknownType));
        for bad in ["", "null", "[]", "{", r#"{"payload":{}}"#, r#"{"type":5}"#] {
            assert_eq!(
                decode(bad).map_err(|e| e.code()),
                Err(ErrorCode::BadMessage),
                "{bad}"
            );
        }
        for bad in [
            r#"{"type":"user_message","payload":{}}"#,
            r#"{"type":"stop_agent","payload":{"run_id":"7"}}"#,
            r#"{"type":"resume","payload":{"last_seq":-1}}"#,
            r#"{"type":"subscribe_thread","payload":{"thread_id":""}}"#,
            r#"{"type":"ping","message_id":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        ] {
            assert!(
                matches!(decode(bad), Err(ProtocolError::Schema { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn client_supplied_user_id_is_ignored() {
        let i = decode_inbound(
            r#"{"type":"ping","user_id":"victim","payload":{"user_id":"victim"},"message_id":"m1"}"#,
        );
        assert_eq!(
            i,
            Ok(Inbound {
                message_id: Some("m1".into()),
                frame: ClientFrame::Ping
            })
        );
    }

    #[test]
    fn client_frames_encode_to_what_decode_reads() {
        let frames = [
            ClientFrame::Ping,
            ClientFrame::UserMessage {
                content: "q\"x".into(),
                thread_id: ThreadId::parse("t9"),
            },
            ClientFrame::StopAgent {
                run_id: RunId::new(3),
            },
            ClientFrame::Resume {
                last_seq: Seq::new(4),
            },
            ClientFrame::Reauth { token: "t".into() },
            ClientFrame::Broadcast { text: "b".into() },
        ];
        for f in frames {
            let text = f.to_json(Some("id-1"));
            assert_eq!(
                decode_inbound(&text),
                Ok(Inbound {
                    message_id: Some("id-1".into()),
                    frame: f
                })
            );
        }
    }

    #[test]
    fn client_frames_encode_exactly_as_serde_json_renders_them() {
        let thread = ThreadId::parse("t\"1").expect("a valid thread id");
        let frames = [
            (ClientFrame::Ping, serde_json::json!({})),
            (ClientFrame::Heartbeat, serde_json::json!({})),
            (
                ClientFrame::UserMessage {
                    content: "hi \u{1} é </x>".into(),
                    thread_id: Some(thread.clone()),
                },
                serde_json::json!({"content": "hi \u{1} é </x>", "thread_id": "t\"1"}),
            ),
            (
                ClientFrame::UserMessage {
                    content: String::new(),
                    thread_id: None,
                },
                serde_json::json!({"content": ""}),
            ),
            (
                ClientFrame::StopAgent {
                    run_id: RunId::new(7),
                },
                serde_json::json!({"run_id": "run-7"}),
            ),
            (
                ClientFrame::SubscribeThread { thread_id: thread },
                serde_json::json!({"thread_id": "t\"1"}),
            ),
            (
                ClientFrame::Resume {
                    last_seq: Seq::new(u64::MAX),
                },
                serde_json::json!({"last_seq": u64::MAX}),
            ),
            (
                ClientFrame::Reauth {
                    token: "a.b.c".into(),
                },
                serde_json::json!({"token": "a.b.c"}),
            ),
            (
                ClientFrame::Broadcast { text: "\n".into() },
                serde_json::json!({"text": "\n"}),
            ),
        ];
        for (frame, payload) in frames {
            for id in [None, Some("m-1"), Some("m\"\\2")] {
                let mut env = serde_json::json!({"type": frame.kind(), "payload": payload});
                if let (Some(id), Some(obj)) = (id, env.as_object_mut()) {
                    obj.insert("message_id".into(), id.into());
                }
                assert_eq!(frame.to_json(id), env.to_string(), "{frame:?} {id:?}");
            }
        }
    }

    #[test]
    fn server_error_frame_renders_documented_shape() {
        let f = ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            retryable: true,
            retry_after_ms: Some(100),
            oldest_seq: None,
        };
        let v: serde_json::Value = serde_json::from_str(&f.render()).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","code":"RATE_LIMITED","message":"slow down","retryable":true,"retry_after_ms":100})
        );
    }
}
