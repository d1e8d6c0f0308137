//! `gauntlet plants`: the planted bugs this build can switch on with `--plant NAME`.

use std::io::Write;

use super::Outcome;

/// Lists the planted bugs, one per line: name, then what it breaks.
pub(crate) fn run_plants(stdout: &mut dyn Write) -> std::io::Result<Outcome> {
    #[cfg(feature = "planted-bugs")]
    for p in gauntlet_core::Plant::ALL {
        writeln!(stdout, "{:<24} {}", p.name(), p.description())?;
    }
    #[cfg(not(feature = "planted-bugs"))]
    writeln!(
        stdout,
        "this build has no planted bugs: rebuild with `--features planted-bugs`"
    )?;
    Ok(Outcome::Success)
}
