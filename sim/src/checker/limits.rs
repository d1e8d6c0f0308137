//! Per-request bounds (`MSG-LIMITS`, docs/protocol.md section 9), read from the log: no run
//! starts from a `user_message` whose content is over `limits.max_content_bytes`, and no user
//! ever has more than `limits.max_active_runs_per_user` runs in progress (started, no
//! terminal event yet; runs go on across a restart).
//!
//! The world's envelope attacks send a message one byte over the content bound and bursts of
//! one message more than the run bound allows; this checker does not know of them and judges
//! every run of the log alike. It never looks at the replies (`BAD_MESSAGE`,
//! `LIMIT_EXCEEDED`): what it checks is that the bound held.

use std::collections::BTreeMap;

use gauntlet_core::{Event, RunId, UserId};

use super::{Checker, Failure, Obs};
use crate::id_map::UserMap;

const NAME: &str = "limits";

pub(crate) struct LimitsChecker {
    max_content: usize,
    max_active: usize,
    /// Runs in progress, with their owner.
    active: BTreeMap<RunId, UserId>,
    /// How many runs each user has in progress.
    per_user: UserMap<usize>,
}

impl LimitsChecker {
    pub(crate) fn new(config: &gauntlet_core::Config) -> Self {
        Self {
            max_content: config.limits.max_content_bytes,
            max_active: config.limits.max_active_runs_per_user,
            active: BTreeMap::new(),
            per_user: UserMap::default(),
        }
    }

    fn event(&mut self, event: &Event) -> Result<(), Failure> {
        match event {
            Event::RunStarted {
                run, owner, task, ..
            } => {
                if task.len() > self.max_content {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "{run} of {owner} started from a message of {} bytes, over the {} \
                             byte bound",
                            task.len(),
                            self.max_content
                        ),
                    ));
                }
                let n = self.per_user.entry(owner.clone()).or_default();
                *n += 1;
                if *n > self.max_active {
                    return Err(Failure::new(
                        NAME,
                        format!(
                            "{run} started while {owner} had {} runs in progress (bound {})",
                            *n - 1,
                            self.max_active
                        ),
                    ));
                }
                self.active.insert(*run, owner.clone());
            }
            Event::StreamAppended { entry, .. } if entry.kind().is_terminal() => {
                if let Some(run) = entry.run()
                    && let Some(owner) = self.active.remove(&run)
                    && let Some(n) = self.per_user.get_mut(&owner)
                {
                    *n = n.saturating_sub(1);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Checker for LimitsChecker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        if let Obs::Log(entries) = obs {
            for e in *entries {
                self.event(&e.event)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gauntlet_core::{Instant, Seq, StreamEntry, StreamKind, ThreadId};

    use super::*;

    fn owner() -> UserId {
        UserId::parse("u1").unwrap_or_else(|| unreachable!())
    }

    fn started(run: u64, task: &str) -> Event {
        Event::RunStarted {
            run: RunId::new(run),
            owner: owner(),
            thread: ThreadId::parse("u1-t1").unwrap_or_else(|| unreachable!()),
            task: task.into(),
        }
    }

    fn ended(run: u64) -> Event {
        Event::StreamAppended {
            user: owner(),
            seq: Seq::new(run),
            entry: Arc::new(StreamEntry::new(
                Instant::from_unix_secs(1),
                StreamKind::AgentCompleted,
                ThreadId::parse("u1-t1"),
                Some(RunId::new(run)),
                serde_json::from_str("{}").unwrap_or_else(|e| unreachable!("{e}")),
            )),
        }
    }

    #[test]
    fn at_most_eight_runs_in_progress_per_user() {
        let mut c = LimitsChecker::new(&gauntlet_core::Config::default());
        for run in 1..=8 {
            assert!(c.event(&started(run, "task")).is_ok());
        }
        assert!(c.event(&started(9, "task")).is_err());
        // One ends: room for one more.
        let mut c = LimitsChecker::new(&gauntlet_core::Config::default());
        for run in 1..=8 {
            assert!(c.event(&started(run, "task")).is_ok());
        }
        assert!(c.event(&ended(3)).is_ok());
        assert!(c.event(&started(9, "task")).is_ok());
        assert!(c.event(&started(10, "task")).is_err());
    }

    #[test]
    fn no_run_starts_from_content_over_the_bound() {
        let mut c = LimitsChecker::new(&gauntlet_core::Config::default());
        assert!(c.event(&started(1, &"x".repeat(4096))).is_ok());
        assert!(c.event(&started(2, &"x".repeat(4097))).is_err());
    }
}
