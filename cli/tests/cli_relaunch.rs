//! `gauntlet sim|shrink|replay` relaunch themselves with the allocator's purge delay set
//! (sim/src/relaunch.rs): the child really runs with the setting, a value the user chose is
//! kept, other commands are not relaunched, and output and exit codes pass through unchanged.

use std::process::{Command, Output};

use gauntlet_sim::relaunch::PURGE_DELAY_VAR;

/// Runs the binary with the purge delay set to `purge` (or unset).
fn gauntlet(args: &[&str], purge: Option<&str>) -> Output {
    run(args, purge, false)
}

/// As [`gauntlet`]; `verbose` sets `MIMALLOC_VERBOSE=1`, which makes mimalloc print every
/// option it runs with (and, at exit, its statistics) on stderr.
fn run(args: &[&str], purge: Option<&str>, verbose: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.args(args).env_remove("MIMALLOC_VERBOSE");
    if verbose {
        cmd.env("MIMALLOC_VERBOSE", "1");
    }
    match purge {
        Some(v) => cmd.env(PURGE_DELAY_VAR, v),
        None => cmd.env_remove(PURGE_DELAY_VAR),
    };
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SMALL_SIM: &[&str] = &["sim", "--seed", "3", "--users", "5", "--duration", "5s"];

#[test]
fn without_the_setting_a_simulation_runs_again_with_purging_off() {
    let out = run(SMALL_SIM, None, true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("option 'purge_delay': -1"),
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.matches("state_hash").count(),
        1,
        "printed once: {stdout}"
    );
}

#[test]
fn other_commands_are_not_relaunched() {
    let out = run(&["plants"], None, true);
    // `plants` is a usage error on a build without planted bugs (cli_exit_codes.rs).
    let code = if cfg!(feature = "planted-bugs") { 0 } else { 2 };
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("option 'purge_delay': 10"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_purge_delay_the_user_chose_is_kept() {
    let out = run(SMALL_SIM, Some("25"), true);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("option 'purge_delay': 25"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("option 'purge_delay': -1"));
}

/// Stdout and stderr without the lines measured on the machine, which differ from run to run.
fn untimed(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    out.lines()
        .chain(err.lines())
        .filter(|l| {
            !["wall", "events/s", "sim/wall", "peak rss"]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn output_and_exit_codes_pass_through_the_relaunch() {
    let cases: [(&[&str], i32); 3] = [
        (
            &[
                "sim",
                "--seed",
                "3",
                "--users",
                "5",
                "--duration",
                "5s",
                "-q",
            ],
            0,
        ),
        (&["replay", "/nonexistent/gauntlet-journal.jsonl"], 2),
        (&["sim", "--users", "many"], 2),
    ];
    for (args, code) in cases {
        let relaunched = gauntlet(args, None);
        let direct = gauntlet(args, Some("-1"));
        assert_eq!(relaunched.status.code(), Some(code), "{args:?}");
        assert_eq!(direct.status.code(), Some(code), "{args:?}");
        assert!(!untimed(&direct).is_empty(), "{args:?}");
        assert_eq!(untimed(&relaunched), untimed(&direct), "{args:?}");
    }
}
