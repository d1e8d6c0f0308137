//! Simulated clients: honest users and adversaries, each a small state machine woken by the
//! scheduler. Every choice comes from the client's own RNG fork, so adding a client or an
//! operation never shifts what the others do.

use std::sync::Arc;
use std::time::Duration;

use gauntlet_core::auth_service::TokenPair;
use gauntlet_core::permissions::{Permission, Permissions};
use gauntlet_core::protocol::{
    ClientFrame, HandshakeRequest, JWT_SUBPROTOCOL, MAX_HANDSHAKE_BYTES, MAX_HEADERS,
    token_subprotocol, token_subprotocols,
};
use gauntlet_core::token::{MAX_KEYS, MintRequest, TokenType};
use gauntlet_core::{ConnId, HandshakeDecision, Instant, Jti, RunId, Seq, ThreadId, UserId};

use crate::frame_view::FrameView;

use super::phase::Phase;
use super::population::{
    AuthState, ClientId, Conn, LateReuse, Tokens, push_exact, refused_grant_rule,
};
use super::{
    AuthAnswer, AuthCall, Down, Ev, HANDSHAKE_TIMEOUT, OAuthAttack, SIM_ORIGIN, Sized, Up, World,
    check,
};
use crate::checker::{
    CredTruth, Failure, IMPERSONATION_TASK, Obs, Tagged, UNPRIVILEGED_NOTICE, message_id,
};
use crate::network::NodeId;
use crate::rng::SimRng;
use crate::scenario::{Mix, Op};
use crate::workload;

/// Scales [`Op::RotateKeys`]: a draw acts with chance `ROTATION_DRAWS_PER_RUN / users`
/// (7.5 / 50 = 0.15, about one storm a minute at weight 1).
const ROTATION_DRAWS_PER_RUN: f64 = 7.5;
/// Scales [`Op::RefreshStorm`] the same way: each storm is hundreds of rotations, so a run
/// sees a handful of them (30 / 100 = 0.3 of the draws with 100 users), however many users.
const STORM_DRAWS_PER_RUN: f64 = 30.0;
/// Attack-table cases one [`Op::TableAttack`] presents: enough that the table's cases all
/// come up in a short run, few enough to stay under the per-address handshake rate.
const TABLE_CASES_PER_ATTACK: usize = 8;
/// Most tabs one [`Op::ExtraTabs`] opens at once: the per-address handshake burst.
const TABS_PER_BURST: usize = 10;
/// How far past what it has received a [`Op::BadFrames`] resume asks to start: beyond any
/// stream a run produces.
const RESUME_AHEAD: u64 = 1 << 40;
/// The access lifetime of the short session an [`Op::LateReuse`] steals: its `exp` passes a
/// few seconds into the attack, whatever lifetime the seed gives ordinary sessions (five
/// minutes in half the seeds, past the end of a one-minute run).
const LATE_REUSE_TTL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy)]
enum Method {
    Bearer,
    Subprotocol,
    Ticket,
}

impl World<'_> {
    pub(super) fn wake(&mut self, i: ClientId) {
        let think = std::time::Duration::from_millis(self.sc.think_ms.max(1));
        let c = &mut self.clients[i];
        let next = c.rng.exp_duration(think);
        let (adversary, has_tokens, awaiting, no_conn) = (
            c.adversary,
            c.auth.tokens().is_some(),
            c.auth.waiting(),
            c.conns.is_empty(),
        );
        self.after(next.max(Duration::from_millis(10)), Ev::Wake(i));
        if awaiting || self.now < self.clients[i].not_before {
            return;
        }
        if self.phase != Phase::Safety && adversary {
            return;
        }
        if self.run_due(i) {
            return;
        }
        if !has_tokens {
            let oauth =
                self.pick(i, &[Op::OAuthLogin]).is_some() && self.clients[i].rng.chance(0.5);
            return self.auth_request(
                i,
                if oauth {
                    AuthCall::OAuthLogin
                } else {
                    AuthCall::Login
                },
            );
        }
        let expiring = self.clients[i]
            .auth
            .tokens()
            .is_some_and(|t| self.now.saturating_add(Duration::from_secs(20)) >= t.access_exp);
        if expiring {
            let refresh = self.clients[i]
                .auth
                .tokens()
                .map(|t| t.refresh.clone())
                .unwrap_or_default();
            return self.auth_request(i, AuthCall::Refresh(refresh));
        }
        if no_conn {
            let method = match self.clients[i].rng.index(3) {
                0 => Method::Bearer,
                1 => Method::Subprotocol,
                _ => Method::Ticket,
            };
            return self.connect(i, method);
        }
        if self.phase != Phase::Safety {
            return;
        }
        let attack = adversary && self.clients[i].rng.chance(0.6);
        let c = &mut self.clients[i];
        let menu = &self.menus[usize::from(attack)];
        if let Some(op) = pick(&self.mix, &mut c.rng, menu) {
            self.ops += 1;
            let user = c.user.clone();
            self.note(format_args!("{user} {op:?}"));
            self.perform(i, op);
        }
    }

    /// Runs what client `i` scheduled for now, in the safety phase only: a step of its
    /// [`Op::LateReuse`], or else a saved token's replay. False when nothing was due.
    fn run_due(&mut self, i: ClientId) -> bool {
        if self.phase != Phase::Safety {
            return false;
        }
        let c = &self.clients[i];
        if c.late_reuse.as_ref().is_some_and(|l| self.now >= l.due()) {
            self.late_reuse(i);
            return true;
        }
        let Some(k) = c.saved.iter().position(|(_, _, at)| self.now >= *at) else {
            return false;
        };
        let (token, truth, _) = self.clients[i].take_saved(k);
        self.ops += 1;
        self.connect_with(i, &token, truth, Method::Bearer);
        true
    }

    /// [`Ev::LateReuse`]: the attack's steps run on time, not at the client's next wake, so
    /// the stolen token is still inside the leeway on the gateway's clock when it is
    /// presented. A client that waits on the auth service, or pauses, leaves the step to
    /// its next wake.
    pub(super) fn late_reuse_due(&mut self, i: ClientId) {
        let c = &self.clients[i];
        if !c.auth.waiting() && self.now >= c.not_before {
            self.run_due(i);
        }
    }

    /// [`Op::LateReuse`]: steal a short session's first pair once its refresh token is
    /// rotated (the answer schedules the rest, see `late_reuse`). It needs no connection,
    /// only the auth service. Only while the whole attack fits in the safety phase: the
    /// token's lifetime, a second past its `exp`, the revocation's staleness and the
    /// replay's 2 s after it, with 5 s for the network.
    fn late_reuse_start(&mut self, i: ClientId) {
        let c = &self.clients[i];
        if c.late_reuse.is_some() || c.auth.waiting() {
            return;
        }
        let staleness = Duration::from_millis(self.config.limits.max_revocation_staleness_ms);
        let needs = LATE_REUSE_TTL
            .saturating_add(staleness)
            .saturating_add(Duration::from_secs(1 + 2 + 5));
        let safety_end = self.start.saturating_add(self.sc.duration());
        if self.now.saturating_add(needs) >= safety_end {
            return;
        }
        self.auth_request(i, AuthCall::LateReuseSetup);
    }

    /// The next step of [`Op::LateReuse`]. Reuse: the stolen access token is past its `exp`
    /// on the issuer's clock but inside the leeway, so it still validates; present the
    /// refresh token that was rotated away (theft: the family is revoked). Replay: the
    /// revocation binds now; present the access token, which must be refused.
    fn late_reuse(&mut self, i: ClientId) {
        let Some(step) = self.clients[i].late_reuse.take() else {
            return;
        };
        match *step {
            LateReuse::Reuse { stolen, .. } => {
                // 20 s of the 30 s leeway left: enough for the revocation to bind first.
                let deadline = stolen.access_exp.saturating_add(Duration::from_secs(20));
                if self.auth_now() >= deadline {
                    return;
                }
                self.ops += 1;
                let staleness =
                    Duration::from_millis(self.config.limits.max_revocation_staleness_ms);
                let at = self
                    .now
                    .saturating_add(staleness)
                    .saturating_add(Duration::from_secs(2));
                // The access token the family's revocation must cover, inside the leeway.
                let access = match &stolen.truth {
                    CredTruth::Access { jti, exp, .. } => Some((jti.clone(), *exp)),
                    _ => None,
                };
                self.clients[i].late_reuse = Some(Box::new(LateReuse::Replay {
                    at,
                    access: stolen.access,
                    truth: stolen.truth,
                }));
                self.at(at, Ev::LateReuse(i));
                self.auth_request(
                    i,
                    AuthCall::RefreshReuse {
                        token: stolen.refresh,
                        stolen: access,
                    },
                );
            }
            LateReuse::Replay { access, truth, .. } => {
                self.ops += 1;
                self.connect_with(i, &access, truth, Method::Bearer);
            }
        }
    }

    /// Draws one of `ops` by the scenario's weights, from client `i`'s RNG.
    fn pick(&mut self, i: ClientId, ops: &[Op]) -> Option<Op> {
        pick(&self.mix, &mut self.clients[i].rng, ops)
    }

    fn send_frame(&mut self, conn: ConnId, frame: &ClientFrame<'_>) {
        let text = frame.to_json(None);
        self.up(conn, Up::Text(conn, text.into_bytes()));
    }

    fn perform(&mut self, i: ClientId, op: Op) {
        if op == Op::LateReuse {
            return self.late_reuse_start(i);
        }
        let Some(conn) = self.clients.pick_open_conn(i) else {
            return self.connect(i, Method::Bearer);
        };
        let user = self.clients[i].user.clone();
        match op {
            Op::Message => {
                let c = &mut self.clients[i];
                let thread = match c.rng.index(10) {
                    0..=4 if !c.threads.is_empty() => {
                        c.threads.get(c.rng.index(c.threads.len())).cloned()
                    }
                    0..=7 => {
                        c.threads_made += 1;
                        ThreadId::parse(&format!("{}-t{}", c.user, c.threads_made))
                    }
                    _ => None,
                };
                let content = format!("question {}", c.rng.range(0..1000));
                // Now and then a user fires several questions at once (parallel agent runs).
                let burst = if c.rng.chance(0.15) {
                    2 + c.rng.index(5)
                } else {
                    1
                };
                for _ in 0..burst {
                    let f = ClientFrame::UserMessage {
                        content: content.clone(),
                        thread_id: thread.clone(),
                    };
                    self.send_frame(conn, &f);
                }
            }
            Op::StopOwnRun => {
                let c = &mut self.clients[i];
                if let Some(run) = c.runs.get(c.rng.index(c.runs.len().max(1))).copied() {
                    self.clients
                        .stop_requests
                        .entry(run)
                        .or_default()
                        .insert(user);
                    self.send_frame(conn, &ClientFrame::StopAgent { run_id: run });
                }
            }
            Op::Subscribe => {
                let c = &mut self.clients[i];
                if let Some(t) = c.threads.get(c.rng.index(c.threads.len().max(1))).cloned() {
                    self.send_frame(conn, &ClientFrame::SubscribeThread { thread_id: t });
                }
            }
            Op::Ping => {
                let f = if self.clients[i].rng.chance(0.5) {
                    ClientFrame::Ping
                } else {
                    ClientFrame::Heartbeat
                };
                self.send_frame(conn, &f);
            }
            Op::Refresh | Op::ConcurrentRefresh => {
                let refresh = self.clients[i]
                    .auth
                    .tokens()
                    .map(|t| t.refresh.clone())
                    .unwrap_or_default();
                // Two tabs refresh at once: both requests reach the auth service together.
                let call = if op == Op::ConcurrentRefresh {
                    AuthCall::ConcurrentRefresh(refresh)
                } else {
                    AuthCall::Refresh(refresh)
                };
                self.auth_request(i, call);
            }
            Op::Reauth => {
                if let Some(t) = self.clients[i].auth.tokens() {
                    let (token, truth) = (t.access.clone(), t.truth.clone());
                    self.clients[i].reauth_sent(conn, truth);
                    self.send_frame(conn, &ClientFrame::Reauth { token });
                }
            }
            Op::ExtraTabs => {
                let c = &mut self.clients[i];
                let n = if c.rng.chance(0.125) {
                    // Past the per-user cap by one (`WS-CAP-PER-USER`), within the per-address
                    // burst when a tab is already open.
                    let cap = self.config.limits.max_connections_per_user;
                    (cap + 1).saturating_sub(c.conns.len()).min(TABS_PER_BURST)
                } else {
                    1 + c.rng.index(4)
                };
                for _ in 0..n {
                    self.connect(i, Method::Bearer);
                }
            }
            Op::CloseTab => self.close_conn(i, conn),
            Op::Logout => {
                if let Some(t) = self.clients[i].auth.take_tokens() {
                    let jti = workload::payload_of(&t.access)["jti"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    self.auth_request(
                        i,
                        AuthCall::Logout {
                            jti,
                            exp: t.access_exp,
                        },
                    );
                }
                let conns: Vec<ConnId> = self.clients[i].conns.iter().copied().collect();
                for c in conns {
                    self.close_conn(i, c);
                }
            }
            Op::LogoutEverywhere => {
                self.clients[i].auth.take_tokens();
                self.clients[i].not_before = self.now.saturating_add(Duration::from_secs(2));
                self.auth_request(i, AuthCall::LogoutEverywhere);
            }
            Op::RotateKeys => {
                // Rotation is one operator's act, not each user's: a draw acts with a
                // chance that shrinks with the population, so a run sees about as many
                // storms with 50 users as with 5000 (every ring change also empties the
                // validation cache, which other checks need warm). When it acts it is a
                // storm far past the ring's size (an operator script in a loop), which
                // only a ring that drops keys older than the previous one survives;
                // single rotations come from the `key_rotation` fault.
                if !self.operator_acts(i) {
                    return;
                }
                let c = &mut self.clients[i];
                let n = MAX_KEYS + c.rng.index(8);
                for _ in 0..n {
                    if self.failure.is_some() {
                        break;
                    }
                    self.rotate_key();
                }
            }
            Op::RetireKey => {
                // One operator's act, as rare per run as a rotation storm.
                if self.operator_acts(i) {
                    self.retire_key();
                }
            }
            Op::PasswordChange => {
                if self.clients[i].auth.waiting() {
                    return;
                }
                let staleness =
                    Duration::from_millis(self.config.limits.max_revocation_staleness_ms);
                let later = self
                    .now
                    .saturating_add(staleness)
                    .saturating_add(Duration::from_secs(2));
                let c = &mut self.clients[i];
                // An old tab comes back later with the token from before the change.
                if let Some(t) = c.auth.take_tokens() {
                    c.save(t.access, t.truth, later);
                }
                self.ask_auth(i, AuthCall::LogoutEverywhere, true);
            }
            Op::OAuthLogin => {}
            Op::Broadcast => {
                if i == ClientId::OPS {
                    self.send_frame(
                        conn,
                        &ClientFrame::Broadcast {
                            text: "maintenance at noon".into(),
                        },
                    );
                }
            }
            _ => self.attack(i, op, conn, user),
        }
    }

    fn attack(&mut self, i: ClientId, op: Op, conn: ConnId, user: UserId) {
        let Some(t) = self.clients[i].auth.tokens() else {
            return;
        };
        let (access, refresh) = (t.access.clone(), t.refresh.clone());
        let victim_id = {
            let n = self.sc.users.max(1);
            let v = self.clients[i].rng.range(0..u64::from(n));
            u32::try_from(v).ok().and_then(|v| self.clients.id(v))
        };
        let victim = victim_id.map_or_else(|| user.clone(), |v| self.clients[v].user.clone());
        let variant = self.clients[i].rng.next_u64();
        match op {
            Op::Forged => self.connect_with(
                i,
                &workload::tamper_signature(&access),
                CredTruth::Bad("forged"),
                Method::Bearer,
            ),
            Op::AlgNone => self.connect_with(
                i,
                &workload::alg_none(&access, variant),
                CredTruth::Bad("alg-none"),
                Method::Subprotocol,
            ),
            Op::KeyConfusion => {
                let mut claims = workload::payload_of(&access);
                claims["sub"] = serde_json::Value::String(victim.to_string());
                self.connect_with(
                    i,
                    &workload::key_confusion(&claims),
                    CredTruth::Bad("key-confused"),
                    Method::Bearer,
                );
            }
            Op::Expired | Op::StaleCached | Op::EarlyToken => {
                let (when, ttl) = match op {
                    Op::Expired => (
                        self.auth_now().saturating_sub(Duration::from_secs(120)),
                        Duration::from_secs(60),
                    ),
                    // 1 to 40 s past the leeway on the gateway's clock (so past the `iat`
                    // allowance for the later half), whole seconds like the `iat` it becomes.
                    Op::EarlyToken => (
                        Instant::from_unix_secs(self.now.unix_secs()).saturating_add(
                            self.config
                                .tokens
                                .leeway()
                                .saturating_add(Duration::from_secs(1 + variant % 40)),
                        ),
                        Duration::from_secs(60),
                    ),
                    _ => (self.auth_now(), Duration::from_secs(5)),
                };
                let req = MintRequest {
                    sub: user.clone(),
                    token_type: TokenType::Access,
                    permissions: Permissions::empty(),
                    ttl,
                    family: None,
                    email: None,
                    svc_id: None,
                };
                let Ok(m) = self.auth.attacker_issuer.mint(when, &req) else {
                    return;
                };
                // Its `iat`, whole seconds: a logout-everywhere earlier in that second revokes
                // it (AUTH-REVOKE-NOT-BEFORE), and so does a cut-off a second logout moved
                // further, since nothing moves the attacker's `iat` past a cut-off as the auth
                // service moves its own.
                let iat = Instant::from_unix_secs(when.unix_secs());
                let (nbf_claim, iat_claim) = workload::nbf_iat_of(&m.token);
                let truth = CredTruth::Access {
                    user,
                    jti: m.jti.clone(),
                    minted: iat,
                    exp: m.exp,
                    kid: workload::kid_of(&m.token),
                    family: None,
                    foreign_iat: Some(iat),
                    nbf: nbf_claim,
                    iat: iat_claim,
                };
                if op == Op::StaleCached {
                    let later = m
                        .exp
                        .saturating_add(self.config.tokens.leeway())
                        .saturating_add(Duration::from_secs(1));
                    self.clients[i].save(m.token.clone(), truth.clone(), later);
                }
                if op == Op::EarlyToken {
                    // Presented again a second after it became valid: `nbf` (the issuer sets
                    // it to `iat`) within the leeway, so `iat` within its allowance too.
                    let later = iat
                        .saturating_sub(self.config.tokens.leeway())
                        .saturating_add(Duration::from_secs(1));
                    self.clients[i].save(m.token.clone(), truth.clone(), later);
                }
                self.connect_with(i, &m.token, truth, Method::Bearer);
            }
            Op::Revoked => {
                if let Some(t) = self.clients[i].auth.take_tokens() {
                    let jti = workload::payload_of(&t.access)["jti"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let staleness =
                        Duration::from_millis(self.config.limits.max_revocation_staleness_ms);
                    let later = self
                        .now
                        .saturating_add(staleness)
                        .saturating_add(Duration::from_secs(2));
                    self.clients[i].save(t.access.clone(), t.truth.clone(), later);
                    self.auth_request(
                        i,
                        AuthCall::Logout {
                            jti,
                            exp: t.access_exp,
                        },
                    );
                }
            }
            Op::RefreshAsAccess => {
                self.connect_with(i, &refresh, CredTruth::WrongType, Method::Bearer)
            }
            Op::CrossRun => {
                // Half the time the latest run another user has in progress (its id leaked),
                // so a gateway that lets anyone stop it is shown; else any id it may have
                // issued.
                let leaked = if variant.is_multiple_of(2) {
                    let start = victim_id.map_or(0, |v| usize::try_from(v.get()).unwrap_or(0));
                    self.clients
                        .others_from(start, i)
                        .find_map(|v| self.clients[v].runs.last().copied())
                } else {
                    None
                };
                let run = match leaked {
                    Some(run) => run,
                    None => {
                        let top = self
                            .gateway
                            .running
                            .as_ref()
                            .map_or(1, |_| self.gateway.log_len as u64 / 8 + 1);
                        RunId::new(1 + self.clients[i].rng.range(0..top.max(1)))
                    }
                };
                self.clients
                    .stop_requests
                    .entry(run)
                    .or_default()
                    .insert(user);
                self.send_frame(conn, &ClientFrame::StopAgent { run_id: run });
            }
            Op::CrossThread => {
                let other = ThreadId::parse(&format!("{victim}-t1"));
                let named = ThreadId::parse(victim.as_str());
                let frame = match variant % 3 {
                    0 => other.map(|t| ClientFrame::SubscribeThread { thread_id: t }),
                    1 => Some(ClientFrame::UserMessage {
                        content: "hijack".into(),
                        thread_id: other,
                    }),
                    _ => Some(ClientFrame::UserMessage {
                        content: "mirror".into(),
                        thread_id: named,
                    }),
                };
                if let Some(f) = frame {
                    self.send_frame(conn, &f);
                }
            }
            Op::Flood => {
                for _ in 0..40 {
                    self.send_frame(conn, &ClientFrame::Ping);
                }
            }
            Op::TableAttack => self.table_attack(i, &user),
            Op::ControlFlood => {
                for _ in 0..40 {
                    self.up(conn, Up::Ping(conn));
                }
            }
            Op::CrossReauth => self.cross_reauth(i, conn),
            Op::CrossSubscribe => self.cross_subscribe(i, conn),
            Op::TicketReplay => self.ticket_replay(i),
            Op::OriginSpoof => self.origin_spoof(i, &access, variant),
            Op::BadHandshake => self.bad_handshake(i, &access, variant),
            Op::MintEdge => self.mint_edge(&user, variant),
            Op::PartnerToken => {
                // Minted on true time: a partner's clock is not the auth service's, and the
                // gateway's is true time.
                if let Some((token, truth)) = self.auth.partners.mint(variant, self.now, &user) {
                    self.connect_with(i, &token, truth, Method::Bearer);
                }
            }
            // Hundreds of rotations each: a few per run, however many users.
            Op::RefreshStorm if self.population_scaled(i, STORM_DRAWS_PER_RUN) => {
                self.auth_request(i, AuthCall::RefreshStorm);
            }
            Op::EnvelopeAbuse => self.envelope_abuse(i, conn, &victim, variant),
            Op::LateTicket => {
                self.clients[i].late_ticket_asked();
                self.connect(i, Method::Ticket);
            }
            Op::BadFrames => match variant % 5 {
                0 => self.up(
                    conn,
                    Up::Text(conn, vec![b' '; self.config.limits.max_frame_bytes + 1]),
                ),
                1 => self.up(conn, Up::Binary(conn)),
                2 => self.up(conn, Up::Text(conn, vec![b'"', 0xc3, 0x28, b'"'])),
                3 => self.up(
                    conn,
                    Up::Text(conn, b"{\"type\":\"user_message\",\"payload\":".to_vec()),
                ),
                // A resume from far past the user's stream: `BAD_MESSAGE` (`RESUME-ERRORS`),
                // never a `resumed`. Not a resume the delivery checker should expect.
                _ => {
                    let ahead = self.clients[i].last_seq.saturating_add(RESUME_AHEAD);
                    self.send_frame(
                        conn,
                        &ClientFrame::Resume {
                            last_seq: Seq::new(ahead),
                        },
                    );
                }
            },
            Op::OAuthAttack => {
                self.auth_request(i, AuthCall::OAuthAttack(OAuthAttack::of(variant)));
            }
            Op::RefreshReuse => {
                let old = self.clients[i].used_refresh.clone();
                if let Some(token) = old {
                    self.auth_request(
                        i,
                        AuthCall::RefreshReuse {
                            token,
                            stolen: None,
                        },
                    );
                }
            }
            Op::TicketFlood => {
                let n = self.config.limits.max_tickets_per_user + 4;
                for _ in 0..n {
                    let tx = self.net.send(
                        self.now,
                        NodeId::client(i.get()),
                        NodeId::GATEWAY,
                        Sized(access.len()),
                    );
                    for (at, _) in tx.into_iter().take(1) {
                        self.at(at, Ev::ToGateway(Up::Ticket(i, access.clone(), true, 0)));
                    }
                }
            }
            _ => {}
        }
    }

    fn close_conn(&mut self, i: ClientId, conn: ConnId) {
        self.up(conn, Up::Closed(conn));
        self.clients.drop_conn(i, conn);
    }

    fn connect(&mut self, i: ClientId, method: Method) {
        let Some(t) = self.clients[i].auth.tokens() else {
            return;
        };
        let (token, truth) = (t.access.clone(), t.truth.clone());
        if let Method::Ticket = method {
            // The ticket will stand for this token, but no key signs it.
            let ticket_truth = match truth {
                CredTruth::Access {
                    user,
                    jti,
                    minted,
                    exp,
                    family,
                    foreign_iat,
                    nbf,
                    iat,
                    ..
                } => CredTruth::Access {
                    user,
                    jti,
                    minted,
                    exp,
                    kid: None,
                    family,
                    foreign_iat,
                    nbf,
                    iat,
                },
                other => other,
            };
            let ask = self.clients[i].ticket_asked(ticket_truth);
            let tx = self.net.send(
                self.now,
                NodeId::client(i.get()),
                NodeId::GATEWAY,
                Sized(token.len()),
            );
            for (at, _) in tx.into_iter().take(1) {
                self.at(at, Ev::ToGateway(Up::Ticket(i, token.clone(), false, ask)));
            }
            return;
        }
        self.connect_with(i, &token, truth, method);
    }

    fn connect_with(&mut self, i: ClientId, token: &str, truth: CredTruth, method: Method) {
        // Honest clients are the web app: they always send its origin.
        let req = client_request(i).header("Origin", SIM_ORIGIN);
        let req = match method {
            Method::Bearer => req.header("Authorization", &format!("Bearer {token}")),
            Method::Subprotocol => req.header("Sec-WebSocket-Protocol", &token_subprotocols(token)),
            Method::Ticket => req.with_query(&format!("ticket={token}")),
        };
        let conn = self.handshake(i, req, truth);
        if let Method::Ticket = method {
            self.clients.track_ticket(conn, token);
        }
    }

    /// Opens a connection for client `i` with the upgrade request `req`, whose credential
    /// `truth` stands for.
    fn handshake(&mut self, i: ClientId, req: HandshakeRequest, truth: CredTruth) -> ConnId {
        let mut c = Conn::connecting(i, truth, self.now);
        c.token_in_subprotocol = token_in_subprotocol(&req);
        let conn = self.clients.add_conn(c);
        self.up(conn, Up::Handshake(conn, Box::new(req)));
        conn
    }

    /// Whether client `i`'s draw of an operator's act ([`Op::RotateKeys`], [`Op::RetireKey`])
    /// acts: with a chance that shrinks with the population, so a run sees about as many of
    /// them with 50 users as with 5000.
    fn operator_acts(&mut self, i: ClientId) -> bool {
        self.population_scaled(i, ROTATION_DRAWS_PER_RUN)
    }

    /// Whether client `i`'s draw acts, with chance `per_run / users` (at most 1).
    fn population_scaled(&mut self, i: ClientId, per_run: f64) -> bool {
        let chance = (per_run / f64::from(self.sc.users.max(1))).min(1.0);
        self.clients[i].rng.chance(chance)
    }

    /// [`Op::TableAttack`]: handshakes presenting the attack table's next cases, signed with
    /// the current key and timed at the gateway's clock.
    fn table_attack(&mut self, i: ClientId, user: &UserId) {
        let Some((kid, retired)) = self.auth.attack_ring() else {
            return;
        };
        let (kid, retired) = (kid.clone(), retired.cloned());
        // A scanner sends a few cases at once, each on a connection of its own.
        for _ in 0..TABLE_CASES_PER_ATTACK {
            let auth = &self.auth;
            let Some(case) = self.attack_table.next(
                &kid,
                retired.as_ref(),
                || auth.attack_keys(),
                self.now,
                user.as_str(),
            ) else {
                return;
            };
            // The key the case names (the retired one for `retired_key`).
            let named = workload::kid_of(&case.token).unwrap_or_else(|| kid.clone());
            let truth = CredTruth::Table {
                case: case.name.clone(),
                expected: case.expected.clone(),
                kid: named,
            };
            let token = case.token.clone();
            self.connect_with(i, &token, truth, Method::Bearer);
        }
    }

    /// [`Op::CrossReauth`]: `reauth` on one's own connection with the current access token
    /// of another user who has one (stolen). It must be refused (`MSG-REAUTH-SAME-USER`);
    /// the auth checker judges a `reauthenticated` answer against the session's user.
    fn cross_reauth(&mut self, i: ClientId, conn: ConnId) {
        let n = self.clients.len();
        let start = self.clients[i].rng.index(n.max(1));
        let stolen = self.clients.others_from(start, i).find_map(|v| {
            let t = self.clients[v].auth.tokens()?;
            Some((t.access.clone(), t.truth.clone()))
        });
        let Some((token, truth)) = stolen else {
            return;
        };
        self.clients[i].reauth_sent(conn, truth);
        self.send_frame(conn, &ClientFrame::Reauth { token });
    }

    /// [`Op::CrossSubscribe`]: `subscribe_thread` to a thread another user created. It must
    /// be refused (`MSG-THREAD-OWNER`); the thread_owner checker judges a `subscribed` answer.
    fn cross_subscribe(&mut self, i: ClientId, conn: ConnId) {
        let n = self.clients.len();
        let c = &mut self.clients[i];
        let (start, pick) = (c.rng.index(n.max(1)), c.rng.next_u64());
        let thread = self.clients.others_from(start, i).find_map(|v| {
            let threads = &self.clients[v].threads;
            let len = u64::try_from(threads.len()).unwrap_or(u64::MAX).max(1);
            threads
                .get(usize::try_from(pick % len).unwrap_or(0))
                .cloned()
        });
        if let Some(thread_id) = thread {
            self.send_frame(conn, &ClientFrame::SubscribeThread { thread_id });
        }
    }

    /// [`Op::TicketReplay`]: present again a ticket a handshake already redeemed, its own or
    /// another user's, while it would still be inside its lifetime. It must be refused
    /// (`WS-TICKET-SINGLE-USE`), so it stands for no valid credential.
    fn ticket_replay(&mut self, i: ClientId) {
        let ttl = Duration::from_millis(self.config.limits.ticket_ttl_ms);
        let fresh: Vec<String> = self
            .clients
            .redeemed_tickets()
            .filter(|(_, at)| self.now < at.saturating_add(ttl))
            .map(|(t, _)| t.clone())
            .collect();
        let k = self.clients[i].rng.index(fresh.len().max(1));
        let Some(ticket) = fresh.get(k).cloned() else {
            return;
        };
        let req = client_request(i)
            .header("Origin", SIM_ORIGIN)
            .with_query(&format!("ticket={ticket}"));
        self.handshake(i, req, CredTruth::Bad("replayed-ticket"));
    }

    /// [`Op::OriginSpoof`]: the client's valid token from an origin that is not the app's.
    /// Where the gateway has an allow-list it must be refused (`WS-ORIGIN`), so the
    /// credential then stands for nothing valid; without one it is an honest handshake.
    fn origin_spoof(&mut self, i: ClientId, access: &str, variant: u64) {
        let Some(truth) = self.clients[i].auth.tokens().map(|t| t.truth.clone()) else {
            return;
        };
        let req = client_request(i).header("Authorization", &format!("Bearer {access}"));
        let spoofed = match variant % 6 {
            0 => None,
            1 => Some("https://evil.example".to_string()),
            2 => Some("http://app.example".to_string()),
            3 => Some(SIM_ORIGIN.to_ascii_uppercase()),
            // An allowed origin with a suffix: a prefix match lets it through.
            _ => Some(format!("{SIM_ORIGIN}.evil.example")),
        };
        let req = match &spoofed {
            Some(origin) => req.header("Origin", origin),
            None => req,
        };
        let truth = if self.config.limits.origin_allow_list.is_empty() {
            truth
        } else {
            CredTruth::Bad("spoofed-origin")
        };
        self.handshake(i, req, truth);
    }

    /// [`Op::BadHandshake`]: an upgrade request with the client's valid token that breaks a
    /// rule the gateway checks before the token: another path (`WS-PATH`), one header or one
    /// byte past the bounds (`WS-HANDSHAKE-BOUNDS`), the token in `?token=` (`WS-QUERY-TOKEN`)
    /// or in a `jwt.<token>` subprotocol offered without `jwt` (`WS-SUBPROTO-JWT-REQUIRED`).
    fn bad_handshake(&mut self, i: ClientId, access: &str, variant: u64) {
        let Some(valid) = self.clients[i].auth.tokens().map(|t| t.truth.clone()) else {
            return;
        };
        let base = client_request(i).header("Origin", SIM_ORIGIN);
        let bearer =
            |req: HandshakeRequest| req.header("Authorization", &format!("Bearer {access}"));
        let refused = |what, codes| CredTruth::Refused { what, codes };
        let (req, truth) = match variant % 5 {
            0 => {
                let mut req = bearer(base);
                let paths = ["/", "/ws/", "/WS", "/wss", "/ws/../admin"];
                req.path = paths[usize::try_from(variant / 5).unwrap_or(0) % paths.len()].into();
                (req, refused("wrong-path", &["not_found"]))
            }
            1 => {
                let req = (0..MAX_HEADERS)
                    .fold(bearer(base), |r, k| r.header(&format!("x-pad-{k}"), "1"));
                (req, refused("too-many-headers", &["handshake_too_large"]))
            }
            2 => {
                let req = bearer(base);
                let used: usize = req
                    .headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
                    + req.path.len();
                let name = "x-pad";
                let pad = (MAX_HANDSHAKE_BYTES + 1).saturating_sub(used + name.len());
                (
                    req.header(name, &"p".repeat(pad)),
                    refused("oversized", &["handshake_too_large"]),
                )
            }
            3 => {
                let req = base.with_query(&format!("token={access}"));
                // With query tokens enabled this is an honest handshake.
                let truth = if self.config.limits.allow_query_token {
                    valid
                } else {
                    refused("query-token", &["query_token_disabled"])
                };
                (req, truth)
            }
            _ => {
                let req = base.header("Sec-WebSocket-Protocol", &token_subprotocol(access));
                (
                    req,
                    refused("jwt-not-offered", &["jwt_subprotocol_required"]),
                )
            }
        };
        self.handshake(i, req, truth);
    }

    /// [`Op::EnvelopeAbuse`]: on one's own connection, a `ping` or `heartbeat` with a
    /// `message_id` the reply must echo, one with a `message_id` over the bound, a
    /// `user_message` whose envelope and payload name `victim` as `user_id`, (from anyone but
    /// the operator) a `broadcast`, a `user_message` one byte over the content bound, or one
    /// message more at once than a user may have runs in progress. The envelope checker
    /// judges the answers, the limits checker the runs they start.
    fn envelope_abuse(&mut self, i: ClientId, conn: ConnId, victim: &UserId, variant: u64) {
        let n = self.ops;
        let text = match variant % 7 {
            0 => ClientFrame::Ping.to_json(Some(&message_id(Tagged::Ping, conn, n))),
            1 => ClientFrame::Heartbeat.to_json(Some(&message_id(Tagged::Heartbeat, conn, n))),
            2 => ClientFrame::Ping.to_json(Some(&message_id(Tagged::Overlong, conn, n))),
            3 => {
                let sender = &self.clients[i].user;
                if sender == victim {
                    return;
                }
                serde_json::json!({
                    "type": "user_message",
                    "message_id": message_id(Tagged::Impersonation, conn, n),
                    "user_id": victim.as_str(),
                    "payload": {
                        "content": format!("{IMPERSONATION_TASK}{sender}"),
                        "user_id": victim.as_str(),
                    },
                })
                .to_string()
            }
            4 => {
                if i == ClientId::OPS {
                    return;
                }
                ClientFrame::Broadcast {
                    text: UNPRIVILEGED_NOTICE.into(),
                }
                .to_json(None)
            }
            // MSG-LIMITS: content one byte over the bound.
            5 => ClientFrame::UserMessage {
                content: "x".repeat(self.config.limits.max_content_bytes + 1),
                thread_id: None,
            }
            .to_json(None),
            // MSG-LIMITS: one run more than a user may have in progress, at once.
            _ => {
                for k in 0..=self.config.limits.max_active_runs_per_user {
                    let text = ClientFrame::UserMessage {
                        content: format!("burst {k}"),
                        thread_id: None,
                    }
                    .to_json(None);
                    self.up(conn, Up::Text(conn, text.into_bytes()));
                }
                return;
            }
        };
        self.up(conn, Up::Text(conn, text.into_bytes()));
    }

    /// A ticket an [`Op::LateTicket`] asked for came: present it once its lifetime is over.
    /// It was issued before this answer arrived, so it has expired by the time it reaches
    /// the gateway; a sweep may have removed it by then (`unknown_ticket`).
    fn late_ticket(&mut self, i: ClientId, ticket: String) {
        let ttl = Duration::from_millis(self.config.limits.ticket_ttl_ms);
        self.after(ttl, Ev::LateTicket(i, ticket));
    }

    /// [`Ev::LateTicket`]: present the expired ticket. Never accepted (`WS-TICKET-TTL`).
    pub(super) fn present_late_ticket(&mut self, i: ClientId, ticket: &str) {
        let req = client_request(i)
            .header("Origin", SIM_ORIGIN)
            .with_query(&format!("ticket={ticket}"));
        let truth = CredTruth::Refused {
            what: "expired-ticket",
            codes: &["ticket_expired", "unknown_ticket"],
        };
        self.handshake(i, req, truth);
    }

    pub(super) fn deliver_to_client(&mut self, i: ClientId, down: Down) {
        match down {
            Down::Verdict(conn, HandshakeDecision::Accept { .. }) => {
                let known = self.clients[i].conns.contains(&conn);
                let Some(c) = self.clients.conns.get_mut(&conn).filter(|_| known) else {
                    // The client gave up on this handshake: close the socket the server opened.
                    return self.after(Duration::from_millis(1), Ev::ToGateway(Up::Closed(conn)));
                };
                c.open();
                let last = self.clients[i].last_seq;
                if last > 0 {
                    self.observe(&Obs::ResumeSent {
                        conn,
                        last_seq: last,
                    });
                    self.send_frame(
                        conn,
                        &ClientFrame::Resume {
                            last_seq: Seq::new(last),
                        },
                    );
                }
            }
            Down::Verdict(conn, HandshakeDecision::Reject { status, code, .. }) => {
                self.clients.drop_conn(i, conn);
                let c = &mut self.clients[i];
                if status.as_u16() == 401
                    && matches!(
                        code,
                        "expired" | "revoked" | "key_retired" | "unknown_key" | "too_old"
                    )
                {
                    c.auth.take_tokens();
                }
            }
            Down::Frame(conn, frame) => self.on_frame(i, conn, frame),
            Down::Close(conn, code) => {
                // Only a client still holding the connection hears of its close: one it
                // closed itself is gone from its side.
                if self.clients.conns.get(&conn).and_then(Conn::user).is_some() {
                    self.observe(&Obs::ClientClosed { conn, code });
                }
                self.clients.drop_conn(i, conn);
                let now = self.now;
                let c = &mut self.clients[i];
                if code == Some(1008) && c.auth.tokens().is_some_and(|t| now >= t.access_exp) {
                    c.auth.take_tokens();
                }
            }
            Down::Ticket(ask, ticket) => {
                // The truth of the token the ticket was asked with, not of whatever token the
                // client holds now: it may have signed in again meanwhile.
                let truth = self.clients[i].ticket_answered(ask);
                let late = self.clients[i].late_asks.remove(&ask);
                match (ticket, truth) {
                    (Some(ticket), Some(_)) if late => self.late_ticket(i, ticket),
                    (Some(ticket), Some(truth)) => {
                        self.connect_with(i, &ticket, truth, Method::Ticket);
                    }
                    _ => {}
                }
            }
            Down::HandshakeTimeout(conn) => {
                if self.clients.conns.get(&conn).is_some_and(|c| !c.is_open()) {
                    self.clients.drop_conn(i, conn);
                }
            }
        }
    }

    fn on_frame(&mut self, i: ClientId, conn: ConnId, frame: Arc<str>) {
        // The session's user is borrowed from `conns` while only the checkers change: a frame
        // costs no id clone.
        let Some(user) = self.clients.conns.get(&conn).and_then(Conn::user) else {
            return;
        };
        let json = FrameView::parse(&frame);
        let obs = Obs::Frame {
            conn,
            session_user: user,
            frame: &frame,
            json: &json,
        };
        if let Err(f) = check(self.failure.is_some(), &mut self.witness, &obs) {
            self.fail(f);
        }
        let slow = self.clients[i].slow;
        if slow {
            // A slow reader takes `slow_consumer_delay_ms` per frame, one after another.
            let delay = Duration::from_millis(self.sc.faults.slow_consumer_delay_ms);
            if let Some(c) = self.clients.conns.get_mut(&conn) {
                c.unread += 1;
                let at = self.now.saturating_add(
                    delay.saturating_mul(u32::try_from(c.unread).unwrap_or(u32::MAX)),
                );
                self.at(at, Ev::Consumed(conn, 1));
            }
        } else {
            self.gw(gauntlet_core::Input::Sent { conn, frames: 1 });
        }
        let kind = json.kind();
        let c = &mut self.clients[i];
        if let Some(seq) = json.seq() {
            if seq == c.last_seq + 1 {
                c.last_seq = seq;
                while c.ahead.remove(&(c.last_seq + 1)) {
                    c.last_seq += 1;
                }
            } else if seq > c.last_seq {
                c.ahead.insert(seq);
            }
        }
        match kind {
            "message_accepted" => {
                if let Some(run) = json.run_id().and_then(RunId::parse) {
                    c.run_accepted(run);
                }
                if let Some(t) = json.thread_id().and_then(ThreadId::parse)
                    && !c.threads.contains(&t)
                    && c.threads.len() < 32
                {
                    push_exact(&mut c.threads, t);
                }
            }
            "agent_completed" | "agent_failed" | "agent_cancelled" => {
                if let Some(run) = json.run_id().and_then(RunId::parse) {
                    c.runs.retain(|r| *r != run);
                }
            }
            "reauthenticated" => {
                // The answer names the token's `exp`: it tells which pending `reauth` of this
                // connection it answers; the session's own user's wins a tie.
                let exp = json.exp();
                let matches = |(on, truth): &(ConnId, CredTruth)| {
                    *on == conn
                        && match truth {
                            CredTruth::Access { exp: e, .. } => Some(e.unix_secs()) == exp,
                            _ => true,
                        }
                };
                let user = self.clients.conns.get(&conn).and_then(Conn::user).cloned();
                let c = &mut self.clients[i];
                let own = c.reauths.iter().position(|p| {
                    matches(p)
                        && matches!(&p.1, CredTruth::Access { user: u, .. } if Some(u) == user.as_ref())
                });
                let k = own.or_else(|| c.reauths.iter().position(matches));
                if let (Some(k), Some(user)) = (k, user) {
                    let truth = c.reauth_answered(k);
                    self.observe(&Obs::Reauthed {
                        at: self.now,
                        conn,
                        session_user: &user,
                        truth: &truth,
                    });
                }
            }
            // Only a broadcast of this client's own can be refused for the permission.
            "error" if json.code() == Some("FORBIDDEN") && frame.contains("system:broadcast") => {
                match self.clients[i].grant {
                    Some(grant) if i == ClientId::OPS => self.fail(Failure::new(
                        "envelope",
                        format!("the operator, holding {grant}, was refused a broadcast"),
                    )),
                    Some(grant) => self.observe(&Obs::AuthFlow {
                        rule: refused_grant_rule(grant),
                    }),
                    None => {}
                }
            }
            "error" if json.code() == Some("RESUME_GAP") => {
                if let Some(oldest) = json.oldest_seq() {
                    c.last_seq = c.last_seq.max(oldest.saturating_sub(1));
                    c.ahead.retain(|s| *s > oldest);
                }
            }
            _ => {}
        }
    }

    fn auth_request(&mut self, i: ClientId, call: AuthCall) {
        self.ask_auth(i, call, false);
    }

    /// Sends `call` to the auth service unless client `i` already waits for an answer;
    /// `relogin` marks a password change's logout-everywhere (see [`AuthState::Asking`]).
    fn ask_auth(&mut self, i: ClientId, call: AuthCall, relogin: bool) {
        if !self.clients[i].auth.ask(relogin) {
            return;
        }
        let tx = self
            .net
            .send(self.now, NodeId::client(i.get()), NodeId::AUTH, Sized(512));
        let mut delivered = false;
        for (at, _) in tx.into_iter().take(1) {
            delivered = true;
            self.at(at, Ev::AuthCall(i, call.clone()));
        }
        if !delivered || self.auth.down {
            self.after(HANDSHAKE_TIMEOUT, Ev::AuthAnswer(i, AuthAnswer::Failed));
        }
    }

    pub(super) fn auth_call(&mut self, i: ClientId, call: AuthCall) {
        if self.auth.down {
            return self.after(HANDSHAKE_TIMEOUT, Ev::AuthAnswer(i, AuthAnswer::Failed));
        }
        let now = self.auth_now();
        let user = self.clients[i].user.clone();
        let perms = self.clients[i]
            .grant
            .and_then(Permission::parse)
            .and_then(|p| Permissions::new(vec![p]))
            .unwrap_or_else(Permissions::empty);
        let answer = match call {
            AuthCall::Login => self
                .judged_login(now, &user, perms)
                .map_or(AuthAnswer::Failed, |p| AuthAnswer::Tokens(Box::new(p), now)),
            AuthCall::OAuthLogin => match self.oauth_flow(now, &user, &perms) {
                Some(p) => AuthAnswer::Tokens(Box::new(p), now),
                None => AuthAnswer::Failed,
            },
            AuthCall::Refresh(token) => match self.judged_refresh(now, i, &token) {
                Ok(pair) => AuthAnswer::Tokens(Box::new(pair), now),
                Err(_) => AuthAnswer::Failed,
            },
            AuthCall::ConcurrentRefresh(token) => match self.concurrent_refresh(now, i, &token) {
                Some(pair) => AuthAnswer::Tokens(Box::new(pair), now),
                None => AuthAnswer::Failed,
            },
            AuthCall::RefreshStorm => {
                self.refresh_storm(now, &user, perms);
                AuthAnswer::Failed
            }
            AuthCall::LateReuseSetup => match self.steal_short_session(now, &user, perms) {
                Some(pair) => AuthAnswer::Stolen(Box::new(pair), now),
                None => AuthAnswer::Failed,
            },
            AuthCall::RefreshReuse { token, stolen } => {
                self.refresh_reuse(now, &user, &token, stolen.as_ref());
                AuthAnswer::Failed
            }
            AuthCall::Logout { jti, exp } => {
                if let Some(jti) = Jti::parse(&jti) {
                    self.auth.service.revoke(now, &jti, exp);
                }
                AuthAnswer::LoggedOut
            }
            AuthCall::LogoutEverywhere => {
                self.auth.service.logout_everywhere(now, &user);
                self.observe(&Obs::LoggedOutEverywhere {
                    at: self.now,
                    auth_at: now,
                    user: &user,
                });
                AuthAnswer::LoggedOut
            }
            AuthCall::OAuthAttack(attack) => {
                self.oauth_attack(now, &user, &perms, attack);
                AuthAnswer::Failed
            }
        };
        self.publish_revocations();
        let tx = self
            .net
            .send(self.now, NodeId::AUTH, NodeId::client(i.get()), Sized(512));
        match tx.into_iter().next() {
            Some((at, _)) => self.at(at, Ev::AuthAnswer(i, answer)),
            None => self.after(HANDSHAKE_TIMEOUT, Ev::AuthAnswer(i, AuthAnswer::Failed)),
        }
    }

    /// [`AuthCall::LateReuseSetup`] at auth time `now`: a short session for `user`, whose
    /// refresh token is rotated at once (the victim refreshed); the first pair, the one
    /// the thief keeps, when both calls succeed.
    fn steal_short_session(
        &mut self,
        now: Instant,
        user: &UserId,
        perms: Permissions,
    ) -> Option<TokenPair> {
        let service = &mut self.auth.service;
        let pair = service.login_for(now, user, perms, LATE_REUSE_TTL).ok()?;
        service.refresh(now, pair.refresh.token.as_bytes()).ok()?;
        self.auth.refreshed.insert(&pair.refresh.token);
        Some(pair)
    }

    pub(super) fn auth_answer(&mut self, i: ClientId, answer: AuthAnswer) {
        let now = self.now;
        let c = &mut self.clients[i];
        let relogin = c.auth.answered();
        match answer {
            AuthAnswer::Tokens(pair, minted) => {
                // Whatever it waited for, it is signed in now: a late sign-in answer during
                // a password change's logout ends that wait too (seen in no run so far).
                c.auth = AuthState::SignedIn(tokens_of(&c.user, &pair, minted));
            }
            AuthAnswer::Stolen(pair, minted) => {
                // Come back a second past the stolen access token's `exp` on the issuer's
                // clock, inside the leeway.
                let stolen = tokens_of(&c.user, &pair, minted);
                let until_exp = stolen.access_exp.saturating_since(self.auth.now(now));
                let when = now
                    .saturating_add(until_exp)
                    .saturating_add(Duration::from_secs(1));
                c.late_reuse = Some(Box::new(LateReuse::Reuse { when, stolen }));
                self.at(when, Ev::LateReuse(i));
            }
            AuthAnswer::Failed => {
                if c.auth
                    .tokens()
                    .is_some_and(|t| now.saturating_add(Duration::from_secs(20)) >= t.access_exp)
                {
                    c.auth.take_tokens();
                }
            }
            AuthAnswer::LoggedOut => {
                // A password change signs in again right away, within the logout's second.
                if relogin {
                    self.auth_request(i, AuthCall::Login);
                }
            }
        }
    }
}

/// The tokens of `pair`, issued to `user` at auth-service time `minted`.
fn tokens_of(user: &UserId, pair: &TokenPair, minted: Instant) -> Tokens {
    let (nbf, iat) = workload::nbf_iat_of(&pair.access.token);
    Tokens {
        access: pair.access.token.clone(),
        truth: CredTruth::Access {
            user: user.clone(),
            jti: pair.access.jti.clone(),
            minted,
            exp: pair.access.exp,
            kid: workload::kid_of(&pair.access.token),
            family: Some(pair.family.clone()),
            foreign_iat: None,
            nbf,
            iat,
        },
        refresh: pair.refresh.token.clone(),
        access_exp: pair.access.exp,
    }
}

/// An upgrade request from client `i`'s own address, with no credential and no origin yet.
fn client_request(i: ClientId) -> HandshakeRequest {
    HandshakeRequest::new(peer_of(i))
}

/// Client `i`'s own address, the peer of every request it sends.
pub(super) fn peer_of(i: ClientId) -> std::net::IpAddr {
    let i = i.get();
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(
        10,
        (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8,
    ))
}

/// Whether `req`'s credential is a `jwt.<token>` subprotocol offered beside `jwt`: no
/// `Authorization` header comes before it (`WS-CRED-ORDER`) and the offer holds both.
fn token_in_subprotocol(req: &HandshakeRequest) -> bool {
    req.header_value("authorization").is_none()
        && req.subprotocols().any(|s| s == JWT_SUBPROTOCOL)
        && req.subprotocols().any(|s| s.starts_with("jwt."))
}

/// Draws one of `ops` by `mix`'s weights from `rng` (none when they all weigh 0).
fn pick(mix: &Mix, rng: &mut SimRng, ops: &[Op]) -> Option<Op> {
    let total: u64 = ops.iter().map(|o| u64::from(mix.weight(*o))).sum();
    if total == 0 {
        return None;
    }
    let mut r = rng.range(0..total);
    for op in ops {
        let w = u64::from(mix.weight(*op));
        if r < w {
            return Some(*op);
        }
        r -= w;
    }
    None
}
