//! The gateway node: the one `Gateway` (absent while it is crashed), the output buffers its
//! calls reuse, its timer as the scheduler knows it, how much it has logged and how far the
//! revocation feed has reached it. It owns the gateway's process state and calls into it;
//! it never carries out what a call asks (the world does), and never sees the network, the
//! clients or the checkers.

use gauntlet_core::{Gateway, Input, Instant, Outputs};

/// How often the bounds checker samples the gateway's sizes (in gateway calls).
const STATS_EVERY: u64 = 2048;

pub(super) struct GatewayNode {
    /// The gateway, or `None` while it is crashed.
    pub(super) running: Option<Gateway>,
    /// The output buffers of the last gateway call, emptied and reused by the next one.
    spare_outputs: Outputs,
    /// Log entries the gateway has appended in this run.
    pub(super) log_len: usize,
    /// The armed timer: its deadline and generation (a timer event of another generation
    /// was superseded and is ignored).
    timer: Option<(Instant, u64)>,
    timer_gen: u64,
    calls: u64,
    /// How much of the auth service's revocation feed has been sent to the gateway.
    feed_cursor: usize,
}

impl GatewayNode {
    pub(super) fn new(gateway: Gateway) -> Self {
        GatewayNode {
            running: Some(gateway),
            spare_outputs: Outputs::default(),
            log_len: 0,
            timer: None,
            timer_gen: 0,
            calls: 0,
            feed_cursor: 0,
        }
    }

    /// One gateway call, counted, into the spare buffers; `None` while the gateway is down.
    pub(super) fn call(&mut self, now: Instant, input: Input) -> Option<Outputs> {
        let g = self.running.as_mut()?;
        self.calls += 1;
        let mut out = std::mem::take(&mut self.spare_outputs);
        g.handle_into(now, input, &mut out);
        Some(out)
    }

    /// Keeps a carried-out call's (emptied) buffers for the next call.
    pub(super) fn recycle(&mut self, out: Outputs) {
        self.spare_outputs = out;
    }

    /// The running gateway, when its sizes are due for a sample (every [`STATS_EVERY`] calls).
    pub(super) fn stats_due(&self) -> Option<&Gateway> {
        self.running
            .as_ref()
            .filter(|_| self.calls.is_multiple_of(STATS_EVERY))
    }

    /// Arms the timer for `at` unless one due no later is armed; returns the generation to
    /// schedule when it armed one.
    pub(super) fn arm_timer(&mut self, at: Instant) -> Option<u64> {
        if self.timer.is_some_and(|(t, _)| t <= at) {
            return None;
        }
        self.timer_gen += 1;
        self.timer = Some((at, self.timer_gen));
        Some(self.timer_gen)
    }

    /// Whether the timer event of `generation` is the armed timer (which it then disarms).
    pub(super) fn timer_fired(&mut self, generation: u64) -> bool {
        let armed = self.timer.is_some_and(|(_, g)| g == generation);
        if armed {
            self.timer = None;
        }
        armed
    }

    /// Forgets the armed timer (the gateway crashed, or the run is draining).
    pub(super) fn disarm_timer(&mut self) {
        self.timer = None;
    }

    /// The gateway crashes: it and its timer are gone. `false` when it was already down.
    pub(super) fn crash(&mut self) -> bool {
        let was_up = self.running.take().is_some();
        if was_up {
            self.timer = None;
        }
        was_up
    }

    /// Where the next feed delivery starts in the auth service's feed, which then reaches
    /// up to `upto`.
    pub(super) fn feed_to(&mut self, upto: usize) -> usize {
        let start = self.feed_cursor;
        self.feed_cursor = self.feed_cursor.max(upto);
        start
    }
}
