//! Tests of `outbox.rs`, kept beside it because they outweigh the code.

use super::*;

fn entry(seq: u64, at_s: u64) -> StreamEntry {
    StreamEntry::new(
        Instant::from_unix_secs(at_s),
        StreamKind::SystemNotice,
        None,
        None,
        text(&format!("f{seq}")),
    )
}

/// Pushes `entry(seq, at_s)` at `seq`.
fn put(o: &mut Outbox, seq: u64, at_s: u64) -> bool {
    o.push(Seq::new(seq), Arc::new(entry(seq, at_s)))
}

fn text(t: &str) -> Payload {
    Payload::object().str("text", t).finish()
}

/// A retained agent step is a pointer and 12 bytes of facts, with its time: 32 bytes, which
/// with the `Arc`'s counts fill a 48-byte allocation (it was 80 bytes, a 96-byte one).
#[test]
fn an_entry_is_32_bytes() {
    assert_eq!(std::mem::size_of::<StreamEntry>(), 32);
}

#[test]
fn push_requires_the_next_seq() {
    let mut o = Outbox::default();
    assert!(!put(&mut o, 2, 0));
    assert!(put(&mut o, 1, 0));
    assert!(!put(&mut o, 1, 0));
    assert!(put(&mut o, 2, 0));
    assert_eq!(o.latest(), Seq::new(2));
    assert_eq!(
        o.get(Seq::new(2)).map(|e| e.payload_json()),
        Some(r#"{"text":"f2"}"#.into())
    );
    assert_eq!(o.get(Seq::new(3)), None);
}

fn hash_bytes(o: &Outbox) -> Vec<u8> {
    let mut out = Vec::new();
    o.hash_into(&mut out).unwrap();
    out
}

#[test]
fn hash_encoding_carries_payloads_raw_and_tells_every_field_apart() {
    let mut o = Outbox::default();
    assert!(put(&mut o, 1, 5));
    let bytes = hash_bytes(&o);
    let payload = br#"{"text":"f1"}"#;
    let payload_at = bytes.len() - payload.len();
    assert_eq!(
        &bytes[payload_at..],
        payload,
        "the payload is written unescaped, last"
    );
    assert_eq!(
        &bytes[payload_at - 8..payload_at],
        &(payload.len() as u64).to_le_bytes()
    );
    let at = Instant::from_unix_secs(5);
    let notice = StreamKind::SystemNotice;
    let variants = [
        StreamEntry::new(at, notice, None, None, text("f2")),
        StreamEntry::new(Instant::from_unix_secs(6), notice, None, None, text("f1")),
        StreamEntry::new(at, StreamKind::AgentStarted, None, None, text("f1")),
        StreamEntry::new(at, notice, ThreadId::parse("t"), None, text("f1")),
        StreamEntry::new(at, notice, None, Some(RunId::new(1)), text("f1")),
    ];
    for v in variants {
        let mut other = Outbox::default();
        assert!(other.push(Seq::new(1), Arc::new(v.clone())));
        assert_ne!(hash_bytes(&other), bytes, "{v:?}");
    }
    let mut same = Outbox::default();
    assert!(put(&mut same, 1, 5));
    assert_eq!(hash_bytes(&same), bytes);
}

#[test]
fn render_wraps_the_payload_in_the_envelope_for_the_user() {
    let user = UserId::parse("u\"7").unwrap();
    let run = StreamEntry::new(
        Instant::from_unix_secs(1_800_000_000),
        StreamKind::ToolExecuting,
        ThreadId::parse("t-1"),
        Some(RunId::new(9)),
        text("f3"),
    );
    let expected = r#"{"type":"tool_executing","seq":3,"user_id":"u\"7","thread_id":"t-1","run_id":"run-9","timestamp":1800000000000,"payload":{"text":"f3"}}"#;
    let mut scratch = String::new();
    assert_eq!(&*run.render(Seq::new(3), &user, &mut scratch), expected);
    let notice = entry(4, 1);
    let mut buf = String::from("left over");
    notice.write_frame(Seq::new(4), &user, &mut buf);
    assert_eq!(
        buf,
        r#"{"type":"system_notice","seq":4,"user_id":"u\"7","timestamp":1000,"payload":{"text":"f4"}}"#
    );
    assert_eq!(&*notice.render(Seq::new(4), &user, &mut scratch), buf);
    let parsed: serde_json::Value = serde_json::from_str(expected).unwrap();
    assert_eq!(parsed["payload"]["text"], "f3");
}

#[test]
fn hash_head_is_what_serde_json_writes_for_the_tuple() {
    let kinds = [
        StreamKind::AgentStarted,
        StreamKind::ToolCompleted,
        StreamKind::AgentCancelled,
        StreamKind::SystemNotice,
    ];
    let threads = [
        None,
        ThreadId::parse("t-1"),
        ThreadId::parse("é\"\\ /\u{2028}"),
    ];
    assert!(threads.iter().skip(1).all(Option::is_some));
    let mut buf = String::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        for thread in &threads {
            for run in [None, Some(RunId::new(0)), Some(RunId::new(u64::MAX))] {
                let seq = Seq::new(u64::MAX - i as u64);
                let at = Instant::from_nanos(1_800_000_000_123_456_789 + i as u64);
                let e = StreamEntry::new(at, kind, thread.clone(), run, text("f1"));
                write_hash_head(seq, &e, &mut buf);
                let expected = serde_json::to_string(&(seq, at, kind, thread, run)).unwrap();
                assert_eq!(buf, expected);
            }
        }
    }
}

#[test]
fn trim_keeps_count_and_age_bounds_but_not_seq() {
    let mut o = Outbox::default();
    for s in 1..=10 {
        assert!(put(&mut o, s, s));
    }
    o.trim(Instant::from_unix_secs(10), 8, Duration::from_secs(100));
    assert_eq!((o.len(), o.oldest()), (8, Seq::new(3)));
    o.trim(Instant::from_unix_secs(15), 8, Duration::from_secs(10));
    assert_eq!((o.len(), o.oldest()), (6, Seq::new(5)));
    assert_eq!(o.next_seq(), Seq::new(11));
}

#[test]
fn append_keeps_the_bound_and_the_ring_size() {
    let mut o = Outbox::default();
    let long = Duration::from_secs(3600);
    let append = |o: &mut Outbox, seq: u64, max: usize| {
        o.append(
            Seq::new(seq),
            Arc::new(entry(seq, 0)),
            Instant::EPOCH,
            max,
            long,
        )
    };
    for s in 1..=8 {
        assert!(append(&mut o, s, 8));
    }
    assert!(!append(&mut o, 8, 8), "a wrong seq is refused");
    assert_eq!((o.len(), o.oldest()), (8, Seq::new(1)));
    let capacity = o.entries.capacity();
    for s in 9..=100 {
        assert!(append(&mut o, s, 8));
        assert_eq!((o.len(), o.oldest()), (8, Seq::new(s - 7)));
    }
    assert_eq!(
        o.entries.capacity(),
        capacity,
        "a full outbox never regrows"
    );
    assert!(append(&mut o, 101, 0));
    assert_eq!((o.len(), o.oldest()), (0, Seq::new(102)));
    assert!(append(&mut o, 102, 8));
    assert!(o.append(
        Seq::new(103),
        Arc::new(entry(103, 7200)),
        Instant::from_unix_secs(7200),
        8,
        long
    ));
    assert_eq!((o.len(), o.oldest()), (1, Seq::new(103)), "age still trims");
}

#[test]
fn trim_by_age_looks_at_the_front_only_and_follows_it() {
    let mut o = Outbox::default();
    for (s, at) in [(1, 50), (2, 5), (3, 100)] {
        assert!(put(&mut o, s, at));
    }
    o.trim(Instant::from_unix_secs(60), 10, Duration::from_secs(20));
    assert_eq!(
        (o.len(), o.oldest()),
        (3, Seq::new(1)),
        "the front is young enough"
    );
    o.trim(Instant::from_unix_secs(80), 10, Duration::from_secs(20));
    assert_eq!(
        (o.len(), o.oldest()),
        (1, Seq::new(3)),
        "each new front is checked"
    );
    o.trim(Instant::from_unix_secs(80), 0, Duration::from_secs(20));
    assert_eq!((o.len(), o.oldest()), (0, Seq::new(4)));
    assert!(put(&mut o, 4, 200));
    o.trim(Instant::from_unix_secs(210), 10, Duration::from_secs(20));
    assert_eq!(
        o.len(),
        1,
        "an emptied outbox ages its next entry, not the last one"
    );
    o.trim(Instant::from_unix_secs(221), 10, Duration::from_secs(20));
    assert_eq!(o.len(), 0);
}

#[test]
fn get_finds_retained_events_only() {
    let mut o = Outbox::default();
    for s in 1..=10 {
        assert!(put(&mut o, s, 0));
    }
    o.trim(Instant::EPOCH, 5, Duration::from_secs(1));
    assert_eq!(o.get(Seq::new(5)), None);
    let text_of = |seq| o.get(Seq::new(seq)).map(|e| e.payload_json().into_owned());
    assert_eq!(text_of(6).as_deref(), Some(r#"{"text":"f6"}"#));
    assert_eq!(text_of(10).as_deref(), Some(r#"{"text":"f10"}"#));
    assert_eq!(o.get(Seq::new(11)), None);
}

#[test]
fn stream_frame_bytes_equal_the_serde_rendering_of_the_envelope() {
    let user = UserId::parse("u\"1é").unwrap_or_else(|| unreachable!());
    let thread = ThreadId::parse("t\\x");
    let payload = Payload::object().str("agent_name", "a").finish();
    let started = StreamEntry::new(
        Instant::from_unix_millis(1234),
        StreamKind::AgentStarted,
        thread,
        Some(RunId::new(9)),
        payload.clone(),
    );
    let f = started.render(Seq::new(3), &user, &mut String::new());
    // serde_json renders struct fields in declaration order: the envelope's order.
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        seq: u64,
        user_id: &'a str,
        thread_id: &'a str,
        run_id: &'a str,
        timestamp: u64,
        payload: serde_json::Value,
    }
    let expected = serde_json::to_string(&Envelope {
        kind: "agent_started",
        seq: 3,
        user_id: "u\"1é",
        thread_id: "t\\x",
        run_id: "run-9",
        timestamp: 1234,
        payload: serde_json::json!({"agent_name":"a"}),
    })
    .unwrap_or_default();
    assert_eq!(&*f, expected);
    let notice = StreamEntry::new(
        Instant::from_unix_millis(5),
        StreamKind::SystemNotice,
        None,
        None,
        payload,
    );
    assert_eq!(
        &*notice.render(Seq::new(1), &user, &mut String::new()),
        r#"{"type":"system_notice","seq":1,"user_id":"u\"1é","timestamp":5,"payload":{"agent_name":"a"}}"#
    );
}

/// The steps of run 3 on thread `t-1`, and that run.
fn run_steps(task: &str) -> (Arc<AgentRun>, Vec<crate::agent::AgentStep>) {
    let run = RunId::new(3);
    let info = Arc::new(AgentRun::new(
        run,
        ThreadId::parse("t-1").unwrap_or_else(|| unreachable!()),
        task,
    ));
    let cfg = crate::config::AgentConfig {
        max_tools: 4,
        failure_per_mille: 500,
        ..crate::config::AgentConfig::default()
    };
    (info, crate::agent::plan(&cfg, 1, run))
}

#[test]
fn an_agent_step_is_the_same_event_as_its_rendering_read_back() {
    let (info, steps) = run_steps("t\"ask");
    let at = Instant::from_unix_secs(5);
    let mut kinds = std::collections::BTreeSet::new();
    for step in &steps {
        let live = StreamEntry::step(at, &info, step);
        kinds.insert(live.kind());
        assert_eq!(
            (live.kind(), live.thread(), live.run()),
            (step.kind(), Some(info.thread()), Some(info.run()))
        );
        let json = serde_json::to_string(&live).unwrap();
        let read: StreamEntry = serde_json::from_str(&json).unwrap();
        assert!(matches!(read.body, EntryBody::Rendered(_)));
        assert_eq!(read, live);
        assert_eq!(live, read);
        assert_eq!(read.payload_json(), live.payload_json());
        assert_eq!(serde_json::to_string(&read).unwrap(), json);
        let (mut a, mut b) = (Outbox::default(), Outbox::default());
        assert!(a.push(Seq::new(1), Arc::new(live.clone())));
        assert!(b.push(Seq::new(1), Arc::new(read.clone())));
        assert_eq!(hash_bytes(&a), hash_bytes(&b));
        let user = UserId::parse("u1").unwrap();
        let mut scratch = String::new();
        assert_eq!(
            live.render(Seq::new(4), &user, &mut scratch),
            read.render(Seq::new(4), &user, &mut scratch)
        );
    }
    assert!(kinds.len() >= 4, "{kinds:?}");
}

#[test]
fn agent_steps_differ_by_what_their_frames_say() {
    let (info, steps) = run_steps("task");
    let at = Instant::from_unix_secs(5);
    let live = |info: &Arc<AgentRun>, i: usize| StreamEntry::step(at, info, &steps[i]);
    let started = live(&info, 0);
    let rendered = StreamEntry::new(
        at,
        StreamKind::AgentStarted,
        Some(info.thread().clone()),
        Some(info.run()),
        text("task"),
    );
    assert_ne!(started, rendered, "same envelope, another payload");
    assert_ne!(rendered, started);
    assert_ne!(started, live(&info, 1), "another step of the run");
    let (other_task, _) = run_steps("another task");
    assert_ne!(
        started,
        live(&other_task, 0),
        "agent_started echoes the task"
    );
    assert_eq!(
        live(&info, 1),
        live(&other_task, 1),
        "no other step says the task"
    );
    let other_run = Arc::new(AgentRun::new(RunId::new(4), info.thread().clone(), "task"));
    assert_ne!(
        live(&info, 1),
        live(&other_run, 1),
        "the run id is in the envelope"
    );
    assert_ne!(
        StreamEntry::step(Instant::from_unix_secs(6), &info, &steps[0]),
        started
    );
}

#[test]
fn a_growing_ring_grows_by_half_not_double() {
    let mut o = Outbox::default();
    for s in 1..=2000 {
        assert!(put(&mut o, s, 0));
        let (len, cap) = (o.len(), o.entries.capacity());
        assert!(
            cap <= len + (len / 2).max(MIN_GROWTH),
            "{cap} slots for {len} entries"
        );
    }
}
