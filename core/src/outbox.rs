//! Per-user outboxes: the user's event stream with its `seq` numbering, bounded retention,
//! and the range reads that `resume` needs (docs/protocol.md section 14).
//!
//! An outbox never decides who receives an event (that is the gateway's fan-out) and never
//! renumbers: `seq` is assigned once, strictly increasing and gap-free, and survives trimming.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::agent::{AgentRun, AgentStep, StepBody};
use crate::payload::{Payload, write_json_str};

use crate::ids::{RunId, Seq, ThreadId, UserId};
use crate::protocol::StreamKind;
use crate::time::Instant;

/// One stored stream event: the envelope fields and the payload, from which its frame is
/// rendered for each send ([`StreamEntry::render`]). Its `seq` and `user_id` are not part of
/// it: they are the position in the user's stream it is stored at, so one entry can be every
/// user's copy of a broadcast.
///
/// The frame itself is not kept: with the 10-minute retention of docs/protocol.md section 14 a
/// large world holds every event it produced, and the envelope around the payload more than
/// doubled what each one held (issue 4 notes). Rendering is a pure function of the entry and
/// the user, so every rendering of an entry is the same bytes. For the same reason an agent
/// step is kept as its facts and a pointer to its run (32 bytes), not as its text.
#[derive(Clone, Debug)]
pub struct StreamEntry {
    at: Instant,
    body: EntryBody,
}

#[derive(Clone, Debug)]
enum EntryBody {
    /// A step of a run planned by this process: the run's id, thread and task are in the
    /// shared [`AgentRun`], the payload is rendered from them and the step into each frame.
    Step { run: Arc<AgentRun>, step: StepBody },
    /// Anything else (a notice, a cancellation, an entry read back from a journal): the
    /// envelope fields and a payload rendered once. Boxed, as they are few: inline, they would
    /// more than double every step.
    Rendered(Box<RenderedEntry>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct RenderedEntry {
    kind: StreamKind,
    thread: Option<ThreadId>,
    run: Option<RunId>,
    payload: Payload,
}

impl StreamEntry {
    /// An event with its payload already rendered.
    pub fn new(
        at: Instant,
        kind: StreamKind,
        thread: Option<ThreadId>,
        run: Option<RunId>,
        payload: Payload,
    ) -> Self {
        StreamEntry {
            at,
            body: EntryBody::Rendered(Box::new(RenderedEntry {
                kind,
                thread,
                run,
                payload,
            })),
        }
    }

    /// `step` of `run`, appended at `at`.
    pub(crate) fn step(at: Instant, run: &Arc<AgentRun>, step: &AgentStep) -> Self {
        StreamEntry {
            at,
            body: EntryBody::Step {
                run: Arc::clone(run),
                step: step.body(),
            },
        }
    }

    /// When it was appended.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// What kind of event it is.
    pub fn kind(&self) -> StreamKind {
        match &self.body {
            EntryBody::Step { step, .. } => step.kind(),
            EntryBody::Rendered(r) => r.kind,
        }
    }

    /// The thread, for run events.
    pub fn thread(&self) -> Option<&ThreadId> {
        match &self.body {
            EntryBody::Step { run, .. } => Some(run.thread()),
            EntryBody::Rendered(r) => r.thread.as_ref(),
        }
    }

    /// The run, for run events.
    pub fn run(&self) -> Option<RunId> {
        match &self.body {
            EntryBody::Step { run, .. } => Some(run.run()),
            EntryBody::Rendered(r) => r.run,
        }
    }

    /// Appends the event's payload object to `buf`.
    pub fn write_payload(&self, buf: &mut String) {
        match &self.body {
            EntryBody::Step { run, step } => step.write_json(run, buf),
            EntryBody::Rendered(r) => buf.push_str(r.payload.as_json()),
        }
    }

    /// The event's payload object (borrowed when it is already rendered).
    pub fn payload_json(&self) -> Cow<'_, str> {
        match &self.body {
            EntryBody::Step { .. } => {
                let mut buf = String::with_capacity(96);
                self.write_payload(&mut buf);
                Cow::Owned(buf)
            }
            EntryBody::Rendered(r) => Cow::Borrowed(r.payload.as_json()),
        }
    }

    /// The frame `user`'s connections receive for this event at `seq` of their stream.
    /// `scratch` is reused between calls so the frame costs one allocation, its own.
    pub fn render(&self, seq: Seq, user: &UserId, scratch: &mut String) -> Arc<str> {
        self.write_frame(seq, user, scratch);
        Arc::from(scratch.as_str())
    }

    /// Writes the frame [`render`](Self::render) returns into `buf` (cleared first), for a
    /// reader that compares it and needs no allocation: the outbound envelope of
    /// docs/protocol.md section 9 (`type`, `seq`, `user_id`, `thread_id` and `run_id` when
    /// present, `timestamp`), then the payload.
    pub fn write_frame(&self, seq: Seq, user: &UserId, buf: &mut String) {
        let mut num = itoa::Buffer::new();
        buf.clear();
        buf.push_str("{\"type\":\"");
        buf.push_str(self.kind().as_str());
        buf.push_str("\",\"seq\":");
        buf.push_str(num.format(seq.get()));
        buf.push_str(",\"user_id\":");
        write_json_str(buf, user.as_str());
        if let Some(t) = self.thread() {
            buf.push_str(",\"thread_id\":");
            write_json_str(buf, t.as_str());
        }
        if let Some(r) = self.run() {
            buf.push_str(",\"run_id\":");
            write_run_id(buf, r);
        }
        buf.push_str(",\"timestamp\":");
        buf.push_str(num.format(self.at.unix_millis()));
        buf.push_str(",\"payload\":");
        self.write_payload(buf);
        buf.push('}');
    }
}

impl PartialEq for StreamEntry {
    /// Equal when every envelope field is and the payloads render the same bytes: a gateway
    /// restored from its journal holds as JSON the payloads the live one holds as facts.
    fn eq(&self, other: &Self) -> bool {
        if self.at != other.at {
            return false;
        }
        match (&self.body, &other.body) {
            (EntryBody::Rendered(a), EntryBody::Rendered(b)) => a == b,
            (EntryBody::Step { run: a, step: s }, EntryBody::Step { run: b, step: t }) => {
                s == t
                    && a.run() == b.run()
                    && a.thread() == b.thread()
                    && (!matches!(s, StepBody::Started { .. }) || a == b)
            }
            _ => {
                self.kind() == other.kind()
                    && self.thread() == other.thread()
                    && self.run() == other.run()
                    && self.payload_json() == other.payload_json()
            }
        }
    }
}

impl Eq for StreamEntry {}

impl Serialize for StreamEntry {
    /// The fields in the order journals have always had them, the payload as raw JSON.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("StreamEntry", 5)?;
        s.serialize_field("at", &self.at)?;
        s.serialize_field("kind", &self.kind())?;
        s.serialize_field("thread", &self.thread())?;
        s.serialize_field("run", &self.run())?;
        match &self.body {
            EntryBody::Rendered(r) => s.serialize_field("payload", &r.payload)?,
            EntryBody::Step { .. } => s.serialize_field(
                "payload",
                &RawValue::from_string(self.payload_json().into_owned())
                    .map_err(serde::ser::Error::custom)?,
            )?,
        }
        s.end()
    }
}

/// A journal's stream entry, as written by [`StreamEntry`]'s `Serialize`.
#[derive(Deserialize)]
struct EntryWire {
    at: Instant,
    kind: StreamKind,
    thread: Option<ThreadId>,
    run: Option<RunId>,
    payload: Payload,
}

impl<'de> Deserialize<'de> for StreamEntry {
    /// Reads back with its payload rendered: the facts an agent step was rendered from are
    /// not in a journal.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = EntryWire::deserialize(deserializer)?;
        Ok(StreamEntry::new(w.at, w.kind, w.thread, w.run, w.payload))
    }
}

/// Fewest slots an outbox's ring grows by.
const MIN_GROWTH: usize = 4;

/// A user's retained stream and the next seq to assign.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outbox {
    latest: Seq,
    entries: VecDeque<Arc<StreamEntry>>,
    /// The front entry's `at` (the epoch when there is none): the age check on every append
    /// reads it, never the oldest (coldest) entry itself. Kept once per outbox, not beside
    /// every entry, where it was half of each queue slot (36 MB of a 10 000-user world).
    front_at: Instant,
}

impl Outbox {
    /// The last seq assigned (0 when the user never had an event).
    pub(crate) fn latest(&self) -> Seq {
        self.latest
    }

    /// The seq the next event will get.
    pub(crate) fn next_seq(&self) -> Seq {
        self.latest.next()
    }

    /// The oldest retained seq, or the next seq when nothing is retained.
    pub(crate) fn oldest(&self) -> Seq {
        self.first_seq().map_or(self.next_seq(), Seq::new)
    }

    /// The front entry's seq, without reading the entry: the retained entries are exactly
    /// the last `len` seqs.
    fn first_seq(&self) -> Option<u64> {
        let len = self.entries.len() as u64;
        (len > 0).then(|| self.latest.get() + 1 - len)
    }

    /// Number of retained events.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Appends `entry` at `seq`, which must be the next one. Returns false (and stores
    /// nothing) otherwise, so a corrupt log cannot create a gap.
    pub(crate) fn push(&mut self, seq: Seq, entry: Arc<StreamEntry>) -> bool {
        if seq != self.next_seq() {
            return false;
        }
        self.latest = seq;
        if self.entries.is_empty() {
            self.front_at = entry.at();
        }
        if self.entries.len() == self.entries.capacity() {
            // By half, not double: a 10-minute world's outboxes only grow, and their rings
            // are held to the end, so doubling left about 28 % of every ring empty, half
            // growth about 18 %.
            let len = self.entries.len();
            self.entries.reserve_exact((len / 2).max(MIN_GROWTH));
        }
        self.entries.push_back(entry);
        true
    }

    /// Drops the oldest entry, keeping `front_at` the new front's.
    fn pop_front(&mut self) {
        self.entries.pop_front();
        self.front_at = self.entries.front().map_or(Instant::EPOCH, |e| e.at());
    }

    /// [`push`](Self::push)es `entry` at `seq`, then keeps at most `max_events` entries none
    /// older than `retention` at `now`. Returns false (and changes nothing) on a wrong seq.
    pub(crate) fn append(
        &mut self,
        seq: Seq,
        entry: Arc<StreamEntry>,
        now: Instant,
        max_events: usize,
        retention: Duration,
    ) -> bool {
        if seq != self.next_seq() {
            return false;
        }
        self.make_room(max_events);
        let pushed = self.push(seq, entry);
        self.trim(now, max_events, retention);
        pushed
    }

    /// Drops the oldest events so that one more fits within `max_events`. Done before the
    /// push, it lets a full outbox's new entry take the slot just freed (the cache line the
    /// eviction read) instead of growing the ring past the bound and writing elsewhere: a
    /// broadcast evicts from every user's outbox, and those were its slowest steps.
    fn make_room(&mut self, max_events: usize) {
        while !self.entries.is_empty() && self.entries.len() >= max_events {
            self.pop_front();
        }
    }

    /// Drops events beyond `max_events` or older than `retention` at `now`.
    pub(crate) fn trim(&mut self, now: Instant, max_events: usize, retention: Duration) {
        let cutoff = now.saturating_sub(retention);
        while self.entries.len() > max_events
            || (!self.entries.is_empty() && self.front_at < cutoff)
        {
            self.pop_front();
        }
    }

    /// Writes the outbox's part of the state hash: `latest` and the entry count as u64 LE,
    /// then per entry the JSON of `(seq, at, kind, thread, run)` and the payload as a u64 LE
    /// length and its raw bytes. Payloads are JSON already: escaping them into a JSON string
    /// again made hashing a large world's state a tenth of a simulation's time.
    pub(crate) fn hash_into(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(&self.latest.get().to_le_bytes())?;
        w.write_all(&(self.entries.len() as u64).to_le_bytes())?;
        let mut head = String::with_capacity(64);
        let mut payload = String::with_capacity(128);
        let first = self.first_seq().unwrap_or(0);
        for (seq, e) in (first..).zip(&self.entries) {
            write_hash_head(Seq::new(seq), e, &mut head);
            w.write_all(head.as_bytes())?;
            payload.clear();
            e.write_payload(&mut payload);
            w.write_all(&(payload.len() as u64).to_le_bytes())?;
            w.write_all(payload.as_bytes())?;
        }
        Ok(())
    }

    /// The retained event with this seq.
    pub(crate) fn get(&self, seq: Seq) -> Option<&StreamEntry> {
        let first = self.first_seq()?;
        let idx = usize::try_from(seq.get().checked_sub(first)?).ok()?;
        self.entries.get(idx).map(|e| &**e)
    }
}

/// Writes into `buf` (cleared first) the JSON `serde_json` gives for `(seq, at, kind, thread,
/// run)`, without its formatting machinery: at the end of a 10-minute run the state hash
/// writes this for every retained event.
fn write_hash_head(seq: Seq, e: &StreamEntry, buf: &mut String) {
    let mut num = itoa::Buffer::new();
    buf.clear();
    buf.push('[');
    buf.push_str(num.format(seq.get()));
    buf.push(',');
    buf.push_str(num.format(e.at.as_nanos()));
    buf.push_str(",\"");
    buf.push_str(e.kind().as_str());
    buf.push_str("\",");
    match e.thread() {
        Some(t) => write_json_str(buf, t.as_str()),
        None => buf.push_str("null"),
    }
    buf.push(',');
    match e.run() {
        Some(r) => write_run_id(buf, r),
        None => buf.push_str("null"),
    }
    buf.push(']');
}

/// Appends `run` as the JSON string its `Display` (and so its serde form) gives: `"run-N"`.
fn write_run_id(buf: &mut String, run: RunId) {
    buf.push('"');
    buf.push_str(RunId::PREFIX);
    buf.push_str(itoa::Buffer::new().format(run.get()));
    buf.push('"');
}

#[cfg(test)]
mod tests;
