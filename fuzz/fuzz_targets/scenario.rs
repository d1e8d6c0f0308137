//! `scenario`: see `gauntlet_sim::fuzz_scenario` for the input format and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(v) = gauntlet_sim::fuzz_scenario(data) {
        panic!("oracle violated: {v}");
    }
});
