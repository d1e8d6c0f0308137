//! The journal on disk: a header line when the file is new, one line per log entry as the
//! gateway emits it, a footer on clean shutdown (see [`gauntlet_core::JournalLine`]).
//!
//! On start with an existing journal it replays the file ([`replay_journal`]) and, when the
//! last run ended cleanly, cuts the footer off so appending continues the same document. It
//! only writes what the gateway emitted and never reorders or drops an entry.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{JournalOptions, ServerError};
use gauntlet_core::Config;
use gauntlet_core::ConnId;
use gauntlet_core::Gateway;
use gauntlet_core::Plants;
use gauntlet_core::{Event, LogEntry};
use gauntlet_core::{JOURNAL_SCHEMA, JournalLine, MAX_JOURNAL_BYTES, Replayed, replay_journal};

/// When the journal is fsynced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every batch of entries, before any frame of that batch is sent.
    Always,
    /// Once per second when anything was written (up to a second of entries can be lost).
    #[default]
    Interval,
    /// Never explicitly (the OS decides); the footer is still synced on clean shutdown.
    Never,
}

/// An open journal being appended to.
pub(crate) struct JournalFile {
    path: PathBuf,
    out: BufWriter<File>,
    policy: FsyncPolicy,
    dirty: bool,
}

/// A journal found on disk and replayed.
pub(crate) struct Recovered {
    pub(crate) replayed: Replayed,
    pub(crate) file: JournalFile,
    /// The largest connection id the journal mentions, so new ids never reuse one.
    pub(crate) max_conn: u64,
}

impl JournalFile {
    /// Replays an existing, non-empty journal and reopens it for appending; `None` if there is none.
    pub(crate) fn recover(options: &JournalOptions) -> Result<Option<Recovered>, ServerError> {
        let path = &options.path;
        let io_err = |source| ServerError::Journal {
            path: path.clone(),
            source,
        };
        let text = match fs::metadata(path) {
            Ok(m) if m.len() == 0 => return Ok(None),
            Ok(m) if m.len() > MAX_JOURNAL_BYTES as u64 => {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "journal larger than MAX_JOURNAL_BYTES",
                )));
            }
            Ok(_) => fs::read_to_string(path).map_err(io_err)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let replayed = replay_journal(&text)?;
        let max_conn = max_conn_id(&text);
        let keep = if replayed.recorded_hash.is_some() {
            // The footer is the last non-empty line: continue the document where it ended.
            text.trim_end().rfind('\n').map_or(0, |i| i + 1)
        } else {
            text.len()
        };
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(keep as u64))
            .map_err(io_err)?;
        let mut file = OpenOptions::new().append(true).open(path).map_err(io_err)?;
        if keep > 0 && !text.get(..keep).unwrap_or_default().ends_with('\n') {
            // A run that stopped without a footer may leave its last line unterminated.
            file.write_all(b"\n").map_err(io_err)?;
        }
        file.sync_all().map_err(io_err)?;
        Ok(Some(Recovered {
            replayed,
            file: JournalFile {
                path: path.clone(),
                out: BufWriter::new(file),
                policy: options.fsync,
                dirty: false,
            },
            max_conn,
        }))
    }

    /// Creates (or truncates an empty) journal and writes its header.
    pub(crate) fn create(
        options: &JournalOptions,
        config: &Config,
        plants: Plants,
    ) -> Result<JournalFile, ServerError> {
        let path = &options.path;
        let file = File::create(path).map_err(|source| ServerError::Journal {
            path: path.clone(),
            source,
        })?;
        let mut j = JournalFile {
            path: path.clone(),
            out: BufWriter::new(file),
            policy: options.fsync,
            dirty: false,
        };
        let header = JournalLine::Header {
            schema: JOURNAL_SCHEMA,
            config: Box::new(config.clone()),
            plants,
        };
        j.write_line(&header)?;
        j.flush(true)?;
        Ok(j)
    }

    /// Appends entries and pushes them to the OS (and to disk under `always`).
    pub(crate) fn append(&mut self, entries: &[LogEntry]) -> Result<(), ServerError> {
        if entries.is_empty() {
            return Ok(());
        }
        for e in entries {
            self.write_line(&JournalLine::Entry(e.clone()))?;
        }
        self.flush(self.policy == FsyncPolicy::Always)
    }

    /// The `interval` policy's sync: every second, and before a revocation batch is
    /// acknowledged (`always` has synced already; `never` leaves it to the OS).
    pub(crate) fn sync_if_dirty(&mut self) -> Result<(), ServerError> {
        if self.dirty && self.policy == FsyncPolicy::Interval {
            self.flush(true)?;
        }
        Ok(())
    }

    /// Writes the footer and syncs (clean shutdown).
    pub(crate) fn finish(&mut self, gw: &Gateway) -> Result<(), ServerError> {
        let footer = JournalLine::Footer {
            state_hash: gw.state_hash(),
            last_seq: gw.last_log_seq(),
        };
        self.write_line(&footer)?;
        self.flush(true)
    }

    fn write_line(&mut self, line: &JournalLine) -> Result<(), ServerError> {
        let text = line.render();
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|source| self.error(source))?;
        self.dirty = true;
        Ok(())
    }

    fn flush(&mut self, sync: bool) -> Result<(), ServerError> {
        self.out.flush().map_err(|source| self.error(source))?;
        if sync {
            self.out
                .get_ref()
                .sync_data()
                .map_err(|source| self.error(source))?;
            self.dirty = false;
        }
        Ok(())
    }

    fn error(&self, source: io::Error) -> ServerError {
        ServerError::Journal {
            path: self.path.clone(),
            source,
        }
    }
}

fn max_conn_id(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| serde_json::from_str::<JournalLine>(l).ok())
        .filter_map(|l| match l {
            JournalLine::Entry(LogEntry {
                event: Event::SessionOpened { conn, .. },
                ..
            }) => Some(conn),
            _ => None,
        })
        .map(ConnId::get)
        .max()
        .unwrap_or(0)
}
