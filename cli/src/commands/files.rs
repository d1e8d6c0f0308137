//! Reading the small files commands take (keys, secrets, configs), with a size bound so a
//! wrong path (a disk image, `/dev/zero`) fails fast instead of filling memory.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Reads `path` if it holds at most `max` bytes: `Err(Some(e))` when it cannot be read,
/// `Err(None)` when it is larger. Callers map both into their own error naming the file.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Option<io::Error>> {
    let file = fs::File::open(path).map_err(Some)?;
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf).map_err(Some)?;
    if buf.len() as u64 > max {
        return Err(None);
    }
    Ok(buf)
}
