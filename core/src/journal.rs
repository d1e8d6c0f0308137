//! The journal: the event log as a self-describing JSON Lines document (schema 4).
//!
//! ```text
//! {"kind":"header","schema":4,"config":{...},"plants":...}      first line
//! {"kind":"entry","seq":1,"at":...,"event":{"type":...}}        one per log entry
//! {"kind":"footer","state_hash":"<64 hex>","last_seq":N}        optional, last line
//! ```
//!
//! The simulator's `--log`, the server's `--journal` and `gauntlet replay` all use this one
//! format. Replaying needs no keys: validation is never redone, the fold only re-applies what
//! the log says happened. This module renders and parses text; it never touches files.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::gateway::Gateway;
use crate::ids::LogSeq;
use crate::log::LogEntry;
use crate::plant::Plants;
use crate::state::ReplayError;
use crate::token::KeyRing;

/// The journal schema this build writes and reads. Schema 2 changed what the footer's
/// `state_hash` covers (retained frames as raw bytes). Schema 3 stores a stream entry's
/// `payload` object instead of its rendered `frame`, with the entry's `seq` beside it in the
/// `stream_appended` event, and the hash covers payloads. Schema 4 writes a broadcast as one
/// `stream_broadcast` event, whose copies the fold derives, instead of one `stream_appended`
/// per connected user (the same streams, from a shorter log). A journal of an older schema is refused
/// as unsupported rather than as corrupt: the schema names the one format a build reads, so
/// a journal is never half-understood by a build that writes another.
pub const JOURNAL_SCHEMA: u32 = 4;

/// One line of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JournalLine {
    /// The first line: what produced the log.
    Header {
        /// Always [`JOURNAL_SCHEMA`].
        schema: u32,
        /// The gateway config (the fold depends on the seed and limits).
        config: Box<Config>,
        /// Planted bugs that were on (the fold depends on some of them).
        plants: Plants,
    },
    /// A log entry.
    Entry(LogEntry),
    /// The last line, when the writer finished cleanly.
    Footer {
        /// The state hash after the last entry.
        state_hash: String,
        /// The last entry's seq.
        last_seq: LogSeq,
    },
}

impl JournalLine {
    /// The line as JSON (without the newline).
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A replayed journal.
pub struct Replayed {
    /// The gateway folded from the entries.
    pub gateway: Gateway,
    /// The hash the footer recorded, if the journal had one (it matched, or replay failed).
    pub recorded_hash: Option<String>,
    /// How many entries were folded.
    pub entries: usize,
}

/// Most bytes of journal text `replay_journal` reads, to bound a hostile input.
pub const MAX_JOURNAL_BYTES: usize = 1 << 30;

/// Folds a journal into a fresh gateway and checks the footer's hash, if any. A journal
/// cut short (no footer, e.g. after a crash) replays what it has.
pub fn replay_journal(text: &str) -> Result<Replayed, ReplayError> {
    if text.len() > MAX_JOURNAL_BYTES {
        return Err(ReplayError::Parse {
            line: 0,
            reason: "journal too large".into(),
        });
    }
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let parse = |n: usize, l: &str| {
        serde_json::from_str::<JournalLine>(l).map_err(|e| ReplayError::Parse {
            line: n + 1,
            reason: e.to_string(),
        })
    };
    let (config, plants) = match lines.next() {
        Some((n, l)) => match parse(n, l)? {
            JournalLine::Header {
                schema: JOURNAL_SCHEMA,
                config,
                plants,
            } => (*config, plants),
            JournalLine::Header { schema, .. } => {
                return Err(ReplayError::Parse {
                    line: n + 1,
                    reason: format!(
                        "unsupported schema {schema} (this build reads schema {JOURNAL_SCHEMA}; \
                         replay the journal with the build that wrote it)"
                    ),
                });
            }
            _ => {
                return Err(ReplayError::Parse {
                    line: n + 1,
                    reason: "the first line must be the header".into(),
                });
            }
        },
        None => {
            return Err(ReplayError::Parse {
                line: 1,
                reason: "empty journal".into(),
            });
        }
    };
    let mut gateway = Gateway::replay(config, KeyRing::new(), plants, std::iter::empty())?;
    let mut recorded_hash = None;
    let mut entries = 0;
    for (n, l) in lines {
        if recorded_hash.is_some() {
            return Err(ReplayError::Parse {
                line: n + 1,
                reason: "line after the footer".into(),
            });
        }
        match parse(n, l)? {
            JournalLine::Entry(e) => {
                gateway.fold(&e)?;
                entries += 1;
            }
            JournalLine::Footer {
                state_hash,
                last_seq,
            } => {
                if last_seq != gateway.last_log_seq() {
                    return Err(ReplayError::Parse {
                        line: n + 1,
                        reason: "footer last_seq does not match".into(),
                    });
                }
                let replayed = gateway.state_hash();
                if replayed != state_hash {
                    return Err(ReplayError::HashMismatch {
                        recorded: state_hash,
                        replayed,
                    });
                }
                recorded_hash = Some(state_hash);
            }
            JournalLine::Header { .. } => {
                return Err(ReplayError::Parse {
                    line: n + 1,
                    reason: "a second header".into(),
                });
            }
        }
    }
    gateway.finish_replay();
    Ok(Replayed {
        gateway,
        recorded_hash,
        entries,
    })
}
