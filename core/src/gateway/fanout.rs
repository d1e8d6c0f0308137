//! Fan-out: a user's stream (append, seq, retention through the outbox), direct replies,
//! per-connection flow control (the bounded send queue and its 1013 close), and `resume`
//! backfill paced by the driver's `Input::Sent` reports.
//!
//! It must never send one user's event to another user's connection, and never skip or
//! repeat a `seq` on a connection.

use std::sync::Arc;

use crate::config::Limits;
use crate::error::ErrorCode;
use crate::ids::{ConnId, Seq, UserId};
use crate::log::{CloseReason, Event};
use crate::outbox::StreamEntry;
use crate::plant::planted;
use crate::protocol::{ServerFrame, WireFrame};
use crate::state::entry_of;

use super::{Ctx, Gateway};

impl Gateway {
    /// Sends an error frame and charges the protocol-error budget when the code counts.
    pub(crate) fn reply_error(&mut self, ctx: &mut Ctx, conn: ConnId, frame: ServerFrame) {
        let counts =
            matches!(&frame, ServerFrame::Error { code, .. } if code.counts_as_protocol_error());
        self.send_direct(ctx, conn, &frame);
        if !counts {
            return;
        }
        let limits = &self.config.limits;
        let (budget, window) = (
            limits.protocol_error_budget,
            Limits::ms(limits.protocol_error_window_ms),
        );
        let exceeded = self
            .live
            .get_mut(&conn)
            .is_some_and(|l| l.protocol_error(ctx.now, budget, window));
        if exceeded {
            self.close(ctx, conn, CloseReason::ProtocolErrorBudget);
        }
    }

    /// Queues a frame for one connection, closing it as a slow consumer when its queue is full.
    pub(crate) fn push_frame(&mut self, ctx: &mut Ctx, conn: ConnId, frame: WireFrame) -> bool {
        let admitted = self.admit_send(ctx, conn);
        if admitted {
            ctx.out.sends.push((conn, frame));
        }
        admitted
    }

    /// Counts one more frame into `conn`'s send queue, or closes it as a slow consumer when
    /// the queue is full; the caller pushes the frame only when this says yes.
    pub(crate) fn admit_send(&mut self, ctx: &mut Ctx, conn: ConnId) -> bool {
        let cap = self.config.limits.send_queue_capacity;
        let Some(l) = self.live.get_mut(&conn) else {
            return false;
        };
        if l.queued >= cap && !planted!(self.plants, UnboundedQueue) {
            self.close(ctx, conn, CloseReason::SlowConsumer);
            return false;
        }
        l.queued += 1;
        self.peak_queue_depth = self.peak_queue_depth.max(l.queued);
        true
    }

    pub(crate) fn send_direct(&mut self, ctx: &mut Ctx, conn: ConnId, frame: &ServerFrame) {
        self.push_frame(ctx, conn, frame.render());
    }

    /// Appends `entry` (made at `ctx.now`) at the next seq of `user`'s stream and fans it out
    /// to their connections.
    pub(crate) fn append_entry(&mut self, ctx: &mut Ctx, user: UserId, entry: Arc<StreamEntry>) {
        // The targets are read before the event takes `user` (so it is never cloned); an
        // append changes no session, so they are the same after it.
        let mut targets = std::mem::take(&mut self.targets);
        if planted!(self.plants, BroadcastLeak) {
            targets.extend(self.state.sessions.keys().copied());
        } else {
            let set = match entry.thread() {
                Some(t) if planted!(self.plants, ThreadIdAsUserId) => {
                    UserId::parse(t.as_str()).and_then(|u| self.state.by_user.get(&u))
                }
                _ => self.state.by_user.get(&user),
            };
            if let Some(set) = set {
                targets.extend_from_slice(set.as_slice());
            }
        }
        let seq = self.state.latest_seq(&user).next();
        self.deliver(ctx, user, seq, entry, &targets);
        targets.clear();
        self.targets = targets;
    }

    /// Appends `entry` to the stream of every connected user, each copy at that user's own
    /// next seq (docs/protocol.md section 14), in user order, as one `stream_broadcast` event:
    /// the fold derives the copies, so a broadcast to n users writes one log line, not n.
    /// Connections and outboxes are both ordered by user, so one walk of the two finds every
    /// copy's targets and seq: two B-tree searches per user were half of a broadcast's time.
    pub(crate) fn append_to_every_user(&mut self, ctx: &mut Ctx, entry: &Arc<StreamEntry>) {
        if planted!(self.plants, BroadcastLeak) {
            // The planted leak keeps its old shape: one append per user, each sent to every
            // connection of every user.
            let users: Vec<UserId> = self.state.by_user.keys().cloned().collect();
            for user in users {
                self.append_entry(ctx, user, Arc::clone(entry));
            }
            return;
        }
        let mut targets = std::mem::take(&mut self.targets);
        let mut users = std::mem::take(&mut self.broadcast_users);
        let mut outboxes = self.state.outboxes.iter().peekable();
        for (user, set) in &self.state.by_user {
            let latest = entry_of(&mut outboxes, user).map_or_else(Seq::default, |o| o.latest());
            targets.extend_from_slice(set.as_slice());
            users.push((user.clone(), latest.next(), targets.len()));
        }
        // The fold appends a copy for exactly the users just walked (those with an open
        // session), each at the seq read here.
        self.emit(
            ctx,
            Event::StreamBroadcast {
                entry: Arc::clone(entry),
            },
        );
        // Sending one copy changes no other user's stream or connections (a slow consumer's
        // close touches only its own user's), so what the walk read still holds.
        let forward = !planted!(self.plants, AckWithoutForward);
        let mut start = 0;
        for (user, seq, end) in users.drain(..) {
            debug_assert_eq!(
                self.state.latest_seq(&user),
                seq,
                "the fold's copy for {user}"
            );
            if forward {
                let frame = entry.render(seq, &user, &mut self.scratch);
                for conn in &targets[start..end] {
                    self.push_frame(ctx, *conn, WireFrame::from(Arc::clone(&frame)));
                }
            }
            start = end;
        }
        targets.clear();
        self.targets = targets;
        self.broadcast_users = users;
    }

    /// Stores `entry` at `seq` (the user's next) and sends its frame to `conns`, rendered
    /// once for all of them and not at all when there are none.
    pub(super) fn deliver(
        &mut self,
        ctx: &mut Ctx,
        user: UserId,
        seq: Seq,
        entry: Arc<StreamEntry>,
        conns: &[ConnId],
    ) {
        let frame = (!conns.is_empty()).then(|| entry.render(seq, &user, &mut self.scratch));
        self.emit(ctx, Event::StreamAppended { user, seq, entry });
        if planted!(self.plants, AckWithoutForward) {
            return;
        }
        if let Some(frame) = frame {
            for conn in conns {
                self.push_frame(ctx, *conn, WireFrame::from(Arc::clone(&frame)));
            }
        }
    }

    /// Sends as much of a pending `resume` backlog as the connection's queue allows.
    pub(crate) fn pump_backfill(&mut self, ctx: &mut Ctx, conn: ConnId) {
        loop {
            let cap = self.config.limits.send_queue_capacity;
            let Some(l) = self.live.get(&conn) else {
                return;
            };
            let Some(b) = l.backfill.clone() else { return };
            let Some(user) = self
                .state
                .sessions
                .get(&conn)
                .map(|s| s.identity.user.clone())
            else {
                return;
            };
            let next = b.cursor.next();
            if next >= b.before {
                if let Some(l) = self.live.get_mut(&conn) {
                    l.backfill = None;
                }
                let done = ServerFrame::Resumed {
                    from_seq: b.from,
                    count: b.sent,
                };
                return self.send_direct(ctx, conn, &done);
            }
            if l.queued >= cap {
                return;
            }
            let outbox = self.state.outboxes.get(&user);
            let scratch = &mut self.scratch;
            match outbox
                .and_then(|o| o.get(next))
                .map(|e| e.render(next, &user, scratch))
            {
                Some(frame) => {
                    if let Some(l) = self.live.get_mut(&conn)
                        && let Some(b) = l.backfill.as_mut()
                    {
                        b.cursor = next;
                        b.sent += 1;
                    }
                    // Admitted: the queue had room (checked above). Were it refused, the
                    // connection would be closed and the next turn would end at its lookup.
                    self.push_frame(ctx, conn, WireFrame::from(frame));
                }
                None => {
                    // Trimmed while paging: say so, then continue from the oldest kept.
                    let oldest = outbox.map_or(b.before, |o| o.oldest());
                    let jump = Seq::new(oldest.get().saturating_sub(1)).max(next);
                    if let Some(l) = self.live.get_mut(&conn)
                        && let Some(b) = l.backfill.as_mut()
                    {
                        b.cursor = jump;
                    }
                    let gap = resume_gap(oldest);
                    self.send_direct(ctx, conn, &gap);
                }
            }
        }
    }
}

pub(crate) fn resume_gap(oldest: Seq) -> ServerFrame {
    ServerFrame::Error {
        code: ErrorCode::ResumeGap,
        message: format!("events before seq {} are no longer retained", oldest.get()),
        retryable: false,
        retry_after_ms: None,
        oldest_seq: Some(oldest),
    }
}
