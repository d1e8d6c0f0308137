//! `memory-gate`: issue 20's memory budget as a gate. Runs one seed of the simulator under
//! the `chaos` preset in this process, on the allocator and settings `gauntlet` runs with, and
//! fails when the process's peak resident set per simulated user is over the budget.
//!
//! ```text
//! cargo run --release -p gauntlet-benches --bin memory-gate
//! cargo run --release -p gauntlet-benches --bin memory-gate -- --users 3000 --max-kb-per-user 120
//! ```
//!
//! A peak resident set depends on the allocator, not on the machine's load, so unlike a wall
//! clock it can gate a shared CI machine: four runs of the default world peaked within 1 % of
//! each other. KB are 1000 bytes, as `gauntlet sim`'s own `peak rss` line counts them. Exit
//! status: 0 within the budget, 1 over it or when the run finds a violation, 2 on bad usage.

use std::process::ExitCode;
use std::time::Duration;

use gauntlet_sim::{FaultPreset, Faults, SimConfig, Ticker, peak_rss, run_seed};

// What `gauntlet` allocates with (cli/src/main.rs), relaunched with the same settings below:
// the budget is about the simulator as users run it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
memory-gate: run one seed of the simulator (chaos faults) and fail when its peak resident set
per simulated user is over the budget (issue 20: 50 KB per user at 10 000 users x 10 minutes).

usage: memory-gate [--users N] [--minutes M] [--seed S] [--max-kb-per-user K]

  --users N            simulated users (default 10000)
  --minutes M          simulated minutes (default 10)
  --seed S             the seed (default 1)
  --max-kb-per-user K  the budget, in KB (1000 bytes) of peak RSS per user (default 50)
  -h, --help           print this help

Exit status: 0 within the budget, 1 over it or when the run finds a violation, 2 on bad usage.";

/// What to run and the budget it must keep.
#[derive(Debug, PartialEq)]
struct Args {
    users: u64,
    minutes: u64,
    seed: u64,
    max_kb_per_user: f64,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            users: 10_000,
            minutes: 10,
            seed: 1,
            max_kb_per_user: 50.0,
        }
    }
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value"))
                .cloned()
        };
        let number = |v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag} takes a positive whole number, not {v:?}"))
        };
        match flag.as_str() {
            "--users" => out.users = number(value()?)?,
            "--minutes" => out.minutes = number(value()?)?,
            "--seed" => {
                let v = value()?;
                out.seed = v
                    .parse()
                    .map_err(|_| format!("--seed takes a whole number, not {v:?}"))?;
            }
            "--max-kb-per-user" => {
                let v = value()?;
                out.max_kb_per_user = v
                    .parse::<f64>()
                    .ok()
                    .filter(|k| k.is_finite() && *k > 0.0)
                    .ok_or_else(|| {
                        format!("--max-kb-per-user takes a positive number, not {v:?}")
                    })?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(out)
}

/// Peak resident bytes per user, in KB of 1000 bytes.
fn kb_per_user(peak_bytes: u64, users: u64) -> f64 {
    peak_bytes as f64 / users as f64 / 1000.0
}

fn main() -> ExitCode {
    if let Some(code) = gauntlet_sim::relaunch::with_allocator_settings() {
        return code;
    }
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("memory-gate: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cfg = match SimConfig::builder()
        .seed(args.seed)
        .users(args.users)
        .duration(Duration::from_secs(args.minutes.saturating_mul(60)))
        .faults(Faults::Preset(FaultPreset::Chaos))
        .quiet(true)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("memory-gate: {e}");
            return ExitCode::from(2);
        }
    };
    let world = format!(
        "{} users x {} simulated min, seed {}, chaos",
        args.users, args.minutes, args.seed
    );
    eprintln!("memory-gate: running {world}");
    let outcome = run_seed(&cfg, args.seed, &Ticker::none());
    if let Some(v) = &outcome.violation {
        eprintln!("memory-gate: the run found a violation, so its memory says nothing: {v:?}");
        return ExitCode::FAILURE;
    }
    let Some(peak) = peak_rss() else {
        eprintln!(
            "memory-gate: this system does not report a peak resident set (/proc/self/status)"
        );
        return ExitCode::from(2);
    };
    let per_user = kb_per_user(peak, args.users);
    let verdict = if per_user <= args.max_kb_per_user {
        "within"
    } else {
        "OVER"
    };
    println!(
        "memory-gate: {world}: {} events, peak RSS {:.1} MB = {per_user:.1} KB per user, {verdict} the budget of {} KB",
        outcome.events,
        peak as f64 / 1e6,
        args.max_kb_per_user
    );
    if per_user <= args.max_kb_per_user {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_are_issue_20s_world_and_budget() {
        assert_eq!(args(&[]), Ok(Args::default()));
        assert_eq!(
            Args::default(),
            Args {
                users: 10_000,
                minutes: 10,
                seed: 1,
                max_kb_per_user: 50.0
            }
        );
    }

    #[test]
    fn flags_set_what_they_name_and_bad_ones_are_refused() {
        assert_eq!(
            args(&[
                "--users",
                "3000",
                "--minutes",
                "2",
                "--seed",
                "0",
                "--max-kb-per-user",
                "120.5"
            ]),
            Ok(Args {
                users: 3000,
                minutes: 2,
                seed: 0,
                max_kb_per_user: 120.5
            })
        );
        for bad in [
            &["--users"][..],
            &["--users", "0"],
            &["--users", "-3"],
            &["--minutes", "x"],
            &["--max-kb-per-user", "0"],
            &["--max-kb-per-user", "NaN"],
            &["--seed", "1.5"],
            &["--user", "10"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kb_per_user_counts_in_thousands_as_gauntlet_sim_does() {
        assert_eq!(kb_per_user(464_000_000, 10_000), 46.4);
        assert!(kb_per_user(500_000_001, 10_000) > 50.0);
    }
}
