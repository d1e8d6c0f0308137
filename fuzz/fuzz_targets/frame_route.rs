//! `frame_route`: see `gauntlet_core::fuzzing::frame_route` for the input format and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = gauntlet_core::fuzzing::frame_route(data) {
        panic!("oracle violated: {v}");
    }
});
