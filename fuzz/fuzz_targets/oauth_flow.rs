//! `oauth_flow`: see `gauntlet_core::fuzzing::oauth_flow` for the input format and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = gauntlet_core::fuzzing::oauth_flow(data) {
        panic!("oracle violated: {v}");
    }
});
