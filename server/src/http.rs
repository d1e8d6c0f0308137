//! Plain HTTP on the WebSocket port: `GET /healthz`, `GET /metrics`, `POST /tickets`,
//! `POST /revocations`, and the watched revocations file.
//!
//! Tickets are the gateway's (`Input::IssueTicket`). `POST /revocations` needs a *service*
//! token whose permissions allow `revocations:write`: the gateway task checks it against the
//! gateway's current key ring and revocation list ([`gauntlet_core::Gateway::check_service_token`]),
//! and this module checks the permission; the revocations themselves reach the gateway only
//! through the feed, and are acknowledged once journaled. Both endpoints are charged to the
//! peer's address before their token is verified (`HTTP-IP-RATE`). Every body and line is
//! bounded; nothing here panics on input.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::FEED_INTERVAL;
use super::driver::{Cmd, HttpRefusal};
use super::head::Head;
use gauntlet_core::protocol::{JWT_SUBPROTOCOL_REQUIRED, JWT_SUBPROTOCOL_REQUIRED_HINT};
use gauntlet_core::token::Revocation;

/// Largest request body read.
pub(crate) const MAX_BODY_BYTES: usize = 1 << 20;
/// Most revocations in one `POST /revocations`.
pub(crate) const MAX_REVOCATIONS_PER_REQUEST: usize = 10_000;
/// Most bytes of the revocations file read per poll.
const MAX_FILE_READ: u64 = 1 << 20;
/// How long a client has to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The permission a service token needs for `POST /revocations`.
pub const REVOCATIONS_WRITE: &str = "revocations:write";

/// A JSON error body: `{"error": code, "retry_after_ms"?: n, "hint"?: text}`. The hint says
/// how to fix a request a standard client can fix (a `jwt.<token>` offered without `jwt`);
/// no body ever repeats the credential.
pub(crate) fn error_body(code: &str, retry_after_ms: Option<u64>) -> String {
    let mut body = json!({"error": code});
    if let Some(ms) = retry_after_ms {
        body["retry_after_ms"] = json!(ms);
    }
    if code == JWT_SUBPROTOCOL_REQUIRED {
        body["hint"] = json!(JWT_SUBPROTOCOL_REQUIRED_HINT);
    }
    body.to_string()
}

pub(crate) async fn respond_error(
    stream: &mut TcpStream,
    status: u16,
    code: &str,
) -> std::io::Result<()> {
    let answer = Answer::json(status, error_body(code, None));
    respond(stream, &answer).await
}

/// One response: status, content type, body, and `Retry-After` (seconds) when retryable.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: String,
    retry_after_ms: Option<u64>,
}

impl Answer {
    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: "application/json",
            body,
            retry_after_ms: None,
        }
    }

    fn refused(r: &HttpRefusal) -> Self {
        Self {
            retry_after_ms: r.retry_after_ms,
            ..Self::json(r.status, error_body(r.code, r.retry_after_ms))
        }
    }
}

async fn respond(stream: &mut TcpStream, answer: &Answer) -> std::io::Result<()> {
    let Answer {
        status,
        content_type,
        body,
        retry_after_ms,
    } = answer;
    let reason = match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => "Service Unavailable",
    };
    let retry = retry_after_ms
        .map(|ms| format!("Retry-After: {}\r\n", ms.div_ceil(1000)))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{retry}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// Serves one plain HTTP request (the head was peeked, not consumed) and closes.
pub(crate) async fn serve(
    mut stream: TcpStream,
    head: Head,
    peer: IpAddr,
    cmd: &mpsc::Sender<Cmd>,
) {
    let body = match read_body(&mut stream, &head).await {
        Ok(body) => body,
        Err(status) => {
            let _ = respond_error(&mut stream, status, "bad_body").await;
            return;
        }
    };
    let answer = route(&head, &body, peer, cmd).await;
    let _ = respond(&mut stream, &answer).await;
}

async fn read_body(stream: &mut TcpStream, head: &Head) -> Result<Vec<u8>, u16> {
    let mut consumed = vec![0u8; head.len];
    stream.read_exact(&mut consumed).await.map_err(|_| 400u16)?;
    let len: usize = match head.header("content-length") {
        Some(v) => v.trim().parse().map_err(|_| 400u16)?,
        None => 0,
    };
    if len > MAX_BODY_BYTES {
        return Err(413);
    }
    let mut body = vec![0u8; len];
    match tokio::time::timeout(BODY_TIMEOUT, stream.read_exact(&mut body)).await {
        Ok(Ok(_)) => Ok(body),
        _ => Err(400),
    }
}

async fn route(head: &Head, body: &[u8], peer: IpAddr, cmd: &mpsc::Sender<Cmd>) -> Answer {
    let unavailable = || Answer::json(503, error_body("shutting_down", None));
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/healthz") => Answer {
            content_type: "text/plain",
            ..Answer::json(200, "ok\n".into())
        },
        ("GET", "/metrics") => {
            let (reply, answer) = oneshot::channel();
            if cmd.send(Cmd::Metrics(reply)).await.is_err() {
                return unavailable();
            }
            match answer.await {
                Ok(text) => Answer {
                    content_type: "text/plain; version=0.0.4",
                    ..Answer::json(200, text)
                },
                Err(_) => unavailable(),
            }
        }
        ("POST", "/tickets") => {
            let (reply, answer) = oneshot::channel();
            let authorization = head.header("authorization").map(str::to_string);
            let asked = Cmd::Ticket {
                peer,
                authorization,
                reply,
            };
            if cmd.send(asked).await.is_err() {
                return unavailable();
            }
            match answer.await {
                Ok(Ok(t)) => {
                    let body =
                        json!({"ticket": t.ticket, "expires_at_ms": t.expires.unix_millis()});
                    Answer::json(200, body.to_string())
                }
                Ok(Err(refusal)) => Answer::refused(&refusal),
                Err(_) => unavailable(),
            }
        }
        ("POST", "/revocations") => revocations(head, body, peer, cmd).await,
        ("GET", "/ws") => Answer::json(400, error_body("websocket_upgrade_required", None)),
        (_, "/healthz" | "/metrics" | "/tickets" | "/revocations") => {
            Answer::json(405, error_body("method_not_allowed", None))
        }
        _ => Answer::json(404, error_body("not_found", None)),
    }
}

async fn revocations(head: &Head, body: &[u8], peer: IpAddr, cmd: &mpsc::Sender<Cmd>) -> Answer {
    let unavailable = || Answer::json(503, error_body("shutting_down", None));
    let token = head
        .header("authorization")
        .and_then(|a| a.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token else {
        return Answer::json(401, error_body("missing_credential", None));
    };
    // Checked by the gateway task against the ring and revocations in force now, never a
    // copy taken at startup: a revoked service token must stop working at once.
    let (reply, answer) = oneshot::channel();
    let asked = Cmd::ServiceAuth {
        peer,
        token: token.to_string(),
        reply,
    };
    if cmd.send(asked).await.is_err() {
        return unavailable();
    }
    let claims = match answer.await {
        Ok(Ok(c)) => c,
        Ok(Err(refusal)) => return Answer::refused(&refusal),
        Err(_) => return unavailable(),
    };
    if !claims.permissions().allows(REVOCATIONS_WRITE) {
        return Answer::json(403, error_body("permission_denied", None));
    }
    let list: Vec<Revocation> = match serde_json::from_slice(body) {
        Ok(list) => list,
        Err(_) => return Answer::json(400, error_body("bad_revocations", None)),
    };
    if list.len() > MAX_REVOCATIONS_PER_REQUEST {
        return Answer::json(413, error_body("too_many_revocations", None));
    }
    let (reply, answer) = oneshot::channel();
    let asked = Cmd::Revoke {
        revocations: list,
        reply,
    };
    if cmd.send(asked).await.is_err() {
        return unavailable();
    }
    // The gateway task answers once the batch is journaled (and synced, under the `always`
    // and `interval` policies): 202 is never said of a revocation a crash could lose.
    match answer.await {
        Ok(n) => Answer::json(202, json!({"accepted": n}).to_string()),
        Err(_) => unavailable(),
    }
}

/// Follows a JSON Lines file of revocations: every second, reads what was appended since the
/// last complete line and delivers it to the gateway. Bad lines are skipped with a note on
/// stderr. The file offset moves past lines only once the driver has journaled them.
pub(crate) async fn watch_revocations(path: PathBuf, cmd: mpsc::Sender<Cmd>) {
    let mut offset: u64 = 0;
    let mut skipping = false;
    let mut tick = tokio::time::interval(FEED_INTERVAL);
    loop {
        tick.tick().await;
        let Ok(mut file) = tokio::fs::File::open(&path).await else {
            continue;
        };
        let Ok(len) = file.metadata().await.map(|m| m.len()) else {
            continue;
        };
        if len < offset {
            // Truncated or replaced: start over.
            offset = 0;
            skipping = false;
        }
        if len == offset || file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
            continue;
        }
        let mut chunk = Vec::new();
        if (&mut file)
            .take(MAX_FILE_READ)
            .read_to_end(&mut chunk)
            .await
            .is_err()
        {
            continue;
        }
        let read = complete_lines(&chunk, skipping, chunk.len() as u64 >= MAX_FILE_READ);
        if read.skips_a_long_line {
            eprintln!(
                "gauntlet serve: {}: skipping a revocation line over {MAX_FILE_READ} bytes",
                path.display()
            );
        }
        // At most one read's worth: the read size, not a count, bounds the batch.
        let mut batch = Vec::new();
        for line in read.lines.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Revocation>(line) {
                Ok(r) => batch.push(r),
                Err(e) => eprintln!(
                    "gauntlet serve: {}: skipping a bad revocation line: {e}",
                    path.display()
                ),
            }
        }
        if !batch.is_empty() {
            let (reply, answer) = oneshot::channel();
            let delivered = Cmd::Revoke {
                revocations: batch,
                reply,
            };
            if cmd.send(delivered).await.is_err() || answer.await.is_err() {
                return;
            }
        }
        offset = offset.saturating_add(read.consumed);
        skipping = read.skipping;
    }
}

/// What one read at the revocations file's offset holds.
#[derive(Debug, PartialEq, Eq)]
struct FileRead<'a> {
    /// Complete lines, without the last newline.
    lines: &'a [u8],
    /// How far the offset moves once `lines` are queued.
    consumed: u64,
    /// Whether the next read starts inside a line being skipped.
    skipping: bool,
    /// Whether this read began skipping a line (worth a note).
    skips_a_long_line: bool,
}

/// Splits a read into its complete lines. A line that fills a whole read without ending can
/// never be read whole: it is skipped up to its newline, however many reads that takes,
/// since waiting for it would hold back every revocation appended after it.
fn complete_lines(chunk: &[u8], skipping: bool, full_read: bool) -> FileRead<'_> {
    let mut start = 0;
    if skipping {
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => start = i + 1,
            None => {
                return FileRead {
                    lines: &[],
                    consumed: chunk.len() as u64,
                    skipping: true,
                    skips_a_long_line: false,
                };
            }
        }
    }
    let rest = chunk.get(start..).unwrap_or_default();
    match rest.iter().rposition(|b| *b == b'\n') {
        Some(end) => FileRead {
            lines: rest.get(..end).unwrap_or_default(),
            consumed: (start + end + 1) as u64,
            skipping: false,
            skips_a_long_line: false,
        },
        None if full_read && start == 0 => FileRead {
            lines: &[],
            consumed: chunk.len() as u64,
            skipping: true,
            skips_a_long_line: true,
        },
        None => FileRead {
            lines: &[],
            consumed: start as u64,
            skipping: false,
            skips_a_long_line: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[u8], consumed: u64, skipping: bool, skips: bool) -> FileRead<'_> {
        FileRead {
            lines,
            consumed,
            skipping,
            skips_a_long_line: skips,
        }
    }

    #[test]
    fn a_partial_last_line_waits_for_the_next_read() {
        assert_eq!(
            complete_lines(b"a\nb\nc", false, false),
            read(b"a\nb", 4, false, false)
        );
        assert_eq!(
            complete_lines(b"abc", false, false),
            read(b"", 0, false, false)
        );
    }

    #[test]
    fn a_line_longer_than_a_read_is_skipped_to_its_newline_and_the_lines_after_it_are_read() {
        let first = complete_lines(b"xxxx", false, true);
        assert_eq!(first, read(b"", 4, true, true));
        assert_eq!(
            complete_lines(b"xxxx", first.skipping, true),
            read(b"", 4, true, false),
            "still inside the long line"
        );
        assert_eq!(
            complete_lines(b"xx\nr1\nr2\nr", true, false),
            read(b"r1\nr2", 9, false, false)
        );
        assert_eq!(
            complete_lines(b"xx\nr3", true, true),
            read(b"", 3, false, false),
            "the line after the long one may still complete"
        );
    }
}
