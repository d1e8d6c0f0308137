//! The `--trace` file of `gauntlet serve` and `gauntlet load`: a capped
//! [`TraceWriter`] (the simulator's Chrome trace format, `gauntlet_core::trace`) over a
//! buffered file, whose times are wall-clock microseconds since the run started.
//!
//! Tracing is a diagnostic, so a write that fails does not stop the server or the load: the
//! trace stops there, the first error is kept, and the run reports it when it ends
//! ([`TraceFile::finish`]). What is traced is decided by `serve_trace` and `load_trace`.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::PathBuf;

use gauntlet_core::Instant;
use gauntlet_core::trace::{TraceWriter, WORLD_TRACK};

/// Events a trace holds by default: about 60 MB of JSON, and (for `load`, which keeps its
/// events until the run ends) about as much memory.
pub const DEFAULT_MAX_TRACE_EVENTS: u64 = 500_000;

/// Where to write a trace and how many events it may hold.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// The Chrome trace JSON file (opens in Perfetto or `chrome://tracing`).
    pub path: PathBuf,
    /// Most events written; the last is a `trace truncated` note when the cap is reached.
    pub max_events: u64,
}

/// A trace file being written.
pub(crate) struct TraceFile {
    path: PathBuf,
    state: State,
}

enum State {
    Writing(TraceWriter<BufWriter<File>>),
    /// A write failed: the trace stops there, the server or load goes on.
    Failed(io::Error),
}

/// What a finished trace left: how many events the cap kept out of the file.
pub(crate) type Dropped = u64;

impl TraceFile {
    /// Creates the file and writes the process name (`process`) and the name of the track
    /// for events not tied to one connection (`world`). Time zero is `origin`.
    pub(crate) fn create(
        options: &TraceOptions,
        origin: Instant,
        process: &str,
        world: &str,
    ) -> Result<Self, (PathBuf, io::Error)> {
        let fail = |e| (options.path.clone(), e);
        let file = File::create(&options.path).map_err(fail)?;
        let mut w = TraceWriter::capped(BufWriter::new(file), origin, process, options.max_events)
            .map_err(fail)?;
        w.name_track(WORLD_TRACK, world).map_err(fail)?;
        Ok(Self {
            path: options.path.clone(),
            state: State::Writing(w),
        })
    }

    /// Writes with `f`, unless an earlier write failed; a failure stops the trace.
    pub(crate) fn write(
        &mut self,
        f: impl FnOnce(&mut TraceWriter<BufWriter<File>>) -> io::Result<()>,
    ) {
        if let State::Writing(w) = &mut self.state
            && let Err(e) = f(w)
        {
            self.state = State::Failed(e);
        }
    }

    /// Closes the JSON array and flushes: the events the cap dropped, or the first error.
    pub(crate) fn finish(self) -> Result<Dropped, (PathBuf, io::Error)> {
        let w = match self.state {
            State::Writing(w) => w,
            State::Failed(e) => return Err((self.path, e)),
        };
        let dropped = w.dropped();
        w.finish()
            .and_then(|mut f| f.flush())
            .map_err(|e| (self.path, e))?;
        Ok(dropped)
    }
}
