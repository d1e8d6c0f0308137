//! What a world hands over as it runs, to be checked and folded: the invariant checkers'
//! observations and the gateway's log, on the world's thread or on a helper thread.
//!
//! The checkers judge what the world saw, and the fold of the log (a [`Checkpoint`]) is what
//! a crashed gateway restarts from and what the log must replay to at the end. Neither
//! feeds back into a world that passes, so when a core is spare ([`Offload::Background`])
//! both run on a helper thread: the world hands over observations and log entries in
//! batches, in the order it saw them, and waits only for a restart and at the end. Each
//! move took a tenth or more off a 10 000-user run: the work leaves the world's thread, and
//! the checkers' tables leave its caches.
//!
//! A violation found on the helper reaches the world some steps late, so it only stops the
//! run ([`Witness::failed`]); the report comes from running the seed again with
//! [`Offload::Inline`], where the first violation stops the world at its own step (see
//! `simulate`). A run that passes is the same in both modes, step for step. This module must
//! never let the world read a check or a fold that is behind what it handed over.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use gauntlet_core::token::KeyRing;
use gauntlet_core::{Checkpoint, ConnId, Gateway, LogEntry, UserId};

use crate::checker::{Checkers, EndState, Failure, Obs, Seen};

/// Observations handed over at once (at most).
const BATCH: usize = 1024;
/// Log entries handed over at once (at most).
const BATCH_ENTRIES: usize = 4096;
/// Batches handed to the helper that it has not taken yet, at most: beyond this the world
/// waits, so a helper that falls behind holds a bounded amount.
const BACKLOG: usize = 4;

/// Where a world's checks and the fold of its log run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offload {
    /// On the world's thread, as it goes (one core does everything; a violation stops the
    /// world at the step it happened).
    Inline,
    /// On a helper thread, overlapping the world's steps.
    Background,
}

impl Offload {
    /// [`Offload::Background`] when the machine has a core to spare beside `jobs` worlds
    /// running at once, else [`Offload::Inline`] (a helper would only compete with them).
    pub fn for_jobs(jobs: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if jobs < cores {
            Offload::Background
        } else {
            Offload::Inline
        }
    }
}

/// A checkpoint and the first entry it refused: after that entry nothing more folds, as a
/// replay stops at its first error.
pub(crate) struct Fold {
    checkpoint: Checkpoint,
    error: Option<String>,
}

impl Fold {
    fn fold(&mut self, entries: &[LogEntry]) {
        if self.error.is_some() {
            return;
        }
        for e in entries {
            if let Err(err) = self.checkpoint.fold(e) {
                self.error = Some(err.to_string());
                return;
            }
        }
    }

    /// The checkpoint, or why the log does not replay.
    pub(crate) fn checkpoint(&self) -> Result<&Checkpoint, &str> {
        match &self.error {
            None => Ok(&self.checkpoint),
            Some(e) => Err(e),
        }
    }

    fn restore(&self, ring: KeyRing) -> Result<Gateway, String> {
        let checkpoint = self.checkpoint().map_err(str::to_string)?;
        checkpoint.restore(ring).map_err(|e| e.to_string())
    }
}

/// Observations and the log entries they refer to, in the order the world saw them.
#[derive(Default)]
struct Batch {
    seen: Vec<Seen>,
    entries: Vec<LogEntry>,
}

impl Batch {
    fn is_full(&self) -> bool {
        self.seen.len() >= BATCH || self.entries.len() >= BATCH_ENTRIES
    }

    fn clear(&mut self) {
        self.seen.clear();
        self.entries.clear();
    }
}

/// The checkers and the fold, on whichever thread they run.
struct Checks {
    checkers: Checkers,
    fold: Fold,
    /// The first violation (after it nothing more is checked, as the world stops there).
    failure: Option<Failure>,
}

impl Checks {
    /// Checks a batch in order, then folds its entries.
    fn take(&mut self, batch: &Batch) {
        let mut entries = batch.entries.as_slice();
        for seen in &batch.seen {
            if self.failure.is_some() {
                break;
            }
            if let Err(f) = seen.show(&mut self.checkers, &mut entries) {
                self.failure = Some(f);
            }
        }
        self.fold.fold(&batch.entries);
    }

    fn finish(&mut self, open: &BTreeMap<ConnId, UserId>, quiescent: bool) -> Result<(), Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        self.checkers.finish(&EndState { open, quiescent })
    }
}

enum Job {
    Batch(Batch),
    Restore(KeyRing, SyncSender<Result<Gateway, String>>),
    Finish {
        open: BTreeMap<ConnId, UserId>,
        quiescent: bool,
        reply: SyncSender<Result<(), Failure>>,
    },
}

enum Mode {
    /// Checked and folded as handed over. Boxed: a gateway is large, and the other variant
    /// is a few handles.
    Inline(Box<Checks>),
    Background {
        batch: Batch,
        jobs: SyncSender<Job>,
        /// Batches the helper has taken, emptied for reuse: a fresh batch would be fresh
        /// memory for the kernel to fault in.
        empties: Receiver<Batch>,
        failed: Arc<AtomicBool>,
        helper: JoinHandle<Option<Checks>>,
    },
}

/// What a world hands over, checked and folded wherever [`Offload`] says.
pub(crate) struct Witness {
    mode: Option<Mode>,
}

/// What the world is told when the helper thread is gone (it only ends by panicking).
const HELPER_LOST: &str = "the thread checking and folding the run stopped";

impl Witness {
    /// A witness with these checkers, folding from `checkpoint` (the fold of the empty
    /// log). When a helper thread cannot be started, everything runs inline: slower, never
    /// different.
    pub(crate) fn new(checkers: Checkers, checkpoint: Checkpoint, offload: Offload) -> Self {
        let checks = Checks {
            checkers,
            fold: Fold {
                checkpoint,
                error: None,
            },
            failure: None,
        };
        let mode = match offload {
            Offload::Inline => inline(checks),
            Offload::Background => spawn(checks),
        };
        Self { mode: Some(mode) }
    }

    /// Shows `obs` to the checkers: inline, what they say; in the background, `Ok` (a
    /// violation shows up in [`Witness::failed`]).
    pub(crate) fn observe(&mut self, obs: &Obs<'_>) -> Result<(), Failure> {
        match &mut self.mode {
            Some(Mode::Inline(checks)) => checks.checkers.observe(obs),
            Some(Mode::Background { batch, .. }) => {
                let seen = Seen::of(obs, &mut batch.entries);
                batch.seen.push(seen);
                self.hand_over_if_full();
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Takes the log entries of one gateway call (leaving `entries` empty): shown to the
    /// checkers when `check` (a world that already failed only folds), then folded.
    pub(crate) fn log(&mut self, entries: &mut Vec<LogEntry>, check: bool) -> Result<(), Failure> {
        let checked = match &mut self.mode {
            Some(Mode::Inline(checks)) => {
                let checked = if check {
                    checks.checkers.observe(&Obs::Log(entries))
                } else {
                    Ok(())
                };
                checks.fold.fold(entries);
                entries.clear();
                checked
            }
            Some(Mode::Background { batch, .. }) => {
                // The helper stops checking at its first violation, so `check` needs no
                // passing on: the world stops soon after either.
                batch.seen.push(Seen::Log(entries.len()));
                batch.entries.append(entries);
                Ok(())
            }
            None => {
                entries.clear();
                Ok(())
            }
        };
        self.hand_over_if_full();
        checked
    }

    /// Whether the helper has found a violation (never, inline: there each call says so).
    pub(crate) fn failed(&self) -> bool {
        match &self.mode {
            Some(Mode::Background { failed, .. }) => failed.load(Ordering::Relaxed),
            _ => false,
        }
    }

    /// A gateway rebuilt from the log handed over so far, validating with `ring`, or why
    /// it cannot be.
    pub(crate) fn restore(&mut self, ring: KeyRing) -> Result<Gateway, String> {
        self.hand_over();
        match &mut self.mode {
            Some(Mode::Inline(checks)) => checks.fold.restore(ring),
            Some(Mode::Background { jobs, .. }) => {
                let (reply, answer) = sync_channel(1);
                jobs.send(Job::Restore(ring, reply))
                    .map_err(|_| HELPER_LOST.to_string())?;
                answer.recv().map_err(|_| HELPER_LOST.to_string())?
            }
            None => Err(HELPER_LOST.to_string()),
        }
    }

    /// The end-of-run checks, with the connections still open (or the first violation the
    /// helper found).
    pub(crate) fn finish(
        &mut self,
        open: BTreeMap<ConnId, UserId>,
        quiescent: bool,
    ) -> Result<(), Failure> {
        self.hand_over();
        let lost = || Failure::new("offload", HELPER_LOST);
        match &mut self.mode {
            Some(Mode::Inline(checks)) => checks.finish(&open, quiescent),
            Some(Mode::Background { jobs, .. }) => {
                let (reply, answer) = sync_channel(1);
                jobs.send(Job::Finish {
                    open,
                    quiescent,
                    reply,
                })
                .map_err(|_| lost())?;
                answer.recv().map_err(|_| lost())?
            }
            None => Err(lost()),
        }
    }

    /// The coverage marks of everything handed over, by rule id. In the background this
    /// waits for the helper to take it all and end (its checkers come back to this thread,
    /// as for [`Witness::fold`]), so the counts never lag what the world saw.
    pub(crate) fn marks(&mut self) -> BTreeMap<&'static str, u64> {
        // A helper that panicked took its marks with it: none is the honest count.
        let _ = self.fold();
        match &self.mode {
            Some(Mode::Inline(checks)) => checks.checkers.marks().counts(),
            _ => BTreeMap::new(),
        }
    }

    /// Waits for everything handed over to be folded and returns the fold, which stays
    /// here: later calls run inline.
    pub(crate) fn fold(&mut self) -> Result<&Fold, &'static str> {
        self.hand_over();
        self.mode = match self.mode.take() {
            Some(Mode::Background { jobs, helper, .. }) => {
                drop(jobs);
                helper.join().ok().flatten().map(inline)
            }
            other => other,
        };
        match &self.mode {
            Some(Mode::Inline(checks)) => Ok(&checks.fold),
            _ => Err(HELPER_LOST),
        }
    }

    fn hand_over_if_full(&mut self) {
        if let Some(Mode::Background { batch, .. }) = &self.mode
            && batch.is_full()
        {
            self.hand_over();
        }
    }

    /// Sends the batch being filled to the helper (in the background; inline, nothing waits).
    fn hand_over(&mut self) {
        if let Some(Mode::Background {
            batch,
            jobs,
            empties,
            ..
        }) = &mut self.mode
            && !(batch.seen.is_empty() && batch.entries.is_empty())
        {
            let empty = empties.try_recv().unwrap_or_default();
            let full = std::mem::replace(batch, empty);
            // A send fails only when the helper is gone; the next query reports it.
            let _ = jobs.send(Job::Batch(full));
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        // A helper ends when its queue closes; waiting for it leaves no thread behind.
        let _ = self.fold();
    }
}

fn inline(checks: Checks) -> Mode {
    Mode::Inline(Box::new(checks))
}

fn spawn(checks: Checks) -> Mode {
    let (jobs, queue) = sync_channel(BACKLOG);
    // Room for every batch that can exist at once, so the helper never waits to give one back.
    let (recycle, empties) = sync_channel(BACKLOG + 2);
    let failed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&failed);
    // The checks go over only once the helper runs, so a failed spawn (or a helper already
    // gone) gives them back and everything runs inline.
    let (start, started) = sync_channel::<Checks>(1);
    // The one thread a world starts: it computes a pure function of what it is handed, and
    // the world reads it only after waiting for everything handed over.
    #[allow(clippy::disallowed_methods)]
    let spawned = std::thread::Builder::new()
        .name("gauntlet-witness".into())
        .spawn(move || {
            started
                .recv()
                .ok()
                .map(|checks| helper(checks, &queue, &recycle, &flag))
        });
    let Ok(helper) = spawned else {
        return inline(checks);
    };
    match start.send(checks) {
        Ok(()) => Mode::Background {
            batch: Batch::default(),
            jobs,
            empties,
            failed,
            helper,
        },
        Err(back) => inline(back.0),
    }
}

fn helper(
    mut checks: Checks,
    queue: &Receiver<Job>,
    recycle: &SyncSender<Batch>,
    failed: &AtomicBool,
) -> Checks {
    for job in queue {
        match job {
            Job::Batch(mut batch) => {
                checks.take(&batch);
                if checks.failure.is_some() {
                    failed.store(true, Ordering::Relaxed);
                }
                batch.clear();
                // A full pool (or a world gone) just drops the batch.
                let _ = recycle.try_send(batch);
            }
            // The world is waiting on the other end of each reply; if it is gone, nobody asks.
            Job::Restore(ring, reply) => {
                let _ = reply.send(checks.fold.restore(ring));
            }
            Job::Finish {
                open,
                quiescent,
                reply,
            } => {
                let _ = reply.send(checks.finish(&open, quiescent));
            }
        }
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gauntlet_core::{
        Config, Event, Instant, LogSeq, Plants, RunId, Seq, StreamEntry, StreamKind,
    };

    use super::*;

    fn restarted(seq: u64) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(seq),
            at: Instant::from_unix_secs(seq),
            event: Event::Restarted,
        }
    }

    fn witness(offload: Offload) -> Witness {
        let config = Config::default();
        let checkpoint = Checkpoint::new(config.clone(), Plants::NONE).unwrap();
        Witness::new(Checkers::new(&config), checkpoint, offload)
    }

    /// Hands over `seqs` in batches of two, restores after each and at the end, and returns
    /// the restored gateways' hashes and the final fold's hash or error.
    fn run(
        offload: Offload,
        seqs: &[u64],
    ) -> (Vec<Result<String, String>>, Result<String, String>) {
        let mut w = witness(offload);
        let mut restored = Vec::new();
        for pair in seqs.chunks(2) {
            let mut batch: Vec<LogEntry> = pair.iter().copied().map(restarted).collect();
            w.log(&mut batch, true).unwrap();
            assert!(batch.is_empty(), "the witness takes every entry");
            restored.push(w.restore(KeyRing::new()).map(|g| g.state_hash()));
        }
        let last = match w.fold() {
            Ok(fold) => fold
                .checkpoint()
                .map(Checkpoint::state_hash)
                .map_err(str::to_string),
            Err(e) => Err(e.to_string()),
        };
        (restored, last)
    }

    #[test]
    fn a_helper_thread_folds_to_what_the_world_thread_folds() {
        let seqs: Vec<u64> = (1..=9).collect();
        let inline = run(Offload::Inline, &seqs);
        assert_eq!(inline, run(Offload::Background, &seqs));
        let mut hashes: Vec<String> = inline.0.into_iter().map(Result::unwrap).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), 5, "each restore sees the entries before it");
        let all = Gateway::replay(
            Config::default(),
            KeyRing::new(),
            Plants::NONE,
            seqs.iter().copied().map(restarted),
        )
        .unwrap();
        assert_eq!(inline.1, Ok(all.state_hash()));
    }

    #[test]
    fn after_a_refused_entry_nothing_folds_and_restores_say_why() {
        // Entry 4 is missing: 5 is refused, and so is everything after it.
        let seqs = [1, 2, 3, 5, 6, 7];
        let inline = run(Offload::Inline, &seqs);
        assert_eq!(inline, run(Offload::Background, &seqs));
        assert!(inline.0[0].is_ok());
        for r in &inline.0[1..] {
            let e = r.as_ref().unwrap_err();
            assert!(e.contains("expected log-4"), "{e}");
        }
        assert_eq!(inline.1, Err(inline.0[2].clone().unwrap_err()));
    }

    #[test]
    fn a_finished_witness_goes_on_inline() {
        let mut w = witness(Offload::Background);
        w.log(&mut vec![restarted(1)], true).unwrap();
        let folded = |w: &mut Witness| w.fold().unwrap().checkpoint().unwrap().last_log_seq();
        assert_eq!(folded(&mut w), LogSeq::new(1));
        w.log(&mut vec![restarted(2)], true).unwrap();
        assert!(matches!(w.mode, Some(Mode::Inline(_))));
        assert_eq!(folded(&mut w), LogSeq::new(2));
    }

    /// A run's event with no `agent_started` before it: a five-events violation.
    fn orphan_tool_event(seq: u64) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(seq),
            at: Instant::from_unix_secs(seq),
            event: Event::StreamAppended {
                user: UserId::parse("u1").unwrap(),
                seq: Seq::new(1),
                entry: Arc::new(StreamEntry::new(
                    Instant::from_unix_secs(seq),
                    StreamKind::ToolExecuting,
                    None,
                    Some(RunId::new(7)),
                    serde_json::from_str::<gauntlet_core::Payload>(r#"{"execution_id":"e"}"#)
                        .unwrap(),
                )),
            },
        }
    }

    #[test]
    fn a_violation_stops_the_world_inline_and_shows_up_late_from_the_helper() {
        let mut inline = witness(Offload::Inline);
        let err = inline
            .log(&mut vec![orphan_tool_event(1)], true)
            .unwrap_err();
        assert_eq!(err.invariant, "five_events");
        assert!(!inline.failed(), "inline, the call itself says so");

        let mut background = witness(Offload::Background);
        assert_eq!(
            background.log(&mut vec![orphan_tool_event(1)], true),
            Ok(())
        );
        // The end-of-run checks wait for the helper and report its first violation.
        assert_eq!(background.finish(BTreeMap::new(), true), Err(err));
        assert!(background.failed());
    }

    #[test]
    fn a_world_that_already_failed_only_folds() {
        let mut w = witness(Offload::Inline);
        assert_eq!(w.log(&mut vec![orphan_tool_event(1)], false), Ok(()));
        // Unchecked, but folded: the fold refuses it on its own.
        let folded = w.fold().unwrap().checkpoint().map(|_| ());
        assert!(
            folded.is_err_and(|e| e.contains("does not follow the plan")),
            "{folded:?}"
        );
    }
}
