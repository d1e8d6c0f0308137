//! Per-connection soft state: what the gateway tracks about a live connection beyond its
//! durable record (send-queue depth, the protocol-error window, resume progress).
//!
//! None of this survives a restart, on purpose: after a crash every connection is gone and
//! clients reconnect and `resume` from the durable outbox.

use std::collections::VecDeque;
use std::time::Duration;

use crate::ids::Seq;
use crate::time::Instant;

/// A `resume` in progress: events with `cursor < seq < before` still to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Backfill {
    pub(crate) cursor: Seq,
    pub(crate) before: Seq,
    pub(crate) from: Seq,
    pub(crate) sent: u64,
}

/// Soft state of one open connection.
#[derive(Clone, Debug)]
pub(crate) struct LiveConn {
    /// Frames handed to the driver and not yet reported sent.
    pub(crate) queued: usize,
    /// Times of recent protocol errors, oldest first, at most budget + 1 long.
    errors: VecDeque<Instant>,
    /// The lowest seq already covered on this connection (live or backfilled).
    pub(crate) floor: Seq,
    pub(crate) backfill: Option<Backfill>,
}

impl LiveConn {
    pub(crate) fn new(live_from: Seq) -> Self {
        Self {
            queued: 0,
            errors: VecDeque::new(),
            floor: live_from,
            backfill: None,
        }
    }

    /// Records a protocol error; true when the budget is now exceeded.
    pub(crate) fn protocol_error(&mut self, now: Instant, budget: u32, window: Duration) -> bool {
        while self
            .errors
            .front()
            .is_some_and(|t| now.saturating_since(*t) >= window)
        {
            self.errors.pop_front();
        }
        self.errors.push_back(now);
        let limit = usize::try_from(budget).unwrap_or(usize::MAX);
        while self.errors.len() > limit.saturating_add(1) {
            self.errors.pop_front();
        }
        self.errors.len() > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_error_budget_is_per_window() {
        let mut c = LiveConn::new(Seq::new(1));
        let w = Duration::from_secs(60);
        let t0 = Instant::from_unix_secs(1000);
        for i in 0..10 {
            assert!(
                !c.protocol_error(t0.saturating_add(Duration::from_secs(i)), 10, w),
                "error {i}"
            );
        }
        // The 11th within 60 s exceeds the budget of 10.
        assert!(c.protocol_error(t0.saturating_add(Duration::from_secs(30)), 10, w));
        // Spread out, they never do.
        let mut d = LiveConn::new(Seq::new(1));
        for i in 0..100 {
            assert!(!d.protocol_error(t0.saturating_add(Duration::from_secs(7 * i)), 10, w));
        }
    }

    #[test]
    fn protocol_error_leaves_the_window_at_exactly_its_age() {
        let mut c = LiveConn::new(Seq::new(1));
        let w = Duration::from_secs(60);
        let t0 = Instant::from_unix_secs(1000);
        for i in 0..3 {
            assert!(!c.protocol_error(t0.saturating_add(Duration::from_secs(i)), 3, w));
        }
        // At t0 + 60 s the first error is exactly a window old: it no longer counts.
        assert!(!c.protocol_error(t0.saturating_add(w), 3, w));
        assert_eq!(c.errors.len(), 3);
        // One second short of its window, the second one still does.
        assert!(c.protocol_error(t0.saturating_add(Duration::from_secs(60)), 3, w));
    }

    #[test]
    fn protocol_error_past_budget_keeps_only_budget_plus_one_timestamps() {
        let mut c = LiveConn::new(Seq::new(1));
        let w = Duration::from_secs(60);
        let t0 = Instant::from_unix_secs(1000);
        let verdicts: Vec<bool> = (0..6).map(|_| c.protocol_error(t0, 2, w)).collect();
        assert_eq!(verdicts, [false, false, true, true, true, true]);
        assert_eq!(
            c.errors.len(),
            3,
            "the record stays bounded past the budget"
        );
    }
}
