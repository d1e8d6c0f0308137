//! A fold of the event log kept beside a running gateway, so that a crash restart costs
//! the log's tail rather than the whole log.
//!
//! A [`Checkpoint`] only ever advances by folding log entries in order, exactly as
//! [`Gateway::replay`] does; it never copies the live gateway's memory. A gateway restored
//! from it is therefore the gateway that replaying the whole log would build, and its
//! [`state_hash`](Checkpoint::state_hash) is the hash a full replay would report.

use crate::config::{Config, ConfigError};
use crate::gateway::Gateway;
use crate::ids::LogSeq;
use crate::log::LogEntry;
use crate::plant::Plants;
use crate::state::ReplayError;
use crate::token::KeyRing;

/// The state described by a prefix of the event log.
pub struct Checkpoint {
    folded: Gateway,
}

impl Checkpoint {
    /// The fold of the empty log for a gateway with this config and these plants.
    pub fn new(config: Config, plants: Plants) -> Result<Self, ConfigError> {
        Ok(Self {
            folded: Gateway::with_plants(config, KeyRing::new(), plants)?,
        })
    }

    /// Folds the next log entry. On error the checkpoint is unchanged.
    pub fn fold(&mut self, entry: &LogEntry) -> Result<(), ReplayError> {
        self.folded.fold(entry)
    }

    /// The last entry folded in (0 when none).
    pub fn last_log_seq(&self) -> LogSeq {
        self.folded.last_log_seq()
    }

    /// The state hash of the log folded so far.
    pub fn state_hash(&self) -> String {
        self.folded.state_hash()
    }

    /// Whether the log folded so far describes exactly `gateway`'s durable state (its
    /// state hash is then this checkpoint's). Asking this instead of comparing two hashes
    /// spares hashing the state twice: stream entries the fold shares with the gateway
    /// compare by pointer.
    pub fn matches(&self, gateway: &Gateway) -> bool {
        self.folded.same_state(gateway)
    }

    /// A gateway rebuilt from the log folded so far, validating with `ring` (sessions are
    /// restored as records; call [`Gateway::restart`] when the connections are gone).
    pub fn restore(&self, ring: KeyRing) -> Result<Gateway, ConfigError> {
        self.folded.restored(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Instant, LogSeq};

    fn entries(n: u64) -> Vec<LogEntry> {
        (1..=n)
            .map(|i| LogEntry {
                seq: LogSeq::new(i),
                at: Instant::from_unix_secs(i),
                event: Event::Restarted,
            })
            .collect()
    }

    #[test]
    fn checkpoint_fold_matches_a_full_replay() {
        let log = entries(5);
        let mut cp = Checkpoint::new(Config::default(), Plants::NONE).unwrap();
        for e in &log {
            cp.fold(e).unwrap();
        }
        let full = Gateway::replay(Config::default(), KeyRing::new(), Plants::NONE, log).unwrap();
        assert_eq!(cp.last_log_seq(), LogSeq::new(5));
        assert_eq!(cp.state_hash(), full.state_hash());
        let restored = cp.restore(KeyRing::new()).unwrap();
        assert_eq!(restored.state_hash(), full.state_hash());
        assert_eq!(restored.last_log_seq(), LogSeq::new(5));
        assert!(cp.matches(&full));
        let mut longer = Checkpoint::new(Config::default(), Plants::NONE).unwrap();
        for e in entries(6) {
            longer.fold(&e).unwrap();
        }
        assert!(!longer.matches(&full), "one more entry is another state");
        assert_ne!(longer.state_hash(), full.state_hash());
    }

    #[test]
    fn checkpoint_refuses_an_out_of_order_entry_and_stays_put() {
        let mut cp = Checkpoint::new(Config::default(), Plants::NONE).unwrap();
        let log = entries(3);
        cp.fold(&log[0]).unwrap();
        assert!(matches!(
            cp.fold(&log[2]),
            Err(ReplayError::OutOfOrder { .. })
        ));
        assert_eq!(cp.last_log_seq(), LogSeq::new(1));
    }
}
