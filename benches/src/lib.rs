//! Shared fixtures for the Gauntlet benches.
