use super::*;

#[test]
fn frame_route_ping_and_resume_keep_connection_open() {
    let input = b"{\"type\":\"ping\"}\n{\"type\":\"resume\",\"payload\":{\"last_seq\":0}}\n\n{\"type\":\"stop_agent\",\"payload\":{\"run_id\":\"run-2\"}}";
    assert_eq!(frame_route(input), Ok(()));
}

#[test]
fn frame_route_oversized_and_bad_utf8_frames_close_as_documented() {
    let mut big = b"{\"type\":\"ping\",\"x\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 9000));
    assert_eq!(frame_route(&big), Ok(()));
    assert_eq!(frame_route(b"\xff\xfe"), Ok(()));
}

#[test]
fn frame_route_eleven_bad_messages_close_1008() {
    let input = ["nope"; 12].join("\n");
    assert_eq!(frame_route(input.as_bytes()), Ok(()));
}

#[test]
fn expected_close_counts_budget_errors_in_window() {
    let mut w = World::setup(Plants::NONE, false).unwrap();
    let error = r#"{"type":"error","code":"BAD_MESSAGE","message":"x","retryable":false}"#;
    let seen = Observed {
        sends: vec![(A, error.into())],
        ..Observed::default()
    };
    let closes: Vec<Option<u16>> = (0..11).map(|_| w.expected_close(b"x", &seen)).collect();
    assert_eq!(closes[..10], [None; 10]);
    assert_eq!(closes[10], Some(1008));
    assert_eq!(w.expected_close(&[b'x'; 8193], &seen), Some(1009));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn frame_route_broadcast_leak_plant_is_caught() {
    let input = br#"{"type":"user_message","payload":{"content":"secret"}}"#;
    let r = frame_route_with(input, Plants::only(crate::Plant::BroadcastLeak));
    assert!(
        matches!(&r, Err(OracleViolation::CrossUserDelivery { conn: 2, owner, frame })
            if owner == "bob" && frame.contains("alice")),
        "{r:?}"
    );
    assert_eq!(frame_route(input), Ok(()));
}

#[test]
fn frame_route_holds_resumes_to_the_asked_seq_and_ignores_frames_it_cannot_read_alike() {
    for input in [
        r#"{"type":"resume","payload":{"last_seq":2}}"#,
        r#"{"type":"resume","payload":{"last_seq":0}}"#,
        r#"{"type":"resume","payload":{"last_seq":2,"last_seq":4}}"#,
        r#"{"type":"resume","payload":{"last_seq":4},"type":"ping"}"#,
        r#"{"type":"resume","payload":{"last_seq":99}}"#,
    ] {
        let twice = format!("{input}\n{input}");
        assert_eq!(frame_route(twice.as_bytes()), Ok(()), "{input}");
    }
}

#[test]
fn a_resume_that_skips_or_a_live_gap_is_a_stream_order_violation() {
    let mut w = World::setup(Plants::NONE, false).unwrap();
    let live = w.a_stream.live;
    let frame = |seq: u64| format!(r#"{{"type":"agent_thinking","seq":{seq},"user_id":"alice"}}"#);
    assert!(matches!(
        w.check_a(&frame(live + 2)),
        Err(OracleViolation::StreamOrder { conn: 1, .. })
    ));
    w.resume_asked = Some(1);
    assert!(matches!(
        w.check_a(&frame(3)),
        Err(OracleViolation::StreamOrder { why, .. }) if why.contains("re-sent seq 3")
    ));
    assert_eq!(w.check_a(&frame(2)), Ok(()));
    let resumed = r#"{"type":"resumed","from_seq":2,"count":2}"#;
    assert!(matches!(
        w.check_a(resumed),
        Err(OracleViolation::StreamOrder { why, .. }) if why.contains("counts Some(2), 1")
    ));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn frame_route_resume_skips_plant_is_caught() {
    let input = br#"{"type":"resume","payload":{"last_seq":1}}"#;
    let r = frame_route_with(input, Plants::only(crate::Plant::ResumeSkips));
    assert!(
        matches!(&r, Err(OracleViolation::StreamOrder { conn: 1, why, .. }) if why.contains("re-sent seq 3")),
        "{r:?}"
    );
    assert_eq!(frame_route(input), Ok(()));
}

#[cfg(feature = "planted-bugs")]
#[test]
fn frame_route_run_id_as_user_id_plant_is_caught_when_a_stops_bobs_run() {
    let input = br#"{"type":"stop_agent","payload":{"run_id":"run-2"}}"#;
    let r = frame_route_with(input, Plants::only(crate::Plant::RunIdAsUserId));
    assert!(
        matches!(&r, Err(OracleViolation::ActedForAnotherUser { conn: 2, frame }) if frame.contains("agent_cancelled")),
        "{r:?}"
    );
    assert_eq!(frame_route(input), Ok(()));
}

#[test]
fn a_copy_of_the_set_up_world_behaves_as_a_fresh_setup() {
    // Spend a copy first: whatever that input did must not reach the next copy.
    assert_eq!(frame_route(b"{\"type\":\"ping\"}\nnope\n\nnope"), Ok(()));
    let frames: [&[u8]; 5] = [
        br#"{"type":"ping"}"#,
        br#"{"type":"resume","payload":{"last_seq":0}}"#,
        b"nope",
        br#"{"type":"user_message","payload":{"content":"x"}}"#,
        br#"{"type":"stop_agent","payload":{"run_id":"run-2"}}"#,
    ];
    for may_broadcast in [false, true] {
        let run = |mut w: World| {
            let mut seen = Vec::new();
            for data in frames {
                seen.push(w.drive.advance(FRAME_STEP, true));
                seen.push(w.drive.input(Input::Text { conn: A, data }));
            }
            let seen: Vec<_> = seen.into_iter().map(|o| (o.sends, o.closes)).collect();
            (seen, w.drive.log, w.drive.gw.state_hash(), w.b_seq)
        };
        let copy = run(World::start(Plants::NONE, may_broadcast).unwrap());
        let fresh = run(World::setup(Plants::NONE, may_broadcast).unwrap());
        assert_eq!(copy, fresh);
    }
}
