//! # gauntlet-core
//!
//! The Gauntlet gateway: a JWT-authenticated WebSocket gateway that streams AI-agent events
//! to users (see `docs/protocol.md`), written once as a **sans-IO, event-sourced state machine**.
//!
//! This crate does no I/O. It never opens a socket, reads a clock, spawns a thread, reads
//! the environment or touches the OS RNG: time comes in as an [`Instant`] argument, bytes
//! come in as values, and everything the gateway wants done (send a frame, close a
//! connection, arm a timer, append to the log) goes out as a value. The deterministic
//! simulator, the fuzzers and the real tokio server all drive this one implementation, so
//! what the simulator proves is true of what ships.
//!
//! Main parts:
//! * [`token`]: JWS parsing, the key ring, claim rules, revocation, the validation cache,
//!   refresh rotation and token issuing;
//! * [`oauth`]: the authorization-code + PKCE model of the auth service;
//! * [`auth_service`]: the auth node (login, refresh rotation, OAuth, key rotation, the
//!   revocation feed the gateway pulls);
//! * [`permissions`]: `resource:action` grant matching;
//! * [`trace`]: the Chrome trace-event format every driver's `--trace` writes (to a
//!   caller's writer: this crate still opens no file).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agent;
mod checkpoint;
mod config;
mod conn_set;
mod error;
mod expiring_map;
mod gateway;
mod id_hash;
mod ids;
mod journal;
mod log;
mod outbox;
mod payload;
mod plant;
mod ratelimit;
mod session;
mod state;
mod time;

pub mod auth_service;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod oauth;
pub mod permissions;
pub mod protocol;
pub mod token;
pub mod trace;

pub use agent::{AGENT_NAME, AgentStep, plan as agent_plan};
pub use checkpoint::Checkpoint;
pub use config::{AgentConfig, Config, ConfigError, Limits};
pub use error::{CloseCode, ErrorCode, HttpStatus};
pub use gateway::{
    AuthUpdate, ControlFrame, Effects, Gateway, GatewayStats, HandshakeDecision, Input,
    IssuedTicket, Outputs, TicketRefusal,
};
pub use journal::{JOURNAL_SCHEMA, JournalLine, MAX_JOURNAL_BYTES, Replayed, replay_journal};
pub use log::{CloseReason, CredentialKind, Event, Identity, LogEntry};
pub use outbox::StreamEntry;
pub use payload::Payload;
pub use protocol::{StreamKind, WireFrame};
pub use ratelimit::{IDLE_SCAN_INTERVAL, IpLimiter, Rate, TokenBucket};
pub use state::ReplayError;

pub use id_hash::{IdHasher, IdTable};
pub use ids::{ConnId, FamilyId, Jti, Kid, LogSeq, RunId, Seq, ThreadId, UserId};
pub use ids::{MAX_JTI_LEN, MAX_THREAD_ID_LEN, MAX_USER_ID_LEN};
pub use plant::Plants;
#[cfg(feature = "planted-bugs")]
pub use plant::{Plant, UnknownPlant};
pub use time::{Instant, TimerTable};
