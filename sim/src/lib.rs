//! # gauntlet-sim
//!
//! The deterministic simulator and the library behind the `gauntlet` command-line tool.
