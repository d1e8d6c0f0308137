//! `gauntlet`: the command-line shell over `gauntlet-sim` and `gauntlet-core`.
//!
//! `main` only chains parse -> run -> `ExitCode` (docs/contributing.md), with the codes of the
//! contract in `cli`'s module doc: 0 passed (also on a broken pipe), 1 a violation or a
//! failed check, 2 a usage or configuration error (clap's own code for bad flags), 101 a bug
//! (a panic). It is the only place `anyhow` is used, to print the error chain with `{:#}`.

use std::io;
use std::process::ExitCode;

use clap::Parser as _;

mod commands;

use commands::{Cli, Exit};

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
    let exit = match cli.run(&mut stdin, &mut stdout, &mut stderr) {
        Ok(outcome) => outcome.exit(),
        Err(e) => {
            let exit = e.exit();
            if exit != Exit::Passed {
                let e = anyhow::Error::new(e);
                eprintln!("gauntlet: {e:#}");
            }
            exit
        }
    };
    ExitCode::from(exit.code())
}
