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
