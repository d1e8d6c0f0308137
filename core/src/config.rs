//! The one typed `Config` of the gateway (docs/protocol.md: "every number below is a default").
//!
//! Loadable from JSON or TOML through serde (missing fields take the protocol defaults,
//! unknown fields are rejected so a typo never silently means "default"), and checked by
//! [`Config::validate`] before a gateway is built from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ratelimit::Rate;
use crate::token::TokenRules;

/// Everything configurable about the gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Token rules: issuer, audiences, leeway, lifetimes.
    pub tokens: TokenRules,
    /// Connection, frame, queue, outbox and rate limits.
    pub limits: Limits,
    /// The agent-run model.
    pub agent: AgentConfig,
    /// Seeds everything the gateway draws (agent plans, ticket values). Same seed, same bytes.
    pub seed: u64,
}

/// Limits and policies of docs/protocol.md sections 1, 8, 9 and 14. Durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest inbound text frame; larger closes with 1009.
    pub max_frame_bytes: usize,
    /// Open connections per user; one more is refused with 429.
    pub max_connections_per_user: usize,
    /// Open connections in total; one more is refused with 503-free 429.
    pub max_connections: usize,
    /// Frames in flight to one connection before it is closed with 1013.
    pub send_queue_capacity: usize,
    /// Events an outbox keeps per user.
    pub outbox_max_events: usize,
    /// How long an outbox keeps an event.
    pub outbox_retention_ms: u64,
    /// Protocol errors tolerated per window; one more closes with 1008.
    pub protocol_error_budget: u32,
    /// The protocol-error window.
    pub protocol_error_window_ms: u64,
    /// Per-user inbound message rate.
    pub user_rate: Rate,
    /// Per-IP handshake rate.
    pub ip_handshake_rate: Rate,
    /// Per-IP rate of the HTTP requests that verify a bearer token before anything else
    /// (`POST /tickets`, `POST /revocations`), charged before the verification by the server
    /// that serves them (docs/protocol.md `HTTP-IP-RATE`).
    pub ip_http_auth_rate: Rate,
    /// Heartbeat interval: open connections are re-checked for revocation at least this often.
    pub heartbeat_interval_ms: u64,
    /// Single-use ticket lifetime.
    pub ticket_ttl_ms: u64,
    /// Most unredeemed tickets held.
    pub max_tickets: usize,
    /// Most unexpired, unredeemed tickets one user may hold; one more is refused with 429
    /// `too_many_tickets_per_user`, so one user cannot take the whole store.
    pub max_tickets_per_user: usize,
    /// Whether `?token=` is accepted at the handshake.
    pub allow_query_token: bool,
    /// Allowed `Origin` values; empty means no origin check.
    pub origin_allow_list: Vec<String>,
    /// How old the revocation feed may be before new handshakes and reauth fail closed.
    pub max_revocation_staleness_ms: u64,
    /// Threads one user may own.
    pub max_threads_per_user: usize,
    /// Runs one user may have in progress.
    pub max_active_runs_per_user: usize,
    /// Subscriptions one connection may hold.
    pub max_subscriptions_per_connection: usize,
    /// IP addresses whose handshake buckets are tracked at once.
    pub max_tracked_ips: usize,
    /// Validation results the token cache holds (`AUTH-CACHE-BOUND`).
    pub max_cached_tokens: usize,
    /// Longest `user_message` content, in bytes.
    pub max_content_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 8192,
            max_connections_per_user: 10,
            max_connections: 200_000,
            send_queue_capacity: 1024,
            outbox_max_events: 10_000,
            outbox_retention_ms: 10 * 60 * 1000,
            protocol_error_budget: 10,
            protocol_error_window_ms: 60_000,
            user_rate: Rate {
                per_second: 10,
                burst: 20,
            },
            ip_handshake_rate: Rate {
                per_second: 5,
                burst: 10,
            },
            ip_http_auth_rate: Rate {
                per_second: 5,
                burst: 10,
            },
            heartbeat_interval_ms: 30_000,
            ticket_ttl_ms: 30_000,
            max_tickets: 100_000,
            max_tickets_per_user: 8,
            allow_query_token: false,
            origin_allow_list: Vec::new(),
            max_revocation_staleness_ms: 5_000,
            max_threads_per_user: 1_000,
            max_active_runs_per_user: 8,
            max_subscriptions_per_connection: 64,
            max_tracked_ips: 100_000,
            max_cached_tokens: crate::token::DEFAULT_CACHE_CAPACITY,
            max_content_bytes: 4096,
        }
    }
}

impl Limits {
    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

/// The agent-run model: how many steps a run takes and how long each step lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// Most `agent_thinking` events per run.
    pub max_thinking: u32,
    /// Most tool calls per run.
    pub max_tools: u32,
    /// Shortest delay between two events of a run.
    pub min_step_ms: u64,
    /// Longest delay between two events of a run.
    pub max_step_ms: u64,
    /// Chance (per mille) that a run ends with `agent_failed` instead of `agent_completed`.
    pub failure_per_mille: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            max_thinking: 3,
            max_tools: 2,
            min_step_ms: 20,
            max_step_ms: 400,
            failure_per_mille: 50,
        }
    }
}

/// A config value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit that must be positive is zero.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A range whose minimum exceeds its maximum.
    #[error("{0}: minimum exceeds maximum")]
    InvertedRange(&'static str),
    /// A per-mille value over 1000.
    #[error("{0} must be at most 1000")]
    PerMille(&'static str),
    /// A value over the most that can work: it sizes an allocation (an agent run's plan, a
    /// connection's send queue), so a huge one would abort the process instead of failing.
    #[error("{0} must be at most {1}")]
    TooLarge(&'static str, u64),
    /// The config text did not parse.
    #[error("config does not parse: {0}")]
    Parse(String),
}

/// Most `agent_thinking` events, and most tool calls, a run may plan: a run's plan is held
/// whole, so this bounds what one `user_message` can make the gateway allocate.
pub(crate) const MAX_RUN_STEPS: u64 = 1000;

/// Largest per-connection send queue: far past any useful depth, and within what the
/// server's bounded channels accept.
pub(crate) const MAX_SEND_QUEUE: u64 = 1 << 20;

/// Longest delay between two events of a run: an hour, far past any useful pacing. A tool's
/// duration is one such delay and is kept in 32 bits of milliseconds in every retained
/// `tool_completed`, which this keeps exact.
pub(crate) const MAX_STEP_MS: u64 = 60 * 60 * 1000;

impl Config {
    /// Parses a JSON config; missing fields take the protocol defaults.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let c: Config =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks that every value can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let positive: [(&'static str, u64); 13] = [
            ("limits.max_frame_bytes", l.max_frame_bytes as u64),
            (
                "limits.max_connections_per_user",
                l.max_connections_per_user as u64,
            ),
            ("limits.max_connections", l.max_connections as u64),
            ("limits.send_queue_capacity", l.send_queue_capacity as u64),
            ("limits.outbox_max_events", l.outbox_max_events as u64),
            ("limits.outbox_retention_ms", l.outbox_retention_ms),
            (
                "limits.protocol_error_window_ms",
                l.protocol_error_window_ms,
            ),
            ("limits.heartbeat_interval_ms", l.heartbeat_interval_ms),
            ("limits.max_tickets", l.max_tickets as u64),
            ("limits.max_tickets_per_user", l.max_tickets_per_user as u64),
            ("limits.max_tracked_ips", l.max_tracked_ips as u64),
            ("limits.max_cached_tokens", l.max_cached_tokens as u64),
            ("limits.max_threads_per_user", l.max_threads_per_user as u64),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Zero(name));
        }
        if l.user_rate.burst == 0 {
            return Err(ConfigError::Zero("limits.user_rate.burst"));
        }
        if l.ip_handshake_rate.burst == 0 {
            return Err(ConfigError::Zero("limits.ip_handshake_rate.burst"));
        }
        if l.ip_http_auth_rate.burst == 0 {
            return Err(ConfigError::Zero("limits.ip_http_auth_rate.burst"));
        }
        if self.agent.min_step_ms > self.agent.max_step_ms {
            return Err(ConfigError::InvertedRange(
                "agent.min_step_ms..agent.max_step_ms",
            ));
        }
        if self.agent.failure_per_mille > 1000 {
            return Err(ConfigError::PerMille("agent.failure_per_mille"));
        }
        let bounded: [(&'static str, u64, u64); 4] = [
            (
                "agent.max_thinking",
                u64::from(self.agent.max_thinking),
                MAX_RUN_STEPS,
            ),
            (
                "agent.max_tools",
                u64::from(self.agent.max_tools),
                MAX_RUN_STEPS,
            ),
            ("agent.max_step_ms", self.agent.max_step_ms, MAX_STEP_MS),
            (
                "limits.send_queue_capacity",
                l.send_queue_capacity as u64,
                MAX_SEND_QUEUE,
            ),
        ];
        if let Some((name, _, max)) = bounded.iter().find(|(_, v, max)| v > max) {
            return Err(ConfigError::TooLarge(name, *max));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_protocol() {
        let c = Config::default();
        assert_eq!(c.limits.max_frame_bytes, 8192);
        assert_eq!(c.limits.max_connections_per_user, 10);
        assert_eq!(c.limits.send_queue_capacity, 1024);
        assert_eq!(c.limits.outbox_max_events, 10_000);
        assert_eq!(
            c.limits.user_rate,
            Rate {
                per_second: 10,
                burst: 20
            }
        );
        assert_eq!(
            c.limits.ip_handshake_rate,
            Rate {
                per_second: 5,
                burst: 10
            }
        );
        assert_eq!(c.limits.ip_http_auth_rate, c.limits.ip_handshake_rate);
        assert_eq!(c.limits.max_revocation_staleness_ms, 5_000);
        assert_eq!(c.validate(), Ok(()));
        let mut zero = Config::default();
        zero.limits.ip_http_auth_rate.burst = 0;
        assert_eq!(
            zero.validate(),
            Err(ConfigError::Zero("limits.ip_http_auth_rate.burst"))
        );
    }

    #[test]
    fn json_partial_config_keeps_defaults_and_rejects_typos() {
        let c = Config::from_json(r#"{"limits":{"max_frame_bytes":100}}"#);
        assert_eq!(c.as_ref().map(|c| c.limits.max_frame_bytes), Ok(100));
        assert_eq!(c.map(|c| c.limits.send_queue_capacity), Ok(1024));
        assert!(matches!(
            Config::from_json(r#"{"limits":{"max_frame_byte":100}}"#),
            Err(ConfigError::Parse(_))
        ));
        assert_eq!(
            Config::from_json(r#"{"limits":{"send_queue_capacity":0}}"#),
            Err(ConfigError::Zero("limits.send_queue_capacity"))
        );
        assert_eq!(
            Config::from_json(r#"{"agent":{"min_step_ms":10,"max_step_ms":5}}"#),
            Err(ConfigError::InvertedRange(
                "agent.min_step_ms..agent.max_step_ms"
            ))
        );
    }

    #[test]
    fn values_that_size_an_allocation_are_bounded() {
        for (json, name, max) in [
            (
                r#"{"agent":{"max_thinking":1001}}"#,
                "agent.max_thinking",
                MAX_RUN_STEPS,
            ),
            (
                r#"{"agent":{"max_tools":4294967295}}"#,
                "agent.max_tools",
                MAX_RUN_STEPS,
            ),
            (
                r#"{"agent":{"max_step_ms":3600001}}"#,
                "agent.max_step_ms",
                MAX_STEP_MS,
            ),
            (
                r#"{"limits":{"send_queue_capacity":18446744073709551615}}"#,
                "limits.send_queue_capacity",
                MAX_SEND_QUEUE,
            ),
        ] {
            let err = Config::from_json(json).map(|_| ());
            assert_eq!(err, Err(ConfigError::TooLarge(name, max)), "{json}");
            assert_eq!(
                err.map_err(|e| e.to_string()),
                Err(format!("{name} must be at most {max}"))
            );
        }
        let at_the_bounds = r#"{"agent":{"max_thinking":1000,"max_tools":1000,"max_step_ms":3600000},"limits":{"send_queue_capacity":1048576}}"#;
        assert!(Config::from_json(at_the_bounds).is_ok());
    }
}
