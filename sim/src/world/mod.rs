//! The simulated world: one gateway, one auth service and many clients on a simulated
//! network, driven by a discrete-event scheduler from one seed.
//!
//! The world is a thin driver: every protocol, auth and routing decision is made by
//! `gauntlet-core` (`Gateway`, `AuthService`); the world only moves real bytes between
//! nodes, injects faults, chooses client behaviour from the seed, and feeds what it sees to
//! the invariant checkers. A run has a safety phase (faults on, invariants checked after every
//! step) and a liveness phase (faults off, network healed, clients only recover), then drains
//! the network and checks what must hold at quiescence, including that the gateway's log
//! replays to the live state hash.
//!
//! The world is the simulator; its parts each own one side of the system and live in a file
//! of their own: the gateway node (`gateway_node`), the auth node (`auth_node`) and the other
//! signers of the key set it publishes (`partner_keys`), the client
//! population (`population`) and the trace spans (`spans`). The world owns the scheduler, the
//! network and the checkers, and is the only one that moves anything between the parts.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use gauntlet_core::auth_service::TokenPair;
use gauntlet_core::protocol::HandshakeRequest;
use gauntlet_core::token::{Environment, TokenRules};
use gauntlet_core::{
    AuthUpdate, Checkpoint, Config, ConnId, Gateway, HandshakeDecision, Input, Instant,
    JournalLine, Plants, UserId,
};

use crate::checker::{Checkers, Failure, Obs};
use crate::faults::Fault;
use crate::id_map::UserMap;
use crate::network::{Network, NodeId, Payload};
use crate::rng::SimRng;
use crate::scenario::{Op, Scenario};
use crate::witness::{Fold, Offload, Witness};
use attack_table::AttackTable;
use auth_flows::OAuthAttack;
use auth_node::AuthNode;
use gateway_node::GatewayNode;
use phase::Phase;
use population::{Client, ClientId, ConnState, Population};
pub use sink::{NoSink, Sink};
use spans::Spans;

/// Where simulated time starts (a fixed, realistic Unix time: 2027-01-15).
pub const EPOCH_SECS: u64 = 1_800_000_000;
/// How long the liveness phase lasts after the safety phase.
pub const LIVENESS: Duration = Duration::from_secs(30);
/// Events kept for the violation report.
const RECENT: usize = 24;
/// Scheduler capacity: a run that needs more is a bug in the world.
const MAX_QUEUED: usize = 4_000_000;
/// How often the auth service pushes its revocation feed to the gateway.
const FEED_EVERY: Duration = Duration::from_secs(1);
/// Arrival times of a user's corrupted frames kept: a stop the corruption may have made
/// happens when its frame arrives, so only the latest few can still excuse one.
const MAX_CORRUPTED_ARRIVALS: usize = 8;
/// How often the sink hears how far simulated time has got (in steps; a power of two).
const PROGRESS_EVERY: u64 = 1 << 16;
/// A handshake that got no answer is abandoned after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the checkers say of `obs`; nothing once the run has failed, since the first violation
/// is the one reported. Takes the witness alone so a caller may hold other parts of the
/// world borrowed meanwhile.
fn check(failed: bool, witness: &mut Witness, obs: &Obs<'_>) -> Result<(), Failure> {
    if failed { Ok(()) } else { witness.observe(obs) }
}

/// Something scheduled.
enum Ev {
    Wake(ClientId),
    /// A step of client `i`'s [`Op::LateReuse`] is due (it runs at once unless the client
    /// waits on the auth service; then its next wake runs it).
    LateReuse(ClientId),
    /// Client `i` presents a ticket it held past its lifetime ([`Op::LateTicket`]).
    LateTicket(ClientId, String),
    ToGateway(Up),
    ToClient(ClientId, Down),
    AuthCall(ClientId, AuthCall),
    AuthAnswer(ClientId, AuthAnswer),
    Consumed(ConnId, usize),
    GatewayTimer(u64),
    FeedPoll,
    FeedArrives {
        as_of: Instant,
        upto: usize,
    },
    Fault(Fault),
    GatewayRestart,
    AuthBack,
    SafetyEnds,
    LivenessEnds,
}

enum Up {
    /// Boxed: every queued event is as large as the largest variant, and handshakes are rare.
    Handshake(ConnId, Box<HandshakeRequest>),
    Text(ConnId, Vec<u8>),
    Binary(ConnId),
    /// A WebSocket ping control frame.
    Ping(ConnId),
    Closed(ConnId),
    /// `POST /tickets` from a client with its token; `true` when the client hoards the
    /// ticket instead of redeeming it (a ticket flood); the client's ask number.
    Ticket(ClientId, String, bool, u32),
}

enum Down {
    Verdict(ConnId, HandshakeDecision),
    Frame(ConnId, Arc<str>),
    Close(ConnId, Option<u16>),
    /// The answer to the client's ticket request of that ask number.
    Ticket(u32, Option<String>),
    HandshakeTimeout(ConnId),
}

#[derive(Clone)]
enum AuthCall {
    Login,
    OAuthLogin,
    Refresh(String),
    Logout {
        jti: String,
        exp: Instant,
    },
    LogoutEverywhere,
    /// Two refreshes of one refresh token that reach the auth service together.
    ConcurrentRefresh(String),
    OAuthAttack(OAuthAttack),
    /// A used refresh token presented again; `stolen` is an access token of its family
    /// (id and `exp`) that the family's revocation must cover.
    RefreshReuse {
        token: String,
        stolen: Option<(gauntlet_core::Jti, Instant)>,
    },
    /// The setup of [`Op::LateReuse`]: a short session signed in and its refresh token
    /// rotated at once (the victim refreshed; the thief kept the first pair).
    LateReuseSetup,
    /// [`Op::RefreshStorm`]: a family of its own rotated until it is exhausted.
    RefreshStorm,
}

enum AuthAnswer {
    /// New tokens, minted at this auth-service time.
    Tokens(Box<TokenPair>, Instant),
    /// A [`AuthCall::LateReuseSetup`]'s first pair, its refresh token already rotated away,
    /// minted at this auth-service time.
    Stolen(Box<TokenPair>, Instant),
    Failed,
    LoggedOut,
}

/// A message's size for the network model (control messages are small).
#[derive(Clone)]
struct Sized(usize);

impl Payload for Sized {
    fn wire_len(&self) -> usize {
        self.0
    }
    fn corrupt(&mut self, _rng: &mut SimRng) -> bool {
        false
    }
}

/// The result of one run.
pub struct RunResult {
    /// Events processed.
    pub events: u64,
    /// Virtual time covered.
    pub simulated: Duration,
    /// Final gateway state hash (hex).
    pub state_hash: String,
    /// The first violation.
    pub violation: Option<crate::outcome::Violation>,
    /// Client operations performed.
    pub ops: u64,
    /// Gateway log entries.
    pub log_entries: usize,
    /// Coverage marks: how often each protocol rule's path was seen to run, by rule id.
    pub marks: BTreeMap<&'static str, u64>,
}

/// The world.
pub struct World<'s> {
    sc: Scenario,
    config: Config,
    now: Instant,
    start: Instant,
    sched: crate::clock::Scheduler<Ev>,
    net: Network,
    rng: SimRng,
    gateway: GatewayNode,
    /// The checkers and the fold of the log so far (what a restart and the final replay
    /// check start from, so the world never keeps or refolds the whole log).
    witness: Witness,
    auth: AuthNode,
    /// The attack table the adversaries present cases of ([`Op::TableAttack`]).
    attack_table: AttackTable,
    clients: Population,
    /// When corrupted frames of each user reach the gateway (their intent is unknown), the
    /// latest [`MAX_CORRUPTED_ARRIVALS`] per user.
    corrupted_senders: UserMap<VecDeque<Instant>>,
    spans: Spans,
    recent: VecDeque<String>,
    /// The scenario's mix as this seed weights it ([`crate::scenario::Mix::swarmed`]).
    mix: crate::scenario::Mix,
    /// The operations a woken client draws from, by `mix`: honest, then attacks
    /// (computed once: the mix never changes during a run).
    menus: [Vec<Op>; 2],
    steps: u64,
    ops: u64,
    phase: Phase,
    failure: Option<(Failure, u64, Vec<String>)>,
    sink: &'s mut dyn Sink,
}

fn user_name(i: u32) -> UserId {
    let name = if i == 0 {
        "ops".to_string()
    } else {
        format!("u{i}")
    };
    UserId::parse(&name).unwrap_or_else(|| unreachable!("generated user ids are valid"))
}

/// Per-connection send queue in simulated runs: far below the production 1024 so that slow
/// consumers overflow within seconds and the 1013-then-resume path runs in most seeds.
pub const SIM_SEND_QUEUE: usize = 16;

/// Outbox retention (`limits.outbox_max_events`) of the seeds that draw a small outbox: a
/// client behind by more than a few dozen events then resumes past the retained stream, so
/// `RESUME_GAP` is sent (with the production 10 000 no run of minutes ever gets there).
pub const SIM_SMALL_OUTBOX: std::ops::Range<u64> = 16..33;
/// Share of seeds that draw a small outbox ([`SIM_SMALL_OUTBOX`]); the rest keep the
/// production retention, so long resumes are replayed in full.
pub const SIM_SMALL_OUTBOX_SHARE: f64 = 0.25;

/// The `Origin` honest simulated clients send, and the only entry of the allow-list of the
/// seeds that configure one ([`SIM_ORIGIN_LIST_SHARE`]).
pub const SIM_ORIGIN: &str = "https://app.example";
/// Share of seeds whose gateway has an Origin allow-list (`WS-ORIGIN`), so spoofed origins
/// must be refused there; the other seeds keep the default of no check.
pub const SIM_ORIGIN_LIST_SHARE: f64 = 0.5;

/// Share of seeds whose gateway runs near its global bounds: at most [`SIM_TIGHT_CONNECTIONS`]
/// open connections (`WS-CAP-GLOBAL`), [`SIM_TIGHT_TRACKED_IPS`] tracked peer addresses
/// (`WS-IP-TRACK-BOUND`) and [`SIM_TIGHT_CACHED_TOKENS`] cached validations
/// (`AUTH-CACHE-BOUND`), where production allows 200 000, 100 000 and 100 000, which no run
/// of a few hundred users comes near, and an auth service with small OAuth stores
/// ([`SIM_TIGHT_OAUTH_ENTRIES`]). The rest keep the production bounds.
pub const SIM_TIGHT_SHARE: f64 = 0.25;
/// The global connection bound of the tight seeds (about the peak of 100 users with tabs).
pub const SIM_TIGHT_CONNECTIONS: std::ops::Range<u64> = 40..160;
/// The tracked-address bound of the tight seeds (every simulated client has an address).
pub const SIM_TIGHT_TRACKED_IPS: std::ops::Range<u64> = 8..24;
/// The validation-cache bound of the tight seeds (every simulated user holds a token or two).
pub const SIM_TIGHT_CACHED_TOKENS: std::ops::Range<u64> = 16..64;
/// The OAuth state and code capacities of the tight seeds' auth service (production: 10 000
/// each): forged-state attacks leave states pending for ten minutes, so the store fills
/// (`OAUTH-STORES-BOUNDED`).
pub const SIM_TIGHT_OAUTH_ENTRIES: std::ops::Range<u64> = 4..16;

/// The bounds of a seed that runs near them ([`SIM_TIGHT_SHARE`]).
pub(crate) struct TightBounds {
    connections: usize,
    tracked_ips: usize,
    cached_tokens: usize,
    /// Pending OAuth states, and unredeemed codes, the auth service holds.
    pub(crate) oauth_entries: usize,
}

/// The tight bounds of `seed`, if it draws them: from a stream of its own, so the draw
/// depends on the seed alone.
pub(crate) fn tight_bounds(seed: u64) -> Option<TightBounds> {
    let mut tight = SimRng::new(seed).fork("tight");
    if !tight.chance(SIM_TIGHT_SHARE) {
        return None;
    }
    let mut draw = |range| usize::try_from(tight.range(range)).unwrap_or(usize::MAX);
    Some(TightBounds {
        connections: draw(SIM_TIGHT_CONNECTIONS),
        tracked_ips: draw(SIM_TIGHT_TRACKED_IPS),
        cached_tokens: draw(SIM_TIGHT_CACHED_TOKENS),
        oauth_entries: draw(SIM_TIGHT_OAUTH_ENTRIES),
    })
}

/// The gateway config every simulated run uses: protocol defaults, the `test` environment's
/// short token lifetimes (so expiry and refresh happen within minutes), a small send queue
/// ([`SIM_SEND_QUEUE`]), for some seeds a small outbox ([`SIM_SMALL_OUTBOX`]), an Origin
/// allow-list ([`SIM_ORIGIN`]) or tight global bounds ([`SIM_TIGHT_SHARE`]), and the run's
/// seed.
pub fn gateway_config(seed: u64) -> Config {
    let mut config = Config::default();
    config.tokens.environment = Environment::Test;
    config.limits.send_queue_capacity = SIM_SEND_QUEUE;
    // A stream of its own, so the draw depends on the seed alone, never on the world's.
    let mut outbox = SimRng::new(seed).fork("outbox");
    if outbox.chance(SIM_SMALL_OUTBOX_SHARE) {
        let events = outbox.range(SIM_SMALL_OUTBOX);
        config.limits.outbox_max_events = usize::try_from(events).unwrap_or(usize::MAX);
    }
    if SimRng::new(seed)
        .fork("origin")
        .chance(SIM_ORIGIN_LIST_SHARE)
    {
        config.limits.origin_allow_list = vec![SIM_ORIGIN.to_string()];
    }
    if let Some(t) = tight_bounds(seed) {
        config.limits.max_connections = t.connections;
        config.limits.max_tracked_ips = t.tracked_ips;
        config.limits.max_cached_tokens = t.cached_tokens;
    }
    config.seed = seed;
    config
}

impl<'s> World<'s> {
    /// Builds the world for `sc` with its first events scheduled; nothing happens until
    /// [`World::run`] or [`World::step`].
    /// `offload` says where the checks and the log's fold run; a run that passes is the same
    /// either way.
    pub fn new(
        sc: Scenario,
        plants: Plants,
        offload: Offload,
        sink: &'s mut dyn Sink,
    ) -> Result<Self, String> {
        let config = gateway_config(sc.seed);
        let root = SimRng::new(sc.seed);
        let start = Instant::from_unix_secs(EPOCH_SECS);
        let rules: TokenRules = config.tokens.clone();
        let (auth, ring) = AuthNode::new(sc.seed, &sc.faults, &rules, &root, plants)?;
        let gateway =
            Gateway::with_plants(config.clone(), ring, plants).map_err(|e| e.to_string())?;
        let checkpoint = Checkpoint::new(config.clone(), plants).map_err(|e| e.to_string())?;
        let net = Network::new(sc.faults.link_config(), root.fork("network"));
        let mut wl = root.fork("workload");
        let adversaries = ((f64::from(sc.users) * sc.adversary_share).round() as u32)
            .min(sc.users.saturating_sub(1));
        let clients = (0..sc.users)
            .map(|i| {
                let adversary = i >= sc.users - adversaries;
                Client::new(
                    user_name(i),
                    (adversary, wl.chance(sc.faults.slow_consumer)),
                    root.fork_indexed("client", u64::from(i)),
                    population::grant_for(
                        i,
                        adversary,
                        &mut root.fork_indexed("grant", u64::from(i)),
                    ),
                    start,
                )
            })
            .collect();
        let witness = Witness::new(Checkers::new(&config), checkpoint, offload);
        let mix = sc.mix.swarmed(sc.seed);
        let mut w = World {
            sched: crate::clock::Scheduler::new(start, MAX_QUEUED),
            config,
            now: start,
            start,
            net,
            rng: wl,
            gateway: GatewayNode::new(gateway),
            witness,
            auth,
            attack_table: AttackTable::new(root.fork("attack-table").next_u64()),
            clients: Population::new(clients),
            corrupted_senders: UserMap::default(),
            spans: Spans::new(sink.keeps_spans()),
            recent: VecDeque::new(),
            menus: [false, true].map(|attack| {
                mix.active()
                    .filter(|o| o.is_attack() == attack && *o != Op::OAuthLogin)
                    .collect()
            }),
            mix,
            steps: 0,
            ops: 0,
            phase: Phase::Safety,
            failure: None,
            sink,
            sc,
        };
        w.sink.journal(&JournalLine::Header {
            schema: gauntlet_core::JOURNAL_SCHEMA,
            config: Box::new(w.config.clone()),
            plants,
        });
        w.schedule_start();
        Ok(w)
    }

    fn auth_now(&self) -> Instant {
        self.auth.now(self.now)
    }

    fn at(&mut self, at: Instant, ev: Ev) {
        // The scheduler refuses only the past (a world bug) or overflow (bounded by design).
        let at = at.max(self.now);
        if self.sched.schedule(at, ev).is_err() {
            self.fail(Failure::new("bounds", "simulation event queue overflow"));
        }
    }

    fn after(&mut self, d: Duration, ev: Ev) {
        let at = self.now.saturating_add(d);
        self.at(at, ev);
    }

    fn note(&mut self, what: std::fmt::Arguments<'_>) {
        // The oldest line's buffer is reused: a note per operation must not allocate.
        let mut line = if self.recent.len() == RECENT {
            self.recent.pop_front().unwrap_or_default()
        } else {
            String::new()
        };
        line.clear();
        let ms = self.now.saturating_since(self.start).as_millis();
        // Writing into a String cannot fail.
        let _ = write!(line, "{ms} {what}");
        self.recent.push_back(line);
    }

    fn fail(&mut self, f: Failure) {
        if self.failure.is_none() {
            self.sink
                .instant(0, &format!("violation: {}", f.invariant), self.now);
            self.failure = Some((f, self.steps, self.recent.iter().cloned().collect()));
        }
    }

    fn observe(&mut self, obs: &Obs<'_>) {
        if let Err(f) = check(self.failure.is_some(), &mut self.witness, obs) {
            self.fail(f);
        }
    }

    /// Runs the scenario to the end and reports.
    pub fn run(mut self) -> RunResult {
        while self.step() {}
        self.finish()
    }

    /// Schedules what a run starts with: the fault timeline, every client's first wake-up,
    /// the first feed poll and the ends of the safety and liveness phases.
    fn schedule_start(&mut self) {
        let safety_end = self.start.saturating_add(self.sc.duration());
        let timeline = self.sc.faults.timeline(
            &SimRng::new(self.sc.seed).fork("faults"),
            self.start,
            self.sc.duration(),
            self.sc.users,
        );
        match timeline {
            Ok(faults) => {
                for f in faults {
                    self.at(f.at, Ev::Fault(f.fault));
                }
            }
            Err(e) => self.fail(Failure::new("config", e.to_string())),
        }
        for i in self.clients.ids() {
            let d = self.rng.uniform_duration(
                Duration::ZERO,
                Duration::from_millis(self.sc.think_ms.max(1)),
            );
            self.after(d, Ev::Wake(i));
        }
        self.after(Duration::ZERO, Ev::FeedPoll);
        self.at(safety_end, Ev::SafetyEnds);
        self.at(safety_end.saturating_add(LIVENESS), Ev::LivenessEnds);
    }

    /// Processes the next event, so a test can drive a world one event at a time; `false`
    /// once the run is over (nothing left to happen, or an invariant failed). Events that
    /// draining drops are skipped without counting as a step.
    pub fn step(&mut self) -> bool {
        while let Some((at, ev)) = self.sched.pop() {
            if self.failure.is_some() {
                return false;
            }
            // Once draining, timers and wake-ups are dropped unseen: only traffic in flight moves.
            if self.phase == Phase::Draining
                && matches!(
                    ev,
                    Ev::Wake(_) | Ev::GatewayTimer(_) | Ev::FeedPoll | Ev::Fault(_)
                )
            {
                continue;
            }
            self.now = at;
            self.steps += 1;
            if self.steps & (PROGRESS_EVERY - 1) == 0 {
                self.sink.progress(self.now.saturating_since(self.start));
            }
            self.dispatch(ev);
            if self.witness.failed() {
                // Reported by running the seed again inline (see `Offload`).
                self.fail(Failure::new(
                    "offload",
                    "an invariant failed on the helper thread",
                ));
            }
            return true;
        }
        false
    }

    /// The gateway's state hash now (hex), or `None` while it is down.
    pub fn state_hash(&self) -> Option<String> {
        self.gateway.running.as_ref().map(Gateway::state_hash)
    }

    /// Ends the run where it is and reports: restores a crashed gateway, checks what must
    /// hold at quiescence and that the log replays to the live state. [`World::run`] is
    /// [`World::step`] until the run is over, then this; called earlier, the quiescence
    /// checks judge a run that has not drained.
    pub fn finish(mut self) -> RunResult {
        if self.gateway.running.is_none() {
            self.restart_gateway();
        }
        // Collected into a B-tree: the hash order of `conns` does not reach the checkers.
        let open: BTreeMap<ConnId, UserId> = self
            .clients
            .conns
            .sorted()
            .into_iter()
            .filter_map(|(id, c)| match &c.state {
                ConnState::Open { user } => Some((*id, user.clone())),
                _ => None,
            })
            .collect();
        if self.failure.is_none()
            && let Some(g) = &self.gateway.running
        {
            let stats = g.stats();
            self.observe(&Obs::Stats(&stats));
        }
        if self.failure.is_none()
            && let Err(f) = self.witness.finish(open, true)
        {
            self.fail(f);
        }
        let state_hash = self
            .gateway
            .running
            .as_ref()
            .map(Gateway::state_hash)
            .unwrap_or_default();
        if self.failure.is_none() {
            // Still a fold of the entire log from an empty gateway, never a copy of live memory;
            // compared state to state, and hashed only to report a difference.
            let verdict = match self.witness.fold().and_then(Fold::checkpoint) {
                Ok(checkpoint)
                    if self
                        .gateway
                        .running
                        .as_ref()
                        .is_some_and(|g| checkpoint.matches(g)) =>
                {
                    None
                }
                Ok(checkpoint) => Some(format!(
                    "log replays to {} but the gateway is at {state_hash}",
                    checkpoint.state_hash()
                )),
                Err(e) => Some(format!("log does not replay: {e}")),
            };
            if let Some(message) = verdict {
                self.fail(Failure::new("replay", message));
            }
        }
        if let Some(g) = &self.gateway.running {
            self.sink.journal(&JournalLine::Footer {
                state_hash: state_hash.clone(),
                last_seq: g.last_log_seq(),
            });
        }
        let violation = self
            .failure
            .map(|(f, step, last_events)| crate::outcome::Violation {
                invariant: f.invariant.to_string(),
                step,
                message: f.message,
                last_events,
            });
        let marks = self.witness.marks();
        RunResult {
            marks,
            events: self.steps,
            simulated: self.now.saturating_since(self.start),
            state_hash,
            violation,
            ops: self.ops,
            log_entries: self.gateway.log_len,
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Wake(i) => {
                if self.phase != Phase::Draining {
                    self.wake(i);
                }
            }
            Ev::LateReuse(i) => self.late_reuse_due(i),
            Ev::LateTicket(i, ticket) => self.present_late_ticket(i, &ticket),
            Ev::ToGateway(up) => self.deliver_to_gateway(up),
            Ev::ToClient(i, down) => self.deliver_to_client(i, down),
            Ev::AuthCall(i, call) => self.auth_call(i, call),
            Ev::AuthAnswer(i, a) => self.auth_answer(i, a),
            Ev::Consumed(conn, n) => {
                if let Some(c) = self.clients.conns.get_mut(&conn) {
                    c.unread = c.unread.saturating_sub(n);
                }
                self.gw(Input::Sent { conn, frames: n });
            }
            Ev::GatewayTimer(generation) => {
                if self.gateway.timer_fired(generation) {
                    self.gw(Input::Tick);
                }
            }
            Ev::FeedPoll => {
                if self.phase != Phase::Draining {
                    self.after(FEED_EVERY, Ev::FeedPoll);
                }
                if !self.auth.down {
                    let (as_of, upto) = (self.now, self.auth.service.feed_end());
                    for (at, _) in self
                        .net
                        .send(self.now, NodeId::AUTH, NodeId::GATEWAY, Sized(64))
                    {
                        self.at(at, Ev::FeedArrives { as_of, upto });
                    }
                }
            }
            Ev::FeedArrives { as_of, upto } => {
                if self.gateway.running.is_some() {
                    let start = self.gateway.feed_to(upto);
                    let revocations: Vec<_> = self
                        .auth
                        .service
                        .feed_since(start)
                        .iter()
                        .take(upto.saturating_sub(start))
                        .map(|(_, r)| r.clone())
                        .collect();
                    self.gw(Input::Auth(AuthUpdate::Feed { as_of, revocations }));
                }
            }
            Ev::Fault(f) => {
                if self.phase == Phase::Safety {
                    self.fault(f);
                }
            }
            Ev::GatewayRestart => {
                if self.gateway.running.is_none() {
                    self.restart_gateway();
                }
            }
            Ev::AuthBack => self.auth.down = false,
            Ev::SafetyEnds => {
                self.phase = Phase::Liveness;
                self.net.heal();
                self.net
                    .set_default(crate::faults::FaultPlan::none().link_config());
                self.auth.down = false;
                if self.gateway.running.is_none() {
                    self.restart_gateway();
                }
                self.note(format_args!(
                    "safety phase over: faults off, network healed"
                ));
            }
            Ev::LivenessEnds => {
                self.phase = Phase::Draining;
                self.gateway.disarm_timer();
                self.observe(&Obs::TimersStopped);
                self.note(format_args!("liveness phase over: draining"));
            }
        }
    }
}

mod attack_table;
mod auth_flows;
mod auth_node;
mod clients;
mod driver;
mod gateway_node;
mod mint_edges;
mod partner_keys;
mod phase;
mod population;
mod sink;
mod spans;
