//! The gateway's timers: a closed set of kinds ([`TimerKind`]) in one deadline table, fired
//! by `Input::Tick`: a session's token expiry (close 1008), an agent run's next step, and
//! the housekeeping sweep (tickets, idle rate buckets, revocations past their `exp`).
//!
//! It must never read a clock: every deadline is computed from the `now` handed in.

use std::sync::Arc;
use std::time::Duration;

use crate::ids::{ConnId, RunId};
use crate::log::{CloseReason, Event};
use crate::outbox::StreamEntry;
use crate::time::Instant;

use super::{Ctx, Gateway};

/// How often housekeeping (ticket expiry, idle buckets, revocation pruning) runs while
/// there is anything to sweep.
pub(super) const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TimerKind {
    Expiry(ConnId),
    Run(RunId),
    Sweep,
}

impl Gateway {
    pub(super) fn rebuild_timers(&mut self) {
        self.timers.clear();
        let leeway = self.leeway();
        for (conn, s) in &self.state.sessions {
            self.timers.set(
                TimerKind::Expiry(*conn),
                s.identity.exp.saturating_add(leeway),
            );
        }
        for (run, r) in &self.state.runs {
            self.timers.set(TimerKind::Run(*run), r.next_at);
        }
        if !self.state.tickets.is_empty() {
            self.timers.set(
                TimerKind::Sweep,
                self.state.last_at.saturating_add(SWEEP_INTERVAL),
            );
        }
    }

    pub(super) fn arm_sweep(&mut self, now: Instant) {
        if self.timers.get(&TimerKind::Sweep).is_none() {
            self.timers
                .set(TimerKind::Sweep, now.saturating_add(SWEEP_INTERVAL));
        }
    }

    pub(super) fn on_tick(&mut self, ctx: &mut Ctx) {
        while let Some(kind) = self.timers.pop_due(ctx.now) {
            match kind {
                TimerKind::Expiry(conn) => self.close(ctx, conn, CloseReason::TokenExpired),
                TimerKind::Run(run) => self.step_run(ctx, run),
                TimerKind::Sweep => self.sweep(ctx),
            }
        }
    }

    pub(super) fn step_run(&mut self, ctx: &mut Ctx, run: RunId) {
        let Some(r) = self.state.runs.get(&run) else {
            return;
        };
        let Some(step) = r.plan.get(r.next_step) else {
            return;
        };
        let entry = Arc::new(StreamEntry::step(ctx.now, &r.info, step));
        let owner = r.owner.clone();
        self.append_entry(ctx, owner, entry);
        if let Some(r) = self.state.runs.get(&run) {
            self.timers.set(TimerKind::Run(run), r.next_at);
        }
    }

    /// Starts the run timer after `RunStarted` + its first step.
    pub(crate) fn arm_run(&mut self, run: RunId) {
        if let Some(r) = self.state.runs.get(&run) {
            self.timers.set(TimerKind::Run(run), r.next_at);
        }
    }

    pub(crate) fn stop_run_timer(&mut self, run: RunId) {
        self.timers.stop(&TimerKind::Run(run));
    }

    pub(super) fn sweep(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let expired: Vec<String> = self
            .state
            .tickets
            .iter()
            .filter(|(_, t)| t.expires <= now)
            .map(|(d, _)| d.clone())
            .collect();
        for digest in expired {
            self.emit(ctx, Event::TicketConsumed { digest });
        }
        self.ip_buckets.drop_idle(now);
        let by_user = &self.state.by_user;
        self.user_buckets
            .retain(|u, b| by_user.contains_key(u) || !b.is_full(now));
        self.validator.prune(now);
        if !self.state.tickets.is_empty()
            || !self.ip_buckets.is_empty()
            || self.user_buckets.len() > by_user.len()
        {
            self.timers
                .set(TimerKind::Sweep, now.saturating_add(SWEEP_INTERVAL));
        }
    }

    pub(crate) fn rearm_expiry(&mut self, conn: ConnId, exp: Instant) {
        let at = exp.saturating_add(self.leeway());
        self.timers.set(TimerKind::Expiry(conn), at);
    }
}

pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::gateway::contract::Outputs;
    use crate::ids::{RunId, ThreadId, UserId};
    use std::sync::Arc;

    use crate::agent::AgentRun;
    use crate::state::RunRecord;
    use crate::time::Instant;
    use crate::token::KeyRing;

    use super::{Ctx, Gateway};

    fn gateway() -> Gateway {
        Gateway::new(Config::default(), KeyRing::new()).expect("default config is valid")
    }

    /// A run of alice's with no steps planned, its next step due at `next_at`.
    fn empty_run(next_at: Instant) -> RunRecord {
        RunRecord {
            owner: UserId::parse("alice").expect("id"),
            info: Arc::new(AgentRun::new(
                RunId::new(1),
                ThreadId::parse("t1").expect("id"),
                "task",
            )),
            plan: Vec::new(),
            next_step: 0,
            next_at,
        }
    }

    /// The earliest armed timer is what a driver sleeps until: the server reads it after
    /// every input.
    #[test]
    fn next_deadline_is_the_earliest_armed_timer() {
        let mut gw = gateway();
        let run = RunId::new(1);
        let step_at = Instant::from_unix_secs(50);
        gw.state.runs.insert(run, empty_run(step_at));
        gw.arm_run(run);
        assert_eq!(gw.next_deadline(), Some(step_at));
        let exp = Instant::from_unix_secs(10);
        gw.rearm_expiry(crate::ids::ConnId::new(7), exp);
        assert_eq!(
            gw.next_deadline(),
            Some(exp.saturating_add(gw.leeway())),
            "the token expiry is due first"
        );
        gw.stop_run_timer(run);
        gw.rearm_expiry(crate::ids::ConnId::new(7), Instant::from_unix_secs(100));
        assert_eq!(
            gw.next_deadline(),
            Some(Instant::from_unix_secs(100).saturating_add(gw.leeway())),
            "a re-armed expiry replaces the old one; the stopped run is gone"
        );
    }

    #[test]
    fn step_run_for_a_run_that_no_longer_exists_does_nothing() {
        let mut gw = gateway();
        let before = gw.state_hash();
        let mut out = Outputs::default();
        let mut ctx = Ctx {
            now: Instant::from_unix_secs(1),
            out: &mut out,
        };
        gw.step_run(&mut ctx, RunId::new(1));
        assert!(out.events.is_empty() && out.sends.is_empty());
        assert_eq!(gw.state_hash(), before);
        assert_eq!(gw.next_deadline(), None, "no timer armed");
    }

    #[test]
    fn step_run_past_the_last_planned_step_does_nothing() {
        let mut gw = gateway();
        let run = RunId::new(1);
        gw.state.runs.insert(run, empty_run(Instant::EPOCH));
        let before = gw.state_hash();
        let mut out = Outputs::default();
        let mut ctx = Ctx {
            now: Instant::from_unix_secs(1),
            out: &mut out,
        };
        gw.step_run(&mut ctx, run);
        assert!(out.events.is_empty() && out.sends.is_empty());
        assert_eq!(gw.state_hash(), before);
        assert_eq!(gw.next_deadline(), None, "the run's timer is not re-armed");
    }
}
