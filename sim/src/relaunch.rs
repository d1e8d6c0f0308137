//! Running the current program once more, with the allocator settings it needs from its
//! first allocation.
//!
//! `gauntlet` and the simulator bench allocate with mimalloc, which by default hands memory
//! freed for 10 ms back to the OS. A simulation frees and reuses memory all the time, so
//! every such return was faulted in again and split the transparent huge pages under the
//! heap: with purging off, 10 000 users x 10 simulated minutes ran 10-20 % faster (93-111 s
//! against 116-126 s, back to back), and 20 seeds of 1000 users in 8.5-9.0 s instead of
//! 10.0 s (issue 4 notes).
//! mimalloc reads its options from the environment at process start; setting one from
//! inside takes `unsafe` FFI, which this workspace forbids. So a binary whose environment
//! lacks the setting starts itself again with it set, passes its standard streams and
//! arguments through, and exits with the child's status.
//!
//! This must never change what a run computes (the setting only decides when freed memory
//! goes back to the OS), and never relaunch twice: the child finds the variable set. A
//! value the user already chose is kept.

use std::process::{Command, ExitCode};

/// mimalloc's delay, in ms, before freed memory goes back to the OS.
pub const PURGE_DELAY_VAR: &str = "MIMALLOC_PURGE_DELAY";
/// Never during the run: the process keeps what it freed and reuses it.
const PURGE_NEVER: &str = "-1";

/// Runs this program again with [`PURGE_DELAY_VAR`] set when the environment lacks it, and
/// returns the exit code to end with: the child's (1 if it died by a signal). `None` means
/// the caller goes on in this process: the variable was already set, or the relaunch could
/// not start (the run is then only slower).
pub fn with_allocator_settings() -> Option<ExitCode> {
    if std::env::var_os(PURGE_DELAY_VAR).is_some() {
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY_VAR, PURGE_NEVER)
        .status()
        .ok()?;
    Some(
        status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .map_or(ExitCode::FAILURE, ExitCode::from),
    )
}
