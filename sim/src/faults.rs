//! The fault plan: which faults a run injects, and how often.
//!
//! [`FaultPlan`] is plain data (serde, every field public) so it can be written into
//! scenario files, edited by hand, and shrunk one field at a time: setting any probability
//! or rate to zero switches that fault off without touching the others. Presets cover the
//! usual cases ([`FaultPlan::none`], [`FaultPlan::mild`], [`FaultPlan::chaos`]);
//! [`FaultPlan::swarm`] draws each fault's intensity per seed from a wide range, switching
//! about half of them off, so different seeds stress different corners (swarm testing, as
//! TigerBeetle's VOPR does with `options_swarm`).
//!
//! Per-message faults (latency, drop, duplicate, reorder, corruption, slow links) are
//! applied by [`crate::network`]; timed faults (partitions, crashes, outages, key
//! rotations) are laid out ahead of time by [`FaultPlan::timeline`] and fed to the
//! scheduler by the world. This module decides *what* happens, never *how* the gateway
//! reacts, and draws only from the [`SimRng`] it is given.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use gauntlet_core::Instant;
use serde::{Deserialize, Serialize};

use crate::network::{Endpoint, Latency, LinkConfig, NodeId, Partition};
use crate::rng::SimRng;

/// Upper bound on any `*_per_hour` rate: one event per 36 ms keeps timelines finite.
pub const MAX_RATE_PER_HOUR: f64 = 100_000.0;
/// Upper bound on every duration parameter of a plan (one day).
pub const MAX_FAULT_MS: u64 = 24 * 60 * 60 * 1000;
/// Upper bound on the number of timed faults one run may lay out.
pub const MAX_TIMELINE: usize = 1_000_000;

/// Why a fault plan or preset name was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultPlanError {
    /// A probability or share is not a number in `[0, 1]`.
    #[error("{field} must be a probability in [0, 1], got {value}")]
    Probability {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A rate is negative, not finite, or above [`MAX_RATE_PER_HOUR`].
    #[error("{field} must be a rate in [0, {MAX_RATE_PER_HOUR}] per hour, got {value}")]
    Rate {
        /// The offending field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A duration parameter exceeds [`MAX_FAULT_MS`].
    #[error("{field} must be at most {MAX_FAULT_MS} ms, got {value}")]
    TooLong {
        /// The offending field.
        field: &'static str,
        /// Its value in the field's unit.
        value: u64,
    },
    /// A latency range has its lower bound above its upper bound.
    #[error("latency lower bound {lo_us} us exceeds upper bound {hi_us} us")]
    LatencyBounds {
        /// Lower bound.
        lo_us: u64,
        /// Upper bound.
        hi_us: u64,
    },
    /// The plan would lay out more than [`MAX_TIMELINE`] timed faults for this run.
    #[error("fault timeline exceeds {MAX_TIMELINE} events; lower the rates or the duration")]
    TimelineTooLong,
    /// `--faults` named no known preset.
    #[error("unknown fault preset {0:?} (expected none, mild, chaos or swarm)")]
    UnknownPreset(String),
}

/// Every fault the simulator can inject, with its intensity. Zero switches a fault off.
///
/// Probabilities apply per message (network), per client (shares), or per request (auth);
/// `*_per_hour` fields are Poisson rates over simulated time; `*_ms`/`*_us` are durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Base one-way latency of every link.
    pub latency: Latency,
    /// Probability a message is lost.
    pub drop: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Probability a message is held back by up to `reorder_max_us`, letting later ones pass.
    pub reorder: f64,
    /// Largest extra delay of a reordered message.
    pub reorder_max_us: u64,
    /// Probability a message has bits flipped in flight.
    pub corrupt: f64,
    /// Rate of network partitions (each cuts one link: gateway to a client, or to the auth service).
    pub partitions_per_hour: f64,
    /// Mean partition length (exponentially distributed).
    pub partition_mean_ms: u64,
    /// Share of partitions that are one-way (the rest cut both directions).
    pub partition_one_way: f64,
    /// Share of clients whose link is bandwidth-limited.
    pub slow_link: f64,
    /// Bandwidth of a slow link, bytes per second.
    pub slow_link_bytes_per_sec: u64,
    /// Share of clients that read slowly (a slow consumer: the gateway's send queue fills).
    pub slow_consumer: f64,
    /// Delay a slow consumer takes to read each message.
    pub slow_consumer_delay_ms: u64,
    /// Crash rate of each client (it vanishes without a close and may come back).
    pub client_crashes_per_hour: f64,
    /// Crash rate of the gateway (it restarts from its event log).
    pub gateway_crashes_per_hour: f64,
    /// Downtime between a gateway crash and its restart.
    pub gateway_restart_ms: u64,
    /// Rate of auth-service outages (requests fail or time out).
    pub auth_outages_per_hour: f64,
    /// Length of each auth-service outage.
    pub auth_outage_ms: u64,
    /// Probability an auth-service request is slow.
    pub auth_slow: f64,
    /// Extra delay of a slow auth-service request.
    pub auth_slow_extra_ms: u64,
    /// Largest clock skew between the token issuer and the gateway (drawn in `[-max, max]`).
    pub clock_skew_max_ms: u64,
    /// Rate of signing-key rotations at the auth service.
    pub key_rotations_per_hour: f64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

/// A fault scheduled at a point of virtual time, laid out by [`FaultPlan::timeline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedFault {
    /// When the fault starts.
    pub at: Instant,
    /// What happens.
    pub fault: Fault,
}

/// A timed fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// A partition to install in the network (its window is inside the value).
    Partition(Partition),
    /// Client `client` crashes: its connections vanish without a close.
    ClientCrash {
        /// Client index.
        client: u32,
    },
    /// The gateway crashes and restarts from its log after `downtime`.
    GatewayCrash {
        /// Time until the restart.
        downtime: Duration,
    },
    /// The gateway is stopped gracefully (a deploy): it closes every connection with 1001,
    /// then restarts from its log after `downtime`.
    GatewayShutdown {
        /// Time until the restart.
        downtime: Duration,
    },
    /// The auth service is unavailable for `duration`.
    AuthOutage {
        /// Length of the outage.
        duration: Duration,
    },
    /// The auth service rotates its signing key.
    KeyRotation,
}

impl Fault {
    /// A short stable name, for logs and trace instants.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::ClientCrash { .. } => "client_crash",
            Fault::GatewayCrash { .. } => "gateway_crash",
            Fault::GatewayShutdown { .. } => "gateway_shutdown",
            Fault::AuthOutage { .. } => "auth_outage",
            Fault::KeyRotation => "key_rotation",
        }
    }

    /// The fault's parameters as `(name, value)` pairs, for a trace instant's `args`.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
        let end = |e: Endpoint| match e {
            Endpoint::Node(n) => format!("{n:?}"),
            Endpoint::AnyClient => "any client".to_string(),
        };
        match self {
            Fault::Partition(p) => vec![
                ("from", end(p.from)),
                ("to", end(p.to)),
                ("two_way", p.two_way.to_string()),
                ("duration_ms", ms(p.end.saturating_since(p.start))),
            ],
            Fault::ClientCrash { client } => vec![("client", client.to_string())],
            Fault::GatewayCrash { downtime } | Fault::GatewayShutdown { downtime } => {
                vec![("downtime_ms", ms(*downtime))]
            }
            Fault::AuthOutage { duration } => vec![("duration_ms", ms(*duration))],
            Fault::KeyRotation => Vec::new(),
        }
    }
}

impl FaultPlan {
    /// No faults: a constant 1 ms latency and nothing else.
    pub fn none() -> Self {
        Self {
            latency: Latency::Constant { us: 1000 },
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_max_us: 0,
            corrupt: 0.0,
            partitions_per_hour: 0.0,
            partition_mean_ms: 0,
            partition_one_way: 0.0,
            slow_link: 0.0,
            slow_link_bytes_per_sec: 0,
            slow_consumer: 0.0,
            slow_consumer_delay_ms: 0,
            client_crashes_per_hour: 0.0,
            gateway_crashes_per_hour: 0.0,
            gateway_restart_ms: 0,
            auth_outages_per_hour: 0.0,
            auth_outage_ms: 0,
            auth_slow: 0.0,
            auth_slow_extra_ms: 0,
            clock_skew_max_ms: 0,
            key_rotations_per_hour: 0.0,
        }
    }

    /// A realistic bad day: variable latency, rare loss and reordering, occasional
    /// partitions and client crashes, a little clock skew; no gateway crash.
    pub fn mild() -> Self {
        Self {
            latency: Latency::Uniform {
                lo_us: 500,
                hi_us: 20_000,
            },
            drop: 0.001,
            duplicate: 0.001,
            reorder: 0.01,
            reorder_max_us: 50_000,
            corrupt: 0.0005,
            partitions_per_hour: 6.0,
            partition_mean_ms: 5_000,
            partition_one_way: 0.3,
            slow_link: 0.05,
            slow_link_bytes_per_sec: 64 * 1024,
            slow_consumer: 0.02,
            slow_consumer_delay_ms: 50,
            client_crashes_per_hour: 0.5,
            gateway_crashes_per_hour: 0.0,
            gateway_restart_ms: 0,
            auth_outages_per_hour: 1.0,
            auth_outage_ms: 2_000,
            auth_slow: 0.02,
            auth_slow_extra_ms: 500,
            clock_skew_max_ms: 2_000,
            key_rotations_per_hour: 1.0,
        }
    }

    /// Everything at once, often: long-tailed latency, frequent loss, partitions, crashes of
    /// clients and of the gateway, auth outages, large clock skew and key rotations.
    pub fn chaos() -> Self {
        Self {
            latency: Latency::Exponential {
                mean_us: 20_000,
                cap_us: 2_000_000,
            },
            drop: 0.02,
            duplicate: 0.01,
            reorder: 0.05,
            reorder_max_us: 500_000,
            corrupt: 0.005,
            partitions_per_hour: 120.0,
            partition_mean_ms: 10_000,
            partition_one_way: 0.5,
            slow_link: 0.2,
            slow_link_bytes_per_sec: 16 * 1024,
            slow_consumer: 0.1,
            slow_consumer_delay_ms: 200,
            client_crashes_per_hour: 6.0,
            gateway_crashes_per_hour: 12.0,
            gateway_restart_ms: 3_000,
            auth_outages_per_hour: 20.0,
            auth_outage_ms: 10_000,
            auth_slow: 0.1,
            auth_slow_extra_ms: 3_000,
            clock_skew_max_ms: 30_000,
            key_rotations_per_hour: 12.0,
        }
    }

    /// A plan drawn from `rng` (fork it from the seed, e.g. `SimRng::new(seed).fork("swarm")`):
    /// each fault is off with probability 1/2, otherwise its intensity is drawn uniformly
    /// from zero up to a bit beyond [`FaultPlan::chaos`].
    pub fn swarm(rng: &mut SimRng) -> Self {
        let chaos = Self::chaos();
        // Each closure call draws the on/off coin first, then the level, in field order, so
        // the plan for a seed is stable while fields keep their order.
        let mut p = |max: f64| -> f64 {
            if rng.chance(0.5) {
                0.0
            } else {
                rng.unit_f64() * max
            }
        };
        let drop = p(0.05);
        let duplicate = p(0.03);
        let reorder = p(0.2);
        let corrupt = p(0.02);
        let partitions_per_hour = p(360.0);
        let partition_one_way = p(1.0);
        let slow_link = p(0.5);
        let slow_consumer = p(0.3);
        let client_crashes_per_hour = p(20.0);
        let gateway_crashes_per_hour = p(30.0);
        let auth_outages_per_hour = p(60.0);
        let auth_slow = p(0.3);
        let key_rotations_per_hour = p(60.0);
        let latency = match rng.range(0..3) {
            0 => Latency::Constant {
                us: rng.range(0..50_001),
            },
            1 => {
                let lo_us = rng.range(0..10_001);
                Latency::Uniform {
                    lo_us,
                    hi_us: lo_us + rng.range(0..200_001),
                }
            }
            _ => Latency::Exponential {
                mean_us: rng.range(100..100_001),
                cap_us: rng.range(100_000..5_000_001),
            },
        };
        Self {
            latency,
            drop,
            duplicate,
            reorder,
            reorder_max_us: rng.range(1_000..2_000_001),
            corrupt,
            partitions_per_hour,
            partition_mean_ms: rng.range(100..60_001),
            partition_one_way,
            slow_link,
            slow_link_bytes_per_sec: rng.range(1024..1_048_577),
            slow_consumer,
            slow_consumer_delay_ms: rng.range(1..1_001),
            client_crashes_per_hour,
            gateway_crashes_per_hour,
            gateway_restart_ms: rng.range(0..chaos.gateway_restart_ms * 4 + 1),
            auth_outages_per_hour,
            auth_outage_ms: rng.range(100..60_001),
            auth_slow,
            auth_slow_extra_ms: rng.range(10..10_001),
            clock_skew_max_ms: if rng.chance(0.5) {
                0
            } else {
                rng.range(0..120_001)
            },
            key_rotations_per_hour,
        }
    }

    /// Checks every field's range; a plan from a scenario file must pass before use.
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        validate_latency(&self.latency)?;
        let probabilities = [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
            ("partition_one_way", self.partition_one_way),
            ("slow_link", self.slow_link),
            ("slow_consumer", self.slow_consumer),
            ("auth_slow", self.auth_slow),
        ];
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultPlanError::Probability { field, value });
            }
        }
        let rates = [
            ("partitions_per_hour", self.partitions_per_hour),
            ("client_crashes_per_hour", self.client_crashes_per_hour),
            ("gateway_crashes_per_hour", self.gateway_crashes_per_hour),
            ("auth_outages_per_hour", self.auth_outages_per_hour),
            ("key_rotations_per_hour", self.key_rotations_per_hour),
        ];
        for (field, value) in rates {
            if !(0.0..=MAX_RATE_PER_HOUR).contains(&value) {
                return Err(FaultPlanError::Rate { field, value });
            }
        }
        let millis = [
            ("reorder_max_us", self.reorder_max_us / 1000),
            ("partition_mean_ms", self.partition_mean_ms),
            ("slow_consumer_delay_ms", self.slow_consumer_delay_ms),
            ("gateway_restart_ms", self.gateway_restart_ms),
            ("auth_outage_ms", self.auth_outage_ms),
            ("auth_slow_extra_ms", self.auth_slow_extra_ms),
            ("clock_skew_max_ms", self.clock_skew_max_ms),
        ];
        for (field, value) in millis {
            if value > MAX_FAULT_MS {
                return Err(FaultPlanError::TooLong { field, value });
            }
        }
        Ok(())
    }

    /// The issuer's clock offset relative to the gateway, in milliseconds, uniform in
    /// `[-clock_skew_max_ms, clock_skew_max_ms]` (positive: the issuer runs ahead).
    pub fn draw_clock_skew_ms(&self, rng: &mut SimRng) -> i64 {
        let max = i64::try_from(self.clock_skew_max_ms.min(MAX_FAULT_MS)).unwrap_or(0);
        let span = u64::try_from(2 * max + 1).unwrap_or(1);
        i64::try_from(rng.range(0..span)).unwrap_or(0) - max
    }

    /// Lays out every timed fault of a run over `[start, start + duration)` with `clients`
    /// clients, sorted by time (ties in generation order). Each fault kind draws from its
    /// own fork of `rng`, so tuning one rate leaves the others' times unchanged.
    pub fn timeline(
        &self,
        rng: &SimRng,
        start: Instant,
        duration: Duration,
        clients: u32,
    ) -> Result<Vec<TimedFault>, FaultPlanError> {
        self.validate()?;
        let end = start.saturating_add(duration);
        let mut out = Vec::new();

        let mut r = rng.fork("partitions");
        arrivals(
            &mut r,
            start,
            end,
            self.partitions_per_hour,
            &mut out,
            |r, at| {
                let length = r.exp_duration(Duration::from_millis(self.partition_mean_ms));
                // Clients and the auth service each sit behind one link to the gateway.
                let far = if clients == 0 || r.chance(0.1) {
                    NodeId::AUTH
                } else {
                    NodeId::client(u32::try_from(r.range(0..u64::from(clients))).unwrap_or(0))
                };
                let one_way = r.chance(self.partition_one_way);
                // A one-way cut drops either direction with equal odds.
                let (from, to) = if r.chance(0.5) {
                    (NodeId::GATEWAY, far)
                } else {
                    (far, NodeId::GATEWAY)
                };
                Fault::Partition(Partition {
                    from: Endpoint::Node(from),
                    to: Endpoint::Node(to),
                    two_way: !one_way,
                    start: at,
                    end: at.saturating_add(length),
                })
            },
        )?;

        let mut r = rng.fork("client_crashes");
        let total = self.client_crashes_per_hour * f64::from(clients);
        arrivals(&mut r, start, end, total, &mut out, |r, _| {
            Fault::ClientCrash {
                client: u32::try_from(r.range(0..u64::from(clients))).unwrap_or(0),
            }
        })?;

        let mut r = rng.fork("gateway_crashes");
        let downtime = Duration::from_millis(self.gateway_restart_ms);
        arrivals(
            &mut r,
            start,
            end,
            self.gateway_crashes_per_hour,
            &mut out,
            // Half the stops are graceful, by the arrival's own time: no extra draw, so the
            // timeline is the one the plan always gave.
            |_, at| {
                if at.as_nanos() % 2 == 1 {
                    Fault::GatewayShutdown { downtime }
                } else {
                    Fault::GatewayCrash { downtime }
                }
            },
        )?;

        let mut r = rng.fork("auth_outages");
        let outage = Duration::from_millis(self.auth_outage_ms);
        arrivals(
            &mut r,
            start,
            end,
            self.auth_outages_per_hour,
            &mut out,
            |_, _| Fault::AuthOutage { duration: outage },
        )?;

        let mut r = rng.fork("key_rotations");
        arrivals(
            &mut r,
            start,
            end,
            self.key_rotations_per_hour,
            &mut out,
            |_, _| Fault::KeyRotation,
        )?;

        // Stable sort: equal times keep generation order, which is itself seed-determined.
        out.sort_by_key(|f| f.at);
        Ok(out)
    }
}

/// Appends Poisson arrivals at `rate_per_hour` over `[start, end)`, each built by `make`.
fn arrivals(
    rng: &mut SimRng,
    start: Instant,
    end: Instant,
    rate_per_hour: f64,
    out: &mut Vec<TimedFault>,
    mut make: impl FnMut(&mut SimRng, Instant) -> Fault,
) -> Result<(), FaultPlanError> {
    // NaN and non-positive rates mean "off" (validate rejects NaN before we get here).
    if rate_per_hour.is_nan() || rate_per_hour <= 0.0 {
        return Ok(());
    }
    let hour_ns = 3_600_000_000_000.0;
    // Refuse up front when even the expected count is over the bound, instead of drawing a
    // million arrivals first.
    let expected = rate_per_hour * (end.saturating_since(start).as_nanos() as f64 / hour_ns);
    if expected > MAX_TIMELINE as f64 {
        return Err(FaultPlanError::TimelineTooLong);
    }
    // Mean gap in whole nanoseconds, at least 1 so time always advances.
    let mean = Duration::from_nanos(((hour_ns / rate_per_hour) as u64).max(1));
    let mut at = start;
    loop {
        at = at.saturating_add(rng.exp_duration(mean).max(Duration::from_nanos(1)));
        if at >= end {
            return Ok(());
        }
        if out.len() >= MAX_TIMELINE {
            return Err(FaultPlanError::TimelineTooLong);
        }
        let fault = make(rng, at);
        out.push(TimedFault { at, fault });
    }
}

/// The `--faults` choice: a named preset; `Swarm` resolves to a different plan per seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPreset {
    /// [`FaultPlan::none`].
    None,
    /// [`FaultPlan::mild`].
    Mild,
    /// [`FaultPlan::chaos`].
    Chaos,
    /// [`FaultPlan::swarm`], drawn from the seed.
    Swarm,
}

impl FaultPreset {
    /// The plan this preset gives for `seed` (only `Swarm` depends on it).
    pub fn plan(self, seed: u64) -> FaultPlan {
        match self {
            FaultPreset::None => FaultPlan::none(),
            FaultPreset::Mild => FaultPlan::mild(),
            FaultPreset::Chaos => FaultPlan::chaos(),
            FaultPreset::Swarm => FaultPlan::swarm(&mut SimRng::new(seed).fork("swarm")),
        }
    }

    /// The preset's CLI name.
    pub fn name(self) -> &'static str {
        match self {
            FaultPreset::None => "none",
            FaultPreset::Mild => "mild",
            FaultPreset::Chaos => "chaos",
            FaultPreset::Swarm => "swarm",
        }
    }
}

impl fmt::Display for FaultPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultPreset {
    type Err = FaultPlanError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(FaultPreset::None),
            "mild" => Ok(FaultPreset::Mild),
            "chaos" => Ok(FaultPreset::Chaos),
            "swarm" => Ok(FaultPreset::Swarm),
            other => Err(FaultPlanError::UnknownPreset(other.to_owned())),
        }
    }
}

impl FaultPlan {
    /// The default link of a run under this plan (no bandwidth limit: slow links are chosen
    /// per client by the world with [`LinkConfig::slow`]).
    pub fn link_config(&self) -> LinkConfig {
        LinkConfig {
            latency: self.latency,
            drop: self.drop,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_max: Duration::from_micros(self.reorder_max_us),
            corrupt: self.corrupt,
            bandwidth: None,
        }
    }
}

/// Checks a latency distribution's bounds (every value within [`MAX_FAULT_MS`]).
fn validate_latency(latency: &Latency) -> Result<(), FaultPlanError> {
    let max_us = MAX_FAULT_MS.saturating_mul(1000);
    let (a, b) = match *latency {
        Latency::Constant { us } => (us, us),
        Latency::Uniform { lo_us, hi_us } => {
            if lo_us > hi_us {
                return Err(FaultPlanError::LatencyBounds { lo_us, hi_us });
            }
            (lo_us, hi_us)
        }
        Latency::Exponential { mean_us, cap_us } => (mean_us, cap_us),
    };
    for value in [a, b] {
        if value > max_us {
            return Err(FaultPlanError::TooLong {
                field: "latency",
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_config_carries_the_plans_link_faults() {
        let plan = FaultPlan::chaos();
        let link = plan.link_config();
        assert_eq!(link.latency, plan.latency);
        assert_eq!(link.drop, plan.drop);
        assert_eq!(link.duplicate, plan.duplicate);
        assert_eq!(link.reorder, plan.reorder);
        assert_eq!(link.reorder_max, Duration::from_micros(plan.reorder_max_us));
        assert_eq!(link.corrupt, plan.corrupt);
        assert_eq!(link.bandwidth, None);
        assert!(
            link.drop > 0.0 && link.reorder > 0.0,
            "chaos has link faults to carry"
        );
    }

    #[test]
    fn presets_validate() {
        for preset in [FaultPlan::none(), FaultPlan::mild(), FaultPlan::chaos()] {
            assert_eq!(preset.validate(), Ok(()));
        }
        for seed in 0..200 {
            let plan = FaultPreset::Swarm.plan(seed);
            assert_eq!(plan.validate(), Ok(()), "seed {seed}: {plan:?}");
        }
    }

    #[test]
    fn swarm_same_seed_same_plan_and_seeds_differ() {
        assert_eq!(FaultPreset::Swarm.plan(5), FaultPreset::Swarm.plan(5));
        assert_ne!(FaultPreset::Swarm.plan(5), FaultPreset::Swarm.plan(6));
    }

    #[test]
    fn swarm_switches_about_half_the_faults_off() {
        let mut zero = 0u32;
        let mut total = 0u32;
        for seed in 0..400 {
            let p = FaultPreset::Swarm.plan(seed);
            for v in [
                p.drop,
                p.duplicate,
                p.reorder,
                p.corrupt,
                p.gateway_crashes_per_hour,
            ] {
                total += 1;
                zero += u32::from(v == 0.0);
            }
        }
        // 2000 coins at p = 1/2: sd ~ 22; allow 5 sd around 1000.
        assert!((890..=1110).contains(&zero), "{zero} of {total} off");
    }

    #[test]
    fn validate_out_of_range_fields_name_the_field() {
        let plan = FaultPlan {
            drop: 1.5,
            ..FaultPlan::none()
        };
        assert_eq!(
            plan.validate(),
            Err(FaultPlanError::Probability {
                field: "drop",
                value: 1.5
            })
        );
        let plan = FaultPlan {
            auth_slow: f64::NAN,
            ..FaultPlan::none()
        };
        assert!(matches!(
            plan.validate(),
            Err(FaultPlanError::Probability {
                field: "auth_slow",
                ..
            })
        ));
        let plan = FaultPlan {
            key_rotations_per_hour: -1.0,
            ..FaultPlan::none()
        };
        assert!(matches!(
            plan.validate(),
            Err(FaultPlanError::Rate {
                field: "key_rotations_per_hour",
                ..
            })
        ));
        let plan = FaultPlan {
            latency: Latency::Uniform { lo_us: 9, hi_us: 3 },
            ..FaultPlan::none()
        };
        assert_eq!(
            plan.validate(),
            Err(FaultPlanError::LatencyBounds { lo_us: 9, hi_us: 3 })
        );
    }

    #[test]
    fn plan_json_round_trips_and_missing_fields_default_to_off() {
        let chaos = FaultPlan::chaos();
        let text = serde_json::to_string(&chaos).unwrap();
        assert_eq!(serde_json::from_str::<FaultPlan>(&text).unwrap(), chaos);

        let partial: FaultPlan = serde_json::from_str(r#"{"drop": 0.25}"#).unwrap();
        assert_eq!(
            partial,
            FaultPlan {
                drop: 0.25,
                ..FaultPlan::none()
            }
        );
        assert!(serde_json::from_str::<FaultPlan>(r#"{"dorp": 0.25}"#).is_err());
    }

    #[test]
    fn preset_from_str_accepts_names_and_rejects_others() {
        for p in [
            FaultPreset::None,
            FaultPreset::Mild,
            FaultPreset::Chaos,
            FaultPreset::Swarm,
        ] {
            assert_eq!(p.name().parse::<FaultPreset>(), Ok(p));
        }
        assert_eq!(
            "Chaos".parse::<FaultPreset>(),
            Err(FaultPlanError::UnknownPreset("Chaos".into()))
        );
    }

    #[test]
    fn timeline_none_is_empty() {
        let tl = FaultPlan::none()
            .timeline(
                &SimRng::new(1),
                Instant::EPOCH,
                Duration::from_secs(3600),
                100,
            )
            .unwrap();
        assert!(tl.is_empty());
    }

    #[test]
    fn timeline_rate_matches_poisson_mean_and_stays_in_window() {
        let plan = FaultPlan {
            key_rotations_per_hour: 100.0,
            ..FaultPlan::none()
        };
        let start = Instant::from_unix_secs(1_000);
        let hours = 20u64;
        let tl = plan
            .timeline(
                &SimRng::new(2),
                start,
                Duration::from_secs(3600 * hours),
                10,
            )
            .unwrap();
        // Poisson mean 2000, sd ~ 45; allow 5 sd.
        assert!((1776..=2224).contains(&tl.len()), "{} rotations", tl.len());
        let end = start.saturating_add(Duration::from_secs(3600 * hours));
        assert!(tl.iter().all(|f| f.at > start && f.at < end));
        assert!(tl.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(tl.iter().all(|f| f.fault == Fault::KeyRotation));
    }

    #[test]
    fn timeline_kinds_draw_independent_streams() {
        let base = FaultPlan {
            gateway_crashes_per_hour: 10.0,
            gateway_restart_ms: 100,
            ..FaultPlan::none()
        };
        let busier = FaultPlan {
            auth_outages_per_hour: 50.0,
            auth_outage_ms: 10,
            ..base.clone()
        };
        let crashes = |plan: &FaultPlan| -> Vec<Instant> {
            plan.timeline(
                &SimRng::new(3),
                Instant::EPOCH,
                Duration::from_secs(7200),
                5,
            )
            .unwrap()
            .into_iter()
            .filter(|f| matches!(f.fault.name(), "gateway_crash" | "gateway_shutdown"))
            .map(|f| f.at)
            .collect()
        };
        let before = crashes(&base);
        assert!(!before.is_empty());
        assert_eq!(crashes(&busier), before);
    }

    #[test]
    fn gateway_stops_are_crashes_and_graceful_shutdowns_by_their_time() {
        let plan = FaultPlan {
            gateway_crashes_per_hour: 60.0,
            gateway_restart_ms: 100,
            ..FaultPlan::none()
        };
        let tl = plan
            .timeline(
                &SimRng::new(7),
                Instant::EPOCH,
                Duration::from_secs(7200),
                5,
            )
            .unwrap();
        let graceful = |f: &TimedFault| matches!(f.fault, Fault::GatewayShutdown { .. });
        assert!(tl.iter().all(|f| graceful(f) == (f.at.as_nanos() % 2 == 1)));
        let n = tl.iter().filter(|f| graceful(f)).count();
        assert!(n > 20 && n + 20 < tl.len(), "{n} of {} graceful", tl.len());
    }

    #[test]
    fn timeline_client_crashes_target_existing_clients() {
        let plan = FaultPlan {
            client_crashes_per_hour: 30.0,
            ..FaultPlan::none()
        };
        let tl = plan
            .timeline(
                &SimRng::new(4),
                Instant::EPOCH,
                Duration::from_secs(3600),
                7,
            )
            .unwrap();
        assert!(tl.len() > 100);
        assert!(
            tl.iter()
                .all(|f| matches!(f.fault, Fault::ClientCrash { client } if client < 7))
        );
    }

    #[test]
    fn timeline_too_many_faults_is_an_error() {
        let plan = FaultPlan {
            client_crashes_per_hour: MAX_RATE_PER_HOUR,
            ..FaultPlan::none()
        };
        assert_eq!(
            plan.timeline(
                &SimRng::new(4),
                Instant::EPOCH,
                Duration::from_secs(3600),
                100
            ),
            Err(FaultPlanError::TimelineTooLong)
        );
    }

    #[test]
    fn clock_skew_stays_within_bound_and_takes_both_signs() {
        let plan = FaultPlan {
            clock_skew_max_ms: 500,
            ..FaultPlan::none()
        };
        let mut rng = SimRng::new(8);
        let skews: Vec<i64> = (0..1000)
            .map(|_| plan.draw_clock_skew_ms(&mut rng))
            .collect();
        assert!(skews.iter().all(|s| (-500..=500).contains(s)));
        assert!(skews.iter().any(|s| *s < -250) && skews.iter().any(|s| *s > 250));
        assert_eq!(FaultPlan::none().draw_clock_skew_ms(&mut rng), 0);
    }
}
