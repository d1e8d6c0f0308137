//! `log_replay`: see `gauntlet_core::fuzzing::log_replay` for the input format and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = gauntlet_core::fuzzing::log_replay(data) {
        panic!("oracle violated: {v}");
    }
});
