//! What the CLI's process tests share: a scratch directory per test, a child process that is
//! killed when dropped, the `gauntlet` command with a clean environment, and an output's text
//! for assertion messages. Each test file includes it as `mod common`, and uses what it needs.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// A scratch directory of its own per test (named after the test file, the test and the
/// process), removed at the end.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "gauntlet-{}-{name}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }

    pub(crate) fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child killed (and reaped) when dropped, so a failing assertion never leaks a process.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gauntlet args` in `dir`, with piped output and no `GAUNTLET_*` variable: the sim flags
/// and the secret read them, and a developer's own must not leak into a test.
pub(crate) fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GAUNTLET_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Starts `gauntlet serve args` in `dir` (the args include `--addr 127.0.0.1:0`); returns the
/// child and the address of its first stdout line. A server that dies says nothing, the read
/// ends at EOF, and the test fails with what it read.
pub(crate) fn serve(dir: &Path, args: &[&str]) -> (Killed, String) {
    let mut child = Killed(command(dir, args).spawn().unwrap());
    let mut line = String::new();
    let _ = BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut line);
    let target = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
        .to_owned();
    (child, target)
}

/// Stops a `gauntlet serve` child as an operator does, with SIGTERM, so that it shuts down
/// cleanly (sessions closed 1001, the journal footer and the trace written), and waits for
/// it, at most 20 s.
// Bounded by the wall clock: a server that ignores the signal fails the test, not hangs it.
#[allow(clippy::disallowed_methods)]
pub(crate) fn terminate(child: &mut Killed) -> ExitStatus {
    let pid = child.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success(), "kill -TERM {pid}: {sent}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The exit code and both streams, for an assertion's message.
pub(crate) fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
