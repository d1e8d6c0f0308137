//! `gauntlet`: the command-line shell over `gauntlet-sim`.
fn main() {}
