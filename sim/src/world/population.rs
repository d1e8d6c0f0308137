//! The client population: every simulated client (honest or adversary), the connections
//! they hold, and the runs they asked to stop. It owns the clients' own state and their
//! view of each connection; it never talks to the gateway, the auth service or the
//! network (the world carries messages between them) and never judges what it sees (the
//! checkers do).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::{Index, IndexMut};

use gauntlet_core::{ConnId, Instant, RunId, ThreadId, UserId};

use crate::checker::CredTruth;
use crate::id_map::{ConnMap, IdMap};
use crate::rng::SimRng;

/// A client's place in the population. Only the population makes one, for a client it
/// holds, and clients are never removed: indexing by a `ClientId` cannot miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ClientId(u32);

impl ClientId {
    /// The operator: client 0 signs in as `ops`, the one user allowed to broadcast.
    pub(super) const OPS: ClientId = ClientId(0);

    /// The number the network and the gateway's ticket requests know this client by.
    pub(super) fn get(self) -> u32 {
        self.0
    }

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a connection's handshake is, with who the gateway says it is once it accepted:
/// an open connection always has its user.
pub(super) enum ConnState {
    /// The handshake is on its way or unanswered, or was refused (the refusal is on its way).
    Connecting,
    /// The gateway accepted it as `user`; the 101 is on its way, so the client has not opened
    /// it yet (frames the gateway sends meanwhile still arrive).
    Accepted { user: UserId },
    /// The client has the 101 and sends on it.
    Open { user: UserId },
}

pub(super) struct Conn {
    pub(super) client: ClientId,
    pub(super) state: ConnState,
    pub(super) truth: CredTruth,
    pub(super) last_up: Instant,
    pub(super) last_down: Instant,
    /// Frames delivered but not yet consumed (slow consumers).
    pub(super) unread: usize,
    /// The transport died: nothing more crosses this connection in either direction.
    pub(super) broken: bool,
    /// The handshake's credential is a `jwt.<token>` subprotocol offered beside `jwt`, so an
    /// accepted upgrade must select `jwt` (and otherwise select nothing).
    pub(super) token_in_subprotocol: bool,
}

impl Conn {
    /// A connection for `client`'s handshake, presenting a credential of `truth`.
    pub(super) fn connecting(client: ClientId, truth: CredTruth, now: Instant) -> Self {
        Conn {
            client,
            state: ConnState::Connecting,
            truth,
            last_up: now,
            last_down: now,
            unread: 0,
            broken: false,
            token_in_subprotocol: false,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self.state, ConnState::Open { .. })
    }

    /// Who the gateway says this is, once it accepted it.
    pub(super) fn user(&self) -> Option<&UserId> {
        match &self.state {
            ConnState::Accepted { user } | ConnState::Open { user } => Some(user),
            ConnState::Connecting => None,
        }
    }

    /// The gateway's verdict: accepted as `user`, or refused (`None`).
    pub(super) fn verdict(&mut self, user: Option<UserId>) {
        self.state = match user {
            Some(user) => ConnState::Accepted { user },
            None => ConnState::Connecting,
        };
    }

    /// The client got the 101 of an accepted connection.
    pub(super) fn open(&mut self) {
        self.state = match std::mem::replace(&mut self.state, ConnState::Connecting) {
            ConnState::Accepted { user } => ConnState::Open { user },
            other => other,
        };
    }
}

/// A signed-in client's token pair.
pub(super) struct Tokens {
    pub(super) access: String,
    pub(super) truth: CredTruth,
    pub(super) refresh: String,
    pub(super) access_exp: Instant,
}

/// A client's standing with the auth service: the tokens it holds, and whether it waits for
/// the answer to a call (it asks nothing new meanwhile).
///
/// A call is answered at least once (a lost request or answer, or an outage, by `Failed`
/// after a timeout) and sometimes twice (that timeout and a late real answer, or the two
/// halves of a concurrent refresh). The client cannot tell which call an answer belongs to:
/// it takes each as it comes, so an answer can also arrive while it waits for nothing.
pub(super) enum AuthState {
    /// Holds no tokens and waits for nothing: it signs in at its next wake.
    SignedOut,
    /// Holds tokens and waits for nothing.
    SignedIn(Tokens),
    /// Waits for the answer to a call made holding no tokens: a sign-in, or a logout that
    /// gave them up.
    Asking {
        /// The call is a password change's logout-everywhere: sign in again as soon as it is
        /// answered, unless an answer says the call failed first.
        relogin: bool,
    },
    /// Waits for the answer to a call made while holding these tokens (a refresh, a replayed
    /// refresh token, an OAuth attack), and keeps using them meanwhile.
    AskingWith(Tokens),
}

impl AuthState {
    /// The tokens the client holds, waiting or not.
    pub(super) fn tokens(&self) -> Option<&Tokens> {
        match self {
            AuthState::SignedIn(t) | AuthState::AskingWith(t) => Some(t),
            AuthState::SignedOut | AuthState::Asking { .. } => None,
        }
    }

    /// Whether a call to the auth service is outstanding.
    pub(super) fn waiting(&self) -> bool {
        matches!(self, AuthState::Asking { .. } | AuthState::AskingWith(_))
    }

    /// Gives up the tokens (a logout, a refusal that says they are dead), still waiting for
    /// an outstanding call's answer if there is one.
    pub(super) fn take_tokens(&mut self) -> Option<Tokens> {
        match std::mem::replace(self, AuthState::SignedOut) {
            AuthState::SignedIn(t) => Some(t),
            AuthState::AskingWith(t) => {
                *self = AuthState::Asking { relogin: false };
                Some(t)
            }
            waiting @ AuthState::Asking { .. } => {
                *self = waiting;
                None
            }
            AuthState::SignedOut => None,
        }
    }

    /// Starts waiting for the answer to a call; `relogin` marks a password change's
    /// logout-everywhere, which is made holding no tokens. False (nothing is sent) while a
    /// call is outstanding.
    pub(super) fn ask(&mut self, relogin: bool) -> bool {
        match std::mem::replace(self, AuthState::SignedOut) {
            AuthState::SignedOut => *self = AuthState::Asking { relogin },
            AuthState::SignedIn(t) => {
                debug_assert!(!relogin, "a password change gives up its tokens first");
                *self = AuthState::AskingWith(t);
            }
            waiting => {
                *self = waiting;
                return false;
            }
        }
        true
    }

    /// An answer came (or the client stops waiting for one): it waits for nothing, keeps
    /// the tokens it holds, and says whether a password change's logout was pending.
    pub(super) fn answered(&mut self) -> bool {
        match std::mem::replace(self, AuthState::SignedOut) {
            AuthState::Asking { relogin } => relogin,
            AuthState::SignedIn(t) | AuthState::AskingWith(t) => {
                *self = AuthState::SignedIn(t);
                false
            }
            AuthState::SignedOut => false,
        }
    }
}

pub(super) struct Client {
    pub(super) user: UserId,
    pub(super) adversary: bool,
    pub(super) slow: bool,
    pub(super) rng: SimRng,
    pub(super) auth: AuthState,
    /// The refresh token this client last rotated away, to replay in a reuse attack.
    pub(super) used_refresh: Option<String>,
    pub(super) conns: BTreeSet<ConnId>,
    /// Highest seq received with no gap below it, and those received above it.
    pub(super) last_seq: u64,
    pub(super) ahead: BTreeSet<u64>,
    /// Its runs not yet seen to end, oldest first; at most [`MAX_OPEN_RUNS`].
    pub(super) runs: Vec<RunId>,
    pub(super) threads: Vec<ThreadId>,
    pub(super) threads_made: u32,
    /// `reauth`s sent and not yet answered `reauthenticated`, oldest first, at most
    /// [`MAX_PENDING_REAUTHS`]: the connection and the truth of the token presented.
    pub(super) reauths: Vec<(ConnId, CredTruth)>,
    /// Tokens kept to present later (an attack, an old tab), each with when to use it.
    pub(super) saved: Vec<(String, CredTruth, Instant)>,
    /// Ticket requests not yet answered, sorted by ask number: the truth of the token each was
    /// asked with, which is what a ticket issued for it stands for (the client may have signed
    /// in again before the answer came). At most [`MAX_TICKET_ASKS`]; the oldest goes first.
    /// A sorted `Vec` sized to its entries, not a `BTreeMap`: a map keeps its 11-slot leaf
    /// (1.8 KB of truths) after its last entry goes, which was 18 MB of a 10 000-user run.
    pub(super) ticket_asks: Vec<(u32, CredTruth)>,
    /// The ask numbers of [`crate::scenario::Op::LateTicket`]s: their tickets are held past
    /// their lifetime, not redeemed. At most [`MAX_TICKET_ASKS`]; the oldest goes first.
    pub(super) late_asks: BTreeSet<u32>,
    /// The next ask number (wraps: far more asks than [`MAX_TICKET_ASKS`] apart never meet).
    pub(super) next_ask: u32,
    /// The client does nothing before this (true time): a logout-everywhere pauses it, so
    /// the next sign-in is minted in a later second. A pause of the whole client, not of
    /// its sign-in: a late answer that brings tokens meanwhile does not end it.
    pub(super) not_before: Instant,
    /// A [`crate::scenario::Op::LateReuse`] in progress. Apart from [`Client::auth`]: the
    /// attack keeps its own stolen tokens, and goes on whatever the client signs in or out
    /// of meanwhile. Boxed: few clients run one at a time, and inline it took 216 bytes of
    /// every client.
    pub(super) late_reuse: Option<Box<LateReuse>>,
    /// The one permission every token of this client grants, if any (see [`grant_for`]).
    pub(super) grant: Option<&'static str>,
}

/// What the operator's tokens grant: the broadcast permission exactly, or through the
/// `system:*` wildcard (`PERM-MATCH`, `PERM-BROADCAST`).
const OPERATOR_GRANTS: [&str; 2] = ["system:broadcast", "system:*"];

/// What an adversary's tokens may grant: nothing, admin (which grants nothing at the gateway,
/// `PERM-ADMIN`), or a near miss of `system:broadcast` that a pattern match or a prefix
/// comparison would let through (`PERM-MATCH`). None of them allows a broadcast.
pub(super) const ADVERSARY_GRANTS: [Option<&str>; 9] = [
    None,
    Some("admin"),
    Some("admin:*"),
    Some("system:broadcast:*"),
    Some("systemx:*"),
    Some("system:broadcastx"),
    Some("sys:*"),
    Some("System:broadcast"),
    Some("system:broadcas"),
];

/// The permission client `i` holds for the whole run, drawn from `rng` (a stream of its
/// own): the operator's covers `system:broadcast`, an adversary's never does, an honest
/// user holds none.
pub(super) fn grant_for(i: u32, adversary: bool, rng: &mut SimRng) -> Option<&'static str> {
    if i == ClientId::OPS.get() {
        return Some(OPERATOR_GRANTS[rng.index(OPERATOR_GRANTS.len())]);
    }
    if adversary {
        return ADVERSARY_GRANTS[rng.index(ADVERSARY_GRANTS.len())];
    }
    None
}

/// The rule an adversary holding `grant` shows when its `broadcast` is refused.
pub(super) fn refused_grant_rule(grant: &str) -> &'static str {
    if grant == "admin" || grant == "admin:*" {
        "PERM-ADMIN"
    } else {
        "PERM-MATCH"
    }
}

/// Ask numbers fit in the 31 bits of a ticket request id above the client's index and the
/// hoarding bit.
pub(super) const ASK_MASK: u32 = (1 << 31) - 1;
/// Most unanswered ticket requests a client remembers.
const MAX_TICKET_ASKS: usize = 16;
/// Most tokens a client keeps to present later; a new one pushes out the oldest.
const MAX_SAVED: usize = 4;
/// Most unanswered `reauth`s a client remembers (a refused one is never answered with
/// `reauthenticated`); a new one pushes out the oldest.
const MAX_PENDING_REAUTHS: usize = 8;
/// Ticket handshakes in flight and redeemed tickets the population remembers for replays.
pub(super) const MAX_TICKET_TRACKING: usize = 64;
/// Most runs a client remembers as its own and unfinished, to stop one: a run whose terminal
/// event the client never receives (it stayed offline past retention) would stay forever;
/// a new one pushes out the oldest.
const MAX_OPEN_RUNS: usize = 64;

impl Client {
    /// A signed-out client of `user` with nothing pending, free to act from `start`.
    pub(super) fn new(
        user: UserId,
        (adversary, slow): (bool, bool),
        rng: SimRng,
        grant: Option<&'static str>,
        start: Instant,
    ) -> Self {
        Client {
            user,
            adversary,
            slow,
            rng,
            auth: AuthState::SignedOut,
            used_refresh: None,
            conns: BTreeSet::new(),
            last_seq: 0,
            ahead: BTreeSet::new(),
            runs: Vec::new(),
            threads: Vec::new(),
            threads_made: 0,
            reauths: Vec::new(),
            saved: Vec::new(),
            ticket_asks: Vec::new(),
            late_asks: BTreeSet::new(),
            next_ask: 0,
            not_before: start,
            late_reuse: None,
            grant,
        }
    }

    /// Keeps `token` to present at `at`.
    pub(super) fn save(&mut self, token: String, truth: CredTruth, at: Instant) {
        if self.saved.len() >= MAX_SAVED {
            self.saved.remove(0);
        }
        push_exact(&mut self.saved, (token, truth, at));
    }

    /// Takes saved token `k` (an index into [`Client::saved`]) to present it now.
    pub(super) fn take_saved(&mut self, k: usize) -> (String, CredTruth, Instant) {
        remove_releasing(&mut self.saved, k)
    }

    /// Remembers a ticket request made with the token `truth` stands for; its ask number.
    pub(super) fn ticket_asked(&mut self, truth: CredTruth) -> u32 {
        if self.ticket_asks.len() >= MAX_TICKET_ASKS {
            self.ticket_asks.remove(0);
        }
        let ask = self.next_ask;
        self.next_ask = self.next_ask.wrapping_add(1) & ASK_MASK;
        match self.ticket_asks.binary_search_by_key(&ask, |(a, _)| *a) {
            Ok(k) => self.ticket_asks[k].1 = truth,
            Err(k) => {
                self.ticket_asks.reserve_exact(1);
                self.ticket_asks.insert(k, (ask, truth));
            }
        }
        ask
    }

    /// The truth a ticket request `ask` was made with, forgetting it; `None` for an ask not
    /// remembered (pushed out, or answered before).
    pub(super) fn ticket_answered(&mut self, ask: u32) -> Option<CredTruth> {
        let k = self
            .ticket_asks
            .binary_search_by_key(&ask, |(a, _)| *a)
            .ok()?;
        Some(remove_releasing(&mut self.ticket_asks, k).1)
    }

    /// Marks the next ticket request as one whose ticket is held past its lifetime.
    pub(super) fn late_ticket_asked(&mut self) {
        if self.late_asks.len() >= MAX_TICKET_ASKS {
            self.late_asks.pop_first();
        }
        self.late_asks.insert(self.next_ask);
    }

    /// Remembers `run` as one of this client's own, until its terminal event.
    pub(super) fn run_accepted(&mut self, run: RunId) {
        if self.runs.len() >= MAX_OPEN_RUNS {
            self.runs.remove(0);
        }
        self.runs.push(run);
    }

    /// Remembers a `reauth` with the token `truth` stands for, sent on `conn`.
    pub(super) fn reauth_sent(&mut self, conn: ConnId, truth: CredTruth) {
        if self.reauths.len() >= MAX_PENDING_REAUTHS {
            self.reauths.remove(0);
        }
        push_exact(&mut self.reauths, (conn, truth));
    }

    /// Pending `reauth` `k` (an index into [`Client::reauths`]) was answered: the truth of
    /// the token it presented.
    pub(super) fn reauth_answered(&mut self, k: usize) -> CredTruth {
        remove_releasing(&mut self.reauths, k).1
    }
}

/// Pushes `item`, growing `v` by one slot rather than doubling it. A client's short lists
/// hold a few items at most and usually none: the pending reauths and saved tokens (160-byte
/// `CredTruth`s) of a 10 000-user run took 11 MB in doubled buffers, 1.4 MB in fitted ones,
/// and its thread lists held 1 MB of empty slots.
pub(super) fn push_exact<T>(v: &mut Vec<T>, item: T) {
    v.reserve_exact(1);
    v.push(item);
}

/// Removes item `k` of `v` (which must be there), and gives the buffer back once `v` is
/// empty, as it is for most clients most of the time.
fn remove_releasing<T>(v: &mut Vec<T>, k: usize) -> T {
    let item = v.remove(k);
    if v.is_empty() {
        *v = Vec::new();
    }
    item
}

/// A [`crate::scenario::Op::LateReuse`] in progress, by its next step.
pub(super) enum LateReuse {
    /// The stolen pair's refresh token was rotated away; present it again at `when` (true
    /// time), a second past the access token's `exp` on the issuer's clock.
    Reuse { when: Instant, stolen: Tokens },
    /// The reuse is sent; present the stolen access token at `at`, once the family's
    /// revocation binds.
    Replay {
        at: Instant,
        access: String,
        truth: CredTruth,
    },
}

impl LateReuse {
    /// When the next step is due (true time).
    pub(super) fn due(&self) -> Instant {
        match self {
            LateReuse::Reuse { when, .. } => *when,
            LateReuse::Replay { at, .. } => *at,
        }
    }
}

/// Every client, and the connections and stop requests they have made.
pub(super) struct Population {
    clients: Vec<Client>,
    /// Lookup-only (see [`ConnMap`]): a whole-table walk sorts the ids first.
    pub(super) conns: ConnMap<Conn>,
    next_conn: u64,
    /// Lookup-only: who asked to stop each run.
    pub(super) stop_requests: IdMap<RunId, BTreeSet<UserId>>,
    /// Handshakes in flight that present a ticket, by connection, so a redeemed ticket can
    /// be replayed; at most [`MAX_TICKET_TRACKING`], the oldest connection dropped first.
    ticket_conns: BTreeMap<ConnId, String>,
    /// Tickets a handshake redeemed (the gateway accepted it), with when, newest last; at
    /// most [`MAX_TICKET_TRACKING`].
    redeemed_tickets: VecDeque<(String, Instant)>,
}

impl Population {
    pub(super) fn new(clients: Vec<Client>) -> Self {
        Population {
            clients,
            conns: ConnMap::default(),
            next_conn: 0,
            stop_requests: IdMap::default(),
            ticket_conns: BTreeMap::new(),
            redeemed_tickets: VecDeque::new(),
        }
    }

    /// Every client's id, in order (owned, so the caller may change the world meanwhile).
    pub(super) fn ids(&self) -> impl Iterator<Item = ClientId> + use<> {
        let n = u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
        (0..n).map(ClientId)
    }

    /// How many clients there are.
    pub(super) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Every client but `not`, in order from client number `start` on, wrapping round: where
    /// an attacker's search for another user to steal from starts is its own draw. Owned,
    /// like [`Population::ids`].
    pub(super) fn others_from(
        &self,
        start: usize,
        not: ClientId,
    ) -> impl Iterator<Item = ClientId> + use<> {
        let n = self.clients.len();
        (0..n)
            .filter_map(move |k| u32::try_from((start + k) % n).ok().map(ClientId))
            .filter(move |c| *c != not)
    }

    /// The id of client number `n`, if there is one (numbers from faults and ticket requests).
    pub(super) fn id(&self, n: u32) -> Option<ClientId> {
        (n as usize).lt(&self.clients.len()).then_some(ClientId(n))
    }

    /// Opens a connection for `client` (the handshake is not yet answered).
    pub(super) fn add_conn(&mut self, conn: Conn) -> ConnId {
        self.next_conn += 1;
        let id = ConnId::new(self.next_conn);
        self[conn.client].conns.insert(id);
        self.conns.insert(id, conn);
        id
    }

    /// One of `client`'s open connections, drawn from its RNG (none while it has none).
    pub(super) fn pick_open_conn(&mut self, client: ClientId) -> Option<ConnId> {
        let c = &mut self.clients[client.index()];
        let open: Vec<ConnId> = c
            .conns
            .iter()
            .copied()
            .filter(|id| self.conns.get(id).is_some_and(Conn::is_open))
            .collect();
        let k = c.rng.index(open.len().max(1));
        open.get(k).copied()
    }

    /// Remembers that handshake `conn` presents `ticket` (to replay it once redeemed).
    pub(super) fn track_ticket(&mut self, conn: ConnId, ticket: &str) {
        if self.ticket_conns.len() >= MAX_TICKET_TRACKING {
            self.ticket_conns.pop_first();
        }
        self.ticket_conns.insert(conn, ticket.to_string());
    }

    /// Handshake `conn` was answered: a ticket it presented is redeemed (at `now`) only when
    /// the gateway `accepted` it; a refusal before the ticket is looked at (rate, origin, a
    /// stale view) leaves it redeemable.
    pub(super) fn ticket_answered(&mut self, conn: ConnId, accepted: bool, now: Instant) {
        if let Some(ticket) = self.ticket_conns.remove(&conn)
            && accepted
        {
            if self.redeemed_tickets.len() >= MAX_TICKET_TRACKING {
                self.redeemed_tickets.pop_front();
            }
            self.redeemed_tickets.push_back((ticket, now));
        }
    }

    /// The tickets handshakes redeemed, with when, oldest first.
    pub(super) fn redeemed_tickets(&self) -> impl Iterator<Item = &(String, Instant)> {
        self.redeemed_tickets.iter()
    }

    /// Forgets connection `conn` of `client`, on both sides of the table.
    pub(super) fn drop_conn(&mut self, client: ClientId, conn: ConnId) {
        self.conns.remove(&conn);
        self[client].conns.remove(&conn);
    }
}

impl Index<ClientId> for Population {
    type Output = Client;
    fn index(&self, id: ClientId) -> &Client {
        &self.clients[id.index()]
    }
}

impl IndexMut<ClientId> for Population {
    fn index_mut(&mut self, id: ClientId) -> &mut Client {
        &mut self.clients[id.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(refresh: &str) -> Tokens {
        Tokens {
            access: "access".into(),
            truth: CredTruth::WrongType,
            refresh: refresh.into(),
            access_exp: Instant::from_unix_secs(60),
        }
    }

    #[test]
    fn auth_state_refresh_in_flight_keeps_tokens_and_blocks_a_second_call() {
        let mut auth = AuthState::SignedIn(tokens("r1"));
        assert!(auth.ask(false));
        assert!(auth.waiting());
        assert_eq!(auth.tokens().map(|t| t.refresh.as_str()), Some("r1"));
        assert!(!auth.ask(false), "one call at a time");
        assert!(!auth.answered());
        assert!(!auth.waiting());
        assert!(auth.tokens().is_some(), "a failed refresh keeps the tokens");
    }

    #[test]
    fn auth_state_tokens_given_up_while_waiting_still_wait_for_the_answer() {
        let mut auth = AuthState::SignedIn(tokens("r1"));
        assert!(auth.ask(false));
        assert_eq!(auth.take_tokens().map(|t| t.refresh), Some("r1".into()));
        assert!(auth.waiting());
        assert!(auth.tokens().is_none());
        assert!(auth.take_tokens().is_none());
        assert!(!auth.answered());
        assert!(matches!(auth, AuthState::SignedOut));
    }

    #[test]
    fn auth_state_password_change_reports_relogin_once_when_answered() {
        let mut auth = AuthState::SignedOut;
        assert!(auth.ask(true));
        assert!(auth.waiting() && auth.tokens().is_none());
        assert!(auth.answered());
        assert!(!auth.answered(), "a second answer signs in no second time");
        assert!(matches!(auth, AuthState::SignedOut));
    }

    fn client() -> Client {
        Client::new(
            UserId::parse("u1").unwrap(),
            (false, false),
            SimRng::new(1),
            None,
            Instant::from_unix_secs(0),
        )
    }

    #[test]
    fn ticket_asks_are_answered_by_number_and_the_oldest_is_pushed_out_past_the_bound() {
        let mut c = client();
        let asks: Vec<u32> = (0..MAX_TICKET_ASKS + 1)
            .map(|_| c.ticket_asked(CredTruth::Bad("x")))
            .collect();
        assert_eq!(c.ticket_asks.len(), MAX_TICKET_ASKS);
        assert!(
            c.ticket_answered(asks[0]).is_none(),
            "the oldest was pushed out"
        );
        assert!(c.ticket_answered(asks[5]).is_some());
        assert!(c.ticket_answered(asks[5]).is_none(), "answered once");
        for ask in asks.iter().skip(1).filter(|a| **a != asks[5]) {
            assert!(c.ticket_answered(*ask).is_some(), "ask {ask}");
        }
        assert_eq!(
            c.ticket_asks.capacity(),
            0,
            "an emptied list keeps no buffer"
        );
    }

    #[test]
    fn a_ticket_answer_gets_the_truth_its_own_ask_was_made_with() {
        let mut c = client();
        let first = c.ticket_asked(CredTruth::Bad("first"));
        let second = c.ticket_asked(CredTruth::WrongType);
        assert!(matches!(
            c.ticket_answered(second),
            Some(CredTruth::WrongType)
        ));
        assert!(matches!(
            c.ticket_answered(first),
            Some(CredTruth::Bad("first"))
        ));
    }

    #[test]
    fn answered_reauths_and_presented_tokens_leave_no_buffer_behind() {
        let mut c = client();
        c.reauth_sent(ConnId::new(1), CredTruth::Bad("a"));
        c.reauth_sent(ConnId::new(2), CredTruth::WrongType);
        assert!(matches!(c.reauth_answered(1), CredTruth::WrongType));
        assert!(matches!(c.reauth_answered(0), CredTruth::Bad("a")));
        assert_eq!(c.reauths.capacity(), 0);
        let at = Instant::from_unix_secs(5);
        c.save("t1".into(), CredTruth::WrongType, at);
        assert_eq!(c.take_saved(0).0, "t1");
        assert_eq!(c.saved.capacity(), 0);
    }

    #[test]
    fn a_client_remembers_its_latest_open_runs_only() {
        let mut c = client();
        for r in 1..=MAX_OPEN_RUNS as u64 + 3 {
            c.run_accepted(RunId::new(r));
        }
        assert_eq!(c.runs.len(), MAX_OPEN_RUNS);
        assert_eq!(
            c.runs.first(),
            Some(&RunId::new(4)),
            "the oldest went first"
        );
        assert_eq!(c.runs.last(), Some(&RunId::new(MAX_OPEN_RUNS as u64 + 3)));
    }
}
