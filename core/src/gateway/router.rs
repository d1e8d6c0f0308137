//! The router: an inbound text frame from its size, UTF-8 and rate checks to the handler
//! of its type, with the permission and ownership checks of docs/protocol.md section 9, and
//! the rate charge of a control frame (ping, pong).
//!
//! Identity is the session's, never anything in the message. Every refusal is an `error`
//! frame with a documented code and the connection stays open (the protocol-error budget
//! decides otherwise). Handlers change durable state only by emitting events.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ErrorCode;
use crate::ids::{ConnId, RunId, Seq, ThreadId, UserId};
use crate::log::{CloseReason, Event};
use crate::outbox::StreamEntry;
use crate::payload::Payload;
use crate::plant::planted;
use crate::protocol::{ClientFrame, Inbound, ServerFrame, StreamKind, WireFrame, render_ack_into};
use crate::ratelimit::{Rate, TokenBucket};
use crate::session::Backfill;
use crate::time::Instant;

use super::fanout::resume_gap;
use super::timers::millis;
use super::{Ctx, Gateway};

/// Attempts at finding a free generated thread id before giving up.
const THREAD_ID_ATTEMPTS: u64 = 8;

/// Takes one token from `user`'s bucket (`RATE-USER`), creating the bucket full on first use;
/// the wait until the next token when there is none. A free function over the bucket table so
/// a caller may keep the session's user borrowed meanwhile.
fn take_user_token(
    buckets: &mut BTreeMap<UserId, TokenBucket>,
    rate: Rate,
    user: &UserId,
    now: Instant,
) -> Result<(), Duration> {
    match buckets.get_mut(user) {
        Some(bucket) => bucket.try_take(now),
        None => {
            let mut bucket = TokenBucket::new(rate, now);
            let taken = bucket.try_take(now);
            buckets.insert(user.clone(), bucket);
            taken
        }
    }
}

impl Gateway {
    pub(super) fn on_text(&mut self, ctx: &mut Ctx, conn: ConnId, data: &[u8]) {
        let Some(session) = self.state.sessions.get(&conn) else {
            return;
        };
        if data.len() > self.config.limits.max_frame_bytes {
            return self.close(ctx, conn, CloseReason::FrameTooBig);
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return self.close(ctx, conn, CloseReason::InvalidUtf8);
        };
        // Borrowed: the keep-alives, the most frequent frames, never need an owned copy.
        let taken = take_user_token(
            &mut self.user_buckets,
            self.config.limits.user_rate,
            &session.identity.user,
            ctx.now,
        );
        if let Err(wait) = taken {
            return self.refuse_over_rate(ctx, conn, wait);
        }
        match crate::protocol::decode_inbound(text) {
            Ok(inbound) if self.answer_keepalive(ctx, conn, &inbound) => {}
            Ok(inbound) => self.route(ctx, conn, inbound),
            Err(e) => self.reply_error(ctx, conn, ServerFrame::error(e.code(), e.to_string())),
        }
    }

    /// A WebSocket ping or pong: charged to the user's bucket like a text frame
    /// (`RATE-CONTROL-FRAMES`) and answered only when over the limit; the transport sends
    /// the pong.
    pub(super) fn on_control(&mut self, ctx: &mut Ctx, conn: ConnId) {
        if planted!(self.plants, ControlFramesUncharged) {
            return;
        }
        let Some(session) = self.state.sessions.get(&conn) else {
            return;
        };
        let taken = take_user_token(
            &mut self.user_buckets,
            self.config.limits.user_rate,
            &session.identity.user,
            ctx.now,
        );
        if let Err(wait) = taken {
            self.refuse_over_rate(ctx, conn, wait);
        }
    }

    /// A frame over the user's rate: counted, and answered `RATE_LIMITED` with the wait
    /// (`RATE-LIMITED-REPLY`), which spends the protocol-error budget (`RATE-ABUSE-CLOSE`).
    fn refuse_over_rate(&mut self, ctx: &mut Ctx, conn: ConnId, wait: Duration) {
        self.rate_limited += 1;
        let frame = ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: "rate limit exceeded".into(),
            retryable: true,
            retry_after_ms: Some(millis(wait)),
            oldest_seq: None,
        };
        self.reply_error(ctx, conn, frame);
    }

    /// Answers a keep-alive (`ping`, `heartbeat`), rendering the reply straight into its
    /// send slot; false, doing nothing, for every other message. Keep-alives are the most
    /// frequent frames and need no identity and no state.
    pub(crate) fn answer_keepalive(
        &mut self,
        ctx: &mut Ctx,
        conn: ConnId,
        inbound: &Inbound<'_>,
    ) -> bool {
        let kind = match inbound.frame {
            ClientFrame::Ping => "pong",
            ClientFrame::Heartbeat => "heartbeat_ack",
            _ => return false,
        };
        if self.admit_send(ctx, conn) {
            ctx.out.sends.push((conn, WireFrame::EMPTY));
            if let Some((_, frame)) = ctx.out.sends.last_mut() {
                render_ack_into(frame, kind, inbound.message_id.as_deref());
            }
        }
        true
    }

    /// Handles one decoded message on an open session, other than a keep-alive (see
    /// [`Gateway::answer_keepalive`]).
    pub(crate) fn route(&mut self, ctx: &mut Ctx, conn: ConnId, inbound: Inbound<'_>) {
        let Some(user) = self
            .state
            .sessions
            .get(&conn)
            .map(|s| s.identity.user.clone())
        else {
            return;
        };
        let user = &user;
        let message_id = inbound.message_id;
        match inbound.frame {
            // Answered before routing, by `answer_keepalive`.
            ClientFrame::Ping | ClientFrame::Heartbeat => {}
            ClientFrame::UserMessage { content, thread_id } => {
                let message_id = message_id.map(Cow::into_owned);
                self.user_message(ctx, conn, user, message_id, content, thread_id);
            }
            ClientFrame::StopAgent { run_id } => self.stop_agent(ctx, conn, user, run_id),
            ClientFrame::SubscribeThread { thread_id } => {
                self.subscribe(ctx, conn, user, thread_id)
            }
            ClientFrame::Resume { last_seq } => self.resume(ctx, conn, user, last_seq),
            ClientFrame::Reauth { token } => self.reauth(ctx, conn, user, &token),
            ClientFrame::Broadcast { text } => self.broadcast(ctx, conn, user, text),
        }
    }

    fn user_message(
        &mut self,
        ctx: &mut Ctx,
        conn: ConnId,
        user: &UserId,
        message_id: Option<String>,
        content: String,
        thread_id: Option<ThreadId>,
    ) {
        let limits = &self.config().limits;
        if content.len() > limits.max_content_bytes {
            let msg = format!("content over {} bytes", limits.max_content_bytes);
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::BadMessage, msg));
        }
        let (max_runs, max_threads) =
            (limits.max_active_runs_per_user, limits.max_threads_per_user);
        if self.state.runs_per_user.get(user).copied().unwrap_or(0) >= max_runs {
            let msg = format!("at most {max_runs} runs in progress");
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::LimitExceeded, msg));
        }
        let run = self.state.next_run.next();
        let thread = match thread_id {
            Some(t) => match self.state.threads.get(&t) {
                Some(owner) if owner == user => t,
                Some(_) => {
                    let msg = "thread belongs to another user";
                    return self.reply_error(
                        ctx,
                        conn,
                        ServerFrame::error(ErrorCode::Forbidden, msg),
                    );
                }
                None => t,
            },
            None => match self.free_thread_id(run) {
                Some(t) => t,
                None => {
                    let msg = "could not allocate a thread id";
                    return self.reply_error(
                        ctx,
                        conn,
                        ServerFrame::error(ErrorCode::LimitExceeded, msg),
                    );
                }
            },
        };
        if !self.state.threads.contains_key(&thread) {
            if self.state.threads_per_user.get(user).copied().unwrap_or(0) >= max_threads {
                let msg = format!("at most {max_threads} threads");
                return self.reply_error(
                    ctx,
                    conn,
                    ServerFrame::error(ErrorCode::LimitExceeded, msg),
                );
            }
            self.emit(
                ctx,
                Event::ThreadCreated {
                    thread: thread.clone(),
                    owner: user.clone(),
                },
            );
        }
        self.emit(
            ctx,
            Event::RunStarted {
                run,
                owner: user.clone(),
                thread: thread.clone(),
                task: content,
            },
        );
        let accepted = ServerFrame::MessageAccepted {
            message_id,
            thread_id: thread.clone(),
            run_id: run,
        };
        self.send_direct(ctx, conn, &accepted);
        let first = self.state.runs.get(&run).and_then(|r| {
            let step = r.plan.first()?;
            Some(StreamEntry::step(ctx.now, &r.info, step))
        });
        if let Some(entry) = first {
            self.append_entry(ctx, user.clone(), Arc::new(entry));
        }
        self.arm_run(run);
    }

    fn free_thread_id(&self, run: RunId) -> Option<ThreadId> {
        (0..THREAD_ID_ATTEMPTS)
            .filter_map(|k| {
                ThreadId::parse(&if k == 0 {
                    format!("thread-{run}")
                } else {
                    format!("thread-{run}-{k}")
                })
            })
            .find(|t| !self.state.threads.contains_key(t))
    }

    fn stop_agent(&mut self, ctx: &mut Ctx, conn: ConnId, user: &UserId, run: RunId) {
        let Some(r) = self.state.runs.get(&run) else {
            let msg = format!("no run {run} in progress");
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::NotFound, msg));
        };
        if r.owner != *user && !planted!(self.plants, RunIdAsUserId) {
            let msg = "run belongs to another user";
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::Forbidden, msg));
        }
        let entry = StreamEntry::new(
            ctx.now,
            StreamKind::AgentCancelled,
            Some(r.info.thread().clone()),
            Some(run),
            crate::agent::cancelled_payload(),
        );
        let owner = r.owner.clone();
        self.stop_run_timer(run);
        self.append_entry(ctx, owner, Arc::new(entry));
    }

    fn subscribe(&mut self, ctx: &mut Ctx, conn: ConnId, user: &UserId, thread: ThreadId) {
        match self.state.threads.get(&thread) {
            None => {
                let msg = "no such thread";
                return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::NotFound, msg));
            }
            Some(owner) if owner != user && !planted!(self.plants, SubscribeAnyThread) => {
                let msg = "thread belongs to another user";
                return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::Forbidden, msg));
            }
            Some(_) => {}
        }
        let max = self.config().limits.max_subscriptions_per_connection;
        let held = self
            .state
            .sessions
            .get(&conn)
            .map_or(0, |s| s.subscriptions.len());
        let already = self
            .state
            .sessions
            .get(&conn)
            .is_some_and(|s| s.subscriptions.contains(&thread));
        if !already && held >= max {
            let msg = format!("at most {max} subscriptions per connection");
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::LimitExceeded, msg));
        }
        if !already {
            self.emit(
                ctx,
                Event::Subscribed {
                    conn,
                    thread: thread.clone(),
                },
            );
        }
        self.send_direct(ctx, conn, &ServerFrame::Subscribed { thread_id: thread });
    }

    fn resume(&mut self, ctx: &mut Ctx, conn: ConnId, user: &UserId, last_seq: Seq) {
        let latest = self.state.latest_seq(user);
        if last_seq > latest {
            let msg = format!(
                "last_seq {} is ahead of the stream ({})",
                last_seq.get(),
                latest.get()
            );
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::BadMessage, msg));
        }
        let Some(live) = self.live.get_mut(&conn) else {
            return;
        };
        if live.backfill.is_some() {
            let msg = "a resume is already in progress";
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::BadMessage, msg));
        }
        // Everything from `floor` on is already covered on this connection (live or resumed).
        let before = live.floor;
        let mut after = last_seq;
        if after.next() >= before {
            let done = ServerFrame::Resumed {
                from_seq: after.next(),
                count: 0,
            };
            return self.send_direct(ctx, conn, &done);
        }
        let oldest = self.state.outboxes.get(user).map_or(before, |o| o.oldest());
        if after.next() < oldest {
            self.send_direct(ctx, conn, &resume_gap(oldest));
            after = Seq::new(oldest.get().saturating_sub(1));
        }
        if planted!(self.plants, ResumeSkips) {
            after = after.next();
        }
        if let Some(live) = self.live.get_mut(&conn) {
            live.floor = live.floor.min(after.next());
            live.backfill = Some(Backfill {
                cursor: after,
                before,
                from: after.next(),
                sent: 0,
            });
        }
        self.pump_backfill(ctx, conn);
    }

    fn reauth(&mut self, ctx: &mut Ctx, conn: ConnId, user: &UserId, token: &str) {
        if !self.feed_is_fresh(ctx.now) {
            let msg = "revocation status unavailable, retry";
            return self.reply_error(
                ctx,
                conn,
                ServerFrame::error(ErrorCode::AuthUnavailable, msg),
            );
        }
        let identity = match self.validate_access(token, ctx.now) {
            Ok(id) => id,
            Err(e) => {
                let msg = format!("token rejected: {}", e.code());
                return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::AuthFailed, msg));
            }
        };
        if identity.user != *user && !planted!(self.plants, ReauthAnyUser) {
            let msg = "token is for another user";
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::AuthFailed, msg));
        }
        let exp = identity.exp;
        self.emit(ctx, Event::SessionReauthed { conn, identity });
        self.rearm_expiry(conn, exp);
        self.send_direct(
            ctx,
            conn,
            &ServerFrame::Reauthenticated {
                exp: exp.unix_secs(),
            },
        );
    }

    fn broadcast(&mut self, ctx: &mut Ctx, conn: ConnId, user: &UserId, text: Cow<'_, str>) {
        let allowed = self
            .state
            .sessions
            .get(&conn)
            .is_some_and(|s| s.identity.can_broadcast);
        if !allowed {
            let msg = "broadcast requires system:broadcast";
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::Forbidden, msg));
        }
        let max = self.config().limits.max_content_bytes;
        if text.len() > max {
            let msg = format!("text over {max} bytes");
            return self.reply_error(ctx, conn, ServerFrame::error(ErrorCode::BadMessage, msg));
        }
        let (payload, scratch) = Payload::object_in(std::mem::take(&mut self.scratch))
            .str("from", user.as_str())
            .str("text", &text)
            .finish_reusing();
        self.scratch = scratch;
        // One entry for every user's copy: only the seq each copy is stored at differs.
        let entry = Arc::new(StreamEntry::new(
            ctx.now,
            StreamKind::SystemNotice,
            None,
            None,
            payload,
        ));
        self.append_to_every_user(ctx, &entry);
    }
}
