//! `gauntlet`: the command-line shell over `gauntlet-sim` and `gauntlet-core`.
//!
//! `main` only chains parse -> run -> `ExitCode` (STYLE.md section 8): 0 success (also on a
//! broken pipe), 1 an invalid token or a failure, 2 a usage error (clap's default).
//! It is the only place `anyhow` is used, to print the error chain with `{:#}`.

use std::io;
use std::process::ExitCode;

use clap::Parser as _;

mod commands;

use commands::{Cli, Outcome};

// A large world allocates and frees hundreds of millions of small objects (frames, ids, map
// nodes); glibc's allocator spent much of a 10k-user run coalescing free chunks
// (`unlink_chunk`, `malloc_consolidate`), and mimalloc ran it 1.5x faster (issue 4 notes).
// Its purge delay is set by relaunching (gauntlet_sim::relaunch says why).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.runs_a_world()
        && let Some(code) = gauntlet_sim::relaunch::with_allocator_settings()
    {
        return code;
    }
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    match cli.run(&mut stdin, &mut stdout, &mut stderr) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::from(1),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            let e = anyhow::Error::new(e);
            eprintln!("gauntlet: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use super::*;

    #[test]
    fn broken_pipe_kind_is_the_one_mapped_to_success() {
        let e = commands::CliError::from(io::Error::from(ErrorKind::BrokenPipe));
        assert!(e.is_broken_pipe());
        let e = commands::CliError::from(io::Error::from(ErrorKind::PermissionDenied));
        assert!(!e.is_broken_pipe());
    }
}
