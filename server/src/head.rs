//! The HTTP request head of an accepted socket, read with `peek` so tungstenite can read
//! it again for the upgrade. Both the WebSocket path (`conn`) and the plain HTTP endpoints
//! (`http`) start from it.
//!
//! It must never consume bytes from the socket or read more than [`MAX_HEAD_BYTES`].

use std::time::Duration;

use gauntlet_core::protocol::{MAX_HANDSHAKE_BYTES, MAX_HEADERS};
use tokio::net::TcpStream;

/// Longest request head (request line + headers) read: the gateway's own handshake bound
/// plus room for the request line and the WebSocket headers it does not count.
pub(crate) const MAX_HEAD_BYTES: usize = MAX_HANDSHAKE_BYTES + 4096;
/// The parsed request head.
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    /// Bytes of the head, including the blank line.
    pub(crate) len: usize,
}

impl Head {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|u| u.to_ascii_lowercase().contains("websocket"))
    }
}

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The peer went away or sent nothing in time.
    Gone,
    /// Not HTTP/1.x, too many headers, or longer than [`MAX_HEAD_BYTES`].
    Bad,
}

/// Reads the request head without consuming it, so tungstenite can read it again.
pub(crate) async fn peek_head(stream: &TcpStream) -> Result<Head, HeadError> {
    let mut buf = vec![0u8; MAX_HEAD_BYTES];
    let mut seen = 0;
    let mut backoff = Duration::from_millis(1);
    loop {
        let n = stream.peek(&mut buf).await.map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        let bytes = buf.get(..n).ok_or(HeadError::Bad)?;
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS + 16];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(bytes) {
            Ok(httparse::Status::Complete(len)) => {
                let target = req.path.ok_or(HeadError::Bad)?;
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), Some(q.to_string())),
                    None => (target.to_string(), None),
                };
                let headers = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                return Ok(Head {
                    method: req.method.unwrap_or_default().to_string(),
                    path,
                    query,
                    headers,
                    len,
                });
            }
            Ok(httparse::Status::Partial) if n < MAX_HEAD_BYTES => {
                if n == seen {
                    // `peek` returns at once while bytes are buffered, so a client that dribbles
                    // its head is polled, backing off to 50 ms (and cut off by HEAD_TIMEOUT).
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                } else {
                    backoff = Duration::from_millis(1);
                }
                seen = n;
            }
            _ => return Err(HeadError::Bad),
        }
    }
}
