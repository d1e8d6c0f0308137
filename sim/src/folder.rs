//! Folding the gateway's log into a [`Checkpoint`], on the world's thread or on a helper
//! thread of its own.
//!
//! The world keeps the fold of its log so far for two things: a crashed gateway restarts
//! from it, and at the end of a run the fold must describe the live gateway (the replay
//! invariant). Folding costs about as much as the gateway's own bookkeeping, so when a core
//! is spare ([`Folding::Background`]) it runs on a helper thread: the world hands over each
//! batch of entries and waits only when it needs the fold, at a restart and at the end.
//!
//! The fold is a pure function of the entries handed over, in the order handed over, and a
//! query waits until every batch handed over before it is folded. So where the fold runs
//! never changes what a run computes, only how long it takes; this module must never let the
//! world read a fold that is behind the log it was given.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use gauntlet_core::token::KeyRing;
use gauntlet_core::{Checkpoint, Gateway, LogEntry};

/// Batches handed to the helper that it has not folded yet, at most: beyond this the world
/// waits, so a helper that falls behind holds a bounded number of entries.
const BACKLOG: usize = 4;

/// Where the fold of a world's log runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Folding {
    /// On the world's thread, between steps (one core does everything).
    Inline,
    /// On a helper thread, overlapping the world's steps.
    Background,
}

impl Folding {
    /// [`Folding::Background`] when the machine has a core to spare beside `jobs` worlds
    /// running at once, else [`Folding::Inline`] (a helper would only compete with them).
    pub fn for_jobs(jobs: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if jobs < cores {
            Folding::Background
        } else {
            Folding::Inline
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

enum Job {
    Fold(Vec<LogEntry>),
    Restore(KeyRing, SyncSender<Result<Gateway, String>>),
}

enum Mode {
    /// Boxed: a gateway is large, and the other variant is three handles.
    Inline(Box<Fold>),
    Background {
        jobs: SyncSender<Job>,
        /// Batches the helper has folded, emptied for reuse: a fresh batch would be fresh
        /// memory for the kernel to fault in.
        empties: Receiver<Vec<LogEntry>>,
        helper: JoinHandle<Option<Fold>>,
    },
}

/// The fold of a world's log, wherever it runs.
pub(crate) struct Folder {
    mode: Option<Mode>,
}

/// What the world is told when the helper thread is gone (it only ends by panicking).
const HELPER_LOST: &str = "the thread folding the log stopped";

impl Folder {
    /// A folder that starts from `checkpoint` (the fold of the empty log). When a helper
    /// thread cannot be started, the fold runs inline: slower, never different.
    pub(crate) fn new(checkpoint: Checkpoint, folding: Folding) -> Self {
        let fold = Fold {
            checkpoint,
            error: None,
        };
        let mode = match folding {
            Folding::Inline => Mode::Inline(Box::new(fold)),
            Folding::Background => spawn(fold),
        };
        Self { mode: Some(mode) }
    }

    /// Folds `entries` (in order, after every batch before them) and leaves `entries` empty.
    pub(crate) fn fold(&mut self, entries: &mut Vec<LogEntry>) {
        match &mut self.mode {
            Some(Mode::Inline(fold)) => {
                fold.fold(entries);
                entries.clear();
            }
            Some(Mode::Background { jobs, empties, .. }) => {
                let empty = empties
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(entries.capacity()));
                let batch = std::mem::replace(entries, empty);
                // A send fails only when the helper is gone; the next query reports it.
                let _ = jobs.send(Job::Fold(batch));
            }
            None => entries.clear(),
        }
    }

    /// A gateway rebuilt from everything folded so far, validating with `ring`, or why it
    /// cannot be.
    pub(crate) fn restore(&mut self, ring: KeyRing) -> Result<Gateway, String> {
        match &self.mode {
            Some(Mode::Inline(fold)) => fold.restore(ring),
            Some(Mode::Background { jobs, .. }) => {
                let (reply, answer) = sync_channel(1);
                jobs.send(Job::Restore(ring, reply))
                    .map_err(|_| HELPER_LOST.to_string())?;
                answer.recv().map_err(|_| HELPER_LOST.to_string())?
            }
            None => Err(HELPER_LOST.to_string()),
        }
    }

    /// Waits for every batch handed over to be folded and returns the fold, which stays
    /// here: later calls fold inline.
    pub(crate) fn finish(&mut self) -> Result<&Fold, &'static str> {
        self.mode = match self.mode.take() {
            Some(Mode::Background { jobs, helper, .. }) => {
                drop(jobs);
                helper
                    .join()
                    .ok()
                    .flatten()
                    .map(|f| Mode::Inline(Box::new(f)))
            }
            inline => inline,
        };
        match &self.mode {
            Some(Mode::Inline(fold)) => Ok(fold),
            _ => Err(HELPER_LOST),
        }
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        // A helper ends when its queue closes; waiting for it leaves no thread behind.
        let _ = self.finish();
    }
}

fn spawn(fold: Fold) -> Mode {
    let (jobs, queue) = sync_channel(BACKLOG);
    // Room for every batch that can exist at once, so the helper never waits to give one back.
    let (recycle, empties) = sync_channel(BACKLOG + 2);
    // The fold goes over only once the helper runs, so a failed spawn (or a helper already
    // gone) gives it back and the folder runs inline.
    let (start, started) = sync_channel::<Fold>(1);
    // The one thread a world starts: it computes a pure function of the entries it is handed,
    // and the world reads it only after waiting for every entry handed over.
    #[allow(clippy::disallowed_methods)]
    let spawned = std::thread::Builder::new()
        .name("gauntlet-fold".into())
        .spawn(move || {
            started
                .recv()
                .ok()
                .map(|fold| helper(fold, &queue, &recycle))
        });
    let Ok(helper) = spawned else {
        return Mode::Inline(Box::new(fold));
    };
    match start.send(fold) {
        Ok(()) => Mode::Background {
            jobs,
            empties,
            helper,
        },
        Err(back) => Mode::Inline(Box::new(back.0)),
    }
}

fn helper(mut fold: Fold, queue: &Receiver<Job>, recycle: &SyncSender<Vec<LogEntry>>) -> Fold {
    for job in queue {
        match job {
            Job::Fold(mut batch) => {
                fold.fold(&batch);
                batch.clear();
                // A full pool (or a world gone) just drops the batch.
                let _ = recycle.try_send(batch);
            }
            Job::Restore(ring, reply) => {
                // The world is waiting on the other end; if it is gone, nobody asks.
                let _ = reply.send(fold.restore(ring));
            }
        }
    }
    fold
}

#[cfg(test)]
mod tests {
    use gauntlet_core::{Config, Event, Instant, LogSeq, Plants};

    use super::*;

    fn entry(seq: u64) -> LogEntry {
        LogEntry {
            seq: LogSeq::new(seq),
            at: Instant::from_unix_secs(seq),
            event: Event::Restarted,
        }
    }

    fn folder(folding: Folding) -> Folder {
        let checkpoint = Checkpoint::new(Config::default(), Plants::NONE).unwrap();
        Folder::new(checkpoint, folding)
    }

    /// Hands over `seqs` in batches of two, restores midway and at the end, and returns the
    /// restored gateways' hashes and the final fold's hash or error.
    fn run(
        folding: Folding,
        seqs: &[u64],
    ) -> (Vec<Result<String, String>>, Result<String, String>) {
        let mut f = folder(folding);
        let mut restored = Vec::new();
        for pair in seqs.chunks(2) {
            let mut batch: Vec<LogEntry> = pair.iter().copied().map(entry).collect();
            f.fold(&mut batch);
            assert!(batch.is_empty(), "the folder takes the whole batch");
            restored.push(f.restore(KeyRing::new()).map(|g| g.state_hash()));
        }
        let last = match f.finish() {
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
        let inline = run(Folding::Inline, &seqs);
        let background = run(Folding::Background, &seqs);
        assert_eq!(inline, background);
        let mut hashes: Vec<String> = inline.0.into_iter().map(Result::unwrap).collect();
        hashes.dedup();
        assert_eq!(hashes.len(), 5, "each restore sees the batches before it");
        let all = Gateway::replay(
            Config::default(),
            KeyRing::new(),
            Plants::NONE,
            seqs.iter().copied().map(entry),
        )
        .unwrap();
        assert_eq!(inline.1, Ok(all.state_hash()));
    }

    #[test]
    fn after_a_refused_entry_nothing_folds_and_restores_say_why() {
        // Entry 4 is missing: 5 is refused, and so is everything after it.
        let seqs = [1, 2, 3, 5, 6, 7];
        let inline = run(Folding::Inline, &seqs);
        assert_eq!(inline, run(Folding::Background, &seqs));
        assert!(inline.0[0].is_ok());
        for r in &inline.0[1..] {
            let e = r.as_ref().unwrap_err();
            assert!(e.contains("expected log-4"), "{e}");
        }
        assert_eq!(inline.1, Err(inline.0[2].clone().unwrap_err()));
    }

    #[test]
    fn a_finished_folder_goes_on_folding_inline() {
        let mut f = folder(Folding::Background);
        f.fold(&mut vec![entry(1)]);
        assert_eq!(
            f.finish().unwrap().checkpoint().unwrap().last_log_seq(),
            LogSeq::new(1)
        );
        f.fold(&mut vec![entry(2)]);
        assert!(matches!(f.mode, Some(Mode::Inline(_))));
        assert_eq!(
            f.finish().unwrap().checkpoint().unwrap().last_log_seq(),
            LogSeq::new(2)
        );
    }
}
