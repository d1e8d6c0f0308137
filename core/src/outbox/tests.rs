//! Tests of `outbox.rs`, kept beside it because they outweigh the code.

use super::*;

fn entry(seq: u64, at_s: u64) -> StreamEntry {
    StreamEntry {
        at: Instant::from_unix_secs(at_s),
        kind: StreamKind::SystemNotice,
        thread: None,
        run: None,
        payload: text(&format!("f{seq}")),
    }
}

/// Pushes `entry(seq, at_s)` at `seq`.
fn put(o: &mut Outbox, seq: u64, at_s: u64) -> bool {
    o.push(Seq::new(seq), Arc::new(entry(seq, at_s)))
}

fn text(t: &str) -> StreamPayload {
    Payload::object().str("text", t).finish().into()
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
        o.get(Seq::new(2)).map(|e| e.payload.to_json()),
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
    let variants = [
        StreamEntry {
            payload: text("f2"),
            ..entry(1, 5)
        },
        StreamEntry {
            at: Instant::from_unix_secs(6),
            ..entry(1, 5)
        },
        StreamEntry {
            kind: StreamKind::AgentStarted,
            ..entry(1, 5)
        },
        StreamEntry {
            run: Some(RunId::new(1)),
            ..entry(1, 5)
        },
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
    let run = StreamEntry {
        kind: StreamKind::ToolExecuting,
        thread: ThreadId::parse("t-1"),
        run: Some(RunId::new(9)),
        ..entry(3, 1_800_000_000)
    };
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
                let e = StreamEntry {
                    at: Instant::from_nanos(1_800_000_000_123_456_789 + i as u64),
                    kind,
                    thread: thread.clone(),
                    run,
                    ..entry(1, 0)
                };
                write_hash_head(seq, &e, &mut buf);
                let expected =
                    serde_json::to_string(&(seq, e.at, e.kind, &e.thread, e.run)).unwrap();
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
    let text_of = |seq| {
        o.get(Seq::new(seq))
            .map(|e| e.payload.to_json().into_owned())
    };
    assert_eq!(text_of(6).as_deref(), Some(r#"{"text":"f6"}"#));
    assert_eq!(text_of(10).as_deref(), Some(r#"{"text":"f10"}"#));
    assert_eq!(o.get(Seq::new(11)), None);
}

#[test]
fn stream_frame_bytes_equal_the_serde_rendering_of_the_envelope() {
    let user = UserId::parse("u\"1é").unwrap_or_else(|| unreachable!());
    let thread = ThreadId::parse("t\\x").unwrap_or_else(|| unreachable!());
    let payload = Payload::object().str("agent_name", "a").finish().into();
    let head = StreamHead {
        kind: StreamKind::AgentStarted,
        seq: Seq::new(3),
        user: &user,
        thread: Some(&thread),
        run: Some(RunId::new(9)),
        at: Instant::from_unix_millis(1234),
    };
    let f = render_stream_frame(&head, &payload, &mut String::new());
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
    let head = StreamHead {
        kind: StreamKind::SystemNotice,
        seq: Seq::new(1),
        user: &user,
        thread: None,
        run: None,
        at: Instant::from_unix_millis(5),
    };
    let notice = render_stream_frame(&head, &payload, &mut String::new());
    assert_eq!(
        &*notice,
        r#"{"type":"system_notice","seq":1,"user_id":"u\"1é","timestamp":5,"payload":{"agent_name":"a"}}"#
    );
}

#[test]
fn an_agent_payload_is_the_same_event_as_its_rendering_read_back() {
    let run = RunId::new(3);
    let steps = crate::agent::plan(&crate::config::AgentConfig::default(), 1, run, "t\"ask");
    let with = |payload: StreamPayload| StreamEntry {
        kind: StreamKind::AgentStarted,
        thread: ThreadId::parse("t-1"),
        run: Some(run),
        payload,
        ..entry(1, 5)
    };
    for step in &steps {
        let live = with(step.payload(run).into());
        let json = serde_json::to_string(&live).unwrap();
        let read: StreamEntry = serde_json::from_str(&json).unwrap();
        assert!(matches!(read.payload, StreamPayload::Json(_)));
        assert_eq!(read, live);
        assert_eq!(live, read);
        assert_eq!(read.payload.to_json(), live.payload.to_json());
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
    let other = with(text("t\"ask"));
    assert_ne!(with(steps[0].payload(run).into()), other);
    assert_ne!(other, with(steps[0].payload(run).into()));
    assert_ne!(
        with(steps[0].payload(run).into()),
        with(steps[0].payload(RunId::new(4)).into()),
        "the run is part of an agent payload (its execution ids)"
    );
}

#[test]
fn the_age_check_follows_the_front_through_every_pop_and_refill() {
    let day = Duration::from_secs(10);
    let at = Instant::from_unix_secs;
    let mut o = Outbox::default();
    for (seq, s) in [(1, 0), (2, 10), (3, 20)] {
        assert!(put(&mut o, seq, s));
    }
    o.trim(at(25), 10, day);
    assert_eq!(
        (o.oldest(), o.len()),
        (Seq::new(3), 1),
        "the two older than 15 s go"
    );
    o.trim(at(29), 10, day);
    assert_eq!(o.len(), 1, "20 s is not older than 19 s");
    o.trim(at(31), 10, day);
    assert_eq!(o.len(), 0);
    let mut at_once = Outbox::default();
    for (seq, s) in [(1, 0), (2, 10), (3, 20)] {
        assert!(put(&mut at_once, seq, s));
    }
    at_once.trim(at(31), 10, day);
    assert_eq!(o, at_once, "the same stream however it was trimmed");
    assert!(put(&mut o, 4, 40));
    o.trim(at(45), 10, day);
    assert_eq!(
        o.oldest(),
        Seq::new(4),
        "a refilled outbox ages from its new front"
    );
    assert!(o.append(Seq::new(5), Arc::new(entry(5, 60)), at(60), 10, day));
    assert_eq!((o.oldest(), o.len()), (Seq::new(5), 1));
    assert!(o.append(Seq::new(6), Arc::new(entry(6, 69)), at(69), 1, day));
    assert_eq!(
        (o.oldest(), o.len()),
        (Seq::new(6), 1),
        "the count bound pops too"
    );
    o.trim(at(72), 10, day);
    assert_eq!(
        o.len(),
        1,
        "and the age check then reads the entry that took the slot"
    );
    o.trim(at(80), 10, day);
    assert_eq!(o.len(), 0);
}
