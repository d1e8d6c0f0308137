//! `token_bytes`: see `gauntlet_core::fuzzing::token_bytes` for the input format and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = gauntlet_core::fuzzing::token_bytes(data) {
        panic!("oracle violated: {v}");
    }
});
