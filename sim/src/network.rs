//! The simulated network between the gateway, the auth service and the clients.
//!
//! [`Network::send`] takes a message leaving one node at virtual time `now` and returns
//! when (and whether, and how many times) it arrives; the world feeds those deliveries into
//! the [`crate::clock::Scheduler`]. Messages are opaque ([`Payload`]): the network only
//! needs their size (for bandwidth) and a way to flip bits in them (for corruption).
//!
//! Per link the network applies, in this order: partitions (active at send time, window
//! `[start, end)`), drop, corruption, bandwidth (a slow link serialises messages one after
//! another), latency, FIFO order, reorder (extra delay that lets later messages overtake)
//! and duplication. Without the reorder and duplicate faults a link is FIFO, like the TCP
//! stream under a WebSocket. All randomness comes from the [`SimRng`] given at construction;
//! this module never reads the wall clock or decides anything about the protocol.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use gauntlet_core::Instant;
use serde::{Deserialize, Serialize};

use crate::id_map::IdMap;
use crate::rng::SimRng;

/// Link state entries kept before the first pruning of idle ones.
const LINK_STATE_PRUNE_AT: usize = 4096;
/// Partitions held at once; older expired ones are pruned first.
pub const MAX_PARTITIONS: usize = 4096;

/// A node of the simulated network: the gateway, the auth service, or client `i`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(u32);

impl NodeId {
    /// The gateway.
    pub const GATEWAY: NodeId = NodeId(0);
    /// The auth service (token issuing, refresh, OAuth).
    pub const AUTH: NodeId = NodeId(1);
    /// Node ids below this are services; clients follow.
    const FIRST_CLIENT: u32 = 2;

    /// Client number `index` (saturating at the largest representable client).
    pub const fn client(index: u32) -> NodeId {
        NodeId(index.saturating_add(Self::FIRST_CLIENT))
    }

    /// The client index, or `None` for the gateway and the auth service.
    pub const fn client_index(self) -> Option<u32> {
        self.0.checked_sub(Self::FIRST_CLIENT)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (*self, self.client_index()) {
            (NodeId::GATEWAY, _) => f.write_str("gateway"),
            (NodeId::AUTH, _) => f.write_str("auth"),
            (_, Some(i)) => write!(f, "client{i}"),
            (_, None) => write!(f, "node{}", self.0),
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One side of a partition: a specific node, or every client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Exactly this node.
    Node(NodeId),
    /// Any client node.
    AnyClient,
}

impl Endpoint {
    fn matches(self, node: NodeId) -> bool {
        match self {
            Endpoint::Node(n) => n == node,
            Endpoint::AnyClient => node.client_index().is_some(),
        }
    }
}

/// A cut between `from` and `to` during `[start, end)`; one-way cuts drop only `from -> to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Sending side.
    pub from: Endpoint,
    /// Receiving side.
    pub to: Endpoint,
    /// Whether `to -> from` is cut as well.
    pub two_way: bool,
    /// First instant of the cut.
    pub start: Instant,
    /// First instant after the cut.
    pub end: Instant,
}

impl Partition {
    /// Whether a message sent at `at` from `from` to `to` is lost to this partition.
    pub fn blocks(&self, at: Instant, from: NodeId, to: NodeId) -> bool {
        if at < self.start || at >= self.end {
            return false;
        }
        let forward = self.from.matches(from) && self.to.matches(to);
        let backward = self.two_way && self.from.matches(to) && self.to.matches(from);
        forward || backward
    }
}

/// A message the network can carry: it has a size and can be damaged in flight.
pub trait Payload: Clone {
    /// Size on the wire in bytes (drives bandwidth delay on slow links).
    fn wire_len(&self) -> usize;
    /// Flips bits in place; returns whether anything changed (an empty message cannot be).
    fn corrupt(&mut self, rng: &mut SimRng) -> bool;
}

impl Payload for Vec<u8> {
    fn wire_len(&self) -> usize {
        self.len()
    }

    fn corrupt(&mut self, rng: &mut SimRng) -> bool {
        corrupt(self, rng)
    }
}

/// Flips one to three random bits of `bytes` (distinct flips may cancel only if they hit
/// the same bit, which is avoided). Returns `false` for an empty buffer.
pub fn corrupt(bytes: &mut [u8], rng: &mut SimRng) -> bool {
    let bits = u64::try_from(bytes.len())
        .unwrap_or(u64::MAX)
        .saturating_mul(8);
    if bits == 0 {
        return false;
    }
    let flips = rng.range(1..4).min(bits);
    let mut chosen: Vec<u64> = Vec::new();
    while u64::try_from(chosen.len()).unwrap_or(u64::MAX) < flips {
        let bit = rng.range(0..bits);
        if !chosen.contains(&bit) {
            chosen.push(bit);
        }
    }
    for bit in chosen {
        let byte = usize::try_from(bit / 8).unwrap_or(usize::MAX);
        if let Some(b) = bytes.get_mut(byte) {
            *b ^= 1 << (bit % 8);
        }
    }
    true
}

/// A link's latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always `us`.
    Constant {
        /// The latency.
        us: u64,
    },
    /// Uniform in `[lo_us, hi_us]`.
    Uniform {
        /// Lower bound.
        lo_us: u64,
        /// Upper bound (inclusive).
        hi_us: u64,
    },
    /// Exponential with mean `mean_us`, cut at `cap_us` (a long but finite tail).
    Exponential {
        /// Mean.
        mean_us: u64,
        /// Hard upper bound.
        cap_us: u64,
    },
}

impl Latency {
    /// Draws one latency.
    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        match *self {
            Latency::Constant { us } => Duration::from_micros(us),
            Latency::Uniform { lo_us, hi_us } => {
                rng.uniform_duration(Duration::from_micros(lo_us), Duration::from_micros(hi_us))
            }
            Latency::Exponential { mean_us, cap_us } => rng
                .exp_duration(Duration::from_micros(mean_us))
                .min(Duration::from_micros(cap_us)),
        }
    }
}

/// Per-link behaviour: latency and per-message fault probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way latency distribution.
    pub latency: Latency,
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message arrives twice.
    pub duplicate: f64,
    /// Probability a message is held back by up to `reorder_max`.
    pub reorder: f64,
    /// Largest extra delay of a reordered message.
    pub reorder_max: Duration,
    /// Probability a message is corrupted.
    pub corrupt: f64,
    /// Bandwidth limit in bytes per second (`None`: unlimited).
    pub bandwidth: Option<u64>,
}

impl LinkConfig {
    /// This link limited to `bytes_per_sec` (0 is treated as 1 byte/s, not as infinite).
    #[must_use]
    pub fn slow(mut self, bytes_per_sec: u64) -> Self {
        self.bandwidth = Some(bytes_per_sec.max(1));
        self
    }
}

/// What the network did to one sent message (for logs, trace instants and counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fate {
    /// Lost to an active partition.
    pub partitioned: bool,
    /// Lost to random drop.
    pub dropped: bool,
    /// Bits flipped.
    pub corrupted: bool,
    /// Held back so later messages may overtake it.
    pub reordered: bool,
    /// Delivered twice.
    pub duplicated: bool,
}

/// The outcome of [`Network::send`]: zero, one or two deliveries, plus what happened.
#[derive(Debug)]
#[must_use = "deliveries must be scheduled, or the message is silently lost"]
pub struct Transmit<M> {
    deliveries: [Option<(Instant, M)>; 2],
    /// The faults applied to this message.
    pub fate: Fate,
}

impl<M> Transmit<M> {
    /// Number of deliveries (0 if lost, 2 if duplicated).
    pub fn len(&self) -> usize {
        self.deliveries.iter().flatten().count()
    }

    /// Whether the message is lost.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<M> IntoIterator for Transmit<M> {
    type Item = (Instant, M);
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<(Instant, M)>, 2>>;

    /// Deliveries in time order (the original first on ties).
    fn into_iter(self) -> Self::IntoIter {
        self.deliveries.into_iter().flatten()
    }
}

/// Running totals of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    /// Messages handed to [`Network::send`].
    pub sent: u64,
    /// Deliveries returned (duplicates count twice).
    pub delivered: u64,
    /// Lost to partitions.
    pub partitioned: u64,
    /// Lost to random drop.
    pub dropped: u64,
    /// Corrupted.
    pub corrupted: u64,
    /// Reordered.
    pub reordered: u64,
    /// Duplicated.
    pub duplicated: u64,
}

/// Ordering state of one directed link.
#[derive(Debug, Clone, Copy)]
struct LinkState {
    /// Latest in-order delivery so far: FIFO deliveries never land before it.
    last_delivery: Instant,
    /// When the link finishes transmitting what is queued (bandwidth limit).
    busy_until: Instant,
}

/// The simulated network.
#[derive(Debug)]
pub struct Network {
    default_link: LinkConfig,
    links: BTreeMap<(NodeId, NodeId), LinkConfig>,
    /// Lookup-only (pruned with order-free `retain`): one hashed probe per send instead of a
    /// B-tree walk over every busy link of a large world.
    state: IdMap<(NodeId, NodeId), LinkState>,
    /// Size of `state` that triggers the next pruning: twice what survived the last one, so
    /// pruning is amortised O(1) per send and memory stays within twice the busy links.
    prune_at: usize,
    partitions: Vec<Partition>,
    rng: SimRng,
    stats: NetStats,
}

/// Why the network refused a configuration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// More than [`MAX_PARTITIONS`] partitions are active at once.
    #[error("too many active partitions (limit {MAX_PARTITIONS})")]
    TooManyPartitions,
}

impl Network {
    /// A network where every link behaves like `default_link`, drawing from `rng` (give it
    /// its own fork, e.g. `root.fork("network")`).
    pub fn new(default_link: LinkConfig, rng: SimRng) -> Self {
        Self {
            default_link,
            links: BTreeMap::new(),
            state: IdMap::default(),
            prune_at: LINK_STATE_PRUNE_AT,
            partitions: Vec::new(),
            rng,
            stats: NetStats::default(),
        }
    }

    /// Overrides the directed link `from -> to` (e.g. a slow client link, both directions
    /// need a call).
    pub fn set_link(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        self.links.insert((from, to), config);
    }

    /// Replaces the configuration of every link without an override (e.g. faults off for
    /// the liveness phase), and drops the overrides.
    pub fn set_default(&mut self, config: LinkConfig) {
        self.default_link = config;
        self.links.clear();
    }

    /// Forgets per-link overrides and ordering state involving `node` (it crashed or left).
    pub fn forget(&mut self, node: NodeId) {
        self.links.retain(|(a, b), _| *a != node && *b != node);
        self.state.retain(|(a, b), _| *a != node && *b != node);
    }

    /// Installs a partition. Partitions that ended by `now` are pruned first.
    pub fn partition(&mut self, now: Instant, p: Partition) -> Result<(), NetworkError> {
        self.partitions.retain(|q| q.end > now);
        if self.partitions.len() >= MAX_PARTITIONS {
            return Err(NetworkError::TooManyPartitions);
        }
        self.partitions.push(p);
        Ok(())
    }

    /// Ends every partition (the network heals, e.g. for the liveness phase).
    pub fn heal(&mut self) {
        self.partitions.clear();
    }

    /// Totals so far.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Sends `msg` from `from` to `to` at `now` and returns its deliveries.
    pub fn send<M: Payload>(
        &mut self,
        now: Instant,
        from: NodeId,
        to: NodeId,
        mut msg: M,
    ) -> Transmit<M> {
        self.stats.sent += 1;
        let mut fate = Fate::default();
        let lost = |fate| Transmit {
            deliveries: [None, None],
            fate,
        };
        if self.partitions.iter().any(|p| p.blocks(now, from, to)) {
            fate.partitioned = true;
            self.stats.partitioned += 1;
            return lost(fate);
        }
        let link = self.links.get(&(from, to)).unwrap_or(&self.default_link);
        if self.rng.chance(link.drop) {
            fate.dropped = true;
            self.stats.dropped += 1;
            return lost(fate);
        }
        if self.rng.chance(link.corrupt) && msg.corrupt(&mut self.rng) {
            fate.corrupted = true;
            self.stats.corrupted += 1;
        }

        if self.state.len() >= self.prune_at {
            // Idle links carry no ordering constraint any more: any new delivery lands after.
            self.state
                .retain(|_, s| s.last_delivery > now || s.busy_until > now);
            self.prune_at = LINK_STATE_PRUNE_AT.max(self.state.len().saturating_mul(2));
        }
        let state = self.state.entry((from, to)).or_insert(LinkState {
            last_delivery: now,
            busy_until: now,
        });

        let mut departs = now;
        if let Some(bw) = link.bandwidth {
            let len = u64::try_from(msg.wire_len()).unwrap_or(u64::MAX);
            let tx_ns = u128::from(len) * 1_000_000_000 / u128::from(bw.max(1));
            let tx = Duration::from_nanos(u64::try_from(tx_ns).unwrap_or(u64::MAX));
            departs = state.busy_until.max(now).saturating_add(tx);
            state.busy_until = departs;
        }
        let mut at = departs.saturating_add(link.latency.sample(&mut self.rng));
        if self.rng.chance(link.reorder) {
            fate.reordered = true;
            self.stats.reordered += 1;
            at = at.saturating_add(self.rng.uniform_duration(Duration::ZERO, link.reorder_max));
        } else {
            at = at.max(state.last_delivery);
            state.last_delivery = at;
        }

        let duplicate = if self.rng.chance(link.duplicate) {
            fate.duplicated = true;
            self.stats.duplicated += 1;
            // The copy trails the original by one more latency draw (a retransmission).
            let extra = link.latency.sample(&mut self.rng);
            Some((at.saturating_add(extra), msg.clone()))
        } else {
            None
        };
        let out = Transmit {
            deliveries: [Some((at, msg)), duplicate],
            fate,
        };
        self.stats.delivered += u64::try_from(out.len()).unwrap_or(0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos_between(earlier: Instant, later: Instant) -> u64 {
        crate::rng::duration_nanos(later.saturating_since(earlier))
    }

    const N: u64 = 20_000;

    fn quiet_link() -> LinkConfig {
        LinkConfig {
            latency: Latency::Constant { us: 1000 },
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_max: Duration::ZERO,
            corrupt: 0.0,
            bandwidth: None,
        }
    }

    fn net(link: LinkConfig) -> Network {
        Network::new(link, SimRng::new(99).fork("network"))
    }

    fn t(ms: u64) -> Instant {
        Instant::from_unix_millis(ms)
    }

    /// Sends N 16-byte messages client0 -> gateway at 1 ms spacing; returns deliveries per message.
    fn blast(n: &mut Network) -> Vec<Transmit<Vec<u8>>> {
        (0..N)
            .map(|i| n.send(t(i), NodeId::client(0), NodeId::GATEWAY, vec![0u8; 16]))
            .collect()
    }

    /// Binomial tolerance: 5 standard deviations around n p.
    fn within(count: u64, p: f64) -> bool {
        let mean = N as f64 * p;
        let sd = (N as f64 * p * (1.0 - p)).sqrt();
        (count as f64 - mean).abs() <= 5.0 * sd
    }

    #[test]
    fn node_id_display_and_client_index() {
        assert_eq!(NodeId::GATEWAY.to_string(), "gateway");
        assert_eq!(NodeId::AUTH.to_string(), "auth");
        assert_eq!(NodeId::client(7).to_string(), "client7");
        assert_eq!(NodeId::client(7).client_index(), Some(7));
        assert_eq!(NodeId::GATEWAY.client_index(), None);
        assert_ne!(NodeId::client(0), NodeId::AUTH);
    }

    #[test]
    fn quiet_link_delivers_once_after_constant_latency() {
        let mut n = net(quiet_link());
        let tx = n.send(t(5), NodeId::GATEWAY, NodeId::client(1), vec![1, 2, 3]);
        assert_eq!(tx.fate, Fate::default());
        let got: Vec<_> = tx.into_iter().collect();
        assert_eq!(got, vec![(t(6), vec![1, 2, 3])]);
    }

    #[test]
    fn drop_happens_at_configured_rate() {
        let mut n = net(LinkConfig {
            drop: 0.1,
            ..quiet_link()
        });
        let lost = blast(&mut n).iter().filter(|tx| tx.is_empty()).count() as u64;
        assert!(within(lost, 0.1), "lost {lost}");
        assert_eq!(n.stats().dropped, lost);
        assert_eq!(n.stats().delivered, N - lost);
    }

    #[test]
    fn duplicate_happens_at_configured_rate_and_copy_trails() {
        let mut n = net(LinkConfig {
            duplicate: 0.05,
            ..quiet_link()
        });
        let sent = blast(&mut n);
        let dups = sent.iter().filter(|tx| tx.len() == 2).count() as u64;
        assert!(within(dups, 0.05), "dups {dups}");
        for tx in sent.into_iter().filter(|tx| tx.fate.duplicated) {
            let times: Vec<Instant> = tx.into_iter().map(|(at, _)| at).collect();
            assert_eq!(times.len(), 2);
            assert!(times[1] > times[0]);
        }
    }

    #[test]
    fn corruption_happens_at_rate_and_changes_payload() {
        let mut n = net(LinkConfig {
            corrupt: 0.02,
            ..quiet_link()
        });
        let sent = blast(&mut n);
        let damaged = sent
            .into_iter()
            .flat_map(|tx| tx.into_iter())
            .filter(|(_, m)| m.iter().any(|b| *b != 0))
            .count() as u64;
        assert!(within(damaged, 0.02), "damaged {damaged}");
        assert_eq!(n.stats().corrupted, damaged);
    }

    #[test]
    fn corrupt_flips_between_one_and_three_bits() {
        let mut rng = SimRng::new(4);
        for _ in 0..500 {
            let mut bytes = vec![0u8; 8];
            assert!(corrupt(&mut bytes, &mut rng));
            let flipped: u32 = bytes.iter().map(|b| b.count_ones()).sum();
            assert!((1..=3).contains(&flipped), "{flipped} bits");
        }
        let mut empty: Vec<u8> = Vec::new();
        assert!(!corrupt(&mut empty, &mut rng));
        let mut one = vec![0u8; 1];
        assert!(corrupt(&mut one, &mut rng));
        assert_ne!(one, [0]);
    }

    #[test]
    fn fifo_link_never_reorders_despite_random_latency() {
        let mut n = net(LinkConfig {
            latency: Latency::Uniform {
                lo_us: 0,
                hi_us: 50_000,
            },
            ..quiet_link()
        });
        let arrivals: Vec<Instant> = blast(&mut n)
            .into_iter()
            .flat_map(|tx| tx.into_iter().map(|(at, _)| at))
            .collect();
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn reorder_happens_at_rate_and_lets_later_messages_overtake() {
        let mut n = net(LinkConfig {
            reorder: 0.1,
            reorder_max: Duration::from_millis(100),
            ..quiet_link()
        });
        let sent = blast(&mut n);
        let reordered = sent.iter().filter(|tx| tx.fate.reordered).count() as u64;
        assert!(within(reordered, 0.1), "reordered {reordered}");
        let arrivals: Vec<Instant> = sent
            .into_iter()
            .flat_map(|tx| tx.into_iter().map(|(at, _)| at))
            .collect();
        let inversions = arrivals.windows(2).filter(|w| w[0] > w[1]).count();
        // Held back up to 100 ms with 1 ms spacing: most reordered messages are overtaken.
        assert!(inversions as u64 > reordered / 2, "{inversions} inversions");
    }

    #[test]
    fn exponential_latency_mean_and_cap_hold() {
        let mut n = net(LinkConfig {
            latency: Latency::Exponential {
                mean_us: 2_000,
                cap_us: 10_000,
            },
            ..quiet_link()
        });
        // One message per distinct client so FIFO clamping does not skew the draws.
        let delays: Vec<u64> = (0..N)
            .flat_map(|i| {
                let c = NodeId::client(u32::try_from(i).unwrap());
                n.send(t(0), c, NodeId::GATEWAY, vec![0u8])
                    .into_iter()
                    .map(|(at, _)| nanos_between(t(0), at))
            })
            .collect();
        assert!(delays.iter().all(|d| *d <= 10_000_000));
        let mean = delays.iter().sum::<u64>() / N;
        // Capped exponential mean: 2ms * (1 - e^-5) ~ 1.987 ms; sd/sqrt(N) ~ 14 us.
        assert!((1_900_000..=2_070_000).contains(&mean), "mean {mean}");
    }

    #[test]
    fn slow_link_serialises_messages_by_size() {
        let mut n = net(quiet_link());
        n.set_link(NodeId::GATEWAY, NodeId::client(0), quiet_link().slow(1000));
        // 500 bytes at 1000 B/s = 500 ms each, queued back to back, plus 1 ms latency.
        let a: Vec<_> = n
            .send(t(0), NodeId::GATEWAY, NodeId::client(0), vec![0u8; 500])
            .into_iter()
            .collect();
        let b: Vec<_> = n
            .send(t(0), NodeId::GATEWAY, NodeId::client(0), vec![0u8; 500])
            .into_iter()
            .collect();
        assert_eq!(a[0].0, t(501));
        assert_eq!(b[0].0, t(1001));
        // The reverse direction keeps the default link.
        let c: Vec<_> = n
            .send(t(0), NodeId::client(0), NodeId::GATEWAY, vec![0u8; 500])
            .into_iter()
            .collect();
        assert_eq!(c[0].0, t(1));
    }

    #[test]
    fn partition_drops_exactly_in_its_window() {
        let mut n = net(quiet_link());
        n.partition(
            t(0),
            Partition {
                from: Endpoint::Node(NodeId::GATEWAY),
                to: Endpoint::Node(NodeId::client(3)),
                two_way: false,
                start: t(100),
                end: t(200),
            },
        )
        .unwrap();
        let g = NodeId::GATEWAY;
        let c = NodeId::client(3);
        for ms in [0, 99, 200, 250] {
            assert_eq!(n.send(t(ms), g, c, vec![1]).len(), 1, "at {ms}");
        }
        for ms in [100, 150, 199] {
            let tx = n.send(t(ms), g, c, vec![1]);
            assert!(tx.is_empty() && tx.fate.partitioned, "at {ms}");
        }
        // One-way: the reverse direction and other clients still get through.
        assert_eq!(n.send(t(150), c, g, vec![1]).len(), 1);
        assert_eq!(n.send(t(150), g, NodeId::client(4), vec![1]).len(), 1);
        assert_eq!(n.stats().partitioned, 3);
    }

    #[test]
    fn two_way_partition_of_all_clients_cuts_both_directions() {
        let mut n = net(quiet_link());
        n.partition(
            t(0),
            Partition {
                from: Endpoint::Node(NodeId::GATEWAY),
                to: Endpoint::AnyClient,
                two_way: true,
                start: t(10),
                end: t(20),
            },
        )
        .unwrap();
        let g = NodeId::GATEWAY;
        assert!(n.send(t(10), g, NodeId::client(0), vec![1]).is_empty());
        assert!(n.send(t(10), NodeId::client(9), g, vec![1]).is_empty());
        assert_eq!(n.send(t(10), g, NodeId::AUTH, vec![1]).len(), 1);
        n.heal();
        assert_eq!(n.send(t(15), g, NodeId::client(0), vec![1]).len(), 1);
    }

    #[test]
    fn fifo_holds_across_link_state_pruning() {
        let mut n = net(LinkConfig {
            latency: Latency::Uniform {
                lo_us: 0,
                hi_us: 20_000,
            },
            ..quiet_link()
        });
        let watched = NodeId::client(0);
        let mut arrivals = Vec::new();
        // 3 x 4096 other links force several prunings while `watched` keeps sending.
        for i in 0..12_288u32 {
            let now = Instant::from_nanos(u64::from(i) * 10_000);
            let other = NodeId::client(1 + i);
            let _ = n.send(now, other, NodeId::GATEWAY, vec![0u8]);
            if i % 4 == 0 {
                let tx = n.send(now, watched, NodeId::GATEWAY, vec![0u8]);
                arrivals.extend(tx.into_iter().map(|(at, _)| at));
            }
        }
        assert_eq!(arrivals.len(), 3072);
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn same_seed_same_fates() {
        let link = LinkConfig {
            latency: Latency::Exponential {
                mean_us: 2000,
                cap_us: 50_000,
            },
            drop: 0.01,
            duplicate: 0.05,
            reorder: 0.1,
            reorder_max: Duration::from_millis(5),
            corrupt: 0.01,
            bandwidth: None,
        };
        let run = || -> Vec<(Fate, Vec<Instant>)> {
            let mut n = net(link.clone());
            blast(&mut n)
                .into_iter()
                .map(|tx| (tx.fate, tx.into_iter().map(|(at, _)| at).collect()))
                .collect()
        };
        assert_eq!(run(), run());
    }
}
